"""Generate the package's copies of what the notebooks define (``#@save``).

The notebooks are the source of the classes and functions the chapter
itself defines (``SNLIBERTDataset``, ``BERTClassifier``, ...). As in
d2lbook, a line ``#@save`` in a code cell marks the statement right after it
(with its body and decorators) for the library. This tool collects those
statements, notebook by notebook, into the package modules listed in
``EXPORTS`` below, with a header naming the source notebook and a
"Defined in" back-reference added to each docstring.

    python tools/nbexport.py            # regenerate the modules
    python tools/nbexport.py --check    # exit 1 if a module differs (CI)

Edit the notebook, never the generated module: CI runs ``--check``.
"""
import argparse
import ast
import dataclasses
import difflib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = '#@save'


@dataclasses.dataclass(frozen=True)
class Export:
    """One generated module: its source notebook, docstring and imports."""
    module: str      # path relative to the project root
    notebook: str    # path relative to the project root
    docstring: str   # the module docstring (without quotes)
    imports: str     # import lines the saved code needs, package-relative


EXPORTS = (
    Export(
        module='d2l_nli/snli_bert.py',
        notebook='notebooks/02_snli_dataset_for_bert.ipynb',
        docstring=(
            'SNLI pairs as BERT inputs: the chapter\'s ``SNLIBERTDataset``.\n\n'
            'Each pair becomes ``<cls> premise <sep> hypothesis <sep>`` with segment\n'
            'ids 0 then 1, truncated to ``max_len`` and padded per batch. The token\n'
            'ids are looked up in bulk, in the calling process (the book\'s\n'
            '``multiprocessing.Pool`` hangs in notebooks on Windows and macOS), and\n'
            'kept ragged: one flat array per side, laid out batch by batch.'),
        imports=(
            'import collections\n'
            'import itertools\n\n'
            'import numpy as onp\n'
            'from mxnet import gluon\n\n'
            'from .loader import BatchLoader\n'
            'from .text import TRUNCATION_STRATEGIES, Vocab\n'
            'from .wiki import RESERVED_TOKENS')),
    Export(
        module='d2l_nli/classifier.py',
        notebook='notebooks/03_finetuning_bert.ipynb',
        docstring=(
            'Fine-tuning BERT for NLI: the chapter\'s ``BERTClassifier`` and predictions.\n\n'
            'The classifier reads the encoder\'s output at ``<cls>`` through an MLP\n'
            '(Dense 256 relu, Dense 3) and holds only the pretrained encoder, so the\n'
            'Trainer sees exactly the parameters that receive a gradient.'),
        imports=(
            'from mxnet import np, npx\n'
            'from mxnet.gluon import nn\n'
            'from mxnet.util import use_np\n\n'
            'from .snli import LABEL_NAMES\n'
            'from .text import get_tokens_and_segments, tokenize_sentence, truncate_pair')),
)


class ExportError(Exception):
    """A notebook cannot be exported; the message names the cell and line."""


def code_cells(notebook_path):
    """``(cell number, source)`` of each code cell (numbered from 1, as Jupyter shows)."""
    try:
        nb = json.loads(Path(notebook_path).read_text(encoding='utf-8'))
    except (OSError, ValueError) as err:
        raise ExportError(f'{notebook_path}: cannot read the notebook: {err}') from None
    number = 0
    for cell in nb.get('cells', []):
        if cell.get('cell_type') != 'code':
            continue
        number += 1
        source = cell.get('source', '')
        yield number, ''.join(source) if isinstance(source, list) else source


def _parseable(source):
    """The cell with IPython-only lines (``%magic``, ``!shell``) blanked, same line numbers."""
    return '\n'.join('' if line.lstrip().startswith(('%', '!')) else line
                     for line in source.split('\n'))


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


def saved_blocks(notebook_path, where):
    """Source of every statement marked ``#@save``, in notebook order."""
    blocks = []
    for number, source in code_cells(notebook_path):
        lines = source.split('\n')
        markers = [i + 1 for i, line in enumerate(lines) if line.strip() == MARKER]
        if not markers:
            continue
        try:
            tree = ast.parse(_parseable(source))
        except SyntaxError as err:
            raise ExportError(f'{notebook_path}, code cell {number}, line {err.lineno}: '
                              f'cannot parse it: {err.msg}') from None
        for marker in markers:
            after = [n for n in tree.body if n.lineno > marker]
            if not after:
                raise ExportError(f'{notebook_path}, code cell {number}, line {marker}: '
                                  f'{MARKER} is not followed by a statement')
            node = after[0]
            first = min([node.lineno] + [d.lineno for d in getattr(node, 'decorator_list', [])])
            block = lines[first - 1:node.end_lineno]
            blocks.append('\n'.join(_with_back_reference(block, node, first, where)).rstrip())
    return blocks


def _public_names(blocks):
    names = []
    for block in blocks:
        for node in ast.parse(block).body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
                names.append(node.name)
            elif isinstance(node, ast.Assign):
                names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return [n for n in names if not n.startswith('_')]


def render(export, root=ROOT):
    """The text of ``export.module`` generated from its notebook."""
    blocks = saved_blocks(Path(root) / export.notebook, export.notebook)
    if not blocks:
        raise ExportError(f'{export.notebook} has no {MARKER} statement, but {export.module} '
                          'is generated from it')
    header = (f'# Generated from {export.notebook} by tools/nbexport.py: do not edit.\n'
              f'# Edit the notebook\'s {MARKER} cells, then run: python tools/nbexport.py\n')
    all_line = '__all__ = [' + ', '.join(repr(n) for n in _public_names(blocks)) + ']'
    text = (header + '"""' + export.docstring + '\n"""\n' + export.imports + '\n\n' +
            all_line + '\n\n\n' + '\n\n\n'.join(blocks) + '\n')
    compile(text, export.module, 'exec')  # a broken block fails here, not at import
    return text


def _write_atomic(path, text):
    """Write ``text`` to ``path`` via a temporary file and a rename."""
    from d2l_nli.fileio import atomic_write
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
