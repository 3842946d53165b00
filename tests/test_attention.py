"""Attention weights from the model itself: padding gets none, each query's sum to 1."""
import mxnet as mx
import numpy as onp
import pytest
from mxnet import init, np

import d2l_nli as d
from d2l_nli.attention import AttentionProbe

WORDS = ['a', 'man', 'is', 'playing', 'guitar', 'person', 'music', '.', 'not', 'sleeping']


def _model(max_len=16):
    vocab = d.Vocab(WORDS * 3, reserved_tokens=d.RESERVED_TOKENS)
    mx.random.seed(0)
    bert = d.BERTModel(len(vocab), 16, 32, 2, 2, 0.0, max_len=max_len)
    bert.initialize(init.Xavier())
    return bert, vocab


@pytest.mark.filterwarnings('ignore:Parameter .* is not used')
@pytest.mark.parametrize('hybridize', [False, True])
def test_padded_keys_get_zero_weight_and_each_query_sums_to_one(hybridize):
    bert, vocab = _model()
    probe = AttentionProbe(bert.encoder)
    if hybridize:
        probe.hybridize()
    rng = onp.random.default_rng(0)
    tokens = np.array(rng.integers(0, len(vocab), (3, 10)), dtype='int32')
    valid_lens = onp.array([10, 4, 7])
    weights = probe(tokens, np.zeros((3, 10), dtype='int32'),
                    np.array(valid_lens, dtype='int32')).asnumpy()
    assert weights.shape == (2, 3, 2, 10, 10)  # layers, examples, heads, queries, keys
    for b, n in enumerate(valid_lens):
        assert (weights[:, b, :, :, n:] == 0).all()  # exactly zero, not just small
        onp.testing.assert_allclose(weights[:, b].sum(axis=-1), 1, rtol=1e-5)
        assert (weights[:, b, :, :, :n] > 0).all()


def test_the_weights_are_the_ones_the_model_uses():
    """Recomputing a block's attention output from the probe's weights gives the block's."""
    bert, vocab = _model()
    tokens = np.array([[2, 5, 6, 7, 3, 8, 9, 3]], dtype='int32')
    segments, lens = np.zeros_like(tokens), np.array([8], dtype='int32')
    weights = AttentionProbe(bert.encoder)(tokens, segments, lens)[0, 0]  # layer 1: (h, T, T)
    att = bert.encoder.blks[0].attention
    X = bert.encoder.embed(mx.ndarray, tokens, segments)
    v = att.W_v(X).reshape((1, 8, 2, 8)).transpose((0, 2, 1, 3))[0]      # (h, T, H/h)
    mixed = np.matmul(weights, v).transpose((1, 0, 2)).reshape((1, 8, 16))
    onp.testing.assert_allclose(att.W_o(mixed).asnumpy(), att(X, X, X, lens).asnumpy(),
                                rtol=1e-5, atol=1e-6)


def test_attention_weights_of_one_pair_truncation_and_unknown_words():
    bert, vocab = _model()
    net = d.BERTClassifier(bert)
    weights = d.attention_weights(net, vocab, 'A man is playing a guitar.',
                                  'A person is playing music.')
    tokens = d.pair_tokens('A man is playing a guitar.', 'A person is playing music.')
    assert tokens[0] == '<cls>' and tokens.count('<sep>') == 2
    assert weights.shape == (2, 2, len(tokens), len(tokens))
    onp.testing.assert_allclose(weights.sum(axis=-1), 1, rtol=1e-5)
    # The same encoder read from the BERTModel gives the same weights.
    onp.testing.assert_array_equal(
        d.attention_weights(bert, vocab, 'A man is playing a guitar.',
                            'A person is playing music.'), weights)
    # A pair longer than max_len is cut to it, as for classification.
    long = ' '.join(['a man is playing'] * 10)
    assert d.attention_weights(bert, vocab, long, long, max_len=12).shape == (2, 2, 12, 12)
    # Words outside the vocabulary are read as <unk>, and still get weights.
    odd = d.attention_weights(bert, vocab, 'Zebras gallop.', 'Quokkas smile.')
    assert odd.shape[-1] == len(d.pair_tokens('Zebras gallop.', 'Quokkas smile.'))
    assert onp.isfinite(odd).all()


def test_bad_pairs_are_refused():
    bert, vocab = _model(max_len=16)
    with pytest.raises(ValueError, match='the hypothesis is empty'):
        d.attention_weights(bert, vocab, 'A man.', '  ')
    with pytest.raises(ValueError, match='max_len=64 exceeds the 16 positions'):
        d.attention_weights(bert, vocab, 'A man.', 'A person.', max_len=64)


def test_plot_attention_draws_one_panel_per_layer_and_head():
    weights = onp.full((2, 2, 4, 4), 0.25)
    tokens = ['<cls>', 'a', '<sep>', '<sep>']
    fig = d.plot_attention(weights, tokens)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ['layer 1, head 1', 'layer 1, head 2',
                                                  'layer 2, head 1', 'layer 2, head 2']
    assert [t.get_text() for t in panels[0].get_xticklabels()] == tokens
    assert len(d.plot_attention(weights, tokens, layers=[1], heads=[0]).axes) == 2  # + colorbar
    with pytest.raises(ValueError, match='do not fit 3 tokens'):
        d.plot_attention(weights, tokens[:3])


def test_cls_attention_by_part_adds_up_the_last_layers_cls_row_over_a_dataset():
    bert, vocab = _model()
    pairs = (['a man is playing guitar .', 'a man .', 'zebras gallop in fields .'],
             ['a person is playing music .', 'a man is not sleeping .', 'quokkas smile .'],
             [0, 1, 2])
    dataset = d.SNLIBERTDataset(pairs, 12, vocab, verbose=False)  # the first pair is cut
    shares = d.cls_attention_by_part(bert, dataset, batch_size=2)
    assert shares.shape == (2, len(d.PAIR_PARTS))  # heads, parts
    onp.testing.assert_allclose(shares.sum(axis=1), 1, rtol=1e-5)
    expected = []
    for p, h in zip(pairs[0], pairs[1]):  # one pair at a time, from its token list
        tokens = d.pair_tokens(p, h, max_len=12)
        row = d.attention_weights(bert, vocab, p, h, max_len=12)[-1, :, 0, :]  # (heads, T)
        first, last = tokens.index('<sep>'), len(tokens) - 1
        expected.append(onp.stack([row[:, 0], row[:, 1:first].sum(1), row[:, first],
                                   row[:, first + 1:last].sum(1), row[:, last]], axis=1))
    onp.testing.assert_allclose(shares, onp.mean(expected, axis=0), rtol=1e-4, atol=1e-6)
    first_layer = d.cls_attention_by_part(bert, dataset, layer=0)
    assert not onp.allclose(first_layer, shares)
    # The reference: equal weight on each of a pair's tokens (1 <cls>, P premise
    # tokens, 1 <sep>, H hypothesis tokens, 1 <sep>), averaged over the pairs.
    counts = []
    for p, h in zip(pairs[0], pairs[1]):
        tokens = d.pair_tokens(p, h, max_len=12)
        first = tokens.index('<sep>')
        counts.append(onp.array([1, first - 1, 1, len(tokens) - first - 2, 1]) / len(tokens))
    onp.testing.assert_allclose(d.cls_attention_by_part(bert, dataset, uniform=True),
                                onp.tile(onp.mean(counts, axis=0), (2, 1)), rtol=1e-6)
    with pytest.raises(ValueError, match='no pairs'):
        d.cls_attention_by_part(bert, d.SNLIBERTDataset(([], [], []), 12, vocab, verbose=False))
