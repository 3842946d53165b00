#!/usr/bin/env bash
# The dev container's set-up, in a script so that the tests run it too
# (tests/test_devcontainer.py; Docker cannot run there). Run from the project
# folder: it installs the project as the Quick start does, into the venv
# named by $1 (default .venv), and registers the notebooks' kernel.
set -euo pipefail
venv="${1:-.venv}"
python3 -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
    || { echo "the dev container needs Python 3.11" >&2; exit 1; }
python3 -m venv "$venv"
"$venv/bin/pip" install -q -e ".[cpu,test]"
"$venv/bin/python" -m ipykernel install --user --name d2l-nli --display-name "d2l-nli"
"$venv/bin/python" -c 'import d2l_nli; print("d2l-nli", d2l_nli.__version__, "is ready")'
