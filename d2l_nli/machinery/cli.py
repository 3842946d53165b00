"""Command line: ``python -m d2l_nli <command>``.

* ``doctor``: what this machine has, and each notebook's minutes here;
* ``demo``: the whole chapter offline on a generated corpus (about 75 s on 2 cores);
* ``pretrain``: BERT on WikiText-2, saved as a checkpoint folder;
* ``finetune``: a pretrained BERT on SNLI, saved as a classifier folder;
* ``evaluate``: a fine-tuned classifier on an SNLI split;
* ``predict``: one premise/hypothesis pair.

Defaults are the chapter's settings (``d2l_nli.PROFILES['chapter']``);
``--profile small|full`` takes a notebook profile's instead
(:data:`d2l_nli.PROFILES`), and a flag given explicitly overrides either.
Every training command can write its final figures with ``--metrics-json``.
"""
import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from ..settings import NOTEBOOK_PROFILES, BERTConfig

__all__ = ['main', 'build_parser', 'run_settings']

_DEMO_PAIRS = [
    ('A young woman is playing guitar in the park.', 'A person is playing music.'),
    ('A young woman is playing guitar in the park.', 'A woman is playing guitar inside.'),
    ('A young woman is playing guitar in the park.', 'A woman is playing guitar for money.'),
]


def _int_at_least(low):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'{text!r} is not an integer') from None
        if value < low:
            raise argparse.ArgumentTypeError(f'must be at least {low}, got {value}')
        return value
    return parse


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not a number') from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f'must be positive, got {value}')
    return value


def _write_metrics(path, command, args, devices, metrics):
    from .. import __version__
    from .files import atomic_write

    if not path:
        return
    options = {k: v for k, v in vars(args).items() if k not in ('func', 'metrics_json', 'kv')}
    record = {'command': command, 'd2l_nli_version': __version__,
              'devices': [str(d) for d in devices], 'options': options, **metrics}
    with atomic_write(path) as f:
        json.dump(record, f, indent=2, default=str)
        f.write('\n')
    print(f'metrics written to {path}')


# Command-line option -> settings field, where the two names differ.
_FIELD = {'epochs': 'num_epochs'}
# BERTConfig fields that come from the data, not from options (--max-len is
# the pretraining examples' length).
_FROM_THE_DATA = ('vocab_size', 'max_len')


def _settings(args, *configs):
    """The run's settings: each config with the options given on the command line.

    ``configs`` are the defaults (the chapter's, or the ``--profile``'s); an
    option left unset (None) keeps the default's value. The values in effect
    are written back into ``args``, so ``--metrics-json`` records them.
    """
    out = []
    for cfg in configs:
        values = dataclasses.asdict(cfg)
        if isinstance(cfg, BERTConfig):
            values = {k: v for k, v in values.items() if k not in _FROM_THE_DATA}
        for option in vars(args):
            field = _FIELD.get(option, option)
            if field in values:
                if getattr(args, option) is None:
                    setattr(args, option, values[field])
                values[field] = getattr(args, option)
        out.append(dataclasses.replace(cfg, **values))
    return out


def _defaults(args):
    """The settings a run starts from: ``--profile``'s, else the chapter's.

    With a time budget (``--budget-minutes`` or ``$D2L_NLI_BUDGET_MINUTES``)
    and ``--profile small``, the small profile as the notebooks size it.
    """
    from ..errors import D2LNLIError
    from ..settings import PROFILES
    from .budget import ENV, budget_minutes, fit_budget
    from .notebook_setup import find_data

    name = getattr(args, 'profile', None) or 'chapter'
    minutes = getattr(args, 'budget_minutes', None)
    if minutes is None and hasattr(args, 'budget_minutes'):
        minutes = budget_minutes()
    if minutes is None:
        return PROFILES[name]
    if name != 'small':
        raise D2LNLIError(f'a time budget (--budget-minutes or {ENV}) sizes the small '
                          f'profile only: add --profile small, or unset {ENV}')
    source = find_data(PROFILES['small'], args.data_dir)
    profile = fit_budget(PROFILES['small'].for_data(source), source, minutes)
    print(profile.budget)
    return profile


