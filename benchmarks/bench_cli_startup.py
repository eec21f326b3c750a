"""How long ``initlab --version`` and ``initlab --help`` take, against the interpreter alone and ``import torch``.

Each command runs as a fresh process (as a user types it), repetitions of all of them alternating so that background
load hits each alike. Prints the median and the spread of each, the ratio of each initlab command to ``import
torch`` (what the command cost when the CLI imported torch first), and whether each is under the 0.5 s target.

    python benchmarks/bench_cli_startup.py [--reps 15]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

TARGET_S = 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args()
    script = shutil.which("initlab", path=os.path.dirname(sys.executable)) or shutil.which("initlab")
    if script is None:
        raise SystemExit("the initlab script is not installed in this environment; pip install -e . first")
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
        "initlab --version": [script, "--version"],
        "initlab --help": [script, "--help"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for cmd in commands.values():  # one warm-up each: the first start reads the files from disk
        subprocess.run(cmd, check=True, capture_output=True)
    for _ in range(args.reps):
        for name, cmd in commands.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times[name].append(time.perf_counter() - t0)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"{args.reps} runs each, alternating; median (min-max) wall time of a fresh process")
    torch_s = statistics.median(times["python -c 'import torch'"])
    for name, values in times.items():
        med = statistics.median(values)
        line = f"{name:28s} {med:6.3f} s ({min(values):.3f}-{max(values):.3f})"
        if name.startswith("initlab"):
            verdict = "under" if med < TARGET_S else "OVER"
            line += f"  {med / torch_s:5.2f}x import torch, {verdict} the {TARGET_S} s target"
        print(line)


if __name__ == "__main__":
    main()
