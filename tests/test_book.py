"""The chapter's website: built by tools/book.py with d2lbook, then looked at in Chromium.

The Markdown conversion is tested on its own. The browser tests need
d2lbook (the ``book`` extra, also in ``test``), Playwright's Python package
and a Chromium from the system (Debian's ``chromium``; Playwright's own
download is never used); each is skipped with the reason where one is
missing.
"""
import functools
import http.server
import importlib.util
import io
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location('book', ROOT / 'tools' / 'book.py')
book = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(book)

CHROMIUM = next(filter(None, map(shutil.which, ('chromium', 'chromium-browser'))), None)
NOTEBOOK_PAGES = [p.stem for p in book.NOTEBOOKS]


def _browser_missing():
    if importlib.util.find_spec('d2lbook') is None:
        return 'd2lbook is not installed: pip install -e ".[cpu,book]"'
    if importlib.util.find_spec('playwright') is None:
        return "Playwright's Python package is not installed: pip install -e \".[cpu,test]\""
    if CHROMIUM is None:
        return 'no Chromium on PATH: apt-get install chromium (Debian/Ubuntu)'
    return None


needs_browser = pytest.mark.skipif(_browser_missing() is not None,
                                   reason=_browser_missing() or '')


# ------------------------------------------------------------------ the conversion

def test_indented_blocks_are_fenced_and_angle_words_kept():
    text = 'A pair becomes\n\n    <cls> a <sep> b <sep>\n\nwith segments.'
    fenced = book.markdown_cell(text)
    assert '```\n<cls> a <sep> b <sep>\n```' in fenced
    assert book.markdown_cell('the vector at <cls> and `<sep>`, <br> <!-- note -->') == \
        'the vector at &lt;cls&gt; and `<sep>`, <br> <!-- note -->'
    listed = '* item\n\n    continued paragraph of the item'
    assert book.fence_indented_blocks(listed) == listed  # a list's paragraph, not code


def test_links_point_to_the_sites_pages_and_slide_marks_are_broken():
    text = ('see [the data](data.md#mirrors), [results](../BENCHMARKS.md), '
            '[notebook 3](../notebooks/03_finetuning_bert.ipynb) and [d2l](https://d2l.ai/x.md)')
    assert book.markdown_cell(text) == (
        'see [the data](data.html#mirrors), [results](benchmarks.html), '
        '[notebook 3](03_finetuning_bert.html) and [d2l](https://d2l.ai/x.md)')
    assert book.markdown_cell('a gain (**+0.010**), `(**x**)`') == \
        'a gain (\u200b**+0.010**\u200b), `(**x**)`'


def test_outputs_are_kept_with_their_text_escaped():
    nb = {'cells': [
        {'cell_type': 'markdown', 'source': ['# Title']},
        {'cell_type': 'code', 'source': ['print(1)'], 'outputs': [
            {'output_type': 'stream', 'name': 'stdout', 'text': ['ln |V| = 9.9, a_b\n']},
            {'output_type': 'display_data', 'metadata': {},
             'data': {'image/svg+xml': ['<svg>', '</svg>'], 'text/plain': ['<Figure>']}}]},
        {'cell_type': 'code', 'source': [''], 'outputs': []}]}
    text = book.notebook_markdown(nb)
    head, code, out = text.split('\n\n')
    assert head == '# Title' and code == '```{.python .input}\nprint(1)\n```'
    outputs = json.loads(out.split('\n')[1])
    assert outputs[0]['text'] == 'ln \\|V\\| = 9.9, a\\_b\n'
    assert outputs[1]['data'] == {'image/svg+xml': '<svg></svg>', 'text/plain': '<Figure>'}


def test_eval_executes_the_notebooks_instead_of_reading_their_outputs(tmp_path, monkeypatch):
    path = tmp_path / '09_tiny.ipynb'
    path.write_text(json.dumps({
        'cells': [{'cell_type': 'code', 'execution_count': None, 'metadata': {},
                   'outputs': [], 'source': ['print(6 * 7)']}],
        'metadata': {'kernelspec': {'name': 'python3', 'display_name': 'Python 3',
                                    'language': 'python'}},
        'nbformat': 4, 'nbformat_minor': 4}))
    monkeypatch.setattr(book, 'NOTEBOOKS', [path])
    assert book.executed_notebooks(False)['09_tiny']['cells'][0]['outputs'] == []
    ran = book.executed_notebooks(True)['09_tiny']['cells'][0]['outputs']
    assert ran[0]['text'] == ['42\n'] or ran[0]['text'] == '42\n'
    assert json.loads(path.read_text())['cells'][0]['outputs'] == []  # the source is untouched


