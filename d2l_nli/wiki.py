"""WikiText-2 as BERT pretraining data: next-sentence pairs with masked tokens.

The semantics are the book's (``load_data_wiki``):

* a line of ``wiki.train.tokens`` is a paragraph if it holds at least two
  sentences separated by ``' . '``; paragraphs are lower-cased and shuffled;
* each pair of consecutive sentences gives one example whose second sentence
  is, with probability 1/2, replaced by a random sentence of the corpus
  (next-sentence prediction, NSP); pairs longer than ``max_len`` are skipped;
* 15% of the tokens of each example (at least one) are chosen for masked
  language modelling (MLM): 80% become ``<mask>``, 10% a random word and 10%
  stay unchanged;
* the vocabulary keeps words seen at least 5 times, plus ``<pad> <mask>
  <cls> <sep>`` after ``<unk>``.

Unlike the book, the examples are built in bulk into a handful of NumPy
arrays (no framework array per example) and every random draw comes from one
seeded generator, so the same seed gives the same batches.
"""
import random
from pathlib import Path

import numpy as onp

from .errors import DataFormatError
from .loader import ArrayLoader
from .text import Vocab, tokenize

__all__ = ['mlm_unigram', 'RESERVED_TOKENS', 'read_wiki', 'WikiTextBERTData', 'load_data_wiki']

RESERVED_TOKENS = ['<pad>', '<mask>', '<cls>', '<sep>']
MLM_FRACTION = 0.15


def read_wiki(data_dir, file_name='wiki.train.tokens', seed=0):
    """Paragraphs of a WikiText file as lists of lower-cased sentence strings.

    Lines without a ``' . '`` separator (headings, blank lines) are dropped,
    as in the book. A one-sentence line whose final ``' . '`` is followed only
    by the line's closing space is kept as in the book, which keeps its words
    in the vocabulary (the book's 20,256 tokens) but makes no pair. The
    paragraphs are shuffled with ``seed``.
    """
    path = Path(data_dir) / file_name
    if not path.is_file():
        raise DataFormatError(
            f'{path}: file not found. Run d2l_nli.download_extract("wikitext-2") '
            'to fetch the archive, or put the extracted wikitext-2 folder of '
            'wikitext-2-v1.zip there.')
    raw = path.read_bytes()
    try:
        lines = raw.decode('utf-8-sig').split('\n')  # as readlines: only \n ends a line
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b'\n') + 1
        raise DataFormatError(f'{path}, line {line}: bytes that are not UTF-8 '
                              f'({err.reason}); the file is damaged: delete it and '
                              'download the archive again') from None
    paragraphs = [line.strip().lower().split(' . ')
                  for line in lines if len(line.split(' . ')) >= 2]
    if not any(len(p) >= 2 for p in paragraphs):
        raise DataFormatError(
            f'{path}: no paragraph with at least two sentences (" . "-separated) '
            'in this file, so no next-sentence pair can be made. Is it a '
            'WikiText-2 token file?')
    random.Random(seed).shuffle(paragraphs)
    return paragraphs


