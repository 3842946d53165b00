"""A small generated corpus in the official file formats, for offline runs.

``write_demo_corpus(root)`` writes ``root/wikitext-2/wiki.{train,valid,test}.tokens``
and ``root/snli_1.0/snli_1.0_{train,dev,test}.{txt,jsonl}`` exactly as the
official archives lay them out, so the same readers load them. Both come from
one tiny world (people and animals doing things in places), so pretraining
on the "wiki" text helps with the "SNLI" pairs, and the NLI labels follow
rules a model can learn from the pair:

* entailment: the hypothesis generalises the premise (man -> person,
  running -> moving) or repeats part of it;
* contradiction: it states the opposite (an animal for a person, resting
  for running, inside for the park);
* neutral: it adds something the premise does not say (a purpose, an
  adjective).

The moving/resting hypotheses occur under both entailment and
contradiction, so for them a model has to compare with the premise.

Wiki paragraphs follow one subject from sentence to sentence, so a true next
sentence is recognisable (next-sentence prediction is learnable too). The
output depends only on the corpus sizes and the seed.
"""
import json
import random
from pathlib import Path

from .machinery.files import atomic_directory, atomic_write
from .settings import PROFILES, DemoCorpusConfig
from .snli import LABEL_NAMES, SNLI_COLUMNS

__all__ = ['write_demo_corpus', 'ensure_demo_corpus']

FORMAT_VERSION = 1


# (noun, plural, hypernym, hypernym plural, is_person)
_SUBJECTS = [('man', 'men', 'person', 'people', True),
             ('woman', 'women', 'person', 'people', True),
             ('boy', 'boys', 'child', 'children', True),
             ('girl', 'girls', 'child', 'children', True),
             ('chef', 'chefs', 'person', 'people', True),
             ('farmer', 'farmers', 'person', 'people', True),
             ('musician', 'musicians', 'person', 'people', True),
             ('student', 'students', 'person', 'people', True),
             ('dog', 'dogs', 'animal', 'animals', False),
             ('cat', 'cats', 'animal', 'animals', False),
             ('horse', 'horses', 'animal', 'animals', False)]
# Adjectives in antonym pairs: "the man is old" contradicts "a young man".
_ANTONYMS = dict([('young', 'old'), ('tall', 'short'), ('happy', 'sad'),
                  ('hungry', 'full'), ('rich', 'poor'), ('quiet', 'loud')])
_ANTONYMS.update({b: a for a, b in list(_ANTONYMS.items())})
_ADJECTIVES = sorted(_ANTONYMS)
# (activity, generalisation, moving?, people only). An activity either
# moves the body or keeps it still: "is moving" follows from "is running"
# and contradicts "is sleeping".
_ACTIVITIES = [('running', 'moving', True, False),
               ('jumping', 'moving', True, False),
               ('swimming', 'moving', True, False),
               ('dancing', 'moving', True, True),
               ('climbing', 'moving', True, True),
               ('sleeping', 'resting', False, False),
               ('sitting', 'resting', False, False),
               ('reading', 'resting', False, True),
               ('writing', 'resting', False, True),
               ('painting', 'resting', False, True)]
# (place, outside?)
_PLACES = [('in the park', True), ('on the beach', True), ('in the garden', True),
           ('on the street', True), ('in the kitchen', False), ('in the library', False),
           ('at home', False), ('in a small room', False)]
_EXTRAS = ['for a friend', 'to win a prize', 'for the first time', 'before lunch',
           'after work', 'for money', 'with a friend']
_TIMES = ['every morning', 'later', 'on sunday', 'after lunch', 'then', 'in the evening',
          'in 1998', 'one day']


def _article(word):
    return 'an' if word[0] in 'aeiou' else 'a'


