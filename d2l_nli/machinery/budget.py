"""Minutes per notebook on this machine, and a time budget for the small profile.

:func:`notebook_seconds` counts each notebook's work from a profile's own
settings (steps, epochs, pairs, evaluations) and the data's sizes, and
prices it with the step times measured here (:mod:`.steptimes`). ``python
-m d2l_nli doctor`` prints it per notebook.

A teacher with a lesson of fixed length sets ``D2L_NLI_BUDGET_MINUTES`` (the
minutes that the training cells of notebooks 1, 3, 4 and 5 may take
together). Each notebook's first cell then calls :func:`fit_budget`, which
sizes the small profile for it (:func:`plan_budget`): pretraining gets the
time that fine-tuning leaves, between 5/8 and three times the profile's
steps; below 5/8, the evaluation pairs (SNLI's and the held-out text's)
shrink, to a quarter, then the fine-tuning pairs, to half; below that the
budget is refused with the minimum it needs. The first notebook to run
measures and saves the plan in the runs folder; the others read it, so all
four run the same plan. Each training run then prints its planned minutes
beside the ones it took.
"""
import dataclasses
import json
import math
import os
import time

from ..errors import D2LNLIError
from .loop import set_budget
from .steptimes import DataShape, StepTimes

__all__ = ['NOTEBOOKS', 'Plan', 'notebook_seconds', 'plan_budget', 'budget_minutes',
           'fit_budget', 'plan_file', 'save_measurements', 'measure_here']

# The notebooks, by number, with what they do that costs time.
NOTEBOOKS = {1: '01_pretraining_bert', 2: '02_snli_dataset_for_bert', 3: '03_finetuning_bert',
             4: '04_exercise_truncation', 5: '05_what_bert_learned'}
ENV = 'D2L_NLI_BUDGET_MINUTES'


def _evaluations(steps, every):
    """How often ``train_bert`` evaluates the held-out text: every ``every`` steps, and last."""
    return steps // every + (steps % every != 0)


def _at_most(size, available):
    return available if size is None else min(size, available)


