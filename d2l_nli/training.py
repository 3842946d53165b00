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
import time

from mxnet import autograd, gluon, np, npx

from .devices import describe_devices, try_all_gpus
from .fused_mlm import FusedPretrainingStep

__all__ = ['pretraining_trainer', 'finetuning_trainer', 'evaluate_bert_losses', 'Timer',
           'Accumulator', 'split_batch_multi_inputs', 'accuracy', 'ChapterPretrainingStep',
           'evaluate_accuracy_gpus', 'train_bert', 'train_batch_ch13', 'train_ch13']


class Timer:
    """Wall-clock timer over several intervals."""

    def __init__(self):
        self.times = []
        self.start()

    def start(self):
        self.tik = time.perf_counter()

    def stop(self):
        self.times.append(time.perf_counter() - self.tik)
        return self.times[-1]

    def sum(self):
        return sum(self.times)


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
    from .distributed import make_trainer
    return make_trainer(params, 'adam', options, kvstore)


def finetuning_trainer(params, lr, num_steps, warmup_fraction=0.0, kvstore='device'):
    """Adam for fine-tuning: the chapter's constant ``lr``, or warm-up and decay.

    With ``warmup_fraction`` > 0 (the original BERT's recipe, 0.1) the rate
    rises linearly from 0 over that fraction of the ``num_steps`` steps, then
    falls linearly to 0: the new head's first, large gradients then cannot
    wreck what pretraining put into the encoder.
    """
    import mxnet as mx

    from .distributed import make_trainer

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
    (``step(features, X_shards, y_shards, num_workers)`` leaves the
    gradients on the parameters and returns the per-device MLM and NSP
    losses, unsynced), which computes the same thing faster.
    """

    def __init__(self, net, loss, vocab_size):
        self.net, self.loss, self.vocab_size = net, loss, vocab_size

    def __call__(self, features, X_shards, y_shards, num_workers=1):
        # The MLM normalizer stays an array: reading it here would wait for
        # the previous step to finish (a host sync per batch).
        mlm_total = np.maximum(features[4].sum(), 1e-8)
        shards = [x + (y,) for x, y in zip(X_shards, y_shards)]
        shard_totals = [mlm_total.as_in_ctx(y.ctx) for y in y_shards]  # copy outside record
        with autograd.record():
            mlm_ls, nsp_ls = bert_losses(self.net, self.loss, self.vocab_size, shards,
                                          shard_totals, len(features[0]))
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
    devices = devices or try_all_gpus()
    loss = gluon.loss.SoftmaxCELoss()
    mlm_sum, nsp_sum, pred_counts, num_pairs = [], [], [], 0
    for batch in data_iter:
        *features, nsp_y = batch
        pred_counts.append(features[4].sum())  # read at the end: no sync per batch
        num_pairs += len(nsp_y)
        X_shards, y_shards = split_batch_multi_inputs(features, nsp_y, devices)
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


def _workers(trainer, kvstore, checkpoints, plan):
    """``(rank, num_workers)`` of this process; across machines, checks the workers agree.

    ``plan``: numbers every worker must share (batches per pass, steps...),
    else one worker would wait forever for the others at the end.
    """
    from .distributed import DistributedError, check_same, trainer_kvstore, worker_info

    kvstore = trainer_kvstore(trainer) if kvstore is None else kvstore
    rank, num_workers = worker_info(kvstore)
    if num_workers > 1:
        if checkpoints is not None:
            raise DistributedError(
                'training checkpoints cannot be saved with a distributed kvstore: the '
                "optimizer's state lives on the parameter servers. Train without them "
                '(the final model is saved by rank 0).')
        check_same(kvstore, 'batches per pass and the length of the run', plan)
    return rank, num_workers


def _where(devices, num_workers):
    where = describe_devices(devices)
    return where if num_workers == 1 else f'{num_workers} workers, each on {where}'


def train_bert(train_iter, net, loss, vocab_size, devices, num_steps, *, lr=1e-3,
               trainer=None, animator=None, log_every=None, progress=None, checkpoints=None,
               kvstore=None, held_out=None, held_out_every=None, fused_mlm=True):
    """Pretrain ``net`` (a ``BERTModel``) for ``num_steps`` minibatches.

    Prints ``MLM loss x, NSP loss y`` and ``N sentence pairs/sec on
    [devices]`` and returns them as a dict. ``trainer`` defaults to Adam
    with ``lr``; ``animator`` (see :class:`d2l_nli.Animator`) receives both
    losses every ``log_every`` steps; ``progress`` is called as
    ``progress(step)`` after each step (e.g. a tqdm bar's update).
    ``checkpoints`` (:class:`d2l_nli.TrainingCheckpoints`) saves the whole
    state every few steps and at the end, and resumes from it. A NaN or
    infinite loss stops the run with :class:`d2l_nli.TrainingDivergedError`.
    ``kvstore`` (default: the trainer's, else ``'device'``): with a
    distributed kvstore each worker passes its own shard as ``train_iter``
    and the gradients of all workers' batches are averaged; only rank 0
    prints and plots. The printed losses are rank 0's. ``held_out`` (an
    iterator like ``train_iter``, e.g. of ``wiki.valid.tokens``) is
    evaluated every ``held_out_every`` steps and at the end, off the clock;
    the returned ``metrics['held_out']`` lists ``{'step', 'seconds',
    'mlm_loss', 'nsp_loss'}`` (seconds of training so far). ``fused_mlm``
    (default) computes the MLM output layer's loss and gradients in one
    pass over its logits (:mod:`d2l_nli.fused_mlm`: the same results,
    ~1.6x faster steps at the chapter's settings and less memory; it
    hybridizes ``net`` with static memory) whenever ``loss`` is the
    chapter's plain softmax cross-entropy; ``False`` runs the chapter's
    autograd path.
    """
    from .distributed import make_trainer
    from .plot import Animator
    from .resume import check_finite, curve_of, replay_curve, restore_for_loop

    trainer = trainer or make_trainer(net.collect_params(), 'adam', {'learning_rate': lr},
                                      kvstore or 'device')
    rank, num_workers = _workers(trainer, kvstore, checkpoints, [len(train_iter), num_steps])
    if animator is None:
        animator = Animator(xlabel='step', ylabel='loss', xlim=[1, num_steps],
                            legend=['mlm', 'nsp'])
    log_every = log_every or max(1, num_steps // 50)
    learning_step = (FusedPretrainingStep(net, loss)
                     if fused_mlm and FusedPretrainingStep.applies(net, loss)
                     else ChapterPretrainingStep(net, loss, vocab_size))
    step, num_pairs, seconds, window, curve = 0, 0, 0.0, [], []
    totals = Accumulator(3)  # MLM loss, NSP loss, steps (of the last logged window)
    state = restore_for_loop(checkpoints, net, trainer, train_iter)
    if state:
        step, num_pairs, seconds = state['step'], state['num_pairs'], state['seconds']
        curve = state.get('held_out', [])
        window, totals.data = [tuple(w) for w in state['window']], state['totals']
        replay_curve(animator, state['curve'])
        train_iter.seek(*state['position'])
        print(f'resuming at step {step} of {num_steps} from {checkpoints.saved}')
    timer = Timer()
    while step < num_steps:
        pass_no, position = getattr(train_iter, 'position', (0, 0))
        for batch in train_iter:
            if step == num_steps:
                break
            *features, nsp_y = batch
            batch_size = len(nsp_y)
            X_shards, y_shards = split_batch_multi_inputs(features, nsp_y, devices)
            mlm_ls, nsp_ls = learning_step(features, X_shards, y_shards, num_workers)
            trainer.step(1)  # losses are already means over the whole batch
            window.append((sum(mlm_ls), sum(nsp_ls)))
            step += 1
            position += 1
            num_pairs += batch_size
            if progress:
                progress(step)
            if step % log_every == 0 or step == num_steps:
                # One host sync per logged point, not per step.
                mlm = sum(_item(m) for m, _ in window) / len(window)
                nsp = sum(_item(n) for _, n in window) / len(window)
                check_finite({'MLM loss': mlm, 'NSP loss': nsp}, step, checkpoints)
                totals.data = [mlm, nsp, len(window)]
                animator.add(step, (mlm, nsp))
                window = []
            if held_out is not None and (step % (held_out_every or num_steps) == 0
                                         or step == num_steps):
                npx.waitall()  # the steps so far are training time, not evaluation
                seconds += timer.stop()
                curve.append(dict(step=step, seconds=seconds,
                                  **evaluate_bert_losses(net, held_out, vocab_size, devices)))
                timer.start()
            if checkpoints and (checkpoints.due(step) or step == num_steps):
                window = [(_item(m), _item(n)) for m, n in window]
                for m, n in window:
                    check_finite({'MLM loss': m, 'NSP loss': n}, step, checkpoints)
                seconds += timer.stop()
                checkpoints.save(step, net, trainer, {
                    'num_pairs': num_pairs, 'seconds': seconds, 'window': window,
                    'totals': totals.data, 'curve': curve_of(animator), 'held_out': curve,
                    'position': [pass_no, position]})
                checkpoints.reseed(step)
                timer.start()
        if step == 0:
            raise ValueError('train_iter yielded no batch: nothing to train on')
    npx.waitall()
    seconds += timer.stop()
    metrics = {'mlm_loss': totals[0], 'nsp_loss': totals[1],
               'pairs_per_sec': num_pairs * num_workers / max(seconds, 1e-9), 'steps': step,
               'seconds': seconds, 'devices': [str(d) for d in devices]}
    if held_out is not None:
        metrics['held_out'] = curve
    if rank == 0:
        animator.show()
        print(f"MLM loss {metrics['mlm_loss']:.3f}, NSP loss {metrics['nsp_loss']:.3f}")
        print(f"{metrics['pairs_per_sec']:.1f} sentence pairs/sec on "
              f"{_where(devices, num_workers)}")
    return metrics


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
        if num_workers > 1:
            # The servers keep the gradient scale of the first step, so the
            # mean over all workers' examples is taken here, for step(1).
            scaled = [shard_loss / (len(y) * num_workers) for shard_loss in ls]
    for shard_loss in (scaled if num_workers > 1 else ls):
        shard_loss.backward()
    # step(batch size): the summed per-example gradients become a batch mean.
    trainer.step(1 if num_workers > 1 else len(y))
    return (sum(shard_loss.sum().as_in_ctx(devices[0]) for shard_loss in ls),
            sum(accuracy(p, s).as_in_ctx(devices[0]) for p, s in zip(preds, y_shards)))


def train_ch13(net, train_iter, test_iter, loss, trainer, num_epochs, devices=None,
               split_f=split_batch_multi_inputs, *, animator=None, progress=None,
               checkpoints=None, kvstore=None, test_name='test'):
    """Train a classifier for ``num_epochs``; print and return loss and accuracies.

    Prints ``loss x, train acc y, test acc z`` and ``N examples/sec on
    [devices]``; plots them by epoch on ``animator`` (created if None).
    ``test_name`` names the split of ``test_iter`` in the print-out and the
    plot (``'dev'`` where SNLI's dev split stands in for test); the metrics
    key stays ``'test_acc'``.
    ``progress`` is called after each batch. ``checkpoints``
    (:class:`d2l_nli.TrainingCheckpoints`) saves the whole state every few
    steps and after each epoch, and resumes from it. A NaN or infinite loss
    stops the run with :class:`d2l_nli.TrainingDivergedError`. ``kvstore``
    (default: the trainer's) with a distributed kvstore: each worker
    passes its own shard as ``train_iter``; only rank 0 prints and plots.
    """
    from .plot import Animator
    from .resume import check_finite, curve_of, replay_curve, restore_for_loop

    devices = devices or try_all_gpus()
    num_batches = len(train_iter)
    if num_batches == 0:
        raise ValueError('train_iter has no batch: nothing to train on')
    rank, num_workers = _workers(trainer, kvstore, checkpoints, [num_batches, num_epochs])
    if animator is None:
        # No fixed y-range: a training loss above 1 stays in view.
        animator = Animator(xlabel='epoch', xlim=[1, num_epochs],
                            legend=['train loss', 'train acc', f'{test_name} acc'])
    points_per_epoch = min(5, num_batches)
    every_point = max(1, num_batches // points_per_epoch)
    # Only the training batches are timed, not the evaluation.
    timer, num_examples, seconds, step = Timer(), 0, 0.0, 0
    metric = Accumulator(3)  # loss sum, correct, examples (of the current epoch)
    first_epoch, first_batch, test_acc = 0, 0, None
    state = restore_for_loop(checkpoints, net, trainer, train_iter)
    if state:
        step, num_examples, seconds = state['step'], state['num_examples'], state['seconds']
        first_epoch, first_batch = state['epoch'], state['batch']
        metric.data, test_acc = state['metric'], state['test_acc']
        replay_curve(animator, state['curve'])
        train_iter.seek(*state['position'])
        print(f'resuming at epoch {first_epoch + 1}, batch {first_batch} from '
              f'{checkpoints.saved}')

    def save(position, epoch, batch):
        checkpoints.save(step, net, trainer, {
            'position': position, 'epoch': epoch, 'batch': batch, 'metric': metric.data,
            'test_acc': test_acc, 'num_examples': num_examples, 'seconds': seconds,
            'curve': curve_of(animator)})
        checkpoints.reseed(step)

    for epoch in range(first_epoch, num_epochs):
        start = first_batch if epoch == first_epoch else 0
        if start == 0:
            metric.reset()
        pending = []
        pass_no = getattr(train_iter, 'position', (0, 0))[0]
        timer.start()
        for i, (features, labels) in enumerate(train_iter, start=start):
            pending.append(train_batch_ch13(net, features, labels, loss, trainer, devices,
                                            split_f, num_workers))
            metric.add(0, 0, len(labels))
            num_examples += len(labels)
            step += 1
            if progress:
                progress(1)
            point = (i + 1) % every_point == 0 or i + 1 == num_batches
            mid_save = checkpoints and checkpoints.due(step) and i + 1 < num_batches
            if point or mid_save:
                for l_sum, correct in pending:  # one sync per plotted point or save
                    metric.add(l_sum.item(), correct.item(), 0)
                pending = []
                check_finite({'training loss': metric[0] / metric[2]}, step, checkpoints)
            if point:
                animator.add(epoch + (i + 1) / num_batches,
                             (metric[0] / metric[2], metric[1] / metric[2], None))
            if mid_save:
                seconds += timer.stop()
                save([pass_no, i + 1], epoch, i + 1)
                timer.start()
        seconds += timer.stop()  # the last point's .item() waited for the epoch's work
        test_acc = evaluate_accuracy_gpus(net, test_iter, split_f, devices)
        animator.add(epoch + 1, (None, None, test_acc))
        if checkpoints:
            save([pass_no + 1, 0], epoch + 1, 0)
    if rank == 0:
        animator.show()
    examples = max(metric[2], 1)  # this worker's share of the last epoch
    num_examples *= num_workers  # the speed of all workers together
    metrics = {'train_loss': metric[0] / examples, 'train_acc': metric[1] / examples,
               'test_acc': test_acc, 'examples_per_sec': num_examples / max(seconds, 1e-9),
               'seconds': seconds, 'epochs': num_epochs,
               'devices': [str(d) for d in devices]}
    if rank == 0:
        print(f"loss {metrics['train_loss']:.3f}, train acc {metrics['train_acc']:.3f}, "
              f"{test_name} acc {metrics['test_acc']:.3f}")
        print(f"{metrics['examples_per_sec']:.1f} examples/sec on {_where(devices, num_workers)}")
    return metrics
