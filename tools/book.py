"""Build the chapter's website with d2lbook: ``book/_build/html``.

    python tools/book.py           # from the committed, executed notebooks (no training)
    python tools/book.py --eval    # re-execute the notebooks first (as tools/nbrun.py does)

d2lbook reads only its own Markdown, so the notebooks, which are this
project's source, are converted first, into ``book/_build/src`` (never
committed): each markdown cell as it is, each code cell as a
``{.python .input}`` block followed by its saved outputs as a
``{.json .output}`` block, which d2lbook keeps as the cell's outputs
(``eval_notebook = False`` in ``book/config.ini``: nothing runs). The
``docs/`` pages and ``BENCHMARKS.md`` join them, and ``book/index.md``
holds the table of contents. Five things are adjusted on the way, each
for a reason found by building:

* indented code blocks in markdown become fenced ones (d2lbook's
  Markdown reader cannot read them);
* ``<cls>`` and the like outside code become ``&lt;cls&gt;`` (pandoc would
  take them for HTML tags and drop them);
* in printed outputs, reStructuredText's markup characters are escaped
  (``ln |V|`` would be a substitution);
* links to ``*.md`` pages and notebooks point to their ``.html`` pages;
* ``(**``, ``**)`` and the like get a zero-width space (d2lbook reads them
  as slide marks and strips them).

The site loads nothing from the network: MathJax comes from
``sphinx-mathjax-offline``, and d2lbook's ``d2l.js`` (analytics, a copy
button image from GitHub, discussion embeds) and its theme's web fonts
are replaced by local ones.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BOOK = ROOT / 'book'
BUILD = BOOK / '_build'
SRC = BUILD / 'src'
HTML = BUILD / 'html'
OVERRIDES = BUILD / 'overrides'
NOTEBOOKS = sorted((ROOT / 'notebooks').glob('[0-9][0-9]_*.ipynb'))
# Pages besides the notebooks: file -> page name (book/index.md lists them).
PAGES = {**{p: p.stem for p in sorted((ROOT / 'docs').glob('*.md'))},
         ROOT / 'BENCHMARKS.md': 'benchmarks'}
IMAGES = [ROOT / 'benchmarks' / 'results' / 'tta.png']  # what the pages show
INSTALL = 'pip install -e ".[cpu,book]"  (from the project folder)'
HTML_TAGS = {'a', 'b', 'br', 'code', 'details', 'div', 'em', 'i', 'img', 'kbd', 'p', 'pre',
             'span', 'strong', 'sub', 'summary', 'sup', 'table', 'td', 'th', 'tr'}


class BookError(Exception):
    """The site cannot be built; the message says what to do."""


# ------------------------------------------------------------------ the pages as Markdown

def _outside_code(text, fix):
    """Apply ``fix`` to the parts of a Markdown text outside code fences and code spans."""
    parts = re.split(r'(```.*?```|`[^`\n]*`)', text, flags=re.S)
    return ''.join(part if i % 2 else fix(part) for i, part in enumerate(parts))


def fence_indented_blocks(text):
    """Indented code blocks (after a blank line, 4+ spaces) as fenced ones."""
    out, lines, i = [], text.split('\n'), 0
    while i < len(lines):
        line = lines[i]
        starts = (line.startswith('    ') and line.strip() and (i == 0 or not lines[i - 1].strip())
                  and not re.match(r'\s*([-*+]|\d+\.)\s', out[-2] if len(out) > 1 else ''))
        if not starts:
            out.append(line)
            i += 1
            continue
        block = []
        while i < len(lines) and (lines[i].startswith('    ') or not lines[i].strip()):
            block.append(lines[i][4:])
            i += 1
        while block and not block[-1].strip():
            block.pop()
            i -= 1
        out += ['```'] + block + ['```']
    return '\n'.join(out)


def escape_angle_words(text):
    """``<cls>`` -> ``&lt;cls&gt;`` outside code, unless it is an HTML tag or comment."""
    def fix(part):
        return re.sub(r'<(/?)([A-Za-z][\w.-]*)>',
                      lambda m: m.group(0) if m.group(2).lower() in HTML_TAGS
                      else f'&lt;{m.group(1)}{m.group(2)}&gt;', part)
    return _outside_code(text, fix)


def rewrite_links(text):
    """Links to the docs pages, BENCHMARKS.md and the notebooks, as the site's pages."""
    def page(m):
        target, anchor = m.group(2), m.group(3) or ''
        name = Path(target).stem
        if Path(target).name == 'BENCHMARKS.md':
            name = 'benchmarks'
        return f'{m.group(1)}({name}.html{anchor})'
    return re.sub(r'(\]\s*)\(((?!https?:)[^)#\s]*\.(?:md|ipynb))(#[^)\s]*)?\)', page, text)


