"""BERT as in the chapter, written as HybridBlocks that really hybridize.

Shapes use ``B`` batch, ``T`` tokens per example, ``H`` hidden units,
``h`` heads, ``P`` prediction positions per example and ``V`` vocabulary.

Differences from the book's code, all deliberate:

* Every block implements ``hybrid_forward(self, F, ...)`` with ``F.np`` /
  ``F.npx`` (MXNet 1.9.1 silently leaves a HybridBlock that overrides
  ``forward`` imperative), and shapes are never read in Python, so
  ``hybridize()`` compiles one graph that serves every sequence length.
* Attention masks each head with its own example's valid length (the
  reference tiled the lengths across heads, masking with other examples'
  lengths); padded key positions get exactly zero weight, so outputs at
  valid positions do not depend on the padding.
* Every layer declares its input size, so nothing waits for deferred shape
  inference (the reference's unused MLM head broke ``trainer.step``).
* LayerNorms are :class:`d2l_nli.fast_ops.LayerNorm`: ``nn.LayerNorm``
  with a compiled CPU kernel when it was built (same parameters, same
  results, a 5x faster backward).
"""
import dataclasses
import math

from mxnet.gluon import nn
from mxnet.util import use_np

from .fast_ops import LayerNorm
from .settings import BERTConfig

__all__ = ['MultiHeadAttention', 'EncoderBlock', 'BERTEncoder',
           'MaskLM', 'NextSentencePred', 'BERTModel']


