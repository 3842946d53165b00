"""glibc's malloc settings: speed and peak memory of whole training runs.

    python benchmarks/malloc.py                     # 3 rounds after a warm-up
    python benchmarks/malloc.py --rounds 1 --steps 300 --env-mib 4 8

The package limits glibc to two malloc arenas at start-up
(``runtime.limit_arenas``). This runs the command line's small-profile
pretraining (``--steps`` steps on the real WikiText-2) and then a small-profile
fine-tuning from it (``--pairs`` SNLI pairs, one epoch), once per setting and
round, the settings in turn, and reports each run's wall time and peak
resident memory (``/usr/bin/time``). Settings:

* ``package``: the package's default;
* ``glibc``: glibc's own (``D2L_NLI_NO_DEFAULTS=1`` with the package's thread
  settings given by hand, so only malloc differs);
* ``mmap-1MiB``: the package's earlier default, a fixed 1 MiB mmap threshold
  (``MALLOC_MMAP_THRESHOLD_``, the rest as ``glibc``);
* ``env-N`` (``--env-mib``): ``MALLOC_MMAP_THRESHOLD_`` at N MiB and
  ``MALLOC_TRIM_THRESHOLD_`` at 2N (glibc's own ratio);
* ``--also NAME:VAR=VALUE,...``: any other environment.

The first round is a warm-up and is not reported. Results:
``benchmarks/results/<--name>.json``.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get('D2L_NLI_DATA', ROOT.parent / 'shared' / 'data'))


def settings(extra_mib, also=()):
    threads = {'OMP_NUM_THREADS': str(min(os.cpu_count() or 1, 4)), 'OMP_WAIT_POLICY': 'PASSIVE'}
    found = {'package': {}, 'glibc': {'D2L_NLI_NO_DEFAULTS': '1', **threads},
             'mmap-1MiB': {'D2L_NLI_NO_DEFAULTS': '1', **threads,
                           'MALLOC_MMAP_THRESHOLD_': str(1 << 20)}}
    for mib in extra_mib:
        found[f'env-{mib}'] = {'MALLOC_MMAP_THRESHOLD_': str(mib << 20),
                               'MALLOC_TRIM_THRESHOLD_': str(2 * mib << 20)}
    for text in also:  # name:VAR=VALUE,VAR=VALUE
        name, _, pairs = text.partition(':')
        found[name] = dict(pair.split('=', 1) for pair in pairs.split(','))
    return found


def timed(cmd, env):
    """(wall seconds, peak MiB) of one command run under /usr/bin/time."""
    with tempfile.NamedTemporaryFile('r', suffix='.time') as out:
        done = subprocess.run(['/usr/bin/time', '-o', out.name, '-f', '%e %M', *cmd], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode:
            sys.exit(f'{" ".join(cmd)} failed:\n{done.stderr[-2000:]}')
        wall, kib = out.read().split()[-2:]
    return float(wall), int(kib) / 1024


def one_round(name, extra, args, work):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('MALLOC_') and k != 'D2L_NLI_NO_DEFAULTS'}
    env.update(extra, D2L_NLI_DATA=str(DATA))
    bert, clf = work / f'{name}-bert', work / f'{name}-clf'
    py = [sys.executable, '-m', 'd2l_nli']
    pre = timed(py + ['pretrain', '--profile', 'small', '--num-steps', str(args.steps),
                      '--held-out-every', str(args.steps), '--out', str(bert),
                      '--checkpoint-dir', str(work / f'{name}-ck1')], env)
    fine = timed(py + ['finetune', '--profile', 'small', '--pretrained', str(bert),
                       '--epochs', '1', '--train-size', str(args.pairs), '--test-size', '500',
                       '--split', 'dev', '--out', str(clf),
                       '--checkpoint-dir', str(work / f'{name}-ck2')], env)
    return {'pretrain_s': pre[0], 'pretrain_peak_mib': pre[1],
            'finetune_s': fine[0], 'finetune_peak_mib': fine[1]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rounds', type=int, default=3, help='timed rounds (after one warm-up)')
    parser.add_argument('--steps', type=int, default=300, help='pretraining steps per run')
    parser.add_argument('--pairs', type=int, default=3000, help='fine-tuning pairs per run')
    parser.add_argument('--env-mib', type=int, nargs='*', default=[],
                        help='MALLOC_MMAP_THRESHOLD_ values to try, in MiB')
    parser.add_argument('--also', nargs='*', default=[], metavar='NAME:VAR=VALUE,...',
                        help='more settings to try, e.g. arena2:MALLOC_ARENA_MAX=2')
    parser.add_argument('--name', default='malloc',
                        help='results file: benchmarks/results/NAME.json')
    args = parser.parse_args()
    variants = settings(args.env_mib, args.also)
    runs = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds + 1):
            names = list(variants)[r % len(variants):] + list(variants)[:r % len(variants)]
            for name in names:
                result = one_round(name, variants[name], args, Path(tmp) / f'r{r}')
                print(f'round {r}{" (warm-up)" if r == 0 else ""} {name}: {result}', flush=True)
                if r:
                    runs[name].append(result)
    keys = ('pretrain_s', 'pretrain_peak_mib', 'finetune_s', 'finetune_peak_mib')
    print(f'\n| setting | {" | ".join(keys)} (median of {args.rounds}) |')
    print('|---|' + '---|' * len(keys))
    for name, rs in runs.items():
        print(f'| {name} | ' + ' | '.join(f'{statistics.median(r[k] for r in rs):.1f}'
                                          for k in keys) + ' |')
    out = ROOT / 'benchmarks' / 'results' / f'{args.name}.json'
    out.write_text(json.dumps({'command': ' '.join(sys.argv), 'steps': args.steps,
                               'pairs': args.pairs, 'settings': variants, 'runs': runs},
                              indent=1) + '\n')


if __name__ == '__main__':
    main()
