"""Choosing a notebook profile, and the data it runs on.

The notebooks run one of two profiles of the settings registry
(:data:`d2l_nli.PROFILES`): ``small``, a laptop CPU in minutes, or
``full``, the chapter's sizes, for GPUs. ``D2L_NLI_PROFILE`` chooses one;
unset, it is ``full`` when MXNet can use a GPU and ``small`` otherwise.
:func:`select_profile` returns the profile with the reason it was chosen,
which the notebooks print first.

:func:`find_data` decides which data a notebook reads: the real archives if
they are in the data folder or can be downloaded, else (``small`` profile
only) the generated demo corpus, said plainly. Before any download it checks
in a few seconds whether the servers answer at all, so an offline laptop (or
CI) falls back at once instead of waiting on timeouts.
"""
import dataclasses
import os
from pathlib import Path

from ..errors import D2LNLIError
from ..settings import NOTEBOOK_PROFILES, PROFILES

__all__ = ['select_profile', 'DataSource', 'find_data', 'local_data', 'runs_dir']


def _usable_gpu_count():
    from .devices import usable_gpus
    return len(usable_gpus())


def select_profile(name=None):
    """The profile to run: ``name``, else ``$D2L_NLI_PROFILE``, else by hardware.

    Returns a :class:`~d2l_nli.Profile` whose ``reason`` says why it was chosen.
    A notebook calls it first, so it also applies the package's process
    defaults (:func:`d2l_nli.machinery.runtime.process_defaults`).
    """
    from .runtime import process_defaults

    process_defaults()
    source = 'chosen in the code' if name else None
    if not name and os.environ.get('D2L_NLI_PROFILE', '').strip():
        name, source = os.environ['D2L_NLI_PROFILE'].strip(), 'D2L_NLI_PROFILE'
    if name:
        if name not in NOTEBOOK_PROFILES:
            kind = 'is not a notebook profile' if name in PROFILES else 'is unknown'
            raise D2LNLIError(f'profile {name!r} ({source}) {kind}; the notebooks run '
                              f'{" or ".join(NOTEBOOK_PROFILES)}')
        return dataclasses.replace(PROFILES[name], reason=f'{source}={name}')
    gpus = _usable_gpu_count()
    if gpus:
        reason = (f'D2L_NLI_PROFILE is not set and MXNet can use {gpus} GPU'
                  f'{"s" if gpus > 1 else ""}')
        return dataclasses.replace(PROFILES['full'], reason=reason)
    return dataclasses.replace(
        PROFILES['small'],
        reason='D2L_NLI_PROFILE is not set and no usable GPU was found; '
               'set D2L_NLI_PROFILE=full for the chapter\'s sizes')


@dataclasses.dataclass(frozen=True)
class DataSource:
    """Where the notebooks read WikiText-2 and SNLI from.

    ``kind`` is 'real' or 'demo'; ``root`` holds ``wikitext-2/`` and
    ``snli_1.0/``; ``test_split`` is the SNLI split used as the test set
    ('test', or 'dev' when a partial copy has no test file).
    """
    kind: str
    root: Path
    test_split: str
    message: str

    @property
    def wiki_dir(self):
        return self.root / 'wikitext-2'

    @property
    def snli_dir(self):
        return self.root / 'snli_1.0'

    def __str__(self):
        return self.message


def _reachable(name, timeout):
    """Whether some server for archive ``name`` accepts a connection within ``timeout`` s."""
    from .hub import DATA_HUB, answers, mirror_urls
    return any(answers(url, timeout) for url in mirror_urls(DATA_HUB[name]))


def local_data(data_dir=None, how=' in'):
    """The real data as a :class:`DataSource` if both archives are extracted in the data
    folder (the dev split standing in for a missing ``snli_1.0_test.txt``, since the
    notebooks read the ``.txt`` files), else None. ``how``: its message's words
    between "SNLI" and the folder."""
    from .hub import extracted, get_data_dir

    root = get_data_dir(data_dir)
    if not all(extracted(root, n) for n in ('wikitext-2', 'SNLI')):
        return None
    found = DataSource('real', root, 'test', f'data: the real WikiText-2 and SNLI{how} {root}')
    if (found.snli_dir / 'snli_1.0_test.txt').is_file():
        return found
    return dataclasses.replace(found, test_split='dev', message=found.message + (
        ' (no test split in this copy: the dev split stands in for it)'))


def find_data(profile, data_dir=None, *, probe_timeout=3.0):
    """The :class:`DataSource` for ``profile``: real data if possible, else the demo corpus.

    Real data is used when both archives are extracted in the data folder,
    or when their servers answer (unless ``D2L_NLI_OFFLINE=1``) and the
    download succeeds. Otherwise the ``small`` profile falls back to the
    generated demo corpus; the ``full`` profile raises with what to do.
    """
    from ..democorpus import ensure_demo_corpus
    from .hub import download_extract, extracted, get_data_dir, offline

    root = get_data_dir(data_dir)
    found = local_data(root)
    if found:
        return found
    missing = [n for n in ('wikitext-2', 'SNLI') if not extracted(root, n)]
    if offline():
        why = 'D2L_NLI_OFFLINE is set'
    elif not all(_reachable(n, probe_timeout) for n in missing):
        why = 'their servers cannot be reached (offline?)'
    else:
        try:
            for n in missing:
                download_extract(n, data_dir=root)
        except D2LNLIError as err:
            why = f'the download failed: {err}'
        else:
            return local_data(root, ', downloaded to')
    lacking = ' and '.join(missing) + (' are' if len(missing) > 1 else ' is')
    if profile.name != 'small':
        raise D2LNLIError(
            f'The {profile.name} profile needs the real WikiText-2 and SNLI, but {lacking} '
            f'not in {root} and {why}. What to do: put the extracted archives '
            f'there (see docs/data.md), or set D2L_NLI_DATA to a folder that holds '
            f'them, or run with D2L_NLI_PROFILE=small to use the demo corpus.')
    demo = ensure_demo_corpus(root, profile.corpus)
    return DataSource('demo', demo, 'test',
                      f'data: the generated DEMO corpus in {demo}, not the real datasets: '
                      f'{lacking} not in {root} and {why}. Numbers below are about the '
                      'demo corpus. For the real data, see docs/data.md.')


def runs_dir():
    """Folder for the notebooks' checkpoints: ``$D2L_NLI_RUNS``, else ``<cache>/runs``."""
    if os.environ.get('D2L_NLI_RUNS'):
        return Path(os.environ['D2L_NLI_RUNS']).expanduser()
    if os.environ.get('XDG_CACHE_HOME'):
        return Path(os.environ['XDG_CACHE_HOME']) / 'd2l_nli' / 'runs'
    import platformdirs
    return Path(platformdirs.user_cache_dir('d2l_nli', appauthor=False)) / 'runs'
