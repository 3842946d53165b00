"""The reference: the book's code (``d2l==1.0.3``, MXNet) as a benchmark worker.

Runs in its own environment (``benchmarks/setup_envs.sh`` makes it), never
imports ``d2l_nli``, and prints one JSON line. The pieces the ``d2l``
package lacks are rewritten here from the chapter's description, keeping
its behaviour: ``SNLIBERTDataset`` (a ``multiprocessing.Pool(4)``, Python
lists, everything padded to ``max_len``), ``BERTClassifier`` (an
``nn.Block``) and the pretraining loop ``train_bert``; batches come from
``gluon.data.DataLoader`` with ``d2l.get_dataloader_workers()`` workers, as
in the chapter. Only the data location is patched (no download) and the
plots are left out (d2l draws them outside its timers).

    benchmarks/.envs/ref/bin/python benchmarks/worker_ref.py finetune --batches 20
"""
import multiprocessing
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402
import mxnet as mx  # noqa: E402
import numpy as onp  # noqa: E402
from d2l import mxnet as d2l  # noqa: E402
from mxnet import autograd, gluon, init, np, npx  # noqa: E402
from mxnet.gluon import nn  # noqa: E402

npx.set_np()
DEVICES = [mx.cpu()]


def wiki_dir():
    return os.path.join(C.DATA, 'wikitext-2')


def patch_download():
    """d2l would download (the old WikiText-2 address answers 403): point it at the data."""
    d2l.download_extract = lambda name, folder=None: wiki_dir()


def seed(s):
    random.seed(s)
    onp.random.seed(s)
    mx.random.seed(s)


def wiki_vocab():
    """The WikiText-2 vocabulary as ``_WikiTextDataset`` builds it (without the examples)."""
    paragraphs = d2l._read_wiki(wiki_dir())
    sentences = [s for p in paragraphs for s in d2l.tokenize(p, token='word')]
    return d2l.Vocab(sentences, min_freq=5, reserved_tokens=['<pad>', '<mask>', '<cls>', '<sep>'])


def read_snli(which, split):
    """d2l.read_snli on the real or generated folder; split 'train' or 'dev'."""
    folder = C.snli_folder(which)
    if split == 'train':
        return d2l.read_snli(folder, True)
    # d2l reads snli_1.0_test.txt for is_train=False: show it the dev split.
    tmp = tempfile.mkdtemp()
    os.symlink(os.path.join(folder, 'snli_1.0_dev.txt'), os.path.join(tmp, 'snli_1.0_test.txt'))
    return d2l.read_snli(tmp, False)


# ---- the chapter's code, rewritten ------------------------------------------------

class SNLIBERTDataset(gluon.data.Dataset):
    """The chapter's dataset: a Pool of 4 processes, lists padded to max_len."""

    def __init__(self, dataset, max_len, vocab=None):
        all_tokens = [[p, h] for p, h in zip(d2l.tokenize([s.lower() for s in dataset[0]]),
                                             d2l.tokenize([s.lower() for s in dataset[1]]))]
        self.labels = np.array(dataset[2])
        self.vocab, self.max_len = vocab, max_len
        self.all_token_ids, self.all_segments, self.valid_lens = self._preprocess(all_tokens)
        C.log('read ' + str(len(self.all_token_ids)) + ' examples')

    def _preprocess(self, all_tokens):
        pool = multiprocessing.Pool(4)  # as the chapter: 4 workers, never closed
        out = pool.map(self._mp_worker, all_tokens)
        token_ids = [t for t, s, v in out]
        segments = [s for t, s, v in out]
        valid_lens = [v for t, s, v in out]
        return (np.array(token_ids, dtype='int32'), np.array(segments, dtype='int32'),
                np.array(valid_lens))

    def _mp_worker(self, pair):
        p_tokens, h_tokens = pair
        while len(p_tokens) + len(h_tokens) > self.max_len - 3:
            if len(p_tokens) > len(h_tokens):
                p_tokens.pop()
            else:
                h_tokens.pop()
        tokens, segments = d2l.get_tokens_and_segments(p_tokens, h_tokens)
        token_ids = self.vocab[tokens] + [self.vocab['<pad>']] * (self.max_len - len(tokens))
        segments = segments + [0] * (self.max_len - len(segments))
        return token_ids, segments, len(tokens)

    def __getitem__(self, idx):
        return (self.all_token_ids[idx], self.all_segments[idx], self.valid_lens[idx]), \
            self.labels[idx]

    def __len__(self):
        return len(self.all_token_ids)


class BERTClassifier(nn.Block):
    def __init__(self, bert):
        super().__init__()
        self.bert = bert
        self.classifier = nn.Sequential()
        self.classifier.add(nn.Dense(256, activation='relu'))
        self.classifier.add(nn.Dense(3))

    def forward(self, inputs):
        tokens_X, segments_X, valid_lens_x = inputs
        encoded_X, _, _ = self.bert(tokens_X, segments_X, valid_lens_x)
        return self.classifier(encoded_X[:, 0, :])


