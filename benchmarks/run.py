"""Run the benchmarks side by side and print their tables.

Each measurement is a fresh process of one worker: ``worker_ours.py``
(d2l-nli, the project's ``.venv``), ``worker_ref.py`` (the book's code,
``benchmarks/.envs/ref``) and ``peer_hf.py`` (HuggingFace on PyTorch,
``benchmarks/.envs/hf``). The implementations take turns within one run
of this script, on the same data and settings, so they share the
machine's state. Results go to ``benchmarks/results/<group>.json``.

    bash benchmarks/setup_envs.sh              # once: the two other environments
    .venv/bin/python benchmarks/run.py throughput
    .venv/bin/python benchmarks/run.py tuned
    .venv/bin/python benchmarks/run.py pretrain  # against an earlier commit too
    .venv/bin/python benchmarks/run.py scaling
    .venv/bin/python benchmarks/run.py threads
    .venv/bin/python benchmarks/run.py accuracy
    .venv/bin/python benchmarks/run.py tta
    .venv/bin/python benchmarks/run.py report   # all tables again, from the results

Run nothing else heavy meanwhile: the machine's cores are part of the
measurement.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / 'results'
PY = {'ours': os.environ.get('D2L_NLI_BENCH_OURS', str(ROOT / '.venv' / 'bin' / 'python')),
      'ref': os.environ.get('D2L_NLI_BENCH_REF', str(HERE / '.envs' / 'ref' / 'bin' / 'python')),
      'hf': os.environ.get('D2L_NLI_BENCH_HF', str(HERE / '.envs' / 'hf' / 'bin' / 'python'))}
# An earlier commit of this project, unpacked by `git archive` (see the
# pretrain group), run with our environment and its own package and worker.
BASE = Path(os.environ.get('D2L_NLI_BENCH_BASE', HERE / '.base'))
PY['base'] = PY['ours']
SCRIPT = {'ours': HERE / 'worker_ours.py', 'ref': HERE / 'worker_ref.py', 'hf': HERE / 'peer_hf.py',
          'base': BASE / 'benchmarks' / 'worker_ours.py'}
# Settings we do not want to leak between implementations: each gets its defaults.
SCRUB = ('OMP_NUM_THREADS', 'OMP_WAIT_POLICY', 'GOMP_SPINCOUNT', 'D2L_NLI_THREADS',
         'MKL_NUM_THREADS', 'MALLOC_MMAP_THRESHOLD_', 'MALLOC_ARENA_MAX')


def bench_data():
    """The data folder the workers read (benchmarks/_common.py decides)."""
    sys.path.insert(0, str(HERE))
    import _common
    sys.path.remove(str(HERE))
    return _common.DATA


def worker(impl, *args, env=None, timeout=7200):
    """Run one worker; return its JSON result (with the command that produced it)."""
    for name, path in (('python', PY[impl]), ('script', SCRIPT[impl])):
        if not Path(path).exists():
            sys.exit(f'{path}: not found. Run: bash benchmarks/setup_envs.sh')
    cmd = [PY[impl], str(SCRIPT[impl]), *map(str, args)]
    full_env = {k: v for k, v in os.environ.items() if k not in SCRUB}
    if impl == 'base':  # the earlier commit's package, not the installed one
        env = {'PYTHONPATH': os.path.relpath(BASE, ROOT), **(env or {}),
               'D2L_NLI_BENCH_DATA': os.path.relpath(bench_data(), ROOT)}
    full_env.update(env or {})
    shown = ' '.join(f'{k}={v}' for k, v in (env or {}).items())
    print(f'$ {shown + " " if shown else ""}{" ".join(cmd[1:])}', file=sys.stderr, flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryFile('w+') as out, tempfile.TemporaryFile('w+') as err:
        proc = subprocess.Popen(cmd, env=full_env, stdout=out, stderr=err, text=True, cwd=ROOT)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            # wait4: this process's own peak resident memory, whatever it runs.
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode:
        sys.exit(f'worker failed ({proc.returncode}): {" ".join(cmd)}\n{stderr[-3000:]}')
    result = json.loads(stdout.strip().splitlines()[-1])
    result['command'] = (shown + ' ' if shown else '') + ' '.join(
        [os.path.relpath(cmd[0], ROOT)] + [os.path.relpath(cmd[1], ROOT)] + cmd[2:])
    result['wall_seconds'] = time.perf_counter() - start
    result['peak_rss_mib'] = usage.ru_maxrss / 1024  # Linux reports KiB
    return result


def save(group, data):
    RESULTS.mkdir(exist_ok=True)
    data = {'date': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()),
            'machine': machine(), **data}
    fd, tmp = tempfile.mkstemp(dir=RESULTS, suffix='.tmp')
    with os.fdopen(fd, 'w') as f:
        json.dump(data, f, indent=1)
    os.chmod(tmp, 0o644)  # mkstemp makes it private
    os.replace(tmp, RESULTS / f'{group}.json')


def load(group):
    path = RESULTS / f'{group}.json'
    return json.loads(path.read_text()) if path.exists() else None


def machine():
    cpu = 'unknown CPU'
    try:
        for line in open('/proc/cpuinfo'):
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30
    return f'{cpu}, {len(os.sched_getaffinity(0))} cores, {mem:.0f} GiB'


def med(values):
    return statistics.median(values)


# ---- groups --------------------------------------------------------------------------

def run_throughput(a):
    reps = a.repeats
    npz = '/tmp/d2l_nli_bench_snli'
    worker('ours', 'export', '--out', npz)
    out = {'rounds': reps}
    out['finetune'] = {
        'ours': worker('ours', 'finetune', '--batches', 30, '--warmup', 15, '--repeats', reps),
        'ours_no_levers': worker('ours', 'finetune', '--no-levers', '--batches', 20,
                                 '--warmup', 5, '--repeats', reps),
        'ref': worker('ref', 'finetune', '--batches', 20, '--warmup', 3, '--repeats', reps),
        'hf': [worker('hf', '--data', npz + '.train.npz', '--mode', 'train', '--batches', 30,
                      '--warmup', 15) for _ in range(reps)]}
    out['eval'] = {
        'ours': worker('ours', 'eval', '--repeats', reps),
        'ref': worker('ref', 'eval', '--repeats', reps),
        'hf': [worker('hf', '--data', npz + '.dev.npz', '--mode', 'eval', '--warmup', 3)
               for _ in range(reps)]}
    out['pretrain'] = {
        'ours': worker('ours', 'pretrain', '--batches', 10, '--warmup', 5, '--repeats', reps),
        'ref': worker('ref', 'pretrain', '--batches', 5, '--warmup', 2, '--repeats', reps)}
    out['wiki_load'] = {'ours': [worker('ours', 'wiki_load') for _ in range(reps)],
                        'ref': [worker('ref', 'wiki_load') for _ in range(reps)]}
    save('throughput', out)
    report_throughput(out)


SCALE_GRID = [(10000, 128), (100000, 128), (549367, 128), (549367, 64), (549367, 256)]


def run_scaling(a):
    out = {'grid': []}
    for n, max_len in SCALE_GRID:
        row = {'n': n, 'max_len': max_len}
        for impl in ('ours', 'ref'):
            row[impl] = worker(impl, 'scale', '--snli', 'full', '--n', n, '--max-len', max_len,
                               '--batches', a.batches)
        out['grid'].append(row)
        save('scaling', out)
    report_scaling(out)


THREAD_SETTINGS = [('package default', {}),
                   ('1 thread', {'OMP_NUM_THREADS': '1'}),
                   ('2 threads, libgomp default spin', {'OMP_NUM_THREADS': '2',
                                                        'GOMP_SPINCOUNT': '300000'}),
                   ('2 threads, short spin (10,000)', {'OMP_NUM_THREADS': '2',
                                                       'GOMP_SPINCOUNT': '10000'}),
                   ('2 threads, passive', {'OMP_NUM_THREADS': '2', 'OMP_WAIT_POLICY': 'PASSIVE'})]


def run_threads(a):
    out = {'quiet': {}, 'busy': {}}
    for label, env in THREAD_SETTINGS:
        out['quiet'][label] = worker('ours', 'finetune', '--batches', 30, '--warmup', 15,
                                     '--repeats', a.repeats, env=env)
    # The other core busy with a pure-Python loop, as when a student's
    # browser or a second notebook is working.
    busy = subprocess.Popen([sys.executable, '-c', 'while True: pass'])
    try:
        for label, env in THREAD_SETTINGS:
            out['busy'][label] = worker('ours', 'finetune', '--batches', 15, '--warmup', 10,
                                        '--repeats', 1, env=env)
    finally:
        busy.kill()
    save('threads', out)
    report_threads(out)


def run_accuracy(a):
    out = {'epochs': a.epochs, 'runs': []}
    for seed in a.seeds:
        for impl in ('ours', 'ref'):
            out['runs'].append(worker(impl, 'accuracy', '--seed', seed, '--epochs', a.epochs))
            save('accuracy', out)
    report_accuracy(out)


REF_TUNED = {'OMP_NUM_THREADS': '2', 'OMP_WAIT_POLICY': 'PASSIVE'}
NO_FAST_OPS = {'D2L_NLI_FAST_OPS': '0'}  # MXNet's own LayerNorm (d2l_nli/fast_ops.py)


def run_tuned(a):
    """The reference with the best thread setting we found for it, beside ours again."""
    reps = a.repeats
    out = {'rounds': reps, 'env': REF_TUNED}
    out['finetune'] = {
        'ours': worker('ours', 'finetune', '--batches', 30, '--warmup', 15, '--repeats', reps),
        'ref': worker('ref', 'finetune', '--batches', 20, '--warmup', 3, '--repeats', reps,
                      env=REF_TUNED)}
    out['eval'] = {'ours': worker('ours', 'eval', '--repeats', reps),
                   'ref': worker('ref', 'eval', '--repeats', reps, env=REF_TUNED)}
    out['pretrain'] = {
        'ours': worker('ours', 'pretrain', '--batches', 10, '--warmup', 5, '--repeats', reps),
        'ref': worker('ref', 'pretrain', '--batches', 5, '--warmup', 2, '--repeats', reps,
                      env=REF_TUNED)}
    save('tuned', out)
    report_tuned(out)


def run_pretrain(a):
    """Pretraining speed and memory: ours, the base commit, the plain MLM path, the reference.

    The base is this project at an earlier commit (``--base-commit``,
    unpacked into ``benchmarks/.base``); fine-tuning and evaluation are
    measured again beside the HF peer in the same run.
    """
    reps = a.repeats
    base_commit = unpack_base(a.base_commit)
    npz = '/tmp/d2l_nli_bench_snli'
    worker('ours', 'export', '--out', npz)
    out = {'rounds': reps, 'base_commit': base_commit, 'env_ref': REF_TUNED}

    def pretrain(impl, *extra, env=None):
        return worker(impl, 'pretrain', '--batches', 10, '--warmup', 5, '--repeats', reps,
                      *extra, env=env)

    out['pretrain'] = {'ours': pretrain('ours'), 'base': pretrain('base'),
                       'ours_plain_mlm': pretrain('ours', '--mlm', 'plain'),
                       'ours_no_fast_ops': pretrain('ours', env=NO_FAST_OPS),
                       'ref': worker('ref', 'pretrain', '--batches', 5, '--warmup', 2,
                                     '--repeats', reps, env=REF_TUNED)}

    def finetune(impl, env=None):
        return worker(impl, 'finetune', '--batches', 30, '--warmup', 15, '--repeats', reps,
                      env=env)

    out['finetune'] = {
        'ours': finetune('ours'), 'base': finetune('base'),
        'ours_no_fast_ops': finetune('ours', env=NO_FAST_OPS),
        'hf': [worker('hf', '--data', npz + '.train.npz', '--mode', 'train', '--batches', 30,
                      '--warmup', 15) for _ in range(reps)]}
    out['eval'] = {
        'ours': worker('ours', 'eval', '--repeats', reps),
        'hf': [worker('hf', '--data', npz + '.dev.npz', '--mode', 'eval', '--warmup', 3)
               for _ in range(reps)]}
    save('pretrain', out)
    report_pretrain(out)


def unpack_base(commit):
    """``git archive`` of ``commit`` into BASE (replaced); returns the full hash."""
    full = subprocess.run(['git', 'rev-parse', commit], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()
    if BASE.exists() and (BASE / '.commit').exists() and (BASE / '.commit').read_text() == full:
        return full
    import shutil
    shutil.rmtree(BASE, ignore_errors=True)
    BASE.mkdir(parents=True)
    archive = subprocess.run(['git', 'archive', full], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(['tar', '-x', '-C', str(BASE)], input=archive, check=True)
    (BASE / '.commit').write_text(full)
    return full


def run_tta(a):
    """Ours, for real: pretrain (small profile) then fine-tune epochs until ``--budget`` s.

    The reference's run (300 steps of 256 pairs, then 3 epochs) takes ~45
    minutes here; its curve in the report is built from measured pieces
    (see ``reference_tta_curve``), not run end to end.
    """
    out = {'ours': worker('ours', 'tta', '--epochs', 100, '--budget', a.budget, '--seed', 0)}
    save('tta', out)
    report_tta(out)
    plot_tta()


# ---- tables --------------------------------------------------------------------------

def rates(result):
    if isinstance(result, list):  # several processes with one rate each (the HF peer)
        return [r['examples_per_sec'] for r in result]
    return result['rates']


def cmd(result):
    return (result[0] if isinstance(result, list) else result)['command']


def report_throughput(out):
    print(f"\n### Throughput (median of {out['rounds']} rounds)\n")
    print('| what | ours | reference | ratio | HF peer | ours / HF |')
    print('|---|---|---|---|---|---|')
    for key, unit in (('finetune', 'examples/s'), ('eval', 'examples/s'),
                      ('pretrain', 'pairs/s')):
        o, r = med(rates(out[key]['ours'])), med(rates(out[key]['ref']))
        hf = out[key].get('hf')
        h = med(rates(hf)) if hf else None
        hf_cols = f'{h:,.0f} | {o / h:.2f}x' if h else '- | -'
        print(f'| {key} ({unit}) | {o:,.0f} | {r:,.0f} | **{o / r:.2f}x** | {hf_cols} |')
    if 'ours_no_levers' in out['finetune']:
        n = med(rates(out['finetune']['ours_no_levers']))
        print(f'| finetune, batches padded to 128 (no trim, no buckets) | {n:,.0f} | | '
              f'{n / med(rates(out["finetune"]["ref"])):.2f}x | | |')
    o = med([r['seconds'] for r in out['wiki_load']['ours']])
    r = med([r['seconds'] for r in out['wiki_load']['ref']])
    print(f'| load_data_wiki, full WikiText-2 (s) | {o:.1f} | {r:.1f} | **{r / o:.1f}x** | | |')
    print('\nCommands:')
    for key in ('finetune', 'eval', 'pretrain', 'wiki_load'):
        for impl, result in out[key].items():
            print(f'- {key}, {impl}: `{cmd(result)}`')


def report_scaling(out):
    print('\n### Scaling with SNLI pairs and max_len (generated full-size SNLI)\n')
    print('| pairs | max_len | preprocess s (ours / ref) | speed-up | one epoch min '
          '(ours / ref) | speed-up | peak MiB fine-tuning (ours / ref) | ratio |')
    print('|---|---|---|---|---|---|---|---|')
    for row in out['grid']:
        o, r = row['ours'], row['ref']
        print(f"| {row['n']:,} | {row['max_len']} | {o['prep_seconds']:.1f} / "
              f"{r['prep_seconds']:.1f} | **{r['prep_seconds'] / o['prep_seconds']:.1f}x** | "
              f"{o['epoch_seconds'] / 60:.1f} / {r['epoch_seconds'] / 60:.1f} | "
              f"{r['epoch_seconds'] / o['epoch_seconds']:.1f}x | "
              f"{o['hwm_finetune_mib']:,.0f} / {r['hwm_finetune_mib']:,.0f} | "
              f"**{o['hwm_finetune_mib'] / r['hwm_finetune_mib']:.2f}x** |")
    print('\nCommands:')
    for row in out['grid']:
        for impl in ('ours', 'ref'):
            print(f"- `{row[impl]['command']}`")


def report_threads(out):
    print('\n### Threads (ours, fine-tuning examples/s)\n')
    print('| setting | quiet machine | other core busy |')
    print('|---|---|---|')
    for label, _ in THREAD_SETTINGS:
        q, b = out['quiet'].get(label), out['busy'].get(label)
        if q and b:
            print(f'| {label} | {med(rates(q)):,.0f} | {med(rates(b)):,.0f} |')


def report_accuracy(out):
    print(f"\n### Accuracy after {out['epochs']} epochs, same data (dev accuracy)\n")
    print('| seed | ours | reference |')
    print('|---|---|---|')
    by = {}
    for r in out['runs']:
        by.setdefault(r['seed'], {})[r['impl']] = r['curve'][-1][2]
    for s, accs in sorted(by.items()):
        print(f"| {s} | {accs.get('ours', float('nan')):.3f} | "
              f"{accs.get('reference', float('nan')):.3f} |")
    ours = [v['ours'] for v in by.values() if 'ours' in v]
    ref = [v['reference'] for v in by.values() if 'reference' in v]
    if ours and ref:
        print(f'| mean | {statistics.mean(ours):.3f} | {statistics.mean(ref):.3f} |')


def reference_tta_curve():
    """The reference's time-to-accuracy curve from measured pieces, or None.

    Minutes: ``load_data_wiki`` + 300 pretraining steps at the measured
    step time (throughput group) + the measured fine-tuning epochs
    (accuracy group, evaluation excluded). Accuracy: the mean over seeds of
    the reference fine-tuned from a random initialization (accuracy group);
    300 steps of its pretraining only reach the unigram baseline, and such a
    BERT fine-tunes like a random one (see BENCHMARKS.md).
    """
    thr, acc = load('throughput'), load('accuracy')
    if not thr or not acc:
        return None
    load_s = med([r['seconds'] for r in thr['wiki_load']['ref']])
    step_s = 256 / med(rates(thr['pretrain']['ref']))
    runs = [r for r in acc['runs'] if r['impl'] == 'reference']
    start = load_s + 300 * step_s
    curve = [[start, 0, None]]
    for e in range(acc['epochs']):
        t = statistics.mean(r['curve'][e][0] - (r['curve'][e - 1][0] if e else 0) for r in runs)
        start += t
        curve.append([start, e + 1, statistics.mean(r['curve'][e][2] for r in runs)])
    return curve


def report_tta(out):
    print('\n### Time to accuracy (real WikiText-2, 9,987 SNLI train pairs, dev split)\n')
    print('| implementation | minutes | epoch | dev accuracy |')
    print('|---|---|---|---|')
    curves = [('reference (measured pieces)', reference_tta_curve()),
              ('ours', out['ours']['curve'] if 'ours' in out else None)]
    for name, curve in curves:
        for seconds, epoch, acc in curve or []:
            shown = '-' if acc is None else f'{acc:.3f}'
            print(f'| {name} | {seconds / 60:.1f} | {epoch} | {shown} |')


def plot_tta(path=RESULTS / 'tta.png'):
    """Accuracy-vs-minutes of both implementations as a PNG (written atomically)."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib.figure import Figure

    data = load('tta')
    if not data:
        return
    fig = Figure(figsize=(6, 3.2))
    ax = fig.add_subplot()
    for name, curve, style in (('reference (measured pieces)', reference_tta_curve(), 'o--'),
                               ('d2l-nli, small profile', data['ours']['curve'], 'o-')):
        points = [(t / 60, a) for t, _, a in curve or [] if a is not None]
        if points:
            ax.plot(*zip(*points), style, markersize=3, label=name)
    ax.axhline(1 / 3, color='gray', linewidth=0.8, linestyle=':', label='chance')
    ax.set_xlabel('minutes (pretraining + fine-tuning, evaluation excluded)')
    ax.set_ylabel('dev accuracy')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix='.png')
    os.close(fd)
    fig.savefig(tmp, dpi=100)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def report_tuned(out):
    print(f"\n### Against the reference with a tuned thread setting ({out['env']})\n")
    print('| what | ours | reference, tuned | ratio |')
    print('|---|---|---|---|')
    for key in ('finetune', 'eval', 'pretrain'):
        o, r = med(rates(out[key]['ours'])), med(rates(out[key]['ref']))
        print(f'| {key} | {o:,.0f} | {r:,.0f} | **{o / r:.2f}x** |')
    print('\nCommands:')
    for key in ('finetune', 'eval', 'pretrain'):
        for impl, result in out[key].items():
            print(f'- {key}, {impl}: `{cmd(result)}`')


