"""Loading pip's CUDA libraries for mxnet-cu112 and clear MXNet import errors."""
import subprocess
import sys

import pytest

from d2l_nli import runtime


def test_cuda_libraries_are_preloaded_in_dependency_order(tmp_path, monkeypatch):
    # Two site-packages folders, as with a user install beside a venv.
    first, second = tmp_path / 'a' / 'nvidia', tmp_path / 'b' / 'nvidia'
    for i, (package, library) in enumerate(runtime.CUDA_LIBRARIES):
        folder = (first if i % 2 else second) / package / 'lib'
        folder.mkdir(parents=True, exist_ok=True)
        (folder / library).write_bytes(b'')
    loaded = []
    monkeypatch.setattr(runtime, 'installed_mxnet_wheels', lambda: ['mxnet-cu112'])
    monkeypatch.setattr(runtime, '_nvidia_folders', lambda: [first, second])
    monkeypatch.setattr(runtime.ctypes, 'CDLL', lambda path, mode: loaded.append((path, mode)))
    monkeypatch.delenv('MXNET_CUDNN_LIB_CHECKING', raising=False)
    paths = runtime.preload_cuda_libraries()
    assert [p.name for p in paths] == [lib for _, lib in runtime.CUDA_LIBRARIES]
    assert [path for path, _ in loaded] == [str(p) for p in paths]
    assert all(mode == runtime.ctypes.RTLD_GLOBAL for _, mode in loaded)
    assert runtime.os.environ['MXNET_CUDNN_LIB_CHECKING'] == '0'


def test_nothing_is_preloaded_for_the_cpu_wheel(monkeypatch):
    monkeypatch.setattr(runtime, 'installed_mxnet_wheels', lambda: ['mxnet'])
    monkeypatch.setattr(runtime.ctypes, 'CDLL', lambda *a, **k: pytest.fail('loaded a library'))
    assert runtime.preload_cuda_libraries() == []


def test_cpu_wheel_is_installed():
    assert runtime.installed_mxnet_wheels() == ['mxnet']


@pytest.fixture
def no_mxnet_yet(monkeypatch):
    """Make import_mxnet believe mxnet was not imported (and cannot be)."""
    monkeypatch.setitem(sys.modules, 'mxnet', None)


def test_numpy_too_new(no_mxnet_yet, monkeypatch):
    monkeypatch.setattr('numpy.__version__', '1.24.1')
    with pytest.raises(ImportError, match=r'numpy 1.24.1 is installed.*numpy>=1.21,<1.24'):
        runtime.import_mxnet()


def test_python_too_new(no_mxnet_yet, monkeypatch):
    monkeypatch.setattr(sys, 'version_info', (3, 12, 0))
    with pytest.raises(ImportError, match='needs Python 3.11 or older'):
        runtime.import_mxnet()


def test_both_wheels(no_mxnet_yet, monkeypatch):
    monkeypatch.setattr(runtime, 'installed_mxnet_wheels', lambda: ['mxnet', 'mxnet-cu112'])
    with pytest.raises(ImportError, match='several MXNet wheels are installed'):
        runtime.import_mxnet()


def test_mxnet_missing(no_mxnet_yet):
    with pytest.raises(ImportError, match=r'MXNet is not installed.*\.\[cpu\]'):
        runtime.import_mxnet()


@pytest.mark.parametrize('error, message', [
    ('libcuda.so.1: cannot open shared object file', r'NVIDIA driver \(libcuda.so.1\) was not found'),
    ('libcudnn.so.8: cannot open shared object file', r'a library MXNet needs is missing'),
])
def test_missing_gpu_libraries(monkeypatch, error, message):
    class Finder:  # makes `import mxnet` fail as a GPU build without CUDA does
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name == 'mxnet':
                raise OSError(error)
    monkeypatch.delitem(sys.modules, 'mxnet')
    monkeypatch.setattr(sys, 'meta_path', [Finder] + sys.meta_path)
    with pytest.raises(ImportError, match=message):
        runtime.import_mxnet()


def test_message_reaches_the_user_on_import():
    code = "import sys; sys.modules['mxnet'] = None; import d2l_nli"
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 1
    assert 'd2l_nli cannot use MXNet: MXNet is not installed' in result.stderr
