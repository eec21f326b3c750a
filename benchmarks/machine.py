"""What every benchmark prints about the machine it ran on: the CPU's name and the measured matmul peak, so that
figures from different machines are compared as ratios, never as absolute times."""

from __future__ import annotations

import platform
import time
from pathlib import Path

import torch


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def matmul_peak(threads: int, dtype: torch.dtype = torch.float32, n: int = 2048, reps: int = 6) -> float:
    """GFLOP/s of an n×n×n matrix product with ``threads`` threads (best of ``reps``, after one warm-up)."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9
