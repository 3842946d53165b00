"""The small profile's pretraining recipe, one change at a time, and what it transfers.

Two measurements on the real data (``D2L_NLI_BENCH_DATA``, default
``../shared/data``), each variant in its own process, results as JSON in
``benchmarks/results/recipe/``:

    python benchmarks/recipe.py pretrain VARIANT [--steps N]
    python benchmarks/recipe.py transfer VARIANT [--seeds 0 1 2]
    python benchmarks/recipe.py report

``pretrain`` trains the BERT of ``VARIANT`` (see ``VARIANTS``) on all of
WikiText-2's training pairs and measures the held-out losses on
``wiki.valid.tokens`` every few hundred steps, off the clock; the curve and
the no-context baseline go to ``pretrain-VARIANT.json``, the model to
``benchmarks/.runs/VARIANT``. ``transfer`` fine-tunes that BERT and a
randomly initialized BERT of the same size, with the same settings, on the
SNLI training pairs at hand, for each seed, and measures accuracy on the dev
split. ``report`` prints the Markdown tables of ``BENCHMARKS.md``.

Losses are compared at the same number of steps, so two variants may run at
once, one thread each (``D2L_NLI_THREADS=1``): the step count of the 20-minute
mark is the number of steps the recipe makes in 20 minutes on 2 cores alone
(``seconds`` in its JSON).
"""
import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
RESULTS = HERE / 'results' / 'recipe'
RUNS = HERE / '.runs'
DATA = Path(os.environ.get('D2L_NLI_BENCH_DATA', HERE.parent.parent / 'shared' / 'data'))


def variants():
    """Name -> (BERTConfig, PretrainConfig): the chapter, the recipe, and the
    recipe less one change."""
    from d2l_nli import PROFILES

    small = PROFILES['small']
    m, p = small.model, small.pretrain
    chapter = (dataclasses.replace(m, dropout=0.2, embedding_norm=False),
               dataclasses.replace(p, lr=1e-3, warmup_steps=0, mlm_bias_init=False,
                                   embedding_init='xavier', dynamic_masking=False,
                                   task_pairs=0, num_pairs=None))
    out = {'recipe': (m, p), 'chapter': chapter}
    out['no-normal-init'] = (m, dataclasses.replace(p, embedding_init='xavier'))
    out['no-embedding-norm'] = (dataclasses.replace(m, embedding_norm=False), p)
    out['no-dynamic-masking'] = (m, dataclasses.replace(p, dynamic_masking=False))
    out['no-decay-to-zero'] = (m, dataclasses.replace(p, final_lr_fraction=0.1))
    out['with-dropout'] = (dataclasses.replace(m, dropout=0.2), p)
    out['with-task-sentences'] = (m, dataclasses.replace(p, task_pairs=small.finetune.train_size))
    return out


def save(name, record):
    from d2l_nli.machinery.files import atomic_write

    RESULTS.mkdir(parents=True, exist_ok=True)
    with atomic_write(RESULTS / f'{name}.json') as f:
        json.dump(record, f, indent=2)
        f.write('\n')


def cmd_pretrain(args):
    import d2l_nli as d
    from d2l_nli.pipeline import pretrain

    model, cfg = variants()[args.variant]
    if args.steps:
        cfg = dataclasses.replace(cfg, num_steps=args.steps)
    devices = [d.parse_devices('cpu')[0]]
    start = time.perf_counter()
    bert, vocab, metrics = pretrain(DATA, model, cfg, devices, seed=args.seed, progress=False,
                                    held_out_every=args.every)
    name = args.name or args.variant
    d.save_checkpoint(RUNS / name, bert, vocab)
    save(f'pretrain-{name}', {
        'variant': name, 'model': dataclasses.asdict(model),
        'pretrain': dataclasses.asdict(cfg), 'threads': os.environ.get('OMP_NUM_THREADS'),
        'wall_seconds': time.perf_counter() - start, 'command': ' '.join(sys.argv),
        **{k: v for k, v in metrics.items() if k != 'devices'}})


def _take(pairs, idx):
    return tuple([column[i] for i in idx] for column in pairs)