def report_pretrain(out):
    p = out['pretrain']
    o, b, pl, r = (med(rates(p[k])) for k in ('ours', 'base', 'ours_plain_mlm', 'ref'))
    print(f"\n### Pretraining, chapter settings (median of {out['rounds']} rounds; "
          f"base = commit {out['base_commit'][:7]})\n")
    print('| what | pairs/s | step (ms) | ours / this | peak RSS of the process (MiB) |')
    print('|---|---|---|---|---|')
    nf = med(rates(p['ours_no_fast_ops']))
    for name, key, rate in (('ours (fused MLM output layer, compiled LayerNorm)', 'ours', o),
                            ("ours with MXNet's LayerNorm (`D2L_NLI_FAST_OPS=0`)",
                             'ours_no_fast_ops', nf),
                            ('ours, MLM through autograd (`--mlm plain`)', 'ours_plain_mlm', pl),
                            ('base commit', 'base', b),
                            ('reference, tuned threads', 'ref', r)):
        print(f"| {name} | {rate:,.0f} | {256 / rate * 1000:,.0f} | **{o / rate:.2f}x** | "
              f"{p[key]['peak_rss_mib']:,.0f} |")
    print('\n| what | examples/s | ours / this |')
    print('|---|---|---|')
    for key in ('finetune', 'eval'):
        f = med(rates(out[key]['ours']))
        for impl, result in out[key].items():
            print(f'| {key}, {impl} | {med(rates(result)):,.0f} | '
                  f'**{f / med(rates(result)):.2f}x** |')
    print('\nCommands:')
    for key in ('pretrain', 'finetune', 'eval'):
        for impl, result in out[key].items():
            print(f'- {key}, {impl}: `{cmd(result)}`')


