# Generated from notebooks/02_snli_dataset_for_bert.ipynb by tools/nbexport.py: do not edit.
# Edit the notebook's #@save cells, then run: python tools/nbexport.py
"""SNLI pairs as BERT inputs: the chapter's ``SNLIBERTDataset`` and its steps.

Each pair becomes ``<cls> premise <sep> hypothesis <sep>`` with segment
ids 0 then 1, truncated to ``max_len`` and padded per batch. The token
ids are looked up in bulk, in the calling process (the book's
``multiprocessing.Pool`` hangs in notebooks on Windows and macOS), and
kept ragged: one flat array per side, laid out batch by batch.
"""
import collections
import itertools

import numpy as onp
from mxnet import gluon

from .loader import BatchLoader
from .text import TRUNCATION_STRATEGIES, Vocab
from .wiki import RESERVED_TOKENS

__all__ = ['check_pair_arguments', 'count_tokens', 'lookup_sentences', 'kept_lengths',
           'place_sentences', 'SNLIBERTDataset', 'pair_loader']


def check_pair_arguments(premises, hypotheses, labels, max_len, truncate):
    """Raise ``ValueError`` unless ``SNLIBERTDataset`` can convert these pairs.

    Defined in notebooks/02_snli_dataset_for_bert.ipynb.
    """
    if not len(premises) == len(hypotheses) == len(labels):
        raise ValueError('premises, hypotheses and labels differ in length: '
                         f'{len(premises)}, {len(hypotheses)}, {len(labels)}')
    if truncate not in TRUNCATION_STRATEGIES:
        raise ValueError(f'unknown truncation strategy {truncate!r}; choose one '
                         f'of {sorted(TRUNCATION_STRATEGIES)}')
    if max_len < 5:
        raise ValueError(f'max_len={max_len} is too small for a sentence pair: '
                         'it needs at least 5 (<cls>, <sep>, <sep> and a token of each)')


def count_tokens(*sides, chunk=32768):
    """How often each token occurs in the sentences of ``sides`` (lists of strings).

    Defined in notebooks/02_snli_dataset_for_bert.ipynb.
    """
    counter = collections.Counter()
    for sentences in sides:
        for i in range(0, len(sentences), chunk):
            counter.update(token for sentence in sentences[i:i + chunk]
                           for token in sentence.lower().split())
    return counter


def lookup_sentences(sentences, vocab, chunk=32768):
    """Token ids of all ``sentences``: ``(flat ids, start of each, length of each)``.

    Sentence ``i`` is ``ids[starts[i]:starts[i] + lengths[i]]``.

    Defined in notebooks/02_snli_dataset_for_bert.ipynb.
    """
    get, unk = vocab.token_to_idx.get, vocab.unk
    ids, lens = [], []
    for i in range(0, len(sentences), chunk):
        tokens = [s.lower().split() for s in sentences[i:i + chunk]]
        lens.append(onp.fromiter(map(len, tokens), onp.int64, len(tokens)))
        flat = itertools.chain.from_iterable(tokens)
        ids.append(onp.fromiter(map(get, flat, itertools.repeat(unk)), onp.int32,
                                int(lens[-1].sum())))
    lens = onp.concatenate(lens) if lens else onp.zeros(0, onp.int64)
    starts = onp.concatenate([[0], onp.cumsum(lens)[:-1]]).astype(onp.int64)
    return (onp.concatenate(ids) if ids else onp.zeros(0, onp.int32)), starts, lens


def kept_lengths(p_lens, h_lens, max_len, truncate='longest_first'):
    """How many tokens of each premise and hypothesis fit their pair into ``max_len``.

    Defined in notebooks/02_snli_dataset_for_bert.ipynb.
    """
    budget = max_len - 3  # room for <cls>, <sep>, <sep>
    p_keep, h_keep = p_lens.copy(), h_lens.copy()
    keep = TRUNCATION_STRATEGIES[truncate]  # (len_p, len_h, budget) -> kept lengths
    for i in onp.nonzero(p_lens + h_lens > budget)[0]:
        p_keep[i], h_keep[i] = keep(int(p_lens[i]), int(h_lens[i]), budget)
    return p_keep, h_keep


def place_sentences(tokens, ids, starts, first, keep):
    """``tokens`` (n, width) with the first ``keep[i]`` ids of sentence ``i`` in row ``i``.

    Sentence ``i`` starts at ``ids[starts[i]]``; its tokens go to the columns
    from ``first[i]`` on (``first`` and ``keep``: (n, 1) arrays or numbers).
    The other columns keep the ids they have.

    Defined in notebooks/02_snli_dataset_for_bert.ipynb.
    """
    if not len(ids):
        return tokens
    pos = onp.arange(tokens.shape[1])[None, :]
    at = onp.clip(starts[:, None] + pos - first, 0, len(ids) - 1)
    return onp.where((pos >= first) & (pos < first + keep), ids[at], tokens)