@use_np
class MultiHeadAttention(nn.HybridBlock):
    """Scaled dot-product attention over ``num_heads`` heads.

    ``queries`` (B, Tq, H), ``keys``/``values`` (B, Tk, H), ``valid_lens``
    (B,) -> (B, Tq, H). Keys at positions ``>= valid_lens[b]`` are ignored.
    """

    def __init__(self, num_hiddens, num_heads, dropout, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = num_heads
        self.scale = 1 / math.sqrt(num_hiddens // num_heads)
        dense = dict(use_bias=False, flatten=False, in_units=num_hiddens)
        self.W_q = nn.Dense(num_hiddens, **dense)
        self.W_k = nn.Dense(num_hiddens, **dense)
        self.W_v = nn.Dense(num_hiddens, **dense)
        self.W_o = nn.Dense(num_hiddens, **dense)
        self.dropout = nn.Dropout(dropout)

    def _split_heads(self, F, X):
        # (B, T, H) -> (B, T, h, H/h) -> (B, h, T, H/h) -> (B*h, T, H/h)
        X = F.npx.reshape(X, (-2, -2, self.num_heads, -1))
        return F.npx.reshape(F.np.transpose(X, (0, 2, 1, 3)), (-5, -2, -2))

    def _merge_heads(self, F, X):
        # (B*h, T, H/h) -> (B, h, T, H/h) -> (B, T, h, H/h) -> (B, T, H)
        X = F.npx.reshape(X, (-6, -1, self.num_heads, -2, -2))
        return F.npx.reshape(F.np.transpose(X, (0, 2, 1, 3)), (-2, -2, -5))

    def weights(self, F, queries, keys, valid_lens):
        """The attention weights (B*h, Tq, Tk); head j of example b is row b*h + j.

        Each query's weights over the keys sum to 1; keys at positions
        ``>= valid_lens[b]`` get exactly 0 (see :mod:`d2l_nli.attention`).
        """
        q = self._split_heads(F, self.W_q(queries))
        k = self._split_heads(F, self.W_k(keys))
        scores = F.npx.batch_dot(q, k, transpose_b=True) * self.scale   # (B*h, Tq, Tk)
        # Head j of example b sits at row b*h + j: repeat each length h times.
        lens = F.np.repeat(valid_lens.astype('int32'), self.num_heads, axis=0)
        # The softmax wants one length per query row: (B*h, Tq).
        zeros = F.np.zeros_like(F.npx.arange_like(q, axis=1)).astype('int32')
        lens = F.np.expand_dims(lens, axis=1) + F.np.expand_dims(zeros, axis=0)
        return F.npx.softmax(scores, length=lens, use_length=True, axis=-1)

    def hybrid_forward(self, F, queries, keys, values, valid_lens):
        weights = self.weights(F, queries, keys, valid_lens)
        v = self._split_heads(F, self.W_v(values))
        return self.W_o(self._merge_heads(F, F.npx.batch_dot(self.dropout(weights), v)))


@use_np
class EncoderBlock(nn.HybridBlock):
    """Post-LN transformer block: attention and a position-wise FFN, each with
    dropout, a residual connection and layer normalization. (B, T, H) -> (B, T, H)."""

    def __init__(self, num_hiddens, ffn_num_hiddens, num_heads, dropout, **kwargs):
        super().__init__(**kwargs)
        self.attention = MultiHeadAttention(num_hiddens, num_heads, dropout)
        self.ffn1 = nn.Dense(ffn_num_hiddens, activation='relu', flatten=False,
                             in_units=num_hiddens)
        self.ffn2 = nn.Dense(num_hiddens, flatten=False, in_units=ffn_num_hiddens)
        self.dropout = nn.Dropout(dropout)
        self.ln1 = LayerNorm(in_channels=num_hiddens)
        self.ln2 = LayerNorm(in_channels=num_hiddens)

    def hybrid_forward(self, F, X, valid_lens):
        Y = self.ln1(X + self.dropout(self.attention(X, X, X, valid_lens)))
        return self.ln2(Y + self.dropout(self.ffn2(self.ffn1(Y))))


@use_np
class BERTEncoder(nn.HybridBlock):
    """Token + segment + learned positional embeddings, then encoder blocks.

    ``tokens``, ``segments`` (B, T) with ``T <= max_len``, ``valid_lens``
    (B,) -> encoded sequence (B, T, H). With ``embedding_norm`` the sum of
    the embeddings is layer-normalized before the first block (the original
    BERT does; the chapter does not): each block then starts from inputs of
    the same scale, whatever the scale the embedding tables were drawn at.
    """

    def __init__(self, vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_layers,
                 dropout, max_len=1000, embedding_norm=False, **kwargs):
        super().__init__(**kwargs)
        self.token_embedding = nn.Embedding(vocab_size, num_hiddens)
        self.segment_embedding = nn.Embedding(2, num_hiddens)
        # A learned vector per position, looked up by position index.
        self.pos_embedding = nn.Embedding(max_len, num_hiddens)
        self.embedding_norm = LayerNorm(in_channels=num_hiddens) if embedding_norm else None
        self.blks = nn.HybridSequential()
        for _ in range(num_layers):
            self.blks.add(EncoderBlock(num_hiddens, ffn_num_hiddens, num_heads, dropout))

    def embed(self, F, tokens, segments):
        """The first block's input: the sum of the three embeddings, (B, T, H)."""
        positions = F.npx.arange_like(tokens, axis=1)                     # (T,)
        X = self.token_embedding(tokens) + self.segment_embedding(segments)
        X = X + F.np.expand_dims(self.pos_embedding(positions), axis=0)
        if self.embedding_norm is not None:
            X = self.embedding_norm(X)
        return X

    def hybrid_forward(self, F, tokens, segments, valid_lens):
        X = self.embed(F, tokens, segments)
        for blk in self.blks:
            X = blk(X, valid_lens)
        return X


@use_np
class MaskLM(nn.HybridBlock):
    """Masked-language-model head: (B, T, H) and positions (B, P) -> logits (B, P, V)."""

    def __init__(self, vocab_size, num_hiddens, **kwargs):
        super().__init__(**kwargs)
        self.mlp = nn.HybridSequential()
        self.mlp.add(nn.Dense(num_hiddens, activation='relu', flatten=False,
                              in_units=num_hiddens),
                     LayerNorm(in_channels=num_hiddens),
                     nn.Dense(vocab_size, flatten=False, in_units=num_hiddens))

    def hybrid_forward(self, F, X, pred_positions):
        # Row index of each position: (B, P) holding b in row b.
        pred_positions = pred_positions.astype('int32')
        rows = F.np.expand_dims(F.npx.arange_like(pred_positions, axis=0).astype('int32'),
                                axis=1) + F.np.zeros_like(pred_positions)
        masked_X = F.npx.gather_nd(X, F.np.stack([rows, pred_positions], axis=0))  # (B, P, H)
        return self.output(self.hidden(masked_X))

    def hidden(self, masked_X):
        """The head up to its output layer: (..., H) -> (..., H)."""
        return self.mlp[1](self.mlp[0](masked_X))

    @property
    def output(self):
        """The output layer over the vocabulary, (..., H) -> (..., V)."""
        return self.mlp[2]


@use_np
class NextSentencePred(nn.HybridBlock):
    """Next-sentence head: (B, H) -> logits (B, 2)."""

    def __init__(self, num_hiddens, **kwargs):
        super().__init__(**kwargs)
        self.output = nn.Dense(2, in_units=num_hiddens)

    def hybrid_forward(self, F, X):
        return self.output(X)


@use_np
class BERTModel(nn.HybridBlock):
    """Encoder, masked-LM head and next-sentence head.

    ``tokens``, ``segments`` (B, T), ``valid_lens`` (B,), ``pred_positions``
    (B, P) -> ``(encoded_X (B, T, H), mlm_Y_hat (B, P, V), nsp_Y_hat (B, 2))``.
    Without ``pred_positions`` (only before hybridizing: a compiled graph
    keeps the inputs it was first called with) ``mlm_Y_hat`` is None.
    """

    def __init__(self, vocab_size, num_hiddens, ffn_num_hiddens, num_heads, num_layers,
                 dropout, max_len=1000, embedding_norm=False, **kwargs):
        super().__init__(**kwargs)
        self.config = BERTConfig(vocab_size, num_hiddens, ffn_num_hiddens, num_heads,
                                 num_layers, dropout, max_len, embedding_norm)
        self.encoder = BERTEncoder(vocab_size, num_hiddens, ffn_num_hiddens, num_heads,
                                   num_layers, dropout, max_len, embedding_norm)
        self.hidden = nn.Dense(num_hiddens, activation='tanh', in_units=num_hiddens)
        self.mlm = MaskLM(vocab_size, num_hiddens)
        self.nsp = NextSentencePred(num_hiddens)

    @classmethod
    def from_config(cls, config):
        """The model a :class:`~d2l_nli.BERTConfig` describes (its ``vocab_size`` set)."""
        if config.vocab_size is None:
            raise ValueError('the BERTConfig has no vocab_size; set it from the data: '
                             'dataclasses.replace(config, vocab_size=len(vocab))')
        return cls(**dataclasses.asdict(config))

    def init_embeddings(self, sigma=0.02, seed=None):
        """Redraw the three embedding tables from N(0, ``sigma``), after ``initialize``.

        ``init.Xavier()`` scales each table by its own shape: the 20,256-row
        token table starts at U(+-0.017) but the 2-row segment table at
        U(+-0.21), so at first a token's identity is a few percent of its
        input vector and every position looks like its segment. The original
        BERT (and GluonNLP) draw all three from N(0, 0.02): words, positions
        and segments then start on an equal footing. ``seed`` makes the draw
        independent of MXNet's global random state.
        """
        import numpy as onp
        from mxnet import np

        rng = onp.random.default_rng(seed)
        enc = self.encoder
        for table in (enc.token_embedding, enc.pos_embedding, enc.segment_embedding):
            weight = table.weight
            weight.set_data(np.array(rng.normal(0, sigma, weight.shape), dtype='float32'))

    def init_mlm_bias(self, log_probs):
        """Start the MLM output bias at unigram log-frequencies (V,), after ``initialize``.

        The untrained model then already predicts word frequencies (loss
        near the unigram entropy instead of ln V), so training spends its
        steps on context. See :func:`d2l_nli.mlm_unigram`.
        """
        from mxnet import np

        bias = self.mlm.mlp[-1].bias
        if tuple(log_probs.shape) != bias.shape:
            raise ValueError(f'log_probs has shape {tuple(log_probs.shape)}, the MLM bias '
                             f'{bias.shape}')
        bias.set_data(np.array(log_probs, dtype='float32'))

    def hybrid_forward(self, F, tokens, segments, valid_lens, pred_positions=None):
        encoded_X = self.encoder(tokens, segments, valid_lens)
        mlm_Y_hat = self.mlm(encoded_X, pred_positions) if pred_positions is not None else None
        return encoded_X, mlm_Y_hat, self.next_sentence(encoded_X)

    def next_sentence(self, encoded_X):
        """NSP logits (B, 2): the <cls> token's vector, through a tanh layer."""
        return self.nsp(self.hidden(encoded_X[:, 0, :]))