def run_settings(args):
    """The settings a parsed command line runs with: a dict of configs.

    ``pretrain``: ``{'model': BERTConfig, 'pretrain': PretrainConfig}``;
    ``finetune`` and ``evaluate``: ``{'finetune': FinetuneConfig}``.
    """
    base = _defaults(args)
    if args.command == 'pretrain':
        model, cfg = _settings(args, base.model, base.pretrain)
        return {'model': model, 'pretrain': cfg}
    return {'finetune': _settings(args, base.finetune)[0]}


def _finetune_config(args):
    return run_settings(args)['finetune']


def _training_state(args):
    """Keyword arguments of the pipeline: kvstore, checkpoints and resuming."""
    from .distributed import is_distributed

    if is_distributed(args.kv):
        if args.resume:
            raise ValueError('--resume is not possible with a distributed kvstore: the '
                             "optimizer's state lives on the parameter servers and is not "
                             'saved. Start the run again (or resume it on one machine).')
        return {'kvstore': args.kv, 'checkpoint_dir': None}
    out = Path(args.out)
    folder = Path(args.checkpoint_dir) if args.checkpoint_dir else \
        out.with_name(out.name + '.training')
    return {'kvstore': args.kv, 'checkpoint_dir': folder,
            'checkpoint_every': args.checkpoint_every, 'resume': args.resume}


def _chief(args):
    """Whether this process writes files: always, except workers of rank > 0."""
    from .distributed import worker_info
    return worker_info(args.kv)[0] == 0


def _finished(args, state, net, devices, metrics, command, saved):
    """After training: rank 0 saves and reports; every worker prints its checksum."""
    from .distributed import parameter_fingerprint, worker_info
    from .resume import TrainingCheckpoints

    rank, num_workers = worker_info(args.kv)
    if num_workers > 1:
        total, squares = parameter_fingerprint(net)
        # The launcher prefixes each line with its worker: equal numbers, same model.
        print(f'rank {rank} of {num_workers}: parameter checksum {total:.10e} '
              f'{squares:.10e}')
    if rank != 0:
        return
    saved()
    if state.get('checkpoint_dir') is not None:
        # The final model is saved: the run's training checkpoints have served.
        TrainingCheckpoints(state['checkpoint_dir'], None).remove_all()
    _write_metrics(args.metrics_json, command, args, devices, metrics)


def pretrain(args, devices):
    from ..pipeline import pretrain as run
    from .checkpoint import save_checkpoint

    settings = run_settings(args)
    model, cfg = settings['model'], settings['pretrain']
    state = _training_state(args)
    bert, vocab, metrics = run(args.data_dir, model, cfg, devices,
                               seed=args.seed, plot_path=args.plot if _chief(args) else None,
                               held_out_every=args.held_out_every, **state)
    if 'held_out' in metrics:
        last = metrics['held_out'][-1]
        print(f"held-out MLM loss {last['mlm_loss']:.3f} (no-context baseline "
              f"{metrics['held_out_unigram']:.3f}), held-out NSP loss {last['nsp_loss']:.3f} "
              f'(chance 0.693)')

    def saved():
        save_checkpoint(args.out, bert, vocab, extra={'pretrain': dataclasses.asdict(cfg),
                                                      'profile': args.profile})
        print(f'pretrained BERT saved to {args.out}')
    _finished(args, state, bert, devices, metrics, 'pretrain', saved)


def finetune(args, devices):
    from ..pipeline import finetune as run
    from .checkpoint import load_pretrained, save_checkpoint

    cfg = _finetune_config(args)
    bert, vocab = load_pretrained(args.pretrained, devices)
    state = _training_state(args)
    net, metrics = run(args.data_dir, bert, vocab, cfg, devices, seed=args.seed,
                       split=args.split, plot_path=args.plot if _chief(args) else None,
                       **state)

    def saved():
        save_checkpoint(args.out, net, vocab, extra={'finetune': dataclasses.asdict(cfg)})
        print(f'fine-tuned classifier saved to {args.out}')
    _finished(args, state, net, devices, metrics, 'finetune', saved)


def evaluate(args, devices):
    from ..pipeline import evaluate as run
    from .checkpoint import load_classifier

    net, vocab = load_classifier(args.model, devices)
    net.hybridize(static_alloc=True)
    metrics = run(args.data_dir, net, vocab, _finetune_config(args), devices, split=args.split)
    print(f"{args.split} acc {metrics['test_acc']:.3f} on {metrics['num_test']} {args.split} pairs")
    print(f"{metrics['examples_per_sec']:.1f} examples/sec on {[str(d) for d in devices]}")
    _write_metrics(args.metrics_json, 'evaluate', args, devices, metrics)


