"""Training curves: an :class:`Animator` that plots points as they arrive.

In a Jupyter kernel the figure is redrawn in place (one output, updated);
elsewhere (command line, CI, nbval) points are only recorded and the figure is
drawn when asked for, by :meth:`Animator.show` or :meth:`Animator.save`.

Matplotlib is imported inside the functions, never at module import, so the
command line starts fast; figures are plain ``matplotlib.figure.Figure``
objects, never pyplot ones, so no GUI window opens and none pile up in pyplot.
"""
import math
import os
import sys
import warnings
from pathlib import Path

from .machinery.files import atomic_write

__all__ = ['Animator', 'live_plotting_enabled', 'use_svg_display']

LIVE_ENV = 'D2L_NLI_LIVE_PLOTS'
_OFF = {'0', 'false', 'no', 'off'}
_ON = {'1', 'true', 'yes', 'on'}
# Imported by pytest / nbval runs; a kernel started by nbval has neither, which
# is why our nbval command also sets D2L_NLI_LIVE_PLOTS=0 for the kernels.
_TEST_RUNNER_MODULES = ('pytest', 'nbval')
SVG_HASHSALT = 'd2l-nli'
SAVE_FORMATS = ('.png', '.svg')
# Drop the timestamp so two saves of the same data give identical bytes.
_SAVE_METADATA = {'.svg': {'Date': None}, '.png': {}}


def _kernel_shell():
    """The running Jupyter kernel's shell, or None (plain Python, terminal IPython)."""
    ipython = sys.modules.get('IPython')
    if ipython is None:  # never imported: certainly no kernel, and importing is slow
        return None
    shell = ipython.get_ipython()
    # Match by name to avoid importing ipykernel; subclasses (Colab) count too.
    if shell is None or not any(c.__name__ == 'ZMQInteractiveShell' for c in type(shell).__mro__):
        return None
    return shell


def _env_flag(name):
    """True/False for a recognised on/off value of env var ``name``, else None."""
    value = os.environ.get(name, '').strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    if value:
        warnings.warn(f'{name}={os.environ[name]!r} is not understood; use one of '
                      f'{sorted(_ON | _OFF)}. Deciding automatically.', stacklevel=3)
    return None


def live_plotting_enabled():
    """Whether plots should redraw while training: in a Jupyter kernel, and not switched off.

    ``D2L_NLI_LIVE_PLOTS=0/false/no/off`` switches it off, ``1/true/yes/on``
    forces it on (in a kernel). Unset, it is off on CI (``CI`` set) and under
    pytest/nbval, where redrawing only costs time.
    """
    flag = _env_flag(LIVE_ENV)
    if flag is False or _kernel_shell() is None:
        return False
    if flag:
        return True
    ci = os.environ.get('CI', '').strip().lower()
    if ci and ci not in ('false', '0'):
        return False
    if os.environ.get('PYTEST_CURRENT_TEST') or any(m in sys.modules for m in _TEST_RUNNER_MODULES):
        return False
    return True


def use_svg_display():
    """Show inline figures as SVG with stable ids; does nothing outside a kernel."""
    if _kernel_shell() is None:
        return
    import matplotlib
    from matplotlib_inline.backend_inline import set_matplotlib_formats
    matplotlib.rcParams['svg.hashsalt'] = SVG_HASHSALT
    set_matplotlib_formats('svg', metadata={'Date': None})


def _display(obj, **kwargs):
    """IPython's ``display`` (one place, so tests can replace it)."""
    from IPython.display import display
    return display(obj, **kwargs)


def _ensure_figure_format(shell):
    """Make the kernel able to render a Figure: SVG, unless a format is chosen already."""
    from matplotlib.figure import Figure
    formatter = getattr(shell, 'display_formatter', None)
    if formatter is None:
        return
    for f in formatter.formatters.values():
        try:
            f.lookup_by_type(Figure)
            return
        except KeyError:
            continue
    use_svg_display()


def _number(value, what):
    """``value`` as a float, NaN for None (MXNet scalars and numpy scalars welcome)."""
    if value is None:
        return math.nan
    if hasattr(value, 'asscalar'):  # MXNet NDArray of one element
        value = value.asscalar()
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f'Animator.add: {what} must be a number or None, '
                        f'not {type(value).__name__} {value!r}') from None


