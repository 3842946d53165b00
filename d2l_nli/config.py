"""Run settings as small dataclasses with named presets.

``PRESETS['chapter']`` holds the chapter's values (pretraining: batch 256,
max_len 128, 4,000 steps, Adam 1e-3; fine-tuning: batch 256, max_len 128,
5 epochs, Adam 1e-4). ``PRESETS['demo']`` is the offline demo: a tiny
generated corpus, learned within a couple of minutes on a laptop CPU.
``PRESETS['tiny']`` is for tests. Change a field with
``dataclasses.replace(preset, num_steps=300)``.
"""
import dataclasses

__all__ = ['ModelConfig', 'PretrainConfig', 'FinetuneConfig', 'RunPreset', 'PRESETS']


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """BERT sizes except the vocabulary, which comes from the data."""
    num_hiddens: int = 128
    ffn_num_hiddens: int = 128
    num_heads: int = 2
    num_layers: int = 2
    dropout: float = 0.2
    embedding_norm: bool = False  # LayerNorm after the embeddings (original BERT)


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
class RunPreset:
    model: ModelConfig
    pretrain: PretrainConfig
    finetune: FinetuneConfig


PRESETS = {
    'chapter': RunPreset(ModelConfig(), PretrainConfig(), FinetuneConfig()),
    'demo': RunPreset(ModelConfig(dropout=0.1),
                      PretrainConfig(batch_size=64, max_len=64, num_steps=300, lr=2e-3),
                      FinetuneConfig(batch_size=32, max_len=64, num_epochs=4, lr=5e-4)),
    'tiny': RunPreset(ModelConfig(num_hiddens=32, ffn_num_hiddens=64, num_heads=2,
                                  num_layers=1, dropout=0.0),
                      PretrainConfig(batch_size=16, max_len=48, num_steps=4, lr=1e-3),
                      FinetuneConfig(batch_size=16, max_len=48, num_epochs=1, lr=1e-3)),
}
