"""initlab's study engine against the usual ways of running the same comparison, in one run.

Workloads (all on real data):
  * article: the MNIST article's network (784-256-128-10 with dropout), Adam, batch 128, 50,000 training samples;
    initlab trains N models as populations, against (a) an idiomatic sequential PyTorch loop (DataLoader with
    shuffling, default Adam) and (b) Keras 3 ``model.fit`` when keras is installed.
  * small: an MLP on MNIST-1D (many runs, per-step overhead dominates), initlab against the idiomatic loop.

Prints seconds per model-epoch, the ratios, the achieved GFLOP/s and its share of the float32 matmul peak measured
here in the same run. Run it with nothing else on the machine:

    python benchmarks/bench_study.py [--models 24] [--epochs 2] [--workers 2] [--precision float32]
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

import initlab.data
import initlab.models
from initlab.store import Store
from initlab.studies import ARTICLE_INITS, Arm, Study, run_study
from initlab.training import TrainSettings
from machine import matmul_peak


def mlp_flops_per_sample(widths: list[int], *, executed: bool = True) -> float:
    """Training FLOPs of one sample through a dense network of P weights. Executed: forward 2·P, weight gradients
    2·P, input gradients 2·P for every layer but the first (whose input needs none). Model FLOPs (``executed=False``):
    3 × forward = 6·P, the usual convention of model FLOPs utilization (Chowdhery et al. 2022, PaLM, appendix B),
    and the count behind "the arithmetic takes under 90 seconds at the matmul peak" for 12 initializers x 20 epochs."""
    sizes = [a * b for a, b in itertools.pairwise(widths)]
    return 2 * (2 * sum(sizes) + (sum(sizes[1:]) if executed else sum(sizes)))


def idiomatic(
    model_spec: str, dataset: initlab.data.Dataset, epochs: int, models: int, threads: int, batch_size: int = 128
) -> float:
    """Median seconds per model-epoch of a textbook PyTorch loop: DataLoader(shuffle=True), default Adam."""
    torch.set_num_threads(threads)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(dataset.x, dataset.y), batch_size=batch_size, shuffle=True
    )
    times = []
    for m in range(models):
        torch.manual_seed(m)
        model = initlab.models.build(model_spec, input_shape=dataset.input_shape, num_classes=dataset.num_classes)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(epochs):
            t = time.perf_counter()
            model.train()
            for xb, yb in loader:
                opt.zero_grad()
                nn.functional.cross_entropy(model(xb), yb).backward()
                opt.step()
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def keras_fit(dataset: initlab.data.Dataset, epochs: int, models: int) -> float | None:
    """Seconds per model-epoch of Keras 3 ``model.fit`` (torch backend), or None without keras."""
    if importlib.util.find_spec("keras") is None:
        return None
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    x, y = dataset.x.flatten(1).numpy(), dataset.y.numpy()
    times = []
    for m in range(models):
        keras.utils.set_random_seed(m)
        model = keras.Sequential(
            [
                keras.Input((784,)),
                keras.layers.Dense(256, activation="relu"),
                keras.layers.Dropout(0.2),
                keras.layers.Dense(128, activation="relu"),
                keras.layers.Dropout(0.2),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        for _ in range(epochs):
            t = time.perf_counter()
            model.fit(x, y, batch_size=128, epochs=1, verbose=0)
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def initlab_study(
    dataset: str,
    model: str,
    inits: Sequence[str],
    seeds: int,
    epochs: int,
    workers: int,
    precision: str,
    batch_size: int = 128,
) -> tuple[float, float, dict]:
    """(end-to-end seconds per model-epoch, training-only seconds per model-epoch, test accuracy by arm)."""
    study = Study(
        name="bench",
        dataset=dataset,
        model=model,
        arms=tuple(Arm(i, i) for i in inits),
        seeds=tuple(range(seeds)),
        train=TrainSettings(epochs=epochs, lr=1e-3, batch_size=batch_size, precision=precision),
    )
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        run_study(study, Path(tmp) / "s", workers=workers)
        total = time.perf_counter() - t
        with Store.in_dir(Path(tmp) / "s", readonly=True) as store:
            runs = store.runs()
            # Each epoch row carries its share of the population's training time (validation excluded, as in the
            # baselines, which do not validate).
            train_time = sum(e.extra["train_time_s"] for e in store.epochs())
            acc: dict[str, list[float]] = {}
            for r in runs:
                if r.test_metrics:
                    acc.setdefault(r.arm, []).append(r.test_metrics["test_acc"])
    model_epochs = len(runs) * epochs
    # Workers run in parallel: training-only time is the summed epoch time divided by the workers.
    return total / model_epochs, train_time / workers / model_epochs, acc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", type=int, default=24, help="runs in the article workload: its 12 initializers x models/12 seeds"
    )
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--precision", default="float32", choices=["float32", "bf16"])
    parser.add_argument("--baseline-models", type=int, default=2, help="models the sequential baselines train")
    parser.add_argument("--small-runs", type=int, default=48)
    parser.add_argument("--skip-small", action="store_true")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {cores} cores; "
        f"article: {args.models} models x {args.epochs} epochs, {args.workers} workers, {args.precision}"
    )

    peak = matmul_peak(cores)
    print(f"float32 matmul peak ({cores} threads, 2048^3): {peak:.1f} GFLOP/s")
    if args.precision == "bf16":
        print(f"bf16 matmul peak: {matmul_peak(cores, torch.bfloat16):.1f} GFLOP/s")

    mnist = initlab.data.load("mnist", split="train")
    seeds = max(1, args.models // len(ARTICLE_INITS))
    e2e, train_only, acc = initlab_study(
        "mnist", "keras-mnist", ARTICLE_INITS, seeds, args.epochs, args.workers, args.precision
    )
    base = idiomatic("keras-mnist", mnist, 1, args.baseline_models, cores)
    keras_t = keras_fit(mnist, 1, 1)
    flops = mlp_flops_per_sample([784, 256, 128, 10]) * len(mnist) / 1e9
    model_flops = mlp_flops_per_sample([784, 256, 128, 10], executed=False) * len(mnist) / 1e9
    gflops = flops / train_only
    print(f"article network, per model-epoch of {len(mnist)} samples:")
    print(f"  initlab            {train_only:6.3f} s training ({e2e:6.3f} s end to end, with start-up and evaluation)")
    print(f"  idiomatic PyTorch  {base:6.3f} s   ratio {base / train_only:5.2f}x (end to end {base / e2e:5.2f}x)")
    if keras_t is None:
        print("  Keras model.fit    skipped (keras is not installed: pip install keras)")
    else:
        print(
            f"  Keras model.fit    {keras_t:6.3f} s   ratio {keras_t / train_only:5.2f}x "
            f"(end to end {keras_t / e2e:5.2f}x)"
        )
    bf16 = " (the products ran in bf16)" if args.precision == "bf16" else ""
    print(
        f"  achieved {gflops:.1f} GFLOP/s of {flops:.1f} executed GFLOP per model-epoch = {100 * gflops / peak:.0f}% "
        f"of the float32 matmul peak{bf16}"
    )
    print(
        f"  model FLOPs utilization (3 x forward = {model_flops:.1f} GFLOP per model-epoch): "
        f"{model_flops / train_only:.1f} GFLOP/s = {100 * model_flops / train_only / peak:.0f}% of the peak{bf16}"
    )
    print("  mean test accuracy by arm: " + ", ".join(f"{k} {100 * statistics.fmean(v):.2f}" for k, v in acc.items()))
    if args.precision == "bf16":
        # The same study in float32, for the speed-up and the accuracy difference (the claim: within 0.3 points).
        _, train32, acc32 = initlab_study(
            "mnist", "keras-mnist", ARTICLE_INITS, seeds, args.epochs, args.workers, "float32"
        )
        diffs = {k: 100 * (statistics.fmean(acc[k]) - statistics.fmean(acc32[k])) for k in acc}
        # Arms that do not learn (Zeros, Ones: near chance in float32) end wherever their saturated units leave them;
        # the claim is about the accuracy of networks that train.
        learning = [k for k in diffs if statistics.fmean(acc32[k]) >= 0.5]
        worst = max(abs(diffs[k]) for k in learning)
        print(f"  float32 for comparison {train32:6.3f} s: bf16 is {train32 / train_only:4.2f}x faster")
        print(
            "  test accuracy bf16 - float32 (points): "
            + ", ".join(f"{k} {d:+.2f}" for k, d in diffs.items())
            + f"; largest over the {len(learning)} arms that learn (float32 accuracy >= 50%): {worst:.2f} "
            f"(claim <= 0.30: {'PASS' if worst <= 0.3 else 'FAIL'})"
        )

    if not args.skip_small:
        small = initlab.data.load("mnist1d", split="train")
        spec = "mlp:100,100"
        inits = ["glorot_uniform", "he_normal", "lecun_normal", "orthogonal"]
        e2e_s, train_s, _ = initlab_study(
            "mnist1d", spec, inits, max(1, args.small_runs // len(inits)), 5, args.workers, "float32", batch_size=32
        )
        base_s = idiomatic(spec, small, 2, 3, cores, batch_size=32)
        print(f"small network ({spec} on MNIST-1D, batch 32, {args.small_runs} runs), per model-epoch:")
        print(f"  initlab            {train_s * 1e3:7.2f} ms training ({e2e_s * 1e3:7.2f} ms end to end)")
        print(
            f"  idiomatic PyTorch  {base_s * 1e3:7.2f} ms   ratio {base_s / train_s:5.1f}x "
            f"(end to end {base_s / e2e_s:5.1f}x)"
        )


if __name__ == "__main__":
    main()
