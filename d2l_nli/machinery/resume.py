"""Resumable training: the whole training state, saved every N steps, without pickle.

A run given :class:`TrainingCheckpoints` writes, every ``every`` steps (and,
when fine-tuning, at the end of each epoch), a folder ``step-00000100``:

* ``config.json``, ``vocab.json``, ``model.params``: a complete model
  checkpoint, loadable by :func:`d2l_nli.load_pretrained` /
  :func:`d2l_nli.load_classifier`;
* ``optimizer.params``: the optimizer's state arrays (Adam's two moving
  averages per parameter) in MXNet's own array format, keyed by the
  parameter names of ``model.params``;
* ``trainer.json``: the step, where the data loader stands, the optimizer's
  update counts (Adam's bias correction and the learning-rate schedule
  depend on them), Python's and NumPy's random state, the settings the run
  was started with, and the curves so far.

Each folder is written under a temporary name and renamed into place once
complete and flushed to disk, so a run killed at any moment leaves only
whole checkpoints. The newest ``keep`` are kept. MXNet's
``Trainer.save_states`` is not used: it pickles the optimizer, and loading
a pickle runs whatever code the file holds.

Resuming reaches the parameters the uninterrupted run reaches (bit for bit
on the same machine and thread count; ``tests/test_resume.py``): the loader
replays the interrupted pass from the saved position, the optimizer goes on
with its moments and counts, and MXNet's random generator (dropout), whose
state cannot be read back, is re-seeded from ``(seed, step)`` at every
checkpoint, in interrupted and uninterrupted runs alike.
"""
import hashlib
import json
import math
import os
import random
import re
import shutil
import warnings
from pathlib import Path

import numpy as onp

from ..errors import CheckpointError, DamagedCheckpointError, TrainingDivergedError
from .checkpoint import load_arrays, load_vocab, model_kind, write_model_files
from .files import atomic_directory
from .optstate import load_optimizer_state, optimizer_state

__all__ = ['TrainingCheckpoints', 'check_finite', 'optimizer_state', 'load_optimizer_state']

FORMAT = 'd2l_nli.training-state'
_STEP_DIR = re.compile(r'^step-(\d{8})$')
# Left behind by a save or a clean-up that was killed: always incomplete.
_LEFTOVER = re.compile(r'^\.(step-\d{8}\..*\.tmp|deleting-.*)$')


# ---------------------------------------------------------------- random state

def _rng_state():
    version, internal, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = onp.random.get_state()
    return {'python': [version, list(internal), gauss],
            'numpy': [name, keys.tolist(), int(pos), int(has_gauss), float(cached)]}


def _set_rng_state(state):
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state['numpy']
    onp.random.set_state((name, onp.array(keys, dtype=onp.uint32), pos, has_gauss, cached))


def _stream_seed(seed, step):
    digest = hashlib.sha256(f'd2l_nli:{seed}:{step}'.encode()).digest()
    return int.from_bytes(digest[:4], 'little') & 0x7FFFFFFF


# ---------------------------------------------------------------- divergence

def check_finite(values, step, checkpoints=None):
    """Raise :class:`TrainingDivergedError` if any of ``values`` ({name: float}) is NaN/inf."""
    for name, value in values.items():
        if math.isfinite(value):
            continue
        message = (f'the {name} became {value} at step {step}: training diverged, and the '
                   'parameters from here on are no longer usable. ')
        if checkpoints is not None and checkpoints.saved is not None:
            message += (f'The last good checkpoint is kept: {checkpoints.saved}. Continue '
                        'from it with --resume (resume=True), with a lower learning rate '
                        '(--lr) or more warm-up steps (--warmup-steps).')
        elif checkpoints is not None:
            message += ('No checkpoint had been saved yet; start again with a lower '
                        'learning rate (--lr).')
        else:
            message += ('No checkpoints were being saved; start again with a lower '
                        'learning rate (--lr), and with checkpoints (--checkpoint-every) '
                        'to be able to go back.')
        raise TrainingDivergedError(message)


def _params_finite(net):
    from mxnet import np as mnp

    for name, param in net._collect_params_with_prefix().items():
        if not bool(mnp.isfinite(param.data()).all()):
            return name
    return None


# ---------------------------------------------------------------- checkpoints

