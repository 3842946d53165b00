"""Making MXNet importable, with messages a student can act on.

Importing ``d2l_nli`` does only what must happen before MXNet loads (jobs
1-3 below, :func:`import_defaults`). Job 4, a process-wide malloc setting,
is applied by the package's entry points (:func:`process_defaults`): the
command line's ``main``, a notebook's first cell (``select_profile``) and
any training run (:func:`training_starts`), before the data is built.
``D2L_NLI_NO_DEFAULTS=1`` turns off every default the package would set
(threads, malloc): the process is then left
as you configured it. MXNet's NumPy mode (``npx.set_np()``) is not set by
the package: the notebooks call it in their first cell, as the chapter
does, and the command line in ``main``; without it the package stops with
a message that says so (:func:`require_numpy_mode`).

1. **GPU libraries.** ``mxnet-cu112`` links against the CUDA 11 runtime,
   cuBLAS, cuFFT, cuRAND, cuSOLVER, NVRTC, NVTX, cuDNN 8 and NCCL 2 but ships
   none of them. The ``gpu`` extra installs them from pip's ``nvidia-*-cu11``
   packages under ``site-packages/nvidia/<name>/lib``, a folder the dynamic
   loader does not search. We load them by path (``RTLD_GLOBAL``, in
   dependency order) so that ``import mxnet`` finds them by soname. Libraries
   that are not there are skipped: a system CUDA install may provide them.
2. **Import errors.** Known failures (no MXNet, numpy>=1.24, both MXNet
   wheels, a missing CUDA library or driver) become one clear message.
3. **CPU threads.** Unless the user set them, ``OMP_NUM_THREADS`` becomes the
   number of CPUs this process may use (at most 4: the chapter's small
   model gains nothing beyond that) and ``OMP_WAIT_POLICY`` becomes
   ``PASSIVE``. Measured on a 2-core machine (``BENCHMARKS.md``): two
   threads train ~1.4x faster than one on a quiet machine, but with
   OpenMP's default spin-waiting a run is 2x slower than that when the
   other core is busy; passive waiting gives up 10-20% on a quiet machine
   and keeps most of the speed when the other core is busy. Set
   ``D2L_NLI_THREADS=n`` (or ``OMP_NUM_THREADS``,
   ``OMP_WAIT_POLICY``, ``GOMP_SPINCOUNT`` yourself) to override. MXNet
   reads them once, when it is first imported: import ``d2l_nli`` before
   ``mxnet``. A bad ``D2L_NLI_THREADS`` is ignored at import (with a
   warning) and stops the first training run with a clear error.
4. **Memory.** glibc's malloc gives each thread that allocates its own
   arena, and MXNet's worker and OpenMP threads each keep freed buffers in
   theirs. At most two arenas (``mallopt``, glibc only; ``MALLOC_ARENA_MAX``
   overrides) keep ~250 MiB less at the small profile's pretraining
   (~1.45 against ~1.7 GiB peak) at the same speed. An earlier default, a
   fixed 1 MiB mmap threshold, kept 1.1 GiB but made pretraining ~12% slower
   (every activation was a fresh mapping to page in); set
   ``MALLOC_MMAP_THRESHOLD_=1048576`` yourself where memory is tight
   (``benchmarks/malloc.py``, BENCHMARKS.md).
"""
import ctypes
import importlib.metadata
import importlib.util
import os
import sys
import warnings
from pathlib import Path

__all__ = ['CUDA_LIBRARIES', 'preload_cuda_libraries', 'import_mxnet', 'installed_mxnet_wheels',
           'configure_threads', 'MAX_DEFAULT_THREADS', 'WAIT_POLICY', 'limit_arenas',
           'OPT_OUT', 'defaults_wanted', 'import_defaults', 'process_defaults',
           'training_starts', 'require_numpy_mode', 'user_thread_settings']

# (package folder under site-packages/nvidia, library file), dependency order.
CUDA_LIBRARIES = [
    ('cuda_runtime', 'libcudart.so.11.0'),
    ('cublas', 'libcublasLt.so.11'),
    ('cublas', 'libcublas.so.11'),
    ('cufft', 'libcufft.so.10'),
    ('curand', 'libcurand.so.10'),
    ('cusolver', 'libcusolver.so.11'),
    ('cuda_nvrtc', 'libnvrtc.so.11.2'),
    ('nvtx', 'libnvToolsExt.so.1'),
    ('cudnn', 'libcudnn.so.8'),
    ('nccl', 'libnccl.so.2'),
]
_INSTALL_CPU = 'pip install -e ".[cpu]"  (from the d2l-nli folder)'
_INSTALL_GPU = 'pip install -e ".[gpu]"  (from the d2l-nli folder)'


