"""The chapter's steps as functions: pretrain, fine-tune, evaluate.

The command line runs every step through these. The notebooks write the
pretraining and fine-tuning steps out where the chapter teaches them, with
the same settings, and call these for the rest: :func:`new_bert` (the
random BERT beside the pretrained one), :func:`load_or_pretrain` and
:func:`load_or_finetune` (so that each notebook also runs on its own) and
:func:`predict_labels`. Each step takes the data folder, the settings
(:data:`d2l_nli.PROFILES`) and the devices, and returns what it built plus a
dict of metrics.
"""
import contextlib
import dataclasses
import random
import sys

import numpy as onp
from mxnet import gluon, init
from mxnet.gluon import nn

from .classifier import BERTClassifier
from .machinery.checkpoint import load_classifier, load_pretrained, save_checkpoint
from .machinery.hub import download_extract
from .machinery.runtime import require_numpy_mode
from .model import BERTModel
from .snli import read_snli
from .snli_bert import SNLIBERTDataset
from .training import (
    evaluate_accuracy_gpus,
    finetuning_plot,
    finetuning_trainer,
    pretraining_plot,
    pretraining_trainer,
    split_batch_multi_inputs,
    train_bert,
    train_ch13,
)
from .wiki import load_data_wiki, mlm_unigram

__all__ = ['seed_everything', 'subsample', 'pretraining_data', 'new_bert', 'pretrain',
           'load_or_pretrain', 'finetune', 'load_or_finetune', 'evaluate', 'predict_labels']


def seed_everything(seed):
    """Seed Python, NumPy and MXNet (initialization, dropout) for reproducible runs."""
    import mxnet as mx

    random.seed(seed)
    onp.random.seed(seed)
    mx.random.seed(seed)


def subsample(dataset, size, seed=0):
    """``size`` random pairs of ``(premises, hypotheses, labels)`` (all if None)."""
    n = len(dataset[2])
    if size is None or size >= n:
        return dataset
    if size < 1:
        raise ValueError(f'subsample size must be positive, got {size}')
    keep = sorted(onp.random.default_rng(seed).choice(n, size, replace=False))
    return tuple([column[i] for i in keep] for column in dataset)


@contextlib.contextmanager
def _progress(total, desc, enabled):
    """A tqdm bar on a terminal; a no-op elsewhere (notebooks plot instead)."""
    if not enabled or not sys.stderr.isatty():
        yield lambda n=1: None
        return
    from tqdm import tqdm
    with tqdm(total=total, desc=desc, leave=False) as bar:
        yield bar.update


def _checkpoints(folder, vocab, every, resume, seed, settings):
    if folder is None:
        return None
    from .machinery.resume import TrainingCheckpoints
    return TrainingCheckpoints(folder, vocab, every=every, resume=resume, seed=seed,
                               settings=dict(settings, seed=seed))


def per_worker_batch(batch_size, kvstore):
    """``(rank, num_workers, batch per worker)``: the batch is shared by the workers."""
    from .machinery.distributed import worker_info

    rank, num_workers = worker_info(kvstore)
    if batch_size % num_workers:
        raise ValueError(f'the batch of {batch_size} cannot be shared equally by '
                         f'{num_workers} workers; use a multiple of {num_workers}')
    return rank, num_workers, batch_size // num_workers


def pretraining_data(data_dir, cfg, batch_size=None, *, seed=0):
    """``(train_iter, vocab)`` of WikiText-2 (plus SNLI sentences) as ``cfg`` asks.

    ``cfg`` is a :class:`~d2l_nli.PretrainConfig`: ``task_pairs`` > 0 joins
    the sentences of that many SNLI training pairs (drawn as fine-tuning
    draws its ``train_size`` pairs with the same seed, labels unused).
    """
    extra = None
    if cfg.task_pairs:
        from .wiki import snli_paragraphs
        folder = download_extract('SNLI', data_dir=data_dir)
        extra = snli_paragraphs(subsample(read_snli(folder, split='train'), cfg.task_pairs,
                                          seed))
    return load_data_wiki(batch_size or cfg.batch_size, cfg.max_len, data_dir=data_dir,
                          seed=seed, num_pairs=cfg.num_pairs, dynamic=cfg.dynamic_masking,
                          extra_paragraphs=extra)