def _fsync_tree(folder):
    """Flush every file of ``folder`` and the folder itself to disk."""
    for path in sorted(Path(folder).iterdir()):
        with open(path, 'rb') as f:
            os.fsync(f.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not possible on every platform
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_json(path):
    try:
        return json.loads(Path(path).read_text(encoding='utf-8'))
    except FileNotFoundError:
        raise DamagedCheckpointError(f'{path}: missing; the checkpoint is incomplete') from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DamagedCheckpointError(f'{path}: damaged ({err})') from None


def _differences(saved, now, prefix=''):
    """Human-readable ``key: saved -> now`` lines for two settings dicts."""
    lines = []
    for key in sorted(set(saved) | set(now)):
        a, b = saved.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            lines += _differences(a, b, f'{prefix}{key}.')
        elif a != b:
            lines.append(f'{prefix}{key}: {a!r} in the checkpoint, {b!r} now')
    return lines


class TrainingCheckpoints:
    """Where and how often a training run saves its whole state, and resuming from it.

    ``folder`` holds the ``step-*`` folders; ``vocab`` is saved with each, so
    each is also a usable model checkpoint. ``every``: save every that many
    steps (0: only where the loop always saves: the end of each fine-tuning
    epoch and of the run). ``keep``: how many to keep. ``resume``: start
    from the newest one, if any. ``settings``: a JSON-able dict of what
    must not change between a run and its resumption (model and data sizes,
    batch size, seed...); the learning rate and the number of steps or
    epochs may change. ``seed`` re-seeds MXNet at every checkpoint.
    """

    def __init__(self, folder, vocab, *, every=100, keep=2, resume=False, settings=None,
                 seed=0):
        if not isinstance(every, int) or every < 0:
            raise ValueError(f'every must be a non-negative number of steps, got {every!r}')
        if not isinstance(keep, int) or keep < 1:
            raise ValueError(f'keep must be at least 1, got {keep!r}')
        self.folder, self.vocab, self.every, self.keep = Path(folder), vocab, every, keep
        self.resume, self.seed = resume, seed
        # Round-tripped through JSON so that tuples and lists compare equal.
        self.settings = json.loads(json.dumps(settings or {}))
        self.saved = None  # the newest checkpoint saved or resumed from in this run

    def due(self, step):
        """Whether the loop should save after ``step`` steps (besides epoch and run ends)."""
        return bool(self.every) and step % self.every == 0

    def checkpoints(self):
        """Complete checkpoint folders, oldest first."""
        if not self.folder.is_dir():
            return []
        found = []
        for path in self.folder.iterdir():
            match = _STEP_DIR.match(path.name)
            if match and path.is_dir():
                found.append((int(match.group(1)), path))
        return [path for _, path in sorted(found)]

    def reseed(self, step):
        """Re-seed MXNet's generators (dropout) from ``(seed, step)``."""
        import mxnet as mx
        mx.random.seed(_stream_seed(self.seed, step))

    def save(self, step, net, trainer, state):
        """Save ``net``, ``trainer`` and the loop's ``state`` (JSON-able) after ``step`` steps."""
        import mxnet as mx

        bad = _params_finite(net)
        if bad is not None:
            check_finite({f'parameter {bad}': math.nan}, step, self)
        path = self.folder / f'step-{step:08d}'
        if path.is_dir():
            self.saved = path  # saved already: the run was resumed right here
            return path
        arrays, optimizer_meta = optimizer_state(trainer, net)
        record = {'format': FORMAT, 'version': 1, 'step': step, 'settings': self.settings,
                  'optimizer': optimizer_meta, 'rng': _rng_state(), 'loop': state}
        text = json.dumps(record, indent=1, allow_nan=False) + '\n'
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_directory(path) as tmp:
            write_model_files(tmp, net, self.vocab, extra={'training_step': step})
            mx.nd.save(str(tmp / 'optimizer.params'), arrays)
            (tmp / 'trainer.json').write_text(text, encoding='utf-8')
            _fsync_tree(tmp)
        _fsync_dir(self.folder)
        self.saved = path
        for old in self.checkpoints()[:-self.keep]:
            self._remove(old)
        return path

    def _remove(self, path):
        # Renamed first, so that a half-deleted folder never looks like a checkpoint.
        doomed = path.with_name(f'.deleting-{path.name}-{os.getpid()}')
        os.rename(path, doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    def remove_all(self):
        """Delete this run's checkpoints (after its final model was saved elsewhere)."""
        for path in self.checkpoints():
            self._remove(path)
        self._clean_leftovers()
        try:
            self.folder.rmdir()
        except OSError:
            pass  # not empty (files of the user's) or already gone

    def _clean_leftovers(self):
        if self.folder.is_dir():
            for path in self.folder.iterdir():
                if _LEFTOVER.match(path.name):
                    shutil.rmtree(path, ignore_errors=True)

    def restore(self, net, trainer):
        """Load the newest checkpoint into ``net`` and ``trainer``.

        Returns the training loop's saved state with ``'step'`` added, or
        None to start from the beginning. Without ``resume``, a folder that
        already holds checkpoints is refused rather than mixed with a new run.
        """
        self._clean_leftovers()
        found = self.checkpoints()
        if not self.resume:
            if found:
                raise CheckpointError(
                    f'{self.folder} already holds checkpoints of an earlier run (newest: '
                    f'{found[-1].name}). To continue that run, add --resume (resume=True). '
                    'To start afresh, delete that folder or choose another one '
                    '(--checkpoint-dir).')
            return None
        if not found:
            print(f'no checkpoint in {self.folder} yet: starting from the beginning')
            return None
        for path in reversed(found):
            try:
                state = self._load(path, net, trainer)
            except DamagedCheckpointError as err:
                if path == found[0]:
                    raise CheckpointError(f'{err}. No older checkpoint is readable; delete '
                                          f'{self.folder} and start again.') from None
                # Kept for inspection, under a name that is no longer a checkpoint
                # (this run will write that step again).
                aside = path.with_name(f'damaged-{path.name}')
                os.rename(path, aside)
                warnings.warn(f'{err}; moved it to {aside} and resuming from the checkpoint '
                              'before it instead', stacklevel=2)
                continue
            self.saved = path
            self.reseed(state['step'])
            return state

    def _load(self, path, net, trainer):

        record = _read_json(path / 'trainer.json')
        if not isinstance(record, dict) or record.get('format') != FORMAT:
            raise DamagedCheckpointError(f'{path / "trainer.json"}: not a d2l_nli training state')
        differences = _differences(record.get('settings', {}), self.settings)
        if differences:
            raise CheckpointError(
                f'{path / "trainer.json"}: the checkpoint was made with other settings:\n  '
                + '\n  '.join(differences) + '\nResume with the options of the interrupted '
                'run, or start afresh in another folder (--checkpoint-dir).')
        vocab = load_vocab(path / 'vocab.json', DamagedCheckpointError)
        if vocab.idx_to_token != self.vocab.idx_to_token:
            raise CheckpointError(f'{path / "vocab.json"}: differs from the vocabulary of '
                                  'the data now; the data changed since the checkpoint was '
                                  'made. Start afresh in another folder (--checkpoint-dir).')
        config = _read_json(path / 'config.json')
        if config.get('kind') != model_kind(net)[0]:
            raise CheckpointError(f'{path / "config.json"}: holds a {config.get("kind")}, '
                                  f'but this run trains a {model_kind(net)[0]}')
        # What to do about a damaged one is restore()'s to say.
        load_arrays(path / 'model.params', net, error=DamagedCheckpointError, advice='')
        arrays = load_arrays(path / 'optimizer.params', error=DamagedCheckpointError, advice='')
        load_optimizer_state(trainer, net, arrays, record['optimizer'],
                             source=path / 'optimizer.params')
        _set_rng_state(record['rng'])
        return dict(record['loop'], step=record['step'])


# ---------------------------------------------------------------- for the training loops

def curve_of(animator):
    """The points an animator holds, for a checkpoint."""
    return {'X': [list(map(float, xs)) for xs in animator.X],
            'Y': [list(map(float, ys)) for ys in animator.Y]}


def replay_curve(animator, curve):
    """Give ``animator`` the points of a checkpoint's curve (one add per point)."""
    for line, (xs, ys) in enumerate(zip(curve['X'], curve['Y'])):
        for x, y in zip(xs, ys):
            values = [None] * len(curve['Y'])
            values[line] = y
            animator.add(x, values)


def restore_for_loop(checkpoints, net, trainer, train_iter):
    """The saved loop state to resume from (None: start), after loading net and trainer."""
    if checkpoints is None:
        return None
    if not hasattr(train_iter, 'seek'):
        raise TypeError('saving checkpoints needs a loader that can resume mid-pass: '
                        'a d2l_nli BatchLoader/ArrayLoader, load_data_wiki() or '
                        'SNLIBERTDataset.loader()')
    return checkpoints.restore(net, trainer)
