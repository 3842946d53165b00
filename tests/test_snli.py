"""Reading SNLI files and turning pairs into BERT inputs."""

import numpy as onp
import pytest

from d2l_nli import DataFormatError, SNLIBERTDataset, Vocab, read_snli
from d2l_nli.snli import SNLI_COLUMNS
from d2l_nli.wiki import RESERVED_TOKENS

HEADER = '\t'.join(SNLI_COLUMNS)


def _row(label, premise, hypothesis, labels=None):
    """One .txt row as the official files have it (14 tab-separated columns)."""
    def binary(s):
        return '( ' + ' '.join(s.split()) + ' )'
    annotators = (labels or [label] * 5) + [''] * 5
    return '\t'.join([label, binary(premise), binary(hypothesis), '(ROOT)', '(ROOT)',
                      premise, hypothesis, 'c1', 'p1'] + annotators[:5])


def _write(folder, split, lines, mode='w', ending='\n'):
    path = folder / f'snli_1.0_{split}.txt'
    path.write_bytes(ending.join(lines).encode() + ending.encode())
    return path


def test_read_snli_txt_labels_and_dropped_gold(tmp_path):
    _write(tmp_path, 'train', [HEADER,
                               _row('entailment', 'A man sleeps .', 'A person rests .'),
                               _row('-', 'No gold .', 'Dropped .', ['neutral', 'entailment']),
                               _row('contradiction', 'A ( b ) c', 'D'),
                               _row('neutral', 'E', 'F')])
    premises, hypotheses, labels = read_snli(tmp_path, is_train=True)
    assert premises == ['A man sleeps .', 'A b c', 'E']
    assert hypotheses == ['A person rests .', 'D', 'F']
    assert labels == [0, 1, 2]


def test_read_snli_splits(demo_root):
    folder = demo_root / 'snli_1.0'
    train, test, dev = (read_snli(folder, True), read_snli(folder, False),
                        read_snli(folder, split='dev'))
    # The tiny preset has 240/60/60 pairs, about 1% of them without gold label.
    assert 225 <= len(train[0]) <= 240 and 50 <= len(test[0]) <= 60 and 50 <= len(dev[0]) <= 60
    assert set(train[2]) == {0, 1, 2}
    with pytest.raises(ValueError, match='unknown SNLI split'):
        read_snli(folder, split='validation')


def test_read_snli_jsonl_matches_txt(demo_root):
    folder = demo_root / 'snli_1.0'
    assert read_snli(folder, split='train', fmt='jsonl') == read_snli(folder, split='train')


def test_bom_and_crlf_are_accepted(tmp_path):
    lines = [HEADER, _row('neutral', 'A b .', 'C d .')]
    path = tmp_path / 'snli_1.0_test.txt'
    path.write_bytes(b'\xef\xbb\xbf' + '\r\n'.join(lines).encode() + b'\r\n')
    assert read_snli(tmp_path, False) == (['A b .'], ['C d .'], [2])


@pytest.mark.parametrize('bad_line, message', [
    (_row('neutral', 'A', 'B') + '\textra', 'line 3: 15 tab-separated columns, expected 14'),
    ('neutral\t( A )\t( B )', 'line 3: 3 tab-separated columns'),
    (_row('maybe', 'A', 'B'), "line 3: unknown gold label 'maybe'"),
])
def test_malformed_rows_name_file_and_line(tmp_path, bad_line, message):
    path = _write(tmp_path, 'train', [HEADER, _row('neutral', 'A', 'B'), bad_line])
    with pytest.raises(DataFormatError, match=message) as err:
        read_snli(tmp_path)
    assert str(path) in str(err.value)


def test_undecodable_bytes_name_the_line(tmp_path):
    path = tmp_path / 'snli_1.0_train.txt'
    path.write_bytes((HEADER + '\n' + _row('neutral', 'A', 'B') + '\n').encode()
                     + b'neutral\t( caf\xe9 )\n')
    with pytest.raises(DataFormatError, match=r'line 3: bytes that are not UTF-8'):
        read_snli(tmp_path)


def test_empty_missing_and_foreign_files(tmp_path):
    (tmp_path / 'snli_1.0_train.txt').write_bytes(b'')
    with pytest.raises(DataFormatError, match='file is empty'):
        read_snli(tmp_path)
    with pytest.raises(DataFormatError,
                       match='snli_1.0_test.txt: file not found.*download_extract'):
        read_snli(tmp_path, False)
    (tmp_path / 'snli_1.0_dev.txt').write_text('a,b,c\n1,2,3\n')
    with pytest.raises(DataFormatError, match='line 1: expected the SNLI header'):
        read_snli(tmp_path, split='dev')
    (tmp_path / 'snli_1.0_dev.jsonl').write_text('{"gold_label": "neutral"}\n')
    with pytest.raises(DataFormatError, match='line 1: not an SNLI JSON record'):
        read_snli(tmp_path, split='dev', fmt='jsonl')


