"""Generate a full-size synthetic SNLI training split for scaling benchmarks.

The real SNLI training split (549,367 labelled pairs) is not available
offline; only its first 9,987 pairs and the full dev split are. This script
builds a stand-in of the real size whose statistics match the real data:

* each synthetic pair takes the (premise length, hypothesis length) of a real
  pair drawn at random, so the joint length distribution is the real one;
* every token is drawn from the unigram distribution of the real tokens, so
  vocabulary size, ``min_freq`` cut-offs and unknown-token rates are realistic;
* gold labels are entailment / contradiction / neutral, uniformly.

The result is written in the official column layout as
``<out>/snli_1.0/snli_1.0_train.txt`` and the real ``snli_1.0_dev.txt`` is
copied next to it, so ``<out>/snli_1.0`` works as an SNLI data folder::

    /work/main/.venv/bin/python benchmarks/make_snli_full.py
    /work/main/.venv/bin/python benchmarks/make_snli_full.py --num-pairs 2000 --out /tmp/snli_small

The default output folder ``benchmarks/.data/`` holds generated data and must
never be committed. Generation is skipped when the training file already has
the requested number of pairs; pass ``--force`` to regenerate (for example
after changing ``--seed``).
"""
import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_SOURCE = Path('/work/shared/data/snli_1.0')
DEFAULT_OUT = Path(__file__).resolve().parent / '.data' / 'snli_full'
FULL_TRAIN_PAIRS = 549367  # labelled pairs of the official training split
LABEL_NAMES = ('entailment', 'contradiction', 'neutral')
HEADER = ('gold_label\tsentence1_binary_parse\tsentence2_binary_parse\t'
          'sentence1_parse\tsentence2_parse\tsentence1\tsentence2\t'
          'captionID\tpairID\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5')
CHUNK_PAIRS = 32768  # pairs assembled per write; bounds the gather index memory


class UsageError(Exception):
    """A problem the person running the script can fix; printed without a traceback."""


def _tokens(binary_parse):
    """Tokens of a binary-parse column: the words without the brackets."""
    return [tok for tok in binary_parse.split() if tok not in ('(', ')')]


def read_real(paths):
    """Read real SNLI ``.txt`` files.

    Returns ``(words, stream, prem_len, hyp_len)``: the distinct words, the
    word index of every token occurrence (its histogram is the unigram
    distribution) and the token lengths of every pair.
    """
    word_index, stream, prem_len, hyp_len = {}, [], [], []
    for path in paths:
        if not path.is_file():
            raise UsageError(f'{path}: file not found. Pass --source with the folder '
                             'holding snli_1.0_train.txt and snli_1.0_dev.txt.')
        with open(path, encoding='utf-8') as f:
            header = f.readline().rstrip('\r\n').split('\t')
            if header[:3] != HEADER.split('\t')[:3]:
                raise UsageError(f'{path}, line 1: not the SNLI header ({header[:3]})')
            for number, line in enumerate(f, start=2):
                fields = line.rstrip('\r\n').split('\t')
                if len(fields) < 3:
                    if not line.strip():
                        continue
                    raise UsageError(f'{path}, line {number}: fewer than 3 tab-separated '
                                     'columns; is the file damaged?')
                # All rows count, also the unlabelled '-' ones: lengths and words
                # do not depend on the annotators' agreement.
                premise, hypothesis = _tokens(fields[1]), _tokens(fields[2])
                prem_len.append(len(premise))
                hyp_len.append(len(hypothesis))
                for tok in premise + hypothesis:
                    stream.append(word_index.setdefault(tok, len(word_index)))
    if not prem_len:
        raise UsageError(f'no sentence pairs found in {", ".join(map(str, paths))}')
    return (list(word_index), np.asarray(stream, dtype=np.int32),
            np.asarray(prem_len, dtype=np.int64), np.asarray(hyp_len, dtype=np.int64))


