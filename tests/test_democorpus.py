"""The generated demo corpus: official formats, determinism, learnable labels."""
import collections
import hashlib

import numpy as onp

import d2l_nli as d
from d2l_nli.snli import SNLI_COLUMNS


def _digest(root):
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob('*')) if p.is_file()}


def test_layout_and_determinism(tmp_path, demo_root):
    again = d.write_demo_corpus(tmp_path / 'again', 'tiny', seed=0)
    assert _digest(again) == _digest(demo_root)
    assert sorted(_digest(again)) == [
        f'snli_1.0/snli_1.0_{s}.{e}' for s in ('dev', 'test', 'train') for e in ('jsonl', 'txt')
    ] + [f'wikitext-2/wiki.{s}.tokens' for s in ('test', 'train', 'valid')]
    other = d.write_demo_corpus(tmp_path / 'other', 'tiny', seed=1)
    assert _digest(other) != _digest(demo_root)


def test_existing_folders_are_left_alone(tmp_path):
    (tmp_path / 'snli_1.0').mkdir()
    d.write_demo_corpus(tmp_path, 'tiny')
    assert list((tmp_path / 'snli_1.0').iterdir()) == []
    assert (tmp_path / 'wikitext-2' / 'wiki.train.tokens').is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]


def test_snli_files_follow_the_official_format(demo_root):
    lines = (demo_root / 'snli_1.0' / 'snli_1.0_train.txt').read_text().splitlines()
    assert lines[0].split('\t') == SNLI_COLUMNS
    assert all(len(line.split('\t')) == 14 for line in lines)
    labels = collections.Counter(line.split('\t')[0] for line in lines[1:])
    assert set(labels) <= {'entailment', 'contradiction', 'neutral', '-'}
    assert len(lines) - 1 == d.PROFILES['tiny'].corpus.snli_train
    # The raw sentence column tokenizes to the parse column.
    for line in lines[1:]:
        fields = line.split('\t')
        parse = [t for t in fields[1].split() if t not in '()']
        assert d.tokenize_sentence(fields[5], lower=False) == parse


def test_wiki_files_look_like_wikitext(demo_root):
    text = (demo_root / 'wikitext-2' / 'wiki.train.tokens').read_text()
    lines = text.split('\n')
    assert lines[1].startswith(' = ') and lines[1].endswith(' = ')
    assert all(line == '' or line.startswith(' ') for line in lines)
    assert ' @.@ ' in text and ' <unk> ' in text
    assert len(d.read_wiki(demo_root / 'wikitext-2')) == d.PROFILES['tiny'].corpus.wiki_train


def _logistic_accuracy(train_rows, train_y, test_rows, test_y):
    """Softmax regression on sets of string features (a small, honest learner)."""
    index = {f: i for i, f in enumerate(sorted({f for row in train_rows for f in row}))}

    def matrix(rows):
        x = onp.zeros((len(rows), len(index) + 1))
        x[:, -1] = 1
        for i, row in enumerate(rows):
            x[i, [index[f] for f in row if f in index]] = 1
        return x
    x, xt, y = matrix(train_rows), matrix(test_rows), onp.asarray(train_y)
    w = onp.zeros((x.shape[1], 3))
    for _ in range(300):
        z = x @ w
        p = onp.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[onp.arange(len(y)), y] -= 1
        w -= 0.5 * x.T @ p / len(y) + 1e-4 * w
    return ((xt @ w).argmax(axis=1) == onp.asarray(test_y)).mean()


def test_labels_are_learnable_and_partly_need_the_premise(tmp_path):
    """Word-overlap features of the pair predict the label better than the hypothesis alone."""
    root = d.write_demo_corpus(tmp_path, 'demo')
    train = d.read_snli(root / 'snli_1.0', split='train')
    test = d.read_snli(root / 'snli_1.0', split='test')

    def pair_features(data):
        rows = []
        for p, h in zip(data[0], data[1]):
            p, h = set(d.tokenize(p)), set(d.tokenize(h))
            rows.append({'h:' + w for w in h} | {'new:' + w for w in h - p}
                        | {'gone:' + w for w in p - h})
        return rows

    def hypothesis_features(data):
        return [{'h:' + w for w in d.tokenize(h)} for h in data[1]]

    assert collections.Counter(train[2]).most_common()[-1][1] > 0.3 * len(train[2])
    pair = _logistic_accuracy(pair_features(train), train[2], pair_features(test), test[2])
    alone = _logistic_accuracy(hypothesis_features(train), train[2],
                               hypothesis_features(test), test[2])
    assert pair > 0.8, pair        # chance is 1/3
    assert alone < pair - 0.03, (alone, pair)
    # The same hypothesis is entailed by some premises and contradicted by
    # others ("two animals are moving"): only the premise tells them apart.
    labels_of = collections.defaultdict(set)
    for h, y in zip(train[1], train[2]):
        labels_of[h.lower()].add(y)
    ambiguous = sum(len(labels_of[h.lower()]) > 1 for h in train[1])
    assert ambiguous > 0.1 * len(train[1]), ambiguous
