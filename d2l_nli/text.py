"""Text processing shared by pretraining and fine-tuning.

Two tokenizers, one vocabulary:

* :func:`tokenize` splits text that is *already tokenized* (WikiText-2 and
  the SNLI parse columns) on whitespace and lower-cases it, as the book does.
* :func:`tokenize_sentence` tokenizes a *raw* sentence (the SNLI ``.jsonl``
  files, a premise the reader types in) the way the Stanford tokenizer that
  produced SNLI's parse columns does, so ``"...airplane."`` becomes
  ``['...', 'airplane', '.']``. Training and inference then see the same
  tokens.

Also here: :class:`Vocab` (saved as JSON, never pickled), the BERT input
layout :func:`get_tokens_and_segments`, and the two pair-truncation
strategies of the chapter and its exercise (:func:`truncate_pair`).
"""
import collections
import json
import re

from .machinery.files import atomic_write

__all__ = ['tokenize', 'tokenize_sentence', 'Vocab', 'get_tokens_and_segments',
           'truncate_pair', 'TRUNCATION_STRATEGIES']


def tokenize(lines):
    """Split already-tokenized lines into lower-cased tokens.

    ``lines`` is one string or a list of strings; returns a list of tokens
    for a string and a list of token lists for a list.
    """
    if isinstance(lines, str):
        return lines.lower().split()
    return [line.lower().split() for line in lines]


# Penn-Treebank-style rules, in the order they apply. SNLI's parse columns
# were produced by the Stanford tokenizer, which follows the PTB conventions:
# punctuation and clitics ('s, n't, ...) become tokens of their own, double
# quotes become `` and '', brackets become -LRB-/-RRB-.
_PTB_RULES = [
    (re.compile(r'^"'), ' `` '),
    (re.compile(r'(``)'), r' \1 '),
    (re.compile(r'([ (\[{<])"'), r'\1 `` '),
    (re.compile(r'\.\.\.'), ' ... '),
    (re.compile(r'[,;:@#$%&]'), r' \g<0> '),
    # A full stop ends a token only at the end of the text (or before
    # closing brackets/quotes), so abbreviations such as "U.S." survive.
    (re.compile(r'([^.])(\.)([\]\)}>"\']*)\s*$'), r'\1 \2\3 '),
    (re.compile(r'[?!]'), r' \g<0> '),
    (re.compile(r"([^'])' "), r"\1 ' "),
    (re.compile(r'[\]\[\(\)\{\}<>]'), r' \g<0> '),
    (re.compile(r'--'), ' -- '),
    (re.compile(r'"'), " '' "),
    (re.compile(r"(\S)('')"), r'\1 \2 '),
    (re.compile(r"([^' ])('[sS]|'[mM]|'[dD]|') "), r'\1 \2 '),
    (re.compile(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), r'\1 \2 '),
    (re.compile(r"\b(can)(not)\b", re.IGNORECASE), r' \1 \2 '),
    (re.compile(r"\b(gon)(na)\b", re.IGNORECASE), r' \1 \2 '),
    (re.compile(r"\b(wan)(na)\b", re.IGNORECASE), r' \1 \2 '),
]
_BRACKETS = {'(': '-LRB-', ')': '-RRB-', '[': '-LSB-', ']': '-RSB-',
             '{': '-LCB-', '}': '-RCB-'}


def tokenize_sentence(sentence, lower=True):
    """Tokenize one raw sentence as SNLI's parse columns are tokenized.

    >>> tokenize_sentence('A man... flies an airplane.')
    ['a', 'man', '...', 'flies', 'an', 'airplane', '.']
    """
    if not isinstance(sentence, str):
        raise TypeError(f'expected a sentence as str, got {type(sentence).__name__}')
    text = ' ' + ' '.join(sentence.split()) + ' '
    for pattern, repl in _PTB_RULES:
        text = pattern.sub(repl, text)
    tokens = [_BRACKETS.get(tok, tok) for tok in text.split()]
    return [tok.lower() for tok in tokens] if lower else tokens


