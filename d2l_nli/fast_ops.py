"""A compiled LayerNorm for the CPU, loaded when ``pip install`` could build it.

MXNet 1.9.1's LayerNorm backward on the CPU is about ten times slower than
its forward on BERT's shapes (a third of a fine-tuning step here; oneDNN's
version is used only for tensors with >= 1,024 rows of >= 1,024 values).
``d2l_nli/csrc/layer_norm.cc`` is an MXNet extension operator with the
same results and a backward pass that reads each row once. ``setup.py``
compiles it against the headers the mxnet wheel ships (so installing
needs a C++ compiler to get it), and this module loads it with
``mx.library.load``.

Everything works without it, more slowly: :class:`LayerNorm` falls back to
MXNet's own operator when the library is missing or cannot load, on any
GPU, and when ``D2L_NLI_FAST_OPS=0``. ``status()`` says which applies.
"""
import os
import sys
from pathlib import Path

from mxnet.gluon import nn
from mxnet.util import use_np

__all__ = ['LayerNorm', 'fast_layer_norm_available', 'status']

_HERE = Path(__file__).resolve().parent
_state = {}  # 'loaded': bool, 'why': str


def _library():
    found = sorted(_HERE.glob('_fast_ops*.so'))
    return found[0] if found else None


def _load():
    if 'loaded' in _state:
        return _state['loaded']
    path = _library()
    if os.environ.get('D2L_NLI_FAST_OPS', '1') == '0':
        loaded, why = False, 'off (D2L_NLI_FAST_OPS=0): MXNet\'s own LayerNorm'
    elif path is None:
        loaded, why = False, ('not built (no C++ compiler when d2l-nli was installed?): '
                              "MXNet's own LayerNorm, slower to train. Install g++ and "
                              'reinstall d2l-nli to build it.')
    else:
        import mxnet as mx

        try:
            mx.library.load(str(path), verbose=False)
            loaded, why = True, f'compiled LayerNorm loaded ({path.name})'
        except Exception as err:  # a library built for another MXNet
            loaded, why = False, (f"{path.name} did not load ({str(err).splitlines()[0]}): "
                                  "MXNet's own LayerNorm. Reinstall d2l-nli to rebuild it.")
    _state.update(loaded=loaded, why=why)
    if not loaded and path is not None and 'did not load' in why:
        print(f'd2l-nli: {why}', file=sys.stderr)
    return loaded


def fast_layer_norm_available():
    """Whether the compiled LayerNorm is loaded (loads it on first call)."""
    return _load()


def status():
    """One line: which LayerNorm the CPU uses, and why."""
    _load()
    return _state['why']


@use_np
class LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` over the last axis, with the compiled CPU kernel when loaded.

    Same parameters (``gamma``, ``beta``) and results as ``nn.LayerNorm``
    (to float rounding), so checkpoints are interchangeable. (..., C) ->
    (..., C). The kernel is used when every copy of the parameters is on
    a CPU; on GPUs MXNet's operator runs.
    """

    def __init__(self, axis=-1, epsilon=1e-5, in_channels=0, **kwargs):
        if axis != -1:
            raise ValueError('d2l_nli.fast_ops.LayerNorm normalizes over the last axis only')
        super().__init__(axis=axis, epsilon=epsilon, in_channels=in_channels, **kwargs)

    def hybrid_forward(self, F, data, gamma, beta):
        on_cpu = all(ctx.device_type == 'cpu' for ctx in self.gamma.list_ctx())
        if not (on_cpu and _load()):
            return super().hybrid_forward(F, data, gamma, beta)
        # An extension operator takes MXNet's legacy arrays (or symbols).
        out = F.d2l_layer_norm(data.as_nd_ndarray(), gamma.as_nd_ndarray(),
                               beta.as_nd_ndarray(), eps=self._epsilon)
        return out.as_np_ndarray()
