"""Baselines without context: the majority label and bag-of-words logistic regression."""
import numpy as onp
import pytest

from d2l_nli.baselines import BagOfWordsNLI, majority_label

E, C, N = 0, 1, 2  # entailment, contradiction, neutral
SUBJECTS = ['man', 'woman', 'boy', 'girl', 'dog', 'cat', 'chef', 'child']
PLACES = ['park', 'beach', 'kitchen', 'street', 'garden', 'shop', 'field', 'room']


def _pairs(n, seed, rule):
    """Pairs whose label follows ``rule(premise tokens, hypothesis tokens)``."""
    rng = onp.random.default_rng(seed)
    premises, hypotheses, labels = [], [], []
    for _ in range(n):
        s, p, q = rng.choice(SUBJECTS), rng.choice(PLACES), rng.choice(PLACES)
        q = p if rng.random() < 0.5 else q  # the same place in half of the pairs
        premise = f'a {s} is in the {p} .'
        hypothesis = f'the {s} is {rng.choice(["near", "at"])} the {q} .'
        premises.append(premise)
        hypotheses.append(hypothesis)
        labels.append(rule(premise.split(), hypothesis.split()))
    return premises, hypotheses, labels


def same_place(p, h):
    return E if p[-2] == h[-2] else C


def test_the_majority_label():
    assert majority_label([2, 0, 2, 1]) == 2
    assert majority_label([1, 0]) == 0  # a tie: the smallest id
    with pytest.raises(ValueError, match='empty'):
        majority_label([])


def test_a_hypothesis_word_that_gives_the_label_away_is_learned_from_the_hypothesis():
    def by_word(p, h):  # the "artifact": the preposition alone decides
        return N if h[3] == 'near' else E
    train, test = _pairs(300, 0, by_word), _pairs(100, 1, by_word)
    assert BagOfWordsNLI('hypothesis').fit(train).score(test) == 1.0


def test_a_label_that_needs_both_sentences_is_out_of_reach_of_the_hypothesis_alone():
    train, test = _pairs(600, 0, same_place), _pairs(300, 1, same_place)
    both = BagOfWordsNLI('both').fit(train).score(test)
    alone = BagOfWordsNLI('hypothesis').fit(train).score(test)
    assert both >= 0.97  # "is the hypothesis's place new?" is one of its features
    assert alone < 0.7   # the place alone says nothing about the premise's place
    predictions = BagOfWordsNLI('both', ngrams=1).fit(train).predict(test)
    assert predictions.shape == (300,) and set(predictions.tolist()) <= {E, C}


def test_unseen_words_and_empty_hypotheses_are_predicted_without_error():
    model = BagOfWordsNLI('both').fit(_pairs(200, 0, same_place))
    odd = (['zebras gallop .', 'a man'], ['quokkas smile .', ''], [E, C])
    assert model.predict(odd).shape == (2,)


def test_bags_show_what_the_model_reads_of_a_raw_pair():
    bags = BagOfWordsNLI('both').bags('A man plays.', "The man isn't asleep.")
    assert bags['premise'] == ['a', 'man', 'plays', '.', 'a man', 'man plays', 'plays .']
    assert bags['new in hypothesis'] == ['the', 'is', "n't", 'asleep']
    assert bags['overlap'] == 0.2  # 'man' of the, man, is, n't, asleep
    assert list(BagOfWordsNLI('hypothesis', ngrams=1).bags('A man.', 'A dog.')) == ['hypothesis']


def test_bad_input_is_refused_clearly():
    with pytest.raises(ValueError, match="features must be one of"):
        BagOfWordsNLI('premise')
    with pytest.raises(ValueError, match='ngrams'):
        BagOfWordsNLI(ngrams=0)
    with pytest.raises(RuntimeError, match='call fit'):
        BagOfWordsNLI().predict((['a'], ['b'], [0]))
    with pytest.raises(ValueError, match='equal lengths'):
        BagOfWordsNLI().fit((['a', 'b'], ['c'], [0, 1]))
    with pytest.raises(ValueError, match='2 pairs but 1 labels'):
        BagOfWordsNLI().fit((['a', 'b'], ['c', 'd'], [0]))
    with pytest.raises(ValueError, match='two different labels'):
        BagOfWordsNLI().fit((['a', 'b'], ['c', 'd'], [1, 1]))
