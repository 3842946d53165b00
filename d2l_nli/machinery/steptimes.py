"""What the notebooks' work costs on this machine, measured in seconds.

Two measurements, both short, which :mod:`d2l_nli.machinery.budget` turns
into minutes per notebook and into a plan for a time budget:

* :func:`data_shape` counts, in the data folder, what the notebooks will
  process (the vocabulary, the text, the pairs and how long they are in
  tokens), and times the preparation of the held-out text and of SNLI's
  evaluation pairs, the same code the notebooks run;
* :func:`measure` times a few pretraining and fine-tuning steps of the
  profile's BERT on batches of that data, made by the notebooks' loaders,
  at the profile's batch sizes (:class:`StepTimes`).

Nothing here is a constant about a machine: every number is measured where
it runs. ``clock`` is injectable for the tests.
"""
import dataclasses
import time
from pathlib import Path
from typing import NamedTuple

__all__ = ['DataShape', 'Samples', 'StepTimes', 'data_shape', 'measure', 'startup_seconds']


@dataclasses.dataclass(frozen=True)
class DataShape:
    """The data the notebooks would read, counted (for one profile's lengths).

    Sizes: ``vocab_size`` (words seen at least 5 times in WikiText-2's
    training text, plus the reserved tokens), ``wiki_train_bytes``,
    ``held_out_pairs`` (the validation file's sentence pairs at the
    pretraining ``max_len``), ``train_pairs`` (SNLI training pairs, before
    the profile's ``train_size``), ``eval_pairs`` (the test split, or dev).
    Lengths, in tokens: the mean width of a fine-tuning batch (its longest
    pair: ``finetune_len``, ``exercise_len`` at notebook 4's ``max_len``,
    ``eval_len`` for the evaluation's sorted batches).
    Times, in seconds: ``wiki_vocab_s`` to read WikiText-2's training text
    and count its vocabulary, ``wiki_byte_s`` to turn a byte of it into
    pretraining examples, ``snli_pair_s`` to read and encode an SNLI pair.
    """
    kind: str
    vocab_size: int
    wiki_train_bytes: int
    held_out_pairs: int
    train_pairs: int
    eval_pairs: int
    finetune_len: float
    exercise_len: float
    eval_len: float
    wiki_vocab_s: float
    wiki_byte_s: float
    snli_pair_s: float


@dataclasses.dataclass(frozen=True)
class StepTimes:
    """Seconds on this machine at one profile's sizes (see :func:`measure`).

    ``pretrain_step``: one pretraining step (batch and ``max_len`` of the
    profile); ``held_out_pair``: one pretraining pair evaluated;
    ``finetune_pair``, ``exercise_pair``: one fine-tuning pair trained on, at
    the data's lengths and at notebook 4's shorter ``max_len``;
    ``eval_pair``: one pair classified during training (batches of the
    fine-tuning size), ``predict_pair`` by ``predict_labels`` (sorted
    batches of 256); ``attention_pair``: one pair's
    attention read out (notebook 5); ``bow_pair``: one training pair of the
    two bag-of-words baselines fitted, ``bow_eval_pair`` one pair classified
    by both; ``startup``: a notebook's first cell
    (starting a notebook kernel, importing the package and MXNet, showing a
    first figure).
    """
    profile: str
    pretrain_step: float
    held_out_pair: float
    finetune_pair: float
    exercise_pair: float
    eval_pair: float
    predict_pair: float
    attention_pair: float
    bow_pair: float
    startup: float
    bow_eval_pair: float = 0.0


def _mean_width(lengths, batch_size, cap, train=True, seed=0):
    """Mean width (tokens) of the loader's batches: their longest pair, at most ``cap``.

    The pair loader groups pairs of similar length (``bucket=50``), shuffled
    for training and sorted for evaluation, as the notebooks' loaders do.
    """
    import numpy as onp

    from ..loader import batch_indices

    lengths = onp.minimum(onp.asarray(lengths), cap)
    rng = onp.random.default_rng(seed) if train else None
    batches = batch_indices(len(lengths), batch_size, rng, lengths, bucket=50)
    return float(onp.mean([lengths[b].max() for b in batches]))