class SNLIBERTDataset(gluon.data.Dataset):
    """SNLI pairs ``dataset = (premises, hypotheses, labels)`` as BERT inputs.

    For ``n`` pairs: ``valid_lens`` (n,) int32 and ``labels`` (n,) int32;
    ``token_ids`` and ``segments`` (n, max_len) int32 are built on access.
    ``dataset[i]`` is ``((token_ids, segments, valid_len), label)``.
    ``truncate`` is ``'longest_first'`` (the chapter) or ``'ratio'`` (the
    exercise). Without ``vocab`` one is built from the pairs (tokens seen
    at least 5 times).

    Defined in notebooks/02_snli_dataset_for_bert.ipynb.
    """
    CHUNK = 32768  # sentences tokenized at a time: bounds the memory of token strings

    def __init__(self, dataset, max_len, vocab=None, truncate='longest_first',
                 verbose=True):
        premises, hypotheses, labels = dataset
        check_pair_arguments(premises, hypotheses, labels, max_len, truncate)
        if vocab is None:
            vocab = Vocab(count_tokens(premises, hypotheses, chunk=self.CHUNK), min_freq=5,
                          reserved_tokens=RESERVED_TOKENS)
        self.vocab, self.max_len, self.truncate = vocab, max_len, truncate
        self.labels = onp.asarray(labels, dtype=onp.int32)
        self._p_ids, self._p_starts, p_lens = lookup_sentences(premises, vocab, self.CHUNK)
        self._h_ids, self._h_starts, h_lens = lookup_sentences(hypotheses, vocab, self.CHUNK)
        self._p_keep, self._h_keep = kept_lengths(p_lens, h_lens, max_len, truncate)
        self.valid_lens = (self._p_keep + self._h_keep + 3).astype(onp.int32)
        if verbose:
            print(f'read {len(self)} examples')

    def rows(self, idx, width=None):
        """``(token_ids, segments)`` of the pairs ``idx``, each (len(idx), width).

        ``width`` defaults to ``max_len``; pairs are padded with ``<pad>``.
        """
        width = self.max_len if width is None else width
        pos, vocab = onp.arange(width)[None, :], self.vocab
        kp, kh = self._p_keep[idx][:, None], self._h_keep[idx][:, None]
        tokens = onp.full((len(kp), width), vocab['<pad>'], onp.int32)
        tokens[:, :1] = vocab['<cls>']
        tokens = place_sentences(tokens, self._p_ids, self._p_starts[idx], 1, kp)
        tokens = place_sentences(tokens, self._h_ids, self._h_starts[idx], kp + 2, kh)
        tokens = onp.where((pos == kp + 1) | (pos == kp + kh + 2), vocab['<sep>'], tokens)
        segments = (pos >= kp + 2) & (pos <= kp + kh + 2)  # the hypothesis and its <sep>
        return tokens.astype(onp.int32), segments.astype(onp.int32)

    @property
    def token_ids(self):
        """All pairs' token ids, (n, max_len) int32 (built on each access)."""
        return self.rows(onp.arange(len(self)))[0]

    @property
    def segments(self):
        """All pairs' segment ids, (n, max_len) int32 (built on each access)."""
        return self.rows(onp.arange(len(self)))[1]

    def __getitem__(self, idx):
        tokens, segments = self.rows(onp.array([idx]))
        return (tokens[0], segments[0], self.valid_lens[idx]), self.labels[idx]

    def __len__(self):
        return len(self.labels)

    def loader(self, batch_size, shuffle=False, seed=0, trim=True, bucket=50):
        """Minibatches ``((tokens (b, w), segments (b, w), valid_lens (b,)), labels (b,))``.

        ``w`` is ``max_len``, or with ``trim`` the longest pair of the batch.
        With ``trim`` and ``bucket`` > 0, pairs of similar length share a
        batch (see :mod:`d2l_nli.loader`); without ``shuffle`` they are then
        visited shortest first. ``bucket=0`` keeps the plain order.
        """
        return pair_loader(self, batch_size, shuffle, seed, trim, bucket)


def pair_loader(dataset, batch_size, shuffle=False, seed=0, trim=True, bucket=50):
    """The minibatches of an ``SNLIBERTDataset``: see its ``loader()``.

    Defined in notebooks/02_snli_dataset_for_bert.ipynb.
    """
    def make_batch(idx):
        width = max(int(dataset.valid_lens[idx].max()), 1) if trim else dataset.max_len
        tokens, segments = dataset.rows(idx, width)
        return tokens, segments, dataset.valid_lens[idx], dataset.labels[idx]

    return BatchLoader(len(dataset), batch_size, make_batch, shuffle=shuffle, seed=seed,
                       pack=lambda tokens, segments, valid_lens, labels:
                           ((tokens, segments, valid_lens), labels),
                       lengths=dataset.valid_lens, bucket=bucket if trim else 0)