def notebook_seconds(profile, shape: DataShape, times: StepTimes):
    """``{notebook number: (training cells' seconds, whole notebook's seconds)}``.

    The work is the profile's: notebook 1 pretrains the chapter's settings
    for ``chapter_steps`` and the profile's for its steps, evaluating the
    held-out text as it goes; notebook 3 fine-tunes twice (pretrained and
    random BERT), notebook 4 twice at the exercise's ``max_len``, each
    evaluating after every epoch; notebook 5 fits the bag-of-words baselines
    and runs both classifiers and their attention over the evaluation pairs.
    """
    p, f = profile.pretrain, profile.finetune
    held_out = _at_most(profile.held_out_pairs, shape.held_out_pairs) * times.held_out_pair
    chapter = profile.chapter_steps
    pretraining = ((p.num_steps + chapter) * times.pretrain_step
                   + (_evaluations(p.num_steps, profile.held_out_every)
                      + _evaluations(chapter, max(1, chapter // 5))) * held_out)
    pairs = _at_most(f.train_size, shape.train_pairs)
    evals = _at_most(f.test_size, shape.eval_pairs)
    classify = evals * times.eval_pair
    finetuning = f.num_epochs * (pairs * times.finetune_pair + classify)
    exercise = profile.exercise_epochs * (
        pairs * times.exercise_pair + classify * shape.exercise_len / shape.eval_len)
    baselines = (min(pairs, profile.baseline_train_size or pairs) * times.bow_pair
                 + evals * times.bow_eval_pair)
    wiki = shape.wiki_train_bytes * shape.wiki_byte_s  # examples, once the vocabulary is known
    snli = (pairs + evals) * shape.snli_pair_s
    start = times.startup
    return {
        1: (pretraining, start + shape.wiki_vocab_s + 2 * wiki + pretraining),
        2: (0.0, start + shape.wiki_vocab_s + wiki
            + 2 * (shape.train_pairs + shape.eval_pairs) * shape.snli_pair_s),
        3: (2 * finetuning, start + snli + 2 * finetuning + classify),
        4: (2 * exercise, start + 2 * snli + 2 * exercise),
        5: (baselines, start + snli + baselines
            + 2 * evals * (times.predict_pair + times.attention_pair)),
    }


@dataclasses.dataclass(frozen=True)
class Plan:
    """A budget's plan: the sizes chosen, why, and the training seconds per notebook."""
    minutes: float
    steps: int
    chapter_steps: int
    train_size: int
    test_size: int
    held_out_pairs: int
    planned: dict   # notebook number -> training seconds
    reason: str


# The smallest run that still shows the chapter, lever by lever, measured on
# the real data (BENCHMARKS.md, "Issue 18"): 5/8 of the profile's
# pretraining steps (2,500 of 4,000: held-out NSP loss 0.563; a plan of
# about 2,000 ended at 0.622, above notebook 1's check of 0.6); a quarter
# of the evaluation pairs (SNLI's and the held-out text's: the accuracies
# get noisier, the training is the same); half the fine-tuning pairs (the
# bag-of-words baseline of both sentences: 0.630 on dev from 5,000 pairs,
# 0.581 from 2,500, below notebook 5's floor of 0.6).
LEAST_STEPS, LEAST_EVAL, LEAST_TRAIN, MOST_STEPS = 0.625, 0.25, 0.5, 3.0


def _sized(profile, shape, steps, evals=1.0, train=1.0):
    """``profile`` with ``steps`` pretraining steps (the chapter's run and the held-out
    evaluations in proportion), ``evals`` of its evaluation and held-out pairs and
    ``train`` of its fine-tuning pairs (to the hundred)."""
    base, f = profile.pretrain.num_steps, profile.finetune

    def part(size, available, share):
        n = _at_most(size, available)
        return n if share >= 1 else max(100, int(n * share) // 100 * 100)
    return dataclasses.replace(
        profile, pretrain=dataclasses.replace(profile.pretrain, num_steps=steps),
        chapter_steps=max(1, round(profile.chapter_steps * steps / base)),
        held_out_every=max(1, round(profile.held_out_every * steps / base)),
        held_out_pairs=part(profile.held_out_pairs, shape.held_out_pairs, evals),
        finetune=dataclasses.replace(
            f, train_size=part(f.train_size, shape.train_pairs, train),
            test_size=part(f.test_size, shape.eval_pairs, evals)))


def _largest(low, high, fits, unit):
    """The largest multiple of ``unit`` in [low, high] for which ``fits`` holds (else ``low``)."""
    lo, hi = math.ceil(low / unit), int(high // unit)
    best = low
    while lo <= hi:
        mid = (lo + hi) // 2
        if fits(mid * unit):
            best, lo = mid * unit, mid + 1
        else:
            hi = mid - 1
    return best


def _levers(profile, shape, times, budget):
    """``(steps, evals, train)``: each lever in turn, as little as the budget needs."""
    steps0 = profile.pretrain.num_steps
    least = max(1, int(steps0 * LEAST_STEPS))

    def fits(*sizes):
        sized = _sized(profile, shape, *sizes)
        return sum(t for t, _ in notebook_seconds(sized, shape, times).values()) <= budget
    unit = 50 if steps0 >= 500 else 10
    if fits(least):
        return _largest(least, MOST_STEPS * steps0, fits, unit), 1.0, 1.0
    if fits(least, LEAST_EVAL):
        share = _largest(LEAST_EVAL * 100, 100, lambda k: fits(least, k / 100), 1)
        return least, share / 100, 1.0
    if fits(least, LEAST_EVAL, LEAST_TRAIN):
        share = _largest(LEAST_TRAIN * 100, 100,
                         lambda k: fits(least, LEAST_EVAL, k / 100), 1)
        return least, LEAST_EVAL, share / 100
    return None


def plan_budget(minutes, profile, shape, times):
    """``(profile sized for the budget, Plan)``: training cells within ``minutes`` in all.

    Pretraining gets what fine-tuning leaves, from 5/8 to three times the
    profile's steps; below that, the evaluation pairs shrink, to a quarter,
    and then the fine-tuning pairs, to half. Raises
    :class:`~d2l_nli.D2LNLIError` naming the minimum when even that does not fit.
    """
    levers = _levers(profile, shape, times, minutes * 60)
    steps0 = profile.pretrain.num_steps
    if levers is None:
        least = _sized(profile, shape, max(1, int(steps0 * LEAST_STEPS)), LEAST_EVAL,
                       LEAST_TRAIN)
        need = math.ceil(sum(t for t, _ in notebook_seconds(least, shape, times).values()) / 60)
        raise D2LNLIError(
            f'A budget of {minutes:g} minutes is too small: the smallest run that still shows '
            f'the chapter ({least.pretrain.num_steps:,} of the {profile.name} profile\'s '
            f'{steps0:,} pretraining steps, half its fine-tuning pairs, a quarter of its '
            f'evaluation pairs) takes about {need} '
            f'minutes of training on this machine. Set {ENV}={need} (or --budget-minutes '
            f'{need}) or more, or unset it to run the profile as it is.')
    sized = _sized(profile, shape, *levers)
    f = sized.finetune
    planned = {n: t for n, (t, _) in notebook_seconds(sized, shape, times).items() if t}
    why = (f'{levers[0]:,} pretraining steps (the profile: {steps0:,}), {f.train_size:,} '
           f'fine-tuning pairs, {f.test_size:,} evaluation pairs and {sized.held_out_pairs:,} '
           f'held-out pairs fit {minutes:g} minutes of training at this machine\'s '
           f'{times.pretrain_step:.2f} s per pretraining step and '
           f'{times.finetune_pair * 1e3:.2f} ms per fine-tuning pair')
    plan = Plan(minutes, levers[0], sized.chapter_steps, f.train_size, f.test_size,
                sized.held_out_pairs, planned, why)
    return dataclasses.replace(sized, name=f'{profile.name}-{minutes:g}min',
                               budget=_line(plan)), plan


def _line(plan):
    per = ', '.join(f'notebook {n} {s / 60:.1f}' for n, s in sorted(plan.planned.items()))
    return (f'budget: {ENV}={plan.minutes:g}: {plan.reason}\n'
            f'    planned minutes of training: {per}')


def budget_minutes(environ=None):
    """The budget in minutes from ``D2L_NLI_BUDGET_MINUTES``, or None when it is unset."""
    text = (os.environ if environ is None else environ).get(ENV, '').strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = float('nan')
    if not value > 0 or math.isinf(value):
        raise D2LNLIError(f'{ENV}={text!r} is not a number of minutes: set it to e.g. 30, '
                          'or unset it to run the profile as it is')
    return value


def fit_budget(profile, source, minutes=None, *, devices=None, folder=None):
    """``profile`` sized for ``minutes`` (default ``$D2L_NLI_BUDGET_MINUTES``), else as it is.

    A notebook's first cell calls it after :func:`~d2l_nli.find_data`. The
    plan is measured once (about 10 seconds) and saved in ``folder``
    (default: the runs folder's ``budgets/``); later notebooks read it, as
    they read what ``python -m d2l_nli doctor --budget-minutes`` saved there.
    """
    minutes = budget_minutes() if minutes is None else minutes
    if minutes is None:
        return profile
    if profile.name != 'small':
        raise D2LNLIError(f'{ENV} sizes the small profile only, and this run uses '
                          f'{profile.name!r}: unset {ENV}, or set D2L_NLI_PROFILE=small')
    path = plan_file(profile, minutes, source.kind, folder)
    saved = _read_plan(path)
    if saved is None:
        shape, times = measure_here(profile, source, devices)
        save_measurements(path, shape, times)
        origin = f'measured now, saved in {path}'
    else:
        shape, times = DataShape(**saved['shape']), StepTimes(**saved['times'])
        origin = f'measured {saved["measured"]} ({path}; delete it to measure again)'
    sized, plan = plan_budget(minutes, profile, shape, times)
    set_budget(minutes, times.pretrain_step, times.finetune_pair, times.exercise_pair,
               sized.finetune.num_epochs, sized.exercise_epochs)
    return dataclasses.replace(sized, budget=f'{sized.budget}\n    step times {origin}')


def plan_file(profile, minutes, kind, folder=None):
    """Where a budget's measurements are kept: ``<runs folder>/budgets/<...>.json``."""
    from .notebook_setup import runs_dir

    return (folder or runs_dir() / 'budgets') / f'{profile.name}-{minutes:g}min-{kind}.json'


def save_measurements(path, shape, times):
    """Keep ``shape`` and ``times`` for the notebooks' plans (``doctor`` saves them too)."""
    from .files import atomic_write

    with atomic_write(path) as f:
        json.dump({**_conditions(), 'shape': dataclasses.asdict(shape),
                   'times': dataclasses.asdict(times),
                   'measured': time.strftime('%Y-%m-%d %H:%M')}, f, indent=1)


# Bumped when the step times change meaning (2: bow_eval_pair, two malloc arenas).
_FORMAT = 2


def _conditions():
    """What the saved step times depend on besides the machine: threads and malloc."""
    return {'format': _FORMAT, 'threads': os.environ.get('OMP_NUM_THREADS', ''),
            'malloc': sorted(f'{k}={v}' for k, v in os.environ.items()
                             if k.startswith('MALLOC_') or k == 'GLIBC_TUNABLES')}


def _read_plan(path):
    """The saved measurements at ``path``, if readable and taken under these conditions."""
    try:
        saved = json.loads(path.read_text())
        DataShape(**saved['shape']), StepTimes(**saved['times'])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    now = _conditions()
    return saved if all(saved.get(k) == v for k, v in now.items()) else None


def measure_here(profile, source, devices=None):
    """``(DataShape, StepTimes)`` of ``profile`` on ``source``'s data, on this machine."""
    from . import steptimes
    from .devices import try_all_gpus

    shape, samples = steptimes.data_shape(source, profile)
    return shape, steptimes.measure(profile, samples, devices or try_all_gpus(),
                                    training_only=True)
