"""The chapter's training loops, data parallel over any list of devices.

``train_bert`` pretrains with masked-LM + next-sentence prediction and
``train_ch13`` fine-tunes a classifier, both with the book's names, printed
lines and plots. Each minibatch is split across ``devices``
(:func:`split_batch_multi_inputs`), every device computes its share of the
loss, and ``gluon.Trainer`` sums the gradients, so replicas stay identical.

Fixed from the book's code: losses are normalized by the *whole* batch (not
per device), so the update equals a one-device step on the full batch; no
``waitall`` inside the per-device loop (it serialised the GPUs); any number
of batches works (the book divided by ``num_batches // 5``); device defaults
are chosen at call time, not at import.
"""

from mxnet import autograd, gluon, np, npx

from .fused_mlm import FusedPretrainingStep
from .machinery.devices import try_all_gpus
from .machinery.runtime import require_numpy_mode

__all__ = ['pretraining_trainer', 'finetuning_trainer', 'evaluate_bert_losses',
           'Accumulator', 'split_batch_multi_inputs', 'accuracy', 'ChapterPretrainingStep',
           'evaluate_accuracy_gpus', 'train_bert', 'train_batch_ch13', 'train_ch13',
           'pretraining_plot', 'finetuning_plot', 'pretraining_step']


class Accumulator:
    """Running sums of ``n`` quantities."""

    def __init__(self, n):
        self.data = [0.0] * n

    def add(self, *args):
        self.data = [a + float(b) for a, b in zip(self.data, args)]

    def reset(self):
        self.data = [0.0] * len(self.data)

    def __getitem__(self, idx):
        return self.data[idx]


def split_batch_multi_inputs(X, y, devices):
    """Split a batch of several inputs ``X`` (tuple) and labels ``y`` over ``devices``.

    Returns ``(X_shards, y_shards)``: ``X_shards[k]`` is the tuple of inputs
    for device ``k``. Shards may be uneven; a batch smaller than the number
    of devices uses only as many devices as it has examples.
    """
    devices = list(devices)[:max(1, len(y))]
    if len(devices) == 1:  # (split_and_load would warn: it calls a deprecated method)
        return [tuple(x.as_in_ctx(devices[0]) for x in X)], [y.as_in_ctx(devices[0])]
    X_shards = [gluon.utils.split_and_load(x, devices, even_split=False) for x in X]
    return (list(zip(*X_shards)),
            gluon.utils.split_and_load(y, devices, even_split=False))


def accuracy(y_hat, y):
    """Number of correct predictions (an ``mxnet.np`` scalar, not synced)."""
    return (y_hat.argmax(axis=1).astype(y.dtype) == y).sum()


def evaluate_accuracy_gpus(net, data_iter, split_f=split_batch_multi_inputs, devices=None):
    """Accuracy of ``net`` on ``data_iter``, computed on all ``devices``."""
    require_numpy_mode('evaluate_accuracy_gpus')
    devices = devices or try_all_gpus()
    correct, total = [], 0
    for features, labels in data_iter:
        X_shards, y_shards = split_f(features, labels, devices)
        correct += [accuracy(net(X), y) for X, y in zip(X_shards, y_shards)]
        total += len(labels)
    return sum(c.item() for c in correct) / max(total, 1)


def pretraining_trainer(params, lr, num_steps, warmup_steps=0, kvstore='device',
                        final_lr_fraction=0.1):
    """Adam for ``num_steps`` steps; with ``warmup_steps``, warm-up and decay.

    ``warmup_steps=0`` is the chapter's constant learning rate. Otherwise the
    rate rises linearly from 0 to ``lr`` over ``warmup_steps`` steps, then
    falls linearly to ``lr * final_lr_fraction`` at ``num_steps``: a post-LN
    transformer tolerates a larger peak rate this way, which is what makes
    short CPU runs learn. Budget recipes decay to 0 at the last step.
    """
    import mxnet as mx

    options = {'learning_rate': lr}
    if warmup_steps:
        if not 0 < warmup_steps < num_steps:
            raise ValueError(f'warmup_steps={warmup_steps} must be between 0 and '
                             f'num_steps={num_steps}')
        options['lr_scheduler'] = mx.lr_scheduler.PolyScheduler(
            num_steps, base_lr=lr, pwr=1, final_lr=lr * final_lr_fraction,
            warmup_steps=warmup_steps, warmup_begin_lr=0.0)
    from .machinery.distributed import make_trainer
    return make_trainer(params, 'adam', options, kvstore)


