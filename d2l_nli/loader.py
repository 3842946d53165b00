"""Minibatches straight from NumPy arrays, without per-example work.

The book wraps its datasets in ``gluon.data.DataLoader``, which fetches
examples one by one and stacks them: thousands of tiny framework arrays per
batch. Our datasets are stored as a few dense (or ragged) NumPy arrays, so a
batch is one fancy-indexing operation per array, converted once into MXNet
arrays. Iteration order is seeded and reproducible.

Two speed levers live here, both exact (the model masks padding, so its
outputs at real positions do not depend on it; see ``tests/test_loader.py``):

* **trimming**: each batch is padded only to its own longest example, not
  to ``max_len`` (SNLI pairs need ~25 of the book's 128 positions);
* **length buckets**: examples of similar length share a batch. With
  shuffling, a random chunk of ``bucket`` batches is sorted by length and
  cut into batches, and the batches are then visited in random order, so
  every epoch still sees every example once in a new random grouping.
  Without shuffling (evaluation) the examples are sorted by length.

Pass ``k`` of a loader is shuffled by a generator seeded with ``(seed, k)``,
so any pass can be replayed on its own: :meth:`BatchLoader.seek` is how an
interrupted run resumes in the middle of an epoch with the same batches.
"""
import numpy as onp

__all__ = ['batch_indices', 'pad_ragged', 'BatchLoader', 'ArrayLoader']


def batch_indices(n, batch_size, rng=None, lengths=None, bucket=0, last_batch='keep'):
    """Index arrays of the minibatches of one pass over ``n`` examples.

    ``rng`` (a NumPy Generator) shuffles; None keeps the order. With
    ``bucket`` > 0 and ``lengths`` (n,), examples are grouped by length as
    described in the module docstring. ``last_batch='discard'`` drops the
    examples that do not fill a whole batch.
    """
    order = rng.permutation(n) if rng is not None else onp.arange(n)
    if last_batch == 'discard':
        order = order[:n - n % batch_size]
    if bucket and lengths is not None:
        lengths = onp.asarray(lengths)
        if rng is None:
            # Evaluation: sorting everything gives the narrowest batches.
            order = order[onp.argsort(lengths[order], kind='stable')]
        else:
            chunk = bucket * batch_size
            parts = [c[onp.argsort(lengths[c], kind='stable')]
                     for c in (order[i:i + chunk] for i in range(0, len(order), chunk))]
            order = onp.concatenate(parts) if parts else order
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if bucket and lengths is not None and rng is not None:
        # Visit the sorted batches in random order: no long-to-short drift.
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def pad_ragged(flat, offsets, lens, idx, width, pad):
    """Rows ``idx`` of a ragged array as a padded (len(idx), width) array.

    Row ``i`` is ``flat[offsets[i]:offsets[i] + lens[i]]``; positions at or
    after ``lens[i]`` hold ``pad``. Rows longer than ``width`` are cut.
    """
    positions = onp.arange(width)
    starts, row_lens = offsets[idx], lens[idx]
    gather = starts[:, None] + positions[None, :]
    valid = positions[None, :] < row_lens[:, None]
    # Out-of-row reads are clipped into the array, then replaced by ``pad``.
    values = flat[onp.minimum(gather, max(len(flat) - 1, 0))] if len(flat) else \
        onp.zeros(gather.shape, flat.dtype)
    return onp.where(valid, values, onp.asarray(pad, dtype=flat.dtype))


