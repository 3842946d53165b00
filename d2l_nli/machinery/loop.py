"""The scaffolding around the training loops, so that each loop shows its learning step.

``train_bert`` and ``train_ch13`` (:mod:`d2l_nli.training`) are the
chapter's loops. What they share besides the learning step lives here, in
:class:`TrainingRun`:

* across machines, checking that the workers agree on the length of the
  run (else one would wait forever for the others) and that no training
  checkpoints are asked for;
* resuming from a :class:`~d2l_nli.TrainingCheckpoints` folder (the model,
  the trainer, the plot and the loop's own counters) and saving to it;
* the NaN check, which stops a diverged run with a message that names the
  last good checkpoint;
* the clock, which counts training time only (not evaluation, not saving);
* the last lines, printed by rank 0 only, with the plot (and, under a
  time budget, the planned minutes beside the actual ones).
"""
import time

from .devices import describe_devices

__all__ = ['TrainingRun', 'Timer', 'set_budget', 'planned_vs_actual']

# A time budget's step times, set by d2l_nli.machinery.budget.fit_budget:
# each run's last lines then show its planned minutes beside the actual ones.
_budget = {}


def set_budget(minutes, pretrain_step, finetune_pair, exercise_pair, num_epochs,
               exercise_epochs):
    """Remember the plan's seconds per step and per pair for :func:`planned_vs_actual`."""
    _budget.update(minutes=minutes, pretrain_step=pretrain_step, finetune_pair=finetune_pair,
                   exercise_pair=exercise_pair, num_epochs=num_epochs,
                   exercise_epochs=exercise_epochs)


def planned_vs_actual(work, seconds):
    """A line comparing a training run's planned minutes with ``seconds``; None without a plan.

    ``work`` is ``('pretraining', steps)`` or ``('fine-tuning', epochs, pairs)``;
    a fine-tuning run of the exercise's epochs (not the profile's) is
    priced at notebook 4's shorter pairs. Only training time counts, as on
    the run's own clock (not evaluation).
    """
    if not _budget:
        return None
    if work[0] == 'pretraining':
        planned = work[1] * _budget['pretrain_step']
    else:
        exercise = work[1] == _budget['exercise_epochs'] != _budget['num_epochs']
        planned = work[2] * _budget['exercise_pair' if exercise else 'finetune_pair']
    return (f'budget: planned {planned / 60:.1f} min of training, took {seconds / 60:.1f} min '
            f'(D2L_NLI_BUDGET_MINUTES={_budget["minutes"]:g})')


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


class TrainingRun:
    """One run of a training loop: workers, resuming, saving, NaN checks, clock, report.

    ``plan``: numbers every distributed worker must share (batches per
    pass, steps, epochs). ``animator`` receives the loop's points and is
    saved with each checkpoint.
    """

    def __init__(self, trainer, kvstore, checkpoints, plan, devices, animator):
        from .runtime import training_starts

        training_starts()
        self.rank, self.num_workers = _workers(trainer, kvstore, checkpoints, plan)
        self.checkpoints, self.devices, self.animator = checkpoints, devices, animator
        self.timer, self.seconds, self.running = Timer(), 0.0, False

    def restore(self, net, trainer, train_iter, where):
        """The saved loop state (None: a fresh start), after loading net, trainer and plot.

        ``where(state)`` says where the run resumes, for the message.
        """
        from .resume import replay_curve, restore_for_loop

        state = restore_for_loop(self.checkpoints, net, trainer, train_iter)
        if state:
            self.seconds = state['seconds']
            replay_curve(self.animator, state['curve'])
            train_iter.seek(*state['position'])
            print(f'resuming at {where(state)} from {self.checkpoints.saved}')
        return state

    def check(self, losses, step):
        """Stop with :class:`~d2l_nli.TrainingDivergedError` if a loss is NaN or infinite."""
        from .resume import check_finite

        check_finite(losses, step, self.checkpoints)

    def save_due(self, step, last=False):
        """Whether a checkpoint is to be saved after ``step`` (``last``: the run's end)."""
        return bool(self.checkpoints) and (self.checkpoints.due(step) or last)

    def save(self, step, net, trainer, state):
        """Save the whole state after ``step``: the loop's ``state`` plus clock and plot.

        Saving is off the clock.
        """
        from .resume import curve_of

        running = self.running
        self.pause()
        self.checkpoints.save(step, net, trainer, dict(
            state, seconds=self.seconds, curve=curve_of(self.animator)))
        self.checkpoints.reseed(step)
        if running:
            self.go_on()

    def go_on(self):
        """Start (or restart) the clock: what follows is training time."""
        self.timer.start()
        self.running = True

    def pause(self):
        """Stop the clock, adding the time since :meth:`go_on` to ``seconds``."""
        if self.running:
            self.seconds += self.timer.stop()
            self.running = False

    def report(self, lines, work=None):
        """Rank 0 shows the plot and prints ``lines``; ``{where}`` names the devices.

        ``work`` (what the run did) adds the planned minutes under a time
        budget (:func:`planned_vs_actual`).
        """
        if self.rank != 0:
            return
        budget = planned_vs_actual(work, self.seconds) if work else None
        lines = list(lines) + ([budget] if budget else [])
        self.animator.show()
        where = describe_devices(self.devices)
        if self.num_workers > 1:
            where = f'{self.num_workers} workers, each on {where}'
        for line in lines:
            print(line.replace('{where}', where))


def _workers(trainer, kvstore, checkpoints, plan):
    """``(rank, num_workers)`` of this process; across machines, checks the workers agree."""
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
