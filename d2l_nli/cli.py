"""Command line: ``python -m d2l_nli <command>``.

``demo`` runs the chapter's data pipeline offline on the generated demo
corpus: the WikiText-style pretraining examples (next-sentence pairs with
masked tokens) and the SNLI-style pairs as BERT inputs, and shows what the
model will see. It writes nothing outside ``<data dir>/demo-*``.
"""
import argparse
import collections
import sys
import time

__all__ = ['main']


def _show_pretraining_example(data, vocab, i=0):
    tokens = vocab.to_tokens(data.token_ids[i, :data.valid_lens[i]])
    n = int(data.mlm_weights[i].sum())
    positions = data.pred_positions[i, :n]
    print('  input   :', ' '.join(tokens))
    print('  segments:', ' '.join(map(str, data.segments[i, :data.valid_lens[i]])))
    print('  predict :', ', '.join(f'{p}->{vocab.to_tokens(int(l))}'
                                   for p, l in zip(positions, data.mlm_labels[i, :n])),
          '| is next sentence:', bool(data.nsp_labels[i]))


def demo(args):
    import d2l_nli as d

    start = time.time()
    root = d.ensure_demo_corpus(args.data_dir, preset=args.preset, seed=args.seed)
    print(f'Demo corpus (generated, official file formats): {root}')

    print(f'\n1. Pretraining data (WikiText-2 format), max_len={args.max_len}')
    folder = d.download_extract('wikitext-2', data_dir=root)
    paragraphs = d.read_wiki(folder, seed=args.seed)
    data = d.WikiTextBERTData(paragraphs, args.max_len, seed=args.seed)
    vocab = data.vocab
    train_iter = d.ArrayLoader(data.arrays, args.batch_size, shuffle=True, seed=args.seed)
    print(f'  {len(paragraphs)} paragraphs -> {len(data)} sentence pairs, '
          f'vocabulary of {len(vocab)} tokens, {len(train_iter)} batches of '
          f'{args.batch_size}')
    print(f'  NSP: {data.nsp_labels.mean():.0%} true next sentences; MLM: '
          f'{data.mlm_weights.sum() / (data.valid_lens - 3).sum():.1%} of the words '
          'to predict')
    _show_pretraining_example(data, vocab)
    shapes = [tuple(x.shape) for x in next(iter(train_iter))]
    print('  one batch: tokens, segments, valid_lens, pred_positions, mlm_weights, '
          f'mlm_labels, nsp_labels with shapes {shapes}')

    print(f'\n2. Fine-tuning data (SNLI format), max_len={args.max_len}')
    folder = d.download_extract('SNLI', data_dir=root)
    splits = {}
    for split in ('train', 'test'):
        pairs = d.read_snli(folder, split=split)
        counts = collections.Counter(d.LABEL_NAMES[y] for y in pairs[2])
        print(f'  {split}: {len(pairs[0])} pairs ({dict(counts)}); ', end='')
        splits[split] = d.SNLIBERTDataset(pairs, args.max_len, vocab)
    train_set = splits['train']
    tokens = vocab.to_tokens(train_set.token_ids[0, :train_set.valid_lens[0]])
    print('  first pair :', ' '.join(tokens), '->', d.LABEL_NAMES[train_set.labels[0]])
    unknown = (train_set.token_ids == vocab.unk).sum() / train_set.valid_lens.sum()
    print(f'  words unknown to the pretraining vocabulary: {unknown:.1%}')
    print(f'\nData pipeline ready in {time.time() - start:.1f} s. The model '
          '(BERT pretraining and fine-tuning) is not part of this version yet, '
          'so no loss or accuracy is reported.')
    return 0


def build_parser():
    from .democorpus import DEMO_PRESETS

    parser = argparse.ArgumentParser(
        prog='python -m d2l_nli',
        description='Natural language inference by fine-tuning BERT (D2L chapter).')
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('demo', help='run the chapter offline on a generated demo corpus')
    p.add_argument('--data-dir', help='data folder (default: $D2L_NLI_DATA, else the cache '
                   'folder); the demo corpus goes to a demo-* folder inside it')
    p.add_argument('--preset', choices=sorted(DEMO_PRESETS), default='demo',
                   help='size of the generated corpus (default: demo)')
    p.add_argument('--max-len', type=int, default=64, help='tokens per example (default: 64)')
    p.add_argument('--batch-size', type=int, default=64, help='examples per batch (default: 64)')
    p.add_argument('--seed', type=int, default=0, help='random seed (default: 0)')
    p.set_defaults(func=demo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if getattr(args, 'max_len', 5) < 5:
        print('error: --max-len must be at least 5 (<cls>, <sep>, <sep> and one token '
              'of each sentence)', file=sys.stderr)
        return 2
    if getattr(args, 'batch_size', 1) < 1:
        print('error: --batch-size must be at least 1', file=sys.stderr)
        return 2
    from .errors import D2LNLIError
    try:
        return args.func(args)
    except D2LNLIError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