class Vocab:
    """Map tokens to indices and back.

    Index 0 is ``<unk>``, then the ``reserved_tokens`` in order, then every
    token seen at least ``min_freq`` times, most frequent first (ties in
    alphabetical order, so the vocabulary does not depend on data order).
    """

    def __init__(self, tokens=None, min_freq=0, reserved_tokens=None):
        tokens = tokens or []
        if tokens and isinstance(tokens[0], (list, tuple)):
            tokens = [tok for line in tokens for tok in line]
        counter = collections.Counter(tokens)
        self._token_freqs = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
        self.idx_to_token = ['<unk>']
        for tok in reserved_tokens or []:
            if tok not in self.idx_to_token:
                self.idx_to_token.append(tok)
        self.token_to_idx = {tok: idx for idx, tok in enumerate(self.idx_to_token)}
        for tok, freq in self._token_freqs:
            if freq < min_freq:
                break
            if tok not in self.token_to_idx:
                self.token_to_idx[tok] = len(self.idx_to_token)
                self.idx_to_token.append(tok)
        self.reserved_tokens = list(self.idx_to_token[:1 + len(reserved_tokens or [])])

    def __len__(self):
        return len(self.idx_to_token)

    def __getitem__(self, tokens):
        """Index of one token, or a list of indices for a list of tokens."""
        if isinstance(tokens, str):
            return self.token_to_idx.get(tokens, 0)
        get = self.token_to_idx.get
        return [get(tok, 0) for tok in tokens]

    def __eq__(self, other):
        return isinstance(other, Vocab) and self.idx_to_token == other.idx_to_token

    def to_tokens(self, indices):
        """Token of one index, or a list of tokens for a list of indices."""
        if hasattr(indices, '__len__') and not isinstance(indices, str):
            return [self.idx_to_token[int(i)] for i in indices]
        return self.idx_to_token[int(indices)]

    @property
    def unk(self):
        return 0

    @property
    def token_freqs(self):
        """(token, count) pairs of the corpus the vocabulary was built from."""
        return self._token_freqs

    def to_json(self):
        return {'format': 'd2l_nli.Vocab', 'version': 1,
                'idx_to_token': self.idx_to_token,
                'reserved_tokens': self.reserved_tokens}

    def save(self, path):
        """Write the vocabulary as JSON (atomically: temp file + rename)."""
        with atomic_write(path) as f:
            json.dump(self.to_json(), f, ensure_ascii=False)

    @classmethod
    def load(cls, path):
        """Read a vocabulary written by :meth:`save`; clear errors on bad files."""
        try:
            with open(path, encoding='utf-8') as f:
                data = json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f'{path}: vocabulary file not found') from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f'{path}: not a vocabulary JSON file ({err}); '
                             'save it again with Vocab.save') from None
        if not isinstance(data, dict) or data.get('format') != 'd2l_nli.Vocab':
            raise ValueError(f'{path}: JSON file is not a d2l_nli vocabulary '
                             '(no "format": "d2l_nli.Vocab")')
        tokens = data.get('idx_to_token')
        if (not isinstance(tokens, list) or not tokens or tokens[0] != '<unk>'
                or not all(isinstance(t, str) for t in tokens)
                or len(set(tokens)) != len(tokens)):
            raise ValueError(f'{path}: "idx_to_token" must be a list of distinct '
                             'strings starting with "<unk>"')
        reserved = data.get('reserved_tokens', ['<unk>'])
        if not isinstance(reserved, list) or not all(
                isinstance(t, str) for t in reserved) or not set(reserved) <= set(tokens):
            raise ValueError(f'{path}: "reserved_tokens" must be a list of tokens of '
                             '"idx_to_token"')
        vocab = cls()
        vocab.idx_to_token = list(tokens)
        vocab.token_to_idx = {tok: idx for idx, tok in enumerate(tokens)}
        vocab.reserved_tokens = list(reserved)
        vocab._token_freqs = []
        return vocab


def get_tokens_and_segments(tokens_a, tokens_b=None):
    """BERT input ``<cls> a <sep> [b <sep>]`` and its segment ids (0 for a, 1 for b)."""
    tokens = ['<cls>'] + list(tokens_a) + ['<sep>']
    segments = [0] * (len(tokens_a) + 2)
    if tokens_b is not None:
        tokens += list(tokens_b) + ['<sep>']
        segments += [1] * (len(tokens_b) + 1)
    return tokens, segments


def _longest_first(len_a, len_b, budget):
    """Lengths kept by popping from the longer side until ``len_a+len_b <= budget``.

    Closed form of the book's loop (which pops the hypothesis on ties).
    """
    excess = len_a + len_b - budget
    if excess <= 0:
        return len_a, len_b
    if len_a > len_b:
        gap = len_a - len_b
        if excess <= gap:
            return len_a - excess, len_b
        len_a, excess = len_b, excess - gap
    elif len_b > len_a:
        gap = len_b - len_a
        if excess <= gap:
            return len_a, len_b - excess
        len_b, excess = len_a, excess - gap
    # Equal lengths now: the hypothesis loses the odd token.
    return len_a - excess // 2, len_b - (excess + 1) // 2


def _by_ratio(len_a, len_b, budget):
    """Lengths kept in proportion to the original lengths (the exercise)."""
    if len_a + len_b <= budget:
        return len_a, len_b
    keep_a = round(budget * len_a / (len_a + len_b))
    if len_a and len_b:  # never empty a side that had tokens
        keep_a = min(max(keep_a, 1), budget - 1)
    keep_a = min(keep_a, len_a)
    return keep_a, min(budget - keep_a, len_b)


TRUNCATION_STRATEGIES = {'longest_first': _longest_first, 'ratio': _by_ratio}


def truncate_pair(tokens_a, tokens_b, max_len, strategy='longest_first'):
    """Cut a pair from the end so that ``<cls> a <sep> b <sep>`` fits ``max_len``.

    ``strategy`` is ``'longest_first'`` (the book: shorten the longer side
    first) or ``'ratio'`` (the exercise: keep each side in proportion to
    its length). Neither empties a side that had tokens. Returns new lists.
    """
    if strategy not in TRUNCATION_STRATEGIES:
        raise ValueError(f'unknown truncation strategy {strategy!r}; '
                         f'choose one of {sorted(TRUNCATION_STRATEGIES)}')
    budget = max_len - 3  # room for <cls>, <sep>, <sep>
    if budget < 2:
        raise ValueError(f'max_len={max_len} is too small for a sentence pair: '
                         'it needs at least 5 (<cls>, <sep>, <sep> and one '
                         'token of each sentence)')
    keep_a, keep_b = TRUNCATION_STRATEGIES[strategy](len(tokens_a), len(tokens_b), budget)
    return list(tokens_a[:keep_a]), list(tokens_b[:keep_b])
