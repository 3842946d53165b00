"""The speed levers change the speed, never the result.

Trimmed batches, length buckets and bulk preprocessing are each checked
against the plain way (batches padded to ``max_len``, in plain order, built
pair by pair): same examples, same model outputs, same losses and
gradients.
"""
import mxnet as mx
import numpy as onp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mxnet import autograd, gluon, init, np

import d2l_nli as d
from d2l_nli import (
    BERTClassifier,
    BERTModel,
    SNLIBERTDataset,
    Vocab,
    batch_indices,
    get_tokens_and_segments,
    pad_ragged,
    truncate_pair,
)
from d2l_nli.training import bert_losses
from d2l_nli.wiki import RESERVED_TOKENS


@given(n=st.integers(0, 300), batch_size=st.integers(1, 40), bucket=st.integers(0, 5),
       seed=st.integers(0, 3), shuffle=st.booleans(),
       last=st.sampled_from(['keep', 'discard']))
@settings(max_examples=60, deadline=None)
def test_every_example_once_per_pass(n, batch_size, bucket, seed, shuffle, last):
    lengths = onp.random.default_rng(seed).integers(1, 50, n)
    rng = onp.random.default_rng(seed) if shuffle else None
    batches = batch_indices(n, batch_size, rng, lengths, bucket, last)
    seen = onp.concatenate(batches) if batches else onp.zeros(0, int)
    kept = n - n % batch_size if last == 'discard' else n
    assert len(seen) == kept and len(set(seen.tolist())) == kept
    # At most one short batch (with shuffled buckets it may come anywhere).
    assert sum(len(b) != batch_size for b in batches) <= (1 if kept % batch_size else 0)
    if last == 'discard':
        assert all(len(b) == batch_size for b in batches)
    if last == 'keep' and not shuffle:
        assert sorted(seen.tolist()) == list(range(n))


def test_buckets_make_batches_narrow_and_stay_random():
    lengths = onp.random.default_rng(0).integers(5, 100, 5000)
    plain = batch_indices(5000, 64, onp.random.default_rng(1))
    bucketed = batch_indices(5000, 64, onp.random.default_rng(1), lengths, bucket=10)
    width = lambda batches: onp.mean([lengths[b].max() for b in batches])  # noqa: E731
    assert width(bucketed) < 0.7 * width(plain)
    # Batches are visited in random order, not from short to long.
    firsts = [lengths[b].max() for b in bucketed[:10]]
    assert firsts != sorted(firsts)
    again = batch_indices(5000, 64, onp.random.default_rng(1), lengths, bucket=10)
    assert all((a == b).all() for a, b in zip(bucketed, again))
    other = batch_indices(5000, 64, onp.random.default_rng(2), lengths, bucket=10)
    assert not all((a == b).all() for a, b in zip(bucketed, other))
    # Without shuffling (evaluation) the examples are sorted by length.
    ordered = onp.concatenate(batch_indices(5000, 64, None, lengths, bucket=10))
    assert (onp.diff(lengths[ordered]) >= 0).all()


def test_named_arrays_are_trimmed_by_name_and_batches_keep_the_names():
    import collections
    Pair = collections.namedtuple('Pair', ['ids', 'lens'])
    ids = onp.arange(12).reshape(3, 4)
    loader = d.ArrayLoader(Pair(ids, onp.array([1, 3, 2])), 2, trim=[('lens', ('ids',))],
                         pack=Pair)
    assert isinstance(loader.arrays, Pair) and loader.arrays.ids.shape == (3, 4)
    first, second = list(loader)
    assert isinstance(first, Pair) and first.ids.shape == (2, 3) and second.ids.shape == (1, 2)
    assert (first.ids.asnumpy() == ids[:2, :3]).all()
    with pytest.raises(ValueError, match="no array named 'width'.*ids, lens"):
        d.ArrayLoader(Pair(ids, onp.array([1, 3, 2])), 2, trim=[('width', ('ids',))])
    with pytest.raises(ValueError, match='not named'):
        d.ArrayLoader([ids, onp.array([1, 3, 2])], 2, trim=[('lens', (0,))])


def test_pad_ragged():
    flat = onp.arange(10, 20, dtype=onp.int32)
    offsets, lens = onp.array([0, 3, 3, 7]), onp.array([3, 0, 4, 3])
    rows = pad_ragged(flat, offsets, lens, onp.array([2, 1, 0, 3]), 4, -1)
    assert rows.tolist() == [[13, 14, 15, 16], [-1, -1, -1, -1], [10, 11, 12, -1],
                             [17, 18, 19, -1]]
    assert pad_ragged(flat, offsets, lens, onp.array([2]), 2, 0).tolist() == [[13, 14]]


def test_batch_loader_rejects_bad_settings():
    with pytest.raises(ValueError, match='bucket must be'):
        d.BatchLoader(4, 2, lambda idx: (idx,), bucket=-1)
    with pytest.raises(ValueError, match='lengths has 3 entries for 4 examples'):
        d.BatchLoader(4, 2, lambda idx: (idx,), lengths=[1, 2, 3], bucket=1)


WORDS = 'a man dog sleeps runs in the park red ball woman child plays'.split()


def _vocab():
    return Vocab([WORDS], reserved_tokens=RESERVED_TOKENS)