def test_a_missing_tool_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(book.shutil, 'which', lambda program, path=None: None)
    if importlib.util.find_spec('d2lbook') is None:
        pytest.skip('d2lbook is not installed')
    with pytest.raises(book.BookError, match='sphinx-build was not found.*pip install'):
        book.tools_env()


# ------------------------------------------------------------------ in a browser

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    """The built site, copied where a test may change it, served on 127.0.0.1."""
    result = subprocess.run([sys.executable, str(ROOT / 'tools' / 'book.py')],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    copy = tmp_path_factory.mktemp('site') / 'html'
    shutil.copytree(book.HTML, copy)
    return copy


def _serve(folder):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _figures(notebook):
    nb = json.loads((ROOT / 'notebooks' / f'{notebook}.ipynb').read_text(encoding='utf-8'))
    return sum(1 for cell in nb['cells'] for output in cell.get('outputs', [])
               if {'image/svg+xml', 'image/png'} & set(output.get('data', {})))


def _not_blank(png):
    from matplotlib.image import imread

    pixels = imread(io.BytesIO(png))[..., :3]
    return pixels.std() > 0.05 and (pixels.min(axis=-1) < 0.9).mean() > 0.05


def look_at_site(folder, screenshot_page='03_finetuning_bert'):
    """What a reader would see go wrong: ``{page: [problems]}``, empty when all is well."""
    from playwright.sync_api import sync_playwright

    server = _serve(folder)
    base = f'http://127.0.0.1:{server.server_port}/'
    problems = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=['--no-sandbox'])
            page = browser.new_page(viewport={'width': 1280, 'height': 900})
            seen = []
            page.on('console', lambda m: seen.append(f'console: {m.text}')
                    if m.type == 'error' else None)
            page.on('pageerror', lambda err: seen.append(f'script error: {err}'))
            page.on('requestfailed', lambda r: seen.append(f'failed: {r.url}'))
            page.on('response', lambda r: seen.append(f'HTTP {r.status}: {r.url}')
                    if r.status >= 400 else None)
            # Offline like a classroom: anything not on 127.0.0.1 fails. A site
            # needs no favicon; the browser's request for one is answered empty.
            page.route('**/*', lambda route: route.abort() if not route.request.url.startswith(
                base) else route.fulfill(status=204) if route.request.url.endswith(
                '/favicon.ico') else route.continue_())
            page.goto(base + 'index.html', wait_until='networkidle')
            toc = page.eval_on_selector_all(
                'div.toctree-wrapper a.reference.internal', 'els => els.map(e => e.href)')
            problems['index'] = list(seen)
            if len(toc) < len(NOTEBOOK_PAGES) + len(book.PAGES):
                problems['index'].append(f'the table of contents has {len(toc)} links')
            for url in dict.fromkeys(u.split('#')[0] for u in toc):
                seen.clear()
                name = url.rsplit('/', 1)[-1].removesuffix('.html')
                response = page.goto(url, wait_until='networkidle')
                found = list(seen)
                if response is None or response.status != 200:
                    found.append(f'the table of contents link {url} does not resolve')
                shown = page.eval_on_selector_all('img', '''els => els.filter(e =>
                    (e.getAttribute("src") || "").includes("_images/output_") &&
                    e.naturalWidth > 0 && e.getBoundingClientRect().width > 0 &&
                    e.getBoundingClientRect().height > 0).length''')
                if name in NOTEBOOK_PAGES and shown != _figures(name):
                    found.append(f'{shown} of the notebook\'s {_figures(name)} figures are shown')
                if name == screenshot_page and not _not_blank(page.screenshot()):
                    found.append('the screenshot is blank')
                math = page.locator('span.math, div.math').count()
                if math and page.locator('mjx-container').count() < math:
                    found.append(f'{math} equations, not all typeset by MathJax')
                problems[name] = found
            browser.close()
    finally:
        server.shutdown()
    return {name: found for name, found in problems.items() if found}


@needs_browser
def test_every_page_loads_cleanly_with_its_figures(site):
    assert look_at_site(site) == {}
    # The code as the notebooks show it, #@save marks included; equations typeset.
    dataset_page = (site / '02_snli_dataset_for_bert.html').read_text(encoding='utf-8')
    assert '<span class="c1">#@save</span>' in dataset_page
    assert '\\(i\\)' in (site / '05_what_bert_learned.html').read_text(encoding='utf-8')


@needs_browser
def test_a_missing_figure_is_found(site, tmp_path):
    broken = tmp_path / 'html'
    shutil.copytree(site, broken)
    figure = sorted((broken / '_images').glob('output_03_finetuning_bert_*.svg'))[0]
    figure.unlink()
    problems = look_at_site(broken)
    assert set(problems) == {'03_finetuning_bert'}
    assert any(figure.name in p for p in problems['03_finetuning_bert'])
    assert any('figures are shown' in p for p in problems['03_finetuning_bert'])
