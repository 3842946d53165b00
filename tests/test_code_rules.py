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
    """Loops that read like the book: scaffolding goes into helpers (d2l_nli/loop.py)."""
    long = []
    for path in sorted(PACKAGE.rglob('*.py')):
        for node in ast.walk(ast.parse(path.read_text(encoding='utf-8'))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 60:
                    long.append(f'{path.relative_to(ROOT)}:{node.lineno}: {node.name}, {lines}')
    assert not long, 'functions over 60 lines:\n' + '\n'.join(long)
