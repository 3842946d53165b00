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
