"""The command line: python -m d2l_nli demo."""
import re
import subprocess
import sys


def _run(*args, **env):
    return subprocess.run([sys.executable, '-m', 'd2l_nli', *args], capture_output=True,
                          text=True, timeout=300)


def test_demo_runs_the_data_pipeline_offline(tmp_path):
    result = _run('demo', '--preset', 'tiny', '--data-dir', str(tmp_path), '--max-len', '48')
    assert result.returncode == 0, result.stderr
    out = result.stdout
    root = tmp_path / 'demo-tiny-v1-seed0'
    assert str(root) in out
    assert (root / 'snli_1.0' / 'snli_1.0_train.txt').is_file()
    assert 'sentence pairs, vocabulary of' in out and 'read ' in out
    unknown = re.search(r'words unknown to the pretraining vocabulary: ([\d.]+)%', out)
    assert unknown and float(unknown.group(1)) < 5  # tiny corpus: a few rare words
    # Honest about what this version does not do yet.
    assert 'no loss or accuracy is reported' in out
    before = (root / 'snli_1.0' / 'snli_1.0_train.txt').stat().st_mtime_ns
    assert _run('demo', '--preset', 'tiny', '--data-dir', str(tmp_path)).returncode == 0
    assert (root / 'snli_1.0' / 'snli_1.0_train.txt').stat().st_mtime_ns == before


def test_bad_sizes_are_refused(tmp_path):
    result = _run('demo', '--data-dir', str(tmp_path), '--max-len', '3')
    assert result.returncode == 2 and '--max-len must be at least 5' in result.stderr
    result = _run('demo', '--data-dir', str(tmp_path), '--batch-size', '0')
    assert result.returncode == 2 and '--batch-size must be at least 1' in result.stderr
    assert not list(tmp_path.iterdir())


def test_help_lists_the_demo():
    result = _run('--help')
    assert result.returncode == 0 and 'demo' in result.stdout
