"""Training on several machines with MXNet's distributed kvstore (ps-lite).

``kvstore`` names how gradients are summed:

* ``'device'`` (the default) / ``'local'``: across the devices of one process
  (``device`` sums on the devices, ``local`` on the CPU);
* ``'dist_sync'`` / ``'dist_device_sync'``: across worker processes, on one
  or several machines, through parameter servers; each worker also sums
  across its own devices first. Start the processes with
  ``python -m d2l_nli.launch`` (see :mod:`d2l_nli.machinery.launch`).

With a distributed kvstore each worker reads its own shard of the data
(``rank`` / ``num_workers``) and takes ``batch_size / num_workers`` examples
per step, so that one step still covers ``batch_size`` examples: the same
command trains the same way on one machine or on several, with the same
learning rate. The optimizer runs on the servers (MXNet's
``update_on_kvstore``): every worker pulls the same new parameters, so the
replicas stay identical, which :func:`check_same` verifies at the end.

Measured on MXNet 1.9.1: with ``update_on_kvstore=False`` a ``dist_sync``
Trainer's workers drift apart (nondeterministically), so it is not offered.
"""
import numpy as onp

from ..errors import D2LNLIError

__all__ = ['KVSTORES', 'create_kvstore', 'worker_info', 'is_distributed', 'make_trainer',
           'allgather', 'check_same', 'parameter_fingerprint', 'DistributedError']

KVSTORES = ('device', 'local', 'dist_sync', 'dist_device_sync')
# A kvstore key far above the Trainer's parameter indices (0, 1, ...).
_GATHER_KEY = 1 << 30
_initialized = set()  # gather keys this process has initialised on the servers


class DistributedError(D2LNLIError, RuntimeError):
    """The distributed setup is wrong, or the workers disagree."""


def is_distributed(kvstore):
    """Whether ``kvstore`` (a name or a KVStore) spans several processes."""
    name = kvstore if isinstance(kvstore, str) else getattr(kvstore, 'type', '')
    return 'dist' in (name or '')


def create_kvstore(name='device'):
    """The kvstore for ``name``: the name itself on one machine, a KVStore across machines.

    A distributed kvstore needs the ``DMLC_*`` environment that
    ``python -m d2l_nli.launch`` gives each worker; without it this fails
    with a message saying so, instead of MXNet waiting forever.
    """
    import os

    if name not in KVSTORES:
        raise ValueError(f'unknown kvstore {name!r}; choose one of {", ".join(KVSTORES)}')
    if not is_distributed(name):
        return name
    missing = [v for v in ('DMLC_ROLE', 'DMLC_PS_ROOT_URI', 'DMLC_PS_ROOT_PORT',
                           'DMLC_NUM_WORKER', 'DMLC_NUM_SERVER') if not os.environ.get(v)]
    if missing:
        raise DistributedError(
            f'--kvstore {name} needs a scheduler, servers and workers, and this process was '
            f'not started as a worker ({", ".join(missing)} not set). Start it through the '
            f'launcher: python -m d2l_nli.launch -n WORKERS -s SERVERS -- <this command>')
    import mxnet as mx
    return mx.kv.create(name)


def worker_info(kvstore):
    """``(rank, num_workers)``: ``(0, 1)`` for a kvstore within one process."""
    if is_distributed(kvstore) and not isinstance(kvstore, str):
        return kvstore.rank, kvstore.num_workers
    return 0, 1


def make_trainer(params, optimizer, options, kvstore='device'):
    """A ``gluon.Trainer`` for ``kvstore`` (a name or a KVStore).

    Across machines the optimizer runs on the servers; the training loops
    then normalise the loss themselves and call ``step(1)``, because the
    servers keep the gradient scale they were first given.
    """
    from mxnet import gluon

    if is_distributed(kvstore):
        return gluon.Trainer(params, optimizer, options, kvstore=kvstore,
                             update_on_kvstore=True)
    return gluon.Trainer(params, optimizer, options, kvstore=kvstore)


def trainer_kvstore(trainer):
    """The kvstore a Trainer was created with (a name or a KVStore)."""
    return trainer._kvstore_params.get('kvstore', 'device')


def allgather(kvstore, values):
    """Every worker's ``values`` (k floats): a (num_workers, k) float64 array, on every worker.

    Only before a Trainer's first step: from then on the servers run the
    optimizer on every key they hold, this one too, and return no sum.
    """
    import mxnet as mx

    rank, num_workers = worker_info(kvstore)
    values = onp.asarray(values, dtype=onp.float64).reshape(-1)
    if num_workers == 1:
        return values[None, :]
    mine = onp.zeros((num_workers, len(values)))
    mine[rank] = values
    # Each worker fills its own row; the servers' sum is then every row.
    key = _GATHER_KEY + len(values)
    buf = mx.nd.array(mine, dtype='float64')
    if key not in _initialized:
        kvstore.init(key, mx.nd.zeros(buf.shape, dtype='float64'))
        _initialized.add(key)
    out = mx.nd.zeros(buf.shape, dtype='float64')
    kvstore.pushpull(key, buf, out=out)
    return out.asnumpy()


def check_same(kvstore, what, values):
    """Raise :class:`DistributedError` unless every worker has the same ``values``."""
    gathered = allgather(kvstore, values)
    if not (gathered == gathered[:1]).all():
        rows = '; '.join(f'worker {r}: {list(row)}' for r, row in enumerate(gathered))
        raise DistributedError(f'the workers disagree on {what} ({rows}). Give every '
                               'worker the same options and the same data.')
    return gathered[0]


def parameter_fingerprint(net):
    """Sum and sum of squares of all parameters (float64): equal for identical replicas."""
    total, squares = 0.0, 0.0
    for param in net.collect_params().values():
        data = param.data().asnumpy().astype(onp.float64)
        total += float(data.sum())
        squares += float((data * data).sum())
    return [total, squares]
