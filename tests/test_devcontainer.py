"""The dev container (.devcontainer/): its files fit together, and its set-up script works.

Docker cannot run here, so the Dockerfile's part is only read; the script
that the container runs on creation is run for real, on a copy of the
project, into a fresh venv (a whole install: about two minutes).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / '.devcontainer'


def test_the_container_is_python_311_on_amd64_and_runs_the_setup_script():
    config = json.loads((FOLDER / 'devcontainer.json').read_text())
    assert (FOLDER / config['build']['dockerfile']).is_file()
    assert (FOLDER / config['build']['context']).resolve() == ROOT
    assert config['postCreateCommand'].startswith('bash .devcontainer/setup.sh')
    dockerfile = (FOLDER / 'Dockerfile').read_text()
    assert 'FROM --platform=linux/amd64 python:3.11-' in dockerfile
    assert 'chromium' in dockerfile and 'g++' in dockerfile


def test_the_setup_script_installs_a_working_environment(tmp_path):
    files = subprocess.run(['git', 'ls-files', '-z'], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split('\0')
    copy = tmp_path / 'd2l-nli'
    for name in filter(None, files):
        source, target = ROOT / name, copy / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    env = dict(os.environ, HOME=str(tmp_path / 'home'),
               PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ['PATH']]))
    env.pop('VIRTUAL_ENV', None)
    result = subprocess.run(['bash', '.devcontainer/setup.sh', str(tmp_path / 'venv')],
                            cwd=copy, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert 'is ready' in result.stdout
    kernel = tmp_path / 'home' / '.local' / 'share' / 'jupyter' / 'kernels' / 'd2l-nli'
    assert json.loads((kernel / 'kernel.json').read_text())['display_name'] == 'd2l-nli'
