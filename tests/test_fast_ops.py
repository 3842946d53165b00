"""The compiled LayerNorm: MXNet's results, its fallback, and that installs build it."""
import os
import shutil
import subprocess
import sys

import mxnet as mx
import numpy as onp
import pytest
from mxnet import autograd, np
from mxnet.gluon import nn

import d2l_nli as d
from d2l_nli import fast_ops

needs_library = pytest.mark.skipif(not fast_ops.fast_layer_norm_available(),
                                   reason=f'compiled LayerNorm: {fast_ops.status()}')


def _run(block, x, dy):
    x = x.copy()
    x.attach_grad()
    with autograd.record():
        y = block(x)
    y.backward(dy)
    return [y.asnumpy(), x.grad.asnumpy(), block.gamma.grad().asnumpy(),
            block.beta.grad().asnumpy()]


@needs_library
@pytest.mark.parametrize('shape', [(4, 9, 16), (1, 7), (300, 128), (2, 3, 5, 33)])
@pytest.mark.parametrize('hybridize', [False, True])
def test_compiled_layer_norm_gives_mxnets_values_and_gradients(shape, hybridize):
    rng = onp.random.default_rng(0)
    # Rows far from zero mean and unit scale, as after a residual sum.
    x = np.array(rng.normal(3, 5, shape), dtype='float32')
    dy = np.array(rng.normal(size=shape), dtype='float32')
    gamma = np.array(rng.uniform(0.5, 1.5, shape[-1]), dtype='float32')
    beta = np.array(rng.normal(size=shape[-1]), dtype='float32')
    results = []
    for block in (nn.LayerNorm(in_channels=shape[-1]), fast_ops.LayerNorm(in_channels=shape[-1])):
        block.initialize()
        block.gamma.set_data(gamma)
        block.beta.set_data(beta)
        if hybridize:
            block.hybridize(static_alloc=True)
        results.append(_run(block, x, dy))
    for name, ours, theirs in zip(('out', 'd_data', 'd_gamma', 'd_beta'), results[1], results[0]):
        onp.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * onp.abs(theirs).max(),
                                    err_msg=name)


@needs_library
def test_a_bert_with_compiled_layer_norms_matches_one_without(tmp_path):
    """Same model, same inputs: outputs and gradients as with MXNet's LayerNorm."""
    code = '''
import sys, numpy as onp, mxnet as mx
from mxnet import autograd, init, np
import d2l_nli as d
mx.npx.set_np()
mx.random.seed(0)
bert = d.BERTModel(30, 16, 32, 2, 2, 0.0, max_len=12, embedding_norm=True)
bert.initialize(init.Xavier())
bert.hybridize()
rng = onp.random.default_rng(0)
tokens = np.array(rng.integers(0, 30, (3, 12)), dtype='float32')
segments, lens = np.zeros((3, 12)), np.array([12, 7, 9])
pos = np.array([[1, 2], [3, 4], [5, 6]])
with autograd.record():
    enc, mlm, nsp = bert(tokens, segments, lens, pos)
    total = (enc ** 2).sum() + (mlm ** 2).sum() + nsp.sum()
total.backward()
grads = [p.grad().asnumpy() for p in bert.collect_params().values()]
onp.savez(sys.argv[1], enc=enc.asnumpy(), *grads)
'''
    out = {}
    for flag in ('1', '0'):
        path = tmp_path / f'{flag}.npz'
        env = {**os.environ, 'D2L_NLI_FAST_OPS': flag}
        subprocess.run([sys.executable, '-c', code, str(path)], env=env, check=True)
        out[flag] = onp.load(path)
    assert set(out['1'].files) == set(out['0'].files)
    for name in out['0'].files:
        expected = out['0'][name]
        onp.testing.assert_allclose(out['1'][name], expected, rtol=2e-4,
                                    atol=2e-4 * max(onp.abs(expected).max(), 1e-6),
                                    err_msg=name)


def test_without_the_library_mxnets_layer_norm_runs_and_status_says_why(monkeypatch):
    monkeypatch.setattr(fast_ops, '_state', {})
    monkeypatch.setattr(fast_ops, '_library', lambda: None)
    assert not fast_ops.fast_layer_norm_available()
    assert 'not built' in fast_ops.status() and 'g++' in fast_ops.status()
    block = fast_ops.LayerNorm(in_channels=4)
    block.initialize()
    x = np.array([[1.0, 2.0, 3.0, 6.0]])
    expected = (x - x.mean()) / onp.sqrt(((x - x.mean()) ** 2).mean().item() + 1e-5)
    onp.testing.assert_allclose(block(x).asnumpy(), expected.asnumpy(), rtol=1e-5)
    monkeypatch.setattr(fast_ops, '_state', {})
    monkeypatch.setenv('D2L_NLI_FAST_OPS', '0')
    assert not fast_ops.fast_layer_norm_available() and 'D2L_NLI_FAST_OPS=0' in fast_ops.status()


def test_only_the_last_axis_is_supported():
    with pytest.raises(ValueError, match='last axis'):
        fast_ops.LayerNorm(axis=1)


@pytest.mark.skipif(not (shutil.which('c++') or shutil.which('g++')),
                    reason='no C++ compiler here: installs build d2l-nli without the kernel')
def test_an_install_with_a_compiler_builds_and_loads_the_kernel():
    # Where a compiler exists, `pip install` must have built the library.
    assert fast_ops.fast_layer_norm_available(), fast_ops.status()
    assert d.BERTModel(10, 8, 8, 2, 1, 0.0).encoder.blks[0].ln1.__class__ is fast_ops.LayerNorm
    assert mx.nd.d2l_layer_norm is not None
