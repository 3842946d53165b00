"""Several processes with MXNet's dist_sync kvstore, started by ``python -m d2l_nli.launch``.

Everything runs on 127.0.0.1: one scheduler, one server and two workers,
as on a small cluster. The tests check that the workers end with identical
parameters equal to one process trained on the combined batches, that no
process outlives the launcher (also when a worker is killed, or on Ctrl-C),
and the ssh path with a stand-in ``ssh`` that runs commands locally.
"""
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as onp
import pytest

import d2l_nli as d
from d2l_nli.machinery.distributed import DistributedError, create_kvstore, worker_info


def tiny_setup(root, seed=0):
    """The model and data both the workers and the single process use."""
    from mxnet import init
    d.seed_everything(seed)
    train = d.subsample(d.read_snli(root / 'snli_1.0', True), 96, seed)
    vocab = d.Vocab([s.lower().split() for s in train[0] + train[1]],
                    reserved_tokens=d.RESERVED_TOKENS)
    bert = d.BERTModel(len(vocab), 16, 32, 2, 1, 0.0, max_len=64)
    bert.initialize(init.Xavier())
    net = d.BERTClassifier(bert)
    net.classifier.initialize(init.Xavier())
    return net, d.SNLIBERTDataset(train, 32, vocab, verbose=False)


# A worker: fine-tunes the tiny classifier on its shard, saves its parameters.
WORKER = textwrap.dedent('''
    import sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    import d2l_nli as d
    from mxnet import gluon, npx
    npx.set_np()
    from test_distributed import tiny_setup
    root, out, epochs = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    kv = d.create_kvstore('dist_sync')
    rank, num_workers = d.worker_info(kv)
    net, train = tiny_setup(root)
    loader = train.loader(16 // num_workers, shuffle=True, seed=1).shard(rank, num_workers)
    trainer = d.make_trainer(net.collect_params(), 'adam', {{'learning_rate': 1e-2}}, kv)
    print('training', flush=True)
    d.train_ch13(net, loader, train.loader(32), gluon.loss.SoftmaxCrossEntropyLoss(),
                 trainer, epochs, kvstore=kv)
    net.save_parameters(str(out / f'rank{{rank}}.params'))
''')


def _launch(*args):
    return [sys.executable, '-m', 'd2l_nli.launch', *map(str, args)]


