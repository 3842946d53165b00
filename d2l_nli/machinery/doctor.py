"""``python -m d2l_nli doctor``: what this machine has, and how long each notebook will take.

A teacher or a student runs it first. Each check prints one line, ``ok``,
``note`` (worth knowing, nothing broken) or ``FAIL`` (with what to do);
the command exits 1 if any check failed. The checks: the versions and the
MXNet wheel, the thread settings and where they came from, the GPUs MXNet
sees and whether each can be used, the data folder and its datasets, the
download mirrors (3 seconds each at most; skipped with
``D2L_NLI_OFFLINE=1``), and then a measured micro-benchmark (a few
training steps at the small and full profiles' sizes, about 15 seconds on
2 cores) priced into minutes per notebook under each profile
(:mod:`d2l_nli.machinery.budget`), and the plan for a time budget if one
is set.
"""
import dataclasses
import json
import os
import platform
import tempfile
from pathlib import Path

from ..errors import D2LNLIError

__all__ = ['Check', 'run_checks', 'doctor']


@dataclasses.dataclass
class Check:
    """One line of the report: ``status`` is 'ok', 'note' or 'FAIL'."""
    name: str
    status: str
    message: str

    def __str__(self):
        return f'  {self.status:<4}  {self.name}: {self.message}'


def check_versions():
    import mxnet
    import numpy

    from .runtime import installed_mxnet_wheels

    wheels = installed_mxnet_wheels()
    versions = (f'Python {platform.python_version()}, MXNet {mxnet.__version__}, '
                f'numpy {numpy.__version__}')
    if len(wheels) > 1:
        return Check('versions', 'FAIL', f'{versions}; both MXNet wheels are installed '
                     f'({", ".join(wheels)}): pip uninstall -y {" ".join(wheels)}, then '
                     'pip install -e ".[cpu]" (or ".[gpu]")')
    kind = 'the GPU wheel' if wheels and wheels[0] != 'mxnet' else 'the CPU wheel'
    return Check('versions', 'ok', f'{versions} ({kind}, {wheels[0] if wheels else "?"})')


def check_threads(user=None):
    """The thread settings in effect, and whether they came from the user or the package."""
    from .runtime import (
        MAX_DEFAULT_THREADS,
        OPT_OUT,
        configure_threads,
        defaults_wanted,
        user_thread_settings,
    )

    user = user_thread_settings() if user is None else user
    try:
        configure_threads(dict(user))
    except ValueError as err:
        return Check('threads', 'FAIL', f'{err}; or unset it for the default')
    shown = ', '.join(f'{k}={os.environ[k]}' for k in
                      ('OMP_NUM_THREADS', 'OMP_WAIT_POLICY', 'GOMP_SPINCOUNT') if k in os.environ)
    if not defaults_wanted(user):
        source = f'{OPT_OUT} is set: MXNet\'s own defaults'
    elif 'D2L_NLI_THREADS' in user:
        source = 'from D2L_NLI_THREADS'
    elif 'OMP_NUM_THREADS' in user:
        source = 'OMP_NUM_THREADS was set in the environment'
    else:
        source = (f'the package\'s default: the CPUs this process may use, at most '
                  f'{MAX_DEFAULT_THREADS}; D2L_NLI_THREADS=n changes it')
    return Check('threads', 'ok', f'{shown or "none set"} ({source})')


def check_gpus():
    from .devices import GPUNotUsableError, check_gpu, gpu_name, num_gpus

    try:
        count = num_gpus()
    except Exception as err:  # a broken driver: say so rather than crash
        return [Check('GPUs', 'FAIL', f'MXNet cannot count the GPUs: {err}')]
    if count == 0:
        return [Check('GPUs', 'ok', 'none that MXNet can see: training runs on the CPU, '
                      'and the notebooks choose the small profile')]
    checks = []
    for i in range(count):
        try:
            check_gpu(i)
            checks.append(Check(f'GPU {i}', 'ok', f'{gpu_name(i)}: usable'))
        except GPUNotUsableError as err:
            checks.append(Check(f'GPU {i}', 'note', str(err)))
    return checks


def _readable(path):
    try:
        with open(path, 'rb') as f:
            return f.read(4096)
    except OSError:
        return None


