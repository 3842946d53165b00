"""Slices for error analysis: negation, overlap, length, hard/easy, per-slice accuracy."""
import math

import numpy as onp
import pytest

from d2l_nli import tokenize_sentence as tok
from d2l_nli.slices import (
    accuracy_by_slice,
    confusion_matrix,
    examples_in,
    hard_easy_masks,
    has_negation,
    slice_masks,
    word_overlap,
)

PAIRS = [('A man is playing a guitar.', 'A man is playing music.'),
         ('A man is playing a guitar.', "The man isn't playing."),
         ('Two dogs run in the snow.', 'Nobody is outside.'),
         ('A woman reads a long book on a bench in a quiet park today.',
          'A woman is reading a book outside in a park on a sunny day.'),
         ('Kids eat.', 'Zebras gallop.')]


def _tokens():
    return [tok(p) for p, _ in PAIRS], [tok(h) for _, h in PAIRS]


def test_negation_overlap_and_length_slices():
    premises, hypotheses = _tokens()
    assert [has_negation(h) for h in hypotheses] == [False, True, True, False, False]
    assert has_negation("the man isn't here".split())  # a contraction left whole
    assert not has_negation('the nothingness of a knot'.split())
    assert word_overlap(premises[0], hypotheses[0]) == pytest.approx(4 / 5)  # not '.'
    assert word_overlap(premises[4], hypotheses[4]) == 0.0  # unknown words: no overlap
    assert word_overlap(['a'], []) == word_overlap(['a'], ['.']) == 0.0
    masks = slice_masks(premises, hypotheses)
    assert masks['all'].all() and masks['negation in hypothesis'].sum() == 2
    overlap = [k for k in masks if k.startswith('overlap')]
    # Every pair falls in exactly one overlap bin and one length bin.
    assert (sum(masks[k].astype(int) for k in overlap) == 1).all()
    length = [k for k in masks if k.startswith('hypothesis ')]
    assert (sum(masks[k].astype(int) for k in length) == 1).all()
    assert masks['hypothesis >= 13 tokens'].tolist() == [False, False, False, True, False]
    assert masks['overlap 0-0.25'].tolist() == [False, False, True, False, True]
    with pytest.raises(ValueError, match='5 premises but 4 hypotheses'):
        slice_masks(premises, hypotheses[:4])


def test_accuracy_by_slice_with_an_empty_slice_and_hard_easy():
    labels = onp.array([0, 1, 1, 2, 2])
    bert = onp.array([0, 1, 0, 2, 1])
    bow = onp.array([0, 0, 1, 2, 2])
    hyp_only = onp.array([0, 1, 1, 0, 0])
    masks = {'all': onp.ones(5, bool), 'none': onp.zeros(5, bool),
             **hard_easy_masks(labels, hyp_only)}
    rows = {name: (count, accs) for name, count, accs in
            accuracy_by_slice(labels, {'bert': bert, 'bow': bow}, masks)}
    assert rows['all'] == (5, {'bert': 0.6, 'bow': 0.8})
    count, accs = rows['none']
    assert count == 0 and math.isnan(accs['bert']) and math.isnan(accs['bow'])
    assert rows['hard (hypothesis-only wrong)'] == (2, {'bert': 0.5, 'bow': 1.0})
    assert rows['easy (hypothesis-only right)'][0] == 3
    with pytest.raises(ValueError, match='bow: 4 predictions for 5 labels'):
        accuracy_by_slice(labels, {'bow': bow[:4]}, masks)


def test_confusion_matrix_and_misclassified_examples():
    labels, preds = [0, 1, 1, 2, 2, 2], [0, 1, 0, 2, 1, 1]
    m = confusion_matrix(labels, preds)
    assert m.tolist() == [[1, 0, 0], [1, 1, 0], [0, 2, 1]] and m.sum() == 6
    wrong = examples_in(onp.ones(6, bool), labels, preds, k=2)
    assert len(wrong) == 2 and set(wrong) <= {2, 4, 5}
    assert examples_in(onp.ones(6, bool), labels, preds, k=2) == wrong  # reproducible
    assert examples_in(onp.zeros(6, bool), labels, preds) == []  # an empty slice