def new_bert(vocab, max_len=512):
    m = C.MODEL
    bert = d2l.BERTModel(len(vocab), num_hiddens=m['num_hiddens'],
                         ffn_num_hiddens=m['ffn_num_hiddens'], num_heads=m['num_heads'],
                         num_blks=m['num_layers'], dropout=m['dropout'], max_len=max_len)
    bert.initialize(init.Xavier(), ctx=DEVICES)
    # Run the MLM head once so its deferred shapes exist (the reference's
    # random-init fine-tuning otherwise fails in trainer.step).
    x = np.ones((2, 8), dtype='int32')
    bert(x, np.zeros((2, 8), dtype='int32'), np.array([8, 8]), np.ones((2, 1), dtype='int32'))
    return bert


def train_bert_steps(train_iter, net, loss, vocab_size, trainer, num_steps, on_step=None):
    """The chapter's pretraining loop for ``num_steps`` steps; returns the last losses."""
    step, last = 0, (0.0, 0.0)
    while step < num_steps:
        for (tokens_X, segments_X, valid_lens_x, pred_positions_X, mlm_weights_X,
             mlm_Y, nsp_y) in train_iter:
            shards = [gluon.utils.split_and_load(x, DEVICES, even_split=False) for x in
                      (tokens_X, segments_X, valid_lens_x, pred_positions_X, mlm_weights_X,
                       mlm_Y, nsp_y)]
            with autograd.record():
                mlm_ls, nsp_ls, ls = d2l._get_batch_loss_bert(net, loss, vocab_size, *shards)
            for shard_loss in ls:
                shard_loss.backward()
            trainer.step(1)
            last = (float(sum(mlm_ls)), float(sum(nsp_ls)))
            step += 1
            if on_step:
                on_step(step)
            if step == num_steps:
                break
    return last


def snli_loader(dataset, batch_size, shuffle):
    return gluon.data.DataLoader(dataset, batch_size, shuffle=shuffle,
                                 num_workers=d2l.get_dataloader_workers())


def finetune_setup(vocab, bert=None, lr=None):
    net = BERTClassifier(bert or new_bert(vocab))
    net.classifier.initialize(init.Xavier(), ctx=DEVICES)
    trainer = gluon.Trainer(net.collect_params(), 'adam',
                            {'learning_rate': lr or C.CHAPTER['finetune_lr']})
    return net, trainer


# ---- tasks ------------------------------------------------------------------------

def classifier_step(net, trainer):
    """One d2l.train_batch_ch13 step on a ((tokens, segments, valid_lens), labels) batch."""
    loss = gluon.loss.SoftmaxCrossEntropyLoss()

    def step(batch):
        X, y = batch
        d2l.train_batch_ch13(net, X, y, loss, trainer, DEVICES, d2l.split_batch_multi_inputs)
        return len(y)
    return step


def timed_batches(step, batches, warmup, repeats, count):
    """Run ``step`` on ``warmup`` batches, then ``repeats`` timed rounds; rates per round."""
    it = iter(batches())
    for _ in range(warmup):
        step(next(it))
    rates = []
    for _ in range(repeats):
        n, t = 0, time.perf_counter()
        for _ in range(count):
            try:
                batch = next(it)
            except StopIteration:
                it = iter(batches())
                batch = next(it)
            n += step(batch)
        npx.waitall()
        rates.append(n / (time.perf_counter() - t))
    return rates


def task_finetune(a):
    vocab = wiki_vocab()
    train = SNLIBERTDataset(read_snli(a.snli, 'train'), a.max_len, vocab)
    net, trainer = finetune_setup(vocab)
    step = classifier_step(net, trainer)
    rates = timed_batches(step, lambda: snli_loader(train, a.batch_size, True), a.warmup,
                          a.repeats, a.batches)
    C.emit(impl='reference', task='finetune', rates=rates, width=a.max_len)


def task_eval(a):
    vocab = wiki_vocab()
    test = SNLIBERTDataset(read_snli('real', 'dev'), a.max_len, vocab)
    net, _ = finetune_setup(vocab)
    rates = []
    d2l.evaluate_accuracy_gpus(net, snli_loader(test, a.batch_size, False),
                               d2l.split_batch_multi_inputs)  # warm-up pass
    for _ in range(a.repeats):
        t = time.perf_counter()
        d2l.evaluate_accuracy_gpus(net, snli_loader(test, a.batch_size, False),
                                   d2l.split_batch_multi_inputs)
        rates.append(len(test) / (time.perf_counter() - t))
    C.emit(impl='reference', task='eval', rates=rates, examples=len(test))


def task_pretrain(a):
    patch_download()
    seed(0)
    train_iter, vocab = d2l.load_data_wiki(a.batch_size, a.max_len)
    net = new_bert(vocab)
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': 1e-3})
    loss = gluon.loss.SoftmaxCELoss()
    rates = []
    train_bert_steps(train_iter, net, loss, len(vocab), trainer, a.warmup)
    for _ in range(a.repeats):
        t = time.perf_counter()
        train_bert_steps(train_iter, net, loss, len(vocab), trainer, a.batches)
        npx.waitall()
        rates.append(a.batches * a.batch_size / (time.perf_counter() - t))
    C.emit(impl='reference', task='pretrain', rates=rates)


