# Generated from notebooks/02_snli_dataset_for_bert.ipynb by tools/nbexport.py: do not edit.
# Edit the notebook's #@save cells, then run: python tools/nbexport.py
"""SNLI pairs as BERT inputs: the chapter's ``SNLIBERTDataset``.

Each pair becomes ``<cls> premise <sep> hypothesis <sep>`` with segment
ids 0 then 1, truncated to ``max_len`` and padded, stored as dense NumPy
arrays built in one pass in the calling process (the book's
``multiprocessing.Pool`` hangs in notebooks on Windows and macOS).
"""
import numpy as onp
from mxnet import gluon

from .loader import ArrayLoader
from .text import TRUNCATION_STRATEGIES, Vocab, tokenize
from .wiki import RESERVED_TOKENS

__all__ = ['SNLIBERTDataset']


class SNLIBERTDataset(gluon.data.Dataset):
    """SNLI pairs ``dataset = (premises, hypotheses, labels)`` as BERT inputs.

    Arrays for ``n`` pairs: ``token_ids`` (n, max_len) int32, ``segments``
    (n, max_len) int32, ``valid_lens`` (n,) int32 and ``labels`` (n,) int32.
    ``dataset[i]`` is ``((token_ids, segments, valid_len), label)``.
    ``truncate`` is ``'longest_first'`` (the chapter) or ``'ratio'`` (the
    exercise). Without ``vocab`` one is built from the pairs (tokens seen
    at least 5 times).

    Defined in notebooks/02_snli_dataset_for_bert.ipynb.
    """

    def __init__(self, dataset, max_len, vocab=None, truncate='longest_first',
                 verbose=True):
        premises, hypotheses, labels = dataset
        if not len(premises) == len(hypotheses) == len(labels):
            raise ValueError('premises, hypotheses and labels differ in length: '
                             f'{len(premises)}, {len(hypotheses)}, {len(labels)}')
        if truncate not in TRUNCATION_STRATEGIES:
            raise ValueError(f'unknown truncation strategy {truncate!r}; choose one '
                             f'of {sorted(TRUNCATION_STRATEGIES)}')
        if max_len < 5:
            raise ValueError(f'max_len={max_len} is too small for a sentence pair: '
                             'it needs at least 5 (<cls>, <sep>, <sep> and a token of each)')
        p_tokens, h_tokens = tokenize(premises), tokenize(hypotheses)
        if vocab is None:
            vocab = Vocab(p_tokens + h_tokens, min_freq=5, reserved_tokens=RESERVED_TOKENS)
        self.vocab, self.max_len, self.truncate = vocab, max_len, truncate
        self.labels = onp.asarray(labels, dtype=onp.int32)
        self.token_ids, self.segments, self.valid_lens = self._preprocess(p_tokens, h_tokens)
        if verbose:
            print(f'read {len(self)} examples')

    def _preprocess(self, p_tokens, h_tokens):
        """Fill the (n, max_len) arrays row by row; returns (token_ids, segments, valid_lens)."""
        n, vocab = len(p_tokens), self.vocab
        keep = TRUNCATION_STRATEGIES[self.truncate]  # (len_p, len_h, budget) -> kept lengths
        budget = self.max_len - 3  # room for <cls>, <sep>, <sep>
        lookup, unk = vocab.token_to_idx, vocab.unk
        cls, sep = vocab['<cls>'], vocab['<sep>']
        token_ids = onp.full((n, self.max_len), vocab['<pad>'], dtype=onp.int32)
        segments = onp.zeros((n, self.max_len), dtype=onp.int32)
        valid_lens = onp.empty(n, dtype=onp.int32)
        for i, (p, h) in enumerate(zip(p_tokens, h_tokens)):
            len_p, len_h = keep(len(p), len(h), budget)
            ids = ([cls] + [lookup.get(t, unk) for t in p[:len_p]] + [sep] +
                   [lookup.get(t, unk) for t in h[:len_h]] + [sep])
            token_ids[i, :len(ids)] = ids
            segments[i, len_p + 2:len(ids)] = 1  # the hypothesis and the last <sep>
            valid_lens[i] = len(ids)
        return token_ids, segments, valid_lens

    def __getitem__(self, idx):
        return (self.token_ids[idx], self.segments[idx], self.valid_lens[idx]), self.labels[idx]

    def __len__(self):
        return len(self.labels)

    def loader(self, batch_size, shuffle=False, seed=0, trim=True):
        """Minibatches ``((tokens (b, w), segments (b, w), valid_lens (b,)), labels (b,))``.

        ``w`` is ``max_len``, or with ``trim`` the longest pair of the batch.
        """
        arrays = (self.token_ids, self.segments, self.valid_lens, self.labels)
        return ArrayLoader(arrays, batch_size, shuffle=shuffle, seed=seed,
                           pack=lambda tokens, segments, valid_lens, labels:
                               ((tokens, segments, valid_lens), labels),
                           trim=(2, (0, 1)) if trim else None)