def cmd_transfer(args):
    import numpy as onp
    from mxnet import gluon

    import d2l_nli as d
    from d2l_nli.pipeline import classifier_for, new_bert

    small = d.PROFILES['small']
    options = {k: v for k, v in (('lr', args.lr), ('num_epochs', args.epochs),
                                 ('pooling', args.pooling), ('dropout', args.dropout),
                                 ('encoder_lr_scale', args.encoder_lr_scale),
                                 ('warmup_fraction', args.warmup_fraction)) if v is not None}
    ft = dataclasses.replace(small.finetune, **options)
    devices = [d.parse_devices('cpu')[0]]
    model_cfg, pre_cfg = variants()[args.variant]
    folder = DATA / 'snli_1.0'
    pairs = d.subsample(d.read_snli(folder, split='train'), ft.train_size, 0)
    if args.tune:
        # Settings are chosen on a part of the training split, never on dev.
        order = onp.random.default_rng(123).permutation(len(pairs[2]))
        train_pairs, eval_pairs, split = _take(pairs, order[2000:]), _take(pairs, order[:2000]), \
            'train-holdout'
    else:
        train_pairs, eval_pairs, split = pairs, d.read_snli(folder, split='dev'), 'dev'
    runs = []
    for seed in args.seeds:
        for start in ('pretrained', 'random'):
            bert, vocab = d.load_pretrained(RUNS / (args.name or args.variant), devices)
            d.seed_everything(seed)
            if start == 'random':
                bert = new_bert(vocab, model_cfg, pre_cfg, devices, seed=seed + 1000)
            train_set = d.SNLIBERTDataset(train_pairs, ft.max_len, vocab, verbose=False)
            eval_set = d.SNLIBERTDataset(eval_pairs, ft.max_len, vocab, verbose=False)
            net = classifier_for(bert, ft, devices)
            if args.freeze_embeddings:
                net.encoder.token_embedding.weight.grad_req = 'null'
            net.hybridize(static_alloc=True)
            train_iter = train_set.loader(ft.batch_size, shuffle=True, seed=seed)
            trainer = d.finetuning_trainer(net.collect_params(), ft.lr,
                                           ft.num_epochs * len(train_iter), ft.warmup_fraction)
            m = d.train_ch13(net, train_iter,
                             eval_set.loader(256), gluon.loss.SoftmaxCrossEntropyLoss(),
                             trainer, ft.num_epochs, devices)
            runs.append({'start': start, 'seed': seed, 'split': split,
                         'eval_acc': m['test_acc'], 'train_acc': m['train_acc'],
                         'train_loss': m['train_loss'], 'seconds': m['seconds']})
            print(json.dumps(runs[-1]), flush=True)
    tag = f'transfer-{args.name or args.variant}' + ('-tune' if args.tune else '') + \
        (f'-{args.tag}' if args.tag else '')
    save(tag, {'variant': args.variant, 'finetune': dataclasses.asdict(ft), 'split': split,
               'runs': runs, 'command': ' '.join(sys.argv)})


