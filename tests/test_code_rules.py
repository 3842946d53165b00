"""Rules of the codebase that a reader relies on, checked on the source."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / 'd2l_nli'
SOURCES = sorted(PACKAGE.rglob('*.py')) + sorted((ROOT / 'tests').glob('*.py'))


def _private(name):
    return name.startswith('_') and not (name.startswith('__') and name.endswith('__'))


def _package_module(path, node):
    """Whether an ``import from`` node names a module of d2l_nli (relative or absolute)."""
    return node.level > 0 or (node.module or '').split('.')[0] == 'd2l_nli'


def test_no_private_name_is_imported_from_another_module_of_the_package():
    found = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding='utf-8'))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and _package_module(path, node):
                found += [f'{path.relative_to(ROOT)}:{node.lineno}: {a.name}'
                          for a in node.names if _private(a.name)
                          and a.name != '_fast_ops']  # the compiled library's own name
    assert not found, 'private names imported across modules:\n' + '\n'.join(found)


def test_ruff_finds_nothing_with_the_projects_configuration():
    """``ruff check .`` (pyproject.toml: line length 100, import order, unused names)."""
    result = subprocess.run([sys.executable, '-m', 'ruff', 'check', '.', '--no-cache',
                             '--output-format', 'concise'], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]


def test_no_function_of_the_package_is_longer_than_60_lines():
    """Loops that read like the book: scaffolding goes into helpers (d2l_nli/machinery/loop.py)."""
    long = []
    for path in sorted(PACKAGE.rglob('*.py')):
        for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 60:
                    long.append(f'{path.relative_to(ROOT)}:{node.lineno}: {node.name}, {lines}')
    assert not long, 'functions over 60 lines:\n' + '\n'.join(long)


def _reads_a_saved_file(call):
    """``x.load_parameters(...)``, ``Vocab.load(...)`` or ``mx.nd.load(...)``."""
    func = call.func
    if not isinstance(func, ast.Attribute):
        return False
    owner = func.value
    owner = owner.id if isinstance(owner, ast.Name) else getattr(owner, 'attr', None)
    return func.attr == 'load_parameters' or (func.attr == 'load' and owner in ('Vocab', 'nd'))


def test_saved_files_are_read_in_one_place():
    """One loader maps load errors to the package's messages (checkpoint.py)."""
    found = []
    for path in sorted(PACKAGE.rglob('*.py')):
        if path.name == 'checkpoint.py':
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
            if isinstance(node, ast.Call) and _reads_a_saved_file(node):
                found.append(f'{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}')
    assert not found, 'saved files read outside checkpoint.py:\n' + '\n'.join(found)
