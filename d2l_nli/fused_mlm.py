"""The masked-LM output layer's loss and gradients in one pass: exact, about 2x less work.

The chapter computes, per pretraining step, logits over the whole
vocabulary (V = 20,256 words) for every prediction slot, their log-softmax,
``pick`` of the labels, and autograd's backward of all three. At batch 256
that is a (2,000 x 20,256) array (160 MB) written and read many times, and
on a CPU most of that time goes to memory, not arithmetic: every fresh
160 MB buffer is page-faulted in at about 3 GB/s, and ``log_softmax`` and
``pick`` each have a separate backward pass.

Here the output layer runs outside autograd, on one buffer that is reused
from step to step:

1. logits of the *real* prediction slots only (padding slots, weight 0,
   are never computed), written into the buffer;
2. the softmax, in place: ``p``;
3. the loss ``-log p[label]`` is read off, and ``p[label] -= 1`` turns ``p``
   into the gradient of the cross-entropy with respect to the logits,
   ``softmax - one_hot`` (scaled per row by the slot's weight and the
   batch's normalizer, which is folded into the small matrices below);
4. the gradients of the output layer (its weight and bias in one matrix
   product) and of its input, the masked positions' hidden vectors.

The input's gradient is handed to autograd (``autograd.backward`` with a
head gradient), which carries it through the rest of BERT; the layer's own
gradients reach its parameters through a tiny recorded product (see
:func:`record_output_grads`), so ``gluon.Trainer`` sees ordinary, fresh
gradients (``grad_req='add'`` and several devices included). The result is
the same loss and the same gradients as the plain computation, up to float
rounding: ``tests/test_fused_mlm.py`` checks both. (One difference: a slot
whose probability underflows to 0 reports a loss of 87.3 nats, not more.)
"""
import re
import warnings

import mxnet as mx
import numpy as onp
from mxnet import autograd, np, npx
from mxnet.gluon import nn
from mxnet.util import use_np

__all__ = ['MaskedLMFeatures', 'MLMOutputLayer', 'FusedPretrainingStep', 'real_slots',
           'record_output_grads']

# p[label] can underflow to 0 for a hopeless prediction; its loss is then
# reported as -log(1.18e-38) = 87.3 nats instead of infinity.
_TINY = float(onp.finfo('float32').tiny)


@use_np
class MaskedLMFeatures(nn.HybridBlock):
    """A ``BERTModel``'s pretraining outputs, up to the MLM output layer.

    ``tokens``, ``segments`` (B, T), ``valid_lens`` (B,), ``pred_rows``,
    ``pred_cols`` (N,): the example and position of each real prediction
    slot -> ``(mlm_hidden (N, H), nsp_Y_hat (B, 2))``. ``mlm_hidden`` is what
    the MLM head feeds its last Dense layer (``bert.mlm.output``). Shares
    all parameters with ``bert``; hybridize it like ``bert``.
    """

    def __init__(self, bert, **kwargs):
        super().__init__(**kwargs)
        self.bert = bert

    def hybrid_forward(self, F, tokens, segments, valid_lens, pred_rows, pred_cols):
        encoded_X = self.bert.encoder(tokens, segments, valid_lens)
        masked_X = F.npx.gather_nd(encoded_X, F.np.stack([pred_rows, pred_cols], axis=0))
        return self.bert.mlm.hidden(masked_X), self.bert.next_sentence(encoded_X)


def real_slots(pred_positions, mlm_weights, mlm_Y, vocab_size=None):
    """The real prediction slots of a batch, as NumPy arrays.

    ``pred_positions``, ``mlm_weights``, ``mlm_Y`` (B, P) -> ``(rows,
    cols, labels, weights)``, each (N,) for the N slots of nonzero weight:
    their example, position, label and weight. With ``vocab_size``, a
    label outside ``[0, vocab_size)`` is a ValueError (the fused layer
    indexes with labels and does not clip them as ``pick`` does).
    """
    weights = onp.asarray(mlm_weights)
    rows, slots = onp.nonzero(weights > 0)
    cols = onp.asarray(pred_positions)[rows, slots]
    labels = onp.asarray(mlm_Y)[rows, slots]
    if vocab_size is not None and len(labels) and not (
            0 <= labels.min() and labels.max() < vocab_size):
        raise ValueError(f'MLM labels must be token ids in [0, {vocab_size}), got ids from '
                         f'{labels.min():g} to {labels.max():g}: are the data and the model '
                         'built with the same vocabulary?')
    return (rows.astype('int32'), cols.astype('int32'), labels.astype('int32'),
            weights[rows, slots].astype('float32'))


