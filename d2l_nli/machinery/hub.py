"""Where the data lives and how it gets there: the data hub.

``DATA_HUB`` names the two official archives with their SHA-1 and a list of
mirrors. :func:`download_extract` returns the extracted folder and touches
the network only when that folder is missing:

1. ``<data dir>/<folder>`` already holding the archive's files (extracted by
   hand, or a read-only shared copy) counts as present: nothing is fetched.
2. Otherwise ``<data dir>/<archive>`` is used if its SHA-1 is right, else it
   is downloaded: from ``$D2L_NLI_MIRROR/<archive>`` first (a teacher's local
   server), then from each official mirror in order.
3. The archive is extracted only inside the data folder (absolute, ``..``
   and link members are refused) into a temporary folder, then renamed into
   place, so an interrupted run never leaves a half-extracted copy behind.

The data folder is ``$D2L_NLI_DATA``, else ``$XDG_CACHE_HOME/d2l_nli``, else
the platform's cache folder (``~/.cache/d2l_nli`` on Linux).

Downloading itself is ``pooch``'s job (hash-checked, written to a temporary
file and moved into place only once verified, with HTTP status checks and
timeouts). What pooch does not do is written here: trying mirrors in order,
one clear message when all fail, and the extraction safety checks.
"""
import dataclasses
import hashlib
import logging
import os
import shutil
import socket
import stat
import sys
import tempfile
import time
import warnings
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from ..errors import DownloadError

__all__ = ['Archive', 'DATA_HUB', 'get_data_dir', 'download', 'download_extract',
           'extract_archive', 'MAX_EXTRACT_BYTES', 'file_sha1', 'offline', 'answers',
           'extracted']

# Archives larger than this when extracted are refused (SNLI is ~0.5 GB):
# a guard against "zip bombs" from a compromised mirror.
MAX_EXTRACT_BYTES = 4 * 2**30


@dataclasses.dataclass(frozen=True)
class Archive:
    """One downloadable archive: where to get it and what it extracts to."""
    file_name: str           # official file name, also used on D2L_NLI_MIRROR
    sha1: str
    urls: tuple              # official mirrors, tried in order
    folder: str              # top-level folder inside the archive
    markers: tuple           # files in ``folder`` whose presence means "extracted"


DATA_HUB = {
    'SNLI': Archive(
        file_name='snli_1.0.zip',
        sha1='9fcde07509c7e87ec61c640c1b2753d9041758e4',
        urls=('https://nlp.stanford.edu/projects/snli/snli_1.0.zip',),
        folder='snli_1.0',
        markers=('snli_1.0_train.txt',)),
    'wikitext-2': Archive(
        file_name='wikitext-2-v1.zip',
        sha1='3c914d17d80b1459be871a5039ac23e752a53cbe',
        # The address the book used answers 403 since 2023; it stays last in
        # case it comes back.
        urls=('https://wikitext.smerity.com/wikitext-2-v1.zip',
              'https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip'),
        folder='wikitext-2',
        markers=('wiki.train.tokens',)),
}


def get_data_dir(data_dir=None):
    """The data folder: ``data_dir`` if given, else from the environment."""
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get('D2L_NLI_DATA'):
        return Path(os.environ['D2L_NLI_DATA']).expanduser()
    if os.environ.get('XDG_CACHE_HOME'):
        return Path(os.environ['XDG_CACHE_HOME']) / 'd2l_nli'
    import platformdirs
    return Path(platformdirs.user_cache_dir('d2l_nli', appauthor=False))


def _archive(name):
    if name not in DATA_HUB:
        raise KeyError(f'unknown dataset {name!r}; the data hub knows {sorted(DATA_HUB)}')
    return DATA_HUB[name]


def file_sha1(path):
    """The SHA-1 of the file at ``path``, as hex (read 1 MiB at a time)."""
    digest = hashlib.sha1()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def offline():
    """Whether ``D2L_NLI_OFFLINE`` asks for no network at all."""
    return os.environ.get('D2L_NLI_OFFLINE', '').strip().lower() in ('1', 'true', 'yes', 'on')


