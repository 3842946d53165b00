"""d2l-nli as a benchmark worker: the same tasks as ``worker_ref.py``.

Runs in the project's environment with the package's defaults (threads,
hybridization, trimmed and length-bucketed batches) and prints one JSON
line. ``--no-levers`` turns the data levers off (batches padded to
``max_len``, no buckets) to show what they are worth.

    .venv/bin/python benchmarks/worker_ours.py finetune --batches 20
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402
import numpy as onp  # noqa: E402

import d2l_nli  # noqa: E402  (sets the thread defaults before MXNet loads)

# isort: split
import mxnet as mx  # noqa: E402
from mxnet import gluon, init, npx  # noqa: E402

from d2l_nli import (  # noqa: E402
    RESERVED_TOKENS,
    BERTClassifier,
    BERTModel,
    SNLIBERTDataset,
    Vocab,
    evaluate_accuracy_gpus,
    load_data_wiki,
    read_snli,
    read_wiki,
)
from d2l_nli.fused_mlm import FusedPretrainingStep  # noqa: E402
from d2l_nli.pipeline import pretrain  # noqa: E402
from d2l_nli.training import (  # noqa: E402
    ChapterPretrainingStep,
    split_batch_multi_inputs,
    train_batch_ch13,
)

npx.set_np()  # the chapter's NumPy mode
DEVICES = [mx.cpu()]


def wiki_vocab():
    """The WikiText-2 vocabulary, built as load_data_wiki does (without the examples)."""
    paragraphs = read_wiki(os.path.join(C.DATA, 'wikitext-2'))
    return Vocab([tok for p in paragraphs for s in p for tok in s.split()], min_freq=5,
                 reserved_tokens=RESERVED_TOKENS)


def snli(which, split, n=None):
    data = read_snli(C.snli_folder(which), split=split)
    return data if n is None else tuple(col[:n] for col in data)


def new_bert(vocab):
    bert = BERTModel(len(vocab), max_len=512, **C.MODEL)
    bert.initialize(init.Xavier(), ctx=DEVICES)
    return bert


def finetune_setup(vocab, bert=None, lr=None):
    net = BERTClassifier(bert or new_bert(vocab))
    net.classifier.initialize(init.Xavier(), ctx=DEVICES)
    net.hybridize(static_alloc=True)
    trainer = gluon.Trainer(net.collect_params(), 'adam',
                            {'learning_rate': lr or C.CHAPTER['finetune_lr']})
    return net, trainer


def loader(dataset, batch_size, shuffle, a, seed=0):
    if a.no_levers:
        return dataset.loader(batch_size, shuffle=shuffle, seed=seed, trim=False)
    return dataset.loader(batch_size, shuffle=shuffle, seed=seed)


def timed_batches(step, batches, warmup, repeats, count):
    """Run ``step`` on ``warmup`` batches, then ``repeats`` timed rounds; rates per round."""
    it = iter(batches)
    widths = []

    def next_batch():
        nonlocal it
        try:
            return next(it)
        except StopIteration:
            it = iter(batches)
            return next(it)

    for _ in range(warmup):
        step(next_batch())
    npx.waitall()
    rates = []
    for _ in range(repeats):
        n, t = 0, time.perf_counter()
        for _ in range(count):
            batch = next_batch()
            widths.append(batch[0][0].shape[1] if isinstance(batch[0], tuple)
                          else batch[0].shape[1])
            n += step(batch)
        npx.waitall()
        rates.append(n / (time.perf_counter() - t))
    return rates, float(onp.mean(widths))


def classifier_step(net, trainer):
    loss = gluon.loss.SoftmaxCrossEntropyLoss()

    def step(batch):
        X, y = batch
        train_batch_ch13(net, X, y, loss, trainer, DEVICES)
        return len(y)
    return step


def task_finetune(a):
    vocab = wiki_vocab()
    train = SNLIBERTDataset(snli(a.snli, 'train'), a.max_len, vocab, verbose=False)
    net, trainer = finetune_setup(vocab)
    rates, width = timed_batches(classifier_step(net, trainer),
                                 loader(train, a.batch_size, True, a), a.warmup, a.repeats,
                                 a.batches)
    emit(impl='ours', task='finetune', rates=rates, width=width)


def task_eval(a):
    vocab = wiki_vocab()
    test = SNLIBERTDataset(snli('real', 'dev'), a.max_len, vocab, verbose=False)
    net, _ = finetune_setup(vocab)
    evaluate_accuracy_gpus(net, loader(test, a.batch_size, False, a), devices=DEVICES)
    rates = []
    for _ in range(a.repeats):
        t = time.perf_counter()
        evaluate_accuracy_gpus(net, loader(test, a.batch_size, False, a), devices=DEVICES)
        rates.append(len(test) / (time.perf_counter() - t))
    emit(impl='ours', task='eval', rates=rates, examples=len(test))


def pretrain_step(net, trainer, vocab_size, mlm):
    """One step of train_bert (d2l_nli.training) on one device; ``mlm``: fused or plain."""
    loss = gluon.loss.SoftmaxCELoss()
    learning_step = (FusedPretrainingStep(net, loss) if mlm == 'fused'
                     else ChapterPretrainingStep(net, loss, vocab_size))

    def step(batch):
        X_shards, y_shards = split_batch_multi_inputs(batch.inputs, batch.nsp_labels, DEVICES)
        learning_step(batch, X_shards, y_shards)
        trainer.step(1)
        return len(batch.nsp_labels)
    return step


def task_pretrain(a):
    d2l_nli.seed_everything(0)
    train_iter, vocab = load_data_wiki(a.batch_size, a.max_len, data_dir=C.DATA,
                                       trim=not a.no_levers)
    net = new_bert(vocab)
    net.hybridize(static_alloc=True)
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': 1e-3})
    C.reset_peak_rss()  # the training's peak, from here on
    rates, width = timed_batches(pretrain_step(net, trainer, len(vocab), a.mlm), train_iter,
                                 a.warmup, a.repeats, a.batches)
    emit(impl='ours', task='pretrain', mlm=a.mlm, rates=rates, width=width,
           hwm_pretrain_mib=C.vm_hwm_mib())


def task_wiki_load(a):
    d2l_nli.seed_everything(0)
    t = time.perf_counter()
    train_iter, vocab = load_data_wiki(a.batch_size, a.max_len, data_dir=C.DATA)
    emit(impl='ours', task='wiki_load', seconds=time.perf_counter() - t,
           examples=train_iter.num_examples, vocab=len(vocab))


def task_scale(a):
    """Preprocess ``n`` pairs of the generated full SNLI, then time ``batches`` training steps."""
    vocab = wiki_vocab()
    # Fine-tuning's memory: from reading SNLI on (the vocabulary comes with
    # the pretrained model in the chapter, so building it is not counted).
    C.reset_peak_rss()
    base = C.vm_hwm_mib()
    data = snli(a.snli, 'train', a.n)
    t = time.perf_counter()
    train = SNLIBERTDataset(data, a.max_len, vocab, verbose=False)
    prep = time.perf_counter() - t
    prep_rss = C.vm_hwm_mib()
    net, trainer = finetune_setup(vocab)
    rates, width = timed_batches(classifier_step(net, trainer),
                                 loader(train, a.batch_size, True, a), 2, 1, a.batches)
    emit(impl='ours', task='scale', n=len(train), max_len=a.max_len, prep_seconds=prep,
           epoch_seconds=len(train) / rates[0], rate=rates[0], width=width,
           num_batches=-(-len(train) // a.batch_size), rss_start_mib=base,
           hwm_after_prep_mib=prep_rss, hwm_finetune_mib=C.vm_hwm_mib())


def finetune_curve(vocab, bert, epochs, clock, batch_size, lr, max_len, a):
    """Fine-tune on the real train split; dev accuracy after each epoch (eval time excluded)."""
    train = SNLIBERTDataset(snli('real', 'train'), max_len, vocab, verbose=False)
    test = SNLIBERTDataset(snli('real', 'dev'), max_len, vocab, verbose=False)
    net, trainer = finetune_setup(vocab, bert, lr)
    step = classifier_step(net, trainer)
    train_iter = loader(train, batch_size, True, a, seed=a.seed)
    curve = []
    for epoch in range(epochs):
        for batch in train_iter:
            step(batch)
        npx.waitall()
        with clock.pause():
            acc = evaluate_accuracy_gpus(net, loader(test, 256, False, a), devices=DEVICES)
        curve.append([clock(), epoch + 1, acc])
        C.log(f'epoch {epoch + 1}: dev acc {acc:.3f} at {clock() / 60:.1f} min')
        if a.budget and clock() > a.budget:
            break
    return curve


def task_accuracy(a):
    """Fine-tune a randomly initialized BERT (chapter settings), dev accuracy per epoch."""
    d2l_nli.seed_everything(a.seed)
    clock = C.Clock()
    vocab = wiki_vocab()
    curve = finetune_curve(vocab, None, a.epochs, clock, C.CHAPTER['finetune_batch'],
                           C.CHAPTER['finetune_lr'], C.CHAPTER['finetune_len'], a)
    emit(impl='ours', task='accuracy', seed=a.seed, curve=curve)


def task_tta(a):
    """Time to accuracy with the small profile's settings, fine-tuning until ``--budget`` s."""
    profile = d2l_nli.PROFILES['small']
    clock = C.Clock()
    bert, vocab, metrics = pretrain(C.DATA, profile.model, profile.pretrain, DEVICES,
                                            seed=a.seed, progress=False)
    curve = [[clock(), 0, None]]
    f = profile.finetune
    curve += finetune_curve(vocab, bert, a.epochs, clock, f.batch_size, f.lr, f.max_len, a)
    emit(impl='ours', task='tta', seed=a.seed, steps=profile.pretrain.num_steps,
           mlm_loss=metrics['mlm_loss'], nsp_loss=metrics['nsp_loss'], curve=curve)


