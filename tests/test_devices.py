"""Choosing devices: usable GPUs by compute capability, --devices parsing.

This machine has no GPU, so GPUs are faked by monkeypatching ``num_gpus``,
``gpu_compute_capability`` and ``gpu_name`` (and, for the ctypes queries
themselves, the CUDA runtime library).
"""
import ctypes
import warnings

import mxnet as mx
import pytest

from d2l_nli.errors import D2LNLIError
from d2l_nli.machinery import devices

H100 = 'NVIDIA H100 80GB HBM3'


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    # Each test starts as a fresh process would: no GPU warned about yet.
    monkeypatch.setattr(devices, '_WARNED', set())


@pytest.fixture
def fake_gpus(monkeypatch):
    """Two GPUs: an RTX 3090 (8.6, usable) and an H100 (9.0, not usable)."""
    cards = [('NVIDIA GeForce RTX 3090', (8, 6)), (H100, (9, 0))]
    monkeypatch.setattr(devices, 'num_gpus', lambda: len(cards))
    monkeypatch.setattr(devices, 'gpu_compute_capability', lambda i: cards[i][1])
    monkeypatch.setattr(devices, 'gpu_name', lambda i: cards[i][0])
    return cards


def test_cpu_wheel_sees_no_gpu_and_falls_back_to_cpu():
    assert devices.num_gpus() == 0
    assert devices.usable_gpus() == []
    assert devices.try_gpu() == mx.cpu()
    assert devices.try_gpu(3) == mx.cpu()
    assert devices.try_all_gpus() == [mx.cpu()]
    assert devices.parse_devices(None) == [mx.cpu()]
    assert devices.parse_devices(' AUTO ') == [mx.cpu()]


def test_num_gpus_never_raises(monkeypatch):
    def broken():
        raise mx.base.MXNetError('CUDA: CUDA driver version is insufficient')
    monkeypatch.setattr(devices.mx.context, 'num_gpus', broken)
    assert devices.num_gpus() == 0


@pytest.mark.parametrize('capability, usable', [
    ((3, 7), False), ((5, 0), True), ((5, 2), True), ((6, 1), True), ((7, 0), True),
    ((7, 5), True), ((8, 0), True), ((8, 6), True), ((8, 9), True),
    ((9, 0), False), ((10, 0), False), ((12, 0), False)])
def test_compute_capability_table(monkeypatch, capability, usable):
    monkeypatch.setattr(devices, 'num_gpus', lambda: 1)
    monkeypatch.setattr(devices, 'gpu_compute_capability', lambda i: capability)
    monkeypatch.setattr(devices, 'gpu_name', lambda i: 'Some GPU')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        assert devices.usable_gpus() == ([0] if usable else [])
    assert len(caught) == (0 if usable else 1)
    if usable:
        assert devices.check_gpu(0) == mx.gpu(0)
    else:
        with pytest.raises(devices.GPUNotUsableError, match=r'compute capability %d\.%d'
                           % capability):
            devices.check_gpu(0)


def test_unsupported_gpu_is_skipped_with_one_warning(fake_gpus):
    with pytest.warns(RuntimeWarning) as caught:
        assert devices.usable_gpus() == [0]
    assert len(caught) == 1
    message = str(caught[0].message)
    assert 'GPU 1' in message and H100 in message and '9.0' in message
    assert 'Skipping' in message
    # Warned once per process, not on every call.
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter('always')
        assert devices.try_all_gpus() == [mx.gpu(0)]
        assert devices.try_gpu(0) == mx.gpu(0)
        assert devices.try_gpu(1) == mx.cpu()
    assert again == []


def test_only_unsupported_gpus_means_cpu(monkeypatch):
    monkeypatch.setattr(devices, 'num_gpus', lambda: 1)
    monkeypatch.setattr(devices, 'gpu_compute_capability', lambda i: (9, 0))
    monkeypatch.setattr(devices, 'gpu_name', lambda i: H100)
    with pytest.warns(RuntimeWarning, match='H100'):
        assert devices.try_all_gpus() == [mx.cpu()]


def test_requesting_an_unsupported_gpu_explains_what_to_do(fake_gpus):
    with pytest.raises(devices.GPUNotUsableError) as info:
        devices.parse_devices('gpu:1')
    message = str(info.value)
    assert f'GPU 1 ({H100}, compute capability 9.0) cannot be used' in message
    assert '--devices cpu' in message and 'mx.cpu()' in message
    assert 'pip install -e ".[cpu]"' in message
    assert isinstance(info.value, D2LNLIError) and isinstance(info.value, RuntimeError)
    # 'gpu' means all GPUs, each checked.
    with pytest.raises(devices.GPUNotUsableError, match='H100'):
        devices.parse_devices('gpu')