def new_bert(vocab, model, cfg, devices, log_probs=None, *, seed=0, max_len=512):
    """A freshly initialized ``BERTModel`` as ``model`` and ``cfg`` ask, not hybridized.

    Xavier for every weight (the chapter), then the embedding tables from
    N(0, 0.02) if ``cfg.embedding_init == 'normal'`` and the MLM bias at
    ``log_probs`` if ``cfg.mlm_bias_init``. The same function makes the
    random BERT that notebook 3 fine-tunes beside the pretrained one. The
    vocabulary's size comes from ``vocab`` and the position table holds
    ``max(cfg.max_len, max_len)`` positions (fine-tuning may read longer pairs).
    """
    require_numpy_mode('new_bert')
    bert = BERTModel.from_config(dataclasses.replace(
        model, vocab_size=len(vocab), max_len=max(cfg.max_len, max_len)))
    bert.initialize(init.Xavier(), ctx=devices)
    if cfg.embedding_init == 'normal':
        bert.init_embeddings(0.02, seed=seed)
    if cfg.mlm_bias_init and log_probs is not None:
        bert.init_mlm_bias(log_probs)
    return bert


def pretrain(data_dir, model, cfg, devices, *, seed=0, plot_path=None, progress=True,
             checkpoint_dir=None, checkpoint_every=100, resume=False, kvstore='device',
             held_out_every=None):
    """Pretrain a BERT on ``<data_dir>/wikitext-2``: returns ``(bert, vocab, metrics)``.

    ``model`` is a :class:`~d2l_nli.BERTConfig`, ``cfg`` a
    :class:`~d2l_nli.PretrainConfig`. With ``held_out_every``, the losses on
    ``wiki.valid.tokens`` are measured every that many steps and at the end
    (``metrics['held_out']``, plus the no-context ``held_out_unigram``). With
    ``checkpoint_dir``, the whole
    training state is saved there every ``checkpoint_every`` steps, and
    ``resume=True`` continues from the newest one (see
    :class:`~d2l_nli.TrainingCheckpoints`). With a distributed ``kvstore``
    (:mod:`d2l_nli.machinery.distributed`) each worker trains on its shard with
    ``cfg.batch_size / num_workers`` pairs per step.
    """
    seed_everything(seed)
    rank, num_workers, batch_size = per_worker_batch(cfg.batch_size, kvstore)
    train_iter, vocab = pretraining_data(data_dir, cfg, batch_size, seed=seed)
    if num_workers > 1:
        train_iter.shard(rank, num_workers)
    log_probs, entropy = mlm_unigram(train_iter, len(vocab))
    bert = new_bert(vocab, model, cfg, devices, log_probs, seed=seed)
    bert.hybridize(static_alloc=True)
    trainer = pretraining_trainer(bert.collect_params(), cfg.lr, cfg.num_steps,
                                  cfg.warmup_steps, kvstore, cfg.final_lr_fraction)
    held_out = None
    if held_out_every:
        held_out, _ = load_data_wiki(256, cfg.max_len, data_dir=data_dir, vocab=vocab,
                                     file_name='wiki.valid.tokens', shuffle=False)
        labels = held_out.arrays.mlm_labels[held_out.arrays.mlm_weights > 0]
    animator = pretraining_plot(cfg.num_steps)
    checkpoints = _checkpoints(checkpoint_dir, vocab, checkpoint_every, resume, seed, {
        'task': 'pretrain', 'model': dataclasses.asdict(bert.config), 'batch_size': cfg.batch_size,
        'max_len': cfg.max_len, 'num_pairs': cfg.num_pairs, 'mlm_bias_init': cfg.mlm_bias_init,
        'embedding_init': cfg.embedding_init, 'dynamic_masking': cfg.dynamic_masking,
        'task_pairs': cfg.task_pairs, 'warmup_steps': cfg.warmup_steps,
        'final_lr_fraction': cfg.final_lr_fraction})
    with _progress(cfg.num_steps, 'pretraining', progress) as update:
        metrics = train_bert(train_iter, bert, gluon.loss.SoftmaxCELoss(), len(vocab), devices,
                             cfg.num_steps, trainer=trainer, animator=animator,
                             progress=lambda step: update(1), checkpoints=checkpoints,
                             kvstore=kvstore, held_out=held_out, held_out_every=held_out_every)
    metrics.update(num_pairs=train_iter.num_examples, vocab_size=len(vocab),
                   unigram_entropy=entropy)
    if held_out is not None:
        metrics['held_out_unigram'] = float(-log_probs[labels].mean())
    if plot_path:
        animator.save(plot_path)
    return bert, vocab, metrics


