"""Settings for running the notebooks under nbval (``pytest`` collects them).

The kernels nbval starts inherit this process's environment, so these take
effect in the notebooks. Each one is only a default: set it yourself to
override (the GPU runner command in the README sets D2L_NLI_OFFLINE=0).
"""
import os
import tempfile

# One figure per plot: a live-redrawn plot would pile up frames under nbval.
os.environ.setdefault('D2L_NLI_LIVE_PLOTS', '0')
# Tests never download: without data in the data folder, the small profile
# uses the generated demo corpus at once.
os.environ.setdefault('D2L_NLI_OFFLINE', '1')
# Checkpoints of this test session only, so notebook 3 fine-tunes the BERT
# that notebook 1 just pretrained, never a stale one from another run.
os.environ.setdefault('D2L_NLI_RUNS', tempfile.mkdtemp(prefix='d2l-nli-nbval-'))
