"""Every named run setting in one registry: :data:`PROFILES`.

A :class:`Profile` bundles what a run needs to know before it starts: the
model's sizes (:class:`BERTConfig`), pretraining (:class:`PretrainConfig`),
fine-tuning (:class:`FinetuneConfig`), the generated corpus it reads when
the real data is absent (:class:`DemoCorpusConfig`), and, for the
notebooks, what counts as "it learned". The entries:

* ``chapter``: the chapter's values exactly (pretraining batch 256,
  max_len 128, 4,000 steps, Adam 1e-3; fine-tuning batch 256, max_len 128,
  5 epochs, Adam 1e-4). The command line starts from these.
* ``small`` and ``full``: the notebooks' profiles (:data:`NOTEBOOK_PROFILES`):
  a laptop CPU in minutes, and the chapter's sizes for GPUs.
* ``demo``: ``python -m d2l_nli demo``, learned within about a minute.
* ``tiny``: the tests, seconds.

Change a field with ``dataclasses.replace``; nothing here imports MXNet.
"""
import dataclasses
import math
from typing import Optional

__all__ = ['BERTConfig', 'PretrainConfig', 'FinetuneConfig', 'DemoCorpusConfig', 'Profile',
           'PROFILES', 'NOTEBOOK_PROFILES', 'NSP_CHANCE_LOSS']

# Loss of a next-sentence classifier that guesses: ln 2 nats.
NSP_CHANCE_LOSS = math.log(2)


@dataclasses.dataclass(frozen=True)
class BERTConfig:
    """Sizes of a BERT model (the chapter's small BERT by default).

    ``vocab_size`` and ``max_len`` (the position table) come from the data:
    a profile leaves the vocabulary unset, and :func:`d2l_nli.new_bert`
    fills both in.
    """
    vocab_size: Optional[int] = None
    num_hiddens: int = 128
    ffn_num_hiddens: int = 128
    num_heads: int = 2
    num_layers: int = 2
    dropout: float = 0.2
    max_len: int = 1000
    # Not in the chapter: a LayerNorm on the sum of the three embeddings, as
    # in the original BERT (see BERTEncoder).
    embedding_norm: bool = False

    def __post_init__(self):
        for name in ('vocab_size', 'num_hiddens', 'ffn_num_hiddens', 'num_heads',
                     'num_layers', 'max_len'):
            value = getattr(self, name)
            if (value is not None or name != 'vocab_size') and (
                    not isinstance(value, int) or value < 1):
                raise ValueError(f'{name} must be a positive integer, got {value!r}')
        if self.num_hiddens % self.num_heads:
            raise ValueError(f'num_hiddens={self.num_hiddens} must be divisible by '
                             f'num_heads={self.num_heads}')
        if not 0 <= self.dropout < 1:
            raise ValueError(f'dropout must be in [0, 1), got {self.dropout}')


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Masked-LM + next-sentence pretraining on WikiText-2."""
    batch_size: int = 256
    max_len: int = 128
    num_steps: int = 4000
    lr: float = 1e-3
    # Extras the chapter does not have (their defaults are the chapter's):
    # - linear warm-up over ``warmup_steps`` then linear decay to
    #   ``final_lr_fraction * lr`` at the last step (0: the chapter's constant rate);
    # - the MLM output bias started at the unigram log-frequencies of the data;
    # - ``embedding_init='normal'``: the embedding tables drawn from N(0, 0.02)
    #   as in the original BERT, instead of the chapter's Xavier;
    # - ``dynamic_masking``: new masks and random next sentences every pass;
    # - ``task_pairs``: the sentences of that many SNLI training pairs (the
    #   fine-tuning ones, unlabelled) join WikiText-2: task-adaptive pretraining.
    warmup_steps: int = 0
    final_lr_fraction: float = 0.1
    mlm_bias_init: bool = False
    num_pairs: int = None  # pretrain on this many sentence pairs only (None: all)
    embedding_init: str = 'xavier'
    dynamic_masking: bool = False
    task_pairs: int = 0

    def __post_init__(self):
        if self.embedding_init not in ('xavier', 'normal'):
            raise ValueError(f"embedding_init must be 'xavier' or 'normal', "
                             f'not {self.embedding_init!r}')
        if not 0 <= self.final_lr_fraction <= 1:
            raise ValueError(f'final_lr_fraction must be in [0, 1], got {self.final_lr_fraction}')


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tuning on SNLI; ``train_size``/``test_size`` subsample (None: all)."""
    batch_size: int = 256
    max_len: int = 128
    num_epochs: int = 5
    lr: float = 1e-4
    train_size: int = None
    test_size: int = None
    truncate: str = 'longest_first'
    # Not the chapter's (defaults are): what the classifier reads ('cls' or
    # 'mean' of the encoder's outputs), the pretrained encoder's learning rate
    # as a fraction of ``lr`` (the new head always learns at ``lr``), the
    # dropout while fine-tuning (None: the pretrained model's), and a linear
    # warm-up over this fraction of the steps, then decay to 0 (0: constant).
    warmup_fraction: float = 0.0
    pooling: str = 'cls'
    encoder_lr_scale: float = 1.0
    dropout: float = None


