"""Notebook profiles, the data they pick, and the pretraining extras they use."""
import dataclasses
import math
import socket
import time

import numpy as onp
import pytest

import d2l_nli
from d2l_nli.machinery import notebook_setup


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(notebook_setup, '_usable_gpu_count', lambda: 0)


def test_profile_comes_from_the_environment(monkeypatch, no_gpu):
    monkeypatch.setenv('D2L_NLI_PROFILE', 'full')
    profile = d2l_nli.select_profile()
    assert profile.name == 'full' and 'D2L_NLI_PROFILE=full' in profile.reason
    assert (profile.pretrain.batch_size, profile.pretrain.max_len,
            profile.pretrain.num_steps) == (256, 128, 4000)
    assert (profile.finetune.batch_size, profile.finetune.num_epochs,
            profile.finetune.train_size) == (256, 5, None)


def test_unset_profile_follows_the_hardware(monkeypatch, no_gpu):
    monkeypatch.delenv('D2L_NLI_PROFILE', raising=False)
    profile = d2l_nli.select_profile()
    assert profile.name == 'small' and 'no usable GPU' in profile.reason
    assert 'profile: small' in profile.describe()
    monkeypatch.setattr(notebook_setup, '_usable_gpu_count', lambda: 2)
    profile = d2l_nli.select_profile()
    assert profile.name == 'full' and '2 GPUs' in profile.reason


def test_unknown_profile_is_a_clear_error(monkeypatch):
    monkeypatch.setenv('D2L_NLI_PROFILE', 'huge')
    with pytest.raises(d2l_nli.D2LNLIError, match="'huge'.*is unknown.*small or full"):
        d2l_nli.select_profile()
    monkeypatch.setenv('D2L_NLI_PROFILE', 'tiny')  # in the registry, for the tests only
    with pytest.raises(d2l_nli.D2LNLIError, match="'tiny'.*not a notebook profile"):
        d2l_nli.select_profile()


def test_real_data_in_the_data_folder_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv('D2L_NLI_OFFLINE', '1')
    d2l_nli.write_demo_corpus(tmp_path, 'tiny')  # the official layout, as if extracted
    source = d2l_nli.find_data(d2l_nli.PROFILES['full'], tmp_path)
    assert source.kind == 'real' and source.root == tmp_path
    assert source.test_split == 'test' and source.snli_dir == tmp_path / 'snli_1.0'
    (tmp_path / 'snli_1.0' / 'snli_1.0_test.txt').unlink()
    (tmp_path / 'snli_1.0' / 'snli_1.0_test.jsonl').unlink()
    source = d2l_nli.find_data(d2l_nli.PROFILES['small'], tmp_path)
    assert source.test_split == 'dev' and 'dev split stands in' in str(source)


def test_a_test_split_only_in_jsonl_falls_back_to_dev(tmp_path):
    # The notebooks read the .txt files: a .jsonl test file alone is not enough.
    d2l_nli.write_demo_corpus(tmp_path, 'tiny')
    (tmp_path / 'snli_1.0' / 'snli_1.0_test.txt').unlink()
    source = d2l_nli.find_data(d2l_nli.PROFILES['small'], tmp_path)
    assert source.kind == 'real' and source.test_split == 'dev'


def test_archives_downloaded_when_missing_are_used(tmp_path, monkeypatch):
    from d2l_nli.machinery import hub, notebook_setup

    monkeypatch.delenv('D2L_NLI_OFFLINE', raising=False)
    monkeypatch.setattr(notebook_setup, '_reachable', lambda name, timeout: True)
    fetched = []

    def fake_download_extract(name, data_dir=None):
        fetched.append(name)
        d2l_nli.write_demo_corpus(data_dir, 'tiny')  # the official layout, as if extracted
    monkeypatch.setattr(hub, 'download_extract', fake_download_extract)
    source = d2l_nli.find_data(d2l_nli.PROFILES['small'], tmp_path)
    assert fetched == ['wikitext-2', 'SNLI']  # each missing archive, once
    assert source.kind == 'real' and source.test_split == 'test'
    assert str(source) == f'data: the real WikiText-2 and SNLI, downloaded to {tmp_path}'


def test_offline_small_profile_falls_back_to_the_demo_corpus(tmp_path, monkeypatch):
    monkeypatch.setenv('D2L_NLI_OFFLINE', '1')
    source = d2l_nli.find_data(d2l_nli.PROFILES['small'], tmp_path)
    assert source.kind == 'demo' and source.root.parent == tmp_path
    assert 'DEMO corpus' in source.message and 'D2L_NLI_OFFLINE' in source.message
    assert (source.wiki_dir / 'wiki.train.tokens').is_file()
    assert len(d2l_nli.read_snli(source.snli_dir, split=source.test_split)[2]) > 0


