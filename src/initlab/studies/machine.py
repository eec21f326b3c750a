"""Where a study ran: the versions, machine, CPU and device recorded in the Store's study meta.

A study's numbers depend on the hardware and the library versions (speed always, values through BLAS and torch
kernels), so the runner records them with :func:`environment_meta` and the report prints them next to the results.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

__all__ = ["environment_meta"]


def environment_meta(*, device: str | None = None) -> dict[str, Any]:
    """What ``init_study(meta=...)`` records: versions, machine, CPU, hostname and the device a study runs on."""
    # Imported here: only a runner needs them, and torch takes seconds to import.
    import platform
    import socket
    import sqlite3
    from importlib.metadata import PackageNotFoundError, version

    try:
        initlab_version = version("initlab")
    except PackageNotFoundError:  # a source tree that was not installed
        initlab_version = "0.0.0+unknown"
    meta: dict[str, Any] = {
        "initlab": initlab_version,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "hostname": socket.gethostname(),
        "sqlite": sqlite3.sqlite_version,
    }
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        meta["torch"] = None
    else:
        meta["torch"] = torch.__version__
        meta["torch_threads"] = torch.get_num_threads()
        if device is not None and str(device).startswith("cuda") and torch.cuda.is_available():
            meta["device_name"] = torch.cuda.get_device_name(torch.device(device))
    if device is not None:
        meta["device"] = str(device)
    return meta


def _cpu_name() -> str:
    """The CPU model name (from /proc/cpuinfo on Linux, else what ``platform`` knows)."""
    import platform

    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()