def predict(args, devices):
    from ..classifier import predict_nli
    from .checkpoint import load_classifier

    net, vocab = load_classifier(args.model, devices)
    label, probs = predict_nli(net, vocab, args.premise, args.hypothesis, args.max_len,
                               devices[0])
    print(f'{label}  (' + ', '.join(f'{k} {v:.3f}' for k, v in probs.items()) + ')')


def demo(args, devices):
    import d2l_nli as d

    from ..pipeline import finetune as run_finetune
    from ..pipeline import pretrain as run_pretrain
    from ..settings import PROFILES

    start = time.time()
    # --profile: a notebook profile's settings, on the --preset's corpus.
    preset = PROFILES[args.profile or args.preset].for_data('demo')
    root = d.ensure_demo_corpus(args.data_dir, PROFILES[args.preset].corpus, seed=args.seed)
    out = Path(args.out) if args.out else root / 'checkpoints'
    print(f'Demo corpus (generated, official file formats): {root}')
    m, pt, ft = preset.model, preset.pretrain, preset.finetune
    print(f'\n1. Pretraining a BERT ({m.num_layers} layers, {m.num_hiddens} hidden, '
          f'{m.num_heads} heads) for {pt.num_steps} steps of {pt.batch_size} pairs on '
          f'{d.describe_devices(devices)}')
    bert, vocab, pre = run_pretrain(root, m, pt, devices, seed=args.seed,
                                    plot_path=out / 'pretrain.svg')
    d.save_checkpoint(out / 'bert', bert, vocab)
    print(f'\n2. Fine-tuning on the SNLI-format pairs for {ft.num_epochs} epochs')
    net, fine = run_finetune(root, bert, vocab, ft, devices, seed=args.seed,
                             plot_path=out / 'finetune.svg')
    d.save_checkpoint(out / 'classifier', net, vocab)
    print('\n3. Predictions on new sentences')
    for premise, hypothesis in _DEMO_PAIRS:
        label, probs = d.predict_nli(net, vocab, premise, hypothesis, ft.max_len, devices[0])
        print(f'  {premise} / {hypothesis} -> {label} ({probs[label]:.2f})')
    print(f'\nDone in {time.time() - start:.0f} s: test accuracy {fine["test_acc"]:.3f} '
          f'(chance: 0.333). Checkpoints and plots in {out}')
    metrics = {f'pretrain_{k}': v for k, v in pre.items() if k != 'devices'}
    metrics.update(fine)
    _write_metrics(args.metrics_json, 'demo', args, devices, metrics)


def _common(p, data_help='data folder (default: $D2L_NLI_DATA, else the cache folder)'):
    p.add_argument('--data-dir', help=data_help)
    p.add_argument('--devices', default='auto',
                   help="devices to train on: auto (all usable GPUs, else CPU), cpu, gpu, "
                        "or a list such as cpu:0,cpu:1 or gpu:0,gpu:1 (default: auto)")
    p.add_argument('--seed', type=int, default=0, help='random seed (default: 0)')
    p.add_argument('--metrics-json', metavar='PATH', help='write the final figures as JSON')


def _profile_option(p, what, budget=True):
    p.add_argument('--profile', choices=NOTEBOOK_PROFILES,
                   help=f"start from a notebook profile's {what} (small: a laptop CPU, "
                        "full: the chapter's sizes) instead of the chapter's; options given "
                        'explicitly override it')
    if budget:
        _budget_option(p, 'with --profile small: size the run as the notebooks are sized '
                          'for a budget of MINUTES of training in all')


def _budget_option(p, what):
    p.add_argument('--budget-minutes', type=_positive_float, metavar='MINUTES',
                   help=f'{what} (default: $D2L_NLI_BUDGET_MINUTES; see docs/teaching.md)')


def _data_options(p, cfg):
    p.add_argument('--batch-size', type=_int_at_least(1),
                   help=f'examples per batch (default: {cfg.batch_size})')
    p.add_argument('--max-len', type=_int_at_least(5),
                   help=f'tokens per example, at most (default: {cfg.max_len})')


