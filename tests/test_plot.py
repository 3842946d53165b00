"""Animator and live-plot detection, with a fake Jupyter kernel where one is needed."""
import math
import subprocess
import sys
import types
import warnings

import numpy as np
import pytest

from d2l_nli import plot
from d2l_nli.plot import Animator, live_plotting_enabled, use_svg_display

IPython = pytest.importorskip('IPython')


class ZMQInteractiveShell:
    """Stands in for ipykernel's shell: only the class name is looked at."""


class ColabShell(ZMQInteractiveShell):
    pass


class TerminalInteractiveShell:
    pass


@pytest.fixture
def clean_env(monkeypatch):
    """No switches set, and the test runner itself not counted as one."""
    for name in ('D2L_NLI_LIVE_PLOTS', 'CI'):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(plot, '_TEST_RUNNER_MODULES', ())
    return monkeypatch


def outside_pytest(monkeypatch):
    """Unset PYTEST_CURRENT_TEST; pytest sets it again before each test body, so call it there."""
    monkeypatch.delenv('PYTEST_CURRENT_TEST', raising=False)


@pytest.fixture
def kernel(clean_env):
    """Pretend to run in a Jupyter kernel."""
    shell = ZMQInteractiveShell()
    clean_env.setattr(IPython, 'get_ipython', lambda: shell)
    return shell


class FakeDisplay:
    """Records display() calls; hands out a handle that records update() calls."""

    def __init__(self):
        self.calls, self.updates = [], []

    def __call__(self, obj, **kwargs):
        self.calls.append((obj, kwargs))
        return (types.SimpleNamespace(update=self.updates.append)
                if kwargs.get('display_id') else None)


@pytest.fixture
def fake_display(monkeypatch):
    display = FakeDisplay()
    monkeypatch.setattr(plot, '_display', display)

    def no_clear_output(*args, **kwargs):
        raise AssertionError('clear_output must not be used (frames pile up under nbval)')
    monkeypatch.setattr(IPython.display, 'clear_output', no_clear_output)
    return display


def test_no_kernel_means_no_live_plots_whatever_the_environment(clean_env):
    clean_env.setattr(IPython, 'get_ipython', lambda: None)
    for value in (None, '1', 'on', '0'):
        if value is None:
            clean_env.delenv('D2L_NLI_LIVE_PLOTS', raising=False)
        else:
            clean_env.setenv('D2L_NLI_LIVE_PLOTS', value)
        assert live_plotting_enabled() is False
    clean_env.setattr(IPython, 'get_ipython', lambda: TerminalInteractiveShell())
    clean_env.setenv('D2L_NLI_LIVE_PLOTS', '1')
    assert live_plotting_enabled() is False


def test_a_kernel_alone_turns_live_plots_on(kernel, monkeypatch):
    outside_pytest(monkeypatch)
    assert live_plotting_enabled() is True
    monkeypatch.setattr(IPython, 'get_ipython', lambda: ColabShell())
    assert live_plotting_enabled() is True


@pytest.mark.parametrize('value', ['0', 'false', 'No', 'OFF'])
def test_env_switch_turns_live_plots_off(kernel, monkeypatch, value):
    monkeypatch.setenv('D2L_NLI_LIVE_PLOTS', value)
    assert live_plotting_enabled() is False


@pytest.mark.parametrize('ci, live', [('true', False), ('1', False), ('yes', False),
                                      ('false', True), ('0', True), ('', True)])
def test_ci_turns_live_plots_off_unless_forced(kernel, monkeypatch, ci, live):
    outside_pytest(monkeypatch)
    monkeypatch.setenv('CI', ci)
    assert live_plotting_enabled() is live
    for value in ('1', 'TRUE', 'yes', 'on'):
        monkeypatch.setenv('D2L_NLI_LIVE_PLOTS', value)
        assert live_plotting_enabled() is True


