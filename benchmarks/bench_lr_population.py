"""A population at one learning rate against the same population with a different learning rate per model.

12 copies of the MNIST article's network (784-256-128-10 with dropout, ``keras-mnist``) train as one population,
batch 128, one thread (as studies run: one worker per core). Each optimizer is timed twice per repetition, in
alternating order so that background load hits both alike: every model at one rate (the stacked optimizer, as
without ``set_lr``), and the models at 12 log-spaced rates from 1e-4 to 1e-2 (one param group per model, see
:class:`initlab.training.Population`). Prints the median seconds per epoch of each, the ratio different / one
(target <= 1.15) and the machine. Run it with nothing else on the machine:

    python benchmarks/bench_lr_population.py [--reps 5] [--steps N] [--data mnist|random]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator

import torch

import initlab.data
import initlab.models
from initlab.training import Batch, Population, TrainSettings
from machine import cpu_name

#: The must-hold of the learning-rate sweep issue: 12 rates cost at most this much more than one.
TARGET = 1.15


def load_data(kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST's 50,000 training images (offline cache), or random data of the same shape."""
    if kind == "mnist":
        data = initlab.data.load("mnist", split="train")
        return data.x, data.y
    g = torch.Generator().manual_seed(0)
    return torch.randn(50_000, 1, 28, 28, generator=g), torch.randint(0, 10, (50_000,), generator=g)


def batches(x: torch.Tensor, y: torch.Tensor, epoch: int, steps: int, size: int = 128) -> Iterator[Batch]:
    """One shuffled epoch (or its first ``steps`` batches) shared by every model, gathered as the study does."""
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(epoch))
    for idx in order.split(size)[:steps]:
        yield Batch(x[idx], y[idx])


def population(settings: TrainSettings, rates: list[float], models: int) -> Population:
    nets = []
    for seed in range(models):
        torch.manual_seed(seed)
        nets.append(initlab.models.build("keras-mnist", input_shape=(1, 28, 28), num_classes=10))
    pop = Population(nets, settings)
    pop.set_lr(rates[0] if len(set(rates)) == 1 else rates)
    return pop


def compare(name: str, settings: TrainSettings, x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace) -> float:
    """Median seconds per epoch at one rate and at ``args.models`` rates, alternating; returns the ratio."""
    n = args.models
    mixed = torch.logspace(-4, -2, n, dtype=torch.float64).tolist()
    shared = [1e-3] * n  # the geometric middle of the mixed rates
    pops = {"one rate": population(settings, shared, n), f"{n} rates": population(settings, mixed, n)}
    rates = {"one rate": shared, f"{n} rates": mixed}
    for pop in pops.values():  # warm-up: allocations, the optimizer's state, the first-call paths
        pop.train_epoch(batches(x, y, 0, 5))
    times: dict[str, list[float]] = {k: [] for k in pops}
    for rep in range(args.reps):
        keys = list(pops) if rep % 2 == 0 else list(reversed(pops))
        for key in keys:
            pop = pops[key]
            t = time.perf_counter()
            pop.set_lr(rates[key] if len(set(rates[key])) > 1 else rates[key][0])  # as a study does every epoch
            _, steps = pop.train_epoch(batches(x, y, rep + 1, args.steps))
            times[key].append(time.perf_counter() - t)
    one, many = (statistics.median(v) for v in times.values())
    ratio = many / one
    paired = statistics.median(b / a for a, b in zip(*times.values(), strict=True))
    groups = [len(p.optimizer.param_groups) for p in pops.values()]
    for (key, values), g in zip(times.items(), groups, strict=True):
        spread = f"min {min(values):.2f}, max {max(values):.2f}"
        med = statistics.median(values)
        print(f"  {key:<9} {med:7.2f} s/epoch ({spread}), {1e3 * med / steps:6.2f} ms/step, {g:2d} param group(s)")
    verdict = "PASS" if ratio <= TARGET else "FAIL"
    print(f"  {name}: ratio {ratio:.3f} (median of paired ratios {paired:.3f}; target <= {TARGET}): {verdict}")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--steps", type=int, default=None, help="steps per timed epoch (default: the whole epoch)")
    parser.add_argument("--models", type=int, default=12)
    parser.add_argument("--data", default="mnist", choices=["mnist", "random"])
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (studies use one per worker)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, y = load_data(args.data)
    steps = args.steps or -(-x.shape[0] // 128)
    print(
        f"torch {torch.__version__}, {cpu_name()}, {args.threads} thread(s); {args.models} x keras-mnist on "
        f"{args.data}, batch 128, {steps} steps per epoch, median of {args.reps} alternating repetitions"
    )
    worst = 1.0
    for name, settings in [
        ("Adam (TrainSettings defaults, fused)", TrainSettings()),
        ("SGD with momentum 0.9", TrainSettings(optimizer="sgd", lr=1e-3, momentum=0.9)),
    ]:
        print(name)
        worst = max(worst, compare(name.split(" (")[0], settings, x, y, args))
    print(f"worst ratio {worst:.3f} (target <= {TARGET}): {'PASS' if worst <= TARGET else 'FAIL'}")


if __name__ == "__main__":
    main()
