"""``python -m d2l_nli doctor``: each check's message, the exit status, bounded network checks."""
import os
import subprocess
import sys
import time

import pytest

from d2l_nli.machinery import devices, doctor, hub


def run_doctor(tmp_path, *args, **env):
    environ = {k: v for k, v in os.environ.items()
               if not k.startswith(('D2L_NLI_', 'OMP_'))}
    environ.update(D2L_NLI_OFFLINE='1', D2L_NLI_DATA=str(tmp_path / 'data'),
                   D2L_NLI_RUNS=str(tmp_path / 'runs'))
    environ.update(env)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, '-m', 'd2l_nli', 'doctor', *args],
                            capture_output=True, text=True, env=environ, timeout=300)
    return result, time.perf_counter() - start


def test_doctor_checks_pass_offline_and_exit_0(tmp_path):
    result, _ = run_doctor(tmp_path, '--no-benchmark')
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert 'ok    versions: Python 3.' in out and 'MXNet 1.9.1' in out and 'CPU wheel' in out
    assert "threads: OMP_NUM_THREADS=" in out and "package's default" in out
    assert 'note  mirrors: not tried: D2L_NLI_OFFLINE is set' in out
    assert 'SNLI: not in' in out and out.rstrip().endswith('0 problems found')


def test_doctor_measures_and_estimates_every_notebook(tmp_path):
    result, seconds = run_doctor(tmp_path, '--json', str(tmp_path / 'report.json'))
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert 'on the demo corpus (the real data is not in the data folder)' in out
    for name in ('01_pretraining_bert', '02_snli_dataset_for_bert', '03_finetuning_bert',
                 '04_exercise_truncation', '05_what_bert_learned'):
        line = next(line for line in out.splitlines() if line.strip().startswith(name))
        minutes = line.split()[1]
        assert minutes == '<0.1' or float(minutes) > 0
    assert float(next(line for line in out.splitlines()
                      if 'all five' in line).split()[2]) > 0.1  # minutes
    import json
    report = json.loads((tmp_path / 'report.json').read_text())
    times = report['profiles']['small']['times']
    assert 0 < times['pretrain_step'] < 60 and 0 < times['finetune_pair'] < 1
    assert not (tmp_path / 'data').exists()  # the demo corpus went to a temporary folder


def test_a_bad_thread_setting_fails_with_what_to_do(tmp_path):
    result, _ = run_doctor(tmp_path, '--no-benchmark', D2L_NLI_THREADS='abc')
    assert result.returncode == 1
    assert "FAIL  threads: D2L_NLI_THREADS='abc': expected a positive whole number" in result.stdout
    assert 'see the lines marked FAIL' in result.stdout


def test_a_data_folder_that_is_a_file_fails(tmp_path):
    (tmp_path / 'data').write_text('not a folder')
    result, _ = run_doctor(tmp_path, '--no-benchmark')
    assert result.returncode == 1
    assert 'is a file, not a folder: set D2L_NLI_DATA to a folder' in result.stdout


def test_a_data_folder_that_cannot_be_created_fails(tmp_path):
    (tmp_path / 'file').write_text('')
    result, _ = run_doctor(tmp_path, '--no-benchmark', D2L_NLI_DATA=str(tmp_path / 'file' / 'x'))
    assert result.returncode == 1
    assert 'does not exist and cannot be created' in result.stdout


@pytest.mark.skipif(os.geteuid() == 0, reason='root reads every folder')
def test_an_unreadable_data_folder_fails(tmp_path):
    (tmp_path / 'data').mkdir(mode=0)
    try:
        result, _ = run_doctor(tmp_path, '--no-benchmark')
    finally:
        (tmp_path / 'data').chmod(0o755)
    assert result.returncode == 1 and 'cannot be read' in result.stdout


def test_a_damaged_dataset_fails_and_says_to_download_again(tmp_path):
    snli = tmp_path / 'data' / 'snli_1.0'
    snli.mkdir(parents=True)
    (snli / 'snli_1.0_train.txt').write_text('<html>Not found</html>\n')
    result, _ = run_doctor(tmp_path, '--no-benchmark')
    assert result.returncode == 1
    assert 'FAIL  SNLI:' in result.stdout and 'does not look like the extracted' in result.stdout


