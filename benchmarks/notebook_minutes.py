"""The doctor's estimates beside the notebooks' real times, on this machine.

    python benchmarks/notebook_minutes.py                      # all five, small profile
    D2L_NLI_BUDGET_MINUTES=10 python benchmarks/notebook_minutes.py --name budget-10
    python benchmarks/notebook_minutes.py --save               # also keep the executed notebooks

First runs ``python -m d2l_nli doctor --json`` (its micro-benchmark and its
minutes per notebook), then executes each notebook top to bottom in a fresh
kernel, as ``tools/nbrun.py`` does, timing every cell, and compares: each
notebook's whole time with the doctor's estimate (target: within 30%), and
the cells tagged ``training`` with the estimate of the training cells; under
a time budget (``D2L_NLI_BUDGET_MINUTES``), the training cells of all the
notebooks together with the budget (target: within 30%).

The data and profile follow the environment (``D2L_NLI_DATA``,
``D2L_NLI_PROFILE``); the checkpoints go to a fresh runs folder (``--runs``),
so that each notebook trains what it trains for a reader who runs them in
order. ``--save`` writes the executed notebooks back, cleaned as
``tools/nbrun.py`` cleans them. Results: ``benchmarks/results/notebook-minutes-<name>.json``.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tools'))
NOTEBOOKS = ['01_pretraining_bert', '02_snli_dataset_for_bert', '03_finetuning_bert',
             '04_exercise_truncation', '05_what_bert_learned']


def cell_seconds(cell):
    """Wall seconds of an executed cell, from the timing nbclient records."""
    timing = cell.get('metadata', {}).get('execution', {})
    start, end = timing.get('iopub.execute_input'), timing.get('shell.execute_reply')
    if not (start and end):
        return 0.0
    parse = lambda s: datetime.fromisoformat(s.replace('Z', '+00:00')).timestamp()  # noqa: E731
    return parse(end) - parse(start)


def run_notebook(path, save):
    import nbrun

    nb, seconds = nbrun.run(path, timeout=3600)
    cells = [c for c in nb['cells'] if c['cell_type'] == 'code']
    training = sum(cell_seconds(c) for c in cells if 'training' in c['metadata'].get('tags', []))
    seconds_per_cell = [round(cell_seconds(c), 2) for c in cells]
    errors = nbrun.clean(nb, nbrun.machine_paths())  # drops the timings
    printed = [''.join(''.join(o.get('text', '')) for o in c.get('outputs', []))
               for c in cells if 'training' in c['metadata'].get('tags', [])]
    if errors:
        raise SystemExit(f'{path}: error outputs {errors}')
    if save:
        nbrun.save(nb, path)
    return {'seconds': seconds, 'training_seconds': training,
            'cells': seconds_per_cell, 'training_printed': printed,
            'first_cell_printed': ''.join(''.join(o.get('text', ''))
                                          for o in cells[0].get('outputs', []))}


def doctor_estimates(folder):
    out = Path(folder) / 'doctor.json'
    subprocess.run([sys.executable, '-m', 'd2l_nli', 'doctor', '--json', str(out)],
                   check=True, cwd=ROOT)
    return json.loads(out.read_text())


def compare(record):
    budget = record['doctor'].get('budget', {})
    estimated = (budget.get('notebooks') if budget.get('plan')
                 else record['doctor']['profiles']['small']['notebooks'])
    rows, ok = [], True
    print(f"{'notebook':<28}{'estimated':>10}{'measured':>10}{'ratio':>7}"
          f"{'train est':>11}{'train':>8}")
    for name, real in record['notebooks'].items():
        est = estimated[name]
        ratio = real['seconds'] / est['total_s']
        ok &= 0.7 <= ratio <= 1.3
        rows.append({'notebook': name, 'estimated_s': est['total_s'], 'measured_s': real['seconds'],
                     'ratio': ratio, 'training_estimated_s': est['training_s'],
                     'training_measured_s': real['training_seconds']})
        print(f"{name:<28}{est['total_s'] / 60:>9.1f}m{real['seconds'] / 60:>9.1f}m{ratio:>7.2f}"
              f"{est['training_s'] / 60:>10.1f}m{real['training_seconds'] / 60:>7.1f}m")
    total = sum(r['measured_s'] for r in rows)
    training = sum(r['training_measured_s'] for r in rows)
    print(f"{'all':<28}{sum(r['estimated_s'] for r in rows) / 60:>9.1f}m{total / 60:>9.1f}m"
          f"{'':>7}{sum(r['training_estimated_s'] for r in rows) / 60:>10.1f}m"
          f"{training / 60:>7.1f}m")
    record['rows'], record['estimates_within_30_percent'] = rows, bool(ok)
    if budget.get('plan'):
        minutes = budget['minutes']
        record['budget_ratio'] = training / 60 / minutes
        print(f'budget {minutes:g} min: the training cells took {training / 60:.1f} min '
              f'({record["budget_ratio"]:.2f} of it)')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--notebooks', nargs='+', default=NOTEBOOKS, metavar='NAME')
    parser.add_argument('--runs', help='runs folder for the checkpoints (default: a fresh one)')
    parser.add_argument('--save', action='store_true', help='write the executed notebooks back')
    parser.add_argument('--name', default='small', help='name of the results file')
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ['D2L_NLI_RUNS'] = args.runs or str(Path(tmp) / 'runs')
        record = {'command': ' '.join([Path(sys.executable).name] + sys.argv),
                  'budget_minutes': os.environ.get('D2L_NLI_BUDGET_MINUTES'),
                  'date': time.strftime('%Y-%m-%d %H:%M'),
                  'cpu': _cpu(), 'doctor': doctor_estimates(tmp), 'notebooks': {}}
        for name in args.notebooks:
            record['notebooks'][name] = run_notebook(ROOT / 'notebooks' / f'{name}.ipynb',
                                                     args.save)
            print(f'{name}: {record["notebooks"][name]["seconds"]:.0f} s', flush=True)
        paths = __import__('nbrun').machine_paths()
    compare(record)
    out = ROOT / 'benchmarks' / 'results' / f'notebook-minutes-{args.name}.json'
    text = json.dumps(record, indent=1) + '\n'
    for path, name in paths.items():  # no machine's folders in the committed results
        text = text.replace(path, name)
    out.write_text(text)
    print(f'written to {out.relative_to(ROOT)}')


def _cpu():
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return f'{line.split(":", 1)[1].strip()}, {os.cpu_count()} CPUs'
    except OSError:
        pass
    return f'{os.cpu_count()} CPUs'


if __name__ == '__main__':
    main()