class _World:
    """Random scenes and sentences about them, from one ``random.Random``.

    Every kind of hypothesis (a generalisation, another activity, a
    negation, an adjective, a place, an extra detail) occurs under more than
    one label: only its relation to the premise decides the label, so a
    model must read both sentences.
    """

    def __init__(self, rng):
        self.rng = rng

    def scene(self):
        r = self.rng
        subject = r.choice(_SUBJECTS)
        return {'subject': subject, 'plural': r.random() < 0.25,
                'adj': r.choice(_ADJECTIVES) if r.random() < 0.5 else None,
                'act': r.choice(self.activities(subject)), 'place': r.choice(_PLACES),
                'extra': r.choice(_EXTRAS) if r.random() < 0.7 else None}

    @staticmethod
    def activities(subject, exclude_group=None):
        return [a for a in _ACTIVITIES if (subject[4] or not a[3]) and a[2] != exclude_group]

    @staticmethod
    def noun_phrase(s, hyper=False, adj=True, definite=False):
        noun, plural, h, hp, _ = s['subject']
        word = (hp if s['plural'] else h) if hyper else (plural if s['plural'] else noun)
        if adj and s['adj']:
            word = f"{s['adj']} {word}"
        if s['plural']:
            return f'the {word}' if definite else f'two {word}'
        return f'the {word}' if definite else f'{_article(word)} {word}'

    @staticmethod
    def be(s):
        return 'are' if s['plural'] else 'is'

    def premise(self, s):
        extra = f" {s['extra']}" if s['extra'] else ''
        return f"{self.noun_phrase(s)} {self.be(s)} {s['act'][0]} {s['place'][0]}{extra} ."

    def hypothesis(self, s, label):
        """A hypothesis of one of three forms: about the activity, the place
        or the subject.

        As in real SNLI, the wording of most hypotheses gives their label away
        (a generalisation such as "a person" tends to be entailed, a new
        detail neutral). The activity form does not: "is moving" is entailed
        by "is running" and contradicted by "is sleeping", so only a model
        that reads the premise gets those pairs right.
        """
        r, be = self.rng, self.be(s)
        act, _, moving, _ = s['act']
        place, outside = s['place']
        subj = self.noun_phrase(s, hyper=r.random() < 0.5, adj=False)
        # Entailed and contradicted hypotheses may repeat the premise's extra
        # detail; neutral ones add a new detail or a new adjective.
        old = f" {s['extra']}" if s['extra'] and r.random() < 0.7 else ''
        new = ' ' + r.choice([e for e in _EXTRAS if e != s['extra']])
        unrelated = r.choice([a for a in _ADJECTIVES if s['adj'] not in (a, _ANTONYMS[a])])
        if r.random() < 0.5:
            subj_new = self.noun_phrase(dict(s, adj=unrelated), hyper=r.random() < 0.5)
            neutral = f'{subj_new} {be} {act}{old} .'
        else:
            neutral = f'{subj} {be} {act}{new} .'
        form = r.choice(['activity', 'place', 'subject'])
        if form == 'activity':
            states = ('moving', 'resting') if moving else ('resting', 'moving')
            return {'entailment': f'{subj} {be} {states[0]}{old} .',
                    'contradiction': f'{subj} {be} {states[1]}{old} .',
                    'neutral': neutral}[label]
        if form == 'place':
            elsewhere = 'inside' if outside else 'outside'
            return {'entailment': f'{subj} {be} {act} {place} .',
                    'contradiction': f'{subj} {be} {act} {elsewhere} .',
                    'neutral': f'{subj} {be} {act} {place}{new} .'}[label]
        # A person where the premise has an animal, or the other way round.
        other_subject = dict(s, subject=r.choice(
            [x for x in _SUBJECTS if x[4] != s['subject'][4]]), adj=None)
        return {'entailment': f"{self.noun_phrase(s, hyper=True, adj=False)} {be} {act} "
                              f"{place} .",
                'contradiction': f"{self.noun_phrase(other_subject)} "
                                 f"{self.be(other_subject)} {act} {place} .",
                'neutral': f'{subj} {be} {act} {place}{new} .'}[label]

    def paragraph(self, num_sentences):
        """Sentences about one subject doing one thing in one place, WikiText style.

        Every sentence of a paragraph mentions its activity and often its
        subject and place, while a random sentence of another paragraph
        rarely does: telling true next sentences from random ones (NSP) and
        filling in masked words (MLM) both reward comparing the two sentences
        of a pair, which is what NLI needs too.
        """
        r, s = self.rng, self.scene()
        the, be = self.noun_phrase(s, definite=True), self.be(s)
        act, general, group, _ = s['act']
        place, outside = s['place']
        other = r.choice(self.activities(s['subject'], exclude_group=group))[0]
        kinds = [
            lambda: f'{r.choice(_TIMES)} , {the} {be} {act} {place} {r.choice(_EXTRAS)}',
            lambda: (f"like every {s['subject'][2]} , {the} {be} {s['adj'] or 'happy'} when "
                     f"{act} {'outside' if outside else 'inside'}"),
            lambda: f'{r.choice(_TIMES)} {the} {be} not {other} but {act} {r.choice(_EXTRAS)}',
            lambda: f"two other {s['subject'][3]} watch {the} {act} {place}",
            lambda: (f'in {r.randint(1900, 2015)} {the} won a prize of 3 @.@ '
                     f'{r.randint(1, 9)} <unk> for {act} {place}'),
            lambda: (f"{the} {be} never {_ANTONYMS[s['adj'] or 'happy']} when {general} "
                     f'{r.choice(_EXTRAS)}'),
        ]
        lines = [f"{the} {'spend' if s['plural'] else 'spends'} most days {place} "
                 f'and {be} known for {act}']
        lines += [r.choice(kinds)() for _ in range(num_sentences - 1)]
        return ' . '.join(lines) + ' .'


def _binary_parse(tokens):
    """A right-branching binary bracketing, as in SNLI's binary-parse columns."""
    if len(tokens) == 1:
        return tokens[0]
    return f'( {tokens[0]} {_binary_parse(tokens[1:])} )'


