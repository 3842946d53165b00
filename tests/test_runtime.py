"""Loading pip's CUDA libraries for mxnet-cu112 and clear MXNet import errors."""
import os
import subprocess
import sys

import pytest

import d2l_nli
from d2l_nli.machinery import runtime


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
    ('libcuda.so.1: cannot open shared object file',
     r'NVIDIA driver \(libcuda.so.1\) was not found'),
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


def test_thread_defaults_are_set_only_where_the_user_set_nothing(monkeypatch):
    monkeypatch.setattr(runtime, '_available_cpus', lambda: 16)
    env = {}
    assert runtime.configure_threads(env) == {'OMP_NUM_THREADS': '4',
                                              'OMP_WAIT_POLICY': 'PASSIVE'}
    env = {'OMP_NUM_THREADS': '1', 'OMP_WAIT_POLICY': 'ACTIVE'}
    assert runtime.configure_threads(env) == {'OMP_NUM_THREADS': '1',
                                              'OMP_WAIT_POLICY': 'ACTIVE'}
    monkeypatch.setattr(runtime, '_available_cpus', lambda: 2)
    env = {'D2L_NLI_THREADS': '3', 'OMP_NUM_THREADS': '1', 'GOMP_SPINCOUNT': '5'}
    assert runtime.configure_threads(env) == {'OMP_NUM_THREADS': '3', 'GOMP_SPINCOUNT': '5'}
    assert runtime.configure_threads({})['OMP_NUM_THREADS'] == '2'
    for bad in ('0', 'two', '-1', ''):
        with pytest.raises(ValueError, match='D2L_NLI_THREADS'):
            runtime.configure_threads({'D2L_NLI_THREADS': bad})


def test_the_package_applies_its_thread_defaults_before_mxnet_loads():
    code = ('import os, d2l_nli; print(os.environ["OMP_NUM_THREADS"], '
            'os.environ.get("OMP_WAIT_POLICY"))')
    env = {k: v for k, v in os.environ.items()
           if k not in ('OMP_NUM_THREADS', 'GOMP_SPINCOUNT', 'OMP_WAIT_POLICY', 'D2L_NLI_THREADS')}
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[1] == runtime.WAIT_POLICY and 1 <= int(out[0]) <= runtime.MAX_DEFAULT_THREADS
    env['D2L_NLI_THREADS'] = '1'
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == '1'
    # Imported after mxnet, the package says its settings may not apply.
    code = 'import warnings, mxnet; warnings.simplefilter("always"); import d2l_nli'
    err = subprocess.run([sys.executable, '-c', code], env=env | {'D2L_NLI_THREADS': '2'},
                         capture_output=True, text=True, check=True).stderr
    assert 'mxnet was imported before d2l_nli' in err


def test_importing_changes_only_what_must_precede_mxnet():
    env = {k: v for k, v in os.environ.items()
           if k not in ('OMP_NUM_THREADS', 'GOMP_SPINCOUNT', 'OMP_WAIT_POLICY', 'D2L_NLI_THREADS')}
    code = ('import os, d2l_nli, mxnet; print(os.environ.get("OMP_NUM_THREADS"), '
            'mxnet.util.is_np_array())')
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] != 'None' and out[1] == 'False'  # thread defaults, but no NumPy mode
    out = subprocess.run([sys.executable, '-c', code], env=env | {runtime.OPT_OUT: '1'},
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ['None', 'False']  # the opt-out leaves the environment alone


def test_a_bad_thread_setting_fails_when_training_starts_not_at_import():
    code = ('import os, d2l_nli; from mxnet import npx; npx.set_np()\n'
            'print(os.environ["OMP_NUM_THREADS"], flush=True)\n'
            'd2l_nli.machinery.runtime.training_starts()')
    env = {k: v for k, v in os.environ.items() if k != 'OMP_NUM_THREADS'}
    result = subprocess.run([sys.executable, '-c', code], env=env | {'D2L_NLI_THREADS': 'abc'},
                            capture_output=True, text=True)
    assert result.returncode == 1 and result.stdout.strip().isdigit()  # imported, defaults
    assert "D2L_NLI_THREADS='abc': expected a positive whole number" in result.stderr
    assert 'UserWarning' in result.stderr and 'D2LNLIError' in result.stderr


def test_numpy_mode_is_required_with_a_clear_message():
    from mxnet import npx
    npx.reset_np()
    try:
        with pytest.raises(d2l_nli.D2LNLIError, match=r'npx.set_np\(\)'):
            runtime.training_starts()
    finally:
        npx.set_np()
    runtime.training_starts()  # in NumPy mode, with good settings: nothing to say


def test_the_malloc_default_comes_with_the_first_cell_and_can_be_turned_off(monkeypatch):
    calls = []
    monkeypatch.setattr(runtime, 'limit_arenas', lambda: calls.append(1) or True)
    d2l_nli.select_profile('small')  # a notebook's first cell
    runtime.training_starts()
    assert len(calls) == 2
    monkeypatch.setenv(runtime.OPT_OUT, '1')
    d2l_nli.select_profile('small')
    runtime.training_starts()
    assert len(calls) == 2


def test_arena_limit(monkeypatch):
    calls = []

    class FakeLibc:
        def mallopt(self, param, value):
            calls.append((param, value))
            return 1
    monkeypatch.setattr(runtime.ctypes, 'CDLL', lambda name: FakeLibc())
    monkeypatch.setattr(runtime.sys, 'platform', 'linux')
    monkeypatch.delenv('MALLOC_ARENA_MAX', raising=False)
    assert runtime.limit_arenas() is True
    assert calls == [(-8, 2)]  # M_ARENA_MAX in glibc's malloc.h, at most two arenas
    monkeypatch.setenv('MALLOC_ARENA_MAX', '8')  # the user's own setting wins
    assert runtime.limit_arenas() is False
    monkeypatch.delenv('MALLOC_ARENA_MAX')
    monkeypatch.setattr(runtime.sys, 'platform', 'darwin')  # not glibc: nothing to do
    assert runtime.limit_arenas() is False
    assert len(calls) == 1
