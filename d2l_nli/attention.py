"""What BERT's attention looks at: the weights of every layer and head, and a heatmap.

The weights come from the model itself: :class:`AttentionProbe` runs the
encoder's own blocks and asks each block's attention for its weights
(``MultiHeadAttention.weights``, the function its forward pass uses), so
nothing here repeats the model's arithmetic.

    >>> weights = attention_weights(net, vocab, 'A man plays.', 'A person plays.')
    >>> weights.shape                     # (layers, heads, T, T)
    >>> plot_attention(weights, pair_tokens('A man plays.', 'A person plays.'))
"""
import numpy as onp
from mxnet import np
from mxnet.gluon import nn
from mxnet.util import use_np

from .text import get_tokens_and_segments, tokenize_sentence, truncate_pair

__all__ = ['AttentionProbe', 'attention_weights', 'pair_tokens', 'plot_attention',
           'PAIR_PARTS', 'cls_attention_by_part']

# The parts of a pair as BERT reads it, in order.
PAIR_PARTS = ('<cls>', 'premise', 'first <sep>', 'hypothesis', 'last <sep>')


@use_np
class AttentionProbe(nn.HybridBlock):
    """A BERT encoder's attention weights: (B, T) inputs -> (layers, B, heads, T, T).

    ``tokens``, ``segments`` (B, T), ``valid_lens`` (B,). Shares the
    encoder's parameters; dropout is off outside ``autograd.record``.
    (Hybridized, Gluon warns that the last block's feed-forward layers are
    unused: the probe stops at that block's attention.)
    """

    def __init__(self, encoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder

    def hybrid_forward(self, F, tokens, segments, valid_lens):
        X = self.encoder.embed(F, tokens, segments)
        layers = []
        blocks = list(self.encoder.blks)
        for i, blk in enumerate(blocks):
            weights = blk.attention.weights(F, X, X, valid_lens)       # (B*h, T, T)
            heads = blk.attention.num_heads
            layers.append(F.npx.reshape(weights, (-6, -1, heads, -2, -2)))  # (B, h, T, T)
            if i + 1 < len(blocks):  # the last block's output is not needed
                X = blk(X, valid_lens)
        return F.np.stack(layers, axis=0)


def _pair(premise, hypothesis, max_len):
    for name, text in (('premise', premise), ('hypothesis', hypothesis)):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f'the {name} is empty; give a sentence')
    p_tokens, h_tokens = truncate_pair(tokenize_sentence(premise),
                                       tokenize_sentence(hypothesis), max_len)
    return get_tokens_and_segments(p_tokens, h_tokens)


def pair_tokens(premise, hypothesis, max_len=128):
    """The pair as BERT reads it: ``['<cls>', ..., '<sep>', ..., '<sep>']``, cut to ``max_len``."""
    return _pair(premise, hypothesis, max_len)[0]


def attention_weights(net_or_bert, vocab, premise, hypothesis, max_len=None):
    """Every layer's and head's attention for one pair, as NumPy (layers, heads, T, T).

    ``net_or_bert``: a ``BERTClassifier`` or a ``BERTModel`` (their encoder
    is the same object after fine-tuning). ``T`` is the length of
    :func:`pair_tokens` (words outside ``vocab`` are read as ``<unk>``);
    row ``i`` of a matrix is what token ``i`` attends to, and sums to 1.
    ``max_len`` defaults to the chapter's 128, or fewer if the model has
    fewer positions.
    """
    encoder = net_or_bert.encoder
    limit = encoder.pos_embedding.weight.shape[0]
    max_len = min(128, limit) if max_len is None else max_len
    if max_len > limit:
        raise ValueError(f'max_len={max_len} exceeds the {limit} positions the model has')
    tokens, segments = _pair(premise, hypothesis, max_len)
    device = encoder.token_embedding.weight.list_ctx()[0]
    inputs = (np.array([vocab[tokens]], dtype='int32', ctx=device),
              np.array([segments], dtype='int32', ctx=device),
              np.array([len(tokens)], dtype='int32', ctx=device))
    return AttentionProbe(encoder)(*inputs)[:, 0].asnumpy()