def _recipe_options(p, model, cfg):
    """The pretraining options that are not the chapter's, with the chapter's defaults."""
    yes_no = argparse.BooleanOptionalAction
    p.add_argument('--warmup-steps', type=_int_at_least(0),
                   help='linear warm-up of the learning rate over this many steps, then linear '
                        f'decay (default: {cfg.warmup_steps}, a constant rate)')
    p.add_argument('--final-lr-fraction', type=float,
                   help='with --warmup-steps: after the warm-up, decay linearly to this '
                        f'fraction of --lr (default: {cfg.final_lr_fraction})')
    p.add_argument('--mlm-bias-init', action=yes_no,
                   help='start the MLM output bias at the words\' log-frequencies '
                        f'(default: {"yes" if cfg.mlm_bias_init else "no"})')
    p.add_argument('--embedding-init', choices=['xavier', 'normal'],
                   help='embedding tables from Xavier (the chapter) or N(0, 0.02) '
                        f'(original BERT) (default: {cfg.embedding_init})')
    p.add_argument('--embedding-norm', action=yes_no,
                   help='a LayerNorm after the embeddings, as in the original BERT '
                        f'(default: {"yes" if model.embedding_norm else "no"})')
    p.add_argument('--dynamic-masking', action=yes_no,
                   help='new masks and random next sentences every pass (default: '
                        f'{"yes" if cfg.dynamic_masking else "no"}, drawn once)')
    p.add_argument('--task-pairs', type=_int_at_least(0),
                   help='add the sentences of this many SNLI training pairs (unlabelled) to '
                        f'the pretraining text (default: {cfg.task_pairs})')
    p.add_argument('--num-pairs', type=_int_at_least(1),
                   help='pretrain on this many sentence pairs only (default: all)')
    p.add_argument('--held-out-every', type=_int_at_least(1), metavar='STEPS',
                   help='measure the losses on wiki.valid.tokens every STEPS steps and at '
                        'the end (default: never)')


def _snli_options(p, cfg):
    p.add_argument('--test-size', type=_int_at_least(1), help='evaluate on a random subset')
    p.add_argument('--split', choices=['test', 'dev'], default='test',
                   help='SNLI split to measure accuracy on (default: test)')
    p.add_argument('--truncate', choices=['longest_first', 'ratio'],
                   help=f'how to cut pairs longer than --max-len (default: {cfg.truncate})')


def _kvstore_option(p):
    from .distributed import KVSTORES
    p.add_argument('--kvstore', choices=KVSTORES, default='device',
                   help='how gradients are summed: device/local (the devices of this '
                        'process), dist_sync/dist_device_sync (several processes or '
                        'machines, started by python -m d2l_nli.launch; --batch-size is '
                        'then shared by the workers) (default: device)')


def _resume_options(p, every, unit):
    p.add_argument('--checkpoint-every', type=_int_at_least(0), default=every, metavar='STEPS',
                   help=f'save the whole training state every STEPS steps{unit} (default: '
                        f'{every}); removed once the final model is saved')
    p.add_argument('--checkpoint-dir', metavar='DIR',
                   help='where to save the training state (default: the --out folder with '
                        '.training added)')
    p.add_argument('--resume', action='store_true',
                   help='continue an interrupted run from its newest checkpoint (same options)')


def build_parser():
    from ..settings import PROFILES

    chapter = PROFILES['chapter']
    parser = argparse.ArgumentParser(
        prog='python -m d2l_nli',
        description='Natural language inference by fine-tuning BERT (the D2L chapter).')
    sub = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    for add in (_doctor_parser, _demo_parser, _pretrain_parser, _finetune_parser,
                _evaluate_parser, _predict_parser):
        add(sub, chapter)
    return parser


def _doctor_parser(sub, chapter):
    p = sub.add_parser('doctor', help='check this machine and estimate each notebook\'s minutes')
    _budget_option(p, 'also show the plan for a budget of MINUTES of training in all')
    p.add_argument('--no-benchmark', action='store_true',
                   help='only the checks, without the micro-benchmark and the estimates')
    p.add_argument('--json', metavar='PATH', help='write the report and measurements as JSON')
    p.set_defaults(func=None)


def _demo_parser(sub, chapter):
    p = sub.add_parser('demo', help='the whole chapter offline on a generated corpus')
    _common(p, 'data folder; the corpus goes to a demo-* folder inside it')
    p.add_argument('--preset', choices=['demo', 'tiny'], default='demo',
                   help='demo (about 75 s on 2 cores) or tiny (seconds, for smoke tests)')
    _profile_option(p, 'settings, sized for the demo corpus as the notebooks size them,',
                    budget=False)
    p.add_argument('--out', help='folder for checkpoints and plots (default: inside the corpus)')
    p.set_defaults(func=demo)


