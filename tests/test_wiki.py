"""WikiText pretraining examples: paragraphs, NSP pairs, MLM masking, batches."""
import numpy as onp
import pytest

from d2l_nli import ArrayLoader, DataFormatError, WikiTextBERTData, load_data_wiki, read_wiki
from d2l_nli.wiki import RESERVED_TOKENS


def test_read_wiki_keeps_paragraphs_of_two_or_more_sentences(tmp_path):
    (tmp_path / 'wiki.train.tokens').write_text(
        ' \n = Title = \n \n One sentence only . \n First A . Second B . \n'
        ' X y . Z w . Last v . \r\n')
    paragraphs = read_wiki(tmp_path, seed=0)
    # As in the book, the one-sentence line counts (its ' . ' is followed by
    # the line's last space): its words enter the vocabulary, it makes no pair.
    assert sorted(paragraphs) == [['first a', 'second b .'], ['one sentence only .'],
                                  ['x y', 'z w', 'last v .']]


def test_read_wiki_errors(tmp_path):
    with pytest.raises(DataFormatError, match='wiki.train.tokens: file not found'):
        read_wiki(tmp_path)
    (tmp_path / 'wiki.train.tokens').write_text(' = Title = \n just one . \n')
    with pytest.raises(DataFormatError, match='no paragraph with at least two sentences'):
        read_wiki(tmp_path)
    (tmp_path / 'wiki.train.tokens').write_bytes(b' a . b . \n c . \xff d . \n')
    with pytest.raises(DataFormatError, match='line 2: bytes that are not UTF-8'):
        read_wiki(tmp_path)


@pytest.fixture(scope='module')
def wiki_data(demo_root):
    paragraphs = read_wiki(demo_root / 'wikitext-2', seed=0)
    return WikiTextBERTData(paragraphs, 48, seed=0)


def test_vocab_has_reserved_tokens_and_min_freq(wiki_data):
    vocab = wiki_data.vocab
    assert vocab.idx_to_token[:5] == ['<unk>'] + RESERVED_TOKENS
    assert all(freq >= 5 for tok, freq in vocab.token_freqs if tok in vocab.token_to_idx
               and tok not in RESERVED_TOKENS)


def test_example_layout(wiki_data):
    d, vocab = wiki_data, wiki_data.vocab
    n, max_len = d.token_ids.shape
    assert max_len == 48 and d.pred_positions.shape == (n, round(48 * 0.15))
    cls, sep, pad = vocab['<cls>'], vocab['<sep>'], vocab['<pad>']
    for i in range(n):
        length = d.valid_lens[i]
        row = d.token_ids[i]
        assert row[0] == cls and row[length - 1] == sep and (row[length:] == pad).all()
        seps = onp.nonzero(row[:length] == sep)[0]
        assert len(seps) == 2
        expected = onp.r_[onp.zeros(seps[0] + 1), onp.ones(length - seps[0] - 1),
                          onp.zeros(max_len - length)]
        assert (d.segments[i] == expected).all()


def test_mlm_positions_weights_and_labels(wiki_data):
    d = wiki_data
    n = len(d)
    original = d.token_ids.copy()
    rows = onp.arange(n)[:, None]
    num = d.mlm_weights.sum(axis=1).astype(int)
    assert (num == onp.maximum(1, onp.round(d.valid_lens * 0.15))).all()
    for i in range(n):
        pos = d.pred_positions[i, :num[i]]
        assert (onp.diff(pos) > 0).all()  # sorted, distinct
        assert (pos > 0).all() and (pos < d.valid_lens[i]).all()
        assert (d.pred_positions[i, num[i]:] == 0).all()
        assert (d.mlm_labels[i, num[i]:] == 0).all()
    # Labels are never special tokens: <cls>/<sep> are never chosen.
    real = d.mlm_weights > 0
    assert (d.mlm_labels[real] > len(RESERVED_TOKENS)).mean() > 0.95
    # Unmasked positions hold the original tokens: compare against labels.
    assert (original[rows, d.pred_positions][real] >= 0).all()


