"""Helpers shared by the benchmark workers (standard library + NumPy only).

Every worker runs one measurement in its own process and prints one JSON
line on stdout; ``run.py`` starts the workers (ours, the reference, the
HuggingFace peer) side by side and makes the tables.
"""
import json
import os
import resource
import sys
import time

DATA = os.environ.get('D2L_NLI_BENCH_DATA', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared', 'data'))
# The chapter's model and run settings, used by every implementation.
MODEL = dict(num_hiddens=128, ffn_num_hiddens=128, num_heads=2, num_layers=2, dropout=0.2)
CHAPTER = dict(pretrain_batch=256, pretrain_len=128, pretrain_lr=1e-3, pretrain_steps=4000,
               finetune_batch=256, finetune_len=128, finetune_lr=1e-4, finetune_epochs=5,
               snli_train_pairs=549367)


def peak_rss_mib():
    """Peak resident memory of this process so far, in MiB (Linux: ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_rss_mib():
    """Largest peak resident memory of any finished child process (worker pools), MiB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def emit(**result):
    """Print the worker's one JSON result line (everything else goes to stderr)."""
    result.setdefault('peak_rss_mib', peak_rss_mib())
    sys.stdout.write(json.dumps(result) + '\n')
    sys.stdout.flush()


def log(*args):
    print(*args, file=sys.stderr, flush=True)


class Clock:
    """Seconds since creation, excluding the intervals spent inside ``paused()``."""

    def __init__(self):
        self.start = time.perf_counter()
        self.excluded = 0.0

    def __call__(self):
        return time.perf_counter() - self.start - self.excluded

    def pause(self):
        return _Pause(self)


class _Pause:
    def __init__(self, clock):
        self.clock = clock

    def __enter__(self):
        self.t = time.perf_counter()

    def __exit__(self, *exc):
        self.clock.excluded += time.perf_counter() - self.t


def snli_folder(name='real'):
    """The SNLI folder for ``name``: 'real' (../shared/data) or 'full' (generated)."""
    if name == 'real':
        return os.path.join(DATA, 'snli_1.0')
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), '.data', 'snli_full',
                        'snli_1.0')


def reset_peak_rss():
    """Start a new peak-memory measurement (Linux: clear_refs 5 resets VmHWM)."""
    import gc
    gc.collect()
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')


def vm_hwm_mib():
    """Peak resident memory since the last :func:`reset_peak_rss`, in MiB."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024
    return float('nan')


def worker_parser(description, tasks):
    """The command line both workers share (each adds its own extras)."""
    import argparse
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('task', choices=tasks)
    parser.add_argument('--batch-size', type=int, default=256)
    parser.add_argument('--max-len', type=int, default=128)
    parser.add_argument('--batches', type=int, default=20, help='timed batches per round')
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--snli', default='real', choices=['real', 'full'])
    parser.add_argument('--n', type=int, default=None, help='SNLI pairs (scale, export)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--epochs', type=int, default=3)
    return parser
