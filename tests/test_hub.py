"""The data hub: data folder, downloads from a real local HTTP server, extraction.

Every network test talks to a server on 127.0.0.1 started by the test and
named by D2L_NLI_MIRROR; the archive's official URLs are removed, so nothing
ever leaves the machine.
"""
import dataclasses
import hashlib
import io
import zipfile

import pytest

import d2l_nli
from d2l_nli import DATA_HUB, DownloadError, download, download_extract, get_data_dir, read_snli
from d2l_nli.machinery.hub import extract_archive


def _zip(members):
    """Zip bytes holding ``members``: {name: bytes}, or ZipInfo -> bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _snli_zip(demo_root):
    folder = demo_root / 'snli_1.0'
    members = {f'snli_1.0/{p.name}': p.read_bytes() for p in sorted(folder.iterdir())}
    members['__MACOSX/snli_1.0/._snli_1.0_dev.txt'] = b'resource fork'
    return _zip(members)


@pytest.fixture
def hub(monkeypatch, tmp_path, http_server):
    """Point the hub at the local server and an empty data folder.

    Returns a function registering the archive the hub will expect for SNLI.
    """
    monkeypatch.setenv('D2L_NLI_MIRROR', http_server.url + '/mirror/')
    monkeypatch.setenv('D2L_NLI_DATA', str(tmp_path / 'data'))

    def expect(body):
        sha1 = hashlib.sha1(body).hexdigest()
        monkeypatch.setitem(DATA_HUB, 'SNLI', dataclasses.replace(
            DATA_HUB['SNLI'], sha1=sha1, urls=()))
        return sha1
    return expect


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob('*')) if folder.exists() else []


def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv('D2L_NLI_DATA', str(tmp_path / 'a'))
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'cache'))
    assert get_data_dir() == tmp_path / 'a'
    assert get_data_dir(tmp_path / 'b') == tmp_path / 'b'
    monkeypatch.delenv('D2L_NLI_DATA')
    assert get_data_dir() == tmp_path / 'cache' / 'd2l_nli'
    monkeypatch.delenv('XDG_CACHE_HOME')
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    assert get_data_dir() == tmp_path / 'home' / '.cache' / 'd2l_nli'


def test_extracted_layout_counts_as_present_without_network(monkeypatch, demo_root):
    import pooch

    def no_network(*args, **kwargs):
        raise AssertionError('the network was touched')
    monkeypatch.setattr(pooch, 'retrieve', no_network)
    monkeypatch.setenv('D2L_NLI_DATA', str(demo_root))
    assert download_extract('SNLI') == demo_root / 'snli_1.0'
    assert download_extract('wikitext-2', 'wikitext-2') == demo_root / 'wikitext-2'


def test_good_archive_from_the_mirror(hub, http_server, demo_root, tmp_path):
    body = _snli_zip(demo_root)
    hub(body)
    http_server.routes['/mirror/snli_1.0.zip'] = (200, body, None)
    folder = download_extract('SNLI', retries=1)
    assert folder == tmp_path / 'data' / 'snli_1.0'
    assert read_snli(folder, split='dev') == read_snli(demo_root / 'snli_1.0', split='dev')
    assert _files(tmp_path / 'data') == ['snli_1.0', 'snli_1.0.zip'] + [
        f'snli_1.0/snli_1.0_{s}.{e}' for s in ('dev', 'test', 'train') for e in ('jsonl', 'txt')]
    # A second call finds the folder and asks nothing.
    download_extract('SNLI', retries=1)
    assert http_server.requests == ['/mirror/snli_1.0.zip']


def test_mirrors_are_tried_in_order(hub, http_server, demo_root, monkeypatch):
    body = _snli_zip(demo_root)
    sha1 = hub(body)
    monkeypatch.setitem(DATA_HUB, 'SNLI', dataclasses.replace(
        DATA_HUB['SNLI'], sha1=sha1,
        urls=(http_server.url + '/gone/snli_1.0.zip', http_server.url + '/ok/snli_1.0.zip')))
    http_server.routes['/ok/snli_1.0.zip'] = (200, body, None)
    download('SNLI', retries=1)
    assert http_server.requests == ['/mirror/snli_1.0.zip', '/gone/snli_1.0.zip',
                                    '/ok/snli_1.0.zip']


def _assert_nothing_trusted(tmp_path):
    data = tmp_path / 'data'
    leftovers = _files(data)
    assert 'snli_1.0.zip' not in leftovers and 'snli_1.0' not in leftovers, leftovers
    assert not [f for f in leftovers if not f.endswith('.sha1-mismatch')], leftovers


@pytest.mark.parametrize('status', [403, 404, 500])
def test_http_errors(hub, http_server, demo_root, tmp_path, status):
    sha1 = hub(_snli_zip(demo_root))
    http_server.routes['/mirror/snli_1.0.zip'] = (status, b'<html>error page</html>', None)
    with pytest.raises(DownloadError) as err:
        download_extract('SNLI', retries=2)
    message = str(err.value)
    assert f'{http_server.url}/mirror/snli_1.0.zip: HTTP {status}' in message
    assert sha1 in message and str(tmp_path / 'data' / 'snli_1.0.zip') in message
    assert 'snli_1.0_train.txt' in message
    # Client errors are final; server errors are retried.
    assert len(http_server.requests) == (2 if status == 500 else 1)
    _assert_nothing_trusted(tmp_path)


def test_sha1_mismatch(hub, http_server, demo_root, tmp_path):
    hub(_snli_zip(demo_root))
    http_server.routes['/mirror/snli_1.0.zip'] = (200, _zip({'snli_1.0/x.txt': b'other'}), None)
    with pytest.raises(DownloadError, match='wrong SHA-1'):
        download_extract('SNLI', retries=2)
    _assert_nothing_trusted(tmp_path)


def test_body_cut_short(hub, http_server, demo_root, tmp_path):
    body = _snli_zip(demo_root)
    hub(body)
    http_server.routes['/mirror/snli_1.0.zip'] = (200, body, len(body) // 2)
    with pytest.raises(DownloadError, match='snli_1.0.zip: '):
        download_extract('SNLI', retries=2)
    assert len(http_server.requests) == 2  # a broken connection is retried
    _assert_nothing_trusted(tmp_path)


def _symlink_member():
    info = zipfile.ZipInfo('snli_1.0/link')
    info.external_attr = 0o120777 << 16
    return info


@pytest.mark.parametrize('bad_name, message', [
    ('../evil.txt', 'path leaves the data folder'),
    ('snli_1.0/../../evil.txt', 'path leaves the data folder'),
    ('/etc/evil.txt', 'path leaves the data folder'),
    (None, 'symbolic link'),
])
def test_hostile_members_are_refused(hub, http_server, demo_root, tmp_path, bad_name, message):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as zf:
        zf.writestr('snli_1.0/snli_1.0_train.txt', b'fine')
        zf.writestr(bad_name if bad_name else _symlink_member(), b'/etc/passwd')
    body = buf.getvalue()
    hub(body)  # the archive's SHA-1 matches: only extraction can catch it
    http_server.routes['/mirror/snli_1.0.zip'] = (200, body, None)
    with pytest.raises(DownloadError, match=message):
        download_extract('SNLI', retries=1)
    assert not (tmp_path / 'data' / 'snli_1.0').exists()
    assert not (tmp_path / 'evil.txt').exists() and not (tmp_path / 'data' / 'evil.txt').exists()
    assert [f for f in _files(tmp_path / 'data') if f != 'snli_1.0.zip'] == []


def test_wrong_local_archive_is_moved_aside_not_deleted(hub, http_server, demo_root, tmp_path):
    body = _snli_zip(demo_root)
    hub(body)
    (tmp_path / 'data').mkdir()
    (tmp_path / 'data' / 'snli_1.0.zip').write_bytes(b'<html>proxy error</html>')
    http_server.routes['/mirror/snli_1.0.zip'] = (200, body, None)
    with pytest.warns(UserWarning, match='wrong SHA-1'):
        download_extract('SNLI', retries=1)
    aside = tmp_path / 'data' / 'snli_1.0.zip.sha1-mismatch'
    assert aside.read_bytes() == b'<html>proxy error</html>'


def test_extraction_fills_in_missing_files_and_never_overwrites(demo_root, tmp_path):
    archive = tmp_path / 'snli_1.0.zip'
    archive.write_bytes(_snli_zip(demo_root))
    (tmp_path / 'snli_1.0').mkdir()
    (tmp_path / 'snli_1.0' / 'snli_1.0_dev.txt').write_text('my own edits')
    extract_archive(archive, tmp_path, 'snli_1.0')
    assert (tmp_path / 'snli_1.0' / 'snli_1.0_dev.txt').read_text() == 'my own edits'
    assert (tmp_path / 'snli_1.0' / 'snli_1.0_train.txt').is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.extract-')]


def test_extraction_refuses_bad_archives(tmp_path):
    bad = tmp_path / 'bad.zip'
    bad.write_bytes(b'<html>Access denied</html>')
    with pytest.raises(DownloadError, match='not a zip archive'):
        extract_archive(bad, tmp_path, 'snli_1.0')
    other = tmp_path / 'other.zip'
    other.write_bytes(_zip({'something/else.txt': b'x'}))
    with pytest.raises(DownloadError, match='has no snli_1.0/ folder'):
        extract_archive(other, tmp_path, 'snli_1.0')
    big = tmp_path / 'big.zip'
    big.write_bytes(_zip({'snli_1.0/a.txt': b'0' * 10_000}))
    with pytest.raises(DownloadError, match='extracts to more than 1,000 bytes'):
        extract_archive(big, tmp_path, 'snli_1.0', max_bytes=1000)


def test_unknown_dataset_name():
    with pytest.raises(KeyError, match='knows'):
        d2l_nli.download('MNLI')


# ------------------------------------------------ bad input: more archives and networks

def test_an_html_page_served_as_the_zip(hub, http_server, demo_root, tmp_path):
    """A captive portal or proxy answering 200 with its own page."""
    hub(_snli_zip(demo_root))
    http_server.routes['/mirror/snli_1.0.zip'] = (200, b'<html>Please log in</html>', None)
    with pytest.raises(DownloadError, match='snli_1.0.zip: the downloaded file has the wrong '
                                            'SHA-1'):
        download_extract('SNLI', retries=1)
    _assert_nothing_trusted(tmp_path)


def _lie_about_size(body, declared):
    """The zip ``body`` with its first member's size in the central directory
    set to ``declared``."""
    at = body.index(b'PK\x01\x02') + 24  # central directory: uncompressed size
    return body[:at] + declared.to_bytes(4, 'little') + body[at + 4:]


def test_a_member_larger_than_declared_is_refused(tmp_path):
    archive = tmp_path / 'snli_1.0.zip'
    archive.write_bytes(_lie_about_size(_zip({'snli_1.0/snli_1.0_train.txt': b'0' * 100_000}),
                                        100))
    with pytest.raises(DownloadError, match="member 'snli_1.0/snli_1.0_train.txt' is damaged"):
        extract_archive(archive, tmp_path, 'snli_1.0', max_bytes=1000)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['snli_1.0.zip']


def _closed_port():
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_connection_refused_moves_on_to_the_next_mirror(hub, http_server, demo_root,
                                                        monkeypatch):
    body = _snli_zip(demo_root)
    sha1 = hub(body)
    dead = f'http://127.0.0.1:{_closed_port()}/snli_1.0.zip'
    monkeypatch.setitem(DATA_HUB, 'SNLI', dataclasses.replace(
        DATA_HUB['SNLI'], sha1=sha1, urls=(dead, http_server.url + '/ok/snli_1.0.zip')))
    http_server.routes['/ok/snli_1.0.zip'] = (200, body, None)
    assert download('SNLI', retries=1).is_file()
    monkeypatch.setitem(DATA_HUB, 'SNLI', dataclasses.replace(DATA_HUB['SNLI'], urls=(dead,)))
    monkeypatch.delenv('D2L_NLI_MIRROR')
    with pytest.raises(DownloadError, match=f'{dead}: ConnectionError'):
        download('SNLI', data_dir=demo_root.parent / 'elsewhere', retries=1)


def test_a_stalled_server_times_out(hub, http_server, demo_root, tmp_path):
    import time
    hub(_snli_zip(demo_root))
    http_server.routes['/mirror/snli_1.0.zip'] = (200, b'', 'stall')
    start = time.monotonic()
    with pytest.raises(DownloadError, match='snli_1.0.zip: (ReadTimeout|ConnectionError).*'
                                            'timed out'):
        download_extract('SNLI', retries=1, timeout=(2, 1))
    assert time.monotonic() - start < 15
    _assert_nothing_trusted(tmp_path)


_DOWNLOAD = '''
import dataclasses, sys
import d2l_nli
d2l_nli.DATA_HUB['SNLI'] = dataclasses.replace(d2l_nli.DATA_HUB['SNLI'], sha1=sys.argv[1], urls=())
print(d2l_nli.download_extract('SNLI', retries=1))
'''


def test_two_processes_downloading_at_once_end_with_one_good_copy(http_server, demo_root,
                                                                  tmp_path):
    import os
    import subprocess
    import sys

    body = _snli_zip(demo_root)
    http_server.routes['/mirror/snli_1.0.zip'] = (200, body, 'slow')
    env = dict(os.environ, D2L_NLI_MIRROR=http_server.url + '/mirror/',
               D2L_NLI_DATA=str(tmp_path / 'data'))
    procs = [subprocess.Popen([sys.executable, '-c', _DOWNLOAD, hashlib.sha1(body).hexdigest()],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert len(http_server.requests) == 2  # both downloaded, at the same time
    data = tmp_path / 'data'
    assert (hashlib.sha1((data / 'snli_1.0.zip').read_bytes()).digest()
            == hashlib.sha1(body).digest())
    assert _files(data) == ['snli_1.0', 'snli_1.0.zip'] + [
        f'snli_1.0/snli_1.0_{s}.{e}' for s in ('dev', 'test', 'train') for e in ('jsonl', 'txt')]
    assert read_snli(data / 'snli_1.0', split='dev') == read_snli(demo_root / 'snli_1.0',
                                                                  split='dev')
