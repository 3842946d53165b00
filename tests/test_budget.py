"""The time budget and the minutes per notebook, with step times given (no real timing)."""
import dataclasses
import json
import math

import pytest

import d2l_nli
from d2l_nli.machinery import budget, loop
from d2l_nli.machinery.budget import notebook_seconds, plan_budget
from d2l_nli.machinery.notebook_setup import DataSource
from d2l_nli.machinery.steptimes import DataShape, StepTimes

SHAPE = DataShape(kind='real', vocab_size=20000, wiki_train_bytes=10_000_000,
                  held_out_pairs=4000, train_pairs=9987, eval_pairs=9842, finetune_len=27.0,
                  exercise_len=22.0, eval_len=27.0, wiki_vocab_s=0.5, wiki_byte_s=1e-7,
                  snli_pair_s=1e-5)
TIMES = StepTimes(profile='small', pretrain_step=0.2, held_out_pair=0.0015,
                  finetune_pair=0.001, exercise_pair=0.0009, eval_pair=0.0004,
                  predict_pair=0.0003, attention_pair=0.001, bow_pair=0.0002, startup=2.0)
SMALL = d2l_nli.PROFILES['small']


def training_minutes(profile, shape=SHAPE, times=TIMES):
    return sum(t for t, _ in notebook_seconds(profile, shape, times).values()) / 60


def test_notebook_one_is_priced_from_the_profiles_own_steps_and_evaluations():
    # 4,000 + 500 steps; held-out text after every 500 of the profile's steps (8)
    # and every 100 of the chapter's (5), 4,000 pairs each.
    expected = 4500 * 0.2 + 13 * 4000 * 0.0015
    training, total = notebook_seconds(SMALL, SHAPE, TIMES)[1]
    assert training == pytest.approx(expected)
    assert total == pytest.approx(expected + 2.0 + 0.5 + 2 * 10_000_000 * 1e-7)


def test_fine_tuning_notebooks_count_their_two_runs_epochs_and_evaluations():
    f = SMALL.finetune
    run = f.num_epochs * (9987 * 0.001 + 9842 * 0.0004)
    assert notebook_seconds(SMALL, SHAPE, TIMES)[3][0] == pytest.approx(2 * run)
    exercise = SMALL.exercise_epochs * (9987 * 0.0009 + 9842 * 0.0004 * 22 / 27)
    assert notebook_seconds(SMALL, SHAPE, TIMES)[4][0] == pytest.approx(2 * exercise)


def test_the_baselines_are_priced_by_training_pairs_fitted_and_pairs_classified():
    # Notebook 5's training cell fits both bag-of-words models on the
    # training pairs and classifies the evaluation pairs with both.
    times = dataclasses.replace(TIMES, bow_eval_pair=0.00005)
    fewer = dataclasses.replace(SMALL, finetune=dataclasses.replace(
        SMALL.finetune, train_size=5000, test_size=2000))
    assert notebook_seconds(SMALL, SHAPE, times)[5][0] == pytest.approx(
        9987 * 0.0002 + 9842 * 0.00005)
    assert notebook_seconds(fewer, SHAPE, times)[5][0] == pytest.approx(
        5000 * 0.0002 + 2000 * 0.00005)


def test_estimates_scale_with_the_measured_step_times():
    slow = dataclasses.replace(TIMES, pretrain_step=0.4)
    fast, slower = notebook_seconds(SMALL, SHAPE, TIMES)[1], notebook_seconds(SMALL, SHAPE, slow)[1]
    assert slower[0] - fast[0] == pytest.approx(4500 * 0.2)


def test_a_budget_gives_pretraining_what_fine_tuning_leaves():
    sized, plan = plan_budget(15, SMALL, SHAPE, TIMES)
    assert 2500 <= plan.steps < 4000 and plan.steps % 50 == 0
    assert plan.train_size == 9987  # fine-tuning is kept whole while pretraining can give
    assert training_minutes(sized) <= 15
    bigger = budget._sized(SMALL, SHAPE, plan.steps + 50)
    assert training_minutes(bigger) > 15  # the largest that fits
    assert sized.pretrain.num_steps == plan.steps
    assert sized.chapter_steps == round(500 * plan.steps / 4000)
    assert sized.name == 'small-15min' and 'budget: D2L_NLI_BUDGET_MINUTES=15' in sized.describe()


