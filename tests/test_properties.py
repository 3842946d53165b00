"""Property-based tests (hypothesis): tokenizers, truncation, BERT inputs, batching, readers.

Each test states what must hold for *every* input, and hypothesis searches
for a counterexample among arbitrary text, sizes and file contents
(including control characters, non-ASCII letters, empty strings and lines).
The batching properties of the speed levers are in ``test_loader.py``.
"""
import json
import string

import numpy as onp
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from d2l_nli import (
    DataFormatError,
    SNLIBERTDataset,
    Vocab,
    get_tokens_and_segments,
    read_snli,
    read_wiki,
    tokenize,
    tokenize_sentence,
    truncate_pair,
)
from d2l_nli.loader import ArrayLoader, pad_ragged
from d2l_nli.snli import SNLI_COLUMNS
from d2l_nli.wiki import RESERVED_TOKENS

# Text as users type it: letters of any script, digits, punctuation, spaces,
# tabs, newlines, quotes, brackets and the odd control character.
TEXT = st.text(st.characters(blacklist_categories=('Cs',)), max_size=80)
WORDS = st.lists(st.text(string.ascii_lowercase + "'.,-", min_size=1, max_size=8), max_size=12)
TMP = settings(max_examples=60, deadline=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture])


# ---------------------------------------------------------------- tokenizers

@given(TEXT)
@settings(max_examples=300, deadline=None)
def test_tokenize_sentence_gives_clean_tokens_and_is_stable(text):
    tokens = tokenize_sentence(text)
    assert all(tok and not any(c.isspace() for c in tok) for tok in tokens)
    assert tokens == [t.lower() for t in tokenize_sentence(text, lower=False)]
    # Tokenizing the tokens again changes nothing: raw text and SNLI's
    # already-tokenized parse columns give the same tokens.
    assert tokenize_sentence(' '.join(tokens)) == tokens
    # Nothing but whitespace is dropped.
    assert not text.split() or tokens


@given(st.lists(TEXT, max_size=5))
def test_tokenize_splits_on_whitespace_and_lowercases(lines):
    assert tokenize(lines) == [line.lower().split() for line in lines]
    for line, tokens in zip(lines, tokenize(lines)):
        assert ''.join(tokens) == ''.join(line.lower().split())


# ---------------------------------------------------------------- pair truncation

@given(st.integers(0, 60), st.integers(0, 60), st.integers(5, 70),
       st.sampled_from(['longest_first', 'ratio']))
@settings(max_examples=400, deadline=None)
@example(1, 100, 5, 'ratio')
@example(100, 1, 5, 'ratio')
def test_truncation_fits_keeps_order_and_never_empties_a_side(len_p, len_h, max_len, strategy):
    p, h = [f'p{i}' for i in range(len_p)], [f'h{i}' for i in range(len_h)]
    tp, th = truncate_pair(p, h, max_len, strategy)
    assert len(tp) + len(th) <= max_len - 3
    assert tp == p[:len(tp)] and th == h[:len(th)]  # cut from the end, order kept
    if len_p and len_h:
        assert tp and th
    if len_p + len_h <= max_len - 3:
        assert (tp, th) == (p, h)
    else:  # the whole budget is used: nothing is cut that did not need to be
        assert len(tp) + len(th) == max_len - 3


# ---------------------------------------------------------------- BERT inputs

@given(WORDS, st.one_of(st.none(), WORDS))
def test_tokens_and_segments_layout(a, b):
    tokens, segments = get_tokens_and_segments(a, b)
    assert len(tokens) == len(segments)
    assert tokens[0] == '<cls>' and tokens[len(a) + 1] == '<sep>' and tokens[-1] == '<sep>'
    assert tokens[1:len(a) + 1] == a and segments[:len(a) + 2] == [0] * (len(a) + 2)
    if b is None:
        assert len(tokens) == len(a) + 2
    else:
        assert tokens[len(a) + 2:-1] == b and segments[len(a) + 2:] == [1] * (len(b) + 1)


@given(st.lists(st.tuples(WORDS, WORDS), min_size=1, max_size=20), st.integers(5, 30),
       st.integers(1, 7), st.booleans())
@settings(max_examples=60, deadline=None)
def test_snli_batches_hold_every_pair_once_padded_to_their_longest(pairs, max_len, batch_size,
                                                                   shuffle):
    vocab = Vocab([w for p in pairs for side in p for w in side], reserved_tokens=RESERVED_TOKENS)
    premises = [' '.join(p) for p, _ in pairs]
    hypotheses = [' '.join(h) for _, h in pairs]
    ds = SNLIBERTDataset((premises, hypotheses, list(range(len(pairs)))), max_len, vocab,
                         verbose=False)
    seen = []
    for (tokens, segments, valid_lens), labels in ds.loader(batch_size, shuffle=shuffle):
        tokens, segments, valid_lens = tokens.asnumpy(), segments.asnumpy(), valid_lens.asnumpy()
        assert tokens.shape[1] == max(int(valid_lens.max()), 1) <= max_len
        for row, seg, n, label in zip(tokens, segments, valid_lens, labels.asnumpy()):
            p, h = truncate_pair(pairs[label][0], pairs[label][1], max_len)
            expected, expected_seg = get_tokens_and_segments(p, h)
            assert vocab.to_tokens(row[:n].tolist()) == [
                t if t in vocab.token_to_idx else '<unk>' for t in expected]
            assert seg[:n].tolist() == expected_seg
            assert (row[n:] == vocab['<pad>']).all() and (seg[n:] == 0).all()
            seen.append(int(label))
    assert sorted(seen) == list(range(len(pairs)))