def break_slide_marks(text):
    """``(**``, ``**]`` and the like (d2lbook's slide marks) split by a zero-width space."""
    return re.sub(r'([\[(])(\*\*|~~)|(\*\*|~~)([\])])',
                  lambda m: (f'{m.group(1)}\u200b{m.group(2)}' if m.group(1)
                             else f'{m.group(3)}\u200b{m.group(4)}'), text)


def markdown_cell(source):
    text = fence_indented_blocks(source)
    return rewrite_links(_outside_code(escape_angle_words(text), break_slide_marks))


_RST_MARKUP = re.compile(r'([\\|*`_])')


def _escaped_text(value):
    text = ''.join(value) if isinstance(value, list) else value
    return _RST_MARKUP.sub(r'\\\1', text)


def cell_outputs(outputs):
    """A code cell's outputs for d2lbook: printed text escaped for reStructuredText."""
    fixed = []
    for output in outputs:
        output = json.loads(json.dumps(output))
        if 'text' in output:
            output['text'] = _escaped_text(output['text'])
        data = output.get('data', {})
        for kind, value in data.items():
            data[kind] = ''.join(value) if isinstance(value, list) else value
        if 'text/plain' in data and len(data) == 1:
            data['text/plain'] = _escaped_text(data['text/plain'])
        fixed.append(output)
    return fixed


def notebook_markdown(nb):
    """One executed notebook (a dict) as d2lbook Markdown, its outputs kept."""
    chunks = []
    for cell in nb['cells']:
        source = ''.join(cell['source']).strip('\n')
        if cell['cell_type'] == 'markdown':
            chunks.append(markdown_cell(source))
        elif cell['cell_type'] == 'code' and source:
            chunks.append(f'```{{.python .input}}\n{source}\n```')
            if cell.get('outputs'):
                chunks.append('```{.json .output}\n'
                              + json.dumps(cell_outputs(cell['outputs']), ensure_ascii=False)
                              + '\n```')
    return '\n\n'.join(chunks) + '\n'


def page_markdown(path):
    """A docs page: links to the site's pages, ``<words>`` kept visible."""
    return markdown_cell(path.read_text(encoding='utf-8')).rstrip('\n') + '\n'


def executed_notebooks(evaluate):
    """``{page name: notebook dict}``: the committed ones, or freshly executed."""
    if evaluate:
        sys.path.insert(0, str(ROOT / 'tools'))
        from nbrun import clean, machine_paths, run
    out = {}
    for path in NOTEBOOKS:
        if evaluate:
            print(f'executing {path.name} ...', flush=True)
            nb, seconds = run(path, timeout=3600)
            errors = clean(nb, machine_paths())
            if errors:
                raise BookError(f'{path}: the run has error outputs: {errors}')
            print(f'  ran in {seconds:.0f} s')
        else:
            nb = json.loads(path.read_text(encoding='utf-8'))
        out[path.stem] = nb
    return out