def test_a_long_budget_pretrains_longer_up_to_three_times_the_profile():
    assert plan_budget(40, SMALL, SHAPE, TIMES)[1].steps > 4000
    assert plan_budget(600, SMALL, SHAPE, TIMES)[1].steps == 12000


def test_below_half_the_steps_the_evaluations_shrink_then_the_training_pairs():
    def between(low, high):
        return (training_minutes(budget._sized(SMALL, SHAPE, 2500, *low))
                + training_minutes(budget._sized(SMALL, SHAPE, 2500, *high))) / 2
    minutes = between((0.25,), (1.0,))
    sized, plan = plan_budget(minutes, SMALL, SHAPE, TIMES)
    assert plan.steps == 2500 and plan.train_size == 9987
    assert 2400 <= plan.test_size < 9842 and 1000 <= sized.held_out_pairs < 4000
    assert training_minutes(sized) <= minutes
    minutes = between((0.25, 0.5), (0.25, 1.0))
    sized, plan = plan_budget(minutes, SMALL, SHAPE, TIMES)
    assert plan.test_size == 2400 and 4900 <= plan.train_size < 9987
    assert training_minutes(sized) <= minutes


def test_a_budget_too_small_names_the_minimum_and_the_minimum_is_accepted():
    with pytest.raises(d2l_nli.D2LNLIError, match='too small') as err:
        plan_budget(2, SMALL, SHAPE, TIMES)
    need = int(str(err.value).split('D2L_NLI_BUDGET_MINUTES=')[1].split()[0])
    assert need == math.ceil(training_minutes(budget._sized(SMALL, SHAPE, 2500, 0.25, 0.5)))
    plan_budget(need, SMALL, SHAPE, TIMES)  # no error


@pytest.mark.parametrize('text', ['abc', '0', '-3', 'inf', 'nan'])
def test_a_bad_budget_variable_says_what_to_set(text):
    with pytest.raises(d2l_nli.D2LNLIError, match='not a number of minutes'):
        budget.budget_minutes({'D2L_NLI_BUDGET_MINUTES': text})


def test_budget_variable_read():
    assert budget.budget_minutes({}) is None
    assert budget.budget_minutes({'D2L_NLI_BUDGET_MINUTES': ' 12.5 '}) == 12.5


@pytest.fixture
def measured(monkeypatch, tmp_path):
    """fit_budget with the measurement replaced: counts the calls."""
    calls = []

    def fake(profile, source, devices=None):
        calls.append(profile.name)
        return SHAPE, TIMES
    monkeypatch.setattr(budget, 'measure_here', fake)
    monkeypatch.setattr(loop, '_budget', {})
    return calls, DataSource('real', tmp_path, 'dev', '')


def test_fit_budget_measures_once_and_later_notebooks_reuse_the_plan(measured, tmp_path):
    calls, source = measured
    folder = tmp_path / 'budgets'
    first = budget.fit_budget(SMALL, source, 15, folder=folder)
    assert calls == ['small'] and 'measured now' in first.budget
    saved = json.loads((folder / 'small-15min-real.json').read_text())
    assert saved['times']['pretrain_step'] == 0.2
    again = budget.fit_budget(SMALL, source, 15, folder=folder)
    assert calls == ['small'] and 'delete it to measure again' in again.budget
    assert again.pretrain == first.pretrain and again.finetune == first.finetune


def test_fit_budget_measures_again_for_other_thread_settings(measured, tmp_path, monkeypatch):
    calls, source = measured
    budget.fit_budget(SMALL, source, 15, folder=tmp_path)
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    budget.fit_budget(SMALL, source, 15, folder=tmp_path)
    assert len(calls) == 2


def test_fit_budget_measures_again_for_other_malloc_settings_or_an_old_file(
        measured, tmp_path, monkeypatch):
    calls, source = measured
    budget.fit_budget(SMALL, source, 15, folder=tmp_path)
    monkeypatch.setenv('MALLOC_MMAP_THRESHOLD_', '1048576')  # docs/troubleshooting.md
    budget.fit_budget(SMALL, source, 15, folder=tmp_path)
    assert len(calls) == 2
    path = tmp_path / 'small-15min-real.json'
    saved = json.loads(path.read_text())
    del saved['format']  # saved by an earlier version: its step times meant other things
    path.write_text(json.dumps(saved))
    budget.fit_budget(SMALL, source, 15, folder=tmp_path)
    assert len(calls) == 3


