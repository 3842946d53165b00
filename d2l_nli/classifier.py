"""Fine-tuning BERT for NLI: the chapter's ``BERTClassifier`` and predictions.

The classifier reads the encoder's output at ``<cls>`` (position 0) through
an MLP (Dense 256 relu, Dense 3). It keeps a reference to the pretrained
``bert.encoder`` only: the masked-LM and next-sentence heads are not part of
it. So ``net.collect_params()`` holds exactly the parameters that receive a
gradient, and the Trainer never meets "stale" parameters. (The book passes
all of BERT's parameters and hides the resulting stale-gradient warnings
with ``ignore_stale_grad=True``, which would also hide a real bug.)
"""
from mxnet import np, npx
from mxnet.gluon import nn
from mxnet.util import use_np

from .snli import LABEL_NAMES
from .text import get_tokens_and_segments, tokenize_sentence, truncate_pair

__all__ = ['BERTClassifier', 'predict_nli']


@use_np
class BERTClassifier(nn.HybridBlock):
    """NLI classifier on a pretrained ``BERTModel``.

    ``inputs = (tokens (B, T), segments (B, T), valid_lens (B,))`` -> logits
    (B, num_classes) for entailment, contradiction, neutral.
    """

    def __init__(self, bert, num_classes=3, num_mlp_hiddens=256, **kwargs):
        super().__init__(**kwargs)
        self.encoder = bert.encoder
        self.bert_config = bert.config
        self.classifier = nn.HybridSequential()
        self.classifier.add(
            nn.Dense(num_mlp_hiddens, activation='relu', in_units=bert.config.num_hiddens),
            nn.Dense(num_classes, in_units=num_mlp_hiddens))

    def hybrid_forward(self, F, inputs):
        tokens, segments, valid_lens = inputs
        encoded_X = self.encoder(tokens, segments, valid_lens)
        return self.classifier(encoded_X[:, 0, :])


def predict_nli(net, vocab, premise, hypothesis, max_len=128, device=None):
    """Classify one raw premise/hypothesis pair.

    Returns ``(label, probabilities)`` where ``label`` is 'entailment',
    'contradiction' or 'neutral' and ``probabilities`` maps each label to
    its probability. Sentences are tokenized as SNLI's parse columns
    (:func:`tokenize_sentence`) and truncated to ``max_len`` as in training.
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
    args = (np.array([vocab[tokens]], dtype='int32', ctx=device),
            np.array([segments], dtype='int32', ctx=device),
            np.array([len(tokens)], dtype='int32', ctx=device))
    probs = npx.softmax(net(args), axis=-1)[0].asnumpy()
    return (LABEL_NAMES[int(probs.argmax())],
            {name: float(p) for name, p in zip(LABEL_NAMES, probs)})