class MLMOutputLayer:
    """Loss and gradients of ``dense`` (the MLM head's last layer) under softmax CE.

    One object per training run: it keeps one logits buffer per device and
    grows it when a batch has more real slots than any before.
    """

    def __init__(self, dense):
        self.dense = dense
        self._buffers = {}

    def _logits_buffer(self, rows, ctx):
        vocab_size = self.dense.weight.shape[0]
        buf = self._buffers.get(ctx)
        if buf is None or buf.shape[0] < rows:
            # Room for 25% more rows than needed: batch widths vary.
            self._buffers[ctx] = buf = np.empty((int(rows * 1.25) + 1, vocab_size), ctx=ctx,
                                                dtype=self.dense.weight.dtype)
        return buf[:rows]

    def __call__(self, hidden, labels, row_scale):
        """Forward and backward of the output layer, without autograd.

        ``hidden`` (N, H): the layer's input; ``labels`` (N,) int32;
        ``row_scale`` (N,): each slot's weight times the loss normalizer.
        Returns ``(loss, d_hidden, d_weight, d_bias)``: the scaled loss sum
        ``sum_i row_scale[i] * CE_i`` (a scalar array) and its gradients,
        (N, H), (V, H) and (V,). Nothing is synced to the host.
        """
        ctx = hidden.ctx
        weight, bias = self.dense.weight.data(ctx), self.dense.bias.data(ctx)
        num_rows, num_hiddens = hidden.shape
        hidden = hidden.detach()
        probs = self._logits_buffer(num_rows, ctx)
        # The legacy operators take ``out=`` (the numpy-mode ones allocate).
        nd_probs = probs.as_nd_ndarray()
        npx.fully_connected(hidden, weight, bias, num_hidden=weight.shape[0], out=probs)
        npx.softmax(probs, axis=-1, out=probs)
        at_label = (np.arange(num_rows, dtype='int32', ctx=ctx), labels)
        p_label = probs[at_label]
        loss = -(np.log(np.maximum(p_label, _TINY)) * row_scale).sum()
        probs[at_label] = p_label - 1  # probs now holds softmax - one_hot
        scale = np.expand_dims(row_scale, axis=1)
        # One product gives the weight's and the bias's gradients:
        # (N, H + 1)^T (N, V) -> (H + 1, V), then W's rows transposed.
        # (linalg.gemm2 in this order and fully_connected were the fastest
        # CPU routes for these shapes: benchmarks/mlm_levers.py.)
        inputs = np.concatenate([hidden * scale, scale], axis=1).as_nd_ndarray()
        d_bias_weight = mx.nd.linalg.gemm2(inputs, nd_probs, transpose_a=True).as_np_ndarray()
        # (N, V) (V, H) as fully_connected(probs, W^T): no bias, H outputs.
        d_hidden = npx.fully_connected(probs, np.transpose(weight), num_hidden=num_hiddens,
                                       no_bias=True) * scale
        return (loss, d_hidden, np.transpose(d_bias_weight[:num_hiddens]),
                d_bias_weight[num_hiddens])


def record_output_grads(dense, ctx, d_weight, d_bias):
    """A recorded scalar whose gradient puts ``d_weight``, ``d_bias`` on ``dense``.

    Call inside ``autograd.record()`` and include the result in the
    backward pass: d/dW <W, G> = G, so autograd itself writes the
    gradients computed outside it, the way it writes every other one.
    """
    # Dot products of the flattened arrays: one pass each, faster than sum(W * G).
    return (np.dot(dense.weight.data(ctx).reshape(-1), d_weight.reshape(-1))
            + np.dot(dense.bias.data(ctx), d_bias))


