"""Interrupted training: kill -9, resume, same parameters; NaN stops; checkpoint rules.

The kill tests run the command line as a user does, kill it with SIGKILL
after a checkpoint appeared (in the middle of a run, perhaps in the middle
of writing the next checkpoint), resume it with ``--resume``, and compare
the final parameters with an uninterrupted run of the same command: they
must be identical, bit for bit (same machine, same threads).
"""
import json
import math
import os
import signal
import subprocess
import sys
import time

import mxnet as mx
import numpy as onp
import pytest
from mxnet import gluon, init, np

import d2l_nli as d
from d2l_nli.machinery.optstate import load_optimizer_state, optimizer_state
from d2l_nli.training import train_batch_ch13

TINY_MODEL = ['--num-hiddens', 16, '--ffn-num-hiddens', 32, '--num-layers', 1, '--dropout', 0.1]


def _cli(*args):
    return [sys.executable, '-m', 'd2l_nli', *map(str, args)]


def _run(*args):
    result = subprocess.run(_cli(*args), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result


def _kill_after(args, checkpoint, timeout=120):
    """Start the command, SIGKILL it as soon as ``checkpoint`` exists; returns
    its folder listing."""
    proc = subprocess.Popen(_cli(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    try:
        while not checkpoint.exists():
            assert proc.poll() is None, ('the run ended before it could be killed:\n'
                                         + proc.stderr.read().decode())
            assert time.monotonic() < deadline, 'no checkpoint appeared'
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return sorted(p.name for p in checkpoint.parent.iterdir())


def _params(folder):
    import mxnet as mx
    return {k: v.asnumpy() for k, v in mx.nd.load(str(folder / 'model.params')).items()}


def _assert_same_params(a, b):
    pa, pb = _params(a), _params(b)
    assert pa.keys() == pb.keys()
    for name in pa:
        assert onp.array_equal(pa[name], pb[name]), name


@pytest.fixture(scope='module')
def pretrain_runs(demo_root, tmp_path_factory):
    """An uninterrupted pretraining run and one killed at step 50 of 300, then resumed."""
    out = tmp_path_factory.mktemp('pretrain')
    args = ['pretrain', '--data-dir', demo_root, '--devices', 'cpu', '--max-len', 40,
            '--batch-size', 16, *TINY_MODEL, '--seed', 3, '--num-steps', 300,
            '--checkpoint-every', 10]
    _run(*args, '--out', out / 'a', '--metrics-json', out / 'a.json')
    listing = _kill_after([*args, '--out', out / 'b'], out / 'b.training' / 'step-00000050')
    refused = subprocess.run(_cli(*args, '--out', out / 'b'), capture_output=True, text=True)
    resumed = _run(*args, '--out', out / 'b', '--resume', '--metrics-json', out / 'b.json')
    return out, listing, refused, resumed


def test_killed_pretraining_resumes_to_the_same_parameters(pretrain_runs):
    out, listing, _, resumed = pretrain_runs
    # Only whole checkpoints (perhaps a temporary folder of the one being written).
    assert [n for n in listing if n.startswith('step-')][-1] >= 'step-00000050'
    assert 'resuming at step' in resumed.stdout
    _assert_same_params(out / 'a', out / 'b')
    a, b = (json.loads((out / f'{x}.json').read_text()) for x in 'ab')
    assert (a['mlm_loss'], a['nsp_loss'], a['steps']) == (b['mlm_loss'], b['nsp_loss'], b['steps'])
    # Finished runs clean up their training state; the model is in --out.
    assert not (out / 'a.training').exists() and not (out / 'b.training').exists()


def test_a_second_run_does_not_overwrite_an_interrupted_one(pretrain_runs):
    _, _, refused, _ = pretrain_runs
    assert refused.returncode == 1
    assert 'already holds checkpoints of an earlier run' in refused.stderr
    assert '--resume' in refused.stderr


def test_killed_finetuning_on_two_devices_resumes_mid_epoch(pretrain_runs, demo_root):
    out, _, _, _ = pretrain_runs
    args = ['finetune', '--data-dir', demo_root, '--devices', 'cpu:0,cpu:1',
            '--pretrained', out / 'a', '--max-len', 40, '--batch-size', 8, '--epochs', 6,
            '--lr', 1e-3, '--split', 'dev', '--seed', 1, '--checkpoint-every', 7]
    _run(*args, '--out', out / 'fa', '--metrics-json', out / 'fa.json')
    # Step 35 is in the middle of the second epoch (about 29 batches each).
    _kill_after([*args, '--out', out / 'fb'], out / 'fb.training' / 'step-00000035')
    resumed = _run(*args, '--out', out / 'fb', '--resume', '--metrics-json', out / 'fb.json')
    assert 'resuming at epoch 2' in resumed.stdout
    _assert_same_params(out / 'fa', out / 'fb')
    a, b = (json.loads((out / f'{x}.json').read_text()) for x in ('fa', 'fb'))
    for key in ('train_loss', 'train_acc', 'test_acc'):
        assert a[key] == b[key], key


# ---------------------------------------------------------------- in-process

@pytest.fixture(scope='module')
def snli(demo_root):
    train_iter, vocab = d.load_data_wiki(16, 40, data_dir=demo_root, seed=0)
    folder = demo_root / 'snli_1.0'
    train = d.SNLIBERTDataset(d.read_snli(folder, True), 40, vocab, verbose=False)
    test = d.SNLIBERTDataset(d.read_snli(folder, False), 40, vocab, verbose=False)
    return train_iter, vocab, train, test


def _classifier(vocab, seed=0):
    d.seed_everything(seed)
    bert = d.BERTModel(len(vocab), 16, 32, 2, 1, 0.1, max_len=64)
    bert.initialize(init.Xavier())
    net = d.BERTClassifier(bert)
    net.classifier.initialize(init.Xavier())
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': 1e-3})
    return net, trainer


def _nan_from(call, base):
    """A loss that behaves like ``base`` until its ``call``-th call, then gives NaN."""
    calls = [0]

    def loss(*args):
        calls[0] += 1
        value = base(*args)
        return value * np.array(math.nan) if calls[0] >= call else value
    return loss


def test_nan_loss_stops_finetuning_and_keeps_the_last_good_checkpoint(snli, tmp_path):
    _, vocab, train, test = snli
    net, trainer = _classifier(vocab)
    checkpoints = d.TrainingCheckpoints(tmp_path / 'ckpt', vocab, every=3, keep=2)
    loss = _nan_from(8, gluon.loss.SoftmaxCrossEntropyLoss())
    with pytest.raises(d.TrainingDivergedError) as err:
        d.train_ch13(net, train.loader(8, shuffle=True), test.loader(8), loss, trainer, 2,
                     checkpoints=checkpoints)
    message = str(err.value)
    assert 'training loss became nan at step 9' in message
    assert str(tmp_path / 'ckpt' / 'step-00000006') in message and '--resume' in message
    assert [p.name for p in checkpoints.checkpoints()] == ['step-00000003', 'step-00000006']
    good, _ = d.load_classifier(tmp_path / 'ckpt' / 'step-00000006')
    assert all(onp.isfinite(p.data().asnumpy()).all()
               for p in good.collect_params().values())


@pytest.mark.parametrize('fused_mlm', [True, False])
def test_nan_loss_stops_pretraining(snli, tmp_path, fused_mlm):
    train_iter, vocab, _, _ = snli
    bert = d.BERTModel(len(vocab), 16, 32, 2, 1, 0.0, max_len=64)
    bert.initialize(init.Xavier())
    bias = bert.mlm.output.bias

    def poison(step):  # after step 2, the MLM output layer holds a NaN
        if step == 2:
            bias.set_data(np.full(bias.shape, float('nan')))

    with pytest.raises(d.TrainingDivergedError, match='MLM loss became nan at step 3.*'
                                                      'No checkpoints were being saved'):
        d.train_bert(train_iter, bert, gluon.loss.SoftmaxCELoss(), len(vocab), [mx.cpu()], 20,
                     log_every=1, progress=poison, fused_mlm=fused_mlm)


def test_resume_refuses_other_settings_and_falls_back_from_a_damaged_checkpoint(snli, tmp_path):
    _, vocab, train, test = snli
    folder = tmp_path / 'ckpt'

    def run(resume, settings, epochs=1):
        net, trainer = _classifier(vocab)
        checkpoints = d.TrainingCheckpoints(folder, vocab, every=5, keep=3, resume=resume,
                                            settings=settings)
        d.train_ch13(net, train.loader(16, shuffle=True), test.loader(16),
                     gluon.loss.SoftmaxCrossEntropyLoss(), trainer, epochs,
                     checkpoints=checkpoints)
        return checkpoints

    first = run(False, {'batch_size': 16})
    names = [p.name for p in first.checkpoints()]
    assert names == ['step-00000005', 'step-00000010', 'step-00000015']  # 15 batches an epoch
    with pytest.raises(d.CheckpointError, match=r'other settings:\n  batch_size: 16 in the '
                                                r'checkpoint, 32 now'):
        run(True, {'batch_size': 32}, epochs=2)
    # A damaged newest checkpoint: the one before it is used, with a warning.
    (folder / 'step-00000015' / 'optimizer.params').write_bytes(b'\0' * 10)
    with pytest.warns(UserWarning,
                      match='step-00000015/optimizer.params: cannot load.*checkpoint before it'):
        again = run(True, {'batch_size': 16}, epochs=2)
    assert again.saved.name == 'step-00000030'
    assert (folder / 'damaged-step-00000015').is_dir()  # kept, not deleted


def test_leftovers_of_a_killed_save_are_cleaned_and_never_resumed(snli, tmp_path):
    _, vocab, train, test = snli
    folder = tmp_path / 'ckpt'
    (folder / '.step-00000099.abc.tmp').mkdir(parents=True)
    (folder / '.step-00000099.abc.tmp' / 'model.params').write_bytes(b'half')
    net, trainer = _classifier(vocab)
    checkpoints = d.TrainingCheckpoints(folder, vocab, every=0, resume=True)
    d.train_ch13(net, train.loader(64), test.loader(64), gluon.loss.SoftmaxCrossEntropyLoss(),
                 trainer, 1, checkpoints=checkpoints)
    assert sorted(p.name for p in folder.iterdir()) == ['step-00000004']


def test_optimizer_state_round_trip_continues_like_the_original(snli):
    """Adam's moments and counts, saved without pickle, give the same next update."""
    _, vocab, train, _ = snli
    batches = list(train.loader(16))[:4]
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    net, trainer = _classifier(vocab)
    for X, y in batches[:3]:
        train_batch_ch13(net, X, y, loss, trainer, [mx.cpu()])
    arrays, meta = optimizer_state(trainer, net)
    arrays = {k: v.copy() for k, v in arrays.items()}  # the live states change in step 4
    json.dumps(meta)  # plain JSON
    assert meta['optimizer'] == 'Adam' and meta['num_update'] == 3
    saved = {k: p.data().copy() for k, p in net._collect_params_with_prefix().items()}
    mx.random.seed(11)  # the same dropout masks in both
    train_batch_ch13(net, *batches[3], loss, trainer, [mx.cpu()])
    expected = {k: p.data().asnumpy() for k, p in net._collect_params_with_prefix().items()}

    other, other_trainer = _classifier(vocab, seed=5)
    for k, p in other._collect_params_with_prefix().items():
        p.set_data(saved[k])
    load_optimizer_state(other_trainer, other, arrays, meta)
    mx.random.seed(11)
    train_batch_ch13(other, *batches[3], loss, other_trainer, [mx.cpu()])
    for k, p in other._collect_params_with_prefix().items():
        assert onp.array_equal(p.data().asnumpy(), expected[k]), k


def test_loader_seek_replays_the_rest_of_a_pass(snli):
    _, _, train, _ = snli
    loader = train.loader(8, shuffle=True, seed=4)
    passes = [[b[1].asnumpy() for b in loader] for _ in range(3)]
    assert not all(onp.array_equal(a, b) for a, b in zip(passes[0], passes[1]))
    fresh = train.loader(8, shuffle=True, seed=4)
    fresh.seek(1, 5)
    assert fresh.position == (1, 5)
    replay = [b[1].asnumpy() for b in fresh]
    assert len(replay) == len(passes[1]) - 5
    assert all(onp.array_equal(a, b) for a, b in zip(replay, passes[1][5:]))
    assert all(onp.array_equal(a, b) for a, b in zip([b[1].asnumpy() for b in fresh], passes[2]))
    with pytest.raises(ValueError, match='cannot seek'):
        fresh.seek(0, len(fresh) + 1)


def test_no_pickle_in_a_training_checkpoint(snli, tmp_path):
    _, vocab, train, test = snli
    net, trainer = _classifier(vocab)
    checkpoints = d.TrainingCheckpoints(tmp_path / 'ckpt', vocab, every=0)
    d.train_ch13(net, train.loader(64), test.loader(64), gluon.loss.SoftmaxCrossEntropyLoss(),
                 trainer, 1, checkpoints=checkpoints)
    folder = checkpoints.saved
    assert sorted(os.listdir(folder)) == ['config.json', 'model.params', 'optimizer.params',
                                          'trainer.json', 'vocab.json']
    for path in folder.iterdir():
        assert not path.read_bytes().startswith(b'\x80'), f'{path.name} looks like a pickle'