def _count_pairs(snli_dir, split):
    """SNLI pairs with a gold label in ``split``, counted from the file's lines."""
    for name, header in ((f'snli_1.0_{split}.txt', 1), (f'snli_1.0_{split}.jsonl', 0)):
        path = Path(snli_dir) / name
        if path.is_file():
            with open(path, 'rb') as f:
                return sum(1 for line in f if line.strip()) - header
    return 0


class Samples(NamedTuple):
    """The data :func:`measure` trains on: the held-out text's pretraining
    examples, and SNLI pairs encoded at the fine-tuning and the exercise
    ``max_len`` (``evaluate``: the first 1,024 of them; ``pairs``: the
    first 2,048 as text, for the bag-of-words models)."""
    vocab: object
    held_out: object
    finetune: object
    exercise: object
    evaluate: object
    pairs: tuple


def data_shape(source, profile, clock=time.perf_counter):
    """``(DataShape, Samples)`` of ``source`` (a :class:`~d2l_nli.DataSource`) for ``profile``.

    Reads WikiText-2's training text once (for the vocabulary), and times
    the examples of its validation text and the encoding of the SNLI split
    the notebooks evaluate on: a second or two on the real data.
    """
    from ..snli import read_snli
    from ..snli_bert import SNLIBERTDataset
    from ..wiki import WikiTextBERTData, read_wiki, wiki_sentences, wiki_vocab

    train_text = source.wiki_dir / 'wiki.train.tokens'
    start = clock()
    vocab = wiki_vocab([w for s in wiki_sentences(read_wiki(source.wiki_dir)) for w in s])
    wiki_vocab_s = clock() - start
    valid_file = source.wiki_dir / 'wiki.valid.tokens'
    start = clock()
    held_out = WikiTextBERTData(read_wiki(source.wiki_dir, valid_file.name),
                                profile.pretrain.max_len, vocab=vocab)
    wiki_byte_s = (clock() - start) / max(valid_file.stat().st_size, 1)
    f = profile.finetune
    start = clock()
    pairs = read_snli(source.snli_dir, split=source.test_split)
    encoded = SNLIBERTDataset(pairs, f.max_len, vocab, verbose=False)
    snli_pair_s = (clock() - start) / max(len(encoded), 1)
    lengths = encoded.valid_lens
    shape = DataShape(
        kind=source.kind, vocab_size=len(vocab), wiki_train_bytes=train_text.stat().st_size,
        held_out_pairs=len(held_out), train_pairs=_count_pairs(source.snli_dir, 'train'),
        eval_pairs=len(encoded),
        finetune_len=_mean_width(lengths, f.batch_size, f.max_len),
        exercise_len=_mean_width(lengths, f.batch_size, profile.exercise_max_len),
        eval_len=_mean_width(lengths, f.batch_size, f.max_len, train=False),
        wiki_vocab_s=wiki_vocab_s, wiki_byte_s=wiki_byte_s, snli_pair_s=snli_pair_s)
    first = tuple(column[:1024] for column in pairs)
    samples = Samples(vocab, held_out, encoded,
                      SNLIBERTDataset(pairs, profile.exercise_max_len, vocab, verbose=False),
                      SNLIBERTDataset(first, f.max_len, vocab, verbose=False),
                      tuple(column[:2048] for column in pairs))
    return shape, samples


