"""Notebook profiles and the data they run on.

A *profile* bundles the sizes a notebook runs at:

* ``small``: a laptop CPU in minutes (subsets of SNLI, a few hundred
  pretraining steps with settings that learn within that budget);
* ``full``: the chapter's sizes (pretraining batch 256, max_len 128, 4,000
  steps; fine-tuning batch 256, 5 epochs over all of SNLI), for GPUs.

``D2L_NLI_PROFILE`` chooses one; unset, it is ``full`` when MXNet can use a
GPU and ``small`` otherwise. :func:`select_profile` returns the profile with
the reason it was chosen, which the notebooks print first.

:func:`find_data` decides which data a notebook reads: the real archives if
they are in the data folder or can be downloaded, else (``small`` profile
only) the generated demo corpus, said plainly. Before any download it checks
in a few seconds whether the servers answer at all, so an offline laptop (or
CI) falls back at once instead of waiting on timeouts.
"""
import dataclasses
import math
import os
import socket
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit

from .config import FinetuneConfig, ModelConfig, PretrainConfig
from .errors import D2LNLIError

__all__ = ['Profile', 'PROFILES', 'select_profile', 'DataSource', 'find_data',
           'runs_dir', 'NSP_CHANCE_LOSS']

# Loss of a next-sentence classifier that guesses: ln 2 nats.
NSP_CHANCE_LOSS = math.log(2)


@dataclasses.dataclass(frozen=True)
class Profile:
    """Sizes for the notebooks, and what counts as "it learned" at those sizes.

    The learning checks map the data kind ('real' or 'demo') to a
    threshold, measured on held-out text: ``min_mlm_gain``, how many nats
    the held-out MLM loss must end below the no-context baseline (a model
    that predicts every hidden word by its frequency); ``max_nsp_loss``, the
    held-out NSP loss must end below it (chance is ln 2 = 0.693);
    ``min_test_acc``, the accuracy the fine-tuned classifier must reach;
    ``min_analysis_acc``, for notebook 5, the accuracy each context-free
    baseline must reach (model name -> floor, per data kind), and
    ``baseline_train_size``, how many of the fine-tuning pairs its
    bag-of-words baselines fit on (None: all of them).
    ``demo`` holds the pretraining settings that differ on the small
    generated demo corpus (fewer steps: it is learned in minutes), applied
    by :meth:`for_data`. ``chapter_steps``: notebook 1 also runs the
    chapter's own pretraining settings for that many steps, side by side.
    ``exercise_max_len`` is the small ``max_len`` at which the truncation
    exercise compares its two strategies.
    """
    name: str
    model: ModelConfig
    pretrain: PretrainConfig
    finetune: FinetuneConfig
    min_mlm_gain: dict
    max_nsp_loss: dict
    min_test_acc: dict
    min_analysis_acc: dict = dataclasses.field(default_factory=dict)
    baseline_train_size: Optional[int] = None
    demo: dict = dataclasses.field(default_factory=dict)
    chapter_steps: int = 500
    held_out_every: int = 250
    exercise_max_len: int = 24
    exercise_epochs: int = 2
    reason: str = ''

    def for_data(self, kind):
        """This profile with the settings for data ``kind`` ('real', 'demo' or a DataSource)."""
        kind = getattr(kind, 'kind', kind)
        if kind not in ('real', 'demo'):
            raise ValueError(f"data kind must be 'real' or 'demo', not {kind!r}")
        if kind == 'real' or not self.demo:
            return self
        extra = {k: self.demo[k] for k in ('chapter_steps', 'held_out_every') if k in self.demo}
        pretrain = {k: v for k, v in self.demo.items() if k not in extra}
        return dataclasses.replace(self, pretrain=dataclasses.replace(self.pretrain, **pretrain),
                                   **extra)

    def chapter_pretraining(self):
        """``(ModelConfig, PretrainConfig)``: the chapter's model and training, at this
        profile's batch size and length, for ``chapter_steps`` steps."""
        p = self.pretrain
        return (dataclasses.replace(self.model, dropout=0.2, embedding_norm=False),
                PretrainConfig(batch_size=p.batch_size, max_len=p.max_len,
                               num_steps=self.chapter_steps, lr=1e-3))

    def describe(self):
        """One paragraph for the notebooks' first cell."""
        m, p, f = self.model, self.pretrain, self.finetune
        train = 'all' if f.train_size is None else f'{f.train_size:,}'
        pairs = 'all pairs' if p.num_pairs is None else f'{p.num_pairs:,} pairs'
        changes = [name for name, on in (
            ('embeddings from N(0, 0.02)', p.embedding_init == 'normal'),
            ('embedding LayerNorm', m.embedding_norm),
            ('MLM bias at word frequencies', p.mlm_bias_init),
            ('dynamic masking', p.dynamic_masking),
            (f'+ {p.task_pairs:,} SNLI training pairs as text', p.task_pairs),
            (f'warm-up {p.warmup_steps} steps, then linear decay to '
             + ('zero' if p.final_lr_fraction == 0 else f'{p.final_lr_fraction:g} x lr'),
             p.warmup_steps),
            (f'dropout {m.dropout:g}', m.dropout != 0.2)) if on]
        return (f'profile: {self.name} ({self.reason})\n'
                f'  pretraining: {pairs}, batch {p.batch_size}, max_len {p.max_len}, '
                f'{p.num_steps:,} steps, lr {p.lr:g}\n'
                + (f'    not the chapter\'s: {"; ".join(changes)}\n' if changes else '')
                + f'  fine-tuning: batch {f.batch_size}, max_len {f.max_len}, '
                f'{f.num_epochs} epochs, lr {f.lr:g}, {train} training pairs')