@given(st.lists(st.lists(st.integers(0, 99), max_size=9), min_size=1, max_size=20),
       st.integers(1, 12))
def test_pad_ragged_equals_padding_each_row(rows, width):
    lens = onp.array([len(r) for r in rows])
    offsets = onp.concatenate([[0], onp.cumsum(lens)[:-1]]).astype(int)
    flat = onp.array([x for r in rows for x in r], dtype=onp.int32)
    idx = onp.arange(len(rows))[::-1]
    out = pad_ragged(flat, offsets, lens, idx, width, -1)
    for k, i in enumerate(idx):
        expected = (rows[i] + [-1] * width)[:width]
        assert out[k].tolist() == expected


@given(st.integers(1, 60), st.integers(1, 9), st.integers(0, 9), st.integers(0, 3))
@settings(max_examples=60, deadline=None)
def test_trimmed_batches_are_the_padded_arrays_cut_at_their_widest(n, batch_size, seed, bucket):
    rng = onp.random.default_rng(seed)
    widths = rng.integers(1, 12, n)
    padded = onp.where(onp.arange(12)[None, :] < widths[:, None], rng.integers(1, 9, (n, 12)), 0)
    loader = ArrayLoader([padded, widths], batch_size, shuffle=True, seed=seed,
                         trim=(1, [0]), bucket=bucket)
    rows = []
    for batch, batch_widths in loader:
        batch, batch_widths = batch.asnumpy(), batch_widths.asnumpy()
        assert batch.shape[1] == batch_widths.max()
        rows += [tuple(r[:w]) for r, w in zip(batch, batch_widths)]
    assert sorted(rows) == sorted(tuple(r[:w]) for r, w in zip(padded, widths))


# ---------------------------------------------------------------- readers

@given(st.binary(max_size=400))
@TMP
@example(b'\xef\xbb\xbf' + '\t'.join(SNLI_COLUMNS).encode() + b'\r\nneutral\t( a )\t( b )')
def test_read_snli_on_arbitrary_bytes_reads_or_names_the_problem(tmp_path, raw):
    (tmp_path / 'snli_1.0_train.txt').write_bytes(raw)
    try:
        premises, hypotheses, labels = read_snli(tmp_path)
    except DataFormatError as err:
        assert 'snli_1.0_train.txt' in str(err)
        return
    assert len(premises) == len(hypotheses) == len(labels)
    assert set(labels) <= {0, 1, 2}


@given(st.lists(TEXT, max_size=8))
@TMP
def test_read_snli_jsonl_on_arbitrary_lines(tmp_path, lines):
    (tmp_path / 'snli_1.0_dev.jsonl').write_text('\n'.join(lines), encoding='utf-8')
    try:
        read_snli(tmp_path, split='dev', fmt='jsonl')
    except DataFormatError as err:
        assert 'snli_1.0_dev.jsonl' in str(err)


@given(st.lists(st.sampled_from(['gold_label', 'sentence1', 'sentence2']), max_size=3),
       st.lists(st.one_of(st.none(), st.integers(), TEXT,
                          st.sampled_from(['neutral', 'entailment', '-'])), max_size=3))
@TMP
def test_read_snli_jsonl_on_arbitrary_records(tmp_path, keys, values):
    (tmp_path / 'snli_1.0_dev.jsonl').write_text(json.dumps(dict(zip(keys, values))) + '\n')
    try:
        read_snli(tmp_path, split='dev', fmt='jsonl')
    except DataFormatError as err:
        assert 'line 1' in str(err)


@given(st.text(max_size=300))
@TMP
@example(' a . b . \n')
def test_read_wiki_on_arbitrary_text(tmp_path, text):
    (tmp_path / 'wiki.train.tokens').write_text(text, encoding='utf-8')
    try:
        paragraphs = read_wiki(tmp_path)
    except DataFormatError as err:
        assert 'wiki.train.tokens' in str(err)
        return
    assert any(len(p) >= 2 for p in paragraphs)
    assert all(s == s.lower() for p in paragraphs for s in p)


JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), TEXT),
                    lambda inner: st.one_of(st.lists(inner, max_size=4),
                                            st.dictionaries(TEXT, inner, max_size=4)),
                    max_leaves=12)
TOKEN_LISTS = st.lists(TEXT, max_size=5).map(lambda tokens: ['<unk>'] + tokens)


@given(JSON, st.one_of(JSON, TOKEN_LISTS), st.one_of(JSON, TOKEN_LISTS), st.booleans())
@TMP
def test_vocab_load_on_arbitrary_json(tmp_path, value, tokens, reserved, as_vocab):
    if as_vocab:  # a vocabulary file with arbitrary contents in its fields
        value = {'format': 'd2l_nli.Vocab', 'idx_to_token': tokens, 'reserved_tokens': reserved}
    path = tmp_path / 'vocab.json'
    path.write_text(json.dumps(value))
    try:
        vocab = Vocab.load(path)
    except ValueError as err:
        assert 'vocab.json' in str(err)
        return
    assert vocab.idx_to_token[0] == '<unk>' and vocab[vocab.idx_to_token[-1]] == len(vocab) - 1
    assert all(isinstance(t, str) for t in vocab.reserved_tokens)
