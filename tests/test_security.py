"""Security: no pickle, no shell strings, downloads only from the configured addresses,
verified before use, and extracted only inside the data folder.

The source checks read every tracked Python file and notebook of the
repository with ``ast``, so a new ``import pickle`` or ``shell=True``
anywhere fails CI with the file and line.
"""
import ast
import io
import json
import subprocess
import zipfile
from pathlib import Path

import pytest
import requests

from d2l_nli import DATA_HUB, DownloadError, download, download_extract
from d2l_nli.machinery.hub import extract_archive

ROOT = Path(__file__).resolve().parents[1]
# Modules whose loaders run code from the file they read.
UNSAFE_MODULES = {'pickle', 'cPickle', '_pickle', 'dill', 'shelve', 'marshal', 'joblib',
                  'cloudpickle'}
# Calls that hand a string to a shell, or that unpickle (MXNet's Trainer
# save_states/load_states pickle the optimizer).
UNSAFE_CALLS = {'system', 'popen', 'getoutput', 'getstatusoutput', 'save_states',
                'load_states', 'save_optimizer_states', 'load_optimizer_states'}


def _sources():
    """(name, source text) of every tracked Python file and notebook code cell."""
    files = subprocess.run(['git', 'ls-files', '*.py', '*.ipynb'], cwd=ROOT,
                           capture_output=True, text=True)
    if files.returncode != 0:  # not a git checkout (an sdist): walk the folders
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob('*.py')
                 if '.venv' not in p.parts and '.envs' not in p.parts]
    else:
        names = files.stdout.split()
    for name in names:
        path = ROOT / name
        if name.endswith('.ipynb'):
            cells = json.loads(path.read_text())['cells']
            for k, cell in enumerate(cells):
                if cell['cell_type'] == 'code':
                    text = ''.join(cell['source'])
                    # IPython magics are not Python.
                    text = '\n'.join('' if line.lstrip().startswith(('%', '!')) else line
                                     for line in text.splitlines())
                    yield f'{name}, cell {k}', text
        else:
            yield name, path.read_text()


def _findings(name, text):
    tree = ast.parse(text, name)
    for node in ast.walk(tree):
        where = f'{name}, line {getattr(node, "lineno", "?")}'
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split('.')[0] in UNSAFE_MODULES:
                    yield f'{where}: import {alias.name}'
        elif isinstance(node, ast.ImportFrom):
            if (node.module or '').split('.')[0] in UNSAFE_MODULES:
                yield f'{where}: from {node.module} import ...'
        elif isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, 'id', '')
            if called in UNSAFE_CALLS:
                yield f'{where}: calls {called}()'
            for kw in node.keywords:
                if kw.arg in ('shell', 'allow_pickle') and not (
                        isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    yield f'{where}: {kw.arg}={ast.unparse(kw.value)}'


def test_the_source_checks_find_what_they_look_for():
    bad = ('import pickle\nfrom shelve import open\nimport os, subprocess, numpy\n'
           'os.system("rm -rf " + path)\nsubprocess.run(cmd, shell=True)\n'
           'numpy.load(f, allow_pickle=True)\ntrainer.save_states("x")\n')
    assert len(list(_findings('bad.py', bad))) == 6


def test_no_pickle_and_no_shell_strings_anywhere():
    sources = list(_sources())
    assert any(name.startswith('d2l_nli/') for name, _ in sources)
    assert any('.ipynb' in name for name, _ in sources)
    findings = [f for name, text in sources if not name.startswith('tests/')
                for f in _findings(name, text)]
    assert findings == []


def test_subprocesses_get_argument_lists_not_command_strings():
    for name, text in _sources():
        for node in ast.walk(ast.parse(text, name)):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ('run', 'Popen', 'call', 'check_call',
                                           'check_output')
                    and getattr(node.func.value, 'id', '') == 'subprocess' and node.args):
                first = node.args[0]
                assert not (isinstance(first, (ast.JoinedStr, ast.BinOp)) or (
                    isinstance(first, ast.Constant) and isinstance(first.value, str))), \
                    f'{name}, line {node.lineno}: a command string'


def test_downloads_go_only_to_the_configured_addresses(monkeypatch, tmp_path):
    import pooch

    asked = []

    def record(url, **kwargs):
        asked.append(url)
        raise requests.ConnectionError('no network in this test')
    monkeypatch.setattr(pooch, 'retrieve', record)
    monkeypatch.setenv('D2L_NLI_DATA', str(tmp_path))
    monkeypatch.setenv('D2L_NLI_MIRROR', 'https://class.example/data/')
    with pytest.raises(DownloadError):
        download('SNLI', retries=1)
    assert asked == ['https://class.example/data/snli_1.0.zip', *DATA_HUB['SNLI'].urls]
    for scheme in ('ftp://host/', 'file:///etc/', 'doi:10.5281/zenodo.1/', '/srv/data'):
        monkeypatch.setenv('D2L_NLI_MIRROR', scheme)
        with pytest.raises(DownloadError, match='is not an http:// or https:// address'):
            download('SNLI', retries=1)
    assert list(tmp_path.iterdir()) == []


def test_official_addresses_are_https_and_hashes_are_sha1():
    for archive in DATA_HUB.values():
        assert all(url.startswith('https://') for url in archive.urls)
        assert len(archive.sha1) == 40 and int(archive.sha1, 16) >= 0


def test_an_archive_is_verified_before_it_is_extracted(monkeypatch, tmp_path):
    """A zip with the right name but the wrong bytes is never opened."""
    import pooch

    def offline(*args, **kwargs):
        raise requests.ConnectionError('offline')
    monkeypatch.setattr(pooch, 'retrieve', offline)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as zf:
        zf.writestr('snli_1.0/snli_1.0_train.txt', 'planted')
    (tmp_path / 'snli_1.0.zip').write_bytes(buf.getvalue())
    opened = []
    monkeypatch.setattr(zipfile, 'ZipFile', lambda *a, **k: opened.append(a))
    with pytest.warns(UserWarning, match='wrong SHA-1'), pytest.raises(DownloadError):
        download_extract('SNLI', data_dir=tmp_path, retries=1)
    assert opened == [] and not (tmp_path / 'snli_1.0').exists()
    assert (tmp_path / 'snli_1.0.zip.sha1-mismatch').read_bytes() == buf.getvalue()


@pytest.mark.parametrize('name', ['C:/evil.txt', 'snli_1.0\\..\\..\\evil.txt', '//host/evil',
                                  'snli_1.0/../snli_1.0/../../evil.txt'])
def test_extraction_stays_inside_the_data_folder(tmp_path, name):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as zf:
        zf.writestr('snli_1.0/snli_1.0_train.txt', 'fine')
        zf.writestr(zipfile.ZipInfo(name), 'evil')
    data = tmp_path / 'data'
    data.mkdir()
    (data / 'a.zip').write_bytes(buf.getvalue())
    with pytest.raises(DownloadError, match='path leaves the data folder'):
        extract_archive(data / 'a.zip', data, 'snli_1.0')
    assert sorted(p.name for p in tmp_path.rglob('*')) == ['a.zip', 'data']
