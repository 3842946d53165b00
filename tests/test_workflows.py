"""The GitHub Actions workflows: valid, and running the commands the docs give.

They cannot run here (no GitHub runner); these tests load them as YAML,
check the keys GitHub requires, and compare their commands with the
README's test command and docs/gpus.md's "GPU runners" command.
"""
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / '.github' / 'workflows'


def _load(name):
    doc = yaml.safe_load((WORKFLOWS / name).read_text())
    triggers = doc.get('on', doc.get(True))  # YAML 1.1 reads the key `on` as True
    return doc, triggers


def _one_line(command):
    return ' '.join(command.replace('\\\n', ' ').split())


def _check_jobs(doc):
    assert doc.get('name') and doc.get('jobs')
    for job in doc['jobs'].values():
        assert job.get('runs-on') and job.get('steps')
        for step in job['steps']:
            assert ('uses' in step) != ('run' in step), step  # each step does one thing
    return list(doc['jobs'].values())


def test_every_workflow_is_valid_yaml_with_the_keys_github_requires():
    names = sorted(p.name for p in WORKFLOWS.glob('*.yml'))
    assert names == ['gpu-notebooks.yml', 'tests.yml']
    for name in names:
        doc, triggers = _load(name)
        assert triggers, name
        _check_jobs(doc)


def test_the_hosted_workflow_runs_the_readme_test_command_on_python_311():
    doc, triggers = _load('tests.yml')
    assert {'push', 'pull_request'} <= set(triggers)
    (job,) = _check_jobs(doc)
    assert job['runs-on'] == 'ubuntu-latest'
    setup = [s for s in job['steps'] if s.get('uses', '').startswith('actions/setup-python')]
    assert setup and str(setup[0]['with']['python-version']) == '3.11'
    quick_start = (ROOT / 'README.md').read_text().split('## Quick start')[1].split('\n## ')[0]
    test_command = re.findall(r'```bash\n(.+?)\n```', quick_start)[1]
    assert test_command in [s['run'].strip() for s in job['steps'] if 'run' in s]


def test_the_gpu_workflow_is_started_by_hand_on_a_gpu_runner_with_the_docs_command():
    doc, triggers = _load('gpu-notebooks.yml')
    assert set(triggers) == {'workflow_dispatch'}
    assert triggers['workflow_dispatch']['inputs']['data_dir']['required'] is True
    (job,) = _check_jobs(doc)
    assert {'self-hosted', 'gpu'} <= set(job['runs-on'])
    section = (ROOT / 'docs' / 'gpus.md').read_text().split('## GPU runners')[1]
    command = re.findall(r'```bash\n(.+?)\n```', section, flags=re.S)[0]
    expected = _one_line(re.sub(r'D2L_NLI_DATA=\S+', 'D2L_NLI_DATA="$DATA_DIR"', command))
    (run,) = [s for s in job['steps'] if 'run' in s]
    assert _one_line(run['run']) == expected
    assert run['env']['DATA_DIR'] == '${{ inputs.data_dir }}'
