"""Choosing the devices (CPU or GPUs) to train on.

The book's ``try_gpu`` and ``try_all_gpus`` trust every GPU MXNet sees, but
``mxnet-cu112`` 1.9.1 only carries machine code for compute capabilities 5.x
to 8.x: on newer cards (Hopper, Blackwell) or older ones (Kepler) MXNet fails
later with "no kernel image is available". This module asks the CUDA runtime
for each card's compute capability (through ctypes, without running an MXNet
kernel), skips or rejects the cards MXNet cannot use with a message saying
what to do, and parses the ``--devices`` command-line option.
"""
import ctypes
import re
import warnings

import mxnet as mx

from ..errors import D2LNLIError
from . import runtime

__all__ = ['SUPPORTED_MAJOR', 'GPUNotUsableError', 'gpu_compute_capability', 'gpu_name',
           'num_gpus', 'check_gpu', 'usable_gpus', 'try_gpu', 'try_all_gpus',
           'parse_devices', 'describe_devices']

# mxnet-cu112 1.9.1 ships SASS for sm_50, 60, 70, 80 and 86 and no PTX. SASS
# runs on the same major architecture at an equal or higher minor version, so
# 5.x to 8.x (Maxwell to Ada) work; without PTX nothing can be compiled for
# 3.x or 9.0+, and no newer MXNet release exists.
SUPPORTED_MAJOR = {5, 6, 7, 8}

_CUDART = 'libcudart.so.11.0'  # the runtime mxnet-cu112 links against
_ATTR_MAJOR, _ATTR_MINOR = 75, 76  # cudaDevAttrComputeCapabilityMajor/Minor
_PROPS_BYTES = 4096  # > sizeof(cudaDeviceProp) (about 1 KB in CUDA 11)
_NAME_BYTES = 256  # cudaDeviceProp begins with char name[256]

_CPU_ADVICE = ('Run on the CPU instead: --devices cpu (command line) or devices=[mx.cpu()] '
               '(Python), and install the CPU build: '
               'pip uninstall mxnet-cu112 && pip install -e ".[cpu]"')
_SPEC_EXAMPLES = ("use 'auto', 'cpu', 'gpu', or a comma-separated list of cpu:N / gpu:N "
                  "(N = 0, 1, ...), e.g. 'gpu:0', 'gpu:0,gpu:1' or 'cpu:0,cpu:1'")
_TOKEN = re.compile(r'(cpu|gpu)(?:\s*:\s*(\d+))?', re.IGNORECASE)
_WARNED = set()  # GPU indices already warned about: one warning per process


class GPUNotUsableError(D2LNLIError, RuntimeError):
    """A requested GPU does not exist or MXNet cannot run on it."""


def _load_cudart():
    """The CUDA runtime library, or None where it is not installed (CPU setups)."""
    try:
        # Found by soname: runtime.preload_cuda_libraries() or mxnet loaded it.
        return ctypes.CDLL(_CUDART)
    except OSError:
        return None


def _check_cuda(lib, code, i, call):
    if code != 0:
        lib.cudaGetErrorString.restype = ctypes.c_char_p
        text = (lib.cudaGetErrorString(code) or b'unknown error').decode(errors='replace')
        raise GPUNotUsableError(
            f'GPU {i} cannot be queried: {call} returned CUDA error {code} ({text}). '
            'Check the NVIDIA driver with nvidia-smi, or run on the CPU: --devices cpu')


def gpu_compute_capability(i):
    """``(major, minor)`` of GPU ``i``, or None when the CUDA runtime is not installed.

    Raises :class:`GPUNotUsableError` when the runtime reports an error.
    """
    lib = _load_cudart()
    if lib is None:
        return None
    values = []
    for attr in (_ATTR_MAJOR, _ATTR_MINOR):
        value = ctypes.c_int(-1)
        _check_cuda(lib, lib.cudaDeviceGetAttribute(ctypes.pointer(value), attr, i),
                    i, 'cudaDeviceGetAttribute')
        values.append(value.value)
    return tuple(values)


def gpu_name(i):
    """Model name of GPU ``i`` (e.g. 'NVIDIA H100 80GB HBM3'), or None without CUDA runtime.

    Raises :class:`GPUNotUsableError` when the runtime reports an error.
    """
    lib = _load_cudart()
    if lib is None:
        return None
    props = ctypes.create_string_buffer(_PROPS_BYTES)
    _check_cuda(lib, lib.cudaGetDeviceProperties(props, i), i, 'cudaGetDeviceProperties')
    return props.raw[:_NAME_BYTES].split(b'\0', 1)[0].decode(errors='replace')


def num_gpus():
    """Number of GPUs MXNet sees; 0 on the CPU build or when the driver is broken."""
    try:
        return mx.context.num_gpus()
    except mx.base.MXNetError:
        return 0


def _arch_problem(i):
    """Why MXNet cannot run on GPU ``i`` (a sentence), or None if it can or we cannot tell."""
    capability = gpu_compute_capability(i)
    # Unknown capability: let MXNet try, it reports its own errors.
    if capability is None or capability[0] in SUPPORTED_MAJOR:
        return None
    try:
        name = gpu_name(i) or 'unknown model'
    except GPUNotUsableError:
        name = 'unknown model'
    return (f'GPU {i} ({name}, compute capability {capability[0]}.{capability[1]}) '
            'cannot be used: mxnet-cu112 1.9.1 has GPU code for compute capabilities '
            '5.x to 8.x only (Maxwell to Ada), and no newer MXNet exists.')


