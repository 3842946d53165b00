"""SNLI pairs as BERT inputs: the chapter's ``SNLIBERTDataset``.

Each premise/hypothesis pair becomes ``<cls> premise <sep> hypothesis <sep>``
with segment ids 0 for the premise part and 1 for the hypothesis part,
truncated to ``max_len`` and padded with ``<pad>``.

The book builds the examples in a ``multiprocessing.Pool`` that it never
closes, which hangs in notebooks on spawn platforms (Windows, macOS). Here
they are built in one pass into dense NumPy arrays: a few seconds for the
full 549,367 training pairs, in the calling process.
"""
import numpy as onp
from mxnet import gluon

from .loader import ArrayLoader
from .text import TRUNCATION_STRATEGIES, Vocab, tokenize
from .wiki import RESERVED_TOKENS

__all__ = ['SNLIBERTDataset']


class SNLIBERTDataset(gluon.data.Dataset):
    """BERT inputs for ``dataset = (premises, hypotheses, labels)`` of ``read_snli``.

    Arrays (``n`` pairs): ``token_ids`` (n, max_len) int32, ``segments``
    (n, max_len) int32, ``valid_lens`` (n,) int32 and ``labels`` (n,) int32.
    ``dataset[i]`` is ``((token_ids, segments, valid_len), label)`` as in the
    book. ``truncate`` is ``'longest_first'`` (the book) or ``'ratio'`` (the
    exercise), see :func:`d2l_nli.truncate_pair`. Without ``vocab`` one is
    built from the pairs (words seen at least 5 times).
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
                             'it needs at least 5 (<cls>, <sep>, <sep> and one token '
                             'of each sentence)')
        p_tokens, h_tokens = tokenize(premises), tokenize(hypotheses)
        if vocab is None:
            vocab = Vocab(p_tokens + h_tokens, min_freq=5, reserved_tokens=RESERVED_TOKENS)
        self.vocab, self.max_len, self.truncate = vocab, max_len, truncate
        self.labels = onp.asarray(labels, dtype=onp.int32)
        self.token_ids, self.segments, self.valid_lens = self._preprocess(p_tokens, h_tokens)
        if verbose:
            print(f'read {len(self)} examples')

    def _preprocess(self, p_tokens, h_tokens):
        n, max_len, vocab = len(p_tokens), self.max_len, self.vocab
        keep = TRUNCATION_STRATEGIES[self.truncate]
        budget = max_len - 3  # room for <cls>, <sep>, <sep>
        lookup = vocab.token_to_idx
        cls, sep = vocab['<cls>'], vocab['<sep>']
        token_ids = onp.full((n, max_len), vocab['<pad>'], dtype=onp.int32)
        segments = onp.zeros((n, max_len), dtype=onp.int32)
        valid_lens = onp.empty(n, dtype=onp.int32)
        for i, (p, h) in enumerate(zip(p_tokens, h_tokens)):
            len_p, len_h = keep(len(p), len(h), budget)
            ids = [cls] + [lookup.get(t, 0) for t in p[:len_p]] + [sep] + \
                  [lookup.get(t, 0) for t in h[:len_h]] + [sep]
            token_ids[i, :len(ids)] = ids
            segments[i, len_p + 2:len(ids)] = 1
            valid_lens[i] = len(ids)
        return token_ids, segments, valid_lens

    def __getitem__(self, idx):
        return (self.token_ids[idx], self.segments[idx], self.valid_lens[idx]), self.labels[idx]

    def __len__(self):
        return len(self.token_ids)

    @property
    def arrays(self):
        return self.token_ids, self.segments, self.valid_lens, self.labels

    def loader(self, batch_size, shuffle=False, seed=0, trim=True):
        """Minibatches ``((tokens, segments, valid_lens), labels)`` of ``mxnet.np`` arrays.

        With ``trim`` each batch is padded only to its longest pair instead
        of ``max_len`` (same results, far less work).
        """
        return ArrayLoader(self.arrays, batch_size, shuffle=shuffle, seed=seed,
                           pack=_pack_pairs, trim=(2, (0, 1)) if trim else None)


def _pack_pairs(tokens, segments, valid_lens, labels):
    return (tokens, segments, valid_lens), labels
