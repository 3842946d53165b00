"""d2l-nli: the D2L chapter "Natural Language Inference: Fine-Tuning BERT", runnable.

The helpers the notebooks import: data hub and loaders (SNLI, WikiText-2,
an offline demo corpus), text processing, the BERT model, data-parallel
training loops, plots, checkpoints and the command line's pipeline.
"""
from pathlib import Path

__version__ = (Path(__file__).parent / 'VERSION').read_text().strip()

from . import runtime  # noqa: E402  (before anything imports mxnet)

runtime.configure_threads()  # OMP_NUM_THREADS & co. are read when MXNet loads
runtime.limit_heap_growth()
runtime.preload_cuda_libraries()
# The chapter works in MXNet's NumPy mode (``npx.set_np()``); so do we.
runtime.import_mxnet().npx.set_np()

from .attention import (PAIR_PARTS, attention_weights, cls_attention_by_part,  # noqa: E402
                        pair_tokens, plot_attention)
from .baselines import BagOfWordsNLI, majority_label  # noqa: E402
from .checkpoint import load_classifier, load_pretrained, save_checkpoint  # noqa: E402
from .classifier import BERTClassifier, predict_nli  # noqa: E402
from .config import PRESETS, FinetuneConfig, ModelConfig, PretrainConfig, RunPreset  # noqa: E402
from .democorpus import DEMO_PRESETS, DemoCorpusConfig, ensure_demo_corpus, write_demo_corpus  # noqa: E402
from .devices import (GPUNotUsableError, describe_devices, parse_devices, try_all_gpus,  # noqa: E402
                      try_gpu)
from .distributed import (KVSTORES, DistributedError, create_kvstore, make_trainer,  # noqa: E402
                          worker_info)
from .errors import (CheckpointError, D2LNLIError, DamagedCheckpointError,  # noqa: E402
                     DataFormatError, DownloadError, TrainingDivergedError)
from .hub import DATA_HUB, Archive, download, download_extract, get_data_dir  # noqa: E402
from .loader import ArrayLoader, BatchLoader, batch_indices, pad_ragged  # noqa: E402
from .model import BERTConfig, BERTEncoder, BERTModel, MaskLM, NextSentencePred  # noqa: E402
from .pipeline import (load_or_finetune, load_or_pretrain, new_bert, predict_labels,  # noqa: E402
                       pretraining_data, seed_everything, subsample)
from .plot import Animator, live_plotting_enabled, use_svg_display  # noqa: E402
from .profiles import (NSP_CHANCE_LOSS, PROFILES, DataSource, Profile, find_data,  # noqa: E402
                       runs_dir, select_profile)
from .resume import TrainingCheckpoints  # noqa: E402
from .snli import LABEL_NAMES, LABELS, read_snli  # noqa: E402
from .snli_bert import SNLIBERTDataset  # noqa: E402
from .text import (TRUNCATION_STRATEGIES, Vocab, get_tokens_and_segments, tokenize,  # noqa: E402
                   tokenize_sentence, truncate_pair)
from .training import (Accumulator, Timer, evaluate_accuracy_gpus, evaluate_bert_losses,  # noqa: E402
                       finetuning_trainer,
                       pretraining_trainer, split_batch_multi_inputs, train_bert, train_ch13)
from .wiki import (RESERVED_TOKENS, WikiTextBERTData, load_data_wiki, mlm_unigram,  # noqa: E402
                   read_wiki, snli_paragraphs)