class BatchLoader:
    """Iterate in minibatches built by ``make_batch(idx) -> tuple of NumPy arrays``.

    ``epoch`` is the number of the next pass (0 first); each pass ``k`` is
    shuffled with ``numpy.random.default_rng((seed, k))``. Each batch is
    turned into ``mxnet.np`` arrays and yielded as
    ``pack(*arrays)`` (by default the tuple). ``lengths`` (n,) with
    ``bucket`` > 0 groups examples of similar length (see
    :func:`batch_indices`); ``bucket=0`` keeps plain (shuffled) order.
    """

    def __init__(self, num_examples, batch_size, make_batch, *, shuffle=False, seed=0,
                 last_batch='keep', pack=None, lengths=None, bucket=0):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}')
        if last_batch not in ('keep', 'discard'):
            raise ValueError(f"last_batch must be 'keep' or 'discard', not {last_batch!r}")
        if not isinstance(bucket, int) or bucket < 0:
            raise ValueError(f'bucket must be a non-negative integer, got {bucket!r}')
        if lengths is not None and len(lengths) != num_examples:
            raise ValueError(f'lengths has {len(lengths)} entries for {num_examples} examples')
        self._num_examples = num_examples
        self._examples = None  # the indices of this worker's shard (see shard)
        self.batch_size = batch_size
        self.make_batch = make_batch
        self.shuffle = shuffle
        self.last_batch = last_batch
        self.pack = pack
        self.lengths = lengths
        self.bucket = bucket
        self.seed = seed
        self.epoch = 0   # number of the next pass
        self._skip = 0   # batches of the next pass to leave out (see seek)

    @property
    def num_examples(self):
        return self._num_examples if self._examples is None else len(self._examples)

    def shard(self, index, count):
        """Read only shard ``index`` of ``count`` (a distributed worker's part); returns self.

        Shard ``i`` holds examples ``i, i + count, i + 2 count, ...``; the last
        ``n % count`` examples are left out so that every shard has the same
        size, hence the same number of batches of the same sizes (workers
        that sum gradients step by step must never wait for each other).
        """
        if not (isinstance(count, int) and count >= 1 and isinstance(index, int)
                and 0 <= index < count):
            raise ValueError(f'shard {index!r} of {count!r}: need 0 <= index < count')
        usable = self._num_examples - self._num_examples % count
        if usable < count:
            raise ValueError(f'{self._num_examples} examples cannot be shared by {count} '
                             'workers')
        self._examples = onp.arange(index, usable, count)
        return self

    def __len__(self):
        """Number of batches in one pass."""
        full, rest = divmod(self.num_examples, self.batch_size)
        return full + (1 if rest and self.last_batch == 'keep' else 0)

    def batches(self):
        """Index arrays of the next pass; moves on to the pass after it."""
        rng = onp.random.default_rng((self.seed, self.epoch)) if self.shuffle else None
        self.epoch += 1
        skip, self._skip = self._skip, 0
        if self._examples is None:
            return batch_indices(self.num_examples, self.batch_size, rng, self.lengths,
                                 self.bucket, self.last_batch)[skip:]
        lengths = None if self.lengths is None else onp.asarray(self.lengths)[self._examples]
        local = batch_indices(len(self._examples), self.batch_size, rng, lengths, self.bucket,
                              self.last_batch)[skip:]
        return [self._examples[b] for b in local]

    @property
    def position(self):
        """``(pass, batch)`` where the next pass will start."""
        return self.epoch, self._skip

    def seek(self, epoch, batch=0):
        """Make the next pass be pass ``epoch``, starting at its batch ``batch``.

        A resumed run calls this with the position saved in its checkpoint,
        so the remaining batches are exactly those the interrupted run would
        have seen.
        """
        if not (isinstance(epoch, int) and epoch >= 0 and isinstance(batch, int)
                and 0 <= batch <= len(self)):
            raise ValueError(f'cannot seek to pass {epoch!r}, batch {batch!r} of a loader '
                             f'with {len(self)} batches per pass')
        self.epoch, self._skip = epoch, batch

    def __iter__(self):
        from mxnet import np  # imported late: building datasets needs no MXNet

        for idx in self.batches():
            batch = tuple(np.array(a, dtype=a.dtype) for a in self.make_batch(idx))
            yield self.pack(*batch) if self.pack else batch


class ArrayLoader(BatchLoader):
    """Minibatches of aligned NumPy ``arrays`` (same first dimension).

    ``trim`` pads each batch only to its own longest example: ``(k,
    columns)`` or a list of them, where ``k`` names an array of
    per-example widths (e.g. valid lengths), or is such an array itself,
    or a function of the arrays that returns one; the arrays named in
    ``columns`` are cut after the batch's largest width. Arrays are named
    by their index, or by their field name when ``arrays`` is a named
    tuple (which ``arrays`` then stays). ``bucket`` > 0
    also groups examples of similar width (by the first ``trim`` entry).
    The book's ``((tokens, segments, valid_lens), labels)`` layout comes
    from ``pack``. ``fresh(k)``, if given, returns the arrays of pass ``k``
    (same number of examples), drawn anew for each pass: dynamic masking.
    """

    def __init__(self, arrays, batch_size, shuffle=False, seed=0, last_batch='keep',
                 pack=None, trim=None, bucket=0, fresh=None):
        if not arrays:
            raise ValueError('ArrayLoader needs at least one array')
        if trim is not None and not isinstance(trim, list):
            trim = [trim]
        self._trim_spec, self.fresh = trim or [], fresh
        self._set_arrays(arrays)
        lengths = self.trim[0][0] if self.trim and bucket else None
        super().__init__(len(self.arrays[0]), batch_size, self._gather, shuffle=shuffle,
                         seed=seed, last_batch=last_batch, pack=pack, lengths=lengths,
                         bucket=bucket)
        self._drawn = 0  # the pass whose arrays are loaded

    def _set_arrays(self, arrays):
        n = len(arrays[0])
        if any(len(a) != n for a in arrays):
            raise ValueError('all arrays must have the same number of examples, got '
                             f'{[len(a) for a in arrays]}')
        if hasattr(self, 'arrays') and n != len(self.arrays[0]):
            raise ValueError(f'a fresh pass has {n} examples, the loader {len(self.arrays[0])}')
        contiguous = [onp.ascontiguousarray(a) for a in arrays]
        fields = getattr(arrays, '_fields', None)
        self.arrays = type(arrays)(*contiguous) if fields else contiguous

        def index(k):
            if not isinstance(k, str):
                return k
            if not fields or k not in fields:
                raise ValueError(f'no array named {k!r} (the arrays are '
                                 f'{", ".join(fields) if fields else "not named"})')
            return fields.index(k)

        def widths(k):
            if isinstance(k, (int, str)):
                return self.arrays[index(k)]
            return onp.asarray(k(self.arrays) if callable(k) else k)
        self.trim = [(widths(k), tuple(index(c) for c in cols)) for k, cols in self._trim_spec]
        if getattr(self, 'lengths', None) is not None:
            self.lengths = self.trim[0][0]

    def batches(self):
        if self.fresh is not None and self.epoch != self._drawn:
            self._set_arrays(self.fresh(self.epoch))
            self._drawn = self.epoch
        return super().batches()

    def _gather(self, idx):
        parts = [a[idx] for a in self.arrays]
        for widths, columns in self.trim:
            width = max(int(widths[idx].max()), 1) if len(idx) else 1
            for k in columns:
                parts[k] = parts[k][:, :width]
        return parts