class Animator:
    """Plot lines point by point (e.g. loss and accuracy per epoch).

    Lines are drawn on the first axes unless ``line_axes`` gives each line's
    axes index among the ``nrows`` x ``ncols`` axes (``ylabel`` may then be a
    list, one per axes). ``hlines`` are reference levels drawn dotted, as
    ``(y, label, axes index)``, e.g. the loss of a baseline.
    ``live=None`` follows :func:`live_plotting_enabled`; ``live=True`` redraws
    after every :meth:`add` in any kernel, whatever the environment says.
    """

    def __init__(self, xlabel=None, ylabel=None, legend=None, xlim=None, ylim=None,
                 xscale='linear', yscale='linear', fmts=('-', 'm--', 'g-.', 'r:'),
                 nrows=1, ncols=1, figsize=(3.5, 2.5), live=None, line_axes=None,
                 hlines=None):
        if not fmts:
            raise ValueError('Animator: fmts must name at least one line format')
        self.xlabel, self.ylabel, self.xlim, self.ylim = xlabel, ylabel, xlim, ylim
        self.xscale, self.yscale = xscale, yscale
        self.legend = list(legend) if legend else []
        self.fmts, self.nrows, self.ncols, self.figsize = tuple(fmts), nrows, ncols, figsize
        self.live = (live_plotting_enabled() if live is None
                     else bool(live) and _kernel_shell() is not None)
        # line_axes[i]: which axes line i goes to (default: all on the first).
        self.line_axes = list(line_axes) if line_axes else None
        # hlines: (y, label, axes index) reference levels, e.g. a baseline loss.
        self.hlines = [tuple(h) for h in hlines] if hlines else []
        for k in (self.line_axes or []) + [h[2] for h in self.hlines]:
            if not 0 <= k < nrows * ncols:
                raise ValueError(f'Animator: axes index {k} out of range for '
                                 f'{nrows}x{ncols} axes')
        self.X, self.Y = [], []  # one list per line, created by the first add()
        self._fig, self._axes = None, None
        self._handle = None
        self._drawn = self._shown = -1  # data versions last drawn / displayed
        self._version = 0

    def add(self, x, y):
        """Record one point per line; ``y`` may hold None/NaN for "no point now"."""
        ys = list(y) if isinstance(y, (list, tuple)) else [y]
        xs = list(x) if isinstance(x, (list, tuple)) else [x] * len(ys)
        if len(xs) != len(ys):
            raise ValueError(f'Animator.add: got {len(xs)} x values for {len(ys)} y values')
        if not self.Y:
            if self.legend and len(self.legend) != len(ys):
                raise ValueError(f'Animator.add: the legend names {len(self.legend)} lines '
                                 f'but add() got {len(ys)} y values')
            self.X, self.Y = [[] for _ in ys], [[] for _ in ys]
        elif len(ys) != len(self.Y):
            raise ValueError(f'Animator.add: this animator plots {len(self.Y)} lines, '
                             f'add() got {len(ys)} y values')
        for i, (a, b) in enumerate(zip(xs, ys)):
            b = _number(b, f'y[{i}]')
            if math.isnan(b):
                continue
            self.X[i].append(_number(a, f'x[{i}]'))
            self.Y[i].append(b)
        self._version += 1
        if self.live:
            self._publish()

    @property
    def fig(self):
        """The figure, drawn from the data recorded so far."""
        self._draw()
        return self._fig

    @property
    def axes(self):
        """The figure's axes, a flat list (lines go to ``axes[0]``)."""
        self._draw()
        return self._axes

    def _draw(self):
        """(Re)draw the figure if data arrived since the last drawing."""
        if self._drawn == self._version:
            return
        if self._fig is None:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
            self._fig = Figure(figsize=self.figsize)
            FigureCanvasAgg(self._fig)
            axes = self._fig.subplots(self.nrows, self.ncols, squeeze=False)
            self._axes = list(axes.flat)
        for ax in self._axes:
            ax.cla()
        labels = [[] for _ in self._axes]
        for i, (xs, ys) in enumerate(zip(self.X, self.Y)):
            k = self.line_axes[i] if self.line_axes and i < len(self.line_axes) else 0
            self._axes[k].plot(xs, ys, self.fmts[i % len(self.fmts)])
            labels[k].append(self.legend[i] if i < len(self.legend) else None)
        for y, label, k in self.hlines:
            self._axes[k].axhline(y, color='gray', linestyle=':', linewidth=1.2)
            labels[k].append(label)
        ylabels = self.ylabel if isinstance(self.ylabel, (list, tuple)) else [self.ylabel]
        for k, ax in enumerate(self._axes):
            ax.set_xlabel(self.xlabel)
            ax.set_ylabel(ylabels[k] if k < len(ylabels) else None)
            ax.set_xscale(self.xscale)
            ax.set_yscale(self.yscale)
            # A one-epoch run asks for xlim [1, 1]: let matplotlib choose (no warning).
            if self.xlim is not None and self.xlim[0] != self.xlim[1]:
                ax.set_xlim(self.xlim)
            if self.ylim is not None:
                ax.set_ylim(self.ylim)
            if self.Y and any(label is not None for label in labels[k]):
                ax.legend([label or '' for label in labels[k]])
            ax.grid()
        self._fig.tight_layout()
        self._drawn = self._version

    def _publish(self):
        """Show the current figure in this animator's one output (display, then update)."""
        if self._shown == self._version and self._handle is not None:
            return
        self._draw()
        if self._handle is None:
            shell = _kernel_shell()
            if shell is not None:
                _ensure_figure_format(shell)
            self._handle = _display(self._fig, display_id=True)
        else:
            self._handle.update(self._fig)
        self._shown = self._version

    def show(self):
        """Draw the final figure and show it in a kernel (updating the live output)."""
        self._draw()
        if self.live:
            self._publish()
            return
        shell = _kernel_shell()
        if shell is not None:
            _ensure_figure_format(shell)
            _display(self._fig)

    def save(self, path):
        """Write the figure to ``path`` (``.png`` or ``.svg``), atomically; return the path."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in SAVE_FORMATS:
            raise ValueError(f'Animator.save: cannot tell the image format from {str(path)!r}; '
                             f'name the file with one of {", ".join(SAVE_FORMATS)}')
        import matplotlib
        self._draw()
        # The salt makes SVG element ids the same on every run.
        with matplotlib.rc_context({'svg.hashsalt': SVG_HASHSALT}), atomic_write(path, 'wb') as f:
            self._fig.savefig(f, format=suffix[1:], metadata=_SAVE_METADATA[suffix])
        return path
