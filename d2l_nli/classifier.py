# Generated from notebooks/03_finetuning_bert.ipynb by tools/nbexport.py: do not edit.
# Edit the notebook's #@save cells, then run: python tools/nbexport.py
"""Fine-tuning BERT for NLI: the chapter's ``BERTClassifier`` and predictions.

The classifier reads the encoder's output at ``<cls>`` through an MLP
(Dense 256 relu, Dense 3) and holds only the pretrained encoder, so the
Trainer sees exactly the parameters that receive a gradient.
"""
from mxnet import np, npx
from mxnet.gluon import nn
from mxnet.util import use_np

from .snli import LABEL_NAMES
from .text import get_tokens_and_segments, tokenize_sentence, truncate_pair

__all__ = ['BERTClassifier', 'predict_nli']


@use_np
class BERTClassifier(nn.HybridBlock):
    """NLI classifier: BERT's encoder, then an MLP on the ``<cls>`` output.

    ``inputs = (tokens (B, T), segments (B, T), valid_lens (B,))`` ->
    logits (B, num_classes) for entailment, contradiction, neutral.
    ``pooling='mean'`` (not the chapter's) reads the mean of the encoder's
    outputs over the pair's tokens instead of the ``<cls>`` output.

    Defined in notebooks/03_finetuning_bert.ipynb.
    """

    def __init__(self, bert, num_classes=3, num_mlp_hiddens=256, pooling='cls', **kwargs):
        super().__init__(**kwargs)
        if pooling not in ('cls', 'mean'):
            raise ValueError(f"pooling must be 'cls' or 'mean', not {pooling!r}")
        self.encoder = bert.encoder  # shared with ``bert``: fine-tuned in place
        self.bert_config, self.pooling = bert.config, pooling
        self.classifier = nn.HybridSequential()
        self.classifier.add(
            nn.Dense(num_mlp_hiddens, activation='relu', in_units=bert.config.num_hiddens),
            nn.Dense(num_classes, in_units=num_mlp_hiddens))

    def hybrid_forward(self, F, inputs):
        tokens, segments, valid_lens = inputs
        encoded = self.encoder(tokens, segments, valid_lens)  # (B, T, num_hiddens)
        if self.pooling == 'cls':
            return self.classifier(encoded[:, 0, :])  # <cls> is position 0
        lens = valid_lens.astype('float32')
        positions = F.npx.arange_like(tokens, axis=1).astype('float32')  # (T,)
        real = F.np.expand_dims(positions, 0) < F.np.expand_dims(lens, 1)  # (B, T)
        total = (encoded * F.np.expand_dims(real.astype('float32'), -1)).sum(axis=1)
        return self.classifier(total / F.np.expand_dims(lens, -1))


def predict_nli(net, vocab, premise, hypothesis, max_len=128, device=None):
    """Classify one raw premise/hypothesis pair with a fine-tuned ``BERTClassifier``.

    Returns ``(label, probabilities)``: the most likely of 'entailment',
    'contradiction', 'neutral', and a dict of each label's probability.

    Defined in notebooks/03_finetuning_bert.ipynb.
    """
    for name, text in (('premise', premise), ('hypothesis', hypothesis)):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f'the {name} is empty; give a sentence')
    limit = net.bert_config.max_len
    if max_len > limit:
        raise ValueError(f'max_len={max_len} exceeds the {limit} positions the model has')
    p_tokens, h_tokens = truncate_pair(tokenize_sentence(premise),
                                       tokenize_sentence(hypothesis), max_len)
    tokens, segments = get_tokens_and_segments(p_tokens, h_tokens)
    device = device or next(iter(net.collect_params().values())).list_ctx()[0]
    inputs = (np.array([vocab[tokens]], dtype='int32', ctx=device),
              np.array([segments], dtype='int32', ctx=device),
              np.array([len(tokens)], dtype='int32', ctx=device))
    probs = npx.softmax(net(inputs), axis=-1)[0].asnumpy()  # (3,)
    return (LABEL_NAMES[int(probs.argmax())],
            {name: float(p) for name, p in zip(LABEL_NAMES, probs)})