def _one_by_one(premises, hypotheses, max_len, vocab, strategy):
    """The plain way: each pair truncated, laid out and padded on its own."""
    rows, segs, lens = [], [], []
    for p, h in zip(premises, hypotheses):
        p, h = truncate_pair(p.lower().split(), h.lower().split(), max_len, strategy)
        tokens, segments = get_tokens_and_segments(p, h)
        rows.append(vocab[tokens] + [vocab['<pad>']] * (max_len - len(tokens)))
        segs.append(segments + [0] * (max_len - len(segments)))
        lens.append(len(tokens))
    return onp.array(rows), onp.array(segs), onp.array(lens)


sentences = st.lists(st.sampled_from(WORDS + ['Zebra', 'UNSEEN']), min_size=0,
                     max_size=30).map(' '.join)


@given(pairs=st.lists(st.tuples(sentences, sentences), min_size=1, max_size=20),
       max_len=st.integers(5, 40), strategy=st.sampled_from(['longest_first', 'ratio']))
@settings(max_examples=60, deadline=None)
def test_bulk_preprocessing_equals_pair_by_pair(pairs, max_len, strategy):
    premises, hypotheses = [p for p, _ in pairs], [h for _, h in pairs]
    vocab = _vocab()
    ds = SNLIBERTDataset((premises, hypotheses, [0] * len(pairs)), max_len, vocab,
                         truncate=strategy, verbose=False)
    tokens, segments, lens = _one_by_one(premises, hypotheses, max_len, vocab, strategy)
    assert (ds.token_ids == tokens).all() and (ds.segments == segments).all()
    assert (ds.valid_lens == lens).all()
    (t0, s0, v0), _ = ds[0]
    assert (t0 == tokens[0]).all() and (s0 == segments[0]).all() and v0 == lens[0]


@pytest.fixture(scope='module')
def snli_and_bert(demo_root):
    data = d.read_snli(demo_root / 'snli_1.0', split='train')
    ds = SNLIBERTDataset(tuple(c[:300] for c in data), 48, verbose=False)
    d.seed_everything(0)
    bert = BERTModel(len(ds.vocab), 32, 64, 2, 2, 0.0, max_len=64)
    bert.initialize(init.Xavier())
    return ds, bert


def _by_example(ds, loader, net):
    """{example index: logits} over the batches of ``loader`` (not shuffled)."""
    out = {}
    for idx in loader.batches():
        tokens, segments = ds.rows(idx, int(ds.valid_lens[idx].max()) if loader.bucket
                                   else ds.max_len)
        logits = net((np.array(tokens), np.array(segments),
                      np.array(ds.valid_lens[idx]))).asnumpy()
        out.update(zip(idx.tolist(), logits))
    return out


@pytest.mark.parametrize('hybridize', [False, True])
def test_trimmed_bucketed_batches_give_the_same_outputs(snli_and_bert, hybridize):
    ds, bert = snli_and_bert
    net = BERTClassifier(bert)
    net.classifier.initialize(init.Xavier(), force_reinit=True)
    if hybridize:
        net.hybridize(static_alloc=True)
    fast, plain = ds.loader(32), ds.loader(32, trim=False)
    assert {int(b[0][0].shape[1]) for b in fast} != {48}  # the levers are really on
    a, b = _by_example(ds, fast, net), _by_example(ds, plain, net)
    assert sorted(a) == sorted(b) == list(range(len(ds)))
    for i in a:
        onp.testing.assert_allclose(a[i], b[i], rtol=1e-4, atol=1e-5)
    acc_fast = d.evaluate_accuracy_gpus(net, fast, devices=[mx.cpu()])
    acc_plain = d.evaluate_accuracy_gpus(net, plain, devices=[mx.cpu()])
    assert acc_fast == acc_plain


def test_trimmed_pretraining_batch_gives_the_same_losses_and_gradients(demo_root):
    full_iter, vocab = d.load_data_wiki(16, 40, data_dir=demo_root, trim=False,
                                        shuffle=False)
    trim_iter, _ = d.load_data_wiki(16, 40, data_dir=demo_root, shuffle=False, bucket=0)
    d.seed_everything(0)
    bert = BERTModel(len(vocab), 32, 64, 2, 2, 0.0, max_len=64)
    bert.initialize(init.Xavier())
    loss = gluon.loss.SoftmaxCELoss()
    params = bert.collect_params()
    results = []
    for batch in (next(iter(full_iter)), next(iter(trim_iter))):
        assert isinstance(batch, d.PretrainingBatch)
        total = np.maximum(batch.mlm_weights.sum(), 1e-8)
        with autograd.record():
            mlm, nsp = bert_losses(bert, loss, len(vocab), [tuple(batch)], [total],
                                    len(batch.nsp_labels))
            total_loss = mlm[0] + nsp[0]
        total_loss.backward()
        grads = {k: p.grad().asnumpy().copy() for k, p in params.items()
                 if p.grad_req != 'null'}
        results.append((float(mlm[0]), float(nsp[0]), grads, batch.tokens.shape,
                        batch.pred_positions.shape))
    (m1, n1, g1, tok1, pred1), (m2, n2, g2, tok2, pred2) = results
    assert tok2[1] < tok1[1] and pred2[1] <= pred1[1]  # really trimmed
    assert m1 == pytest.approx(m2, rel=1e-5) and n1 == pytest.approx(n2, rel=1e-5)
    for k in g1:
        onp.testing.assert_allclose(g1[k], g2[k], rtol=1e-3, atol=1e-6, err_msg=k)