def report_chapter():
    """The chapter's full run, extrapolated from measured per-step times (both sides)."""
    thr, sc, pre_group = load('throughput'), load('scaling'), load('pretrain')
    if not thr or not sc:
        return
    full = next((r for r in sc['grid'] if r['n'] == 549367 and r['max_len'] == 128), None)
    if not full:
        return
    print('\n### The chapter\'s full run, extrapolated (4,000 steps of 256 pairs, then 5 '
          'epochs over 549,367 pairs)\n')
    print('| part | ours (min) | reference (min) |')
    print('|---|---|---|')
    total = {}
    # Ours: the newest pretraining and fine-tuning rates (pretrain group) when measured.
    newest = pre_group or thr
    for impl, key in (('ours', 'ours'), ('ref', 'ref')):
        rated = newest if impl == 'ours' else thr
        pre = 4000 * 256 / med(rates(rated['pretrain'][impl])) / 60
        load_s = med([r['seconds'] for r in thr['wiki_load'][impl]]) / 60
        prep = full[key]['prep_seconds'] / 60
        # Per-step rate from the throughput group (30 timed batches x rounds,
        # after warm-up; the scaling group times only a few batches).
        fine = 5 * 549367 / med(rates(rated['finetune'][impl])) / 60
        total[impl] = (load_s, pre, prep, fine)
    names = ['load_data_wiki', 'pretraining, 4,000 steps', 'SNLI preprocessing',
             'fine-tuning, 5 epochs']
    for i, name in enumerate(names):
        print(f"| {name} | {total['ours'][i]:.1f} | {total['ref'][i]:.1f} |")
    o, r = sum(total['ours']), sum(total['ref'])
    print(f'| **total** | **{o:.0f}** | **{r:.0f}** ({r / 60:.1f} h) |')
    print(f'\nRatio: {r / o:.1f}x faster (evaluation passes not included).')


def run_report(a):
    for group, fn in (('throughput', report_throughput), ('tuned', report_tuned),
                      ('pretrain', report_pretrain),
                      ('scaling', report_scaling),
                      ('threads', report_threads), ('accuracy', report_accuracy),
                      ('tta', report_tta)):
        data = load(group)
        if data:
            print(f"\n(measured {data['date']} on {data['machine']})")
            fn(data)
    report_chapter()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split('\n\n', 1)[1])
    parser.add_argument('group', choices=['throughput', 'tuned', 'pretrain', 'scaling', 'threads',
                                          'accuracy', 'tta', 'report'])
    parser.add_argument('--base-commit', default='f1ec79d',
                        help='pretrain: the earlier commit to compare with (issue 14 started '
                             'from f1ec79d)')
    parser.add_argument('--budget', type=float, default=900,
                        help='tta: seconds of ours (pretraining + fine-tuning epochs)')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--batches', type=int, default=8, help='scaling: timed batches')
    parser.add_argument('--epochs', type=int, default=3, help='accuracy: epochs')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    a = parser.parse_args()
    globals()['run_' + a.group](a)


if __name__ == '__main__':
    main()
