#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: install initlab with a CUDA build of torch, run the GPU tests, then the CUDA
# benchmark (the article network's population against one model at a time on the same GPU, float32 and bf16).
# Everything it prints, and the benchmark's output in $OUT/gpu_bench.txt when OUT is set, is what the closing
# figures quote.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${INITLAB_GPU_VENV:-.gpu-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  # The CUDA build: the machine's pip index decides the wheel; torch must see the GPU.
  "$venv/bin/pip" install -q "torch>=2.9" && "$venv/bin/pip" install -q -e ".[test]"
fi
"$venv/bin/python" -c "import torch; assert torch.cuda.is_available(), 'torch does not see a GPU'; print(torch.__version__, torch.cuda.get_device_name())"
"$venv/bin/python" -m initlab data prepare mnist
"$venv/bin/python" -m pytest -q -m gpu tests 2>&1 | tail -15
out="${OUT:-.}"
(cd benchmarks && "../$venv/bin/python" bench_study.py --only cuda) | tee "$out/gpu_bench.txt"