PROFILES = {
    # min_analysis_acc: measured (notebook 5, 2026-12-01) on the real data
    # 0.661 / 0.592 (benchmarks/recipe.py baseline), on the demo corpus
    # 0.886 / 0.832; the floors leave a margin of about 0.06-0.18.
    # Chosen by measurement on a 2-core CPU with the real WikiText-2 and SNLI
    # (BENCHMARKS.md, "The small profile's pretraining recipe"): all pairs,
    # new masks and random sentences every pass, the original BERT's
    # embedding initialization and LayerNorm, the MLM bias at the word
    # frequencies, warm-up and decay to zero, no dropout; 4,000 steps, 20
    # minutes on 2 cores. (SNLI's sentences as extra text, task_pairs,
    # was measured too and did not pay.)
    'small': Profile(
        name='small',
        model=ModelConfig(dropout=0.0, embedding_norm=True),
        pretrain=PretrainConfig(batch_size=64, max_len=64, num_steps=4000, lr=2e-3,
                                warmup_steps=100, final_lr_fraction=0.0, mlm_bias_init=True,
                                embedding_init='normal', dynamic_masking=True,
                                task_pairs=0),
        finetune=FinetuneConfig(batch_size=32, max_len=64, num_epochs=3, lr=5e-4,
                                train_size=10_000, test_size=None),
        min_mlm_gain={'real': 0.5, 'demo': 2.0}, max_nsp_loss={'real': 0.6, 'demo': 0.66},
        min_test_acc={'real': 0.5, 'demo': 0.75},
        min_analysis_acc={'real': {'BoW, both sentences': 0.6, 'BoW, hypothesis only': 0.5},
                          'demo': {'BoW, both sentences': 0.75, 'BoW, hypothesis only': 0.65}},
        held_out_every=500,
        demo=dict(num_steps=400, warmup_steps=40, chapter_steps=200, held_out_every=100)),
    'full': Profile(
        name='full',
        model=ModelConfig(),
        pretrain=PretrainConfig(batch_size=256, max_len=128, num_steps=4000, lr=1e-3,
                                warmup_steps=200, mlm_bias_init=True),
        finetune=FinetuneConfig(batch_size=256, max_len=128, num_epochs=5, lr=1e-4),
        min_mlm_gain={'real': 0.5, 'demo': 0.5}, max_nsp_loss={'real': 0.55, 'demo': 0.55},
        min_test_acc={'real': 0.55, 'demo': 0.8},
        # liblinear's time grows faster than the pairs: 26 s for 50,000,
        # over 12 minutes for all 549,367 (BENCHMARKS.md, issue 15).
        baseline_train_size=50_000,
        min_analysis_acc={'real': {'BoW, both sentences': 0.6, 'BoW, hypothesis only': 0.5},
                          'demo': {'BoW, both sentences': 0.75, 'BoW, hypothesis only': 0.65}},
        chapter_steps=1000, held_out_every=500,
        exercise_epochs=2),
}


