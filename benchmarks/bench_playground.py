"""Updates per second of the playground, measured through its WebSocket as a page receives them.

An update is at least one optimizer step of every arm and the new data of every view (costs and accuracies, the
decision boundary, the network's weights, the histograms, the depth profiles; the findings of ``initlab.diagnose``
once a second). The server runs as ``initlab playground --no-browser --port 0`` in a subprocess, as a user starts it;
this client plays at one step per update and acknowledges every frame on arrival, as the page does after drawing it
(the server keeps at most two frames in flight). Two workloads, four arms each, on the assignment's 300 training
points (100 test points, float64):

* small: [2, 10, 5, 1], the deeplearning.ai assignment's network (target: at least 30 updates/s);
* deep: 20 hidden layers of width 64 (target: at least 10 updates/s).

Prints updates per second (median of ``--reps`` windows of ``--seconds``), the frame size, and the machine's
float32 and float64 matmul peaks measured in the same run. Run it with nothing else on the machine:

    python benchmarks/bench_playground.py [--seconds 4] [--reps 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

import torch
from websockets.sync.client import connect

from machine import cpu_name, matmul_peak

TARGETS = {"small": 30.0, "deep": 10.0}
WORKLOADS = {
    "small": "data=dlai-circles&widths=10,5&opt=sgd&lr=0.01&arm=article:zero&arm=article:small"
    "&arm=article:appropriate&arm=article:large&seed=3&speed=1",
    "deep": "data=dlai-circles&depth=20&width=64&opt=adam&lr=0.001&arm=he_normal&arm=glorot_uniform"
    "&arm=orthogonal&arm=lecun_normal&seed=3&speed=1",
}


def start_server() -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "initlab", "playground", "--no-browser", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        match = re.search(r"http://[\d.]+:\d+/", line)
        if match:
            return proc, match.group(0)
    raise RuntimeError("the playground printed no URL")


def measure(url: str, query: str, seconds: float, reps: int) -> tuple[list[float], int, int]:
    """Updates per second in ``reps`` windows, the last frame's size in bytes and the steps taken."""
    with connect(url.replace("http://", "ws://") + "ws", max_size=None) as ws:
        ws.send(json.dumps({"type": "setup", "query": query}))
        frames = 0

        def next_frame() -> dict:
            while True:
                raw = ws.recv(timeout=60)
                msg = json.loads(raw)
                if msg["type"] == "error":
                    raise RuntimeError(msg["messages"])
                if msg["type"] == "frame":
                    ws.send('{"type": "ack"}')
                    msg["_bytes"] = len(raw)
                    return msg

        next_frame()  # the setup's first frame
        ws.send(json.dumps({"type": "play"}))
        warm_until = time.perf_counter() + 1.0
        while time.perf_counter() < warm_until:
            frame = next_frame()
        rates = []
        for _ in range(reps):
            start, frames = time.perf_counter(), 0
            while time.perf_counter() - start < seconds:
                frame = next_frame()
                frames += 1
            rates.append(frames / (time.perf_counter() - start))
        ws.send(json.dumps({"type": "pause"}))
        return rates, frame["_bytes"], frame["step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"machine: {cpu_name()}, {cores} cores; torch {torch.__version__}; the server trains with 1 thread")
    print(f"float32 matmul peak ({cores} threads, 2048^3): {matmul_peak(cores):.1f} GFLOP/s")
    print(f"float64 matmul peak ({cores} threads, 2048^3): {matmul_peak(cores, torch.float64):.1f} GFLOP/s")
    print(f"float64 matmul peak (1 thread, 2048^3): {matmul_peak(1, torch.float64):.1f} GFLOP/s")
    proc, url = start_server()
    try:
        for name, query in WORKLOADS.items():
            rates, size, steps = measure(url, query, args.seconds, args.reps)
            median = statistics.median(rates)
            verdict = "ok" if median >= TARGETS[name] else "BELOW TARGET"
            print(f"{name:5s} ({query.split('&')[1]} {query.split('&')[2] if name == 'deep' else ''}):"
                  f" {median:.1f} updates/s (windows: {', '.join(f'{r:.1f}' for r in rates)}; target >= "
                  f"{TARGETS[name]:.0f}: {verdict}); frame {size / 1024:.0f} KiB; {steps} steps")  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