def test_without_a_budget_the_profile_is_unchanged(measured, monkeypatch):
    calls, source = measured
    monkeypatch.delenv('D2L_NLI_BUDGET_MINUTES', raising=False)
    assert budget.fit_budget(SMALL, source) is SMALL and not calls


def test_a_budget_sizes_only_the_small_profile(measured, tmp_path):
    _, source = measured
    with pytest.raises(d2l_nli.D2LNLIError, match='small profile only'):
        budget.fit_budget(d2l_nli.PROFILES['full'], source, 15, folder=tmp_path)


def test_training_runs_print_planned_beside_actual_minutes(measured, tmp_path):
    _, source = measured
    assert loop.planned_vs_actual(('pretraining', 300), 70.0) is None  # no plan yet
    budget.fit_budget(SMALL, source, 15, folder=tmp_path)
    line = loop.planned_vs_actual(('pretraining', 300), 66.0)
    assert line.startswith('budget: planned 1.0 min of training, took 1.1 min')
    # Notebook 4's runs (2 epochs, not the profile's 3) are priced at its shorter pairs.
    assert 'planned 0.3 min' in loop.planned_vs_actual(('fine-tuning', 2, 20000), 20.0)
    assert 'planned 0.5 min' in loop.planned_vs_actual(('fine-tuning', 3, 30000), 20.0)


def test_the_command_line_budget_needs_the_small_profile(tmp_path, capsys):
    from d2l_nli.machinery import cli
    status = cli.main(['pretrain', '--budget-minutes', '5', '--data-dir', str(tmp_path),
                       '--out', str(tmp_path / 'bert')])
    assert status == 1
    assert 'sizes the small profile only: add --profile small' in capsys.readouterr().err


def test_the_command_line_budget_too_small_names_the_minimum(tmp_path, capsys, monkeypatch):
    from d2l_nli.machinery import cli
    monkeypatch.setenv('D2L_NLI_OFFLINE', '1')
    monkeypatch.setenv('D2L_NLI_RUNS', str(tmp_path / 'runs'))
    status = cli.main(['pretrain', '--profile', 'small', '--budget-minutes', '0.01',
                       '--data-dir', str(tmp_path), '--out', str(tmp_path / 'bert')])
    err = capsys.readouterr().err
    assert status == 1 and 'A budget of 0.01 minutes is too small' in err
    assert not (tmp_path / 'bert').exists()


def test_the_notebooks_run_the_plan_doctor_measured(measured, tmp_path):
    calls, source = measured
    path = budget.plan_file(SMALL, 15, 'real', tmp_path)
    budget.save_measurements(path, SHAPE, dataclasses.replace(TIMES, pretrain_step=0.25))
    sized = budget.fit_budget(SMALL, source, 15, folder=tmp_path)
    assert not calls  # nothing measured again
    assert sized.pretrain.num_steps == plan_budget(
        15, SMALL, SHAPE, dataclasses.replace(TIMES, pretrain_step=0.25))[1].steps


def test_a_damaged_plan_file_is_measured_again(measured, tmp_path):
    calls, source = measured
    path = budget.plan_file(SMALL, 15, 'real', tmp_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"threads": "2", "shape": {"kind": ')
    budget.fit_budget(SMALL, source, 15, folder=tmp_path)
    assert calls == ['small'] and json.loads(path.read_text())['times']['pretrain_step'] == 0.2


def test_every_notebook_applies_the_budget_and_tags_its_training_cells():
    from pathlib import Path
    folder = Path(__file__).resolve().parent.parent / 'notebooks'
    for number, name in budget.NOTEBOOKS.items():
        nb = json.loads((folder / f'{name}.ipynb').read_text())
        code = [''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code']
        first = code[0].splitlines()
        at = first.index('profile = profile.for_data(source)  # the demo corpus is learned in '
                         'fewer steps')
        assert first[at + 1].startswith('profile = d2l_nli.fit_budget(profile, source)'), name
        tagged = [''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code'
                  and 'training' in c['metadata'].get('tags', [])]
        assert bool(tagged) == (number != 2), name
        assert all(any(call in cell for call in ('train_bert(', 'train_ch13(', '.fit('))
                   for cell in tagged), name