MAX_DEFAULT_THREADS = 4
WAIT_POLICY = 'PASSIVE'  # idle OpenMP threads sleep instead of spinning
OPT_OUT = 'D2L_NLI_NO_DEFAULTS'
# Settings found bad at import, where raising would break ``import d2l_nli``;
# training_starts() raises the first of them.
_deferred_errors = []
_THREAD_VARIABLES = ('D2L_NLI_THREADS', 'OMP_NUM_THREADS', 'OMP_WAIT_POLICY', 'GOMP_SPINCOUNT',
                     OPT_OUT)
_user_threads = {}  # those of _THREAD_VARIABLES set before the package's defaults


def user_thread_settings():
    """The thread variables the user had set before ``import d2l_nli`` applied its defaults."""
    return dict(_user_threads)


def defaults_wanted(environ=None):
    """False when ``D2L_NLI_NO_DEFAULTS`` is set to 1 (true, yes, on)."""
    env = os.environ if environ is None else environ
    return env.get(OPT_OUT, '').strip().lower() not in ('1', 'true', 'yes', 'on')


def _available_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def configure_threads(environ=None):
    """Set the thread defaults described above in ``environ`` (``os.environ``).

    Returns the settings in effect, e.g. ``{'OMP_NUM_THREADS': '2',
    'OMP_WAIT_POLICY': 'PASSIVE'}``. Values the user set are left alone.
    ``D2L_NLI_THREADS`` must be a positive integer.
    """
    env = os.environ if environ is None else environ
    before = dict(env)
    wanted = env.get('D2L_NLI_THREADS')
    if wanted is not None:
        if not wanted.strip().isdigit() or int(wanted) < 1:
            raise ValueError(f'D2L_NLI_THREADS={wanted!r}: expected a positive whole number '
                             'of threads, e.g. D2L_NLI_THREADS=2')
        env['OMP_NUM_THREADS'] = str(int(wanted))
    env.setdefault('OMP_NUM_THREADS', str(min(_available_cpus(), MAX_DEFAULT_THREADS)))
    if 'OMP_WAIT_POLICY' not in env and 'GOMP_SPINCOUNT' not in env:
        env['OMP_WAIT_POLICY'] = WAIT_POLICY
    changed = any(env.get(k) != before.get(k) for k in ('OMP_NUM_THREADS', 'OMP_WAIT_POLICY'))
    if changed and environ is None and sys.modules.get('mxnet') is not None:
        warnings.warn('mxnet was imported before d2l_nli, so the thread settings '
                      f'(OMP_NUM_THREADS={env["OMP_NUM_THREADS"]}) may not apply: '
                      'import d2l_nli first, or set OMP_NUM_THREADS yourself.', stacklevel=3)
    return {k: env[k] for k in ('OMP_NUM_THREADS', 'OMP_WAIT_POLICY', 'GOMP_SPINCOUNT')
            if k in env}


MAX_ARENAS = 2  # malloc arenas, at most (measured: see the module docstring)
_M_ARENA_MAX = -8  # mallopt's parameter number (glibc malloc.h)


def import_defaults():
    """What ``import d2l_nli`` does before MXNet loads; returns the thread settings.

    Loads pip's CUDA libraries for a GPU wheel and sets the thread defaults
    (unless ``D2L_NLI_NO_DEFAULTS=1``). A bad ``D2L_NLI_THREADS`` does not
    break the import: it is reported by a warning now and by
    :func:`training_starts`, and the default thread count is used.
    """
    preload_cuda_libraries()
    _user_threads.update({k: os.environ[k] for k in _THREAD_VARIABLES if k in os.environ})
    if not defaults_wanted():
        return {}
    try:
        return configure_threads()
    except ValueError as err:
        _deferred_errors.append(str(err))
        warnings.warn(f'{err}. It is ignored (the default thread count is used), and '
                      'training stops until it is fixed.', stacklevel=3)
        saved = os.environ.pop('D2L_NLI_THREADS')
        try:
            return configure_threads()
        finally:
            os.environ['D2L_NLI_THREADS'] = saved


def require_numpy_mode(what):
    """Stop with a clear error unless MXNet is in NumPy mode (``npx.set_np()``)."""
    from mxnet import util

    if not (util.is_np_array() and util.is_np_shape()):
        from ..errors import D2LNLIError
        raise D2LNLIError(f'{what} needs MXNet\'s NumPy mode, as the chapter\'s code does. '
                          'Run "from mxnet import npx; npx.set_np()" first (the notebooks '
                          'do it in their first cell).')


def process_defaults():
    """Job 4 (at most two malloc arenas), unless ``D2L_NLI_NO_DEFAULTS=1``; True if set.

    Done before the datasets are built and any training thread allocates:
    arenas that already exist stay.
    """
    return defaults_wanted() and limit_arenas()


