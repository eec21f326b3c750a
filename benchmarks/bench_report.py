"""Report build time of the default study: the static build (matplotlib, ``initlab report --static``) against the
interactive one (uPlot, the default), in the same run.

The default study is ``initlab compare`` with no arguments (Study.quick_article: keras-mnist, 12 initializers x 2
seeds x 3 epochs on MNIST). Without ``--study`` it is trained first into a temporary folder (a few minutes on 2
cores); pass the folder of one you have to skip that. Prints, for each build: the median and the best of ``--reps``
builds in one warm process (imports paid once, before timing), one cold build in a fresh process (what
``initlab report`` costs, Python and torch imports included), the page size, the ratio static / interactive, and the
machine's float32 matmul peak. Run it with nothing else on the machine:

    python benchmarks/bench_report.py [--study DIR] [--reps 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from machine import matmul_peak


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def default_study(folder: Path) -> Path:
    """Train the default study of ``initlab compare`` into ``folder`` (without its report)."""
    from initlab.studies import Study, run_study

    print(f"training the default study into {folder} (a few minutes) ...", flush=True)
    t = time.perf_counter()
    run_study(Study.quick_article(), folder)
    print(f"  trained in {time.perf_counter() - t:.0f} s", flush=True)
    return folder


def cold(study: Path, out: Path, static: bool) -> float:
    """Wall seconds of one build in a fresh Python process, imports included."""
    code = f"from initlab.report import build_report; build_report({str(study)!r}, {str(out)!r}, static={static!r})"
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", type=Path, help="folder of the default study (trained first when omitted)")
    parser.add_argument("--reps", type=int, default=5, help="builds of each kind in the warm process")
    args = parser.parse_args()

    threads = torch.get_num_threads()
    peak = matmul_peak(threads)
    torch.set_num_threads(threads)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {threads} torch threads, "
        f"float32 matmul peak {peak:.0f} GFLOP/s (measured now); torch {torch.__version__}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        study = args.study if args.study is not None else default_study(Path(tmp) / "study")
        from initlab.report import build_report
        from initlab.store import Store

        with Store.in_dir(study, readonly=True) as store:
            config, runs = store.study().config, store.runs()
        print(
            f"study: {study} ({config.get('model')} on {config.get('dataset')}, {len(config.get('arms', []))} arms x "
            f"{len(config.get('seeds', []))} seeds = {len(runs)} runs, {config.get('train', {}).get('epochs')} epochs)"
        )
        results: dict[str, dict[str, float]] = {}
        for name, static in (("static (matplotlib, --static)", True), ("interactive (uPlot, default)", False)):
            out = Path(tmp) / ("static" if static else "interactive")
            build_report(study, out, static=static)  # warm-up: imports, caches
            times = [
                _timed(lambda out=out, static=static: build_report(study, out, static=static)) for _ in range(args.reps)
            ]
            page = (out / "report.html").stat().st_size
            results[name] = dict(
                median=statistics.median(times),
                best=min(times),
                cold=cold(study, Path(tmp) / "cold", static),
                page=page,
            )
        print(
            f"\n{'build':32s} {'median':>9s} {'best':>9s} {'cold':>9s} {'page':>10s}   (warm: {args.reps} builds each)"
        )
        for name, r in results.items():
            print(f"{name:32s} {r['median']:8.2f}s {r['best']:8.2f}s {r['cold']:8.2f}s {r['page'] / 1e6:8.2f} MB")
        before, after = results["static (matplotlib, --static)"], results["interactive (uPlot, default)"]
        print(
            f"\nratio static / interactive: {before['median'] / after['median']:.1f}x warm (median), "
            f"{before['cold'] / after['cold']:.1f}x cold; interactive page {after['page'] / 1e6:.2f} MB "
            f"(limit 1.5 MB); target < 2 s: {'met' if after['median'] < 2.0 else 'NOT met'} (warm median)"
        )


if __name__ == "__main__":
    main()
