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


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Masked-LM + next-sentence pretraining on WikiText-2."""
    batch_size: int = 256
    max_len: int = 128
    num_steps: int = 4000
    lr: float = 1e-3
    # Extras the chapter does not have (0 / False: the chapter's plain Adam):
    # linear warm-up over ``warmup_steps`` then linear decay to lr/10, and the
    # MLM output bias started at the unigram log-frequencies of the data.
    warmup_steps: int = 0
    mlm_bias_init: bool = False
    num_pairs: int = None  # pretrain on this many sentence pairs only (None: all)


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
