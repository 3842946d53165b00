"""The package's copies of the notebooks' ``#@save`` code are generated and current."""
import ast
import dataclasses
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
                  'budget = max_len - 3', 'budget = max_len - 2')
    result = run_tool('--check', root=project_copy)
    assert result.returncode == 1
    assert f'{export.module} differs from the #@save cells of {export.notebook}' in result.stderr
    assert '+    budget = max_len - 2' in result.stderr
    assert 'python tools/nbexport.py' in result.stderr
    # Regenerating brings the package back in step, with the new line.
    assert run_tool(root=project_copy).returncode == 0
    assert run_tool('--check', root=project_copy).returncode == 0
    assert 'budget = max_len - 2' in (project_copy / export.module).read_text()


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


# The notebook is the only source: imports and module docstring ------------

def write_notebook(path, *cells):
    """A notebook of ``cells``: strings starting with ``md:`` are markdown, others code."""
    nb = {'cells': [{'cell_type': 'markdown', 'metadata': {}, 'source': c[3:]}
                    if c.startswith('md:') else
                    {'cell_type': 'code', 'metadata': {}, 'outputs': [],
                     'execution_count': None, 'source': c} for c in cells],
          'metadata': {}, 'nbformat': 4, 'nbformat_minor': 4}
    path.write_text(json.dumps(nb), encoding='utf-8')
    return path


DOC = f'md:{nbexport.DOCSTRING_MARKER}\nA module for the tests.\n\nSecond paragraph.\n'
SAVED = ('#@save\ndef f(x):\n    """One line."""\n'
         '    return Vocab(x), truncate_pair, BatchLoader, onp, collections\n')
IMPORTS = ('#@save\nimport numpy as onp\nfrom d2l_nli.text import truncate_pair, Vocab\n'
           'import collections\nfrom d2l_nli.loader import BatchLoader\n')


def render_notebook(tmp_path, *cells):
    write_notebook(tmp_path / 'nb.ipynb', *cells)
    return nbexport.render(nbexport.Export('pkg/mod.py', 'nb.ipynb'), root=tmp_path)


def export_error(tmp_path, *cells):
    with pytest.raises(nbexport.ExportError) as info:
        render_notebook(tmp_path, *cells)
    return str(info.value)


def markdown_number(nb_path, text):
    """Number (from 1, among markdown cells) of the markdown cell holding ``text``."""
    cells = [c for c in json.loads(nb_path.read_text())['cells'] if c['cell_type'] == 'markdown']
    return next(i for i, c in enumerate(cells, 1) if text in ''.join(c['source']))


def code_number(nb_path, text):
    cells = [c for c in json.loads(nb_path.read_text())['cells'] if c['cell_type'] == 'code']
    return next(i for i, c in enumerate(cells, 1) if text in ''.join(c['source']))


def test_the_tool_holds_only_the_mapping_from_module_to_notebook():
    assert [f.name for f in dataclasses.fields(nbexport.Export)] == ['module', 'notebook']
    tool = TOOL.read_text()
    for export in nbexport.EXPORTS:
        module = ast.parse((ROOT / export.module).read_text())
        first_line = ast.get_docstring(module).split('\n')[0]
        assert first_line not in tool  # the docstring is the notebook's
        imports = [ast.unparse(n) for n in module.body if isinstance(n, ast.ImportFrom)]
        assert len(imports) > 1 and '\n'.join(imports) not in tool  # nor are the imports


def test_committed_modules_take_docstring_and_imports_from_their_notebook():
    for export in nbexport.EXPORTS:
        text = (ROOT / export.module).read_text()
        notebook = ROOT / export.notebook
        assert ast.get_docstring(ast.parse(text)) == nbexport.module_docstring(
            notebook, export.notebook)
        assert 'from d2l_nli' not in text and 'import d2l_nli' not in text
        # Every package import of the notebook's #@save import cell, made relative.
        cell = next(s for _, s in nbexport.code_cells(notebook)
                    if s.startswith('#@save\n') and 'def ' not in s and 'class ' not in s)
        for line in cell.split('\n'):
            if line.startswith('from d2l_nli.'):
                assert line.replace('from d2l_nli.', 'from .', 1) in text, line
            elif line.startswith(('import ', 'from ')):
                assert line in text, line