def finetuning_trainer(params, lr, num_steps, warmup_fraction=0.0, kvstore='device'):
    """Adam for fine-tuning: the chapter's constant ``lr``, or warm-up and decay.

    With ``warmup_fraction`` > 0 (the original BERT's recipe, 0.1) the rate
    rises linearly from 0 over that fraction of the ``num_steps`` steps, then
    falls linearly to 0: the new head's first, large gradients then cannot
    wreck what pretraining put into the encoder.
    """
    import mxnet as mx

    from .machinery.distributed import make_trainer

    options = {'learning_rate': lr}
    if warmup_fraction:
        if not 0 < warmup_fraction < 1:
            raise ValueError(f'warmup_fraction must be in [0, 1), got {warmup_fraction}')
        warmup = max(1, round(warmup_fraction * num_steps))
        if warmup >= num_steps:
            raise ValueError(f'{num_steps} steps are too few for a warm-up')
        options['lr_scheduler'] = mx.lr_scheduler.PolyScheduler(
            num_steps, base_lr=lr, pwr=1, final_lr=0.0, warmup_steps=warmup,
            warmup_begin_lr=0.0)
    return make_trainer(params, 'adam', options, kvstore)


def bert_losses(net, loss, vocab_size, shards, mlm_totals, batch_size):
    """Per-device MLM and NSP loss sums, each normalized by the whole batch.

    ``mlm_totals[k]``: the batch's number of MLM predictions, on shard k's device.
    """
    mlm_ls, nsp_ls = [], []
    for shard, total in zip(shards, mlm_totals):
        tokens, segments, valid_lens, pred_positions, mlm_weights, mlm_Y, nsp_y = shard
        _, mlm_Y_hat, nsp_Y_hat = net(tokens, segments, valid_lens, pred_positions)
        # Padding slots of the prediction positions have weight 0.
        mlm_l = loss(mlm_Y_hat.reshape((-1, vocab_size)), mlm_Y.reshape(-1),
                     mlm_weights.reshape((-1, 1))).sum()
        mlm_ls.append(mlm_l / total)
        nsp_ls.append(loss(nsp_Y_hat, nsp_y).sum() / batch_size)
    return mlm_ls, nsp_ls


class ChapterPretrainingStep:
    """The chapter's pretraining step: autograd through logits, log-softmax and pick.

    Same interface as :class:`d2l_nli.fused_mlm.FusedPretrainingStep`
    (``step(batch, X_shards, y_shards, num_workers)``, ``batch`` a
    :class:`~d2l_nli.PretrainingBatch`, leaves the gradients on the
    parameters and returns the per-device MLM and NSP losses, unsynced),
    which computes the same thing faster.
    """

    def __init__(self, net, loss, vocab_size):
        self.net, self.loss, self.vocab_size = net, loss, vocab_size

    def __call__(self, batch, X_shards, y_shards, num_workers=1):
        # The MLM normalizer stays an array: reading it here would wait for
        # the previous step to finish (a host sync per batch).
        mlm_total = np.maximum(batch.mlm_weights.sum(), 1e-8)
        shards = [x + (y,) for x, y in zip(X_shards, y_shards)]
        shard_totals = [mlm_total.as_in_ctx(y.ctx) for y in y_shards]  # copy outside record
        with autograd.record():
            mlm_ls, nsp_ls = bert_losses(self.net, self.loss, self.vocab_size, shards,
                                          shard_totals, len(batch.nsp_labels))
            # Means over the batch; across machines, the mean of the workers' means.
            ls = [(m + n) / num_workers for m, n in zip(mlm_ls, nsp_ls)]
        for shard_loss in ls:
            shard_loss.backward()
        return mlm_ls, nsp_ls


def evaluate_bert_losses(net, data_iter, vocab_size, devices=None):
    """Mean MLM and NSP losses of ``net`` on ``data_iter`` (e.g. held-out text).

    Returns ``{'mlm_loss': ..., 'nsp_loss': ...}``: the MLM loss averaged
    over all real predictions, the NSP loss over all pairs, without
    dropout. Training losses can fall by memorising the training pairs;
    these show what generalises.
    """
    require_numpy_mode('evaluate_bert_losses')
    devices = devices or try_all_gpus()
    loss = gluon.loss.SoftmaxCELoss()
    mlm_sum, nsp_sum, pred_counts, num_pairs = [], [], [], 0
    for batch in data_iter:
        pred_counts.append(batch.mlm_weights.sum())  # read at the end: no sync per batch
        num_pairs += len(batch.nsp_labels)
        X_shards, y_shards = split_batch_multi_inputs(batch.inputs, batch.nsp_labels, devices)
        # Normalizers of 1: the per-device loss sums, averaged at the end.
        mlm_ls, nsp_ls = bert_losses(net, loss, vocab_size,
                                      [x + (y,) for x, y in zip(X_shards, y_shards)],
                                      [1.0] * len(y_shards), 1)
        mlm_sum += mlm_ls
        nsp_sum += nsp_ls
    if not num_pairs:
        raise ValueError('data_iter yielded no batch')
    num_preds = sum(c.item() for c in pred_counts)
    return {'mlm_loss': sum(m.item() for m in mlm_sum) / max(num_preds, 1e-8),
            'nsp_loss': sum(n.item() for n in nsp_sum) / num_pairs}