def test_gpu_specs_with_usable_gpus(fake_gpus):
    assert devices.parse_devices('gpu:0') == [mx.gpu(0)]
    assert devices.parse_devices(' GPU : 0 , cpu') == [mx.gpu(0), mx.cpu(0)]
    assert devices.parse_devices(mx.gpu(0)) == [mx.gpu(0)]
    assert devices.parse_devices([mx.cpu(), mx.gpu(0)]) == [mx.cpu(), mx.gpu(0)]


def test_gpu_out_of_range(fake_gpus):
    with pytest.raises(devices.GPUNotUsableError,
                       match=r'GPU 5 requested but only 2 GPUs found \(gpu:0 to gpu:1\)'):
        devices.parse_devices('gpu:5')


def test_gpu_requested_without_any_gpu():
    with pytest.raises(devices.GPUNotUsableError, match='GPU 0 requested but no GPU found') as info:
        devices.parse_devices('gpu:0')
    assert 'CPU build' in str(info.value) and '--devices cpu' in str(info.value)
    with pytest.raises(devices.GPUNotUsableError, match='no GPU found; use --devices cpu'):
        devices.parse_devices('gpu')


def test_cpu_specs():
    assert devices.parse_devices('cpu') == [mx.cpu()]
    assert devices.parse_devices('cpu:0, CPU:1') == [mx.cpu(0), mx.cpu(1)]
    assert devices.parse_devices('cpu : 2') == [mx.cpu(2)]


@pytest.mark.parametrize('spec, bad', [
    ('tpu:0', "'tpu:0'"), ('cpu:-1', "'cpu:-1'"), ('cpu:x', "'cpu:x'"),
    ('cpu:0,,cpu:1', 'empty entry'), ('gpu0', "did you mean 'gpu:0'"),
    ('cpu:0,cpu:0', 'cpu(0) is listed twice'), ('cpu,cpu:0', 'cpu(0) is listed twice')])
def test_bad_specs_say_what_is_wrong_and_what_works(spec, bad):
    with pytest.raises(ValueError) as info:
        devices.parse_devices(spec)
    message = str(info.value)
    assert bad in message
    if 'twice' not in bad:
        assert "'gpu:0,gpu:1'" in message and "'cpu:0,cpu:1'" in message


def test_parse_devices_rejects_non_contexts():
    with pytest.raises(TypeError, match='mx.Context'):
        devices.parse_devices(['cpu'])


def test_describe_devices_matches_mxnet_printing():
    contexts = [mx.cpu(0), mx.gpu(1)]
    assert devices.describe_devices(contexts) == '[cpu(0), gpu(1)]' == str(contexts)
    assert devices.describe_devices([mx.cpu()]) == '[cpu(0)]'


# The ctypes queries themselves, against a missing or a fake CUDA runtime.

def test_queries_return_none_without_cuda_runtime(monkeypatch):
    def missing(*args, **kwargs):
        raise OSError('libcudart.so.11.0: cannot open shared object file')
    monkeypatch.setattr(devices.ctypes, 'CDLL', missing)
    assert devices.gpu_compute_capability(0) is None
    assert devices.gpu_name(0) is None


class FakeCudart:
    """Stands in for libcudart: fills the out-parameters the way CUDA does."""

    def __init__(self, capability=(9, 0), name=H100, error=0):
        self.capability, self.name, self.error, self.calls = capability, name, error, []

        def error_string(code):
            return b'invalid device ordinal'
        self.cudaGetErrorString = error_string

    def cudaDeviceGetAttribute(self, value, attr, device):
        self.calls.append((attr, device))
        if not self.error:
            value.contents.value = self.capability[{75: 0, 76: 1}[attr]]
        return self.error

    def cudaGetDeviceProperties(self, props, device):
        self.calls.append(('props', device, len(props)))
        # The name, its NUL, then other fields that must not leak into the name.
        raw = self.name.encode() + b'\0' + b'\x01garbage'
        ctypes.memmove(props, raw, len(raw))
        return self.error


def test_queries_read_the_cuda_runtime(monkeypatch):
    fake = FakeCudart()
    monkeypatch.setattr(devices.ctypes, 'CDLL', lambda name: fake)
    assert devices.gpu_compute_capability(1) == (9, 0)
    assert devices.gpu_name(1) == H100
    assert fake.calls == [(75, 1), (76, 1), ('props', 1, 4096)]


def test_query_errors_are_clear(monkeypatch):
    monkeypatch.setattr(devices.ctypes, 'CDLL', lambda name: FakeCudart(error=101))
    with pytest.raises(devices.GPUNotUsableError,
                       match=r'GPU 7 cannot be queried: cudaDeviceGetAttribute returned '
                             r'CUDA error 101 \(invalid device ordinal\)'):
        devices.gpu_compute_capability(7)
    with pytest.raises(devices.GPUNotUsableError, match='cudaGetDeviceProperties'):
        devices.gpu_name(7)
    # usable_gpus turns such an error into a warning and skips the GPU.
    monkeypatch.setattr(devices, 'num_gpus', lambda: 1)
    with pytest.warns(RuntimeWarning, match='GPU 0 cannot be queried'):
        assert devices.try_all_gpus() == [mx.cpu()]