def _part_ids(segments, valid_lens):
    """(B, T): which of :data:`PAIR_PARTS` each position is, -1 for padding."""
    pos = onp.arange(segments.shape[1])[None, :]
    valid = valid_lens[:, None]
    in_h = ((segments == 1) & (pos < valid)).sum(axis=1, keepdims=True) - 1  # without its <sep>
    first_sep = valid - in_h - 2
    parts = onp.select([pos == 0, pos < first_sep, pos == first_sep, pos < valid - 1,
                        pos == valid - 1], [0, 1, 2, 3, 4], default=-1)
    return parts


def cls_attention_by_part(net_or_bert, dataset, layer=-1, batch_size=256, uniform=False):
    """How ``<cls>`` shares out its attention in ``layer``, over a dataset: (heads, 5).

    For each head, the weight that the ``<cls>`` query puts on each of
    :data:`PAIR_PARTS` (itself, the premise's tokens, the first ``<sep>``,
    the hypothesis's tokens, the last ``<sep>``), averaged over the pairs
    of ``dataset`` (an ``SNLIBERTDataset``). Each row sums to 1. With
    ``uniform=True``, the reference: the shares of a head that attends
    equally to every token of the pair (the model is not run).
    """
    encoder = net_or_bert.encoder
    probe = AttentionProbe(encoder)
    device = encoder.token_embedding.weight.list_ctx()[0]
    n = len(dataset)
    if n == 0:
        raise ValueError('the dataset has no pairs')
    total = None
    for start in range(0, n, batch_size):
        idx = onp.arange(start, min(start + batch_size, n))
        valid = dataset.valid_lens[idx]
        tokens, segments = dataset.rows(idx, int(valid.max()))
        parts = _part_ids(segments, valid)
        if uniform:
            heads = encoder.blks[0].attention.num_heads
            weights = onp.repeat(((parts >= 0) / valid[:, None])[:, None, :], heads, axis=1)
        else:
            weights = probe(np.array(tokens, ctx=device), np.array(segments, ctx=device),
                            np.array(valid, ctx=device))[layer][:, :, 0, :].asnumpy()  # (B, h, T)
        shares = onp.stack([(weights * (parts == k)[:, None, :]).sum(axis=2)
                            for k in range(len(PAIR_PARTS))], axis=2)  # (B, h, 5)
        total = shares.sum(axis=0) if total is None else total + shares.sum(axis=0)
    return total / n


def plot_attention(weights, tokens, layers=None, heads=None, figsize=None):
    """Heatmaps of ``weights`` (layers, heads, T, T), tokens on both axes; returns the Figure.

    One panel per (layer, head), rows = queries (who attends), columns =
    keys (attended to). ``layers``/``heads``: indices to show (default all).
    """
    from matplotlib.figure import Figure

    weights = onp.asarray(weights)
    if weights.ndim != 4 or weights.shape[2:] != (len(tokens), len(tokens)):
        raise ValueError(f'weights of shape {weights.shape} do not fit {len(tokens)} tokens: '
                         'expected (layers, heads, T, T)')
    layers = range(weights.shape[0]) if layers is None else list(layers)
    heads = range(weights.shape[1]) if heads is None else list(heads)
    side = 0.22 * len(tokens) + 1.5
    fig = Figure(figsize=figsize or (side * len(heads), side * len(layers)))
    axes = fig.subplots(len(layers), len(heads), squeeze=False)
    for row, layer in enumerate(layers):
        for col, head in enumerate(heads):
            ax = axes[row][col]
            image = ax.imshow(weights[layer, head], cmap='Blues', vmin=0, vmax=1)
            ax.set_xticks(range(len(tokens)), tokens, rotation=90, fontsize=7)
            ax.set_yticks(range(len(tokens)), tokens, fontsize=7)
            ax.set_title(f'layer {layer + 1}, head {head + 1}', fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.6, label='attention weight')
    return fig
