"""Peer benchmark: HuggingFace ``BertForSequenceClassification`` on our token ids.

The "strongest peer" of the chapter's MXNet BERT classifier: the same tiny
BERT configuration (2 layers, 2 heads, 128 hidden units, dropout 0.2),
randomly initialised, trained and evaluated with PyTorch on exactly the
token-id sequences the MXNet model sees. It runs in its own virtual
environment (PyTorch CPU + transformers), not the project's::

    /work/bench-hf/bin/python benchmarks/peer_hf.py --data pairs.npz --mode train
    /work/bench-hf/bin/python benchmarks/peer_hf.py --data pairs.npz --mode eval --threads 2
    /work/bench-hf/bin/python benchmarks/peer_hf.py --data train.npz --test test.npz \\
        --mode accuracy --epochs 3

Input ``.npz`` (written by the benchmark harness):

* ``flat_ids`` int32: the token ids of all pairs back to back, each pair laid
  out as ``<cls> premise <sep> hypothesis <sep>``;
* ``offsets`` int64 (n+1,): pair i is ``flat_ids[offsets[i]:offsets[i+1]]``;
* ``seg_start`` int32 (n,): position in the pair where segment 1 starts;
* ``labels`` int32 (n,): 0 entailment, 1 contradiction, 2 neutral;
* ``vocab_size`` 0-d int;
* ``pad_id`` 0-d int, optional: the ``<pad>`` id (default ``--pad-id``).

Batches are padded to their own longest pair. Stdout gets exactly one JSON
line with the result; progress and library messages go to stderr.
"""
import argparse
import json
import resource
import sys
import time

import numpy as np

REQUIRED_KEYS = ('flat_ids', 'offsets', 'seg_start', 'labels', 'vocab_size')
MAX_POSITIONS = 512
NUM_LABELS = 3


class UsageError(Exception):
    """A problem the person running the script can fix; printed without a traceback."""


class PairData:
    """Token-id pairs from one ``.npz`` file, checked, with vectorised batching."""

    def __init__(self, path, pad_id):
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = [k for k in REQUIRED_KEYS if k not in z.files]
                if missing:
                    raise UsageError(f'{path}: missing arrays {missing}; expected '
                                     f'{list(REQUIRED_KEYS)} (see --help)')
                self.flat_ids = z['flat_ids'].astype(np.int64)
                self.offsets = z['offsets'].astype(np.int64)
                self.seg_start = z['seg_start'].astype(np.int64)
                self.labels = z['labels'].astype(np.int64)
                self.vocab_size = int(z['vocab_size'])
                self.pad_id = int(z['pad_id']) if 'pad_id' in z.files else pad_id
        except (OSError, ValueError) as err:
            raise UsageError(f'{path}: cannot read it as an .npz file ({err})') from None
        self.path = path
        self._check()
        self.lengths = np.diff(self.offsets)

    def __len__(self):
        return len(self.labels)

    def _check(self):
        """Fail early, with the file name, on data the model would choke on later."""
        n, where = len(self.labels), self.path
        if n == 0:
            raise UsageError(f'{where}: no pairs (labels is empty)')
        if self.offsets.shape != (n + 1,) or self.seg_start.shape != (n,):
            raise UsageError(f'{where}: with {n} labels, offsets must have shape '
                             f'({n + 1},) and seg_start ({n},); got {self.offsets.shape} '
                             f'and {self.seg_start.shape}')
        lengths = np.diff(self.offsets)
        if self.offsets[0] != 0 or self.offsets[-1] != len(self.flat_ids) or (lengths < 1).any():
            raise UsageError(f'{where}: offsets must start at 0, increase strictly and '
                             f'end at len(flat_ids) = {len(self.flat_ids)}')
        if lengths.max() > MAX_POSITIONS:
            raise UsageError(f'{where}: a pair has {lengths.max()} tokens, more than the '
                             f'{MAX_POSITIONS} position embeddings; truncate the pairs')
        if ((self.seg_start < 1) | (self.seg_start > lengths)).any():
            raise UsageError(f'{where}: every seg_start must lie in 1..length of its pair')
        if self.flat_ids.min() < 0 or self.flat_ids.max() >= self.vocab_size:
            raise UsageError(f'{where}: token ids must lie in 0..vocab_size-1 = '
                             f'{self.vocab_size - 1}; found {self.flat_ids.min()}..'
                             f'{self.flat_ids.max()}')
        if not 0 <= self.pad_id < self.vocab_size:
            raise UsageError(f'{where}: pad id {self.pad_id} is outside the vocabulary')
        if ((self.labels < 0) | (self.labels >= NUM_LABELS)).any():
            raise UsageError(f'{where}: labels must be 0, 1 or 2')

    def batch(self, idx):
        """Tensors of the pairs ``idx``, padded to the longest of them."""
        import torch
        lengths = self.lengths[idx]
        width = int(lengths.max())
        pos = np.arange(width)
        mask = pos < lengths[:, None]
        # Positions past a pair's end read its last token, then get overwritten
        # with <pad>; this keeps the gather inside the pair without a loop.
        src = self.offsets[idx][:, None] + np.minimum(pos, lengths[:, None] - 1)
        ids = np.where(mask, self.flat_ids[src], self.pad_id)
        types = (pos >= self.seg_start[idx][:, None]) & mask
        return {'input_ids': torch.from_numpy(ids),
                'attention_mask': torch.from_numpy(mask.astype(np.int64)),
                'token_type_ids': torch.from_numpy(types.astype(np.int64)),
                'labels': torch.from_numpy(self.labels[idx])}, width