class FusedPretrainingStep:
    """Forward and backward of one pretraining step, with the fused MLM output layer.

    ``step(batch, X_shards, y_shards, num_workers)``: ``batch`` is a
    :class:`~d2l_nli.PretrainingBatch`, ``X_shards`` and ``y_shards`` the
    per-device shards of its inputs and of its NSP labels (from
    :func:`d2l_nli.split_batch_multi_inputs`). Leaves the gradients
    of the batch's mean MLM + NSP loss on the parameters (divided by
    ``num_workers``, as ``train_bert``'s plain step does) and returns
    the per-device ``(mlm_losses, nsp_losses)``, unsynced, each
    normalized by the whole batch. Hybridizes ``bert`` (static memory).
    """

    def __init__(self, bert, nsp_loss):
        self.bert = bert
        self.features = MaskedLMFeatures(bert)
        self.features.hybridize(static_alloc=True)
        self.output = MLMOutputLayer(bert.mlm.output)
        self.nsp_loss = nsp_loss
        a, b = (re.escape(p.name) for p in bert.mlm.output.collect_params().values())
        self._unused_warning = f'Parameter ({a}, {b}|{b}, {a}) is not used'

    @staticmethod
    def applies(net, loss):
        """Whether the fused step computes exactly what ``loss`` asks of ``net``.

        True for a :class:`d2l_nli.BERTModel` (not a subclass with its own
        forward) and an unweighted, sparse-label ``SoftmaxCrossEntropyLoss``
        on logits, the chapter's loss; other losses need autograd.
        """
        from mxnet.gluon.loss import SoftmaxCrossEntropyLoss

        from .model import BERTModel

        plain_loss = (type(loss) is SoftmaxCrossEntropyLoss
                      and getattr(loss, '_sparse_label', True)
                      and not getattr(loss, '_from_logits', False)
                      and getattr(loss, '_weight', None) is None
                      and getattr(loss, '_axis', -1) == -1)
        return (isinstance(net, BERTModel)
                and type(net).hybrid_forward is BERTModel.hybrid_forward and plain_loss)

    def __call__(self, batch, X_shards, y_shards, num_workers=1):
        # Host-side bookkeeping on the batch's small input arrays (they are
        # ready: this waits for nothing the model computes).
        rows, cols, labels, weights = real_slots(
            batch.pred_positions.asnumpy(), batch.mlm_weights.asnumpy(),
            batch.mlm_labels.asnumpy(), self.bert.config.vocab_size)
        mlm_scale = 1 / (max(float(weights.sum()), 1e-8) * num_workers)
        batch_size = len(batch.mlm_weights)
        heads, head_grads, mlm_ls, nsp_ls, start = [], [], [], [], 0
        for X, y in zip(X_shards, y_shards):
            ctx, end = y.ctx, start + len(y)
            mine = (rows >= start) & (rows < end)
            if mine.any():
                shard = rows[mine] - start, cols[mine], labels[mine], weights[mine] * mlm_scale
            else:  # one slot of weight 0 keeps the shapes non-empty
                shard = (onp.zeros(1, 'int32'),) * 3 + (onp.zeros(1, 'float32'),)
            slot_rows, slot_cols, slot_labels, slot_scale = (np.array(a, ctx=ctx) for a in shard)
            with autograd.record(), warnings.catch_warnings():
                # The output layer's parameters are used outside this graph.
                warnings.filterwarnings('ignore', self._unused_warning)
                hidden, nsp_Y_hat = self.features(*X[:3], slot_rows, slot_cols)
            mlm_l, d_hidden, d_weight, d_bias = self.output(hidden, slot_labels, slot_scale)
            with autograd.record():
                nsp_l = self.nsp_loss(nsp_Y_hat, y).sum() / batch_size
                rest = nsp_l / num_workers + record_output_grads(self.output.dense, ctx,
                                                                 d_weight, d_bias)
            heads += [hidden, rest]
            head_grads += [d_hidden, None]
            mlm_ls.append(mlm_l * num_workers)  # reported like the plain step's
            nsp_ls.append(nsp_l)
            start = end
        autograd.backward(heads, head_grads)
        return mlm_ls, nsp_ls