def _item(x):
    """A Python float from an ``mxnet.np`` scalar (a host sync) or a float."""
    return x if isinstance(x, float) else x.item()


def train_bert(train_iter, net, loss, vocab_size, devices, num_steps, *, lr=1e-3,
               trainer=None, animator=None, log_every=None, progress=None, checkpoints=None,
               kvstore=None, held_out=None, held_out_every=None, fused_mlm=True):
    """Pretrain ``net`` (a ``BERTModel``) for ``num_steps`` minibatches; returns the losses.

    Prints ``MLM loss x, NSP loss y`` and ``N sentence pairs/sec on
    [devices]``. ``trainer`` defaults to Adam at ``lr``; ``animator`` gets
    both losses every ``log_every`` steps; ``progress(step)`` is called
    after each step. ``held_out`` (a loader like ``train_iter``) is
    evaluated every ``held_out_every`` steps and at the end, off the clock,
    into ``metrics['held_out']`` (``step``, ``seconds``, both losses).
    ``fused_mlm`` runs the MLM output layer in one pass
    (:mod:`d2l_nli.fused_mlm`) when ``loss`` is the chapter's plain softmax
    cross-entropy. ``checkpoints`` (resuming, saving) and a distributed
    ``kvstore`` (each worker passes its shard): :mod:`d2l_nli.machinery.loop`.
    """
    from .machinery.distributed import make_trainer

    trainer = trainer or make_trainer(net.collect_params(), 'adam', {'learning_rate': lr},
                                      kvstore or 'device')
    run = _pretraining_run(trainer, kvstore, checkpoints, len(train_iter), num_steps, devices,
                           animator)
    log_every = log_every or max(1, num_steps // 50)
    learning_step = pretraining_step(net, loss, vocab_size, fused_mlm)
    step, num_pairs, window, curve = 0, 0, [], []
    totals = Accumulator(3)  # MLM loss, NSP loss, steps (of the last logged window)
    state = run.restore(net, trainer, train_iter, lambda s: f'step {s["step"]} of {num_steps}')
    if state:
        step, num_pairs, curve = state['step'], state['num_pairs'], state.get('held_out', [])
        window, totals.data = [tuple(w) for w in state['window']], state['totals']
    run.go_on()
    while step < num_steps:
        pass_no, position = getattr(train_iter, 'position', (0, 0))
        for batch in train_iter:  # a PretrainingBatch: tokens, ..., nsp_labels
            if step == num_steps:
                break
            X_shards, y_shards = split_batch_multi_inputs(batch.inputs, batch.nsp_labels,
                                                          devices)
            mlm_ls, nsp_ls = learning_step(batch, X_shards, y_shards, run.num_workers)
            trainer.step(1)  # the losses are means over the whole batch
            window.append((sum(mlm_ls), sum(nsp_ls)))
            step, position, num_pairs = step + 1, position + 1, num_pairs + len(batch.nsp_labels)
            if progress:
                progress(step)
            if step % log_every == 0 or step == num_steps:
                totals.data, window = _log_window(run, window, step), []
            if held_out is not None and (step % (held_out_every or num_steps) == 0
                                         or step == num_steps):
                curve.append(_held_out_point(run, net, held_out, vocab_size, step))
            if run.save_due(step, last=step == num_steps):
                window = _checked_window(run, window, step)
                run.save(step, net, trainer, {
                    'num_pairs': num_pairs, 'window': window, 'totals': totals.data,
                    'held_out': curve, 'position': [pass_no, position]})
        if step == 0:
            raise ValueError('train_iter yielded no batch: nothing to train on')
    npx.waitall()
    run.pause()
    return _pretraining_report(run, totals, num_pairs, step,
                               curve if held_out is not None else None)


def _pretraining_report(run, totals, num_pairs, step, curve):
    """``train_bert``'s metrics dict, printed by rank 0."""
    metrics = {'mlm_loss': totals[0], 'nsp_loss': totals[1],
               'pairs_per_sec': num_pairs * run.num_workers / max(run.seconds, 1e-9),
               'steps': step, 'seconds': run.seconds,
               'devices': [str(d) for d in run.devices]}
    if curve is not None:
        metrics['held_out'] = curve
    run.report([f"MLM loss {metrics['mlm_loss']:.3f}, NSP loss {metrics['nsp_loss']:.3f}",
                f"{metrics['pairs_per_sec']:.1f} sentence pairs/sec on {{where}}"],
               work=('pretraining', step))
    return metrics


def pretraining_plot(num_steps):
    """``train_bert``'s plot: both losses by step."""
    from .plot import Animator

    return Animator(xlabel='step', ylabel='loss', xlim=[1, num_steps], legend=['mlm', 'nsp'])


def finetuning_plot(num_epochs, test_name='test'):
    """``train_ch13``'s plot: loss and accuracies by epoch.

    No fixed y-range (the book's is [0, 1]): a training loss above 1 stays in view.
    """
    from .plot import Animator

    return Animator(xlabel='epoch', xlim=[1, num_epochs],
                    legend=['train loss', 'train acc', f'{test_name} acc'])


def _pretraining_run(trainer, kvstore, checkpoints, num_batches, num_steps, devices, animator):
    """The :class:`~d2l_nli.machinery.loop.TrainingRun` of ``train_bert``, with its default plot."""
    from .machinery.loop import TrainingRun

    animator = animator or pretraining_plot(num_steps)
    return TrainingRun(trainer, kvstore, checkpoints, [num_batches, num_steps], devices,
                       animator)


def pretraining_step(net, loss, vocab_size, fused_mlm=True):
    """``train_bert``'s learning step: the fused MLM step where it applies
    (:mod:`d2l_nli.fused_mlm`), else the chapter's. Call it as
    ``step(batch, X_shards, y_shards, num_workers)``, then ``trainer.step(1)``."""
    if fused_mlm and FusedPretrainingStep.applies(net, loss):
        return FusedPretrainingStep(net, loss)
    return ChapterPretrainingStep(net, loss, vocab_size)


def _log_window(run, window, step):
    """Plot the mean losses of the steps since the last point; one host sync per point."""
    mlm = sum(_item(m) for m, _ in window) / len(window)
    nsp = sum(_item(n) for _, n in window) / len(window)
    run.check({'MLM loss': mlm, 'NSP loss': nsp}, step)
    run.animator.add(step, (mlm, nsp))
    return [mlm, nsp, len(window)]


def _checked_window(run, window, step):
    """The unplotted steps' losses as floats (for a checkpoint), each checked."""
    window = [(_item(m), _item(n)) for m, n in window]
    for m, n in window:
        run.check({'MLM loss': m, 'NSP loss': n}, step)
    return window


def _held_out_point(run, net, held_out, vocab_size, step):
    """Held-out losses after ``step``, measured off the clock."""
    npx.waitall()  # the steps so far are training time, not evaluation
    run.pause()
    point = dict(step=step, seconds=run.seconds,
                 **evaluate_bert_losses(net, held_out, vocab_size, run.devices))
    run.go_on()
    return point


def _add_pending(run, metric, pending, step):
    """Add the unsynced batches' loss sums and correct counts to ``metric``; check the loss."""
    for l_sum, correct in pending:
        metric.add(l_sum.item(), correct.item(), 0)
    run.check({'training loss': metric[0] / metric[2]}, step)
    return []


def train_batch_ch13(net, X, y, loss, trainer, devices, split_f=split_batch_multi_inputs,
                     num_workers=1):
    """One data-parallel step; returns (loss sum, number correct) as unsynced scalars.

    With ``num_workers`` > 1 (a distributed kvstore), the step covers every
    worker's batch of the same size as ``y``.
    """
    X_shards, y_shards = split_f(X, y, devices)
    with autograd.record():
        preds = [net(X_shard) for X_shard in X_shards]
        ls = [loss(pred, y_shard) for pred, y_shard in zip(preds, y_shards)]
        # As in train_bert: the mean over the batch (over all workers'
        # batches, across machines), then step(1).
        means = [shard_loss / (len(y) * num_workers) for shard_loss in ls]
    for shard_mean in means:
        shard_mean.backward()
    trainer.step(1)
    return (sum(shard_loss.sum().as_in_ctx(devices[0]) for shard_loss in ls),
            sum(accuracy(p, s).as_in_ctx(devices[0]) for p, s in zip(preds, y_shards)))


def train_ch13(net, train_iter, test_iter, loss, trainer, num_epochs, devices=None,
               split_f=split_batch_multi_inputs, *, animator=None, progress=None,
               checkpoints=None, kvstore=None, test_name='test'):
    """Train a classifier for ``num_epochs``; print and return loss and accuracies.

    Prints ``loss x, train acc y, test acc z`` and ``N examples/sec on
    [devices]``, and plots them by epoch on ``animator``; ``test_name``
    names ``test_iter``'s split there (``'dev'`` where SNLI's dev split
    stands in for test; the metrics key stays ``'test_acc'``).
    ``progress(step)`` is called after each step. ``checkpoints`` (resuming,
    saving) and a distributed ``kvstore``: :mod:`d2l_nli.machinery.loop`.
    """
    devices = devices or try_all_gpus()
    num_batches = len(train_iter)
    run = _finetuning_run(trainer, kvstore, checkpoints, num_batches, num_epochs, devices,
                          animator, test_name)
    every_point = max(1, num_batches // min(5, num_batches))  # 5 points per epoch
    metric = Accumulator(3)  # loss sum, correct, examples (of the current epoch)
    step, num_examples, first_epoch, first_batch, test_acc = 0, 0, 0, 0, None
    state = run.restore(net, trainer, train_iter,
                        lambda s: f'epoch {s["epoch"] + 1}, batch {s["batch"]}')
    if state:
        step, num_examples, metric.data = state['step'], state['num_examples'], state['metric']
        first_epoch, first_batch, test_acc = state['epoch'], state['batch'], state['test_acc']

    def save(position, epoch, batch):  # the loop's own state; the clock and plot are added
        run.save(step, net, trainer, {'position': position, 'epoch': epoch, 'batch': batch,
                                      'metric': metric.data, 'test_acc': test_acc,
                                      'num_examples': num_examples})

    for epoch in range(first_epoch, num_epochs):
        start = first_batch if epoch == first_epoch else 0
        if start == 0:
            metric.reset()
        pending, pass_no = [], getattr(train_iter, 'position', (0, 0))[0]
        run.go_on()  # only the training batches are timed, not the evaluation
        for i, (features, labels) in enumerate(train_iter, start=start):
            pending.append(train_batch_ch13(net, features, labels, loss, trainer, devices,
                                            split_f, run.num_workers))
            metric.add(0, 0, len(labels))
            num_examples, step = num_examples + len(labels), step + 1
            if progress:
                progress(step)
            point = (i + 1) % every_point == 0 or i + 1 == num_batches
            mid_save = run.save_due(step) and i + 1 < num_batches
            if point or mid_save:  # one host sync per plotted point or save
                pending = _add_pending(run, metric, pending, step)
            if point:
                run.animator.add(epoch + (i + 1) / num_batches,
                                 (metric[0] / metric[2], metric[1] / metric[2], None))
            if mid_save:
                save([pass_no, i + 1], epoch, i + 1)
        run.pause()  # the last point's .item() waited for the epoch's work
        test_acc = evaluate_accuracy_gpus(net, test_iter, split_f, devices)
        run.animator.add(epoch + 1, (None, None, test_acc))
        if checkpoints:
            save([pass_no + 1, 0], epoch + 1, 0)
    return _finetuning_report(run, metric, test_acc, num_examples, num_epochs, test_name)


def _finetuning_run(trainer, kvstore, checkpoints, num_batches, num_epochs, devices,
                    animator, test_name):
    """The :class:`~d2l_nli.machinery.loop.TrainingRun` of ``train_ch13``, with its default plot."""
    from .machinery.loop import TrainingRun

    if num_batches == 0:
        raise ValueError('train_iter has no batch: nothing to train on')
    animator = animator or finetuning_plot(num_epochs, test_name)
    return TrainingRun(trainer, kvstore, checkpoints, [num_batches, num_epochs], devices,
                       animator)


def _finetuning_report(run, metric, test_acc, num_examples, num_epochs, test_name):
    """``train_ch13``'s metrics dict, printed by rank 0."""
    examples = max(metric[2], 1)  # this worker's share of the last epoch
    metrics = {'train_loss': metric[0] / examples, 'train_acc': metric[1] / examples,
               'test_acc': test_acc, 'seconds': run.seconds, 'epochs': num_epochs,
               'examples_per_sec': num_examples * run.num_workers / max(run.seconds, 1e-9),
               'devices': [str(d) for d in run.devices]}
    run.report([f"loss {metrics['train_loss']:.3f}, train acc {metrics['train_acc']:.3f}, "
                f"{test_name} acc {metrics['test_acc']:.3f}",
                f"{metrics['examples_per_sec']:.1f} examples/sec on {{where}}"],
               work=('fine-tuning', num_epochs, num_examples))
    return metrics