def test_mlm_replacement_proportions_and_nsp_balance(wiki_data):
    """80% <mask>, 10% random word, 10% unchanged; half the pairs are true next sentences."""
    d = wiki_data
    real = d.mlm_weights > 0
    rows = onp.arange(len(d))[:, None]
    at_positions = d.token_ids[rows, d.pred_positions][real]
    labels = d.mlm_labels[real]
    m = len(labels)
    masked = (at_positions == d.vocab['<mask>']).mean()
    unchanged = (at_positions == labels).mean()
    # Binomial standard deviations for m draws; 5 of them is far beyond chance.
    assert abs(masked - 0.8) < 5 * (0.8 * 0.2 / m) ** 0.5
    # A random word can equal the original, so "unchanged" is slightly above 10%.
    assert abs(unchanged - 0.1) < 5 * (0.1 * 0.9 / m) ** 0.5 + 0.01
    assert (at_positions[at_positions != labels] != d.vocab['<pad>']).all()
    nsp = d.nsp_labels.mean()
    assert abs(nsp - 0.5) < 5 * (0.25 / len(d)) ** 0.5


def test_same_seed_same_data_other_seed_other_data(demo_root):
    folder = demo_root / 'wikitext-2'
    a = WikiTextBERTData(read_wiki(folder, seed=3), 32, seed=3)
    b = WikiTextBERTData(read_wiki(folder, seed=3), 32, seed=3)
    c = WikiTextBERTData(read_wiki(folder, seed=4), 32, seed=4)
    assert all((x == y).all() for x, y in zip(a.arrays, b.arrays))
    assert a.vocab == c.vocab  # the vocabulary does not depend on the shuffle
    assert not (a.token_ids.shape == c.token_ids.shape and (a.token_ids == c.token_ids).all())


def test_pairs_longer_than_max_len_are_skipped(demo_root):
    paragraphs = read_wiki(demo_root / 'wikitext-2', seed=0)
    short = WikiTextBERTData(paragraphs, 26, seed=0)
    long = WikiTextBERTData(paragraphs, 64, seed=0)
    assert 0 < len(short) < len(long) and (short.valid_lens <= 26).all()
    with pytest.raises(DataFormatError, match='no sentence pair fits max_len=5'):
        WikiTextBERTData(paragraphs, 5, seed=0)


