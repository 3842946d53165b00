"""Generate the package's copies of what the notebooks define (``#@save``).

The notebooks are the only source of the modules generated from them
(``EXPORTS`` below maps each module to its notebook): code, imports and
module docstring all come from the notebook, as in d2lbook and nbdev.

* Code. As in d2lbook, a line ``#@save`` in a code cell marks the statement
  right after it (with its body and decorators) for the library. Each
  marked class and function gets a "Defined in <notebook>." line at the end
  of its docstring.
* Imports. When the statement after ``#@save`` is an import, the mark takes
  the whole run of imports that follows it (up to the first statement that
  is not an import), so one ``#@save`` line at the top of an import cell
  saves the cell. Write them as the notebook runs them: ``from
  d2l_nli.loader import BatchLoader`` becomes ``from .loader import
  BatchLoader`` in the module. The module's imports are sorted and grouped
  as ruff's isort rules want them (standard library, third party, the
  package). It is an error to save an import that no saved statement uses,
  to leave a name that the saved code uses unimported, to import from the
  package itself (``from d2l_nli import Vocab``: name the module,
  ``d2l_nli.text``) and to write a relative import (the notebook cannot run
  it).
* Module docstring. A markdown cell whose first line is exactly
  ``<!-- #@save: module docstring -->`` (an HTML comment, so the notebook
  does not show it) holds the docstring: the rest of the cell, verbatim.
  Each notebook has exactly one; it may not contain triple quotes or
  backslashes, and its lines are at most 100 characters.

The generated module starts with a header naming its source notebook.

    python tools/nbexport.py            # regenerate the modules
    python tools/nbexport.py --check    # exit 1 if a module differs (CI)

Edit the notebook, never the generated module: CI runs ``--check``.
Errors name the notebook, the cell (``code cell 3`` counts code cells
only, ``markdown cell 2`` markdown cells only, from 1) and the line in it.
"""
import argparse
import ast
import builtins
import dataclasses
import difflib
import json
import re
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = '#@save'
DOCSTRING_MARKER = '<!-- #@save: module docstring -->'
PACKAGE = 'd2l_nli'
LINE_LENGTH = 100  # ruff's, in pyproject.toml


@dataclasses.dataclass(frozen=True)
class Export:
    """One generated module and the notebook it is generated from."""
    module: str      # path relative to the project root
    notebook: str    # path relative to the project root


EXPORTS = (
    Export('d2l_nli/snli_bert.py', 'notebooks/02_snli_dataset_for_bert.ipynb'),
    Export('d2l_nli/classifier.py', 'notebooks/03_finetuning_bert.ipynb'),
)


class ExportError(Exception):
    """A notebook cannot be exported; the message names the cell and line."""


def _cells(notebook_path):
    """``(cell type, number among the cells of that type, source)`` of each cell."""
    try:
        nb = json.loads(Path(notebook_path).read_text(encoding='utf-8'))
    except (OSError, ValueError) as err:
        raise ExportError(f'{notebook_path}: cannot read the notebook: {err}') from None
    numbers = {}
    for cell in nb.get('cells', []):
        kind = cell.get('cell_type')
        numbers[kind] = numbers.get(kind, 0) + 1
        source = cell.get('source', '')
        yield kind, numbers[kind], ''.join(source) if isinstance(source, list) else source


def code_cells(notebook_path):
    """``(cell number, source)`` of each code cell (numbered from 1, as Jupyter shows)."""
    for kind, number, source in _cells(notebook_path):
        if kind == 'code':
            yield number, source


# The module docstring ------------------------------------------------------

def module_docstring(notebook_path, where):
    """The text of the notebook's module-docstring cell (see the module docstring)."""
    found = []
    for kind, number, source in _cells(notebook_path):
        if kind != 'markdown':
            continue
        lines = source.split('\n')
        for i, line in enumerate(lines):
            text = line.strip()
            if not (text.startswith('<!--') and MARKER in text):
                continue
            at = f'{where}, markdown cell {number}, line {i + 1}'
            if text != DOCSTRING_MARKER:
                raise ExportError(f'{at}: malformed docstring marker {text!r}; write exactly '
                                  f'{DOCSTRING_MARKER} as the first line of the cell')
            if i:
                raise ExportError(f'{at}: {DOCSTRING_MARKER} must be the first line of the '
                                  'cell (the docstring is the rest of the cell)')
            found.append((number, lines[1:]))
    if not found:
        raise ExportError(f'{where}: no markdown cell starts with {DOCSTRING_MARKER}; the '
                          'module docstring of the generated module comes from that cell')
    if len(found) > 1:
        cells = ' and '.join(f'markdown cell {number}' for number, _ in found)
        raise ExportError(f'{where}: {cells} both start with {DOCSTRING_MARKER}; '
                          'a module has one docstring')
    number, lines = found[0]
    return _checked_docstring(number, [line.rstrip() for line in lines], where)


