"""The command line, run as a user runs it: python -m d2l_nli ..."""
import json
import subprocess
import sys

import pytest

DEMO_THRESHOLD = 0.8  # docs/data.md, "The demo corpus": why this threshold


def _run(*args, timeout=600):
    return subprocess.run([sys.executable, '-m', 'd2l_nli', *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def test_demo_learns_the_demo_corpus(demo_run):
    """The README's main job: offline, end to end, well above chance."""
    folder, result, record = demo_run
    assert record['test_acc'] >= DEMO_THRESHOLD, result.stdout
    assert record['pretrain_nsp_loss'] < 0.69 and record['pretrain_mlm_loss'] < 3
    assert record['num_test'] > 500 and record['devices']
    checkpoints = folder / 'demo-demo-v1-seed0' / 'checkpoints'
    for name in ('bert/config.json', 'classifier/model.params', 'pretrain.svg', 'finetune.svg'):
        assert (checkpoints / name).is_file(), name
    assert 'test accuracy' in result.stdout and 'sentence pairs/sec' in result.stdout


@pytest.fixture(scope='module')
def tiny_run(demo_root, tmp_path_factory):
    """pretrain then finetune through the command line on the tiny corpus."""
    out = tmp_path_factory.mktemp('cli')
    common = ['--data-dir', demo_root, '--devices', 'cpu:0,cpu:1', '--max-len', 40,
              '--batch-size', 32]
    pre = _run('pretrain', *common, '--num-steps', 3, '--num-hiddens', 16,
               '--ffn-num-hiddens', 32, '--num-layers', 1, '--out', out / 'bert',
               '--metrics-json', out / 'pretrain.json', '--plot', out / 'loss.png')
    assert pre.returncode == 0, pre.stderr
    fine = _run('finetune', *common, '--pretrained', out / 'bert', '--epochs', 1,
                '--train-size', 100, '--split', 'dev', '--out', out / 'clf',
                '--metrics-json', out / 'finetune.json')
    assert fine.returncode == 0, fine.stderr
    return out, pre.stdout, fine.stdout


def test_pretrain_and_finetune_write_checkpoints_and_metrics(tiny_run):
    out, pre_out, fine_out = tiny_run
    pre = json.loads((out / 'pretrain.json').read_text())
    assert {'mlm_loss', 'nsp_loss', 'pairs_per_sec'} <= set(pre)
    assert pre['devices'] == ['cpu(0)', 'cpu(1)'] and pre['options']['num_steps'] == 3
    assert (out / 'loss.png').read_bytes().startswith(b'\x89PNG')
    fine = json.loads((out / 'finetune.json').read_text())
    assert {'train_loss', 'train_acc', 'test_acc', 'examples_per_sec', 'num_train',
            'num_test'} <= set(fine)
    assert fine['num_train'] == 100 and fine['split'] == 'dev'
    assert 'MLM loss' in pre_out and 'dev acc' in fine_out  # the split it measured


def test_evaluate_and_predict(tiny_run, demo_root):
    out, _, _ = tiny_run
    result = _run('evaluate', '--data-dir', demo_root, '--model', out / 'clf', '--max-len', 40,
                  '--metrics-json', out / 'eval.json')
    assert result.returncode == 0, result.stderr
    record = json.loads((out / 'eval.json').read_text())
    assert 0 <= record['test_acc'] <= 1 and record['num_test'] > 10
    result = _run('predict', '--model', out / 'clf', '--max-len', 40,
                  'A man sleeps at home.', 'A person is resting.')
    assert result.returncode == 0, result.stderr
    label = result.stdout.split()[0]
    assert label in ('entailment', 'contradiction', 'neutral')


@pytest.mark.parametrize('args, message', [
    (['demo', '--devices', 'tpu:0'], "'tpu:0'"),
    (['pretrain', '--max-len', '3'], 'must be at least 5'),
    (['finetune', '--pretrained', 'x', '--batch-size', '0'], 'must be at least 1'),
    (['pretrain', '--lr', '-1'], 'must be positive'),
    (['pretrain', '--devices', 'gpu:3'], 'GPU 3 requested but no GPU found'),
    (['pretrain', '--devices', 'cpu:0,cpu:0'], 'listed twice'),
    (['pretrain', '--checkpoint-every', '-1'], 'must be at least 0'),
    (['predict', '--model', 'x', '--max-len', '3', 'a', 'b'], 'must be at least 5'),
])
def test_bad_options_are_refused(tmp_path, args, message):
    result = _run(*args, '--data-dir', tmp_path)
    assert result.returncode == 2 and message in result.stderr
    assert not list(tmp_path.iterdir())


def test_wrong_checkpoint_is_a_clear_error(tmp_path):
    result = _run('predict', '--model', tmp_path / 'missing', 'a b', 'c d')
    assert result.returncode == 1 and 'no such checkpoint folder' in result.stderr


def test_help_lists_every_command():
    result = _run('--help')
    assert result.returncode == 0
    for command in ('demo', 'pretrain', 'finetune', 'evaluate', 'predict'):
        assert command in result.stdout


# ------------------------------------------------ bad input: the command line

@pytest.mark.parametrize('args, message', [
    (['pretrain', '--num-hiddens', '10', '--num-heads', '3'],
     'num_hiddens=10 must be divisible by num_heads=3'),
    (['pretrain', '--dropout', '1.5'], 'dropout must be in [0, 1)'),
])
def test_impossible_model_sizes_are_refused(tmp_path, demo_root, args, message):
    result = _run(*args, '--num-steps', 1, '--data-dir', demo_root, '--out', tmp_path / 'out')
    assert result.returncode == 1 and f'error: {message}' in result.stderr
    assert not list(tmp_path.iterdir())


def test_max_len_beyond_the_pretrained_positions(tiny_run, demo_root, tmp_path):
    out, _, _ = tiny_run
    result = _run('finetune', '--data-dir', demo_root, '--pretrained', out / 'bert',
                  '--max-len', 600, '--out', tmp_path / 'clf')
    assert result.returncode == 1
    assert 'max_len=600 is more than the 512 positions' in result.stderr
    result = _run('evaluate', '--data-dir', demo_root, '--model', out / 'clf', '--max-len', 600)
    assert result.returncode == 1 and 'use --max-len 512 or less' in result.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize('premise, hypothesis, message', [
    ('', 'A man sleeps.', 'error: the premise is empty; give a sentence'),
    ('A man sleeps.', '   ', 'error: the hypothesis is empty; give a sentence'),
    ('Ein Mann schläft — café, 你好, 🙂.', 'A man sleeps.', None),
    ('A man sleeps.', ' '.join(['word'] * 20_000), None),
])
def test_predict_takes_any_text_and_refuses_empty_sentences(tiny_run, premise, hypothesis,
                                                            message):
    out, _, _ = tiny_run
    result = _run('predict', '--model', out / 'clf', '--max-len', 40, premise, hypothesis)
    if message:
        assert result.returncode == 1 and message in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert result.stdout.split()[0] in ('entailment', 'contradiction', 'neutral')


# --profile: a notebook profile's settings, and explicit flags override them.

def _settings(*argv):
    from d2l_nli.machinery.cli import build_parser, run_settings
    return run_settings(build_parser().parse_args([str(a) for a in argv]))


def test_without_a_profile_the_command_line_runs_the_chapter():
    import d2l_nli as d

    chapter = d.PROFILES['chapter']
    assert _settings('pretrain') == {'model': chapter.model, 'pretrain': chapter.pretrain}
    assert _settings('finetune', '--pretrained', 'x') == {'finetune': chapter.finetune}


@pytest.mark.parametrize('name', ['small', 'full'])
def test_profile_sets_every_setting_the_profile_uses(name):
    import d2l_nli as d

    profile = d.PROFILES[name]
    assert _settings('pretrain', '--profile', name) == {'model': profile.model,
                                                        'pretrain': profile.pretrain}
    assert _settings('finetune', '--profile', name, '--pretrained', 'x') == {
        'finetune': profile.finetune}


def test_an_explicit_flag_overrides_the_profile():
    small = _settings('pretrain', '--profile', 'small', '--num-steps', 30, '--warmup-steps', 5,
                      '--no-dynamic-masking', '--embedding-init', 'xavier', '--task-pairs', 0,
                      '--no-embedding-norm', '--dropout', 0.1, '--final-lr-fraction', 0.5)
    p, m = small['pretrain'], small['model']
    assert (p.num_steps, p.warmup_steps, p.dynamic_masking, p.embedding_init, p.task_pairs,
            p.final_lr_fraction) == (30, 5, False, 'xavier', 0, 0.5)
    assert (m.dropout, m.embedding_norm) == (0.1, False)
    assert p.mlm_bias_init and p.batch_size == 64  # the rest stays the profile's
    chapter = _settings('pretrain', '--mlm-bias-init', '--dynamic-masking', '--warmup-steps', 9)
    assert chapter['pretrain'].mlm_bias_init and chapter['pretrain'].dynamic_masking
    assert chapter['pretrain'].batch_size == 256 and chapter['pretrain'].warmup_steps == 9
    fine = _settings('finetune', '--profile', 'small', '--pretrained', 'x', '--epochs', 1,
                     '--lr', 0.01)['finetune']
    assert (fine.num_epochs, fine.lr, fine.batch_size, fine.train_size) == (1, 0.01, 32, 10_000)


def test_pretrain_with_the_small_profile_runs_its_recipe(demo_root, tmp_path):
    """The small profile's recipe end to end, with held-out losses, on the tiny corpus."""
    result = _run('pretrain', '--profile', 'small', '--data-dir', demo_root, '--num-steps', 6,
                  '--warmup-steps', 2, '--batch-size', 16, '--max-len', 40, '--num-hiddens', 16,
                  '--ffn-num-hiddens', 32, '--held-out-every', 3, '--out', tmp_path / 'bert',
                  '--metrics-json', tmp_path / 'm.json')
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / 'm.json').read_text())
    assert [p['step'] for p in record['held_out']] == [3, 6]
    assert record['options']['dynamic_masking'] is True and record['options']['task_pairs'] == 0
    assert 'held-out MLM loss' in result.stdout
    config = json.loads((tmp_path / 'bert' / 'config.json').read_text())
    assert config['bert']['embedding_norm'] is True


def test_warmup_longer_than_the_run_is_a_clear_error(demo_root, tmp_path):
    result = _run('pretrain', '--profile', 'small', '--data-dir', demo_root, '--num-steps', 6,
                  '--out', tmp_path / 'bert')
    assert result.returncode == 1
    assert 'warmup_steps=100 must be between 0 and num_steps=6' in result.stderr
