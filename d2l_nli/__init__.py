"""d2l-nli: the D2L chapter "Natural Language Inference: Fine-Tuning BERT", runnable.

The helpers the notebooks import. The chapter's own code sits at the top
of the package: text processing, SNLI and WikiText-2 readers and loaders,
the BERT model and classifier, the data-parallel training loops, plots,
the settings registry (``settings.py``) and the steps the notebooks and
the command line share (``pipeline.py``). What runs around it lives in
``machinery/``: MXNet's set-up, devices, the data hub, files, checkpoints
and resuming, several machines, a notebook's first cell and the command
line. Every public name is here, as ``d2l_nli.<name>``.
"""
from pathlib import Path

__version__ = (Path(__file__).parent / 'VERSION').read_text().strip()

from .machinery import runtime  # noqa: E402  (before anything imports mxnet)

# Only what must happen before MXNet loads: its CUDA libraries and the
# thread defaults (OMP_NUM_THREADS & co. are read once, when MXNet loads).
# D2L_NLI_NO_DEFAULTS=1 leaves the threads alone. See d2l_nli/machinery/runtime.py.
runtime.import_defaults()
runtime.import_mxnet()

# The chapter: data, model, training loops, plots, settings.
from .attention import (PAIR_PARTS, attention_weights, cls_attention_by_part,  # noqa: E402
                        pair_tokens, plot_attention)
from .baselines import BagOfWordsNLI, majority_label  # noqa: E402
from .classifier import BERTClassifier, predict_nli  # noqa: E402
from .democorpus import ensure_demo_corpus, write_demo_corpus  # noqa: E402
from .errors import (CheckpointError, D2LNLIError, DamagedCheckpointError,  # noqa: E402
                     DataFormatError, DownloadError, TrainingDivergedError)
from .loader import ArrayLoader, BatchLoader, batch_indices, pad_ragged  # noqa: E402
from .model import BERTEncoder, BERTModel, MaskLM, NextSentencePred  # noqa: E402
from .pipeline import (load_or_finetune, load_or_pretrain, new_bert, predict_labels,  # noqa: E402
                       pretraining_data, seed_everything, subsample)
from .plot import Animator, live_plotting_enabled, use_svg_display  # noqa: E402
from .settings import (NOTEBOOK_PROFILES, NSP_CHANCE_LOSS, PROFILES, BERTConfig,  # noqa: E402
                       DemoCorpusConfig, FinetuneConfig, PretrainConfig, Profile)
from .snli import LABEL_NAMES, LABELS, read_snli  # noqa: E402
from .snli_bert import SNLIBERTDataset  # noqa: E402
from .text import (TRUNCATION_STRATEGIES, Vocab, get_tokens_and_segments, tokenize,  # noqa: E402
                   tokenize_sentence, truncate_pair)
from .training import (Accumulator, evaluate_accuracy_gpus, evaluate_bert_losses,  # noqa: E402
                       finetuning_plot, finetuning_trainer, pretraining_plot,
                       pretraining_trainer, split_batch_multi_inputs, train_bert, train_ch13)
from .wiki import (RESERVED_TOKENS, PretrainingBatch, WikiTextBERTData,  # noqa: E402
                   load_data_wiki, mlm_unigram, read_wiki, snli_paragraphs)

# The machinery around it (d2l_nli/machinery/): devices, data hub, files,
# checkpoints, several machines, a notebook's first cell.
from .machinery.budget import fit_budget  # noqa: E402
from .machinery.checkpoint import load_classifier, load_pretrained, save_checkpoint  # noqa: E402
from .machinery.devices import (GPUNotUsableError, describe_devices,  # noqa: E402
                                parse_devices, try_all_gpus, try_gpu)
from .machinery.distributed import (KVSTORES, DistributedError, create_kvstore,  # noqa: E402
                                    make_trainer, worker_info)
from .machinery.hub import DATA_HUB, Archive, download, download_extract, get_data_dir  # noqa: E402
from .machinery.loop import Timer  # noqa: E402
from .machinery.notebook_setup import DataSource, find_data, runs_dir, select_profile  # noqa: E402
from .machinery.resume import TrainingCheckpoints  # noqa: E402
