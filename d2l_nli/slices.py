"""Accuracy by phenomenon: where an NLI model is right and wrong, slice by slice.

A single accuracy hides what a model relies on. These helpers cut a set of
pairs into slices that NLI work looks at (negation words in the
hypothesis, word overlap with the premise, hypothesis length, and pairs a
hypothesis-only model gets wrong: the *hard* subset of Gururangan et al.,
2018) and compare several models' accuracy on each. Inputs are token
lists: :func:`d2l_nli.tokenize` of ``read_snli``'s sentences, or
:func:`d2l_nli.tokenize_sentence` of raw ones; predictions and labels are
label ids.
"""
import numpy as onp

__all__ = ['NEGATION_WORDS', 'has_negation', 'word_overlap', 'slice_masks',
           'hard_easy_masks', 'accuracy_by_slice', 'confusion_matrix', 'examples_in']

NEGATION_WORDS = frozenset({'no', 'not', "n't", 'nobody', 'never', 'nothing'})

OVERLAP_BINS = (0.0, 0.25, 0.5, 0.75, 1.0)
LENGTH_BINS = (1, 6, 9, 13)  # hypothesis tokens: 1-5, 6-8, 9-12, 13 and more


def has_negation(tokens):
    """Whether a token list holds a negation word (:data:`NEGATION_WORDS`).

    A contraction left whole ("isn't", "don't": some of SNLI's parses keep
    them so) counts as well as its split form (``['is', "n't"]``).
    """
    return any(token in NEGATION_WORDS or token.endswith("n't") for token in tokens)


def _words(tokens):
    return [t for t in tokens if any(c.isalnum() for c in t)]  # no punctuation


def word_overlap(premise, hypothesis):
    """The fraction of the hypothesis's words that occur in the premise.

    Punctuation tokens do not count; a hypothesis without words has 0.
    """
    hypothesis = _words(hypothesis)
    if not hypothesis:
        return 0.0
    words = set(premise)
    return sum(token in words for token in hypothesis) / len(hypothesis)


def _bin_name(low, high, unit=''):
    return f'{low:g}-{high:g}{unit}' if high is not None else f'>= {low:g}{unit}'


def slice_masks(premises, hypotheses, overlap_bins=OVERLAP_BINS, length_bins=LENGTH_BINS):
    """Boolean masks (n,) of the slices, by name, in display order.

    ``premises``, ``hypotheses``: n token lists each. Slices: ``all``; the
    hypothesis with and without a negation word; word overlap in
    ``overlap_bins`` (the last bin includes 1.0); hypothesis length in
    ``length_bins`` (the last bin is open). A slice may be empty.
    """
    if len(premises) != len(hypotheses):
        raise ValueError(f'{len(premises)} premises but {len(hypotheses)} hypotheses')
    negation = onp.array([has_negation(h) for h in hypotheses], dtype=bool)
    overlap = onp.array([word_overlap(p, h) for p, h in zip(premises, hypotheses)])
    length = onp.array([len(h) for h in hypotheses])
    masks = {'all': onp.ones(len(hypotheses), dtype=bool),
             'negation in hypothesis': negation, 'no negation': ~negation}
    edges = list(overlap_bins)
    for i, (low, high) in enumerate(zip(edges[:-1], edges[1:])):
        last = i == len(edges) - 2
        masks[f'overlap {_bin_name(low, high)}'] = (overlap >= low) & (
            (overlap <= high) if last else (overlap < high))
    edges = list(length_bins)
    for low, high in zip(edges, edges[1:] + [None]):
        name = f'hypothesis {_bin_name(low, None if high is None else high - 1, " tokens")}'
        masks[name] = (length >= low) & (True if high is None else length < high)
    return masks


def hard_easy_masks(labels, hypothesis_only_predictions):
    """The *hard* pairs (a hypothesis-only model is wrong) and the *easy* ones (it is right)."""
    labels = onp.asarray(labels)
    right = onp.asarray(hypothesis_only_predictions) == labels
    return {'hard (hypothesis-only wrong)': ~right, 'easy (hypothesis-only right)': right}


def accuracy_by_slice(labels, predictions, masks):
    """Rows ``(slice, pairs, {model: accuracy})``; an empty slice's accuracy is NaN.

    ``predictions``: model name -> predicted label ids (n,), all for the
    same n pairs as ``labels`` and the masks.
    """
    labels = onp.asarray(labels)
    for name, pred in predictions.items():
        if len(pred) != len(labels):
            raise ValueError(f'{name}: {len(pred)} predictions for {len(labels)} labels')
    rows = []
    for slice_name, mask in masks.items():
        mask = onp.asarray(mask, dtype=bool)
        if mask.shape != labels.shape:
            raise ValueError(f'slice {slice_name!r} has {mask.size} entries for '
                             f'{labels.size} labels')
        count = int(mask.sum())
        accs = {name: float((onp.asarray(pred)[mask] == labels[mask]).mean()) if count
                else float('nan') for name, pred in predictions.items()}
        rows.append((slice_name, count, accs))
    return rows


def confusion_matrix(labels, predictions, num_classes=3):
    """Counts (num_classes, num_classes): row = true label, column = predicted."""
    matrix = onp.zeros((num_classes, num_classes), dtype=int)
    onp.add.at(matrix, (onp.asarray(labels, dtype=int), onp.asarray(predictions, dtype=int)), 1)
    return matrix


def examples_in(mask, labels, predictions, k=3, seed=0):
    """Up to ``k`` indices of misclassified pairs in a slice, drawn reproducibly."""
    wrong = onp.flatnonzero(onp.asarray(mask, dtype=bool)
                            & (onp.asarray(predictions) != onp.asarray(labels)))
    rng = onp.random.default_rng(seed)
    return sorted(rng.choice(wrong, size=min(k, len(wrong)), replace=False).tolist())