def load_or_pretrain(folder, data_dir, profile, devices, *, seed=0):
    """``(bert, vocab)`` from the checkpoint ``folder``; pretrains and saves it if absent.

    ``profile`` is a :class:`~d2l_nli.Profile` (or anything with ``model``
    and ``pretrain`` settings). The notebooks use this so that each one can
    run on its own.
    """
    from pathlib import Path

    folder = Path(folder)
    if (folder / 'config.json').is_file():
        return load_pretrained(folder, devices)
    print(f'no pretrained BERT in {folder}: pretraining one now '
          f'({profile.pretrain.num_steps} steps, as notebook 1 does)')
    bert, vocab, _ = pretrain(data_dir, profile.model, profile.pretrain, devices, seed=seed,
                              progress=False)
    save_checkpoint(folder, bert, vocab)
    return bert, vocab


def _check_positions(cfg, config):
    """A clear error instead of an MXNet shape error deep inside the model."""
    if cfg.max_len > config.max_len:
        raise ValueError(f'max_len={cfg.max_len} is more than the {config.max_len} positions '
                         f'the pretrained BERT has; use --max-len {config.max_len} or less')


def _snli_sets(data_dir, vocab, cfg, split, seed, train=True):
    folder = download_extract('SNLI', data_dir=data_dir)
    test = SNLIBERTDataset(subsample(read_snli(folder, split=split), cfg.test_size, seed),
                           cfg.max_len, vocab, truncate=cfg.truncate, verbose=False)
    if not train:
        return None, test
    train_set = SNLIBERTDataset(subsample(read_snli(folder, split='train'), cfg.train_size, seed),
                                cfg.max_len, vocab, truncate=cfg.truncate, verbose=False)
    return train_set, test


def classifier_for(bert, cfg, devices):
    """``BERTClassifier(bert)`` set up for fine-tuning as ``cfg`` asks, head initialized.

    ``cfg.dropout`` (if not None) replaces the encoder's dropout rate;
    ``cfg.encoder_lr_scale`` multiplies the encoder's learning rate
    (``lr_mult``), so the pretrained weights can move more slowly than the
    new head.
    """
    net = BERTClassifier(bert, pooling=cfg.pooling)
    if cfg.dropout is not None:
        def set_rate(block):
            if isinstance(block, nn.Dropout):
                block._rate = cfg.dropout  # read when the graph is (re)built
        net.encoder.apply(set_rate)
        net.bert_config = dataclasses.replace(net.bert_config, dropout=cfg.dropout)
    net.classifier.initialize(init.Xavier(), ctx=devices)
    for param in net.encoder.collect_params().values():
        param.lr_mult = cfg.encoder_lr_scale
    return net


def finetune(data_dir, bert, vocab, cfg, devices, *, seed=0, split='test', plot_path=None,
             progress=True, checkpoint_dir=None, checkpoint_every=0, resume=False,
             kvstore='device'):
    """Fine-tune ``BERTClassifier(bert)`` on SNLI: returns ``(net, metrics)``.

    ``bert`` is a ``BERTModel`` or a checkpoint folder; ``cfg`` a
    :class:`~d2l_nli.FinetuneConfig`; accuracy is measured on ``split``.
    With ``checkpoint_dir``, the whole training state is saved there after
    each epoch and every ``checkpoint_every`` steps (0: epochs only), and
    ``resume=True`` continues from the newest one. With a distributed
    ``kvstore`` each worker trains on its shard with ``cfg.batch_size /
    num_workers`` pairs per step.
    """
    if not isinstance(bert, BERTModel):
        bert, vocab = load_pretrained(bert, devices)
    _check_positions(cfg, bert.config)
    seed_everything(seed)
    train_set, test_set = _snli_sets(data_dir, vocab, cfg, split, seed)
    rank, num_workers, batch_size = per_worker_batch(cfg.batch_size, kvstore)
    train_iter = train_set.loader(batch_size, shuffle=True, seed=seed)
    if num_workers > 1:
        train_iter.shard(rank, num_workers)
    test_iter = test_set.loader(cfg.batch_size)
    net = classifier_for(bert, cfg, devices)
    net.hybridize(static_alloc=True)
    trainer = finetuning_trainer(net.collect_params(), cfg.lr, cfg.num_epochs * len(train_iter),
                                 cfg.warmup_fraction, kvstore)
    animator = finetuning_plot(cfg.num_epochs, split)
    checkpoints = _checkpoints(checkpoint_dir, vocab, checkpoint_every, resume, seed, {
        'task': 'finetune', 'model': dataclasses.asdict(bert.config),
        'batch_size': cfg.batch_size, 'max_len': cfg.max_len, 'train_size': cfg.train_size,
        'truncate': cfg.truncate, 'pooling': cfg.pooling, 'dropout': cfg.dropout,
        'encoder_lr_scale': cfg.encoder_lr_scale, 'warmup_fraction': cfg.warmup_fraction})
    with _progress(cfg.num_epochs * len(train_iter), 'fine-tuning', progress) as update:
        metrics = train_ch13(net, train_iter, test_iter, gluon.loss.SoftmaxCrossEntropyLoss(),
                             trainer, cfg.num_epochs, devices, animator=animator,
                             progress=lambda step: update(1), checkpoints=checkpoints,
                             kvstore=kvstore, test_name=split)
    metrics.update(num_train=len(train_set), num_test=len(test_set), split=split)
    if plot_path:
        animator.save(plot_path)
    return net, metrics


