"""d2l-nli: the D2L chapter "Natural Language Inference: Fine-Tuning BERT", runnable.

The helpers the notebooks import: data hub and loaders (SNLI, WikiText-2,
an offline demo corpus), text processing and minibatching.
"""
from pathlib import Path

__version__ = (Path(__file__).parent / 'VERSION').read_text().strip()

from . import runtime  # noqa: E402  (before anything imports mxnet)

runtime.preload_cuda_libraries()
runtime.import_mxnet()

from .democorpus import DEMO_PRESETS, DemoCorpusConfig, ensure_demo_corpus, write_demo_corpus  # noqa: E402
from .errors import D2LNLIError, DataFormatError, DownloadError  # noqa: E402
from .hub import DATA_HUB, Archive, download, download_extract, get_data_dir  # noqa: E402
from .loader import ArrayLoader  # noqa: E402
from .snli import LABEL_NAMES, LABELS, read_snli  # noqa: E402
from .snli_bert import SNLIBERTDataset  # noqa: E402
from .text import (Vocab, get_tokens_and_segments, tokenize, tokenize_sentence,  # noqa: E402
                   truncate_pair)
from .wiki import WikiTextBERTData, load_data_wiki, read_wiki  # noqa: E402