def _assert_ruff_clean(tmp_path, text):
    """The generated ``text`` passes ruff with the project's configuration."""
    module = tmp_path / 'mod.py'
    module.write_text(text)
    result = subprocess.run([sys.executable, '-m', 'ruff', 'check', '--no-cache', '--config',
                             str(ROOT / 'pyproject.toml'), str(module)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout


def test_imports_are_made_relative_sorted_and_grouped_as_ruff_wants(tmp_path):
    text = render_notebook(tmp_path, DOC, IMPORTS, SAVED)
    header, doc, rest = text.split('"""', 2)
    assert header.startswith('# Generated from nb.ipynb by tools/nbexport.py')
    assert doc == 'A module for the tests.\n\nSecond paragraph.\n'
    assert rest.startswith('\nimport collections\n\n'
                           'import numpy as onp\n\n'
                           'from .loader import BatchLoader\n'
                           'from .text import Vocab, truncate_pair\n\n'
                           "__all__ = ['f']\n\n\n"
                           'def f(x):\n')
    _assert_ruff_clean(tmp_path, text)


def test_imports_from_several_cells_are_merged_and_long_ones_wrapped(tmp_path):
    names = [f'helper_number_{i}' for i in range(8)]
    code = ('#@save\ndef g():\n    """G."""\n    return ('
            + ',\n            '.join(names + ['os']) + ')\n')
    text = render_notebook(
        tmp_path, DOC, '#@save\nimport os\nfrom d2l_nli.tools import ' + ', '.join(names[:4]),
        'x = 1\n#@save\nimport os\nfrom d2l_nli.tools import ' + ', '.join(names[4:]) +
        '\ny = 2\n', code)
    assert text.count('import os\n') == 1
    assert ('from .tools import (\n' + ''.join(f'    {n},\n' for n in names) + ')\n') in text
    assert 'x = 1' not in text and 'y = 2' not in text  # the run of imports ends there
    _assert_ruff_clean(tmp_path, text)


def test_an_import_the_saved_code_does_not_use_is_an_error(tmp_path):
    message = export_error(tmp_path, DOC, IMPORTS + 'import json\n', SAVED)
    assert message.startswith('nb.ipynb, code cell 1, line 6: json is imported')
    assert 'no #@save statement uses it' in message


def test_a_name_no_saved_import_provides_is_an_error(tmp_path):
    message = export_error(tmp_path, DOC, IMPORTS.replace('import collections\n', ''), SAVED)
    assert message.startswith('nb.ipynb, code cell 2, line 4: the #@save code uses collections')
    message = export_error(tmp_path, DOC, IMPORTS.replace('#@save\n', ''), SAVED)
    assert 'code cell 2, line 4' in message and 'has no #@save import cell' in message
    assert 'BatchLoader, collections, onp, truncate_pair, Vocab' in message


@pytest.mark.parametrize('line, expected', [
    ('from d2l_nli import Vocab', 'not from the package d2l_nli'),
    ('import d2l_nli.text', 'imports the package relatively'),
    ('from .text import Vocab', 'a relative import does not run in the notebook'),
    ('from d2l_nli.text import *', 'cannot be saved'),
    ('from mxnet import np as Vocab', 'imported twice, differently'),
])
def test_imports_that_cannot_be_saved_are_errors_naming_the_cell(tmp_path, line, expected):
    message = export_error(tmp_path, DOC, IMPORTS, '#@save\n' + line + '\n', SAVED)
    assert message.startswith('nb.ipynb, code cell 2, line 2: ') and expected in message


def test_a_missing_docstring_cell_is_an_error_naming_the_notebook(tmp_path):
    message = export_error(tmp_path, 'md:# Title\n', IMPORTS, SAVED)
    assert message.startswith('nb.ipynb: no markdown cell starts with '
                              '<!-- #@save: module docstring -->')


@pytest.mark.parametrize('cell, expected', [
    ('md:<!-- #@save module docstring -->\nText.', 'line 1: malformed docstring marker'),
    ('md:<!--#@save: module docstring-->\nText.', 'line 1: malformed docstring marker'),
    (f'md:Text.\n{nbexport.DOCSTRING_MARKER}', 'line 2: <!-- #@save: module docstring --> '
                                               'must be the first line'),
    (f'md:{nbexport.DOCSTRING_MARKER}\n\n  \n', 'the module docstring after'),
    (f'md:{nbexport.DOCSTRING_MARKER}\nSay """ here.', 'line 2: a module docstring cannot'),
    (f'md:{nbexport.DOCSTRING_MARKER}\nOne.\n\n' + 'x' * 101, 'line 4: 101 characters'),
])
def test_a_malformed_docstring_cell_is_an_error_naming_the_cell(tmp_path, cell, expected):
    message = export_error(tmp_path, 'md:# Title', cell, IMPORTS, SAVED)
    assert message.startswith('nb.ipynb, markdown cell 2') and expected in message


def test_two_docstring_cells_are_an_error(tmp_path):
    message = export_error(tmp_path, DOC, IMPORTS, DOC, SAVED)
    assert 'markdown cell 1 and markdown cell 2 both start with' in message


def test_editing_the_notebooks_docstring_cell_changes_the_module(project_copy):
    export = nbexport.EXPORTS[0]
    doc = nbexport.module_docstring(ROOT / export.notebook, export.notebook)
    first = doc.split('\n')[0]
    edit_notebook(project_copy / export.notebook, first, 'A new first line.')
    result = run_tool('--check', root=project_copy)
    assert result.returncode == 1 and '+"""A new first line.' in result.stderr
    assert run_tool(root=project_copy).returncode == 0
    module = ast.parse((project_copy / export.module).read_text())
    assert ast.get_docstring(module) == doc.replace(first, 'A new first line.')


def test_a_broken_docstring_marker_in_a_notebook_fails_the_tool_naming_it(project_copy):
    export = nbexport.EXPORTS[1]
    nb_path = project_copy / export.notebook
    number = markdown_number(nb_path, nbexport.DOCSTRING_MARKER)
    edit_notebook(nb_path, nbexport.DOCSTRING_MARKER, '<!-- #@save: docstring -->')
    result = run_tool('--check', root=project_copy)
    assert result.returncode == 2
    assert (f'{export.notebook}, markdown cell {number}, line 1: malformed docstring marker'
            in result.stderr)


def test_an_unmarked_import_cell_in_a_notebook_fails_the_tool_naming_it(project_copy):
    export = nbexport.EXPORTS[0]
    nb_path = project_copy / export.notebook
    edit_notebook(nb_path, '#@save\nimport collections\n', 'import collections\n')
    # The first use of an imported name: TRUNCATION_STRATEGIES in check_pair_arguments.
    number = code_number(nb_path, 'def check_pair_arguments(')
    source = dict(nbexport.code_cells(nb_path))[number]
    line = source.split('\n').index('    if truncate not in TRUNCATION_STRATEGIES:') + 1
    result = run_tool('--check', root=project_copy)
    assert result.returncode == 2
    assert (f'{export.notebook}, code cell {number}, line {line}: the #@save code uses '
            'BatchLoader, collections, gluon, itertools, onp, RESERVED_TOKENS, '
            'TRUNCATION_STRATEGIES, Vocab, which') in result.stderr
    assert 'which no #@save import provides' in result.stderr