class WikiTextBERTData:
    """Pretraining examples of the book's ``_WikiTextDataset``, as NumPy arrays.

    After construction (``n`` examples, ``P = round(0.15 * max_len)``):

    * ``token_ids`` (n, max_len) int32, padded with ``<pad>``
    * ``segments`` (n, max_len) int32, 0 for the first sentence, 1 for the second
    * ``valid_lens`` (n,) int32, tokens before the padding
    * ``pred_positions`` (n, P) int32, positions to predict, padded with 0
    * ``mlm_weights`` (n, P) float32, 1 for real predictions, 0 for padding
    * ``mlm_labels`` (n, P) int32, original token ids at those positions
    * ``nsp_labels`` (n,) int32, 1 if the second sentence really follows
    """

    def __init__(self, paragraphs, max_len, vocab=None, seed=0):
        if max_len < 5:
            raise ValueError(f'max_len={max_len} is too small: a pair needs at least 5 tokens')
        paragraphs = [tokenize(p) for p in paragraphs]
        sentences = [s for p in paragraphs for s in p]
        self.vocab = vocab or Vocab(sentences, min_freq=5, reserved_tokens=RESERVED_TOKENS)
        self.max_len = max_len
        rng = random.Random(seed)
        pairs = self._nsp_pairs(paragraphs, sentences, max_len, rng)
        self._build_arrays(pairs, onp.random.default_rng(seed))

    @staticmethod
    def _nsp_pairs(paragraphs, sentences, max_len, rng):
        """(sentence a, sentence b, is_next) for consecutive sentences of each paragraph."""
        pairs = []
        for paragraph in paragraphs:
            for a, b in zip(paragraph, paragraph[1:]):
                is_next = rng.random() < 0.5
                if not is_next:
                    # The book draws a random paragraph, then a sentence of it.
                    b = rng.choice(rng.choice(paragraphs))
                if len(a) + len(b) + 3 <= max_len:
                    pairs.append((a, b, is_next))
        return pairs

    def _build_arrays(self, pairs, np_rng):
        n, max_len, vocab = len(pairs), self.max_len, self.vocab
        if n == 0:
            raise DataFormatError(f'no sentence pair fits max_len={max_len}; '
                                  'use a larger max_len')
        pad, cls, sep, mask = (vocab[t] for t in ('<pad>', '<cls>', '<sep>', '<mask>'))
        token_ids = onp.full((n, max_len), pad, dtype=onp.int32)
        segments = onp.zeros((n, max_len), dtype=onp.int32)
        valid_lens = onp.empty(n, dtype=onp.int32)
        lookup = vocab.token_to_idx
        for i, (a, b, _) in enumerate(pairs):
            ids = [cls] + [lookup.get(t, 0) for t in a] + [sep] + \
                  [lookup.get(t, 0) for t in b] + [sep]
            token_ids[i, :len(ids)] = ids
            segments[i, len(a) + 2:len(ids)] = 1
            valid_lens[i] = len(ids)
        self.token_ids, self.segments, self.valid_lens = token_ids, segments, valid_lens
        self.nsp_labels = onp.array([p[2] for p in pairs], dtype=onp.int32)
        self._mask_tokens(np_rng, mask, cls, sep)

    def _mask_tokens(self, rng, mask_id, cls, sep):
        """Choose and corrupt the MLM positions of all examples at once."""
        n, max_len = self.token_ids.shape
        num_slots = round(max_len * MLM_FRACTION)
        positions = onp.arange(max_len)
        candidate = (positions < self.valid_lens[:, None]) & \
            (self.token_ids != cls) & (self.token_ids != sep)
        # A random order of the candidate positions of each row: sort random
        # keys, with non-candidates pushed to the end.
        keys = onp.where(candidate, rng.random((n, max_len)), 2.0)
        chosen = onp.argsort(keys, axis=1)[:, :num_slots]
        num_preds = onp.maximum(1, onp.round(self.valid_lens * MLM_FRACTION)).astype(int)
        num_preds = onp.minimum(num_preds, candidate.sum(axis=1))
        real = onp.arange(num_slots) < num_preds[:, None]
        # Positions in increasing order with the padding slots last.
        chosen = onp.sort(onp.where(real, chosen, max_len), axis=1)
        pred_positions = onp.where(real, chosen, 0).astype(onp.int32)
        rows = onp.arange(n)[:, None]
        mlm_labels = onp.where(real, self.token_ids[rows, pred_positions], 0)
        # 80% <mask>, 10% a random word (never a reserved token), 10% unchanged.
        u = rng.random((n, num_slots))
        first_word = len(RESERVED_TOKENS) + 1
        random_words = rng.integers(first_word, max(len(self.vocab), first_word + 1),
                                    size=(n, num_slots))
        replaced = onp.where(u < 0.8, mask_id,
                             onp.where(u < 0.9, mlm_labels, random_words))
        r, c = onp.nonzero(real)
        self.token_ids[r, pred_positions[r, c]] = replaced[r, c]
        self.pred_positions = pred_positions
        self.mlm_weights = real.astype(onp.float32)
        self.mlm_labels = mlm_labels.astype(onp.int32)

    def __len__(self):
        return len(self.token_ids)

    @property
    def arrays(self):
        """The seven arrays in the order ``train_bert`` unpacks a batch."""
        return (self.token_ids, self.segments, self.valid_lens, self.pred_positions,
                self.mlm_weights, self.mlm_labels, self.nsp_labels)


def mlm_unigram(data, vocab_size):
    """Word frequencies of the MLM targets: ``(log_probs (vocab_size,), entropy)``.

    ``data`` is a :class:`WikiTextBERTData` or the ``train_iter`` of
    :func:`load_data_wiki`. ``entropy`` (nats) is the unigram entropy of
    the targets: the lowest MLM loss on them of any model that ignores the
    context (it predicts their exact frequencies). Pretraining has learned
    from context only once its MLM loss is below it. ``log_probs`` are
    add-one smoothed, so that a word never seen as a target keeps a small
    probability (for a model's output bias, or a baseline on other text).
    """
    arrays = data.arrays
    labels, weights = onp.asarray(arrays[5]).ravel(), onp.asarray(arrays[4]).ravel()
    targets = labels[weights > 0]
    if not len(targets):
        raise ValueError('no masked-LM target in the data')
    counts = onp.bincount(targets, minlength=vocab_size).astype(onp.float64)
    freqs = counts[counts > 0] / len(targets)
    entropy = float(-(freqs * onp.log(freqs)).sum())
    log_probs = onp.log((counts + 1.0) / (counts.sum() + vocab_size))
    return log_probs.astype(onp.float32), entropy


def load_data_wiki(batch_size, max_len, *, data_dir=None, seed=0,
                   file_name='wiki.train.tokens', trim=True, vocab=None, shuffle=True,
                   num_pairs=None):
    """Load WikiText-2 for pretraining: ``(train_iter, vocab)``.

    ``train_iter`` yields the book's seven arrays per batch: tokens (b,
    max_len), segments (b, max_len), valid lengths (b,), prediction positions
    (b, P), MLM weights (b, P), MLM labels (b, P) and NSP labels (b,). The
    data folder is the hub's (see :func:`d2l_nli.get_data_dir`) unless
    ``data_dir`` names one holding ``wikitext-2/``. With ``trim`` each batch
    is padded only to its longest example (same results, less work).
    ``vocab`` reuses a vocabulary (e.g. the training one for
    ``file_name='wiki.valid.tokens'``); by default it is built from the file.
    ``num_pairs`` keeps only that many sentence pairs (from randomly chosen
    paragraphs), for short runs; the vocabulary still comes from all of it.
    """
    from .hub import download_extract

    folder = download_extract('wikitext-2', data_dir=data_dir)
    paragraphs = read_wiki(folder, file_name, seed=seed)
    data = WikiTextBERTData(paragraphs, max_len, vocab=vocab, seed=seed)
    arrays = data.arrays
    if num_pairs is not None:
        if num_pairs < 1:
            raise ValueError(f'num_pairs must be positive, got {num_pairs}')
        # Paragraphs were shuffled by ``seed``: the first pairs are a random sample.
        arrays = tuple(a[:num_pairs] for a in arrays)
    train_iter = ArrayLoader(arrays, batch_size, shuffle=shuffle, seed=seed,
                             trim=(2, (0, 1)) if trim else None)
    return train_iter, data.vocab