def _pretrain_parser(sub, chapter):
    p = sub.add_parser('pretrain', help='pretrain BERT on WikiText-2')
    _common(p)
    _profile_option(p, 'model and pretraining settings')
    _data_options(p, chapter.pretrain)
    p.add_argument('--num-steps', type=_int_at_least(1),
                   help=f'optimization steps (default: {chapter.pretrain.num_steps})')
    p.add_argument('--lr', type=_positive_float,
                   help=f'Adam learning rate (default: {chapter.pretrain.lr})')
    for name, value in dataclasses.asdict(chapter.model).items():
        if isinstance(value, bool) or name in _FROM_THE_DATA:
            continue
        kind = float if isinstance(value, float) else _int_at_least(1)
        p.add_argument('--' + name.replace('_', '-'), type=kind,
                       help=f'{"dropout probability" if name == "dropout" else "model size"} '
                            f'(default: {value})')
    _recipe_options(p, chapter.model, chapter.pretrain)
    p.add_argument('--out', default='checkpoints/bert',
                   help='checkpoint folder to write (default: checkpoints/bert)')
    p.add_argument('--plot', metavar='PATH', help='save the loss plot (.png or .svg)')
    _resume_options(p, 100, '')
    _kvstore_option(p)
    p.set_defaults(func=pretrain)


def _finetune_parser(sub, chapter):
    p = sub.add_parser('finetune', help='fine-tune a pretrained BERT on SNLI')
    _common(p)
    _profile_option(p, 'fine-tuning settings')
    _data_options(p, chapter.finetune)
    p.add_argument('--pretrained', required=True, metavar='DIR',
                   help='checkpoint folder written by pretrain')
    p.add_argument('--epochs', type=_int_at_least(1),
                   help=f'passes over the training set (default: {chapter.finetune.num_epochs})')
    p.add_argument('--lr', type=_positive_float,
                   help=f'Adam learning rate (default: {chapter.finetune.lr})')
    p.add_argument('--train-size', type=_int_at_least(1),
                   help='train on a random subset (default: all)')
    _snli_options(p, chapter.finetune)
    p.add_argument('--out', default='checkpoints/classifier',
                   help='classifier folder to write (default: checkpoints/classifier)')
    p.add_argument('--plot', metavar='PATH', help='save the training plot (.png or .svg)')
    _resume_options(p, 0, ', and after each epoch (0: after each epoch only)')
    _kvstore_option(p)
    p.set_defaults(func=finetune)


def _evaluate_parser(sub, chapter):
    p = sub.add_parser('evaluate', help='accuracy of a fine-tuned classifier')
    _common(p)
    _data_options(p, chapter.finetune)
    p.add_argument('--model', required=True, metavar='DIR', help='folder written by finetune')
    _snli_options(p, chapter.finetune)
    p.set_defaults(func=evaluate)


def _predict_parser(sub, chapter):
    p = sub.add_parser('predict', help='classify one premise/hypothesis pair')
    p.add_argument('--model', required=True, metavar='DIR', help='folder written by finetune')
    p.add_argument('premise')
    p.add_argument('hypothesis')
    p.add_argument('--max-len', type=_int_at_least(5), default=chapter.finetune.max_len)
    p.add_argument('--devices', default='cpu', help='device to run on (default: cpu)')
    p.set_defaults(func=predict)


def main(argv=None):
    args = build_parser().parse_args(argv)
    from mxnet import npx

    from ..errors import D2LNLIError
    from . import runtime
    from .devices import parse_devices

    npx.set_np()  # the chapter's NumPy mode, for this whole program
    runtime.process_defaults()  # before any dataset is built
    if args.command == 'doctor':
        from .doctor import doctor
        return doctor(args.budget_minutes, args.json, benchmark=not args.no_benchmark)
    try:
        devices = parse_devices(args.devices)
    except (ValueError, D2LNLIError) as err:
        print(f'error: --devices: {err}', file=sys.stderr)
        return 2
    try:
        from .distributed import create_kvstore
        args.kv = create_kvstore(getattr(args, 'kvstore', 'device'))
        args.func(args, devices)
    except (D2LNLIError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    return 0
