"""Install metadata, README and CI stay in step."""
import ast
import importlib.metadata
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import d2l_nli

ROOT = Path(__file__).resolve().parents[1]


def test_version_comes_from_the_version_file():
    version = (ROOT / 'd2l_nli' / 'VERSION').read_text().strip()
    assert d2l_nli.__version__ == version == importlib.metadata.version('d2l-nli')
    setup_py = (ROOT / 'setup.py').read_text()
    assert 'import d2l_nli' not in setup_py and 'VERSION' in setup_py


def test_extras_never_mix_the_two_mxnet_wheels():
    requires = importlib.metadata.requires('d2l-nli')

    def extra(name):
        return [r.split(';')[0].strip() for r in requires if f'extra == "{name}"' in r]
    assert extra('cpu') == ['mxnet==1.9.1']
    gpu = extra('gpu')
    assert 'mxnet-cu112==1.9.1' in gpu and not any(r.startswith('mxnet==') for r in gpu)
    assert any(r.startswith('nvidia-cudnn-cu11') and '<9' in r for r in gpu)
    assert not any(r.startswith('mxnet') for r in extra('test'))
    base = [r for r in requires if 'extra ==' not in r]
    assert 'numpy<1.24,>=1.21' in base or 'numpy>=1.21,<1.24' in base
    # Bounded above: a release we have not run might drop numpy 1.23.
    assert 'scikit-learn<1.8,>=1.3' in base or 'scikit-learn>=1.3,<1.8' in base
    requires_python = importlib.metadata.metadata('d2l-nli')['Requires-Python']
    assert set(requires_python.split(',')) == {'>=3.9', '<3.12'}


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / 'README.md').read_text()
    quick_start = readme.split('## Quick start')[1].split('\n## ')[0]
    commands = re.findall(r'```bash\n(.+?)\n```', quick_start)
    assert len(commands) == 2, commands
    assert 'd2l_nli demo' in commands[0] and 'pytest' in commands[1]
    ci = (ROOT / '.ci' / 'run').read_text().splitlines()
    assert commands[1] in ci


def test_environment_yml_installs_the_cpu_extra_on_python_311():
    env = (ROOT / 'environment.yml').read_text()
    assert '- python=3.11' in env and '- -e .[cpu,test]' in env
    assert '# - -e .[gpu,test]' in env


def test_every_test_named_in_the_troubleshooting_table_exists():
    """The troubleshooting page's bad-input table points at tests; they must exist."""
    page = (ROOT / 'docs' / 'troubleshooting.md').read_text()
    table = page.split('## Bad input: what you see and what to do', 1)[1].split('\n## ', 1)[0]
    names = re.findall(r'`(?:[\w.]+::)?(test_\w+\*?)`', table)
    assert len(names) > 30
    defined = set()
    for path in (ROOT / 'tests').glob('test_*.py'):
        defined |= set(re.findall(r'^def (test_\w+)', path.read_text(), re.M))
    for name in names:
        if name.endswith('*'):
            assert any(d.startswith(name[:-1]) for d in defined), name
        else:
            assert name in defined, name
    rows = [line for line in table.splitlines() if line.startswith('| ') and '**' not in line]
    assert all(line.count(' | ') == 3 for line in rows[2:]), 'each row: input, message, fix, test'


def _python_problem():
    """setup.py's ``python_problem``, read without running setup()."""
    tree = ast.parse((ROOT / 'setup.py').read_text())
    wanted = [node for node in tree.body if isinstance(node, ast.FunctionDef) and
              node.name == 'python_problem' or isinstance(node, ast.Assign) and
              getattr(node.targets[0], 'id', '') == 'SUPPORTED_PYTHONS']
    namespace = {}
    exec(compile(ast.Module(body=wanted, type_ignores=[]), 'setup.py', 'exec'), namespace)
    return namespace['python_problem']


def test_an_unsupported_python_is_told_how_to_get_a_working_one():
    python_problem = _python_problem()
    assert python_problem((3, 11, 7)) is None and python_problem((3, 9, 0)) is None
    message = python_problem((3, 12, 1))
    assert 'Python 3.12.1' in message and 'no wheels' in message
    assert 'conda env create -f environment.yml' in message
    assert 'uv venv --seed --python 3.11 .venv' in message
    assert python_problem((3, 13, 0)) and python_problem((3, 8, 10))


def _working_python312():
    """A ``python3.12`` that runs (a pyenv shim may exist without one), or None."""
    for candidate in (shutil.which('python3.12'),
                      *map(str, Path.home().glob('.pyenv/versions/3.12*/bin/python3.12'))):
        if candidate and subprocess.run([candidate, '-c', 'pass'],
                                        capture_output=True).returncode == 0:
            return candidate
    return None


@pytest.mark.skipif(_working_python312() is None, reason='no working python3.12 here')
def test_setup_py_stops_on_python_312_with_that_message():
    result = subprocess.run([_working_python312(), 'setup.py', '--name'], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert 'needs Python 3.9, 3.10 or 3.11, but this is Python 3.12' in result.stderr