@dataclasses.dataclass(frozen=True)
class DemoCorpusConfig:
    """Sizes of the generated corpus (SNLI pairs and wiki paragraphs per split).

    ``name`` names its folder, ``demo-<name>-...`` in the data folder.
    """
    name: str = 'demo'
    snli_train: int = 6000
    snli_dev: int = 600
    snli_test: int = 600
    wiki_train: int = 1200
    wiki_valid: int = 60
    wiki_test: int = 60
    no_gold_fraction: float = 0.01   # pairs with gold label '-'


@dataclasses.dataclass(frozen=True)
class Profile:
    """A named run setting, and for the notebooks what counts as "it learned".

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
    chapter's own pretraining settings for that many steps, side by side;
    ``held_out_every``: notebook 1 evaluates the held-out text that often,
    on ``held_out_pairs`` of its pairs (None: all).
    ``exercise_max_len`` is the small ``max_len`` at which the truncation
    exercise compares its two strategies.
    """
    name: str
    model: BERTConfig
    pretrain: PretrainConfig
    finetune: FinetuneConfig
    corpus: DemoCorpusConfig = DemoCorpusConfig()
    min_mlm_gain: dict = dataclasses.field(default_factory=dict)
    max_nsp_loss: dict = dataclasses.field(default_factory=dict)
    min_test_acc: dict = dataclasses.field(default_factory=dict)
    min_analysis_acc: dict = dataclasses.field(default_factory=dict)
    baseline_train_size: Optional[int] = None
    demo: dict = dataclasses.field(default_factory=dict)
    chapter_steps: int = 500
    held_out_every: int = 250
    held_out_pairs: Optional[int] = None
    exercise_max_len: int = 24
    exercise_epochs: int = 2
    reason: str = ''
    budget: str = ''

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
        """``(BERTConfig, PretrainConfig)``: the ``chapter`` entry's model and training,
        at this profile's batch size and length, for ``chapter_steps`` steps."""
        chapter, p = PROFILES['chapter'], self.pretrain
        return chapter.model, dataclasses.replace(
            chapter.pretrain, batch_size=p.batch_size, max_len=p.max_len,
            num_steps=self.chapter_steps)

    def describe(self):
        """One paragraph for the notebooks' first cell: sizes, and what is not the chapter's."""
        m, p, f = self.model, self.pretrain, self.finetune
        book = PROFILES['chapter']
        train = 'all' if f.train_size is None else f'{f.train_size:,}'
        pairs = 'all pairs' if p.num_pairs is None else f'{p.num_pairs:,} pairs'
        decay = 'zero' if p.final_lr_fraction == 0 else f'{p.final_lr_fraction:g} x lr'
        changes = [name for name, on in (
            ('embeddings from N(0, 0.02)', p.embedding_init != book.pretrain.embedding_init),
            ('embedding LayerNorm', m.embedding_norm != book.model.embedding_norm),
            ('MLM bias at word frequencies', p.mlm_bias_init != book.pretrain.mlm_bias_init),
            ('dynamic masking', p.dynamic_masking != book.pretrain.dynamic_masking),
            (f'+ {p.task_pairs:,} SNLI training pairs as text', p.task_pairs),
            (f'warm-up {p.warmup_steps} steps, then linear decay to {decay}', p.warmup_steps),
            (f'dropout {m.dropout:g}', m.dropout != book.model.dropout)) if on]
        return (f'profile: {self.name} ({self.reason})\n'
                f'  pretraining: {pairs}, batch {p.batch_size}, max_len {p.max_len}, '
                f'{p.num_steps:,} steps, lr {p.lr:g}\n'
                + (f'    not the chapter\'s: {"; ".join(changes)}\n' if changes else '')
                + f'  fine-tuning: batch {f.batch_size}, max_len {f.max_len}, '
                f'{f.num_epochs} epochs, lr {f.lr:g}, {train} training pairs'
                + (f'\n{self.budget}' if self.budget else ''))