def cmd_baseline(args):
    """The context-free baselines of notebook 5 on the same pairs, settings chosen on train.

    The bag-of-words settings are picked by 3-fold cross-validation on the
    training pairs, folds grouped by premise (SNLI writes three hypotheses
    per premise, one per label); dev is measured once, with the pick.
    """
    import numpy as onp
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    import d2l_nli as d

    small = d.PROFILES['small']
    folder = DATA / 'snli_1.0'
    train = d.subsample(d.read_snli(folder, split='train'), small.finetune.train_size, 0)
    dev = d.read_snli(folder, split='dev')
    groups = onp.unique(train[0], return_inverse=True)[1]
    folds = list(GroupKFold(3).split(train[2], train[2], groups))

    def part(idx):
        return tuple([column[i] for i in idx] for column in train)

    start = time.perf_counter()
    results, grid = {}, []
    for features in ('hypothesis', 'both'):
        for ngrams in (1, 2):
            for C in (0.1, 0.3, 1.0):
                cv = onp.mean([d.BagOfWordsNLI(features, ngrams, C).fit(part(a)).score(part(b))
                               for a, b in folds])
                grid.append({'features': features, 'ngrams': ngrams, 'C': C, 'cv_acc': cv})
                print(json.dumps(grid[-1]), flush=True)
        best = max((g for g in grid if g['features'] == features), key=lambda g: g['cv_acc'])
        fit_start = time.perf_counter()
        model = d.BagOfWordsNLI(features).fit(train)  # the package's defaults
        if (model.ngrams, model.C) != (best['ngrams'], best['C']):
            print(f'note: the defaults differ from the best on train: {best}', flush=True)
        # What ungrouped folds would have said: a premise's hypotheses split apart.
        shuffled = StratifiedKFold(3, shuffle=True, random_state=0).split(train[2], train[2])
        ungrouped = onp.mean([d.BagOfWordsNLI(features).fit(part(a)).score(part(b))
                              for a, b in shuffled])
        results[features] = {'best_on_train_cv': best, 'ungrouped_cv_acc': ungrouped,
                             'used': {'ngrams': model.ngrams, 'C': model.C},
                             'train_acc': model.score(train), 'dev_acc': model.score(dev),
                             'fit_seconds': time.perf_counter() - fit_start}
        print(features, results[features], flush=True)
    majority = d.majority_label(train[2])
    results['majority label'] = {'dev_acc': float((onp.array(dev[2]) == majority).mean())}
    save('baseline', {'num_train': len(train[2]), 'num_dev': len(dev[2]), 'results': results,
                      'grid': grid, 'seconds': time.perf_counter() - start,
                      'command': ' '.join(sys.argv)})


def cmd_report(args):
    def mean(xs):
        return sum(xs) / len(xs)

    print('| variant | steps | seconds | held-out MLM | no-context | gain | held-out NSP |')
    print('|---|---|---|---|---|---|---|')
    for path in sorted(RESULTS.glob('pretrain-*.json')):
        r = json.loads(path.read_text())
        last = r['held_out'][-1]
        print(f"| {r['variant']} | {last['step']} | {last['seconds']:.0f} | "
              f"{last['mlm_loss']:.3f} | {r['held_out_unigram']:.3f} | "
              f"{r['held_out_unigram'] - last['mlm_loss']:.3f} | {last['nsp_loss']:.3f} |")
    print()
    for path in sorted(RESULTS.glob('transfer-*.json')):
        r = json.loads(path.read_text())
        for start in ('pretrained', 'random'):
            accs = [x['eval_acc'] for x in r['runs'] if x['start'] == start]
            print(f"{path.stem} {start}: {r.get('split', 'dev')} {mean(accs):.3f} "
                  f"({', '.join(f'{a:.3f}' for a in accs)})")


def main():
    from mxnet import npx

    npx.set_np()  # the chapter's NumPy mode
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    p = sub.add_parser('pretrain')
    p.add_argument('variant', choices=sorted(variants()))
    p.add_argument('--steps', type=int, help="instead of the profile's num_steps")
    p.add_argument('--every', type=int, default=250, help='held-out evaluation every N steps')
    p.add_argument('--name', help='name of the result and model (default: the variant)')
    p.add_argument('--seed', type=int, default=0)
    p.set_defaults(func=cmd_pretrain)
    p = sub.add_parser('transfer')
    p.add_argument('variant', choices=sorted(variants()))
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--lr', type=float)
    p.add_argument('--epochs', type=int)
    p.add_argument('--pooling', choices=['cls', 'mean'])
    p.add_argument('--dropout', type=float)
    p.add_argument('--encoder-lr-scale', type=float)
    p.add_argument('--warmup-fraction', type=float)
    p.add_argument('--freeze-embeddings', action='store_true')
    p.add_argument('--tune', action='store_true',
                   help='train on 7,987 training pairs, measure on the other 2,000 (not dev)')
    p.add_argument('--tag', default='')
    p.add_argument('--name', help='the pretrained model to start from (default: the variant)')
    p.set_defaults(func=cmd_transfer)
    p = sub.add_parser('baseline')
    p.set_defaults(func=cmd_baseline)
    p = sub.add_parser('report')
    p.set_defaults(func=cmd_report)
    args = parser.parse_args()
    args.func(args)


if __name__ == '__main__':
    main()