def test_full_profile_without_data_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv('D2L_NLI_OFFLINE', '1')
    with pytest.raises(d2l_nli.D2LNLIError, match='What to do.*D2L_NLI_DATA'):
        d2l_nli.find_data(d2l_nli.PROFILES['full'], tmp_path)
    assert not any(tmp_path.iterdir())  # nothing written


def test_unreachable_servers_fall_back_quickly(tmp_path, monkeypatch):
    monkeypatch.delenv('D2L_NLI_OFFLINE', raising=False)
    monkeypatch.delenv('D2L_NLI_MIRROR', raising=False)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    for name, archive in list(d2l_nli.DATA_HUB.items()):
        monkeypatch.setitem(d2l_nli.DATA_HUB, name, d2l_nli.Archive(
            archive.file_name, archive.sha1, (f'http://127.0.0.1:{port}/x.zip',),
            archive.folder, archive.markers))
    start = time.perf_counter()
    source = d2l_nli.find_data(d2l_nli.PROFILES['small'], tmp_path)
    assert time.perf_counter() - start < 30  # (generating the corpus included)
    assert source.kind == 'demo' and 'cannot be reached' in source.message


def test_mlm_unigram_entropy_and_bias_init(demo_root):
    train_iter, vocab = d2l_nli.load_data_wiki(16, 48, data_dir=demo_root)
    log_probs, entropy = d2l_nli.mlm_unigram(train_iter, len(vocab))
    probs = onp.exp(log_probs.astype(onp.float64))
    assert log_probs.shape == (len(vocab),) and abs(probs.sum() - 1) < 1e-4
    assert probs.min() > 0  # add-one smoothing: no word is impossible
    assert 0 < entropy < math.log(len(vocab))
    labels = train_iter.arrays.mlm_labels[train_iter.arrays.mlm_weights > 0]
    freqs = onp.bincount(labels) / len(labels)
    freqs = freqs[freqs > 0]
    assert entropy == pytest.approx(-(freqs * onp.log(freqs)).sum(), rel=1e-6)
    # The smoothed frequencies cost a little more on the same targets.
    assert entropy < -log_probs[labels].mean() < entropy + 0.5
    bert = d2l_nli.BERTModel(len(vocab), 16, 32, 2, 1, 0.0)
    bert.initialize()
    bert.init_mlm_bias(log_probs)
    assert onp.allclose(bert.mlm.mlp[-1].bias.data().asnumpy(), log_probs)
    with pytest.raises(ValueError, match='shape'):
        bert.init_mlm_bias(log_probs[:-1])


def test_pretraining_trainer_warms_up_then_decays():
    from mxnet import gluon
    net = gluon.nn.Dense(2, in_units=2)
    net.initialize()
    schedule = d2l_nli.pretraining_trainer(net.collect_params(), 1e-2, 100, 10) \
        ._optimizer.lr_scheduler
    assert schedule(0) == pytest.approx(0.0)
    assert schedule(5) == pytest.approx(5e-3)
    assert schedule(10) == pytest.approx(1e-2)
    assert schedule(100) == pytest.approx(1e-3)
    assert d2l_nli.pretraining_trainer(net.collect_params(), 1e-3, 100).learning_rate == 1e-3
    with pytest.raises(ValueError, match='warmup_steps'):
        d2l_nli.pretraining_trainer(net.collect_params(), 1e-3, 10, 10)


def test_load_or_pretrain_pretrains_once_then_loads(demo_root, tmp_path):
    import mxnet as mx
    tiny = d2l_nli.PROFILES['tiny']
    folder = tmp_path / 'bert'
    bert, vocab = d2l_nli.load_or_pretrain(folder, demo_root, tiny, [mx.cpu()])
    assert (folder / 'config.json').is_file()
    again, vocab2 = d2l_nli.load_or_pretrain(folder, demo_root, tiny, [mx.cpu()])
    assert vocab2.idx_to_token == vocab.idx_to_token
    w1 = bert.encoder.token_embedding.weight.data().asnumpy()
    w2 = again.encoder.token_embedding.weight.data().asnumpy()
    assert onp.array_equal(w1, w2)