# Notebook 5's floors, measured (2026-12-01) on the real data at 0.661 /
# 0.592 (benchmarks/recipe.py baseline), on the demo corpus at 0.886 /
# 0.832; they leave a margin of about 0.06-0.18.
_ANALYSIS_FLOORS = {'real': {'BoW, both sentences': 0.6, 'BoW, hypothesis only': 0.5},
                    'demo': {'BoW, both sentences': 0.75, 'BoW, hypothesis only': 0.65}}

PROFILES = {
    'chapter': Profile(name='chapter', model=BERTConfig(), pretrain=PretrainConfig(),
                       finetune=FinetuneConfig()),
    # Chosen by measurement on a 2-core CPU with the real WikiText-2 and SNLI
    # (BENCHMARKS.md, "The small profile's pretraining recipe"): all pairs,
    # new masks and random sentences every pass, the original BERT's
    # embedding initialization and LayerNorm, the MLM bias at the word
    # frequencies, warm-up and decay to zero, no dropout; 4,000 steps, 20
    # minutes on 2 cores. (SNLI's sentences as extra text, task_pairs,
    # was measured too and did not pay.)
    'small': Profile(
        name='small',
        model=BERTConfig(dropout=0.0, embedding_norm=True),
        pretrain=PretrainConfig(batch_size=64, max_len=64, num_steps=4000, lr=2e-3,
                                warmup_steps=100, final_lr_fraction=0.0, mlm_bias_init=True,
                                embedding_init='normal', dynamic_masking=True,
                                task_pairs=0),
        finetune=FinetuneConfig(batch_size=32, max_len=64, num_epochs=3, lr=5e-4,
                                train_size=10_000, test_size=None),
        min_mlm_gain={'real': 0.5, 'demo': 2.0}, max_nsp_loss={'real': 0.6, 'demo': 0.66},
        min_test_acc={'real': 0.5, 'demo': 0.75}, min_analysis_acc=_ANALYSIS_FLOORS,
        held_out_every=500,
        demo=dict(num_steps=400, warmup_steps=40, chapter_steps=200, held_out_every=100)),
    'full': Profile(
        name='full',
        model=BERTConfig(),
        pretrain=PretrainConfig(batch_size=256, max_len=128, num_steps=4000, lr=1e-3,
                                warmup_steps=200, mlm_bias_init=True),
        finetune=FinetuneConfig(batch_size=256, max_len=128, num_epochs=5, lr=1e-4),
        min_mlm_gain={'real': 0.5, 'demo': 0.5}, max_nsp_loss={'real': 0.55, 'demo': 0.55},
        min_test_acc={'real': 0.55, 'demo': 0.8}, min_analysis_acc=_ANALYSIS_FLOORS,
        # liblinear's time grows faster than the pairs: 26 s for 50,000,
        # over 12 minutes for all 549,367 (BENCHMARKS.md, issue 15).
        baseline_train_size=50_000,
        chapter_steps=1000, held_out_every=500, exercise_epochs=2),
    'demo': Profile(
        name='demo',
        model=BERTConfig(dropout=0.1),
        pretrain=PretrainConfig(batch_size=64, max_len=64, num_steps=300, lr=2e-3),
        finetune=FinetuneConfig(batch_size=32, max_len=64, num_epochs=4, lr=5e-4)),
    'tiny': Profile(
        name='tiny',
        model=BERTConfig(num_hiddens=32, ffn_num_hiddens=64, num_heads=2, num_layers=1,
                         dropout=0.0),
        pretrain=PretrainConfig(batch_size=16, max_len=48, num_steps=4, lr=1e-3),
        finetune=FinetuneConfig(batch_size=16, max_len=48, num_epochs=1, lr=1e-3),
        corpus=DemoCorpusConfig(name='tiny', snli_train=240, snli_dev=60, snli_test=60,
                                wiki_train=80, wiki_valid=10, wiki_test=10)),
}

# The profiles the notebooks run at (the others have no learning checks).
NOTEBOOK_PROFILES = ('small', 'full')