def answers(url, timeout):
    """Whether the server of ``url`` accepts a connection within ``timeout`` seconds."""
    parts = urlsplit(url)
    try:
        with socket.create_connection(
                (parts.hostname, parts.port or (443 if parts.scheme == 'https' else 80)),
                timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def extracted(root, name):
    """Whether archive ``name`` of :data:`DATA_HUB` is extracted under the folder ``root``."""
    archive = DATA_HUB[name]
    return all((Path(root) / archive.folder / m).is_file() for m in archive.markers)


def mirror_urls(archive):
    urls = list(archive.urls)
    base = os.environ.get('D2L_NLI_MIRROR', '').strip()
    if base:
        # Only web addresses: pooch would also follow ftp://, sftp:// and doi:
        # names, which are not what a classroom mirror is.
        if not base.lower().startswith(('http://', 'https://')):
            raise DownloadError(f'D2L_NLI_MIRROR={base!r} is not an http:// or https:// '
                                'address; set it to the web server holding the archives '
                                '(for example http://192.168.1.10:8000/) or unset it')
        urls.insert(0, base.rstrip('/') + '/' + archive.file_name)
    return urls


def _fetch(url, archive, folder, retries, timeout):
    """Download one URL with pooch; returns None or the reason it failed."""
    import pooch
    import requests

    downloader = pooch.HTTPDownloader(timeout=timeout, progressbar=sys.stderr.isatty())
    reason = None
    for attempt in range(retries):
        try:
            pooch.retrieve(url, known_hash=f'sha1:{archive.sha1}', fname=archive.file_name,
                           path=folder, downloader=downloader)
            return None
        except requests.HTTPError as err:
            status = err.response.status_code if err.response is not None else '?'
            reason = f'HTTP {status}'
            if isinstance(status, int) and 400 <= status < 500:
                return reason  # the mirror does not have it: retrying will not help
        except ValueError as err:
            if 'hash' not in str(err).lower():
                raise
            # pooch already removed the bad download; a mirror serving the
            # wrong bytes will serve them again.
            return 'the downloaded file has the wrong SHA-1'
        except requests.RequestException as err:
            reason = f'{type(err).__name__}: {err}'
        if attempt + 1 < retries:
            time.sleep(min(2 ** attempt, 8))
    return reason


def download(name, data_dir=None, *, retries=3, timeout=(10, 60)):
    """Path of the verified archive ``name`` of ``DATA_HUB``, downloading it if needed.

    ``timeout`` is (connect, read) seconds per request; each mirror is tried
    ``retries`` times on network errors and server errors (5xx).
    """
    archive = _archive(name)
    folder = get_data_dir(data_dir)
    target = folder / archive.file_name
    if target.is_file():
        if file_sha1(target) == archive.sha1:
            return target
        # Keep the user's file (nothing is deleted), but never trust it.
        aside = target.with_name(target.name + '.sha1-mismatch')
        os.replace(target, aside)
        warnings.warn(f'{target} has the wrong SHA-1 (expected {archive.sha1}); '
                      f'moved it to {aside} and downloading a fresh copy')
    folder.mkdir(parents=True, exist_ok=True)
    logging.getLogger('pooch').setLevel(logging.WARNING)
    tried = []
    for url in mirror_urls(archive):
        reason = _fetch(url, archive, folder, retries, timeout)
        if reason is None:
            return target
        tried.append(f'  {url}: {reason}')
    raise DownloadError(
        f'Could not download {name} ({archive.file_name}). Tried:\n' + '\n'.join(tried) +
        f'\nExpected SHA-1: {archive.sha1}.\nWhat to do: download {archive.file_name} '
        f'yourself and put it at {target}, or put its extracted files so that '
        f'{folder / archive.folder / archive.markers[0]} exists; or set '
        'D2L_NLI_MIRROR to a server holding the archive, or D2L_NLI_DATA to a '
        'folder that already holds the data.')


def _check_member(info, archive_path):
    """Refuse members that would land outside the extraction folder."""
    name = info.filename
    path = PurePosixPath(name.replace('\\', '/'))
    if path.is_absolute() or (path.parts and ':' in path.parts[0]) or '..' in path.parts:
        raise DownloadError(f'{archive_path}: refusing to extract member {name!r}: its '
                            'path leaves the data folder. The archive is not the '
                            'official one; delete it.')
    if stat.S_ISLNK(info.external_attr >> 16):
        raise DownloadError(f'{archive_path}: refusing to extract member {name!r}: it '
                            'is a symbolic link. The archive is not the official one; '
                            'delete it.')


def _extract_member(zf, info, out, archive_path):
    """Write one member to ``out``, refusing one that is larger than it says or damaged."""
    out.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    try:
        with zf.open(info) as src, open(out, 'wb') as dst:
            for chunk in iter(lambda: src.read(1 << 20), b''):
                written += len(chunk)
                if written > info.file_size:
                    raise DownloadError(f'{archive_path}: member {info.filename!r} is larger '
                                        'than declared; refusing')
                dst.write(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError) as err:
        # zipfile stops at the declared size, then the CRC fails: a member
        # that lies about its size, or damaged bytes.
        raise DownloadError(f'{archive_path}: member {info.filename!r} is damaged ({err}); '
                            'delete the archive and download it again') from None


def extract_archive(archive_path, folder, expected_folder, max_bytes=None):
    """Extract ``archive_path`` (zip) so that ``folder/expected_folder`` holds its files.

    Files already in ``folder/expected_folder`` are kept; missing ones are
    added, each renamed into place once complete. macOS ``__MACOSX`` entries
    are skipped.
    """
    max_bytes = MAX_EXTRACT_BYTES if max_bytes is None else max_bytes
    folder = Path(folder)
    try:
        zf = zipfile.ZipFile(archive_path)
    except zipfile.BadZipFile:
        raise DownloadError(f'{archive_path} is not a zip archive (perhaps an error '
                            'page saved by a proxy); delete it and download again') from None
    with zf:
        members = [m for m in zf.infolist() if not m.filename.startswith('__MACOSX')]
        for info in members:
            _check_member(info, archive_path)
        if sum(m.file_size for m in members) > max_bytes:
            raise DownloadError(f'{archive_path}: extracts to more than {max_bytes:,} '
                                'bytes; refusing (not the official archive?)')
        prefix = expected_folder + '/'
        if not any(m.filename.startswith(prefix) for m in members):
            raise DownloadError(f'{archive_path}: has no {prefix} folder; not the '
                                'expected archive')
        tmp = Path(tempfile.mkdtemp(dir=folder, prefix='.extract-'))
        try:
            for info in members:
                if info.is_dir() or not info.filename.startswith(prefix):
                    continue
                _extract_member(zf, info, tmp / info.filename, archive_path)
            dest = folder / expected_folder
            try:
                os.rename(tmp / expected_folder, dest)
            except OSError:
                if not dest.is_dir():
                    raise
                # The folder exists (partly filled by hand, or another process
                # was faster): add what is missing, never overwrite.
                for src in sorted((tmp / expected_folder).rglob('*')):
                    target = dest / src.relative_to(tmp / expected_folder)
                    if src.is_file() and not target.exists():
                        target.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(src, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return folder / expected_folder


def download_extract(name, folder=None, *, data_dir=None, **download_kwargs):
    """Folder holding the extracted archive ``name``; downloads only if needed.

    ``folder`` is accepted for the book's signature; the folder is always
    the one the archive extracts to.
    """
    archive = _archive(name)
    root = get_data_dir(data_dir)
    if extracted(root, name):
        return root / archive.folder
    path = download(name, data_dir=root, **download_kwargs)
    extract_archive(path, root, archive.folder)
    missing = [m for m in archive.markers if not (root / archive.folder / m).is_file()]
    if missing:
        raise DownloadError(f'{path} does not contain {archive.folder}/{missing[0]}; '
                            'it is not the expected archive')
    return root / archive.folder
