"""Writing files so that a crash never leaves a half-written one behind.

Everything the package writes (vocabularies, the demo corpus, downloads,
checkpoints) goes to a temporary name in the destination folder first and is
renamed into place only when complete: a rename within one folder is atomic,
so readers see either the old file or the whole new one.
"""
import contextlib
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ['atomic_write', 'atomic_directory']


def _umask_mode(path, full):
    """Give a temporary file/folder the mode a plain open()/mkdir() would have."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, full & ~umask)


@contextlib.contextmanager
def atomic_write(path, mode='w', encoding='utf-8'):
    """Open a temporary file next to ``path``; rename it onto ``path`` on success.

    ``mode`` is ``'w'`` (text) or ``'wb'`` (binary). On an exception the
    temporary file is removed and ``path`` is left untouched.
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f"mode must be 'w' or 'wb', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        _umask_mode(tmp, 0o666)
        kwargs = {'encoding': encoding, 'newline': ''} if mode == 'w' else {}
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_directory(path, replace=False):
    """Yield a temporary folder next to ``path``; rename it onto ``path`` on success.

    Without ``replace``, ``path`` must not exist yet (a folder that exists
    is never replaced, so nothing in it is lost), and if another process
    created ``path`` in the meantime, its copy is kept and ours discarded.
    With ``replace`` (a saved model folder), an existing ``path`` is moved
    aside, the new one renamed in, and only then the old one deleted.
    """
    path = Path(path)
    if path.exists() and not replace:
        raise FileExistsError(f'{path} already exists; not replacing it')
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp'))
    try:
        _umask_mode(tmp, 0o777)
        yield tmp
        if replace and path.exists():
            _swap_in(tmp, path)
            return
        try:
            os.rename(tmp, path)
        except OSError:
            if not path.is_dir():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(tmp, path):
    """Move the finished ``tmp`` folder onto ``path``, keeping the old one until done."""
    old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f'.{path.name}.old-'))
    try:
        os.rename(path, old / 'previous')
        os.rename(tmp, path)
    finally:
        shutil.rmtree(old, ignore_errors=True)