def load_or_finetune(folder, data_dir, bert, vocab, profile, devices, *, split='test',
                     seed=0):
    """``(net, vocab)``: the ``BERTClassifier`` in ``folder``; fine-tunes and saves it if absent.

    ``bert`` (a ``BERTModel``) and ``vocab`` are what to fine-tune when the
    folder holds no classifier: :func:`finetune` with ``profile.finetune``'s
    settings, on the training pairs notebook 3 draws, measured on
    ``split``. Notebook 3 writes the same steps out (Adam at the same
    constant rate, the same epochs), so the result matches its classifier
    up to the shuffling of the batches. Notebook 5 uses this to run on its
    own. A saved classifier is loaded as it is, with its own vocabulary.
    """
    from pathlib import Path

    folder = Path(folder)
    if (folder / 'config.json').is_file():
        return load_classifier(folder, devices)
    f = profile.finetune
    print(f'no fine-tuned classifier in {folder}: fine-tuning one now ({f.num_epochs} epochs '
          'on the training pairs notebook 3 uses)')
    net, _ = finetune(data_dir, bert, vocab, f, devices, seed=seed, split=split, progress=False)
    save_checkpoint(folder, net, vocab)
    return net, vocab


def predict_labels(net, dataset, devices, batch_size=256):
    """Predicted label ids (n,) of every pair of an ``SNLIBERTDataset``, in its order.

    Pairs are run shortest first, in batches padded to their longest pair
    and split across ``devices``; the predictions are put back in the
    dataset's order, so they line up with its premises and labels.
    """
    require_numpy_mode('predict_labels')
    from mxnet import np

    order = onp.argsort(dataset.valid_lens, kind='stable')
    predicted = onp.empty(len(dataset), dtype=int)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        tokens, segments = dataset.rows(idx, int(dataset.valid_lens[idx].max()))
        X = (np.array(tokens), np.array(segments), np.array(dataset.valid_lens[idx]))
        X_shards, _ = split_batch_multi_inputs(X, np.array(dataset.labels[idx]), devices)
        predicted[idx] = onp.concatenate([net(x).argmax(axis=1).asnumpy() for x in X_shards])
    return predicted


def evaluate(data_dir, net, vocab, cfg, devices, *, split='test', seed=0):
    """Accuracy and speed of a fine-tuned ``net`` on an SNLI split (metrics dict)."""
    import time

    from mxnet import npx

    _check_positions(cfg, net.bert_config)
    _, test_set = _snli_sets(data_dir, vocab, cfg, split, seed, train=False)
    start = time.perf_counter()
    test_acc = evaluate_accuracy_gpus(net, test_set.loader(cfg.batch_size), devices=devices)
    npx.waitall()
    seconds = time.perf_counter() - start
    return {'test_acc': test_acc, 'examples_per_sec': len(test_set) / seconds,
            'num_test': len(test_set), 'split': split, 'seconds': seconds,
            'devices': [str(d) for d in devices]}
