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
import itertools
import random
from pathlib import Path
from typing import Any, NamedTuple

import numpy as onp

from .errors import DataFormatError
from .loader import ArrayLoader
from .text import Vocab

__all__ = ['mlm_unigram', 'RESERVED_TOKENS', 'wiki_sentences', 'wiki_vocab', 'read_wiki',
           'PretrainingBatch',
           'WikiTextBERTData', 'load_data_wiki', 'snli_paragraphs']

RESERVED_TOKENS = ['<pad>', '<mask>', '<cls>', '<sep>']


def wiki_sentences(paragraphs):
    """Every sentence of ``paragraphs`` as its list of lowercased tokens."""
    return [s.lower().split() for p in paragraphs for s in p]


def wiki_vocab(tokens):
    """The chapter's vocabulary of ``tokens``: words seen 5 times or more, and the reserved ones."""
    return Vocab(tokens, min_freq=5, reserved_tokens=RESERVED_TOKENS)
MLM_FRACTION = 0.15


class PretrainingBatch(NamedTuple):
    """The seven aligned arrays of pretraining examples, in the chapter's order.

    NumPy arrays for a whole dataset (:attr:`WikiTextBERTData.arrays`),
    ``mxnet.np`` arrays for a batch of :func:`load_data_wiki`'s loader.
    ``B`` examples, ``T`` tokens, ``P`` prediction slots each.
    """
    tokens: Any          # (B, T) token ids, the masked positions already corrupted
    segments: Any        # (B, T) 0 for <cls>, the first sentence and its <sep>; then 1
    valid_lens: Any      # (B,) tokens before the padding
    pred_positions: Any  # (B, P) positions to predict (0 in padding slots)
    mlm_weights: Any     # (B, P) 1 for a real prediction, 0 for a padding slot
    mlm_labels: Any      # (B, P) the original token at each position
    nsp_labels: Any      # (B,) 1 if the second sentence really follows the first

    @property
    def inputs(self):
        """The six arrays besides the NSP labels (``split_batch_multi_inputs``'s ``X``)."""
        return tuple(self)[:-1]


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

    With ``dynamic=True`` the pairs and masks are drawn anew for each pass
    by :meth:`draw`; ``pools`` (one id per paragraph) then keeps the random
    second sentences within their own text: an SNLI premise is paired with
    another pair's hypothesis, never with a Wikipedia sentence, which a
    model would tell apart by its style alone.
    """

    def __init__(self, paragraphs, max_len, vocab=None, seed=0, dynamic=False, pools=None):
        if max_len < 5:
            raise ValueError(f'max_len={max_len} is too small: a pair needs at least 5 tokens')
        if pools is not None and not dynamic:
            raise ValueError('pools need dynamic=True: the chapter\'s pairs, drawn once, '
                             'take their random sentences from the whole text')
        # Every sentence is split and looked up once, into one flat id array;
        # pairs are then (sentence, sentence) index pairs, laid out in bulk.
        sentences = wiki_sentences(paragraphs)
        flat_tokens = [tok for s in sentences for tok in s]
        self.vocab = vocab or wiki_vocab(flat_tokens)
        self.max_len, self.seed, self.dynamic = max_len, seed, dynamic
        lookup = self.vocab.token_to_idx.get
        self._flat = onp.fromiter(map(lookup, flat_tokens, itertools.repeat(0)),
                                  dtype=onp.int32, count=len(flat_tokens))
        self._sent_lens = onp.fromiter(map(len, sentences), dtype=onp.int64,
                                       count=len(sentences))
        self._sent_starts = onp.concatenate([[0], onp.cumsum(self._sent_lens)[:-1]])
        ends = onp.cumsum([len(p) for p in paragraphs])
        spans = [range(end - len(p), end) for p, end in zip(paragraphs, ends)]
        if dynamic:
            self._firsts = self._fitting_firsts(spans, self._sent_lens, max_len)
            self._pools = self._sentence_pools(pools, paragraphs)
            self.draw(0)
        else:
            pairs = self._nsp_pairs(spans, self._sent_lens, max_len, random.Random(seed))
            self._build_arrays(pairs, onp.random.default_rng(seed))

    @staticmethod
    def _sentence_pools(pools, paragraphs):
        """Per sentence: the pool its random replacements come from (-1: never drawn).

        ``pools`` gives each paragraph a pool id (None: all in pool 0). In
        pool 0 every sentence may be drawn, as in the chapter; in the other
        pools (e.g. SNLI's premise/hypothesis pairs) only the sentences that
        follow another one (the hypotheses), so that a random second
        sentence looks like a true one and only its meaning tells them apart.
        """
        sizes = [len(p) for p in paragraphs]
        if pools is None:
            return onp.zeros(sum(sizes), onp.int64)
        pools = onp.asarray(pools, onp.int64)
        if len(pools) != len(paragraphs):
            raise ValueError(f'{len(pools)} pools for {len(paragraphs)} paragraphs')
        per_sentence = onp.repeat(pools, sizes)
        first = onp.concatenate([[0], onp.cumsum(sizes)[:-1]]).astype(onp.int64)
        first = first[onp.asarray(sizes) > 0]
        per_sentence[first[per_sentence[first] != 0]] = -1
        return per_sentence

    @staticmethod
    def _fitting_firsts(spans, sent_lens, max_len):
        """Sentences whose true next sentence fits with them into ``max_len``."""
        firsts = onp.array([a for span in spans for a in span[:-1]], dtype=onp.int64)
        if not len(firsts):
            return firsts
        return firsts[sent_lens[firsts] + sent_lens[firsts + 1] + 3 <= max_len]

    def draw(self, k):
        """Draw pass ``k``'s examples anew (``dynamic=True``); returns :attr:`arrays`.

        The examples are the same sentences, one per fitting pair of
        consecutive sentences, so every pass has as many. What changes from
        pass to pass, from a generator seeded with ``(seed, k)``: which
        examples keep their true next sentence (half of them), the random
        sentence that replaces it in the others (drawn uniformly among the
        sentences of the same pool that are short enough to fit: see
        ``pools``) and the masked positions (RoBERTa's dynamic masking). A
        model can then no longer learn fixed masks and fixed random pairs by
        heart over several passes.
        """
        if not self.dynamic:
            raise ValueError('draw() needs WikiTextBERTData(..., dynamic=True)')
        rng = onp.random.default_rng((self.seed, k))
        firsts = self._firsts
        is_next = rng.random(len(firsts)) < 0.5
        # Random second sentences among those of the true one's pool that fit
        # after each first one: sentences sorted by (pool, length), then a
        # uniform index into the stretch of the pool that fits.
        lens, pools = self._sent_lens, self._pools
        order = onp.lexsort((lens, pools))
        keys = pools[order] * (self.max_len + 1) + onp.minimum(lens[order], self.max_len)
        pool = pools[firsts + 1]
        room = self.max_len - 3 - lens[firsts]
        lo = onp.searchsorted(keys, pool * (self.max_len + 1), side='left')
        hi = onp.searchsorted(keys, pool * (self.max_len + 1) + room, side='right')
        randoms = order[lo + (rng.random(len(firsts)) * (hi - lo)).astype(onp.int64)]
        seconds = onp.where(is_next, firsts + 1, randoms)
        self._build_arrays((firsts, seconds, is_next.astype(onp.int32)), rng)
        return self.arrays

    @staticmethod
    def _nsp_pairs(spans, sent_lens, max_len, rng):
        """Arrays (first, second, is_next) of sentence indices for consecutive sentences.

        ``spans[k]`` is the range of sentence indices of paragraph ``k``.
        """
        firsts, seconds, labels = [], [], []
        for span in spans:
            for a in span[:-1]:
                b, is_next = a + 1, rng.random() < 0.5
                if not is_next:
                    # The book draws a random paragraph, then a sentence of it.
                    b = rng.choice(rng.choice(spans))
                if sent_lens[a] + sent_lens[b] + 3 <= max_len:
                    firsts.append(a)
                    seconds.append(b)
                    labels.append(is_next)
        return (onp.array(firsts, dtype=onp.int64), onp.array(seconds, dtype=onp.int64),
                onp.array(labels, dtype=onp.int32))

    def _build_arrays(self, pairs, np_rng):
        firsts, seconds, nsp_labels = pairs
        n, max_len, vocab = len(firsts), self.max_len, self.vocab
        if n == 0:
            raise DataFormatError(f'no sentence pair fits max_len={max_len}; '
                                  'use a larger max_len')
        pad, cls, sep, mask = (vocab[t] for t in ('<pad>', '<cls>', '<sep>', '<mask>'))
        len_a = self._sent_lens[firsts][:, None]
        len_b = self._sent_lens[seconds][:, None]
        pos = onp.arange(max_len)[None, :]
        # Row layout: <cls> a <sep> b <sep> <pad>...; gather a and b from the
        # flat ids (indices outside a sentence are clipped, then overwritten).
        in_a = (pos >= 1) & (pos <= len_a)
        in_b = (pos >= len_a + 2) & (pos < len_a + 2 + len_b)
        src = onp.where(in_a, self._sent_starts[firsts][:, None] + pos - 1,
                        self._sent_starts[seconds][:, None] + pos - len_a - 2)
        src = onp.clip(src, 0, max(len(self._flat) - 1, 0))
        valid_lens = (len_a + len_b + 3)[:, 0]
        token_ids = onp.where(in_a | in_b, self._flat[src] if len(self._flat) else 0, pad)
        token_ids[:, 0] = cls
        is_sep = (pos == len_a + 1) | (pos == valid_lens[:, None] - 1)
        token_ids = onp.where(is_sep, sep, token_ids).astype(onp.int32)
        self.token_ids = token_ids
        self.segments = ((pos >= len_a + 2) & (pos < valid_lens[:, None])).astype(onp.int32)
        self.valid_lens = valid_lens.astype(onp.int32)
        self.nsp_labels = nsp_labels
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
        # The num_slots smallest keys of each row (a partition is O(max_len)),
        # then sorted among themselves: the same result as a full argsort.
        chosen = onp.argpartition(keys, num_slots - 1, axis=1)[:, :num_slots]
        chosen = onp.take_along_axis(
            chosen, onp.argsort(onp.take_along_axis(keys, chosen, axis=1), axis=1), axis=1)
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
        """All examples as one :class:`PretrainingBatch` of NumPy arrays."""
        return PretrainingBatch(self.token_ids, self.segments, self.valid_lens,
                                self.pred_positions, self.mlm_weights, self.mlm_labels,
                                self.nsp_labels)


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
    labels = onp.asarray(arrays.mlm_labels).ravel()
    weights = onp.asarray(arrays.mlm_weights).ravel()
    targets = labels[weights > 0]
    if not len(targets):
        raise ValueError('no masked-LM target in the data')
    counts = onp.bincount(targets, minlength=vocab_size).astype(onp.float64)
    freqs = counts[counts > 0] / len(targets)
    entropy = float(-(freqs * onp.log(freqs)).sum())
    log_probs = onp.log((counts + 1.0) / (counts.sum() + vocab_size))
    return log_probs.astype(onp.float32), entropy


def _num_preds(arrays):
    """Each example's number of real predictions (they come first in its row)."""
    return arrays.mlm_weights.sum(axis=1).astype(onp.int32)


# How load_data_wiki trims a batch: tokens and segments to its longest pair,
# the MLM columns to its most predictions (see ArrayLoader's ``trim``).
# Buckets of similar length make both widths small.
TRIM_WIDTHS = [('valid_lens', ('tokens', 'segments')),
               (_num_preds, ('pred_positions', 'mlm_weights', 'mlm_labels'))]


def load_data_wiki(batch_size, max_len, *, data_dir=None, seed=0,
                   file_name='wiki.train.tokens', trim=True, vocab=None, shuffle=True,
                   num_pairs=None, bucket=20, dynamic=False, extra_paragraphs=None):
    """Load WikiText-2 for pretraining: ``(train_iter, vocab)``.

    ``train_iter`` yields the book's seven arrays per batch, as a
    :class:`PretrainingBatch`: tokens (b, max_len), segments (b, max_len),
    valid lengths (b,), prediction positions (b, P), MLM weights (b, P),
    MLM labels (b, P) and NSP labels (b,); its ``arrays`` are all examples. The
    data folder is the hub's (see :func:`d2l_nli.get_data_dir`) unless
    ``data_dir`` names one holding ``wikitext-2/``. With ``trim`` each batch
    is padded only to its longest example and cut to its most MLM
    predictions (``P`` above becomes the batch's own), and with ``bucket``
    > 0 pairs of similar length share a batch (see :mod:`d2l_nli.loader`):
    the same losses, less work. ``trim=False`` gives the book's fixed shapes.
    ``vocab`` reuses a vocabulary (e.g. the training one for
    ``file_name='wiki.valid.tokens'``); by default it is built from the file.
    ``num_pairs`` keeps only that many sentence pairs (from randomly chosen
    paragraphs), for short runs; the vocabulary still comes from all of it.

    Two options the chapter does not have: ``dynamic=True`` draws new masks
    and new random next sentences for every pass (see
    :meth:`WikiTextBERTData.draw`; the chapter draws them once), and
    ``extra_paragraphs`` (lists of sentence strings) joins more text to
    WikiText-2, e.g. the task's own unlabelled sentences (see
    :func:`d2l_nli.snli_paragraphs`); its words count for the vocabulary.
    With ``dynamic=True`` the random second sentences of the extra text come
    from the extra text only (see ``pools`` in :class:`WikiTextBERTData`);
    without, from anywhere, as the chapter draws them.
    """
    from .machinery.hub import download_extract

    folder = download_extract('wikitext-2', data_dir=data_dir)
    paragraphs = read_wiki(folder, file_name, seed=seed)
    pools = None
    if extra_paragraphs:
        # The extra text is pool 1: its random second sentences come from it.
        tagged = [(0, p) for p in paragraphs] + [(1, list(p)) for p in extra_paragraphs]
        random.Random(seed).shuffle(tagged)
        pools, paragraphs = [t[0] for t in tagged], [t[1] for t in tagged]
    if num_pairs is not None and num_pairs < 1:
        raise ValueError(f'num_pairs must be positive, got {num_pairs}')
    data = WikiTextBERTData(paragraphs, max_len, vocab=vocab, seed=seed, dynamic=dynamic,
                            pools=pools if dynamic else None)

    def sample(arrays):
        # Paragraphs were shuffled by ``seed``: the first pairs are a random sample.
        return arrays if num_pairs is None else PretrainingBatch(*(a[:num_pairs] for a in arrays))

    train_iter = ArrayLoader(sample(data.arrays), batch_size, shuffle=shuffle, seed=seed,
                             trim=TRIM_WIDTHS if trim else None, bucket=bucket if trim else 0,
                             pack=PretrainingBatch,
                             fresh=(lambda k: sample(data.draw(k))) if dynamic else None)
    return train_iter, data.vocab


def snli_paragraphs(dataset):
    """SNLI pairs ``(premises, hypotheses, labels)`` as two-sentence paragraphs.

    For task-adaptive pretraining (Gururangan et al. 2020): joined to the
    pretraining text with ``load_data_wiki(extra_paragraphs=...)``, each pair
    makes one next-sentence example whose true "next sentence" is the
    hypothesis written for the premise. The labels are not used.
    """
    premises, hypotheses, _ = dataset
    return [[p, h] for p, h in zip(premises, hypotheses)]
