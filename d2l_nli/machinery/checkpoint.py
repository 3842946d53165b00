"""Saving and loading models as plain folders (no pickle).

A checkpoint folder holds three files:

* ``config.json``: what the model is (``kind``: ``BERTModel`` or
  ``BERTClassifier``), its sizes, and the package version that wrote it;
* ``vocab.json``: the vocabulary (:meth:`d2l_nli.Vocab.save`);
* ``model.params``: the parameters in MXNet's own array format.

A folder is written under a temporary name and swapped into place only when
complete, so a crash while saving leaves the previous checkpoint intact.
Loading checks that the three agree and turns every mismatch into a
:class:`d2l_nli.CheckpointError` naming the file. :func:`load_vocab` and
:func:`load_arrays` are the one place where a file that cannot be read
becomes such an error; training checkpoints (:mod:`d2l_nli.machinery.resume`) load
through them too.
"""
import contextlib
import dataclasses
import json
from pathlib import Path

from ..classifier import BERTClassifier
from ..errors import CheckpointError
from ..model import BERTModel
from ..settings import BERTConfig
from ..text import Vocab
from .files import atomic_directory
from .runtime import require_numpy_mode

__all__ = ['save_checkpoint', 'load_pretrained', 'load_classifier', 'read_checkpoint_config',
           'write_model_files', 'model_kind', 'load_vocab', 'load_arrays']

FORMAT = 'd2l_nli.machinery.checkpoint'


def model_kind(net):
    """``(kind, BERTConfig, classifier head sizes)`` of a model we can save."""
    # By shape, not only by class: a notebook that runs the cell defining
    # BERTClassifier has its own class object with the same layout.
    if isinstance(net, BERTClassifier) or (type(net).__name__ == 'BERTClassifier' and
                                           hasattr(net, 'bert_config')):
        return 'BERTClassifier', net.bert_config, {
            'num_classes': net.classifier[1]._units,
            'num_mlp_hiddens': net.classifier[0]._units,
            'pooling': getattr(net, 'pooling', 'cls')}
    if isinstance(net, BERTModel):
        return 'BERTModel', net.config, None
    raise TypeError(f'can only save BERTModel or BERTClassifier, not {type(net).__name__}')


def write_model_files(folder, net, vocab, extra=None):
    """Write ``config.json``, ``vocab.json`` and ``model.params`` into the existing ``folder``.

    The caller makes ``folder`` appear atomically (it is a temporary folder).
    """
    from .. import __version__

    kind, config, head = model_kind(net)
    if len(vocab) != config.vocab_size:
        raise ValueError(f'the vocabulary has {len(vocab)} tokens but the model was built '
                         f'for {config.vocab_size}')
    folder = Path(folder)
    net.save_parameters(str(folder / 'model.params'))
    vocab.save(folder / 'vocab.json')
    meta = {'format': FORMAT, 'version': 1, 'kind': kind,
            'bert': dataclasses.asdict(config), 'classifier': head,
            'd2l_nli_version': __version__, 'extra': extra or {}}
    (folder / 'config.json').write_text(json.dumps(meta, indent=2) + '\n')


def save_checkpoint(folder, net, vocab, extra=None):
    """Save a ``BERTModel`` or ``BERTClassifier`` with its vocabulary into ``folder``."""
    folder = Path(folder)
    model_kind(net)  # a clear TypeError before anything is written
    with atomic_directory(folder, replace=True) as tmp:
        write_model_files(tmp, net, vocab, extra)
    return folder


def load_vocab(path, error=CheckpointError):
    """The :class:`~d2l_nli.Vocab` saved in ``path``; a missing or damaged file raises ``error``."""
    try:
        return Vocab.load(path)
    except (FileNotFoundError, ValueError) as err:
        raise error(str(err)) from None


@contextlib.contextmanager
def _unreadable(path, what, error, advice):
    """Turn MXNet's errors while reading ``path`` into ``error``, naming the file."""
    import mxnet as mx

    try:
        yield
    except (AssertionError, mx.base.MXNetError, ValueError, OSError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        raise error(f'{path}: cannot load {what} ({first}). The file is damaged or belongs '
                    'to another model' + (f'; {advice}' if advice else '')) from None


def load_arrays(path, net=None, devices=None, error=CheckpointError,
                advice='save the model again'):
    """Read MXNet's array file ``path``: into ``net``'s parameters, or as a dict (no ``net``).

    A file that is missing, damaged or made for another model raises ``error``
    (its message ends with ``advice``).
    """
    import mxnet as mx

    if net is not None:
        with _unreadable(path, 'the parameters', error, advice):
            net.load_parameters(str(path), ctx=devices)
        return None
    with _unreadable(path, 'the arrays', error, advice):
        arrays = mx.nd.load(str(path))
    return arrays if isinstance(arrays, dict) else {}


def read_checkpoint_config(folder):
    """The parsed ``config.json`` of a checkpoint folder, checked."""
    path = Path(folder) / 'config.json'
    if not Path(folder).is_dir():
        raise CheckpointError(f'{folder}: no such checkpoint folder; pass the folder '
                              'written by pretraining or fine-tuning (--out)')
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f'{path}: missing; {folder} is not a d2l_nli checkpoint') from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f'{path}: damaged ({err}); save the model again') from None
    if not isinstance(meta, dict) or meta.get('format') != FORMAT:
        raise CheckpointError(f'{path}: not a d2l_nli checkpoint configuration')
    try:
        meta['bert'] = BERTConfig(**meta['bert'])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f'{path}: bad model sizes ({err})') from None
    return meta


def _load(folder, expected_kind, devices):
    import mxnet as mx

    require_numpy_mode(f'loading a {expected_kind}')
    folder = Path(folder)
    meta = read_checkpoint_config(folder)
    if meta.get('kind') != expected_kind:
        raise CheckpointError(
            f'{folder / "config.json"}: this checkpoint holds a {meta.get("kind")}, not a '
            f'{expected_kind}. ' + ('Use a pretrained BERT folder (python -m d2l_nli '
                                    'pretrain --out DIR).' if expected_kind == 'BERTModel'
                                    else 'Fine-tune first (python -m d2l_nli finetune '
                                    '--out DIR).'))
    vocab = load_vocab(folder / 'vocab.json')
    config = meta['bert']
    if len(vocab) != config.vocab_size:
        raise CheckpointError(f'{folder / "vocab.json"}: {len(vocab)} tokens, but '
                              f'{folder / "config.json"} says the model has '
                              f'{config.vocab_size}; the files come from different models')
    bert = BERTModel.from_config(config)
    net = bert
    if expected_kind == 'BERTClassifier':
        net = BERTClassifier(bert, **(meta.get('classifier') or {}))
    params = folder / 'model.params'
    if not params.is_file():
        raise CheckpointError(f'{params}: missing; the checkpoint is incomplete')
    load_arrays(params, net, devices or [mx.cpu()])
    return net, vocab, meta


def load_pretrained(folder, devices=None):
    """``(bert, vocab)`` from a folder written by ``save_checkpoint`` for a ``BERTModel``."""
    bert, vocab, _ = _load(folder, 'BERTModel', devices)
    return bert, vocab


def load_classifier(folder, devices=None):
    """``(net, vocab)`` from a folder written by ``save_checkpoint`` for a ``BERTClassifier``."""
    net, vocab, _ = _load(folder, 'BERTClassifier', devices)
    return net, vocab
