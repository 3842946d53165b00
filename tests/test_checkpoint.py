"""Checkpoint folders: round trips across processes, clear errors, predictions."""
import inspect
import json
import subprocess
import sys

import mxnet as mx
import numpy as onp
import pytest
from mxnet import init, np

import d2l_nli as d

PROBE = '''
import sys, numpy as onp, d2l_nli as d
from mxnet import np, npx
npx.set_np()
bert, vocab = d.load_pretrained(sys.argv[1])
t = onp.load(sys.argv[2])
_, mlm, nsp = bert(np.array(t["tokens"]), np.array(t["segments"]), np.array(t["valid"]),
                   np.array(t["positions"]))
onp.savez(sys.argv[3], mlm=mlm.asnumpy(), nsp=nsp.asnumpy())
'''


@pytest.fixture(scope='module')
def pretrained(demo_root, tmp_path_factory):
    """A tiny pretrained BERT saved as a checkpoint folder."""
    train_iter, vocab = d.load_data_wiki(16, 32, data_dir=demo_root)
    mx.random.seed(0)
    bert = d.BERTModel(len(vocab), 16, 32, 2, 1, 0.1, max_len=32)
    bert.initialize(init.Xavier())
    d.train_bert(train_iter, bert, mx.gluon.loss.SoftmaxCELoss(), len(vocab), [mx.cpu()], 2)
    folder = tmp_path_factory.mktemp('ckpt') / 'bert'
    d.save_checkpoint(folder, bert, vocab)
    return folder, bert, vocab, train_iter


def test_round_trip_in_a_new_process(pretrained, tmp_path):
    folder, bert, _, train_iter = pretrained
    tokens, segments, valid, positions = [x.asnumpy() for x in next(iter(train_iter))][:4]
    onp.savez(tmp_path / 'in.npz', tokens=tokens, segments=segments, valid=valid,
              positions=positions)
    subprocess.run([sys.executable, '-c', PROBE, str(folder), str(tmp_path / 'in.npz'),
                    str(tmp_path / 'out.npz')], check=True)
    loaded = onp.load(tmp_path / 'out.npz')
    _, mlm, nsp = bert(np.array(tokens), np.array(segments), np.array(valid), np.array(positions))
    onp.testing.assert_array_equal(loaded['mlm'], mlm.asnumpy())
    onp.testing.assert_array_equal(loaded['nsp'], nsp.asnumpy())


def test_folder_layout_and_overwrite(pretrained, tmp_path):
    folder, bert, vocab, _ = pretrained
    assert sorted(p.name for p in folder.iterdir()) == ['config.json', 'model.params',
                                                        'vocab.json']
    meta = json.loads((folder / 'config.json').read_text())
    assert meta['kind'] == 'BERTModel' and meta['bert']['vocab_size'] == len(vocab)
    target = tmp_path / 'again'
    d.save_checkpoint(target, bert, vocab)
    d.save_checkpoint(target, bert, vocab)  # replacing an existing checkpoint
    assert sorted(p.name for p in tmp_path.iterdir()) == ['again']


def _copy(folder, tmp_path):
    import shutil
    return shutil.copytree(folder, tmp_path / 'copy')


def test_damaged_and_mismatched_checkpoints(pretrained, tmp_path):
    folder, _, vocab, _ = pretrained
    with pytest.raises(d.CheckpointError, match='no such checkpoint folder'):
        d.load_pretrained(tmp_path / 'nowhere')
    bad = _copy(folder, tmp_path)
    (bad / 'model.params').write_bytes((bad / 'model.params').read_bytes()[:100])
    with pytest.raises(d.CheckpointError, match='model.params: cannot load the parameters'):
        d.load_pretrained(bad)
    (bad / 'model.params').unlink()
    with pytest.raises(d.CheckpointError, match='model.params: missing'):
        d.load_pretrained(bad)
    bad = _copy(folder, tmp_path / 'x')
    data = json.loads((bad / 'vocab.json').read_text())
    data['idx_to_token'].append('brand-new-token')
    (bad / 'vocab.json').write_text(json.dumps(data))
    with pytest.raises(d.CheckpointError, match='vocab.json: .* tokens, but .*different models'):
        d.load_pretrained(bad)
    bad = _copy(folder, tmp_path / 'y')
    meta = json.loads((bad / 'config.json').read_text())
    meta['bert']['num_hiddens'] = 32
    meta['bert']['vocab_size'] = len(vocab)
    (bad / 'config.json').write_text(json.dumps(meta))
    with pytest.raises(d.CheckpointError, match='cannot load the parameters'):
        d.load_pretrained(bad)
    (bad / 'config.json').write_text('{not json')
    with pytest.raises(d.CheckpointError, match='config.json: damaged'):
        d.load_pretrained(bad)
    with pytest.raises(d.CheckpointError, match='holds a BERTModel, not a BERTClassifier'):
        d.load_classifier(folder)