def _usable_gpu_count():
    from .devices import usable_gpus
    return len(usable_gpus())


def select_profile(name=None):
    """The profile to run: ``name``, else ``$D2L_NLI_PROFILE``, else by hardware.

    Returns a :class:`Profile` whose ``reason`` says why it was chosen.
    """
    source = 'chosen in the code' if name else None
    if not name and os.environ.get('D2L_NLI_PROFILE', '').strip():
        name, source = os.environ['D2L_NLI_PROFILE'].strip(), 'D2L_NLI_PROFILE'
    if name:
        if name not in PROFILES:
            raise D2LNLIError(f'unknown profile {name!r} ({source}); choose one of '
                              f'{", ".join(sorted(PROFILES))}')
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


def _present(root, name):
    from .hub import DATA_HUB
    archive = DATA_HUB[name]
    return all((root / archive.folder / m).is_file() for m in archive.markers)


def _reachable(name, timeout):
    """Whether some server for archive ``name`` accepts a connection within ``timeout`` s."""
    from .hub import DATA_HUB, mirror_urls
    for url in mirror_urls(DATA_HUB[name]):
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == 'https' else 80)
        try:
            with socket.create_connection((parts.hostname, port), timeout=timeout):
                return True
        except OSError:
            continue
    return False


def _offline():
    return os.environ.get('D2L_NLI_OFFLINE', '').strip().lower() in ('1', 'true', 'yes', 'on')


def _test_split(snli_dir):
    if (snli_dir / 'snli_1.0_test.txt').is_file() or (snli_dir / 'snli_1.0_test.jsonl').is_file():
        return 'test', ''
    return 'dev', ' (no test split in this copy: the dev split stands in for it)'


def find_data(profile, data_dir=None, *, probe_timeout=3.0):
    """The :class:`DataSource` for ``profile``: real data if possible, else the demo corpus.

    Real data is used when both archives are extracted in the data folder,
    or when their servers answer (unless ``D2L_NLI_OFFLINE=1``) and the
    download succeeds. Otherwise the ``small`` profile falls back to the
    generated demo corpus; the ``full`` profile raises with what to do.
    """
    from .democorpus import ensure_demo_corpus
    from .hub import download_extract, get_data_dir

    root = get_data_dir(data_dir)
    names = ('wikitext-2', 'SNLI')
    missing = [n for n in names if not _present(root, n)]
    why = ''
    if not missing:
        split, note = _test_split(root / 'snli_1.0')
        return DataSource('real', root, split,
                          f'data: the real WikiText-2 and SNLI in {root}{note}')
    if _offline():
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
            split, note = _test_split(root / 'snli_1.0')
            return DataSource('real', root, split,
                              f'data: the real WikiText-2 and SNLI, downloaded to {root}{note}')
    lacking = ' and '.join(missing) + (' are' if len(missing) > 1 else ' is')
    if profile.name != 'small':
        raise D2LNLIError(
            f'The {profile.name} profile needs the real WikiText-2 and SNLI, but {lacking} '
            f'not in {root} and {why}. What to do: put the extracted archives '
            f'there (see docs/data.md), or set D2L_NLI_DATA to a folder that holds '
            f'them, or run with D2L_NLI_PROFILE=small to use the demo corpus.')
    demo = ensure_demo_corpus(root, 'demo')
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