def shuffled_batches(n, batch_size, rng):
    """Endless shuffled batches of indices; each pass over the data is a new permutation."""
    while True:
        order = rng.permutation(n)
        for i in range(0, n, batch_size):
            yield order[i:i + batch_size]


def build_model(vocab_size, pad_id, seed):
    """The chapter's tiny BERT as a HuggingFace sequence classifier, random init."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=vocab_size, hidden_size=128, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=128,
                        max_position_embeddings=MAX_POSITIONS, type_vocab_size=2,
                        hidden_dropout_prob=0.2, attention_probs_dropout_prob=0.2,
                        num_labels=NUM_LABELS,
                        # The embedding's padding row must be our <pad>, not id 0
                        # (which is <unk> in the project's vocabulary and must train).
                        pad_token_id=pad_id)
    return BertForSequenceClassification(config)


def train_step(model, optimizer, batch):
    optimizer.zero_grad(set_to_none=True)
    out = model(**batch)  # labels in the batch: out.loss is the cross-entropy
    out.loss.backward()
    optimizer.step()
    return out.loss


def run_train(args, data, model):
    """Untimed warm-up steps, then ``--batches`` timed training steps."""
    import torch
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    model.train()
    batches = shuffled_batches(len(data), args.batch_size, np.random.default_rng(args.seed))
    for _ in range(args.warmup):
        train_step(model, optimizer, data.batch(next(batches))[0])
    steps = args.batches if args.batches is not None else 20
    examples, widths = 0, []
    start = time.perf_counter()
    for _ in range(steps):
        # Batch building is inside the timed region: it is part of the input pipeline.
        batch, width = data.batch(next(batches))
        loss = train_step(model, optimizer, batch)
        examples += len(batch['labels'])
        widths.append(width)
    loss = loss.detach().item()  # forces the last step to finish before the clock stops
    seconds = time.perf_counter() - start
    return {'examples': examples, 'seconds': seconds, 'mean_width': float(np.mean(widths)),
            'final_loss': loss}


def evaluate(model, data, batch_size, num_batches=None, warmup=0):
    """Accuracy over the first ``num_batches`` in-order batches (all if None), timed."""
    import torch
    model.eval()
    starts = list(range(0, len(data), batch_size))[:num_batches]

    def batch_at(s):
        return data.batch(np.arange(s, min(s + batch_size, len(data))))

    with torch.inference_mode():
        for s in starts[:warmup]:
            batch = batch_at(s)[0]
            batch.pop('labels')
            model(**batch)
        correct, examples, widths = 0, 0, []
        start = time.perf_counter()
        for s in starts:
            batch, width = batch_at(s)
            labels = batch.pop('labels')
            logits = model(**batch).logits
            correct += int((logits.argmax(dim=1) == labels).sum())
            examples += len(labels)
            widths.append(width)
        seconds = time.perf_counter() - start
    return {'examples': examples, 'seconds': seconds, 'mean_width': float(np.mean(widths)),
            'accuracy': correct / examples}


def run_accuracy(args, data, test, model):
    """Train ``--epochs`` epochs; test accuracy and wall-clock seconds after each."""
    import torch
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)
    curve = []
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = rng.permutation(len(data))
        for i in range(0, len(data), args.batch_size):
            loss = train_step(model, optimizer, data.batch(order[i:i + args.batch_size])[0])
        acc = evaluate(model, test, args.batch_size)['accuracy']
        seconds = time.perf_counter() - start
        curve.append([round(seconds, 3), epoch, acc])
        print(f'epoch {epoch}: loss {loss.detach().item():.4f}, test accuracy {acc:.4f}, '
              f'{seconds:.1f} s', file=sys.stderr)
    return {'curve': curve}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Train or evaluate HuggingFace BertForSequenceClassification (tiny '
                    'chapter configuration) on pre-tokenised pairs; prints one JSON line. '
                    'See the module docstring for the .npz format.')
    parser.add_argument('--data', required=True, help='.npz file of token-id pairs')
    parser.add_argument('--mode', choices=('train', 'eval', 'accuracy'), default='train',
                        help='train: timed training steps; eval: timed inference pass; '
                             'accuracy: train --epochs over --data, test on --test '
                             '(default: %(default)s)')
    parser.add_argument('--test', help='.npz file of test pairs (--mode accuracy only)')
    parser.add_argument('--batch-size', type=int, default=256, help='default: %(default)s')
    parser.add_argument('--batches', type=int, default=None,
                        help='timed batches (default: 20 for train, all for eval)')
    parser.add_argument('--warmup', type=int, default=3,
                        help='untimed batches before timing; in eval mode the first '
                             'batches are run once untimed (default: %(default)s)')
    parser.add_argument('--epochs', type=int, default=1,
                        help='epochs of --mode accuracy (default: %(default)s)')
    parser.add_argument('--lr', type=float, default=1e-4, help='Adam learning rate '
                                                               '(default: %(default)s)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of torch init and the numpy shuffling (default: 0)')
    parser.add_argument('--threads', type=int, default=None,
                        help="torch.set_num_threads (default: torch's own choice)")
    parser.add_argument('--pad-id', type=int, default=1,
                        help='id of <pad> when the .npz has no pad_id (default: 1, as '
                             "in the project's vocabulary)")
    args = parser.parse_args(argv)
    for name in ('batch_size', 'epochs', 'threads'):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f'--{name.replace("_", "-")} must be at least 1')
    if args.batches is not None and args.batches < 1:
        parser.error('--batches must be at least 1')
    if args.warmup < 0:
        parser.error('--warmup must not be negative')
    if args.mode == 'accuracy' and not args.test:
        parser.error('--mode accuracy needs --test FILE.npz')
    return args


def main(argv=None):
    args = parse_args(argv)
    # Only the result line may reach stdout; anything a library prints goes to stderr.
    result_out, sys.stdout = sys.stdout, sys.stderr
    try:
        import torch
        import transformers
    except ImportError as err:
        raise UsageError(f'cannot import torch/transformers ({err}); run this script '
                         'with /work/bench-hf/bin/python') from None
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    data = PairData(args.data, args.pad_id)
    test = PairData(args.test, args.pad_id) if args.mode == 'accuracy' else None
    if test is not None and test.vocab_size != data.vocab_size:
        raise UsageError(f'--test has vocab_size {test.vocab_size}, --data has '
                         f'{data.vocab_size}; both must come from the same vocabulary')
    model = build_model(data.vocab_size, data.pad_id, args.seed)

    if args.mode == 'train':
        stats = run_train(args, data, model)
    elif args.mode == 'eval':
        stats = evaluate(model, data, args.batch_size, args.batches, args.warmup)
    else:
        stats = run_accuracy(args, data, test, model)

    result = {'impl': 'hf-torch', 'mode': args.mode}
    if 'seconds' in stats:
        result['examples_per_sec'] = stats['examples'] / stats['seconds']
    result.update(stats)
    result.update({
        'batch_size': args.batch_size,
        'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        'threads': torch.get_num_threads(),
        'attn_implementation': getattr(model.config, '_attn_implementation', None),
        'torch': torch.__version__,
        'transformers': transformers.__version__,
    })
    print(json.dumps(result), file=result_out, flush=True)
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except UsageError as err:
        print(f'peer_hf.py: error: {err}', file=sys.stderr)
        sys.exit(2)
