"""Minibatches straight from NumPy arrays, without per-example work.

The book wraps its datasets in ``gluon.data.DataLoader``, which fetches
examples one by one and stacks them: thousands of tiny framework arrays per
batch. Our datasets are already stored as a few dense NumPy arrays, so a
batch is a single fancy-indexing operation per array, converted once into
MXNet arrays. Iteration order is seeded and reproducible.
"""
import numpy as onp

__all__ = ['ArrayLoader']


class ArrayLoader:
    """Iterate over aligned NumPy arrays in minibatches of ``mxnet.np`` arrays.

    ``arrays`` all have the same first dimension (the examples). Each batch
    is ``pack(*batch_arrays)`` (by default the tuple itself), so a loader can
    yield the book's ``((tokens, segments, valid_lens), labels)`` layout.
    With ``shuffle`` every pass visits the examples in a new order drawn from
    ``seed``; ``last_batch='discard'`` drops a final short batch.

    ``trim=(k, columns)`` pads each batch only to its own longest example:
    ``arrays[k]`` holds valid lengths, and the arrays listed in ``columns``
    (e.g. tokens and segments) are cut after the batch's largest one. The
    model masks padding exactly, so this changes the speed, not the result
    (SNLI pairs need ~25 of the 128 positions the book pads to).
    """

    def __init__(self, arrays, batch_size, shuffle=False, seed=0,
                 last_batch='keep', pack=None, trim=None):
        if not arrays:
            raise ValueError('ArrayLoader needs at least one array')
        n = len(arrays[0])
        if any(len(a) != n for a in arrays):
            raise ValueError('all arrays must have the same number of examples, got '
                             f'{[len(a) for a in arrays]}')
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}')
        if last_batch not in ('keep', 'discard'):
            raise ValueError(f"last_batch must be 'keep' or 'discard', not {last_batch!r}")
        self.arrays = [onp.ascontiguousarray(a) for a in arrays]
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.last_batch = last_batch
        self.pack = pack
        self.trim = trim
        self._rng = onp.random.default_rng(seed)

    @property
    def num_examples(self):
        return len(self.arrays[0])

    def __len__(self):
        """Number of batches in one pass."""
        full, rest = divmod(self.num_examples, self.batch_size)
        return full + (1 if rest and self.last_batch == 'keep' else 0)

    def __iter__(self):
        from mxnet import np  # imported late: building datasets needs no MXNet

        n = self.num_examples
        order = self._rng.permutation(n) if self.shuffle else None
        for b in range(len(self)):
            start = b * self.batch_size
            idx = slice(start, min(start + self.batch_size, n))
            if order is not None:
                idx = order[idx]
            parts = [a[idx] for a in self.arrays]
            if self.trim is not None:
                lens, columns = self.trim
                width = max(int(parts[lens].max()), 1)
                for k in columns:
                    parts[k] = parts[k][:, :width]
            batch = tuple(np.array(a, dtype=a.dtype) for a in parts)
            yield self.pack(*batch) if self.pack else batch
