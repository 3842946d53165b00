"""The package's copies of the notebooks' ``#@save`` code are generated and current."""
import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / 'tools' / 'nbexport.py'
sys.path.insert(0, str(ROOT / 'tools'))
import nbexport  # noqa: E402


def run_tool(*args, root=ROOT):
    return subprocess.run([sys.executable, str(TOOL), '--root', str(root), *args],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def project_copy(tmp_path):
    """The notebooks and generated modules, copied to a scratch project root."""
    shutil.copytree(ROOT / 'notebooks', tmp_path / 'notebooks',
                    ignore=shutil.ignore_patterns('.ipynb_checkpoints', '__pycache__'))
    (tmp_path / 'd2l_nli').mkdir()
    for export in nbexport.EXPORTS:
        shutil.copy(ROOT / export.module, tmp_path / export.module)
    return tmp_path


def edit_notebook(path, old, new):
    nb = json.loads(path.read_text(encoding='utf-8'))
    for cell in nb['cells']:
        source = ''.join(cell['source'])
        if old in source:
            cell['source'] = source.replace(old, new, 1)
            path.write_text(json.dumps(nb), encoding='utf-8')
            return
    raise AssertionError(f'{old!r} not found in {path}')


def test_committed_modules_match_the_notebooks():
    result = run_tool('--check')
    assert result.returncode == 0, result.stderr


def test_changing_one_line_of_a_save_cell_fails_the_check(project_copy):
    export = nbexport.EXPORTS[0]
    edit_notebook(project_copy / export.notebook,
                  'budget = self.max_len - 3', 'budget = self.max_len - 2')
    result = run_tool('--check', root=project_copy)
    assert result.returncode == 1
    assert f'{export.module} differs from the #@save cells of {export.notebook}' in result.stderr
    assert '+        budget = self.max_len - 2' in result.stderr
    assert 'python tools/nbexport.py' in result.stderr
    # Regenerating brings the package back in step, with the new line.
    assert run_tool(root=project_copy).returncode == 0
    assert run_tool('--check', root=project_copy).returncode == 0
    assert 'budget = self.max_len - 2' in (project_copy / export.module).read_text()


def test_editing_a_generated_module_by_hand_fails_the_check(project_copy):
    module = project_copy / nbexport.EXPORTS[1].module
    module.write_text(module.read_text().replace('num_mlp_hiddens=256', 'num_mlp_hiddens=512'))
    result = run_tool('--check', root=project_copy)
    assert result.returncode == 1 and nbexport.EXPORTS[1].module in result.stderr


def test_generated_modules_name_their_notebook_and_back_reference_each_definition():
    for export in nbexport.EXPORTS:
        text = (ROOT / export.module).read_text()
        assert text.startswith(f'# Generated from {export.notebook} by tools/nbexport.py')
        tree = ast.parse(text)
        assert ast.get_docstring(tree)  # a module docstring
        defs = [n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))]
        assert defs
        for node in defs:
            assert f'Defined in {export.notebook}.' in ast.get_docstring(node), node.name


def test_every_notebook_with_save_cells_has_a_target_module():
    targets = {e.notebook for e in nbexport.EXPORTS}
    for notebook in sorted((ROOT / 'notebooks').glob('*.ipynb')):
        marked = any(line.strip() == nbexport.MARKER
                     for _, source in nbexport.code_cells(notebook)
                     for line in source.split('\n'))
        rel = notebook.relative_to(ROOT).as_posix()
        assert not marked or rel in targets, f'{rel} has #@save cells but no entry in EXPORTS'


def test_a_marker_without_a_statement_is_reported_with_its_cell(project_copy):
    export = nbexport.EXPORTS[1]
    nb_path = project_copy / export.notebook
    nb = json.loads(nb_path.read_text())
    nb['cells'].append({'cell_type': 'code', 'metadata': {}, 'outputs': [],
                        'execution_count': None, 'source': 'x = 1\n#@save\n'})
    nb_path.write_text(json.dumps(nb))
    result = run_tool('--check', root=project_copy)
    assert result.returncode == 2
    assert 'is not followed by a statement' in result.stderr and export.notebook in result.stderr


def test_magics_and_decorators_are_handled(tmp_path):
    nb = {'cells': [{'cell_type': 'code', 'metadata': {}, 'outputs': [], 'execution_count': None,
                     'source': '%matplotlib inline\n#@save\n@staticmethod\ndef f(x):\n'
                               '    """One line."""\n    return x\n\ny = 2\n'}]}
    path = tmp_path / 'n.ipynb'
    path.write_text(json.dumps(nb))
    [block] = nbexport.saved_blocks(path, 'n.ipynb')
    assert block.startswith('@staticmethod\ndef f(x):')
    assert 'Defined in n.ipynb.' in block and 'y = 2' not in block