def _detokenize(tokens):
    """The raw sentence a tokenizer turns back into ``tokens``."""
    text = ' '.join(tokens).replace(' .', '.').replace(' ,', ',')
    return text[0].upper() + text[1:]


def _snli_rows(world, num_pairs, no_gold_fraction, split):
    r = world.rng
    for i in range(num_pairs):
        if i % 3 == 0:  # as in SNLI, one premise gets one hypothesis per label
            s = world.scene()
        label = LABEL_NAMES[i % 3]
        p_tokens, h_tokens = world.premise(s).split(), world.hypothesis(s, label).split()
        p_tokens[0] = p_tokens[0].capitalize()
        h_tokens[0] = h_tokens[0].capitalize()
        annotators = [label] * 5
        gold = label
        if r.random() < no_gold_fraction:  # annotators disagree: gold label '-'
            annotators = [label, label, 'neutral' if label != 'neutral' else 'entailment',
                          'contradiction' if label != 'contradiction' else 'entailment', '']
            gold = '-'
        yield {
            'annotator_labels': [a for a in annotators if a],
            'captionID': f'demo{split}{i // 3}.jpg#0', 'gold_label': gold,
            'pairID': f'demo{split}{i // 3}.jpg#0r1{label[0]}',
            'sentence1': _detokenize(p_tokens),
            'sentence1_binary_parse': _binary_parse(p_tokens),
            'sentence1_parse': '(ROOT (S ' + ' '.join(f'(X {t})' for t in p_tokens) + '))',
            'sentence2': _detokenize(h_tokens),
            'sentence2_binary_parse': _binary_parse(h_tokens),
            'sentence2_parse': '(ROOT (S ' + ' '.join(f'(X {t})' for t in h_tokens) + '))',
        }


def _write_snli(folder, stem, rows):
    rows = list(rows)
    with atomic_write(folder / f'{stem}.txt') as f:
        f.write('\t'.join(SNLI_COLUMNS) + '\n')
        for row in rows:
            labels = (row['annotator_labels'] + [''] * 5)[:5]
            f.write('\t'.join([row[c] for c in SNLI_COLUMNS[:9]] + labels) + '\n')
    with atomic_write(folder / f'{stem}.jsonl') as f:
        for row in rows:
            f.write(json.dumps(row) + '\n')


def _write_wiki(path, world, num_paragraphs):
    r = world.rng
    with atomic_write(path) as f:
        for article in range(0, num_paragraphs, 4):
            f.write(f' \n = Demo article {article // 4 + 1} = \n \n')
            for k in range(min(4, num_paragraphs - article)):
                if k == 2:
                    f.write(f' = = Section {k} = = \n \n')
                f.write(' ' + world.paragraph(r.randint(3, 6)) + ' \n')


def _corpus(corpus):
    if isinstance(corpus, DemoCorpusConfig):
        return corpus
    if corpus not in PROFILES:
        raise ValueError(f'unknown corpus {corpus!r}: give a DemoCorpusConfig or the name of '
                         f'a profile ({", ".join(PROFILES)})')
    return PROFILES[corpus].corpus


def write_demo_corpus(root, corpus='demo', seed=0):
    """Write the demo corpus under ``root`` (``wikitext-2/`` and ``snli_1.0/``).

    ``corpus`` is a :class:`~d2l_nli.DemoCorpusConfig`, or the name of a
    profile whose corpus to write ('demo', 'tiny', ...).

    Each folder is written to a temporary name and renamed when complete;
    existing folders are left as they are. Returns ``root``.
    """
    config = _corpus(corpus)
    root = Path(root)
    if not (root / 'wikitext-2').exists():
        with atomic_directory(root / 'wikitext-2') as tmp:
            for split in ('train', 'valid', 'test'):
                world = _World(random.Random(f'wiki-{split}-{seed}'))
                _write_wiki(tmp / f'wiki.{split}.tokens', world,
                            getattr(config, f'wiki_{split}'))
    if not (root / 'snli_1.0').exists():
        with atomic_directory(root / 'snli_1.0') as tmp:
            for split in ('train', 'dev', 'test'):
                world = _World(random.Random(f'snli-{split}-{seed}'))
                rows = _snli_rows(world, getattr(config, f'snli_{split}'),
                                  config.no_gold_fraction, split)
                _write_snli(tmp, f'snli_1.0_{split}', rows)
    return root


def ensure_demo_corpus(data_dir=None, corpus='demo', seed=0):
    """The demo corpus folder ``<data dir>/demo-<name>-...``, generated if absent.

    ``corpus`` as for :func:`write_demo_corpus`.

    It lives in its own folder, so it never shadows real downloaded data.
    """
    from .machinery.hub import get_data_dir

    config = _corpus(corpus)
    root = get_data_dir(data_dir) / f'demo-{config.name}-v{FORMAT_VERSION}-seed{seed}'
    return write_demo_corpus(root, config, seed)