def _no_such_gpu(i, count):
    if count == 0:
        wheels = runtime.installed_mxnet_wheels()
        if any(w.startswith('mxnet-cu') for w in wheels):
            why = 'the GPU build is installed, so check the NVIDIA driver with nvidia-smi'
        else:
            why = 'the CPU build of MXNet is installed; it has no GPU support'
        return GPUNotUsableError(f'GPU {i} requested but no GPU found ({why}). '
                                 'Use --devices cpu (command line) or devices=[mx.cpu()].')
    found = '1 GPU' if count == 1 else f'{count} GPUs'
    return GPUNotUsableError(f'GPU {i} requested but only {found} found '
                             f'(gpu:0 to gpu:{count - 1}). Pick one of those, or use '
                             '--devices cpu.')


def check_gpu(i):
    """Return ``mx.gpu(i)`` if it exists and MXNet can run on it, else raise.

    Raises :class:`GPUNotUsableError` naming the card and what to do instead.
    """
    count = num_gpus()
    if not 0 <= i < count:
        raise _no_such_gpu(i, count)
    problem = _arch_problem(i)
    if problem:
        raise GPUNotUsableError(f'{problem} Choose a GPU of compute capability 5.x to 8.x, '
                                f'or: {_CPU_ADVICE}')
    return mx.gpu(i)


def usable_gpus():
    """Indices of the GPUs MXNet can run on; warns once per process about each other one."""
    usable = []
    for i in range(num_gpus()):
        try:
            problem = _arch_problem(i)
        except GPUNotUsableError as err:
            problem = str(err)
        if problem is None:
            usable.append(i)
        elif i not in _WARNED:
            _WARNED.add(i)
            warnings.warn(f'{problem} Skipping it.', RuntimeWarning, stacklevel=2)
    return usable


def try_gpu(i=0):
    """``mx.gpu(i)`` if that GPU exists and is usable, else ``mx.cpu()``."""
    return mx.gpu(i) if i in usable_gpus() else mx.cpu()


def try_all_gpus():
    """All usable GPUs, or ``[mx.cpu()]`` if there is none (never an empty list)."""
    return [mx.gpu(i) for i in usable_gpus()] or [mx.cpu()]


def _parse_token(token, spec):
    """Contexts for one comma-separated entry of ``spec`` (``gpu`` means all GPUs)."""
    match = _TOKEN.fullmatch(token)
    if match is None:
        if not token:
            raise ValueError(f'empty entry in devices {spec!r}: {_SPEC_EXAMPLES}')
        hint = ''
        glued = re.fullmatch(r'(cpu|gpu)(\d+)', token, re.IGNORECASE)
        if glued:
            hint = f" (did you mean '{glued[1].lower()}:{glued[2]}'?)"
        raise ValueError(f'bad device {token!r} in devices {spec!r}{hint}: {_SPEC_EXAMPLES}')
    kind, number = match[1].lower(), match[2]
    if kind == 'cpu':
        return [mx.cpu(int(number or 0))]
    if number is not None:
        return [mx.gpu(int(number))]
    count = num_gpus()
    if count == 0:
        raise GPUNotUsableError(f"no GPU found; use --devices cpu (devices {spec!r} asks "
                                'for all GPUs)')
    return [mx.gpu(i) for i in range(count)]


def parse_devices(spec):
    """Devices named by ``spec`` (the ``--devices`` option) as a list of ``mx.Context``.

    ``None``, ``''`` or ``'auto'``: :func:`try_all_gpus`. ``'cpu'``: ``[mx.cpu()]``.
    ``'gpu'``: every GPU. Otherwise a comma-separated list of ``cpu:N`` / ``gpu:N``
    (case and spaces do not matter). A context or list of contexts is accepted too.
    Every GPU is checked with :func:`check_gpu`; bad syntax or duplicates raise
    ``ValueError``.
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ('', 'auto')):
        return try_all_gpus()
    if isinstance(spec, mx.Context):
        devices = [spec]
    elif isinstance(spec, str):
        devices = [ctx for token in spec.split(',') for ctx in _parse_token(token.strip(), spec)]
    else:
        devices = list(spec)
        for ctx in devices:
            if not isinstance(ctx, mx.Context):
                raise TypeError(f'devices must be mx.Context objects, got {ctx!r}')
    seen = set()
    for ctx in devices:
        key = (ctx.device_type, ctx.device_id)
        if key in seen:
            raise ValueError(f'device {ctx} is listed twice in devices {spec!r}; '
                             'list each device once')
        seen.add(key)
    for ctx in devices:
        if ctx.device_type == 'gpu':
            check_gpu(ctx.device_id)
    return devices


def describe_devices(devices):
    """Devices as the book prints them, e.g. ``'[cpu(0), gpu(1)]'``."""
    return '[' + ', '.join(str(ctx) for ctx in devices) + ']'
