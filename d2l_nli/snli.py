"""Reading the Stanford Natural Language Inference (SNLI) corpus.

:func:`read_snli` reads one split from the folder the official archive
extracts to (``snli_1.0/snli_1.0_{train,dev,test}.{txt,jsonl}``) and returns
``(premises, hypotheses, labels)`` as the book does: sentences as
space-separated tokens, labels entailment 0, contradiction 1, neutral 2;
pairs whose gold label is ``-`` (no annotator majority) are dropped.

Every malformed row is reported with its file and line number instead of
being skipped silently or failing later with an ``IndexError``.
"""
import json
from pathlib import Path

from .errors import DataFormatError
from .text import tokenize_sentence

__all__ = ['LABELS', 'LABEL_NAMES', 'SNLI_COLUMNS', 'read_snli']

LABELS = {'entailment': 0, 'contradiction': 1, 'neutral': 2}
LABEL_NAMES = ['entailment', 'contradiction', 'neutral']
SNLI_COLUMNS = ['gold_label', 'sentence1_binary_parse', 'sentence2_binary_parse',
                'sentence1_parse', 'sentence2_parse', 'sentence1', 'sentence2',
                'captionID', 'pairID', 'label1', 'label2', 'label3', 'label4',
                'label5']
_SPLITS = ('train', 'dev', 'test')


def _parse_tokens(binary_parse):
    """Tokens of a binary-parse column: drop the brackets, keep the words."""
    return ' '.join(tok for tok in binary_parse.split() if tok not in ('(', ')'))


def _lines(path):
    """Yield ``(line_number, text)`` of a UTF-8 file; BOM and CRLF tolerated."""
    with open(path, 'rb') as f:
        for number, raw in enumerate(f, start=1):
            if number == 1 and raw.startswith(b'\xef\xbb\xbf'):
                raw = raw[3:]
            try:
                line = raw.decode('utf-8')
            except UnicodeDecodeError as err:
                raise DataFormatError(
                    f'{path}, line {number}: bytes that are not UTF-8 ({err.reason} '
                    f'at column {err.start + 1}). The file is damaged or not an '
                    'SNLI file: delete it and download the archive again.') from None
            yield number, line.rstrip('\r\n')


def _read_txt(path):
    rows = _lines(path)
    try:
        _, header = next(rows)
    except StopIteration:
        raise DataFormatError(f'{path}: the file is empty; delete it and download '
                              'the SNLI archive again') from None
    columns = header.split('\t')
    if columns[:3] != SNLI_COLUMNS[:3]:
        raise DataFormatError(
            f'{path}, line 1: expected the SNLI header starting with '
            f'{SNLI_COLUMNS[:3]}, found {columns[:3]}; is this an SNLI .txt file?')
    for number, line in rows:
        if not line.strip():
            continue
        fields = line.split('\t')
        if len(fields) != len(columns):
            raise DataFormatError(
                f'{path}, line {number}: {len(fields)} tab-separated columns, '
                f'expected {len(columns)} as in the header. Fix or remove that '
                'line, or download the archive again.')
        yield number, fields[0], _parse_tokens(fields[1]), _parse_tokens(fields[2])


def _read_jsonl(path):
    empty = True
    for number, line in _lines(path):
        if not line.strip():
            continue
        empty = False
        try:
            row = json.loads(line)
            label, premise, hypothesis = row['gold_label'], row['sentence1'], row['sentence2']
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise DataFormatError(
                f'{path}, line {number}: not an SNLI JSON record ({err!r}); each '
                'line must be an object with gold_label, sentence1 and sentence2') from None
        if not isinstance(premise, str) or not isinstance(hypothesis, str):
            raise DataFormatError(f'{path}, line {number}: sentence1 and sentence2 '
                                  'must be strings')
        yield (number, label, ' '.join(tokenize_sentence(premise, lower=False)),
               ' '.join(tokenize_sentence(hypothesis, lower=False)))
    if empty:
        raise DataFormatError(f'{path}: the file is empty; delete it and download '
                              'the SNLI archive again')


def read_snli(data_dir, is_train=True, *, split=None, fmt='txt'):
    """Read one SNLI split into ``(premises, hypotheses, labels)``.

    ``is_train`` picks train or test as in the book; ``split`` ('train',
    'dev' or 'test') overrides it. ``fmt='txt'`` reads the binary-parse
    columns of the ``.txt`` file (the book's choice); ``fmt='jsonl'`` reads
    the raw sentences of the ``.jsonl`` file through :func:`tokenize_sentence`,
    which gives the same tokens. Sentences keep their case; the tokenizers
    of the model lower-case them.
    """
    split = split or ('train' if is_train else 'test')
    if split not in _SPLITS:
        raise ValueError(f'unknown SNLI split {split!r}; choose one of {_SPLITS}')
    if fmt not in ('txt', 'jsonl'):
        raise ValueError(f"fmt must be 'txt' or 'jsonl', not {fmt!r}")
    path = Path(data_dir) / f'snli_1.0_{split}.{fmt}'
    if not path.is_file():
        raise DataFormatError(
            f'{path}: file not found. Run d2l_nli.download_extract("SNLI") to '
            'fetch the archive, or put the extracted snli_1.0 folder of '
            'snli_1.0.zip there.')
    reader = _read_txt if fmt == 'txt' else _read_jsonl
    premises, hypotheses, labels = [], [], []
    for number, label, premise, hypothesis in reader(path):
        if label == '-':
            continue  # the annotators did not agree: no gold label
        if label not in LABELS:
            raise DataFormatError(
                f'{path}, line {number}: unknown gold label {label!r}; expected '
                f'one of {LABEL_NAMES} or "-"')
        premises.append(premise)
        hypotheses.append(hypothesis)
        labels.append(LABELS[label])
    return premises, hypotheses, labels
