"""Saving and loading models as plain folders (no pickle).

A checkpoint folder holds three files:

* ``config.json``: what the model is (``kind``: ``BERTModel`` or
  ``BERTClassifier``), its sizes, and the package version that wrote it;
* ``vocab.json``: the vocabulary (:meth:`d2l_nli.Vocab.save`);
* ``model.params``: the parameters in MXNet's own array format.

A folder is written under a temporary name and swapped into place only when
complete, so a crash while saving leaves the previous checkpoint intact.
Loading checks that the three agree and turns every mismatch into a
:class:`d2l_nli.CheckpointError` naming the file.
"""
import dataclasses
import json
from pathlib import Path

from .classifier import BERTClassifier
from .errors import CheckpointError
from .fileio import atomic_directory
from .model import BERTConfig, BERTModel
from .text import Vocab

__all__ = ['save_checkpoint', 'load_pretrained', 'load_classifier', 'read_checkpoint_config',
           'write_model_files']

FORMAT = 'd2l_nli.checkpoint'


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
    from . import __version__

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

    folder = Path(folder)
    meta = read_checkpoint_config(folder)
    if meta.get('kind') != expected_kind:
        raise CheckpointError(
            f'{folder / "config.json"}: this checkpoint holds a {meta.get("kind")}, not a '
            f'{expected_kind}. ' + ('Use a pretrained BERT folder (python -m d2l_nli '
                                    'pretrain --out DIR).' if expected_kind == 'BERTModel'
                                    else 'Fine-tune first (python -m d2l_nli finetune '
                                    '--out DIR).'))
    try:
        vocab = Vocab.load(folder / 'vocab.json')
    except (FileNotFoundError, ValueError) as err:
        raise CheckpointError(str(err)) from None
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
    devices = devices or [mx.cpu()]
    try:
        net.load_parameters(str(params), ctx=devices)
    except (AssertionError, mx.base.MXNetError, ValueError, OSError) as err:
        first = str(err).strip().splitlines()[0][:300]
        raise CheckpointError(f'{params}: cannot load the parameters ({first}). The file '
                              'is damaged or belongs to another model; save it again') from None
    return net, vocab, meta


def load_pretrained(folder, devices=None):
    """``(bert, vocab)`` from a folder written by ``save_checkpoint`` for a ``BERTModel``."""
    bert, vocab, _ = _load(folder, 'BERTModel', devices)
    return bert, vocab


def load_classifier(folder, devices=None):
    """``(net, vocab)`` from a folder written by ``save_checkpoint`` for a ``BERTClassifier``."""
    net, vocab, _ = _load(folder, 'BERTClassifier', devices)
    return net, vocab