def test_test_runners_turn_live_plots_off(kernel, monkeypatch):
    monkeypatch.setenv('PYTEST_CURRENT_TEST', 'tests/x.py::t (call)')
    assert live_plotting_enabled() is False
    outside_pytest(monkeypatch)
    monkeypatch.setattr(plot, '_TEST_RUNNER_MODULES', ('pytest', 'nbval'))
    assert live_plotting_enabled() is False  # pytest is imported right now
    # nbval is imported here too (as a pytest plugin): use a stand-in runner.
    monkeypatch.setattr(plot, '_TEST_RUNNER_MODULES', ('fake_runner',))
    assert live_plotting_enabled() is True
    monkeypatch.setitem(sys.modules, 'fake_runner', types.ModuleType('fake_runner'))
    assert live_plotting_enabled() is False


def test_unknown_switch_value_warns_and_decides_automatically(kernel, monkeypatch):
    outside_pytest(monkeypatch)
    monkeypatch.setenv('D2L_NLI_LIVE_PLOTS', 'maybe')
    with pytest.warns(UserWarning, match='D2L_NLI_LIVE_PLOTS'):
        assert live_plotting_enabled() is True


def test_importing_the_module_does_not_import_matplotlib():
    code = 'import sys, d2l_nli.plot; print("matplotlib" in sys.modules, "IPython" in sys.modules)'
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ['False', 'False']


def test_use_svg_display_is_a_no_op_outside_a_kernel(clean_env):
    import matplotlib
    clean_env.setattr(IPython, 'get_ipython', lambda: None)
    before = matplotlib.rcParams['svg.hashsalt']
    use_svg_display()
    assert matplotlib.rcParams['svg.hashsalt'] == before


def test_add_records_points_and_skips_gaps():
    a = Animator(legend=['loss', 'train acc', 'test acc'], live=False)
    a.add(0.5, [1.0, 0.3, None])
    a.add(1, (np.float32(0.5), 0.6, float('nan')))
    a.add(1, [0.4, 0.7, 0.65])
    assert a.X == [[0.5, 1.0, 1.0], [0.5, 1.0, 1.0], [1.0]]
    assert a.Y[0] == [1.0, 0.5, 0.4] and a.Y[2] == [0.65]
    assert a._fig is None  # not live: recording only, no drawing
    lines = a.axes[0].get_lines()
    assert [line.get_xydata().tolist() for line in lines] == [
        [[x, y] for x, y in zip(xs, ys)] for xs, ys in zip(a.X, a.Y)]
    assert [t.get_text() for t in a.axes[0].get_legend().get_texts()] == a.legend


def test_add_takes_one_x_per_line_and_a_scalar_y():
    a = Animator(live=False)
    a.add(3, 0.25)
    assert a.X == [[3.0]] and a.Y == [[0.25]]
    b = Animator(live=False)
    b.add([1, 2], [10, None])
    assert b.X == [[1.0], []] and b.Y == [[10.0], []]


def test_add_rejects_inconsistent_points():
    a = Animator(legend=['a', 'b'], live=False)
    with pytest.raises(ValueError, match='legend names 2 lines'):
        a.add(1, [1, 2, 3])
    a.add(1, [1, 2])
    with pytest.raises(ValueError, match='plots 2 lines'):
        a.add(2, [1])
    with pytest.raises(ValueError, match='2 x values for 3'):
        Animator(live=False).add([1, 2], [1, 2, 3])
    with pytest.raises(TypeError, match=r"y\[0\] must be a number"):
        Animator(live=False).add(1, ['high'])


def _curve(**kwargs):
    a = Animator(xlabel='epoch', legend=['loss', 'acc'], xlim=[1, 3], live=False, **kwargs)
    for epoch in (1, 2, 3):
        a.add(epoch, [1 / epoch, None if epoch == 1 else epoch / 4])
    return a


