#!/usr/bin/env bash
# Make the two benchmark environments next to the project's own .venv:
#   benchmarks/.envs/ref  the book's code (d2l==1.0.3, MXNet 1.9.1)
#   benchmarks/.envs/hf   HuggingFace transformers on PyTorch (CPU)
# and the generated full-size SNLI set. Run from the project root:
#   bash benchmarks/setup_envs.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for name in ref hf; do
  env_dir="benchmarks/.envs/$name"
  req="benchmarks/requirements-$([ "$name" = ref ] && echo reference || echo hf).txt"
  if [ ! -x "$env_dir/bin/python" ]; then
    python3 -m venv "$env_dir"
  fi
  "$env_dir/bin/pip" install -q -r "$req"
done
.venv/bin/python benchmarks/make_snli_full.py
echo "benchmark environments ready: benchmarks/.envs/ref, benchmarks/.envs/hf"