def _alive(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split()[2] != 'Z'
    except FileNotFoundError:
        return False


def _pids(output):
    return [int(p) for p in re.findall(r'started on \S+ \(pid (\d+)\)', output)]


@pytest.fixture
def worker_script(tmp_path):
    path = tmp_path / 'worker.py'
    path.write_text(WORKER.format(tests=os.path.dirname(__file__)))
    return path


def test_two_workers_equal_one_process_on_the_combined_batches(worker_script, demo_root,
                                                               tmp_path):
    result = subprocess.run(_launch('-n', 2, '-s', 1, '--', sys.executable, worker_script,
                                    demo_root, tmp_path, 2),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'launch: all 2 workers finished' in result.stdout
    assert not [p for p in _pids(result.stdout) if _alive(p)]
    import mxnet as mx
    ranks = [{k: v.asnumpy() for k, v in mx.nd.load(str(tmp_path / f'rank{r}.params')).items()}
             for r in (0, 1)]
    for name in ranks[0]:
        assert onp.array_equal(ranks[0][name], ranks[1][name]), name

    # One process, the same steps: each step's batch is both workers' batches together.
    from mxnet import gluon

    from d2l_nli.training import train_batch_ch13
    net, train = tiny_setup(demo_root)
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': 1e-2})
    shards = [train.loader(8, shuffle=True, seed=1).shard(r, 2) for r in (0, 1)]
    steps = 0
    for _ in range(2):
        for (X0, y0), (X1, y1) in zip(*shards):
            X = tuple(_stack(a, b) for a, b in zip(X0, X1))
            train_batch_ch13(net, X, mx.np.concatenate([y0, y1]),
                             gluon.loss.SoftmaxCrossEntropyLoss(), trainer, [mx.cpu()])
            steps += 1
    assert steps == 12  # 96 pairs, 16 a step, 2 epochs
    single = {k: p.data().asnumpy() for k, p in net._collect_params_with_prefix().items()}
    assert single.keys() == ranks[0].keys()
    for name in single:
        onp.testing.assert_allclose(ranks[0][name], single[name], rtol=0, atol=1e-5,
                                    err_msg=name)


def _stack(a, b):
    """Two batches as one, the narrower padded (the model ignores padding)."""
    import mxnet as mx
    if a.ndim == 2 and a.shape[1] != b.shape[1]:
        width = max(a.shape[1], b.shape[1])
        a, b = (mx.np.pad(x, ((0, 0), (0, width - x.shape[1]))) for x in (a, b))
    return mx.np.concatenate([a, b])


def _interrupt(argv, ready, act, status):
    """Run the launcher until ``ready(lines)``, then ``act(lines)``; expect exit ``status``."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if ready(lines):
                break
        act(proc, lines)
        lines += proc.stdout.readlines()
        assert proc.wait(timeout=60) == status, ''.join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
    output = ''.join(lines)
    # Scheduler, server and two workers started, and none is left running.
    assert len(_pids(output)) == 4 and not [p for p in _pids(output) if _alive(p)]
    return output


def test_a_killed_worker_stops_everything(worker_script, demo_root, tmp_path):
    def kill_worker_1(proc, lines):
        time.sleep(1)  # a few steps into the run
        os.kill(_pids(''.join(lines))[-1], signal.SIGKILL)
    output = _interrupt(_launch('-n', 2, '-s', 1, '--', sys.executable, worker_script,
                                demo_root, tmp_path, 1000),
                        lambda lines: lines[-1].startswith('[worker 1] training'),
                        kill_worker_1, 1)
    pid = _pids(output)[-1]
    assert f'launch: worker 1 (pid {pid}) was killed by SIGKILL; stopping the other ' \
           'processes' in output


def test_ctrl_c_stops_everything():
    code = ('import d2l_nli as d, time; d.create_kvstore("dist_sync"); print("up", flush=True); '
            'time.sleep(120)')
    output = _interrupt(_launch('-n', 2, '--', sys.executable, '-c', code),
                        lambda lines: sum(line.endswith('] up\n') for line in lines) == 2,
                        lambda proc, lines: proc.send_signal(signal.SIGINT), 130)
    assert 'interrupted; stopping every process' in output


def test_hosts_over_ssh_keep_every_argument(tmp_path):
    """A stand-in ssh runs the remote command line locally: arguments arrive intact."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'ssh').write_text('#!/bin/sh\n'
                                 'while [ "$1" = "-o" ]; do shift 2; done\n'
                                 'shift\n'  # the host
                                 'exec sh -c "$*"\n')
    (bin_dir / 'ssh').chmod(0o755)
    hosts = tmp_path / 'hosts'
    hosts.write_text('# the lab\n127.0.0.1\n\n127.0.0.1  # again\n')
    code = ('import sys, d2l_nli as d; kv = d.create_kvstore("dist_sync"); '
            'print("rank", kv.rank, "got", repr(sys.argv[1]), flush=True)')
    tricky = "it's $HOME; rm -rf / `x` \"q\""
    env = dict(os.environ, PATH=f'{bin_dir}:{os.environ["PATH"]}')
    result = subprocess.run(_launch('-n', 2, '--hosts', hosts, '--port', _free_port(), '--',
                                    sys.executable, '-c', code, tricky),
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    for rank in (0, 1):
        assert f'rank {rank} got {tricky!r}' in result.stdout
    assert 'remote_pid' not in result.stdout.lower()
    assert not [p for p in _pids(result.stdout) if _alive(p)]


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_bad_host_files_and_commands_are_refused(tmp_path):
    hosts = tmp_path / 'hosts'
    hosts.write_text('node1 node2\n')
    result = subprocess.run(_launch('-n', 1, '--hosts', hosts, '--', 'true'),
                            capture_output=True, text=True)
    assert result.returncode != 0 and 'line 1: expected one host name' in result.stderr
    result = subprocess.run(_launch('-n', 1), capture_output=True, text=True)
    assert result.returncode == 2 and "give the workers' command after --" in result.stderr
    result = subprocess.run(_launch('-n', 1, '--hosts', tmp_path / 'none', '--', 'true'),
                            capture_output=True, text=True)
    assert result.returncode != 0 and 'cannot read the host file' in result.stderr
    result = subprocess.run(_launch('-n', 1, '--', 'no-such-program-here'),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert 'cannot start no-such-program-here: No such file or directory' in result.stdout
    assert not [p for p in _pids(result.stdout) if _alive(p)]


def test_a_distributed_kvstore_outside_the_launcher_says_how_to_start_it(monkeypatch):
    for name in ('DMLC_ROLE', 'DMLC_PS_ROOT_URI'):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(DistributedError, match='python -m d2l_nli.launch -n WORKERS'):
        create_kvstore('dist_sync')
    with pytest.raises(ValueError, match='unknown kvstore'):
        create_kvstore('nccl')
    assert create_kvstore('device') == 'device' and worker_info('local') == (0, 1)


@pytest.mark.parametrize('n, batch_size', [(10, 3), (97, 8), (5, 1)])
def test_shards_are_disjoint_equal_and_cover_all_but_the_remainder(n, batch_size):
    loaders = [d.BatchLoader(n, batch_size, lambda idx: (idx,), shuffle=True, seed=3)
               .shard(r, 3) for r in range(3)]
    passes = [[b[0].asnumpy().tolist() for b in loader] for loader in loaders]
    assert len({len(p) for p in passes}) == 1  # the same number of batches
    assert all([len(b) for b in p] == [len(b) for b in passes[0]] for p in passes)
    seen = sorted(x for p in passes for b in p for x in b)
    assert seen == list(range(n - n % 3))
    with pytest.raises(ValueError, match='need 0 <= index < count'):
        d.BatchLoader(n, 2, lambda idx: (idx,)).shard(3, 3)


def test_device_and_dist_sync_reach_the_same_accuracy_on_the_demo(demo_run, tmp_path):
    """The same fine-tuning command on two CPU devices and on two workers
    (docs/several-machines.md)."""
    from test_cli import DEMO_THRESHOLD

    folder, _, _ = demo_run
    root = folder / 'demo-demo-v1-seed0'
    # The demo's own fine-tuning settings, from its pretrained BERT.
    command = [sys.executable, '-m', 'd2l_nli', 'finetune', '--data-dir', root,
               '--pretrained', root / 'checkpoints' / 'bert', '--max-len', 64,
               '--batch-size', 32, '--epochs', 4, '--lr', 5e-4]
    device = subprocess.run([*map(str, command), '--kvstore', 'device', '--devices',
                             'cpu:0,cpu:1', '--out', str(tmp_path / 'a'), '--metrics-json',
                             str(tmp_path / 'a.json')], capture_output=True, text=True,
                            timeout=900)
    assert device.returncode == 0, device.stderr
    dist = subprocess.run(_launch('-n', 2, '-s', 1, '--', *command, '--kvstore', 'dist_sync',
                                  '--out', tmp_path / 'b', '--metrics-json', tmp_path / 'b.json'),
                          capture_output=True, text=True, timeout=900)
    assert dist.returncode == 0, dist.stdout + dist.stderr
    import json
    a, b = (json.loads((tmp_path / f'{x}.json').read_text()) for x in 'ab')
    assert a['test_acc'] >= DEMO_THRESHOLD and b['test_acc'] >= DEMO_THRESHOLD, (a, b)
    assert abs(a['test_acc'] - b['test_acc']) < 0.06, (a['test_acc'], b['test_acc'])
    # Only rank 0 wrote; both ranks report the same parameters.
    assert (tmp_path / 'b' / 'model.params').is_file()
    checksums = re.findall(r'rank \d of 2: parameter checksum (.*)', dist.stdout)
    assert len(checksums) == 2 and checksums[0] == checksums[1]


def test_the_command_line_outside_the_launcher_and_unshareable_batches(monkeypatch, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith('DMLC_')}
    result = subprocess.run([sys.executable, '-m', 'd2l_nli', 'finetune', '--kvstore',
                             'dist_sync', '--pretrained', tmp_path / 'x', '--out',
                             tmp_path / 'y'], capture_output=True, text=True, env=env)
    assert result.returncode == 1
    assert 'error: --kvstore dist_sync needs a scheduler, servers and workers' in result.stderr
    assert not list(tmp_path.iterdir())

    from types import SimpleNamespace

    from d2l_nli.pipeline import per_worker_batch
    kv = SimpleNamespace(type='dist_sync', rank=1, num_workers=4)
    assert per_worker_batch(32, kv) == (1, 4, 8)
    with pytest.raises(ValueError, match='the batch of 30 cannot be shared equally by 4 '
                                         'workers; use a multiple of 4'):
        per_worker_batch(30, kv)


def test_pretraining_on_two_workers_ends_with_the_same_parameters(demo_root, tmp_path):
    result = subprocess.run(_launch('-n', 2, '--', sys.executable, '-m', 'd2l_nli', 'pretrain',
                                    '--kvstore', 'dist_sync', '--data-dir', demo_root,
                                    '--batch-size', 16, '--max-len', 40, '--num-steps', 6,
                                    '--num-hiddens', 16, '--ffn-num-hiddens', 32,
                                    '--num-layers', 1, '--out', tmp_path / 'bert',
                                    '--metrics-json', tmp_path / 'm.json'),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    checksums = re.findall(r'rank \d of 2: parameter checksum (.*)', result.stdout)
    assert len(checksums) == 2 and checksums[0] == checksums[1]
    assert result.stdout.count('pretrained BERT saved to') == 1  # rank 0 only
    assert (tmp_path / 'bert' / 'model.params').is_file() and (tmp_path / 'm.json').is_file()
    assert not (tmp_path / 'bert.training').exists()
