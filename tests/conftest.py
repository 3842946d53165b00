"""Shared fixtures: a tiny generated corpus and a real HTTP server on 127.0.0.1.

Tests never use the real datasets: the corpus is written by the package's
demo-corpus generator in the official file formats.
"""
import http.server
import threading
import time

import pytest

import d2l_nli  # first: the thread defaults, before MXNet loads

# isort: split
from mxnet import npx

npx.set_np()  # the chapter's NumPy mode, as the notebooks and the command line set it


@pytest.fixture(scope='session')
def demo_root(tmp_path_factory):
    """Root of a tiny demo corpus: ``wikitext-2/`` and ``snli_1.0/``."""
    return d2l_nli.write_demo_corpus(tmp_path_factory.mktemp('demo'), 'tiny', seed=0)


@pytest.fixture(scope='session')
def demo_run(tmp_path_factory):
    """The README's main job, run once: ``python -m d2l_nli demo`` (about 75 s on 2 cores).

    Returns ``(data folder, CompletedProcess, metrics dict)``; the demo's
    checkpoints are in ``<data folder>/demo-demo-v1-seed0/checkpoints``.
    """
    import json
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp('demo-run')
    metrics = folder / 'metrics.json'
    result = subprocess.run([sys.executable, '-m', 'd2l_nli', 'demo', '--data-dir', str(folder),
                             '--metrics-json', str(metrics)],
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stderr
    return folder, result, json.loads(metrics.read_text())


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        server = self.server
        server.requests.append(self.path)
        status, body, cut = server.routes.get(self.path, (404, b'not found', None))
        if cut == 'stall':  # accept the request, never answer (until the test ends)
            server.stop.wait(60)
            return
        self.send_response(status)
        self.send_header('Content-Type', 'application/zip' if status == 200 else 'text/html')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        # A "cut" route announces the whole body but sends only part of it,
        # then drops the connection, as a broken proxy would.
        if cut == 'slow':  # the whole body, in small pieces over about three seconds
            for i in range(0, len(body), max(1, len(body) // 50)):
                self.wfile.write(body[i:i + max(1, len(body) // 50)])
                self.wfile.flush()
                time.sleep(0.06)
            return
        self.wfile.write(body[:cut] if cut is not None else body)
        if cut is not None:
            self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    """A server on 127.0.0.1; set ``server.routes[path] = (status, body, cut)``.

    ``cut``: None (send it all), a byte count (send that much, then drop the
    connection), ``'slow'`` (send it all over about three seconds) or
    ``'stall'`` (never answer).
    """
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    server.daemon_threads, server.block_on_close = True, False
    server.routes, server.requests, server.stop = {}, [], threading.Event()
    server.url = f'http://127.0.0.1:{server.server_address[1]}'
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.stop.set()
    server.shutdown()
    server.server_close()