def gather(buf, starts, lengths):
    """Concatenate the byte ranges ``buf[s:s+l]`` for all (s, l), vectorised."""
    lengths = np.asarray(lengths, dtype=np.int64).ravel()
    starts = np.asarray(starts, dtype=np.int64).ravel()
    ends = np.cumsum(lengths)
    # Position k of the output lies in range r; it reads buf[start_r + (k - out_start_r)].
    shift = np.repeat(starts - (ends - lengths), lengths)
    return buf[shift + np.arange(int(ends[-1]) if len(ends) else 0, dtype=np.int64)]


class ByteTable:
    """Byte strings stored back to back, addressed by index."""

    def __init__(self, strings):
        encoded = [s.encode('utf-8') for s in strings]
        self.length = np.array([len(b) for b in encoded], dtype=np.int64)
        self.start = np.concatenate([[0], np.cumsum(self.length)[:-1]]).astype(np.int64)
        self.buf = np.frombuffer(b''.join(encoded), dtype=np.uint8)


def count_lines(path):
    """Number of newline characters in a file, read in binary blocks."""
    lines = 0
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 24), b''):
            lines += block.count(b'\n')
    return lines


def atomic_target(path):
    """Open a temporary file next to ``path``; return ``(file, temp_path)``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    # mkstemp creates the file 0600; give it the usual permissions of new files.
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    return os.fdopen(fd, 'wb'), Path(tmp)


def copy_atomic(src, dst):
    """Copy ``src`` to ``dst`` so that ``dst`` is never seen half written."""
    f, tmp = atomic_target(dst)
    try:
        with f, open(src, 'rb') as s:
            shutil.copyfileobj(s, f, 1 << 24)
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_synthetic(path, words, tokens, tok_offsets, labels, id_width):
    """Write the synthetic pairs in the official SNLI column layout.

    Each line is assembled as a fixed sequence of 20 byte ranges (label,
    separators, the premise and hypothesis texts three times each, the ids)
    taken from one source buffer, so the whole file is built with numpy
    gathers instead of per-line string formatting.
    """
    n = len(labels)
    # Fixed pieces: labels and separators of the official layout.
    fixed_strings = list(LABEL_NAMES) + ['\t( ', ' )\t( ', ' )\t', '\t', '\tsyn',
                                         '.jpg#r1\tsyn', 'p\t', '\t\t\t\t\n']
    fixed = ByteTable(fixed_strings)
    piece = {s: (fixed.start[i], fixed.length[i]) for i, s in enumerate(fixed_strings)}
    # Each word carries its trailing space; a sentence is its words minus the last space.
    spaced = ByteTable([w + ' ' for w in words])
    digit_bytes = np.arange(ord('0'), ord('9') + 1, dtype=np.uint8)
    powers = 10 ** np.arange(id_width - 1, -1, -1, dtype=np.int64)

    f, tmp = atomic_target(path)
    try:
        with f:
            f.write((HEADER + '\n').encode('utf-8'))
            for a in range(0, n, CHUNK_PAIRS):
                b = min(a + CHUNK_PAIRS, n)
                m = b - a
                # Sentences 2a..2b-1 (premise, hypothesis, premise, ...) and their tokens.
                chunk_tokens = tokens[tok_offsets[2 * a]:tok_offsets[2 * b]]
                sent_bytes = gather(spaced.buf, spaced.start[chunk_tokens],
                                    spaced.length[chunk_tokens])
                byte_cum = np.concatenate([[0], np.cumsum(spaced.length[chunk_tokens])])
                local_tok = tok_offsets[2 * a:2 * b + 1] - tok_offsets[2 * a]
                s_start = byte_cum[local_tok[:-1]]
                s_len = np.maximum(byte_cum[local_tok[1:]] - s_start - 1, 0)
                # Zero-padded pair numbers as ASCII digits, id_width bytes per pair.
                numbers = np.arange(a, b, dtype=np.int64)
                digits = digit_bytes[(numbers[:, None] // powers) % 10].ravel()

                src = np.concatenate([fixed.buf, sent_bytes, digits])
                s_start = s_start + len(fixed.buf)
                d_start = len(fixed.buf) + len(sent_bytes) + np.arange(m) * id_width
                p_start, p_len = s_start[0::2], s_len[0::2]
                h_start, h_len = s_start[1::2], s_len[1::2]
                lab = labels[a:b]
                l_start, l_len = fixed.start[lab], fixed.length[lab]

                def const(s):
                    st, ln = piece[s]
                    return np.full(m, st), np.full(m, ln)

                ranges = [
                    (l_start, l_len), const('\t( '), (p_start, p_len), const(' )\t( '),
                    (h_start, h_len), const(' )\t( '), (p_start, p_len), const(' )\t( '),
                    (h_start, h_len), const(' )\t'), (p_start, p_len), const('\t'),
                    (h_start, h_len), const('\tsyn'), (d_start, np.full(m, id_width)),
                    const('.jpg#r1\tsyn'), (d_start, np.full(m, id_width)), const('p\t'),
                    (l_start, l_len), const('\t\t\t\t\n'),
                ]
                # Row-major (pair, range) order gives the bytes of consecutive lines.
                starts = np.stack([r[0] for r in ranges], axis=1)
                lengths = np.stack([r[1] for r in ranges], axis=1)
                f.write(gather(src, starts, lengths).tobytes())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Generate a full-size synthetic SNLI training split with the real '
                    'length and unigram distributions (see the module docstring).')
    parser.add_argument('--num-pairs', type=int, default=FULL_TRAIN_PAIRS,
                        help='number of synthetic pairs (default: %(default)s, the '
                             'labelled pairs of the real training split)')
    parser.add_argument('--seed', type=int, default=0, help='numpy seed (default: 0)')
    parser.add_argument('--source', type=Path, default=DEFAULT_SOURCE,
                        help='folder with the real snli_1.0_train.txt and '
                             'snli_1.0_dev.txt (default: %(default)s)')
    parser.add_argument('--out', type=Path, default=DEFAULT_OUT,
                        help='output folder; the data goes to OUT/snli_1.0/ '
                             '(default: %(default)s)')
    parser.add_argument('--force', action='store_true',
                        help='regenerate even if the training file already has '
                             'the requested number of pairs')
    args = parser.parse_args(argv)
    if args.num_pairs < 1:
        parser.error('--num-pairs must be at least 1')
    return args


def main(argv=None):
    args = parse_args(argv)
    t0 = time.perf_counter()
    real_train = args.source / 'snli_1.0_train.txt'
    real_dev = args.source / 'snli_1.0_dev.txt'
    folder = args.out / 'snli_1.0'
    train_path, dev_path = folder / 'snli_1.0_train.txt', folder / 'snli_1.0_dev.txt'
    if (not args.force and train_path.is_file()
            and count_lines(train_path) == args.num_pairs + 1):
        if not dev_path.is_file():
            copy_atomic(real_dev, dev_path)
        print(f'{train_path}: already has {args.num_pairs} pairs, skipped '
              '(pass --force to regenerate)')
        return 0

    words, stream, real_p, real_h = read_real([real_train, real_dev])
    # Created only once the sources are known to be good: no empty folders on errors.
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f'cannot create the output folder {folder}: {err}') from None
    rng = np.random.default_rng(args.seed)
    # All random draws happen here, up front, so the chunking of the writer
    # cannot change the output for a given seed.
    pick = rng.integers(0, len(real_p), size=args.num_pairs)
    sent_len = np.stack([real_p[pick], real_h[pick]], axis=1).ravel()
    tok_offsets = np.concatenate([[0], np.cumsum(sent_len)])
    # Indexing the real token stream uniformly samples the unigram distribution.
    tokens = stream[rng.integers(0, len(stream), size=int(tok_offsets[-1]))]
    labels = rng.integers(0, len(LABEL_NAMES), size=args.num_pairs)
    id_width = max(6, len(str(args.num_pairs - 1)))

    write_synthetic(train_path, words, tokens, tok_offsets, labels, id_width)
    copy_atomic(real_dev, dev_path)
    seconds = time.perf_counter() - t0
    print(f'{train_path}: {args.num_pairs} pairs; mean premise/hypothesis length '
          f'{sent_len[0::2].mean():.2f}/{sent_len[1::2].mean():.2f} tokens '
          f'(real {real_p.mean():.2f}/{real_h.mean():.2f}); {seconds:.1f} s')
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except UsageError as err:
        print(f'make_snli_full.py: error: {err}', file=sys.stderr)
        sys.exit(2)