def test_load_data_wiki_batches(demo_root):
    train_iter, vocab = load_data_wiki(32, 40, data_dir=demo_root)
    batches = list(train_iter)
    assert len(batches) == len(train_iter) == -(-train_iter.num_examples // 32)
    for batch in batches[:-1]:
        shapes = [tuple(x.shape) for x in batch]
        # Each batch is padded only to its longest example (at most max_len).
        width = int(batch[2].max())
        # ... and the MLM columns to its most predictions (real ones come first).
        preds = int(batch[4].sum(axis=1).max())
        assert shapes == [(32, width), (32, width), (32,), (32, preds), (32, preds),
                          (32, preds), (32,)]
        assert width <= 40 and preds <= 6
    full, _ = load_data_wiki(32, 40, data_dir=demo_root, trim=False)
    assert [tuple(x.shape) for x in next(iter(full))][:2] == [(32, 40), (32, 40)]
    assert len(vocab) > 100


def test_array_loader_order_and_last_batch():
    x = onp.arange(10)
    assert [b[0].tolist() for b in ArrayLoader([x], 4)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(ArrayLoader([x], 4, last_batch='discard')) == 2
    loader = ArrayLoader([x, x * 10], 3, shuffle=True, seed=7)
    first = onp.concatenate([b[0].asnumpy() for b in loader])
    second = onp.concatenate([b[0].asnumpy() for b in loader])
    assert sorted(first) == list(range(10)) and not (first == second).all()
    again = onp.concatenate([b[0].asnumpy() for b in ArrayLoader([x], 3, shuffle=True, seed=7)])
    assert (again == first).all()
    for a, b in ArrayLoader([x, x * 10], 3, shuffle=True):
        assert (b.asnumpy() == a.asnumpy() * 10).all()
    with pytest.raises(ValueError, match='same number of examples'):
        ArrayLoader([x, x[:3]], 2)
    with pytest.raises(ValueError, match='positive integer'):
        ArrayLoader([x], 0)


def test_num_pairs_keeps_a_sample_and_the_whole_vocabulary(demo_root):
    full_iter, vocab = load_data_wiki(8, 48, data_dir=demo_root)
    part_iter, part_vocab = load_data_wiki(8, 48, data_dir=demo_root, num_pairs=10)
    assert part_iter.num_examples == 10 < full_iter.num_examples
    assert part_vocab.idx_to_token == vocab.idx_to_token
    assert all((a[:10] == b).all() for a, b in zip(full_iter.arrays, part_iter.arrays))
    with pytest.raises(ValueError, match='num_pairs'):
        load_data_wiki(8, 48, data_dir=demo_root, num_pairs=0)


# ------------------------------------------------ bad input: data files

def test_an_extremely_long_paragraph_makes_no_pair_and_breaks_nothing(tmp_path):
    words = ' '.join(['word'] * 100_000)
    (tmp_path / 'wikitext-2').mkdir()
    (tmp_path / 'wikitext-2' / 'wiki.train.tokens').write_text(
        f' {words} . {words} . \n' + ' the cat sat . the dog ran . \n' * 20)
    train_iter, vocab = load_data_wiki(4, 16, data_dir=tmp_path)
    # One pair per short paragraph, less those whose random next sentence is a long one.
    assert 15 <= train_iter.num_examples <= 20 and 'word' in vocab.token_to_idx
    assert all(int(batch[2].max()) <= 16 for batch in train_iter)


# Dynamic masking: new masks and new random next sentences for every pass.

@pytest.fixture(scope='module')
def dynamic_data(demo_root):
    paragraphs = read_wiki(demo_root / 'wikitext-2', seed=0)
    return paragraphs, WikiTextBERTData(paragraphs, 48, seed=3, dynamic=True)


def _copy(arrays):
    return [a.copy() for a in arrays]


def test_dynamic_passes_differ_in_masks_and_pairs_but_not_in_size(dynamic_data):
    _, data = dynamic_data
    first, second = _copy(data.draw(0)), _copy(data.draw(1))
    tokens0, tokens1 = first[0], second[0]
    assert tokens0.shape[0] == tokens1.shape[0] == len(data._firsts)
    # Other positions are masked (the same examples, new draws).
    assert (first[3] != second[3]).any(axis=1).mean() > 0.8
    # Other examples keep their true next sentence, others get a new random one.
    assert 0.3 < (first[6] != second[6]).mean() < 0.7
    # The first sentence of every example is the same in both passes.
    cls_and_a = (first[1] == 0) & (onp.arange(48) < first[2][:, None])
    unmasked = cls_and_a & ~onp.isin(onp.arange(48)[None, :].repeat(len(tokens0), 0),
                                     onp.concatenate([first[3], second[3]], axis=1))
    assert (tokens0[unmasked] == tokens1[unmasked]).all()


def test_dynamic_draws_keep_the_chapters_proportions(dynamic_data):
    _, data = dynamic_data
    for k in range(3):
        tokens, segments, valid_lens, positions, weights, labels, nsp = _copy(data.draw(k))
        assert 0.45 < nsp.mean() < 0.55
        assert (valid_lens <= 48).all()
        # 15% of each example's tokens (at least one) are predicted.
        expected = onp.maximum(1, onp.round(valid_lens * 0.15))
        assert (weights.sum(axis=1) == expected).all()
        real = weights > 0
        chosen = tokens[onp.arange(len(tokens))[:, None].repeat(positions.shape[1], 1)[real],
                        positions[real]]
        mask_share = (chosen == data.vocab['<mask>']).mean()
        kept_share = (chosen == labels[real]).mean()
        assert 0.75 < mask_share < 0.85 and 0.08 < kept_share < 0.15
        # A true next sentence is one; a random one is any sentence that fits.
        assert ((nsp == 1) | (nsp == 0)).all()


def test_dynamic_draws_are_reproducible_with_a_seed(dynamic_data):
    paragraphs, data = dynamic_data
    again = WikiTextBERTData(paragraphs, 48, seed=3, dynamic=True)
    for k in (2, 0, 5):
        assert all((x == y).all() for x, y in zip(_copy(data.draw(k)), again.draw(k)))
    other = WikiTextBERTData(paragraphs, 48, seed=4, dynamic=True)
    assert (other.draw(0)[3] != data.draw(0)[3]).any()


def test_fixed_masking_is_the_default_and_cannot_draw(dynamic_data):
    paragraphs, _ = dynamic_data
    fixed = WikiTextBERTData(paragraphs, 48, seed=3)
    with pytest.raises(ValueError, match='dynamic=True'):
        fixed.draw(1)


def test_dynamic_loader_draws_each_pass_anew_and_replays_a_pass(demo_root):
    def passes(loader, count):
        return [onp.concatenate([b[3].asnumpy().ravel() for b in loader]) for _ in range(count)]

    train_iter, _ = load_data_wiki(16, 48, data_dir=demo_root, seed=1, dynamic=True)
    p0, p1, p2 = passes(train_iter, 3)
    assert len(p0) and not (len(p0) == len(p1) and (p0 == p1).all())
    fixed_iter, _ = load_data_wiki(16, 48, data_dir=demo_root, seed=1)
    f0, f1 = passes(fixed_iter, 2)
    assert sorted(f0.tolist()) == sorted(f1.tolist())  # the same masks, reshuffled
    # A resumed run replays pass 2 exactly (see BatchLoader.seek).
    again, _ = load_data_wiki(16, 48, data_dir=demo_root, seed=1, dynamic=True)
    again.seek(2)
    assert (passes(again, 1)[0] == p2).all()


def test_snli_sentences_join_the_pretraining_text(demo_root):
    from d2l_nli import read_snli
    from d2l_nli.wiki import snli_paragraphs

    pairs = read_snli(demo_root / 'snli_1.0', split='train')
    extra = snli_paragraphs(pairs)
    assert extra[0] == [pairs[0][0], pairs[1][0]]
    plain, _ = load_data_wiki(16, 48, data_dir=demo_root)
    joined, vocab = load_data_wiki(16, 48, data_dir=demo_root, extra_paragraphs=extra)
    assert joined.num_examples > plain.num_examples


def test_random_second_sentences_come_from_the_same_text(demo_root):
    """SNLI examples get another pair's hypothesis as their random second sentence."""
    from d2l_nli import read_snli
    from d2l_nli.wiki import snli_paragraphs

    wiki = read_wiki(demo_root / 'wikitext-2', seed=0)
    premises, hypotheses, labels = read_snli(demo_root / 'snli_1.0', split='train')
    snli = snli_paragraphs((premises, hypotheses, labels))
    data = WikiTextBERTData(wiki + snli, 48, seed=0, dynamic=True,
                            pools=[0] * len(wiki) + [1] * len(snli))
    vocab = data.vocab
    hyps = {tuple(vocab[h.lower().split()]) for h in hypotheses}
    prems = {tuple(vocab[p.lower().split()]) for p in premises}
    wiki_sents = {tuple(vocab[s.lower().split()]) for p in wiki for s in p}
    checked = 0
    for k in range(2):
        tokens, _, valid_lens, positions, weights, labels, nsp = data.draw(k)
        sep = vocab['<sep>']
        for i in onp.nonzero(nsp == 0)[0]:
            row = tokens[i].copy()
            real = weights[i] > 0
            row[positions[i][real]] = labels[i][real]  # undo the masking
            cut = list(row[:valid_lens[i]]).index(sep)
            first, second = tuple(row[1:cut]), tuple(row[cut + 1:valid_lens[i] - 1])
            if first in prems and first not in wiki_sents:
                assert second in hyps and second not in wiki_sents
                checked += 1
            elif first in wiki_sents and first not in prems:
                assert second in wiki_sents
                checked += 1
    assert checked > 100
    with pytest.raises(ValueError, match='pools for'):
        WikiTextBERTData(wiki, 48, dynamic=True, pools=[0])