def _checked_docstring(number, lines, where):
    first = 0
    while first < len(lines) and not lines[first]:
        first += 1
    text = '\n'.join(lines[first:]).strip('\n')
    if not text:
        raise ExportError(f'{where}, markdown cell {number}: the module docstring after '
                          f'{DOCSTRING_MARKER} is empty')
    for i, line in enumerate(text.split('\n')):
        at = f'{where}, markdown cell {number}, line {first + i + 2}'
        if '"""' in line or '\\' in line:
            raise ExportError(f'{at}: a module docstring cannot hold """ or a backslash')
        if len(line) > LINE_LENGTH:
            raise ExportError(f'{at}: {len(line)} characters; the module allows '
                              f'{LINE_LENGTH}')
    return text


# The #@save statements -----------------------------------------------------

def _parseable(source):
    """The cell with IPython-only lines (``%magic``, ``!shell``) blanked, same line numbers."""
    return '\n'.join('' if line.lstrip().startswith(('%', '!')) else line
                     for line in source.split('\n'))


@dataclasses.dataclass
class _Saved:
    """One marked statement: its code cell, the cell's lines and its node."""
    cell: int
    lines: list
    node: ast.stmt

    @property
    def is_import(self):
        return isinstance(self.node, (ast.Import, ast.ImportFrom))


def _marked_statements(notebook_path, where):
    """Every statement ``#@save`` marks, in notebook order (imports: the whole run)."""
    saved = []
    for number, source in code_cells(notebook_path):
        lines = source.split('\n')
        markers = [i + 1 for i, line in enumerate(lines) if line.strip() == MARKER]
        if not markers:
            continue
        try:
            body = ast.parse(_parseable(source)).body
        except SyntaxError as err:
            raise ExportError(f'{where}, code cell {number}, line {err.lineno}: '
                              f'cannot parse it: {err.msg}') from None
        taken = set()
        for marker in markers:
            after = [k for k, node in enumerate(body) if node.lineno > marker]
            if not after:
                raise ExportError(f'{where}, code cell {number}, line {marker}: '
                                  f'{MARKER} is not followed by a statement')
            run = [after[0]]
            while (isinstance(body[run[-1]], (ast.Import, ast.ImportFrom))
                   and run[-1] + 1 < len(body)
                   and isinstance(body[run[-1] + 1], (ast.Import, ast.ImportFrom))):
                run.append(run[-1] + 1)
            saved += [_Saved(number, lines, body[k]) for k in run if k not in taken]
            taken.update(run)
    return saved


def _with_back_reference(lines, node, first_line, where):
    """Add ``Defined in <where>.`` at the end of the docstring of ``node``, if any."""
    body = getattr(node, 'body', None)
    if not (isinstance(node, (ast.ClassDef, ast.FunctionDef)) and body
            and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)):
        return lines
    doc = body[0].value
    end = doc.end_lineno - first_line  # index of the docstring's last line
    indent = ' ' * doc.col_offset
    last = lines[end]
    note = f'Defined in {where}.'
    if last.strip() == '"""':
        return lines[:end] + ['', indent + note] + lines[end:]
    if last.rstrip().endswith('"""'):
        text = last.rstrip()[:-3]
        return lines[:end] + [text, '', indent + note, indent + '"""'] + lines[end + 1:]
    raise ExportError(f'{where}: the docstring of {node.name} must end with """')


def _block(saved, where):
    node = saved.node
    first = min([node.lineno] + [d.lineno for d in getattr(node, 'decorator_list', [])])
    block = saved.lines[first - 1:node.end_lineno]
    return '\n'.join(_with_back_reference(block, node, first, where)).rstrip()


def saved_blocks(notebook_path, where):
    """Source of every statement marked ``#@save`` (imports aside), in notebook order."""
    return [_block(s, where) for s in _marked_statements(notebook_path, where)
            if not s.is_import]


# Imports -------------------------------------------------------------------

# Names a module has without importing them.
_PREDEFINED = set(dir(builtins)) | {'__file__', '__path__', '__annotations__'}