def test_a_downloaded_archive_with_the_wrong_checksum_fails(tmp_path):
    (tmp_path / 'data').mkdir()
    (tmp_path / 'data' / 'snli_1.0.zip').write_bytes(b'PK\x03\x04 not the archive')
    result, _ = run_doctor(tmp_path, '--no-benchmark')
    assert result.returncode == 1
    assert 'FAIL  SNLI archive:' in result.stdout and 'has the wrong SHA-1' in result.stdout


def test_the_checks_of_the_real_data_pass(tmp_path):
    """The data folder's datasets, as the tests generate them in the official formats."""
    import d2l_nli
    d2l_nli.write_demo_corpus(tmp_path / 'data', 'tiny')
    checks = doctor.check_data(tmp_path / 'data')
    assert [c.status for c in checks] == ['ok', 'ok', 'ok'], checks


@pytest.mark.parametrize('offline', ['1', ''])
def test_a_mirror_that_is_not_a_web_address_fails(tmp_path, offline):
    result, seconds = run_doctor(tmp_path, '--no-benchmark', D2L_NLI_MIRROR='ftp://x',
                                 D2L_NLI_OFFLINE=offline)
    assert result.returncode == 1
    assert "D2L_NLI_MIRROR='ftp://x' is not an http:// or https:// address" in result.stdout
    assert seconds < 60


def test_a_bad_budget_fails(tmp_path):
    result, _ = run_doctor(tmp_path, '--no-benchmark', D2L_NLI_BUDGET_MINUTES='soon')
    assert result.returncode == 1 and "D2L_NLI_BUDGET_MINUTES='soon'" in result.stdout


def test_mirror_checks_are_bounded_in_time(monkeypatch):
    # A mirror that never answers (a non-routable address) costs at most the timeout.
    monkeypatch.delenv('D2L_NLI_OFFLINE', raising=False)
    monkeypatch.setenv('D2L_NLI_MIRROR', 'http://10.255.255.1:8000/')
    calls = []

    def slow(address, timeout):
        calls.append(timeout)
        time.sleep(timeout)
        raise OSError('timed out')
    monkeypatch.setattr(hub.socket, 'create_connection', slow)
    start = time.perf_counter()
    checks = doctor.check_mirrors(timeout=0.2)
    assert time.perf_counter() - start < 0.2 * len(calls) + 1
    assert calls and all(t == 0.2 for t in calls)
    assert all(c.status == 'note' and 'no server answered within 0.2 s' in c.message
               for c in checks)


def test_a_gpu_that_cannot_be_used_is_named_with_why(monkeypatch):
    monkeypatch.setattr(devices, 'num_gpus', lambda: 1)
    monkeypatch.setattr(devices, 'gpu_name', lambda i: 'NVIDIA H100')

    def hopper(i):
        raise devices.GPUNotUsableError('GPU 0 (NVIDIA H100) has compute capability 9.0, '
                                        'which mxnet-cu112 has no kernels for.')
    monkeypatch.setattr(devices, 'check_gpu', hopper)
    (check,) = doctor.check_gpus()
    assert check.name == 'GPU 0' and check.status == 'note'
    assert 'compute capability 9.0' in check.message


def test_no_gpu_says_where_training_runs():
    (check,) = doctor.check_gpus()
    assert check.status == 'ok' and 'training runs on the CPU' in check.message


def test_both_mxnet_wheels_fail(monkeypatch):
    from d2l_nli.machinery import runtime
    monkeypatch.setattr(runtime, 'installed_mxnet_wheels', lambda: ['mxnet', 'mxnet-cu112'])
    check = doctor.check_versions()
    assert check.status == 'FAIL' and 'pip uninstall -y mxnet mxnet-cu112' in check.message


def test_thread_check_names_where_the_settings_came_from():
    assert 'is set' in doctor.check_threads({'D2L_NLI_NO_DEFAULTS': '1'}).message
    # "0" does not opt out: the package's own defaults apply.
    off = doctor.check_threads({'D2L_NLI_NO_DEFAULTS': '0'})
    assert off.status == 'ok' and "the package's default" in off.message
    assert 'from D2L_NLI_THREADS' in doctor.check_threads({'D2L_NLI_THREADS': '2'}).message