def test_classifier_round_trip_and_predictions(pretrained, tmp_path):
    folder, _, _, _ = pretrained
    bert, vocab = d.load_pretrained(folder)
    net = d.BERTClassifier(bert)
    net.classifier.initialize(init.Xavier())
    d.save_checkpoint(tmp_path / 'clf', net, vocab)
    loaded, loaded_vocab = d.load_classifier(tmp_path / 'clf')
    with pytest.raises(d.CheckpointError, match='holds a BERTClassifier, not a BERTModel'):
        d.load_pretrained(tmp_path / 'clf')
    premise, hypothesis = 'A man plays guitar in the park.', 'A person plays music.'
    assert d.predict_nli(net, vocab, premise, hypothesis, 32) == \
        d.predict_nli(loaded, loaded_vocab, premise, hypothesis, 32)
    label, probs = d.predict_nli(loaded, loaded_vocab, 'Ein Mann spielt Gitarre — café!',
                                 'word ' * 500, 32)
    assert label in d.LABEL_NAMES and abs(sum(probs.values()) - 1) < 1e-5
    with pytest.raises(ValueError, match='premise is empty'):
        d.predict_nli(loaded, loaded_vocab, '  ', 'x')
    with pytest.raises(ValueError, match='exceeds the 32 positions'):
        d.predict_nli(loaded, loaded_vocab, 'a', 'b', max_len=64)
    with pytest.raises(ValueError, match='max_len=2 is too small for a sentence pair'):
        d.predict_nli(loaded, loaded_vocab, 'a', 'b', max_len=2)


def test_a_classifier_class_defined_in_a_notebook_can_be_saved(tmp_path):
    # A notebook defines its own BERTClassifier class (same code, new class).
    namespace = {}
    source = inspect.getsource(d.classifier)
    exec(compile(source.replace('from .', 'from d2l_nli.'), 'notebook', 'exec'), namespace)
    assert namespace['BERTClassifier'] is not d.BERTClassifier
    bert = d.BERTModel(50, 16, 32, 2, 1, 0.0)
    bert.initialize()
    net = namespace['BERTClassifier'](bert)
    net.classifier.initialize()
    vocab = d.Vocab([[f'w{i}' for i in range(45)]],
                    reserved_tokens=['<pad>', '<mask>', '<cls>', '<sep>'])
    assert len(vocab) == 50
    folder = d.save_checkpoint(tmp_path / 'clf', net, vocab)
    loaded, _ = d.load_classifier(folder)
    assert isinstance(loaded, d.BERTClassifier)


def test_atomic_directory_replaces_only_when_asked_and_never_half(tmp_path):
    from d2l_nli.machinery.files import atomic_directory

    target = tmp_path / 'model'
    with atomic_directory(target) as tmp:
        (tmp / 'a.txt').write_text('first')
    with pytest.raises(FileExistsError, match='already exists'):
        with atomic_directory(target):
            pass
    with pytest.raises(RuntimeError):  # a failure while writing: the old folder stays
        with atomic_directory(target, replace=True) as tmp:
            (tmp / 'a.txt').write_text('half')
            raise RuntimeError('interrupted')
    assert (target / 'a.txt').read_text() == 'first'
    with atomic_directory(target, replace=True) as tmp:
        (tmp / 'b.txt').write_text('second')
    assert [p.name for p in target.iterdir()] == ['b.txt']
    assert [p.name for p in tmp_path.iterdir()] == ['model']  # no temporary folder left