def _bound_and_used(saved):
    """``(names the statements bind, {name used: (code cell, line) of its first use})``."""
    bound, used = set(), {}
    for s in saved:
        for sub in ast.walk(s.node):
            if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                bound.add(sub.name)
            elif isinstance(sub, ast.arg):
                bound.add(sub.arg)
            elif isinstance(sub, ast.alias):
                bound.add(sub.asname or sub.name.split('.')[0])
            elif isinstance(sub, (ast.Global, ast.Nonlocal)):
                bound.update(sub.names)
            elif isinstance(sub, ast.ExceptHandler) and sub.name:
                bound.add(sub.name)
            elif isinstance(sub, ast.Name):
                if isinstance(sub.ctx, ast.Load):
                    used[sub.id] = min(used.get(sub.id, (s.cell, sub.lineno)),
                                       (s.cell, sub.lineno))
                else:
                    bound.add(sub.id)
    return bound, used


def _stdlib(name):
    names = getattr(sys, 'stdlib_module_names', None)  # Python 3.10+
    if names is not None:
        return name in names
    import importlib.util
    spec = importlib.util.find_spec(name)
    origin = getattr(spec, 'origin', None) or ''
    return origin in ('built-in', 'frozen') or (
        origin.startswith(sysconfig.get_paths()['stdlib']) and 'site-packages' not in origin)


@dataclasses.dataclass(frozen=True)
class _Name:
    """One imported name: ``import module [as asname]`` or ``from module import name``."""
    module: str          # relative to the package when it starts with '.'
    name: str = None     # None for ``import module``
    asname: str = None

    @property
    def bound(self):
        if self.name is None:
            return self.asname or self.module.split('.')[0]
        return self.asname or self.name

    @property
    def section(self):
        """ruff's (isort's) sections: future, standard library, third party, the package."""
        top = self.module.split('.')[0]
        if top == '__future__':
            return 0
        if self.module.startswith('.'):
            return 3
        return 1 if _stdlib(top) else 2


def _import_names(saved, where):
    """The names one saved import statement binds, package imports made relative."""
    node, at = saved.node, f'{where}, code cell {saved.cell}, line {saved.node.lineno}'
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.split('.')[0] == PACKAGE:
                raise ExportError(f'{at}: write "from {alias.name} import <name>": the '
                                  f'generated module imports the package relatively')
        return [_Name(alias.name, asname=alias.asname) for alias in node.names]
    module = node.module or ''
    if node.level:
        raise ExportError(f'{at}: a relative import does not run in the notebook; write '
                          f'"from {PACKAGE}.<module> import ...", the module gets ".<module>"')
    if module == PACKAGE:
        raise ExportError(f'{at}: import from the module that defines the name '
                          f'("from {PACKAGE}.text import Vocab"), not from the package '
                          f'{PACKAGE}: the generated module is part of it')
    if any(alias.name == '*' for alias in node.names):
        raise ExportError(f'{at}: "import *" cannot be saved; name what the code uses')
    if module.startswith(PACKAGE + '.'):
        module = module[len(PACKAGE):]
    return [_Name(module, alias.name, alias.asname) for alias in node.names]


def _natural(text):
    """ruff's natural order: digit runs compare as numbers."""
    return [(0, int(part), '') if part.isdigit() else (1, 0, part)
            for part in re.split(r'(\d+)', text) if part]


def _member_key(name):
    """ruff's ``order-by-type``: CONSTANTS, then Classes, then other names."""
    kind = 0 if len(name.name) > 1 and name.name.isupper() else 1 if name.name[0].isupper() else 2
    return kind, _natural(name.name.lower()), _natural(name.name), name.asname or ''


def _module_key(module):
    dots = len(module) - len(module.lstrip('.'))
    return -dots, _natural(module.lower()), _natural(module)


def _from_import(module, members):
    line = f'from {module} import ' + ', '.join(members)
    if len(line) <= LINE_LENGTH:
        return line
    return f'from {module} import (\n' + ''.join(f'    {m},\n' for m in members) + ')'


def format_imports(names):
    """Import lines for ``names`` (``_Name``), sorted and grouped the way ruff wants."""
    groups = []
    for section in sorted({n.section for n in names}):
        here = [n for n in names if n.section == section]
        straight = sorted((n for n in here if n.name is None),
                          key=lambda n: (_module_key(n.module), n.asname or ''))
        lines = [f'import {n.module}' + (f' as {n.asname}' if n.asname else '')
                 for n in straight]
        for module in sorted({n.module for n in here if n.name is not None}, key=_module_key):
            members = sorted((n for n in here if n.name is not None and n.module == module),
                             key=_member_key)
            plain = [n.name for n in members if not n.asname]
            if plain:
                lines.append(_from_import(module, plain))
            lines += [f'from {module} import {n.name} as {n.asname}'
                      for n in members if n.asname]
        groups.append('\n'.join(lines))
    return '\n\n'.join(groups)