def task_export(a):
    """Write the SNLI pairs as the npz that peer_hf.py reads (the same token ids as ours)."""
    vocab = wiki_vocab()
    for split, path in (('train', a.out + '.train.npz'), ('dev', a.out + '.dev.npz')):
        ds = SNLIBERTDataset(snli(a.snli, split, a.n), a.max_len, vocab, verbose=False)
        tokens, segments = ds.token_ids, ds.segments
        real = onp.arange(a.max_len)[None, :] < ds.valid_lens[:, None]
        tmp = path + '.tmp.npz'
        onp.savez(tmp, flat_ids=tokens[real], labels=ds.labels, vocab_size=len(vocab),
                  offsets=onp.concatenate([[0], onp.cumsum(ds.valid_lens)]).astype(onp.int64),
                  seg_start=segments.argmax(axis=1).astype(onp.int32),
                  pad_id=vocab['<pad>'])
        os.replace(tmp, path)
    emit(impl='ours', task='export', out=a.out)


def emit(**result):
    """The JSON result line, with which LayerNorm kernel ran (d2l_nli.fast_ops)."""
    from d2l_nli import fast_ops

    C.emit(**result, layer_norm=fast_ops.status())


def main():
    parser = C.worker_parser(__doc__.split('\n\n')[0],
                             ['finetune', 'eval', 'pretrain', 'wiki_load', 'scale', 'accuracy',
                              'tta', 'export'])
    parser.add_argument('--budget', type=float, default=None,
                        help='tta: stop fine-tuning after the epoch that passes this many seconds')
    parser.add_argument('--out', default='/tmp/d2l_nli_bench')
    parser.add_argument('--mlm', choices=['fused', 'plain'], default='fused',
                        help="pretrain: the MLM output layer's loss fused (the package's "
                             "default) or through autograd (the chapter's)")
    parser.add_argument('--no-levers', action='store_true',
                        help='pad every batch to max_len and do not bucket')
    a = parser.parse_args()
    globals()['task_' + a.task](a)


if __name__ == '__main__':
    main()