def check_data(root):
    """The data folder and each dataset in it: present, readable in its format, and
    its downloaded archive (if it is there) verified against its SHA-1."""
    from .hub import DATA_HUB

    if root.exists() and not root.is_dir():
        return [Check('data folder', 'FAIL', f'{root} is a file, not a folder: set '
                      'D2L_NLI_DATA to a folder (it is created if absent)')]
    if root.is_dir():
        try:
            os.listdir(root)
        except OSError as err:
            return [Check('data folder', 'FAIL', f'{root} cannot be read ({err.strerror}): '
                          'fix its permissions, or set D2L_NLI_DATA to a folder you can '
                          'read and write')]
    else:
        parent = next((p for p in root.parents if p.exists()), None)
        if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK):
            return [Check('data folder', 'FAIL', f'{root} does not exist and cannot be '
                          f'created under {parent}: set D2L_NLI_DATA to a folder you can '
                          'write')]
    checks = [Check('data folder', 'ok', f'{root}')]
    formats = {'SNLI': (b'gold_label\t', 'snli_1.0_dev.txt'),
               'wikitext-2': (b' = ', 'wiki.valid.tokens')}
    for name, archive in DATA_HUB.items():
        folder = root / archive.folder
        marker, other = formats[name]
        first = _readable(folder / archive.markers[0])
        if first is None:
            checks.append(Check(name, 'note', f'not in {root}: the notebooks download it '
                                'when online, or use the demo corpus (small profile)'))
        elif marker not in first or _readable(folder / other) is None:
            checks.append(Check(name, 'FAIL', f'{folder} does not look like the extracted '
                                f'{archive.file_name} (no {other}, or '
                                f'{archive.markers[0]} in another format): delete the '
                                'folder and let the notebooks download it again'))
        else:
            checks.append(Check(name, 'ok', f'present and readable in {folder}'))
        zipped = root / archive.file_name
        if zipped.is_file():
            checks.append(_checksum(name, archive, zipped))
    return checks


def _checksum(name, archive, path):
    """The downloaded archive against its published SHA-1."""
    from .hub import file_sha1

    if file_sha1(path) != archive.sha1:
        return Check(f'{name} archive', 'FAIL', f'{path} has the wrong SHA-1 (expected '
                     f'{archive.sha1}): delete it; the next download fetches it again')
    return Check(f'{name} archive', 'ok', f'{path.name} verified (SHA-1)')


def check_mirrors(timeout=3.0):
    from .hub import DATA_HUB, answers, mirror_urls, offline

    if offline():
        try:
            mirror_urls(DATA_HUB['SNLI'])
        except D2LNLIError as err:
            return [Check('mirrors', 'FAIL', str(err))]
        return [Check('mirrors', 'note', 'not tried: D2L_NLI_OFFLINE is set')]
    checks = []
    for name, archive in DATA_HUB.items():
        try:
            urls = mirror_urls(archive)
        except D2LNLIError as err:
            return [Check('mirrors', 'FAIL', str(err))]
        answered = [u for u in urls if answers(u, timeout)]
        if answered:
            checks.append(Check(f'{name} mirror', 'ok', f'{answered[0]} answers'))
        else:
            checks.append(Check(f'{name} mirror', 'note', f'no server answered within '
                                f'{timeout:g} s ({", ".join(urls)}): offline? The notebooks '
                                'then use the data folder, or the demo corpus'))
    return checks


def run_checks(root, *, mirrors_timeout=3.0):
    """Every check but the benchmark, as a list of :class:`Check`."""
    checks = [check_versions(), check_threads()]
    checks += check_gpus() + check_data(root) + check_mirrors(mirrors_timeout)
    return checks


def _source_for_estimates(root, tmp):
    """The data the notebooks would read (the real data, else the demo corpus in ``tmp``)."""
    from ..democorpus import write_demo_corpus
    from ..settings import PROFILES
    from .notebook_setup import DataSource, local_data

    found = local_data(root)
    if found:
        return found
    write_demo_corpus(tmp, PROFILES['small'].corpus)
    return DataSource('demo', Path(tmp), 'test', '')