def _timed(fn, warmup, steps, clock):
    """Seconds per call of ``fn`` (which syncs), after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    start = clock()
    for _ in range(steps):
        fn()
    return (clock() - start) / steps


def _pretraining_seconds(bert, cfg, samples, devices, warmup, steps, clock):
    """Seconds per pretraining step, and per pair evaluated, on batches of held-out text."""
    from mxnet import gluon, npx

    from ..loader import ArrayLoader
    from ..training import evaluate_bert_losses, pretraining_step, split_batch_multi_inputs
    from ..wiki import TRIM_WIDTHS, PretrainingBatch

    vocab_size = len(samples.vocab)
    arrays = samples.held_out.arrays

    def loader():
        return ArrayLoader(arrays, cfg.batch_size, shuffle=True, trim=TRIM_WIDTHS, bucket=20,
                           pack=PretrainingBatch)
    # One batch, again and again: a new width would time MXNet's set-up for a
    # new shape, which a long run pays once per width. Its time is then
    # scaled to the mean width of a whole pass.
    batch = next(iter(loader()))
    trainer = gluon.Trainer(bert.collect_params(), 'adam', {'learning_rate': 1e-5})
    learning_step = pretraining_step(bert, gluon.loss.SoftmaxCELoss(), vocab_size)

    def one_step():
        X_shards, y_shards = split_batch_multi_inputs(batch.inputs, batch.nsp_labels, devices)
        learning_step(batch, X_shards, y_shards)
        trainer.step(1)
        npx.waitall()

    per_step = _timed(one_step, warmup, steps, clock)
    mean_width = sum(b.tokens.shape[1] for b in loader()) / len(loader())
    per_step *= mean_width / batch.tokens.shape[1]
    n = min(256, len(arrays.nsp_labels))
    held_out = ArrayLoader(PretrainingBatch(*(a[:n] for a in arrays)), 256, trim=TRIM_WIDTHS,
                           bucket=20, pack=PretrainingBatch)
    return per_step, _timed(lambda: evaluate_bert_losses(bert, held_out, vocab_size, devices),
                            1, 1, clock) / n


def _finetuning_seconds(bert, plain_bert, cfg, samples, devices, warmup, steps, clock):
    """Seconds per pair trained on (at two lengths), and per pair classified (three ways)."""
    from mxnet import gluon, init

    from ..attention import cls_attention_by_part
    from ..classifier import BERTClassifier
    from ..pipeline import predict_labels
    from ..training import evaluate_accuracy_gpus, train_batch_ch13

    net = BERTClassifier(bert)
    net.classifier.initialize(init.Xavier(), ctx=devices)
    net.hybridize(static_alloc=True)
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': 1e-5})
    loss = gluon.loss.SoftmaxCrossEntropyLoss()

    def trained(dataset):  # one batch again and again, as for pretraining
        X, y = next(iter(dataset.loader(cfg.batch_size, shuffle=True)))
        widths = [features[0].shape[1] for features, _ in dataset.loader(cfg.batch_size)]

        def one_step():
            loss_sum, _ = train_batch_ch13(net, X, y, loss, trainer, devices)
            loss_sum.item()
        per_batch = _timed(one_step, warmup, steps, clock)
        return per_batch * (sum(widths) / len(widths)) / X[0].shape[1] / len(y)

    per_pair = [trained(samples.finetune), trained(samples.exercise)]
    loader = samples.evaluate.loader(cfg.batch_size)
    per_eval = _timed(lambda: evaluate_accuracy_gpus(net, loader, devices=devices),
                      0, 1, clock) / len(samples.evaluate)
    if plain_bert is None:
        return per_pair, per_eval, None, None
    # Notebook 5 runs the classifiers as loaded from their folders: not hybridized.
    loaded = BERTClassifier(plain_bert)
    loaded.classifier.initialize(init.Xavier(), ctx=devices)
    per_predict = _timed(lambda: predict_labels(loaded, samples.evaluate, devices),
                         0, 1, clock) / len(samples.evaluate)
    per_attention = _timed(lambda: cls_attention_by_part(loaded, samples.evaluate),
                           0, 1, clock) / len(samples.evaluate)
    return per_pair, per_eval, per_predict, per_attention


def _baseline_seconds(samples, clock):
    """``(seconds per training pair, seconds per pair classified)`` of notebook 5's two
    bag-of-words baselines, fitted on 2,048 pairs (a fit's time per pair grows with
    the pairs: 0.09 ms at 1,024 here, 0.14 at 2,048 and 5,800, 0.16 at 9,987)."""
    from ..baselines import BagOfWordsNLI

    models = []

    def fit_both():
        models[:] = [BagOfWordsNLI(side).fit(samples.pairs) for side in ('hypothesis', 'both')]

    def predict_both():
        for model in models:
            model.predict(samples.pairs)
    n = len(samples.pairs[2])
    return _timed(fit_both, 0, 1, clock) / n, _timed(predict_both, 0, 1, clock) / n


# A notebook's first cell, and a first figure, as the notebooks show them.
_FIRST_CELL = ('import d2l_nli\nfrom mxnet import npx\nnpx.set_np()\nd2l_nli.select_profile()\n'
               'from matplotlib.figure import Figure\nd2l_nli.use_svg_display()\n'
               'fig = Figure(figsize=(4, 3))\nfig.add_subplot().plot([1, 2, 3])\n'
               'display(fig)\n')


def startup_seconds(clock=time.perf_counter):
    """Seconds to start a notebook kernel, run a first cell and show a figure.

    Uses a real Jupyter kernel where one is installed (the notebooks need
    it anyway), else a plain Python doing the same imports.
    """
    try:
        from jupyter_client.manager import start_new_kernel
    except ImportError:
        return _plain_startup(clock)
    start = clock()
    try:
        manager, client = start_new_kernel(kernel_name='python3')
    except Exception:  # no such kernel: time the plain Python instead
        return _plain_startup(clock)
    try:
        reply = client.execute_interactive(_FIRST_CELL, timeout=300,
                                           output_hook=lambda msg: None)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    if reply['content'].get('status') != 'ok':  # a kernel of another Python
        return _plain_startup(clock)
    return clock() - start


def _plain_startup(clock):
    import subprocess
    import sys

    start = clock()
    subprocess.run([sys.executable, '-c', _FIRST_CELL.replace('display(fig)', '')],
                   check=True, capture_output=True)
    return clock() - start


def measure(profile, samples, devices, *, steps=None, reuse=None, training_only=False,
            clock=time.perf_counter):
    """:class:`StepTimes` for ``profile`` on ``devices``: a few steps on the ``samples``' batches.

    ``samples`` come from :func:`data_shape`. ``steps`` timed pretraining
    steps (twice as many fine-tuning ones) follow an untimed one: by default
    5 at the small profile's sizes, 1 at the full one's, about 7 and 6
    seconds in all on 2 cores. ``reuse`` (a :class:`StepTimes`) gives the
    times that do not depend on the profile (start-up, notebook 5's work).
    ``training_only`` skips what only whole notebooks cost (a kernel's
    start-up, notebook 5's predictions and attention: 0 in the result).
    """
    from mxnet import init

    from ..model import BERTModel

    big = profile.pretrain.batch_size * profile.pretrain.max_len > 64 * 64
    steps = steps or (1 if big else 5)
    warmup = 1
    config = dataclasses.replace(profile.model, vocab_size=len(samples.vocab), max_len=512)
    bert = BERTModel.from_config(config)
    bert.initialize(init.Xavier(), ctx=devices)
    bert.hybridize(static_alloc=True)
    plain_bert = None
    if reuse is None and not training_only:  # notebook 5's work: the same for any profile
        plain_bert = BERTModel.from_config(config)
        plain_bert.initialize(init.Xavier(), ctx=devices)
    pretrain_step, held_out_pair = _pretraining_seconds(
        bert, profile.pretrain, samples, devices, warmup, steps, clock)
    (finetune_pair, exercise_pair), eval_pair, predict_pair, attention_pair = \
        _finetuning_seconds(bert, plain_bert, profile.finetune, samples, devices, warmup,
                            steps * 2, clock)
    if training_only:
        predict_pair = attention_pair = 0.0
    if reuse is not None:
        predict_pair, attention_pair = reuse.predict_pair, reuse.attention_pair
        bow_pair, bow_eval_pair = reuse.bow_pair, reuse.bow_eval_pair
    else:
        bow_pair, bow_eval_pair = _baseline_seconds(samples, clock)
    return StepTimes(profile=profile.name, pretrain_step=pretrain_step,
                     held_out_pair=held_out_pair, finetune_pair=finetune_pair,
                     exercise_pair=exercise_pair, eval_pair=eval_pair,
                     predict_pair=predict_pair, attention_pair=attention_pair,
                     bow_pair=bow_pair, bow_eval_pair=bow_eval_pair,
                     startup=(reuse.startup if reuse else
                              0.0 if training_only else startup_seconds(clock)))
