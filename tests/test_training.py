"""Training loops: data parallel on two CPU devices equals one device; tiny runs work."""
import warnings

import mxnet as mx
import numpy as onp
import pytest
from mxnet import gluon, init, np

import d2l_nli as d


def _params(net, device):
    # Structural names ("encoder.blks.0..."), the same in two separately built nets.
    return {name: p.data(device).asnumpy()
            for name, p in net._collect_params_with_prefix().items()}


def _pretrain(demo_root, devices, steps=3):
    train_iter, vocab = d.load_data_wiki(24, 40, data_dir=demo_root, seed=0)
    mx.random.seed(0)
    bert = d.BERTModel(len(vocab), 16, 32, 2, 1, 0.0, max_len=40)
    bert.initialize(init.Xavier(), ctx=devices)
    bert.hybridize()
    metrics = d.train_bert(train_iter, bert, gluon.loss.SoftmaxCELoss(), len(vocab), devices,
                           steps, lr=1e-2)
    return bert, vocab, metrics


def test_two_devices_equal_one_device_in_pretraining(demo_root, capsys):
    one, _, m1 = _pretrain(demo_root, [mx.cpu(0)])
    two, _, m2 = _pretrain(demo_root, [mx.cpu(0), mx.cpu(1)])
    p1, p2, p2b = _params(one, mx.cpu(0)), _params(two, mx.cpu(0)), _params(two, mx.cpu(1))
    for name in p1:
        onp.testing.assert_allclose(p2[name], p1[name], atol=1e-5, err_msg=name)
        onp.testing.assert_array_equal(p2[name], p2b[name], err_msg=name)  # replicas agree
    assert abs(m1['mlm_loss'] - m2['mlm_loss']) < 1e-4
    out = capsys.readouterr().out
    assert 'sentence pairs/sec on [cpu(0), cpu(1)]' in out and 'MLM loss ' in out
    assert m2['devices'] == ['cpu(0)', 'cpu(1)'] and m2['steps'] == 3


def _finetune(demo_root, bert, vocab, devices, epochs=1, batch_size=64):
    data_dir = demo_root / 'snli_1.0'
    train = d.SNLIBERTDataset(d.read_snli(data_dir, True), 40, vocab, verbose=False)
    test = d.SNLIBERTDataset(d.read_snli(data_dir, False), 40, vocab, verbose=False)
    mx.random.seed(1)
    net = d.BERTClassifier(bert)
    net.classifier.initialize(init.Xavier(), ctx=devices)
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': 1e-3})
    metrics = d.train_ch13(net, train.loader(batch_size, shuffle=True, seed=0),
                           test.loader(batch_size), gluon.loss.SoftmaxCrossEntropyLoss(),
                           trainer, epochs, devices)
    return net, metrics


def test_two_devices_equal_one_device_in_fine_tuning(demo_root):
    bert1, vocab, _ = _pretrain(demo_root, [mx.cpu(0)], steps=1)
    bert2, _, _ = _pretrain(demo_root, [mx.cpu(0), mx.cpu(1)], steps=1)
    net1, m1 = _finetune(demo_root, bert1, vocab, [mx.cpu(0)])
    net2, m2 = _finetune(demo_root, bert2, vocab, [mx.cpu(0), mx.cpu(1)])
    p1, p2, p2b = _params(net1, mx.cpu(0)), _params(net2, mx.cpu(0)), _params(net2, mx.cpu(1))
    for name in p1:
        onp.testing.assert_allclose(p2[name], p1[name], atol=1e-5, err_msg=name)
        onp.testing.assert_array_equal(p2[name], p2b[name], err_msg=name)
    assert abs(m1['train_loss'] - m2['train_loss']) < 1e-4
    assert m1['test_acc'] == m2['test_acc']


def test_fine_tuning_trains_only_used_parameters(demo_root, capsys):
    """No stale gradients: every parameter the trainer holds gets one."""
    bert, vocab, _ = _pretrain(demo_root, [mx.cpu(0)], steps=1)
    net = d.BERTClassifier(bert)
    names = set(net._collect_params_with_prefix())
    assert not [n for n in names if 'mlm' in n or 'nsp' in n or 'hidden' in n]
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # a stale-gradient warning would fail here
        # Fewer than 5 batches per epoch: the book divided by zero here.
        _, metrics = _finetune(demo_root, bert, vocab, [mx.cpu(0)], epochs=2, batch_size=100)
    out = capsys.readouterr().out
    assert 'loss ' in out and 'train acc ' in out and 'test acc ' in out
    assert 'examples/sec on [cpu(0)]' in out
    assert 0 <= metrics['test_acc'] <= 1 and metrics['epochs'] == 2