def task_wiki_load(a):
    patch_download()
    seed(0)
    t = time.perf_counter()
    train_iter, vocab = d2l.load_data_wiki(a.batch_size, a.max_len)
    seconds = time.perf_counter() - t
    C.emit(impl='reference', task='wiki_load', seconds=seconds,
           examples=len(train_iter._dataset), vocab=len(vocab))


def task_scale(a):
    """Preprocess ``n`` pairs of the generated full SNLI, then time ``batches`` training steps."""
    vocab = wiki_vocab()
    # Fine-tuning's memory: from reading SNLI on (the vocabulary comes with
    # the pretrained model in the chapter, so building it is not counted).
    C.reset_peak_rss()
    base = C.vm_hwm_mib()
    data = read_snli(a.snli, 'train')
    data = tuple(col[:a.n] for col in data)
    t = time.perf_counter()
    train = SNLIBERTDataset(data, a.max_len, vocab)
    prep = time.perf_counter() - t
    prep_rss = C.vm_hwm_mib()
    net, trainer = finetune_setup(vocab)
    step = classifier_step(net, trainer)
    rates = timed_batches(step, lambda: snli_loader(train, a.batch_size, True), 2, 1,
                          a.batches)
    num_batches = -(-len(train) // a.batch_size)
    C.emit(impl='reference', task='scale', n=len(train), max_len=a.max_len, prep_seconds=prep,
           epoch_seconds=len(train) / rates[0], rate=rates[0], num_batches=num_batches,
           rss_start_mib=base, hwm_after_prep_mib=prep_rss,
           hwm_finetune_mib=C.vm_hwm_mib(),
           pool_peak_rss_mib=C.children_peak_rss_mib())


def finetune_curve(vocab, bert, epochs, clock, batch_size, lr):
    """Fine-tune on the real train split as train_ch13 does; dev accuracy after each epoch."""
    train = SNLIBERTDataset(read_snli('real', 'train'), C.CHAPTER['finetune_len'], vocab)
    test = SNLIBERTDataset(read_snli('real', 'dev'), C.CHAPTER['finetune_len'], vocab)
    net, trainer = finetune_setup(vocab, bert, lr)
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    curve = []
    for epoch in range(epochs):
        for X, y in snli_loader(train, batch_size, True):
            d2l.train_batch_ch13(net, X, y, loss, trainer, DEVICES,
                                 d2l.split_batch_multi_inputs)
        npx.waitall()
        with clock.pause():  # evaluation is measurement, not training time
            acc = d2l.evaluate_accuracy_gpus(net, snli_loader(test, batch_size, False),
                                             d2l.split_batch_multi_inputs)
        curve.append([clock(), epoch + 1, acc])
        C.log(f'epoch {epoch + 1}: dev acc {acc:.3f} at {clock() / 60:.1f} min')
    return curve


def task_accuracy(a):
    """Fine-tune a randomly initialized BERT (chapter settings), dev accuracy per epoch."""
    seed(a.seed)
    clock = C.Clock()
    vocab = wiki_vocab()
    curve = finetune_curve(vocab, None, a.epochs, clock, C.CHAPTER['finetune_batch'],
                           C.CHAPTER['finetune_lr'])
    C.emit(impl='reference', task='accuracy', seed=a.seed, curve=curve)


def task_tta(a):
    """Time to accuracy: pretrain ``steps`` steps, fine-tune ``epochs`` epochs, all timed."""
    patch_download()
    seed(a.seed)
    clock = C.Clock()
    train_iter, vocab = d2l.load_data_wiki(C.CHAPTER['pretrain_batch'],
                                           C.CHAPTER['pretrain_len'])
    bert = new_bert(vocab)
    trainer = gluon.Trainer(bert.collect_params(), 'adam',
                            {'learning_rate': C.CHAPTER['pretrain_lr']})
    mlm, nsp = train_bert_steps(train_iter, bert, gluon.loss.SoftmaxCELoss(), len(vocab),
                                trainer, a.steps,
                                on_step=lambda s: s % 50 or C.log(f'step {s}, {clock():.0f} s'))
    curve = [[clock(), 0, None]]
    curve += finetune_curve(vocab, bert, a.epochs, clock, C.CHAPTER['finetune_batch'],
                            C.CHAPTER['finetune_lr'])
    C.emit(impl='reference', task='tta', seed=a.seed, steps=a.steps, mlm_loss=mlm,
           nsp_loss=nsp, curve=curve)


def main():
    parser = C.worker_parser(__doc__.split('\n\n')[0],
                             ['finetune', 'eval', 'pretrain', 'wiki_load', 'scale', 'accuracy',
                              'tta'])
    parser.add_argument('--steps', type=int, default=300)
    a = parser.parse_args()
    globals()['task_' + a.task](a)


if __name__ == '__main__':
    main()
