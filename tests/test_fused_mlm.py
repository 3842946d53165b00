"""The fused MLM output layer gives the chapter's loss and gradients, on small inputs."""
import mxnet as mx
import numpy as onp
import pytest
from mxnet import autograd, gluon, init, np

import d2l_nli as d
from d2l_nli.fused_mlm import FusedPretrainingStep, MLMOutputLayer, real_slots
from d2l_nli.training import ChapterPretrainingStep, split_batch_multi_inputs

V, B, T, P = 40, 6, 12, 3


def _batch(seed=0, empty_tail=False, no_slots=False):
    rng = onp.random.default_rng(seed)
    tokens = rng.integers(0, V, (B, T))
    segments = (onp.arange(T)[None] > 5).repeat(B, 0)
    valid_lens = rng.integers(6, T + 1, B)
    positions = onp.stack([rng.choice(v, P, replace=False) for v in valid_lens])
    weights = onp.ones((B, P))
    weights[0, 2] = weights[3, 1:] = 0  # padding slots
    if empty_tail:  # the second device's half of the batch has no real slot
        weights[B // 2:] = 0
    if no_slots:
        weights[:] = 0
    labels = rng.integers(0, V, (B, P))
    nsp_y = rng.integers(0, 2, B)
    return d.PretrainingBatch(*(np.array(a, dtype='float32') for a in (
        tokens, segments, valid_lens, positions, weights, labels, nsp_y)))


def _gradients(fused, devices, batch, num_workers=1, steps=1):
    mx.random.seed(1)
    bert = d.BERTModel(V, 16, 32, 2, 2, 0.0, max_len=T)
    bert.initialize(init.Xavier(), ctx=devices)
    bert.hybridize(static_alloc=True)
    if steps > 1:  # gradients add up over the steps (gradient accumulation)
        for p in bert.collect_params().values():
            p.grad_req = 'add'
    loss = gluon.loss.SoftmaxCELoss()
    step = (FusedPretrainingStep(bert, loss) if fused
            else ChapterPretrainingStep(bert, loss, V))  # the chapter's autograd path
    X_shards, y_shards = split_batch_multi_inputs(batch.inputs, batch.nsp_labels, devices)
    for _ in range(steps):
        mlm_ls, nsp_ls = step(batch, X_shards, y_shards, num_workers)
    grads = {name: sum(p.grad(dev).asnumpy() for dev in devices)
             for name, p in bert._collect_params_with_prefix().items()}
    return sum(m.item() for m in mlm_ls), sum(n.item() for n in nsp_ls), grads


def _assert_same(grads1, grads0):
    for name, g in grads0.items():
        scale = max(onp.abs(g).max(), 1e-6)
        onp.testing.assert_allclose(grads1[name], g, atol=1e-5 * scale, rtol=1e-4,
                                    err_msg=name)


@pytest.mark.parametrize('devices,empty_tail', [([mx.cpu(0)], False),
                                                ([mx.cpu(0), mx.cpu(1)], False),
                                                ([mx.cpu(0), mx.cpu(1)], True)])
def test_fused_step_gives_the_chapters_losses_and_gradients(devices, empty_tail):
    batch = _batch(empty_tail=empty_tail)
    mlm0, nsp0, grads0 = _gradients(False, devices, batch)
    mlm1, nsp1, grads1 = _gradients(True, devices, batch)
    assert mlm1 == pytest.approx(mlm0, rel=1e-5) and nsp1 == pytest.approx(nsp0, rel=1e-6)
    _assert_same(grads1, grads0)
    # Every parameter got a gradient, the MLM output layer's included.
    assert onp.abs(grads1['mlm.mlp.2.weight']).sum() > 0


def test_fused_step_with_workers_accumulation_and_no_real_slot():
    batch = _batch()
    # Two workers: each device's gradient is half of one worker's; losses as reported.
    for fused in (False, True):
        mlm1, nsp1, grads1 = _gradients(fused, [mx.cpu()], batch)
        mlm2, nsp2, grads2 = _gradients(fused, [mx.cpu()], batch, num_workers=2)
        assert mlm2 == pytest.approx(mlm1, rel=1e-6) and nsp2 == pytest.approx(nsp1)
        _assert_same(grads2, {k: g / 2 for k, g in grads1.items()})
    # grad_req='add': two steps without zeroing, the same sums as the chapter's.
    _assert_same(_gradients(True, [mx.cpu()], batch, steps=2)[2],
                 _gradients(False, [mx.cpu()], batch, steps=2)[2])
    # No real slot at all: MLM loss 0 and no MLM gradient, NSP as before.
    empty = _batch(no_slots=True)
    mlm0, nsp0, grads0 = _gradients(False, [mx.cpu()], empty)
    mlm1, nsp1, grads1 = _gradients(True, [mx.cpu()], empty)
    assert mlm1 == mlm0 == 0 and nsp1 == pytest.approx(nsp0)
    _assert_same(grads1, grads0)
    assert onp.abs(grads1['mlm.mlp.2.weight']).max() == 0


def test_fused_step_applies_only_to_the_chapters_loss_and_model():
    bert = d.BERTModel(V, 16, 32, 2, 1, 0.0, max_len=T)
    assert FusedPretrainingStep.applies(bert, gluon.loss.SoftmaxCELoss())
    assert not FusedPretrainingStep.applies(bert, gluon.loss.SoftmaxCELoss(sparse_label=False))
    assert not FusedPretrainingStep.applies(bert, gluon.loss.SoftmaxCELoss(weight=2.0))

    class Other(d.BERTModel):
        def hybrid_forward(self, F, *args):
            return super().hybrid_forward(F, *args)

    assert not FusedPretrainingStep.applies(Other(V, 16, 32, 2, 1, 0.0, max_len=T),
                                            gluon.loss.SoftmaxCELoss())


def test_output_layer_matches_autograd_with_weights_and_a_growing_buffer():
    dense = gluon.nn.Dense(V, in_units=8, flatten=False)
    dense.initialize(init.Xavier())
    layer = MLMOutputLayer(dense)
    rng = onp.random.default_rng(3)
    for rows in (5, 11, 3):  # larger than the buffer, then smaller again
        hidden = np.array(rng.normal(size=(rows, 8)), dtype='float32')
        labels = np.array(rng.integers(0, V, rows), dtype='int32')
        scale = np.array(rng.uniform(0, 2, rows), dtype='float32')  # any weights
        loss, d_hidden, d_weight, d_bias = layer(hidden, labels, scale)
        x = hidden.copy()
        x.attach_grad()
        with autograd.record():
            expected = (gluon.loss.SoftmaxCELoss()(dense(x), labels) * scale).sum()
        expected.backward()
        assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
        onp.testing.assert_allclose(d_hidden.asnumpy(), x.grad.asnumpy(), rtol=1e-4, atol=1e-5)
        onp.testing.assert_allclose(d_weight.asnumpy(), dense.weight.grad().asnumpy(), rtol=1e-4,
                                    atol=1e-5)
        onp.testing.assert_allclose(d_bias.asnumpy(), dense.bias.grad().asnumpy(), rtol=1e-4,
                                    atol=1e-5)


def test_real_slots_lists_the_slots_of_nonzero_weight():
    positions = onp.array([[1, 4, 0], [2, 3, 5]])
    weights = onp.array([[1, 1, 0], [1, 0, 0]])
    labels = onp.array([[7, 8, 0], [9, 0, 0]])
    rows, cols, ys, ws = real_slots(positions, weights, labels)
    assert rows.tolist() == [0, 0, 1] and cols.tolist() == [1, 4, 2]
    assert ys.tolist() == [7, 8, 9] and ws.tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match=r'token ids in \[0, 9\), got ids from 7 to 9'):
        real_slots(positions, weights, labels, vocab_size=9)


def test_train_bert_fused_and_plain_end_at_the_same_parameters(demo_root):
    results = []
    for fused in (True, False):
        train_iter, vocab = d.load_data_wiki(24, 40, data_dir=demo_root, seed=0)
        mx.random.seed(0)
        bert = d.BERTModel(len(vocab), 16, 32, 2, 1, 0.0, max_len=40)
        bert.initialize(init.Xavier())
        bert.hybridize()
        metrics = d.train_bert(train_iter, bert, gluon.loss.SoftmaxCELoss(), len(vocab),
                               [mx.cpu()], 4, lr=1e-2, fused_mlm=fused)
        results.append((metrics, {k: p.data().asnumpy()
                                  for k, p in bert._collect_params_with_prefix().items()}))
    (m_fused, p_fused), (m_plain, p_plain) = results
    assert m_fused['mlm_loss'] == pytest.approx(m_plain['mlm_loss'], rel=1e-4)
    for name in p_plain:
        onp.testing.assert_allclose(p_fused[name], p_plain[name], atol=2e-5, err_msg=name)
