"""initlab's initializers against torch.nn.init for the same distributions.

Both fill the same preallocated float32 tensor with a seeded generator; repetitions of the two alternate so that
background load hits both alike. Prints the median time of each and the ratio initlab / torch (target <= 1.2).

    python benchmarks/bench_initializers.py [--reps 15] [--threads 2]
"""

from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
from collections.abc import Callable

import torch

import initlab


def gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def cases(
    shape: tuple[int, ...],
) -> list[tuple[str, Callable[[torch.Tensor], object], Callable[[torch.Tensor], object]]]:
    nn = torch.nn.init
    std = 0.05
    return [
        ("normal", lambda t: initlab.RandomNormal(0.0, std).fill_(t, seed=gen()),
         lambda t: nn.normal_(t, 0.0, std, generator=gen())),
        ("uniform", lambda t: initlab.RandomUniform(-std, std).fill_(t, seed=gen()),
         lambda t: nn.uniform_(t, -std, std, generator=gen())),
        # Keras' truncated normal is torch's trunc_normal_ with bounds at ±2 std.
        ("truncated_normal", lambda t: initlab.TruncatedNormal(0.0, std).fill_(t, seed=gen()),
         lambda t: nn.trunc_normal_(t, 0.0, std, -2 * std, 2 * std, generator=gen())),
        ("xavier_uniform", lambda t: initlab.XavierUniform().fill_(t, seed=gen()),
         lambda t: nn.xavier_uniform_(t, generator=gen())),
        ("xavier_normal", lambda t: initlab.XavierNormal().fill_(t, seed=gen()),
         lambda t: nn.xavier_normal_(t, generator=gen())),
        ("kaiming_uniform", lambda t: initlab.KaimingUniform(a=math.sqrt(5)).fill_(t, seed=gen()),
         lambda t: nn.kaiming_uniform_(t, a=math.sqrt(5), generator=gen())),
        ("kaiming_normal", lambda t: initlab.KaimingNormal(nonlinearity="relu").fill_(t, seed=gen()),
         lambda t: nn.kaiming_normal_(t, nonlinearity="relu", generator=gen())),
    ]  # fmt: skip


def timeit(fn: Callable[[torch.Tensor], object], t: torch.Tensor) -> float:
    start = time.perf_counter()
    fn(t)
    return time.perf_counter() - start


def compare(name: str, shape: tuple[int, ...], ours: Callable, theirs: Callable, reps: int) -> float:
    t = torch.empty(shape)
    ours(t), theirs(t)  # warm-up
    a, b = [], []
    for _ in range(reps):
        a.append(timeit(ours, t))
        b.append(timeit(theirs, t))
    mine, ref = statistics.median(a), statistics.median(b)
    ratio = mine / ref
    shape_text = "x".join(map(str, shape))
    print(f"{name:<18} {shape_text:<13} initlab {mine * 1e3:9.2f} ms  torch {ref * 1e3:9.2f} ms  ratio {ratio:5.2f}")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {args.threads} threads, "
          f"median of {args.reps} alternating repetitions")  # fmt: skip
    ratios = []
    for shape in [(4096, 4096), (512, 256, 3, 3)]:
        for name, ours, theirs in cases(shape):
            ratios.append((name, compare(name, shape, ours, theirs, args.reps)))
    ratios.append(("orthogonal", compare(
        "orthogonal", (2048, 2048),
        lambda t: initlab.Orthogonal().fill_(t, seed=gen()),
        lambda t: torch.nn.init.orthogonal_(t, generator=gen()),
        max(3, args.reps // 3),
    )))  # fmt: skip
    worst = max(r for _, r in ratios)
    print(f"worst ratio {worst:.2f} (target <= 1.20): {'PASS' if worst <= 1.2 else 'FAIL'}")


if __name__ == "__main__":
    main()
