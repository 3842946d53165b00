"""Baselines for NLI that read no context: the majority label and bag-of-words models.

A fine-tuned BERT's accuracy means little without them. ``BagOfWordsNLI``
is a logistic regression (scikit-learn) on word counts:

* ``features='hypothesis'`` reads the hypothesis alone. That it beats
  chance at all shows SNLI's *annotation artifacts* (Gururangan et al.,
  2018): some words ("nobody", "sleeping", "tall") give the label away
  whatever the premise says.
* ``features='both'`` reads the premise's and the hypothesis's words, the
  hypothesis's words that are *not* in the premise, and the share of
  them that are (:func:`d2l_nli.slices.word_overlap`): what a model can
  learn from the two sentences without reading their order or structure.

Both count words and adjacent word pairs (``ngrams=2``). Sentences are
split with :func:`d2l_nli.tokenize`, as ``read_snli`` returns them. The
settings (``ngrams=2``, ``C=0.3``) were chosen by 3-fold cross-validation
on the small profile's 10,000 training pairs, never on dev, with the folds
grouped by premise: SNLI gives each premise three hypotheses, one per
label, and a fold that splits them scores 0.1 lower than dev will
(``benchmarks/recipe.py baseline``).
"""
import numpy as onp

from .slices import word_overlap
from .text import tokenize, tokenize_sentence

__all__ = ['BagOfWordsNLI', 'majority_label']

FEATURES = ('hypothesis', 'both')


def majority_label(labels):
    """The most frequent label id of ``labels`` (the smallest id on a tie)."""
    labels = onp.asarray(labels, dtype=int)
    if labels.size == 0:
        raise ValueError('no labels: the majority label of an empty set is undefined')
    return int(onp.bincount(labels).argmax())


def _ngrams(n):
    def analyzer(tokens):
        return list(tokens) + [' '.join(tokens[i:i + k]) for k in range(2, n + 1)
                               for i in range(len(tokens) - k + 1)]
    return analyzer


def _columns(dataset):
    if len(dataset) < 2 or len(dataset[0]) != len(dataset[1]):
        raise ValueError('expected (premises, hypotheses[, labels]) of equal lengths')
    return [tokenize(list(dataset[0])), tokenize(list(dataset[1]))]


class BagOfWordsNLI:
    """Logistic regression on bags of words of SNLI pairs.

    ``dataset`` arguments are ``(premises, hypotheses, labels)`` as
    :func:`d2l_nli.read_snli` returns them (``predict`` ignores labels).
    """

    def __init__(self, features='both', ngrams=2, C=0.3):
        if features not in FEATURES:
            raise ValueError(f'features must be one of {FEATURES}, not {features!r}')
        if ngrams < 1:
            raise ValueError(f'ngrams must be at least 1, got {ngrams}')
        self.features, self.ngrams, self.C = features, ngrams, C
        self._vectorizers = None

    def _sides(self, premises, hypotheses):
        """``(token lists, n-gram size)`` of each bag of words."""
        if self.features == 'hypothesis':
            return [(hypotheses, self.ngrams)]
        new = [[t for t in h if t not in seen] for seen, h in
               zip(map(set, premises), hypotheses)]
        return [(premises, self.ngrams), (hypotheses, self.ngrams), (new, 1)]

    def bags(self, premise, hypothesis):
        """What the model reads of one raw pair: each bag by name, and the overlap.

        The sentences are tokenized as SNLI's are (:func:`d2l_nli.tokenize_sentence`).
        """
        p, h = tokenize_sentence(premise), tokenize_sentence(hypothesis)
        names = (['hypothesis'] if self.features == 'hypothesis'
                 else ['premise', 'hypothesis', 'new in hypothesis'])
        bags = {name: _ngrams(n)(tokens[0])
                for name, (tokens, n) in zip(names, self._sides([p], [h]))}
        if self.features == 'both':
            bags['overlap'] = round(word_overlap(p, h), 3)
        return bags

    def _matrix(self, dataset, fit=False):
        from scipy.sparse import csr_matrix, hstack
        from sklearn.feature_extraction.text import CountVectorizer

        premises, hypotheses = _columns(dataset)
        sides = self._sides(premises, hypotheses)
        if fit:
            self._vectorizers = [CountVectorizer(analyzer=_ngrams(n)) for _, n in sides]
        parts = [(v.fit_transform if fit else v.transform)(tokens)
                 for v, (tokens, _) in zip(self._vectorizers, sides)]
        if self.features == 'both':
            share = [word_overlap(p, h) for p, h in zip(premises, hypotheses)]
            parts.append(csr_matrix(onp.array(share, dtype=float).reshape(-1, 1)))
        return hstack(parts).tocsr()

    def fit(self, dataset):
        """Learn from ``dataset``'s pairs and labels; returns self."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier

        labels = onp.asarray(dataset[2], dtype=int)
        if len(labels) != len(dataset[0]):
            raise ValueError(f'{len(dataset[0])} pairs but {len(labels)} labels')
        if len(set(labels.tolist())) < 2:
            raise ValueError('the training pairs need at least two different labels')
        # One binary regression per label (liblinear's own multi-class
        # scheme, which scikit-learn 1.8 no longer applies by itself).
        self.model = OneVsRestClassifier(LogisticRegression(C=self.C, solver='liblinear'))
        self.model.fit(self._matrix(dataset, fit=True), labels)
        return self

    def predict(self, dataset):
        """Predicted label ids (n,) of ``dataset``'s pairs; unseen words are ignored."""
        if self._vectorizers is None:
            raise RuntimeError('call fit(train_data) before predict')
        return self.model.predict(self._matrix(dataset)).astype(int)

    def score(self, dataset):
        """Accuracy on ``dataset``'s pairs and labels."""
        return float((self.predict(dataset) == onp.asarray(dataset[2])).mean())
