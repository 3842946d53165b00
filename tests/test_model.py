"""The BERT model: shapes, exact masking of padding, hybridization."""
import dataclasses

import mxnet as mx
import numpy as onp
import pytest
from mxnet import init, np

from d2l_nli import BERTConfig, BERTModel

V = 50


def _bert(num_heads, hybridize=False, seed=0):
    mx.random.seed(seed)
    net = BERTModel(V, num_hiddens=16, ffn_num_hiddens=32, num_heads=num_heads,
                    num_layers=2, dropout=0.0, max_len=40)
    net.initialize(init.Xavier())
    if hybridize:
        net.hybridize(static_alloc=True)
    return net


def _batch(width, pad_token=1, rng=None):
    rng = rng or onp.random.default_rng(0)
    valid = onp.array([9, 4, 7], dtype=onp.int32)
    tokens = onp.full((3, width), pad_token, dtype=onp.int32)
    segments = onp.zeros((3, width), dtype=onp.int32)
    base = onp.random.default_rng(1).integers(5, V, size=(3, 9))
    for i, n in enumerate(valid):
        tokens[i, :n] = base[i, :n]
        segments[i, n // 2:n] = 1
    positions = onp.array([[1, 2], [1, 3], [2, 5]], dtype=onp.int32)
    return tokens, segments, valid, positions


def _run(net, tokens, segments, valid, positions):
    outs = net(np.array(tokens), np.array(segments), np.array(valid), np.array(positions))
    return [o.asnumpy() for o in outs]


@pytest.mark.parametrize('num_heads', [1, 2, 4])
@pytest.mark.parametrize('hybridize', [False, True])
def test_outputs_at_valid_positions_ignore_the_padding(num_heads, hybridize):
    net = _bert(num_heads, hybridize)
    tokens, segments, valid, positions = _batch(9)
    ref = _run(net, tokens, segments, valid, positions)
    rng = onp.random.default_rng(5)
    # Other padding content, then a longer padded length with random content.
    other = tokens.copy()
    for i, n in enumerate(valid):
        other[i, n:] = rng.integers(0, V, size=9 - n)
    longer = onp.concatenate([other, rng.integers(0, V, size=(3, 6))], axis=1).astype(onp.int32)
    longer_segments = onp.concatenate([segments, onp.ones((3, 6), onp.int32)], axis=1)
    for t, s in ((other, segments), (longer, longer_segments)):
        enc, mlm, nsp = _run(net, t, s, valid, positions)
        for i, n in enumerate(valid):
            onp.testing.assert_allclose(enc[i, :n], ref[0][i, :n], atol=1e-5)
        onp.testing.assert_allclose(mlm, ref[1], atol=1e-5)
        onp.testing.assert_allclose(nsp, ref[2], atol=1e-5)


def test_shapes_and_gathered_positions():
    net = _bert(2)
    tokens, segments, valid, positions = _batch(9)
    enc, mlm, nsp = _run(net, tokens, segments, valid, positions)
    assert enc.shape == (3, 9, 16) and mlm.shape == (3, 2, V) and nsp.shape == (3, 2)
    # The MLM head reads the encoder output at exactly the given positions.
    rows = onp.arange(3)[:, None]
    expected = net.mlm.mlp(np.array(enc[rows, positions])).asnumpy()
    onp.testing.assert_allclose(mlm, expected, atol=1e-5)
    encoded, mlm_none, _ = net(np.array(tokens), np.array(segments), np.array(valid))
    assert mlm_none is None and encoded.shape == (3, 9, 16)


def test_hybridized_equals_imperative_and_builds_a_graph():
    imperative, hybrid = _bert(2, seed=3), _bert(2, hybridize=True, seed=3)
    tokens, segments, valid, positions = _batch(9)
    for a, b in zip(_run(imperative, tokens, segments, valid, positions),
                    _run(hybrid, tokens, segments, valid, positions)):
        onp.testing.assert_allclose(a, b, atol=1e-5)
    assert hybrid._cached_op is not None and hybrid._cached_graph
    assert imperative._cached_op is None
    # One graph serves other sequence lengths.
    tokens, segments, valid, positions = _batch(13)
    _run(hybrid, tokens, segments, valid, positions)


def test_a_config_without_vocabulary_describes_sizes_only():
    sizes = BERTConfig(num_hiddens=8, ffn_num_hiddens=8, num_heads=2, num_layers=1)
    with pytest.raises(ValueError, match='no vocab_size.*len\\(vocab\\)'):
        BERTModel.from_config(sizes)
    net = BERTModel.from_config(dataclasses.replace(sizes, vocab_size=12, max_len=16))
    assert net.config == dataclasses.replace(sizes, vocab_size=12, max_len=16)
    with pytest.raises(ValueError, match='vocab_size must be a positive integer'):
        BERTConfig(vocab_size=0)


def test_config_is_validated():
    with pytest.raises(ValueError, match='divisible'):
        BERTConfig(100, num_hiddens=10, num_heads=3)
    with pytest.raises(ValueError, match='positive integer'):
        BERTConfig(0)
    with pytest.raises(ValueError, match='dropout'):
        BERTConfig(10, dropout=1.0)
    assert BERTModel.from_config(BERTConfig(10, 8, 8, 2, 1, 0.1, 20)).config.max_len == 20


def test_init_embeddings_puts_all_three_tables_on_the_same_scale():
    net = _bert(2)
    enc = net.encoder
    tables = (enc.token_embedding, enc.pos_embedding, enc.segment_embedding)
    # Xavier: each table's scale comes from its own shape (2 x 16 segments: large).
    assert tables[2].weight.data().asnumpy().std() > 0.2
    net.init_embeddings(0.02, seed=5)
    drawn = [t.weight.data().asnumpy() for t in tables]
    assert all(abs(w.std() - 0.02) < 0.006 and abs(w.mean()) < 0.01 for w in drawn[:2])
    net.init_embeddings(0.02, seed=5)
    assert all((t.weight.data().asnumpy() == w).all() for t, w in zip(tables, drawn))


def test_embedding_norm_normalizes_the_first_blocks_input():
    mx.random.seed(0)
    net = BERTModel(V, 16, 32, 2, 2, 0.0, max_len=40, embedding_norm=True)
    net.initialize(init.Xavier())
    plain = BERTModel(V, 16, 32, 2, 2, 0.0, max_len=40)
    assert net.config.embedding_norm and not plain.config.embedding_norm
    assert len(net.collect_params().keys()) == len(plain.collect_params().keys()) + 2  # gamma, beta
    tokens, segments, valid, positions = _batch(9)
    seen = {}
    first = net.encoder.blks[0]
    original = first.hybrid_forward

    def spy(F, X, valid_lens, *args, **kwargs):
        seen['X'] = X.asnumpy()
        return original(F, X, valid_lens, *args, **kwargs)
    first.hybrid_forward = spy
    _run(net, tokens, segments, valid, positions)
    X = seen['X']
    assert onp.allclose(X.mean(axis=-1), 0, atol=1e-5) and onp.allclose(X.std(axis=-1), 1,
                                                                          atol=1e-2)
    hybrid = BERTModel(V, 16, 32, 2, 2, 0.0, max_len=40, embedding_norm=True)
    hybrid.initialize(init.Xavier())
    hybrid.hybridize()
    assert _run(hybrid, tokens, segments, valid, positions)[0].shape == (3, 9, 16)