def test_split_batch_multi_inputs_uneven_and_small_batches():
    X = (np.arange(10).reshape(5, 2), np.arange(5))
    y = np.arange(5)
    X_shards, y_shards = d.split_batch_multi_inputs(X, y, [mx.cpu(0), mx.cpu(1)])
    assert [len(s) for s in y_shards] == [2, 3] or [len(s) for s in y_shards] == [3, 2]
    assert len(X_shards) == 2 and len(X_shards[0]) == 2
    assert onp.concatenate([s.asnumpy() for s in y_shards]).tolist() == [0, 1, 2, 3, 4]
    X_shards, y_shards = d.split_batch_multi_inputs((X[0][:1], X[1][:1]), y[:1],
                                                    [mx.cpu(0), mx.cpu(1)])
    assert len(y_shards) == 1 and len(X_shards) == 1


def test_both_loops_call_progress_with_the_step_number(demo_root):
    train_iter, vocab = d.load_data_wiki(24, 40, data_dir=demo_root, seed=0)
    bert = d.BERTModel(len(vocab), 16, 32, 2, 1, 0.0, max_len=40)
    bert.initialize(init.Xavier())
    seen = []
    d.train_bert(train_iter, bert, gluon.loss.SoftmaxCELoss(), len(vocab), [mx.cpu()], 3,
                 progress=seen.append)
    assert seen == [1, 2, 3]
    data_dir = demo_root / 'snli_1.0'
    train = d.SNLIBERTDataset(d.read_snli(data_dir, True), 40, vocab, verbose=False)
    net = d.BERTClassifier(bert)
    net.classifier.initialize(init.Xavier())
    trainer = gluon.Trainer(net.collect_params(), 'adam', {'learning_rate': 1e-3})
    train_iter, seen = train.loader(64, shuffle=True), []
    d.train_ch13(net, train_iter, train.loader(64), gluon.loss.SoftmaxCrossEntropyLoss(),
                 trainer, 2, [mx.cpu()], progress=seen.append)
    assert seen == list(range(1, 2 * len(train_iter) + 1))


def test_empty_iterators_are_refused(demo_root):
    bert, vocab, _ = _pretrain(demo_root, [mx.cpu(0)], steps=1)
    empty = d.ArrayLoader([onp.zeros((0, 4), onp.int32)] * 7, 4)
    with pytest.raises(ValueError, match='no batch'):
        d.train_bert(empty, bert, gluon.loss.SoftmaxCELoss(), len(vocab), [mx.cpu()], 2)


def test_held_out_bert_losses_match_a_direct_computation(demo_root):
    train_iter, vocab = d.load_data_wiki(8, 48, data_dir=demo_root)
    valid_iter, same_vocab = d.load_data_wiki(8, 48, data_dir=demo_root, vocab=vocab,
                                              file_name='wiki.valid.tokens', shuffle=False)
    assert same_vocab is vocab
    net = d.BERTModel(len(vocab), 16, 32, 2, 1, 0.0)
    net.initialize(init.Xavier(), ctx=[mx.cpu(0), mx.cpu(1)])
    one = d.evaluate_bert_losses(net, valid_iter, len(vocab), [mx.cpu()])
    two = d.evaluate_bert_losses(net, valid_iter, len(vocab), [mx.cpu(0), mx.cpu(1)])
    assert one['mlm_loss'] == pytest.approx(two['mlm_loss'], rel=1e-5)
    assert one['nsp_loss'] == pytest.approx(two['nsp_loss'], rel=1e-5)
    # Direct: mean over real predictions of -log softmax at the label.
    tokens, segments, lens, positions, weights, labels, nsp = (onp.asarray(a) for a in
                                                               valid_iter.arrays)
    _, mlm_hat, nsp_hat = net(np.array(tokens), np.array(segments), np.array(lens),
                              np.array(positions))
    logp = mlm_hat.asnumpy() - onp.log(onp.exp(mlm_hat.asnumpy()).sum(-1, keepdims=True))
    picked = onp.take_along_axis(logp, labels[..., None], -1)[..., 0]
    assert one['mlm_loss'] == pytest.approx(-(picked * weights).sum() / weights.sum(), rel=1e-4)
    nsp_logp = nsp_hat.asnumpy() - onp.log(onp.exp(nsp_hat.asnumpy()).sum(-1, keepdims=True))
    assert one['nsp_loss'] == pytest.approx(-nsp_logp[onp.arange(len(nsp)), nsp].mean(),
                                            rel=1e-4)