def test_save_writes_png_and_svg_atomically_and_deterministically(tmp_path):
    png = _curve().save(tmp_path / 'out' / 'curve.png')
    assert png.read_bytes().startswith(b'\x89PNG\r\n\x1a\n')
    svg = _curve().save(tmp_path / 'out' / 'curve.SVG')
    data = svg.read_bytes()
    assert b'<svg' in data and b'<dc:date>' not in data
    assert _curve().save(tmp_path / 'again.svg').read_bytes() == data
    assert _curve().save(tmp_path / 'again.png').read_bytes() == png.read_bytes()
    other = Animator(live=False)
    other.add(1, [2.0])
    assert other.save(tmp_path / 'other.svg').read_bytes() != data
    names = sorted(p.name for p in tmp_path.rglob('*') if p.is_file())
    assert names == ['again.png', 'again.svg', 'curve.SVG', 'curve.png', 'other.svg']


@pytest.mark.parametrize('name', ['curve.pdf', 'curve', 'curve.png.tmp'])
def test_save_refuses_unknown_formats(tmp_path, name):
    with pytest.raises(ValueError, match=r'\.png, \.svg'):
        _curve().save(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_many_animators_do_not_pile_up_figures(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        animators = [_curve() for _ in range(30)]
        for a in animators:
            assert a.fig is not None
        animators[-1].save(tmp_path / 'last.png')
    pyplot = sys.modules.get('matplotlib.pyplot')
    assert pyplot is None or pyplot.get_fignums() == []


def test_live_add_displays_once_then_updates_in_place(kernel, fake_display, monkeypatch):
    outside_pytest(monkeypatch)
    a = Animator(legend=['loss'])  # live decided by the (fake) kernel
    assert a.live is True
    a.add(1, 0.9)
    assert len(fake_display.calls) == 1
    fig, kwargs = fake_display.calls[0]
    assert kwargs == {'display_id': True} and fig is a.fig
    a.add(2, 0.5)
    a.add(3, 0.4)
    assert len(fake_display.calls) == 1 and fake_display.updates == [fig, fig]
    assert a.fig.axes[0].get_lines()[0].get_ydata().tolist() == [0.9, 0.5, 0.4]
    a.show()  # already current: nothing more
    assert len(fake_display.calls) == 1 and len(fake_display.updates) == 2


def test_not_live_in_a_kernel_shows_once_at_the_end(kernel, fake_display, monkeypatch):
    monkeypatch.setenv('D2L_NLI_LIVE_PLOTS', '0')
    a = Animator()
    assert a.live is False
    for epoch in range(5):
        a.add(epoch, epoch * 0.1)
    assert fake_display.calls == [] and a._fig is None
    a.show()
    assert [obj for obj, _ in fake_display.calls] == [a.fig] and fake_display.updates == []


def test_forced_live_outside_a_kernel_shows_nothing(clean_env, fake_display):
    clean_env.setattr(IPython, 'get_ipython', lambda: None)
    a = Animator(live=True)
    assert a.live is False
    a.add(1, 1.0)
    a.show()
    assert fake_display.calls == [] and fake_display.updates == []
    assert not math.isnan(a.Y[0][0])


def test_lines_on_several_axes_with_reference_levels():
    animator = Animator(xlabel="step", ylabel=["mlm", "nsp"], legend=['mlm', 'nsp'],
                                ncols=2, line_axes=[0, 1],
                                hlines=[(6.9, 'unigram', 0), (0.69, 'chance', 1)], live=False)
    for step in range(1, 4):
        animator.add(step, (7 - step / 10, 0.7 - step / 100))
    left, right = animator.axes
    assert [line.get_ydata()[-1] for line in left.lines] == [pytest.approx(6.7), 6.9]
    assert [t.get_text() for t in left.get_legend().get_texts()] == ['mlm', 'unigram']
    assert [t.get_text() for t in right.get_legend().get_texts()] == ['nsp', 'chance']
    assert right.get_ylabel() == 'nsp'
    with pytest.raises(ValueError, match='axes index 2'):
        Animator(ncols=2, line_axes=[0, 2])