def write_sources(notebooks):
    """The d2lbook source folder: index, one page per notebook and per docs page, images."""
    if SRC.exists():
        shutil.rmtree(SRC)
    SRC.mkdir(parents=True)
    shutil.copy(BOOK / 'index.md', SRC / 'index.md')
    for name, nb in notebooks.items():
        (SRC / f'{name}.md').write_text(notebook_markdown(nb), encoding='utf-8')
    for path, name in PAGES.items():
        (SRC / f'{name}.md').write_text(page_markdown(path), encoding='utf-8')
    for image in IMAGES:
        target = SRC / image.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(image, target)


# ------------------------------------------------------------------ d2lbook, offline

_COPY_ICON = ("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 24 24'"
              "%3E%3Cpath d='M16 1H4v14h2V3h10zm3 4H8v18h11zm-2 16H10V7h7z'/%3E%3C/svg%3E")


def write_overrides():
    """A ``d2l.js`` without remote scripts; Sphinx copies it over d2lbook's own."""
    from d2lbook import sphinx_template as t

    copy_button = re.sub(r'https://raw\.githubusercontent\.com/[^"\']*copy-button\.svg',
                         _COPY_ICON, t.copybutton_js)
    OVERRIDES.mkdir(parents=True, exist_ok=True)
    (OVERRIDES / 'd2l.js').write_text(
        t.shorten_sec_num + '\nfunction discourse_embed() {}\n' + copy_button + t.tabbar_js,
        encoding='utf-8')


def _without_web_fonts(css):
    """The theme's fonts.css without the @font-face rules that load from the web."""
    return re.sub(r'@font-face\s*{[^}]*//fonts\.gstatic\.com[^}]*}\s*', '', css)


def tools_env():
    """PATH with this environment's scripts and pandoc; BookError if something is missing."""
    try:
        import d2lbook  # noqa: F401
        import pypandoc
    except ImportError as err:
        raise BookError(f'{err.name} is not installed: {INSTALL}') from None
    folders = [str(Path(sys.executable).parent)]
    bundled = Path(pypandoc.__file__).parent / 'files'
    if (bundled / 'pandoc').is_file():
        folders.append(str(bundled))
    env = dict(os.environ, PATH=os.pathsep.join(folders + [os.environ.get('PATH', '')]))
    for program in ('sphinx-build', 'pandoc'):
        if not shutil.which(program, path=env['PATH']):
            raise BookError(f'{program} was not found (d2lbook runs it by name): {INSTALL}')
    return env


def build(evaluate=False):
    """Write the sources and run ``d2lbook build html``; returns the seconds it took."""
    start = time.perf_counter()
    env = tools_env()
    notebooks = executed_notebooks(evaluate)
    write_sources(notebooks)
    write_overrides()
    if HTML.exists():
        shutil.rmtree(HTML)
    shutil.rmtree(BUILD / 'work', ignore_errors=True)  # d2lbook judges by mtimes
    d2lbook = Path(sys.executable).parent / 'd2lbook'
    result = subprocess.run([str(d2lbook), 'build', 'html'], cwd=BOOK, env=env)
    if result.returncode or not (HTML / 'index.html').is_file():
        raise BookError(f'd2lbook build html failed (exit {result.returncode}); its output '
                        'is above')
    fonts = HTML / '_static' / 'fonts.css'
    if fonts.is_file():
        fonts.write_text(_without_web_fonts(fonts.read_text(encoding='utf-8')),
                         encoding='utf-8')
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--eval', action='store_true',
                        help='execute the notebooks first instead of using their saved outputs')
    args = parser.parse_args(argv)
    try:
        seconds = build(args.eval)
    except BookError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    print(f'the site is in {HTML.relative_to(ROOT)} (built in {seconds:.0f} s); open '
          f'{(HTML / "index.html").relative_to(ROOT)}, or serve it: '
          f'python -m http.server -d {HTML.relative_to(ROOT)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