def test_load_or_finetune_finetunes_once_then_loads_and_predicts_in_dataset_order(
        demo_root, tmp_path):
    import mxnet as mx
    tiny = d2l_nli.PROFILES['tiny']
    bert, vocab = d2l_nli.load_or_pretrain(tmp_path / 'bert', demo_root, tiny, [mx.cpu()])
    folder = tmp_path / 'classifier'
    net, _ = d2l_nli.load_or_finetune(folder, demo_root, bert, vocab, tiny, [mx.cpu()])
    assert (folder / 'config.json').is_file()
    two = [mx.cpu(0), mx.cpu(1)]
    again, vocab2 = d2l_nli.load_or_finetune(folder, demo_root, None, None, tiny, two)
    assert vocab2.idx_to_token == vocab.idx_to_token
    test = d2l_nli.read_snli(demo_root / 'snli_1.0', split='test')
    dataset = d2l_nli.SNLIBERTDataset(test, tiny.finetune.max_len, vocab, verbose=False)
    assert len(set(dataset.valid_lens.tolist())) > 1  # so that sorting by length matters
    predicted = d2l_nli.predict_labels(again, dataset, two, batch_size=7)
    one_by_one = [d2l_nli.predict_labels(net, d2l_nli.SNLIBERTDataset(
        ([p], [h], [y]), tiny.finetune.max_len, vocab, verbose=False), [mx.cpu()])[0]
        for p, h, y in zip(*test)]
    assert predicted.tolist() == one_by_one

    def by_length(X):  # a "classifier" whose answer is the pair's length mod 3
        return mx.npx.one_hot(X[2] % 3, 3)
    assert (d2l_nli.predict_labels(by_length, dataset, two, batch_size=7)
            == dataset.valid_lens % 3).all()
    acc = d2l_nli.evaluate_accuracy_gpus(net, dataset.loader(16), devices=[mx.cpu()])
    assert (predicted == dataset.labels).mean() == pytest.approx(acc)


def test_pretraining_trainer_can_decay_to_zero():
    from mxnet import gluon
    net = gluon.nn.Dense(2, in_units=2)
    net.initialize()
    schedule = d2l_nli.pretraining_trainer(net.collect_params(), 1e-2, 100, 10,
                                           final_lr_fraction=0.0)._optimizer.lr_scheduler
    assert schedule(55) == pytest.approx(5e-3) and schedule(100) == pytest.approx(0.0)


def test_the_small_profile_is_sized_for_the_data_it_reads():
    small = d2l_nli.PROFILES['small']
    assert small.for_data('real') is small
    demo = small.for_data('demo')
    assert demo.pretrain.num_steps < small.pretrain.num_steps
    assert demo.chapter_steps < small.chapter_steps and demo.held_out_every < small.held_out_every
    # Everything else stays: the same recipe on both kinds of data.
    assert demo.model == small.model and demo.finetune == small.finetune
    assert demo.pretrain.dynamic_masking and demo.pretrain.embedding_init == 'normal'
    source = d2l_nli.DataSource('demo', None, 'test', '')
    assert small.for_data(source) == demo
    with pytest.raises(ValueError, match="'real' or 'demo'"):
        small.for_data('other')


def test_chapter_pretraining_is_the_chapters_recipe_at_the_profiles_sizes():
    small = d2l_nli.PROFILES['small']
    model, cfg = small.chapter_pretraining()
    chapter = d2l_nli.PROFILES['chapter']
    assert model == chapter.model
    assert (cfg.batch_size, cfg.max_len, cfg.num_steps) == (64, 64, small.chapter_steps)
    assert cfg == d2l_nli.PretrainConfig(batch_size=64, max_len=64,
                                         num_steps=small.chapter_steps)


def test_describe_names_what_the_small_profile_changes():
    text = d2l_nli.PROFILES['small'].describe()
    for change in ('N(0, 0.02)', 'embedding LayerNorm', 'dynamic masking', 'dropout 0',
                   'decay to zero'):
        assert change in text
    assert "not the chapter's" not in dataclasses.replace(
        d2l_nli.PROFILES['small'], model=d2l_nli.PROFILES['chapter'].model,
        pretrain=d2l_nli.PROFILES['chapter'].pretrain).describe()


def test_every_notebook_profile_has_notebook_5_floors_for_both_data_kinds():
    names = {'BoW, both sentences', 'BoW, hypothesis only'}  # notebook 5's model names
    for profile in (d2l_nli.PROFILES[name] for name in d2l_nli.NOTEBOOK_PROFILES):
        assert set(profile.min_analysis_acc) == {'real', 'demo'}, profile.name
        for floors in profile.min_analysis_acc.values():
            assert set(floors) == names
            assert all(1 / 3 < floor < 1 for floor in floors.values())
        size = profile.baseline_train_size
        assert size is None or size >= 10_000
