"""A ``gluon.Trainer``'s optimizer state as named arrays plus JSON, without pickle.

MXNet's ``Trainer.save_states`` pickles the optimizer object, and loading a
pickle runs whatever code the file holds. Here the state of each parameter
(Adam: its two moving averages) is kept as MXNet arrays named after the
parameter (as in ``model.params``, so the file does not depend on Gluon's
global name counters), and the optimizer's update counts, which drive
Adam's bias correction and the learning-rate schedule, as JSON.
"""
from ..errors import CheckpointError, DamagedCheckpointError

__all__ = ['optimizer_state', 'load_optimizer_state']



def _updaters(trainer):
    """The ``Updater`` objects that hold ``trainer``'s optimizer state."""
    if not trainer._kv_initialized:
        trainer._init_kvstore()
    if trainer._params_to_init:
        trainer._init_params()
    if trainer._update_on_kvstore:
        if getattr(trainer, '_distributed', False):
            raise CheckpointError(
                'the optimizer state lives on the parameter servers and cannot be saved '
                'by a worker. Train across machines without training checkpoints (rank 0 '
                'saves the final model), or resume on one machine; d2l_nli/machinery/'
                'distributed.py says why the updates stay on the servers')
        return [trainer._kvstore._updater]
    return list(trainer._updaters)


def _param_names(trainer, net):
    """Names (as in ``model.params``) of ``trainer``'s parameters, by optimizer index."""
    by_id = {id(p): name for name, p in net._collect_params_with_prefix().items()}
    names = [by_id.get(id(p)) for p in trainer._params]
    if None in names:
        raise ValueError('the trainer updates parameters that are not part of the model '
                         'being checkpointed')
    return names


def _flatten(state, key, arrays):
    """JSON layout of one optimizer state; its arrays go into ``arrays``."""
    from mxnet import np as mnp

    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        kind = 'tuple' if isinstance(state, tuple) else 'list'
        return {kind: [_flatten(s, f'{key}.{i}', arrays) for i, s in enumerate(state)]}
    if isinstance(state, mnp.ndarray):
        state = state.as_nd_ndarray()
    if hasattr(state, 'asnumpy'):
        arrays[key] = state
        return {'array': key}
    if isinstance(state, (bool, int, float)):
        return {'value': state}
    raise TypeError(f'cannot save an optimizer state of type {type(state).__name__}')


def _unflatten(layout, arrays):
    if layout is None:
        return None
    if 'array' in layout:
        return arrays[layout['array']].copy()
    if 'tuple' in layout:
        return tuple(_unflatten(x, arrays) for x in layout['tuple'])
    if 'list' in layout:
        return [_unflatten(x, arrays) for x in layout['list']]
    return layout['value']


def optimizer_state(trainer, net):
    """``(arrays, meta)``: ``trainer``'s optimizer state, keyed by ``net``'s parameter names.

    ``arrays`` maps names to the optimizer's own arrays, which the next
    step changes: save them (``mx.nd.save``) before training on. ``meta`` is
    JSON-able: the optimizer's class, its update counts and the layout of
    each parameter's state.
    """
    names = _param_names(trainer, net)
    updater = _updaters(trainer)[0]
    arrays, layout = {}, {}
    for index, state in sorted(updater.states.items()):
        layout[names[int(index)]] = _flatten(state, names[int(index)], arrays)
    optimizer = trainer._optimizer
    counts = {}
    for per_device in optimizer._all_index_update_counts.values():
        for index, count in per_device.items():
            name = names[int(index)]
            counts[name] = max(counts.get(name, 0), int(count))
    meta = {'optimizer': type(optimizer).__name__, 'num_update': int(optimizer.num_update),
            'update_counts': counts, 'layout': layout}
    return arrays, meta


def load_optimizer_state(trainer, net, arrays, meta, source='optimizer.params'):
    """Put a state saved by :func:`optimizer_state` into ``trainer`` (same model layout)."""
    names = _param_names(trainer, net)
    optimizer = trainer._optimizer
    if meta['optimizer'] != type(optimizer).__name__:
        raise CheckpointError(f'{source}: saved for a {meta["optimizer"]} optimizer, but '
                              f'this run uses {type(optimizer).__name__}')
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted(set(meta['layout']) - set(index))
    if unknown:
        raise CheckpointError(f'{source}: holds states of parameters this model does not '
                              f'have ({unknown[0]}, ...); it belongs to another model')
    try:
        for updater in _updaters(trainer):
            updater.states = {index[n]: _unflatten(lay, arrays)
                              for n, lay in meta['layout'].items()}
            # Moved to each parameter's device on first use, as MXNet does.
            updater.states_synced = dict.fromkeys(updater.states, False)
    except KeyError as err:
        raise DamagedCheckpointError(
            f'{source}: the array {err} is missing; the file is damaged') from None
    counts = {index[n]: c for n, c in meta['update_counts'].items()}
    device_ids = {0} | {ctx.device_id for ctx in trainer._contexts}
    optimizer._all_index_update_counts = {d: dict(counts) for d in device_ids}
    optimizer._index_update_count = optimizer._all_index_update_counts[0]
    optimizer.num_update = meta['num_update']
