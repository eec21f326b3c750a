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