def estimates(root, budget=None, devices=None):
    """``(lines, record)``: minutes per notebook under each profile, measured here."""
    from ..settings import PROFILES
    from . import steptimes
    from .budget import NOTEBOOKS, notebook_seconds, plan_budget, plan_file, save_measurements
    from .devices import try_all_gpus

    devices = devices or try_all_gpus()
    with tempfile.TemporaryDirectory() as tmp:
        source = _source_for_estimates(root, tmp)
        columns, record, first = {}, {'data': source.kind, 'profiles': {}}, None
        for name in ('small', 'full'):
            if source.kind == 'demo' and name == 'full':
                continue  # the full profile needs the real data
            profile = PROFILES[name].for_data(source)
            shape, samples = steptimes.data_shape(source, profile)
            times = steptimes.measure(profile, samples, devices, reuse=first)
            first = first or times
            columns[name] = notebook_seconds(profile, shape, times)
            record['profiles'][name] = {
                'shape': dataclasses.asdict(shape), 'times': dataclasses.asdict(times),
                'notebooks': {NOTEBOOKS[n]: {'training_s': t, 'total_s': s}
                              for n, (t, s) in columns[name].items()}}
            if name == 'small' and budget:
                save_measurements(plan_file(profile, budget, source.kind), shape, times)
                try:
                    sized, plan = plan_budget(budget, profile, shape, times)
                except D2LNLIError as err:
                    record['budget'] = {'minutes': budget, 'error': str(err)}
                else:
                    record['budget'] = {
                        'minutes': budget, 'plan': dataclasses.asdict(plan),
                        'notebooks': {NOTEBOOKS[n]: {'training_s': t, 'total_s': s}
                                      for n, (t, s) in notebook_seconds(sized, shape,
                                                                        times).items()}}
    return _table(columns, record, source), record


def _minutes(seconds):
    return '<0.1' if seconds < 6 else f'{seconds / 60:.1f}'


def _table(columns, record, source):
    t = record['profiles']['small']['times']
    data = ('the real data' if source.kind == 'real' else
            'the demo corpus (the real data is not in the data folder)')
    lines = [f'  step times (small profile): {t["pretrain_step"]:.3f} s per pretraining step, '
             f'{t["finetune_pair"] * 1e3:.2f} ms per fine-tuning pair, start-up '
             f'{t["startup"]:.1f} s',
             f'estimated minutes per notebook on this machine, on {data} '
             '(whole notebook; training cells in brackets):']
    names = list(columns)
    lines.append(f'  {"notebook":<28}' + ''.join(f'{n:>16}' for n in names))
    from .budget import NOTEBOOKS
    rows = [(notebook, [columns[n][number] for n in names])
            for number, notebook in NOTEBOOKS.items()]
    rows.append(('all five', [tuple(map(sum, zip(*columns[n].values()))) for n in names]))
    for notebook, cells in rows:
        lines.append(f'  {notebook:<28}' + ''.join(
            f'{_minutes(total):>9} ({_minutes(training):>4})' for training, total in cells))
    if 'plan' in record.get('budget', {}):
        plan = record['budget']['plan']
        lines.append(f'budget of {plan["minutes"]:g} minutes (small profile): {plan["reason"]}')
    return lines


def doctor(argv_budget=None, json_path=None, benchmark=True, out=print):
    """Print the report; returns the exit status (1 if a check failed)."""
    from .budget import budget_minutes
    from .hub import get_data_dir

    out('d2l-nli doctor')
    root = get_data_dir()
    checks = run_checks(root)
    try:
        budget = argv_budget or budget_minutes()
    except D2LNLIError as err:
        checks.append(Check('budget', 'FAIL', str(err)))
        budget = None
    for check in checks:
        out(str(check))
    failed = [c for c in checks if c.status == 'FAIL']
    record = {'checks': [dataclasses.asdict(c) for c in checks]}
    if benchmark and not failed:
        lines, measured = estimates(root, budget)
        record.update(measured)
        for line in lines:
            out(line)
        if 'error' in measured.get('budget', {}):
            failed.append(Check('budget', 'FAIL', measured['budget']['error']))
            out(str(failed[-1]))
    elif failed:
        out('  (no micro-benchmark until the checks marked FAIL are fixed)')
    if json_path:
        from .files import atomic_write
        with atomic_write(json_path) as f:
            json.dump(record, f, indent=1)
    out(f'{len(failed)} problem{"s" if len(failed) != 1 else ""} found'
        + ('' if not failed else ': see the lines marked FAIL'))
    return 1 if failed else 0
