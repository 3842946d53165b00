"""Tokenizers, vocabulary, BERT input layout and pair truncation."""
import json
import random

import pytest

from d2l_nli import (
    Vocab,
    get_tokens_and_segments,
    read_snli,
    tokenize,
    tokenize_sentence,
    truncate_pair,
)


def test_tokenize_lowercases_and_splits_on_whitespace():
    assert tokenize('A man  is\tHere .') == ['a', 'man', 'is', 'here', '.']
    assert tokenize(['A b', 'C']) == [['a', 'b'], ['c']]


@pytest.mark.parametrize('raw, tokens', [
    ('"...airplane."', '`` ... airplane . \'\''),
    ('Two women are embracing while holding to go packages.',
     'two women are embracing while holding to go packages .'),
    ("The dog's owner isn't here, is he?", "the dog 's owner is n't here , is he ?"),
    ('A man (in red) sells $5 hot-dogs; kids cannot wait!',
     'a man -lrb- in red -rrb- sells $ 5 hot-dogs ; kids can not wait !'),
    ('The U.S. flag waves.', 'the u.s. flag waves .'),
    ('  spaces   everywhere  ', 'spaces everywhere'),
    ('', ''),
])
def test_tokenize_sentence_follows_the_parse_columns(raw, tokens):
    assert tokenize_sentence(raw) == tokens.split()


def test_tokenize_sentence_keeps_case_on_request():
    assert tokenize_sentence("Bob's car.", lower=False) == ['Bob', "'s", 'car', '.']
    with pytest.raises(TypeError, match='str'):
        tokenize_sentence(None)


def test_raw_sentences_and_parse_columns_give_the_same_tokens(demo_root):
    """The .jsonl path (raw sentences) must agree with the .txt path (parses)."""
    folder = demo_root / 'snli_1.0'
    assert read_snli(folder, split='dev', fmt='jsonl') == read_snli(folder, split='dev')


def test_vocab_orders_by_frequency_then_alphabet():
    vocab = Vocab([['b', 'a', 'c', 'a'], ['b', 'd', 'a']], min_freq=2,
                  reserved_tokens=['<pad>', '<cls>'])
    assert vocab.idx_to_token == ['<unk>', '<pad>', '<cls>', 'a', 'b']
    assert vocab['a'] == 3 and vocab['zzz'] == vocab.unk == 0
    assert vocab[['b', 'c']] == [4, 0]
    assert vocab.to_tokens([3, 4]) == ['a', 'b'] and vocab.to_tokens(1) == '<pad>'
    assert len(vocab) == 5 and vocab.token_freqs[0] == ('a', 3)


def test_vocab_does_not_depend_on_token_order():
    tokens = [f'w{i % 7}' for i in range(100)]
    shuffled = tokens[:]
    random.Random(1).shuffle(shuffled)
    assert Vocab(tokens).idx_to_token == Vocab(shuffled).idx_to_token


def test_vocab_json_round_trip(tmp_path):
    vocab = Vocab([['é', 'b', 'é'], ['<unk>', 'x']], reserved_tokens=['<pad>'])
    path = tmp_path / 'sub' / 'vocab.json'
    vocab.save(path)
    loaded = Vocab.load(path)
    assert loaded == vocab and loaded['é'] == vocab['é']
    assert loaded.reserved_tokens == ['<unk>', '<pad>']
    assert [p.name for p in path.parent.iterdir()] == ['vocab.json']  # no temp file left


@pytest.mark.parametrize('content, message', [
    ('not json', 'not a vocabulary JSON'),
    ('[1, 2]', 'not a d2l_nli vocabulary'),
    (json.dumps({'format': 'd2l_nli.Vocab', 'idx_to_token': ['a', '<unk>']}), 'starting with'),
    (json.dumps({'format': 'd2l_nli.Vocab', 'idx_to_token': ['<unk>', 'a', 'a']}), 'distinct'),
])
def test_vocab_load_rejects_bad_files(tmp_path, content, message):
    path = tmp_path / 'vocab.json'
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as err:
        Vocab.load(path)
    assert str(path) in str(err.value)
    with pytest.raises(FileNotFoundError, match='not found'):
        Vocab.load(tmp_path / 'missing.json')


def test_tokens_and_segments_layout():
    tokens, segments = get_tokens_and_segments(['a', 'b'], ['c'])
    assert tokens == ['<cls>', 'a', 'b', '<sep>', 'c', '<sep>']
    assert segments == [0, 0, 0, 0, 1, 1]
    assert get_tokens_and_segments(['a']) == (['<cls>', 'a', '<sep>'], [0, 0, 0])


def _book_truncation(p, h, max_len):
    """The book's loop, as the specification of 'longest_first'."""
    p, h = list(p), list(h)
    while len(p) + len(h) > max_len - 3:
        if len(p) > len(h):
            p.pop()
        else:
            h.pop()
    return p, h


@pytest.mark.parametrize('max_len', [5, 6, 9, 12])
def test_longest_first_equals_the_books_loop(max_len):
    for len_p in range(0, 14):
        for len_h in range(0, 14):
            p, h = list(range(len_p)), list(range(100, 100 + len_h))
            assert truncate_pair(p, h, max_len) == _book_truncation(p, h, max_len)


@pytest.mark.parametrize('strategy', ['longest_first', 'ratio'])
def test_truncation_never_empties_a_side_and_keeps_order(strategy):
    for max_len in (5, 6, 8, 20):
        for len_p in range(0, 30):
            for len_h in range(0, 30):
                p, h = [f'p{i}' for i in range(len_p)], [f'h{i}' for i in range(len_h)]
                tp, th = truncate_pair(p, h, max_len, strategy)
                assert len(tp) + len(th) <= max_len - 3
                assert tp == p[:len(tp)] and th == h[:len(th)]
                if len_p and len_h:
                    assert tp and th
                if len_p + len_h <= max_len - 3:
                    assert (tp, th) == (p, h)


def test_ratio_truncation_keeps_proportions():
    p, h = list(range(30)), list(range(10))
    tp, th = truncate_pair(p, h, 23, 'ratio')  # budget 20: 3/4 premise
    assert (len(tp), len(th)) == (15, 5)
    tp, th = truncate_pair(p, h, 23, 'longest_first')
    assert (len(tp), len(th)) == (10, 10)


def test_truncation_rejects_bad_arguments():
    with pytest.raises(ValueError, match='at least 5'):
        truncate_pair(['a'], ['b'], 4)
    with pytest.raises(ValueError, match='unknown truncation strategy'):
        truncate_pair(['a'], ['b'], 10, 'middle')