def test_empty_sentences_are_kept(tmp_path):
    _write(tmp_path, 'train', [HEADER, _row('neutral', 'A b', '')])
    assert read_snli(tmp_path) == (['A b'], [''], [2])
    vocab = Vocab([['a', 'b']], reserved_tokens=RESERVED_TOKENS)
    ds = SNLIBERTDataset(read_snli(tmp_path), 8, vocab, verbose=False)
    assert (vocab.to_tokens(ds.token_ids[0, :ds.valid_lens[0]])
            == ['<cls>', 'a', 'b', '<sep>', '<sep>'])


def _vocab():
    words = 'a man is sleeping person resting the dog runs'.split()
    return Vocab([words], reserved_tokens=RESERVED_TOKENS)


def test_snli_bert_dataset_layout(capsys):
    vocab = _vocab()
    data = (['A man is sleeping', 'The dog'], ['A person is resting zebra', 'runs'], [0, 2])
    ds = SNLIBERTDataset(data, 12, vocab)
    assert capsys.readouterr().out == 'read 2 examples\n'
    (tokens, segments, valid_len), label = ds[0]
    assert vocab.to_tokens(tokens[:valid_len]) == (
        '<cls> a man is sleeping <sep> a person is resting <unk> <sep>'.split())
    assert valid_len == 12 and label == 0
    (tokens, segments, valid_len), label = ds[1]
    assert vocab.to_tokens(tokens) == '<cls> the dog <sep> runs <sep>'.split() + ['<pad>'] * 6
    assert list(segments) == [0, 0, 0, 0, 1, 1] + [0] * 6
    assert valid_len == 6 and label == 2
    assert ds.token_ids.dtype == ds.segments.dtype == ds.valid_lens.dtype == onp.int32


@pytest.mark.parametrize('strategy, expected', [
    ('longest_first', '<cls> a man is <sep> a person is <sep>'),
    ('ratio', '<cls> a man <sep> a person is resting <sep>'),
])
def test_snli_bert_dataset_truncates_pairs(strategy, expected):
    data = (['A man is sleeping'], ['A person is resting now and then'], [1])
    ds = SNLIBERTDataset(data, 9, _vocab(), truncate=strategy, verbose=False)
    assert ' '.join(_vocab().to_tokens(ds.token_ids[0])) == expected
    assert ds.valid_lens[0] == 9


def test_snli_bert_dataset_rejects_bad_arguments():
    with pytest.raises(ValueError, match='at least 5'):
        SNLIBERTDataset((['a'], ['b'], [0]), 4, _vocab())
    with pytest.raises(ValueError, match='differ in length'):
        SNLIBERTDataset((['a'], ['b', 'c'], [0]), 10, _vocab())
    with pytest.raises(ValueError, match='unknown truncation strategy'):
        SNLIBERTDataset((['a'], ['b'], [0]), 10, _vocab(), truncate='cut')


def test_snli_bert_dataset_builds_a_vocab_and_batches(demo_root):
    data = read_snli(demo_root / 'snli_1.0', split='train')
    ds = SNLIBERTDataset(data, 32, verbose=False)
    assert ds.vocab['<cls>'] == 3 and ds.vocab['man'] > 4
    batches = list(ds.loader(50, shuffle=True, seed=1))
    assert len(batches) == -(-len(ds) // 50)
    (tokens, segments, valid_lens), labels = batches[0]
    width = int(valid_lens.max())  # padded to the batch's longest pair only
    assert tokens.shape == (50, width) and segments.shape == (50, width) and width <= 32
    (tokens, _, _), _ = next(iter(ds.loader(50, trim=False)))
    assert tokens.shape == (50, 32)
    assert valid_lens.shape == labels.shape == (50,)
    seen = onp.concatenate([b[1].asnumpy() for b in batches])
    assert sorted(seen.tolist()) == sorted(ds.labels.tolist())


# ------------------------------------------------ bad input: data files

def test_an_extremely_long_sentence_is_read_and_truncated(tmp_path):
    long = ' '.join(['word'] * 200_000)
    _write(tmp_path, 'train', [HEADER, _row('neutral', long, 'A man .'),
                               _row('entailment', 'A b .', long)])
    premises, hypotheses, labels = read_snli(tmp_path)
    assert len(premises[0].split()) == 200_000 and labels == [2, 0]
    ds = SNLIBERTDataset((premises, hypotheses, labels), 16, _vocab(), verbose=False)
    assert ds.valid_lens.tolist() == [16, 16]
    # Both sides keep at least one token; the long side gives way.
    tokens = _vocab().to_tokens(ds.token_ids[0])
    assert (tokens[:2] == ['<cls>', '<unk>']
            and tokens[-5:] == ['<sep>', 'a', 'man', '<unk>', '<sep>'])