def module_imports(saved, where):
    """The import lines of the module generated from the statements ``saved``."""
    bound, used = _bound_and_used([s for s in saved if not s.is_import])
    names = {}  # bound name -> (_Name, the import's _Saved)
    for s in (s for s in saved if s.is_import):
        for name in _import_names(s, where):
            at = f'{where}, code cell {s.cell}, line {s.node.lineno}'
            if name.bound not in used:
                raise ExportError(f'{at}: {name.bound} is imported in a {MARKER} import '
                                  f'cell, but no {MARKER} statement uses it; import it in a '
                                  f'cell without {MARKER}')
            if name.bound in names and names[name.bound][0] != name:
                raise ExportError(f'{at}: {name.bound} is imported twice, differently '
                                  f'(also in code cell {names[name.bound][1].cell})')
            names[name.bound] = name, s
    missing = sorted(set(used) - bound - set(names) - _PREDEFINED, key=str.lower)
    if missing:
        cell, line = min(used[name] for name in missing)
        hint = ('' if names else f' (the notebook has no {MARKER} import cell: mark the cell '
                f'that imports what the saved code needs with a {MARKER} line)')
        raise ExportError(f'{where}, code cell {cell}, line {line}: the {MARKER} code uses '
                          f'{", ".join(missing)}, which no {MARKER} import provides{hint}')
    return format_imports([name for name, _ in names.values()])


# The module ----------------------------------------------------------------

def _public_names(blocks):
    names = []
    for block in blocks:
        for node in ast.parse(block).body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
                names.append(node.name)
            elif isinstance(node, ast.Assign):
                names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return [n for n in names if not n.startswith('_')]


def _all_line(names):
    """``__all__ = [...]``, wrapped to the line length."""
    lines, line = [], '__all__ = ['
    for i, name in enumerate(names):
        item = repr(name) + (', ' if i + 1 < len(names) else ']')
        if len((line + item).rstrip()) > LINE_LENGTH:
            lines.append(line.rstrip())
            line = ' ' * len('__all__ = [')
        line += item
    return '\n'.join(lines + [line if names else '__all__ = []'])


def render(export, root=ROOT):
    """The text of ``export.module`` generated from its notebook."""
    path, where = Path(root) / export.notebook, export.notebook
    saved = _marked_statements(path, where)
    blocks = [_block(s, where) for s in saved if not s.is_import]
    if not blocks:
        raise ExportError(f'{where} has no {MARKER} statement, but {export.module} '
                          'is generated from it')
    docstring = module_docstring(path, where)
    imports = module_imports(saved, where)
    header = (f'# Generated from {where} by tools/nbexport.py: do not edit.\n'
              f'# Edit the notebook\'s {MARKER} cells, then run: python tools/nbexport.py\n')
    all_line = _all_line(_public_names(blocks))
    text = (header + '"""' + docstring + '\n"""\n' + (imports + '\n\n' if imports else '') +
            all_line + '\n\n\n' + '\n\n\n'.join(blocks) + '\n')
    compile(text, export.module, 'exec')  # a broken block fails here, not at import
    return text


def _write_atomic(path, text):
    """Write ``text`` to ``path`` via a temporary file and a rename."""
    from d2l_nli.machinery.files import atomic_write
    with atomic_write(path) as f:
        f.write(text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--check', action='store_true',
                        help='do not write; exit 1 if a generated module is out of date')
    parser.add_argument('--root', type=Path, default=ROOT, help='project root')
    args = parser.parse_args(argv)
    stale = []
    try:
        for export in EXPORTS:
            text = render(export, args.root)
            path = args.root / export.module
            current = path.read_text(encoding='utf-8') if path.is_file() else ''
            if current == text:
                continue
            if args.check:
                diff = list(difflib.unified_diff(
                    current.splitlines(), text.splitlines(),
                    f'{export.module} (committed)', f'{export.module} (from {export.notebook})',
                    lineterm='', n=1))
                stale.append(f'{export.module} differs from the {MARKER} cells of '
                             f'{export.notebook}:\n' + '\n'.join(diff[:40]))
            else:
                _write_atomic(path, text)
                print(f'wrote {export.module} from {export.notebook}')
    except ExportError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    if stale:
        print('\n\n'.join(stale), file=sys.stderr)
        print('\nThe package is out of step with the notebooks. Run: python tools/nbexport.py '
              '(and never edit the generated modules by hand).', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