def training_starts(what='training'):
    """Checks and process-wide settings for a training run, when it starts.

    Raises a bad setting found at import, requires NumPy mode, and applies
    :func:`process_defaults` (a no-op when an entry point already did).
    """
    if _deferred_errors:
        from ..errors import D2LNLIError
        raise D2LNLIError(_deferred_errors[0])
    require_numpy_mode(what)
    process_defaults()


def limit_arenas():
    """At most :data:`MAX_ARENAS` glibc malloc arenas (see the module docstring); True if set.

    Arenas that exist stay, and glibc fixes its limit the first time a thread
    needs a new arena once more than 8 exist: so it is set at start-up,
    before training starts threads. ``MALLOC_ARENA_MAX`` or an ``arena_max``
    in ``GLIBC_TUNABLES`` is the user's own setting, left alone.
    """
    own = 'MALLOC_ARENA_MAX' in os.environ or 'arena_max' in os.environ.get('GLIBC_TUNABLES', '')
    if own or not sys.platform.startswith('linux'):
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_ARENA_MAX, MAX_ARENAS))
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to do
        return False


def installed_mxnet_wheels():
    """Names of the installed distributions that provide the ``mxnet`` package."""
    names = []
    for dist in importlib.metadata.distributions():
        name = (dist.metadata['Name'] or '').lower()
        if name == 'mxnet' or name.startswith('mxnet-'):
            names.append(name)
    return sorted(set(names))


def _nvidia_folders():
    spec = importlib.util.find_spec('nvidia')
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(p) for p in spec.submodule_search_locations]


def preload_cuda_libraries():
    """Load pip's CUDA 11 libraries for a GPU build of MXNet; returns their paths.

    Does nothing (returns ``[]``) unless a ``mxnet-cu*`` wheel is installed.
    """
    if not any(name.startswith('mxnet-cu') for name in installed_mxnet_wheels()):
        return []
    folders = _nvidia_folders()
    loaded = []
    for package, library in CUDA_LIBRARIES:
        for folder in folders:
            path = folder / package / 'lib' / library
            if path.is_file():
                ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
                loaded.append(path)
                break
    if any(p.name == 'libcudnn.so.8' for p in loaded):
        # MXNet 1.9.1 was built against cuDNN 8.1; pip's newer 8.x is
        # compatible, so its "cuDNN lib mismatch" warning is only noise.
        os.environ.setdefault('MXNET_CUDNN_LIB_CHECKING', '0')
    return loaded


def _fail(message):
    raise ImportError('d2l_nli cannot use MXNet: ' + message) from None


def import_mxnet():
    """Import and return ``mxnet``, turning known failures into clear errors."""
    if sys.modules.get('mxnet') is not None:
        return sys.modules['mxnet']
    if sys.version_info >= (3, 12):
        _fail(f'Python {sys.version.split()[0]} is too new; MXNet 1.9.1 needs '
              'Python 3.11 or older (numpy<1.24 has no wheels for 3.12).')
    import numpy
    major, minor = (int(x) for x in numpy.__version__.split('.')[:2])
    if (major, minor) >= (1, 24):
        _fail(f'numpy {numpy.__version__} is installed, but MXNet 1.9.1 needs '
              'numpy<1.24 (it uses numpy.bool, removed in 1.24). Run: '
              'pip install "numpy>=1.21,<1.24"')
    wheels = installed_mxnet_wheels()
    if len(wheels) > 1:
        _fail(f'several MXNet wheels are installed ({", ".join(wheels)}); they '
              'overwrite each other. Uninstall all of them, then install one '
              f'extra: {_INSTALL_CPU} or {_INSTALL_GPU}.')
    try:
        with warnings.catch_warnings():
            # MXNet 1.9.1 itself triggers DeprecationWarnings (distutils,
            # numpy financial functions) on import: not the user's concern.
            warnings.simplefilter('ignore', DeprecationWarning)
            import mxnet
    except ModuleNotFoundError as err:
        if err.name != 'mxnet':
            raise
        _fail(f'MXNet is not installed. Install one extra: {_INSTALL_CPU} for '
              f'the CPU, or {_INSTALL_GPU} for an NVIDIA GPU.')
    except OSError as err:
        text = str(err)
        if 'libcuda.so' in text:
            _fail(f'{wheels[0] if wheels else "mxnet"} is a GPU build, but the '
                  f'NVIDIA driver (libcuda.so.1) was not found ({text}). Install '
                  'the NVIDIA driver, or switch to the CPU build: pip uninstall '
                  f'{wheels[0] if wheels else "mxnet-cu112"}, then {_INSTALL_CPU}.')
        if '.so' in text:
            _fail(f'a library MXNet needs is missing ({text}). For the GPU build '
                  f'install the CUDA 11 libraries with {_INSTALL_GPU}; otherwise '
                  f'use the CPU build: {_INSTALL_CPU}.')
        raise
    return mxnet
