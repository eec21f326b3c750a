"""initlab's study engine against the usual ways of running the same comparison, in one run.

Workloads (all on real data), each chosen with ``--only`` (default: all that this machine can run):
  * article: the MNIST article's network (784-256-128-10 with dropout), Adam, batch 128, 50,000 training samples;
    initlab trains N models as populations, against (a) an idiomatic sequential PyTorch loop (DataLoader with
    shuffling, default Adam) and (b) Keras 3 ``model.fit`` when keras is installed; the training engine alone and
    the whole ``initlab compare`` command (a fresh process: start-up, data, diagnosis, evaluation, checkpoints and
    the report included).
  * small: an MLP on MNIST-1D (many runs, per-step overhead dominates), engine and whole command against the loop.
  * cnn, resmlp, transformer: a small CNN (``cnn:16,32;head=64``) and a residual MLP of 8 blocks on MNIST, and a
    small pre-LN decoder on the copy task, 12 models each: initlab's engine against the idiomatic loop and against
    the general path (``torch.func.vmap`` over the same models, timed over the first steps of an epoch); the CNN
    also as a whole command.
  * bf16: the article network in bf16 mixed precision against float32, speed and test accuracy.
  * cuda (only with a GPU): the article network's population against one model at a time on the same GPU (the
    idiomatic loop with the data on the GPU).

Prints seconds per model-epoch, the ratios, the achieved GFLOP/s and its share of the float32 matmul peak measured
here in the same run. Run it with nothing else on the machine:

    python benchmarks/bench_study.py [--only article,small,cnn,resmlp,transformer,bf16,cuda] [--models 24]
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

import initlab.data
import initlab.models
from initlab.malloc import keep_freed_memory
from initlab.store import Store
from initlab.studies import ARTICLE_INITS, Arm, Study, run_study
from initlab.training import TrainSettings, population
from machine import cpu_name, matmul_peak

#: The cnn, resmlp and transformer workloads, 12 models each: architecture and data set. The transformer is a small
#: decoder on the copy task (16 tokens; what the deepnet2022 reproduction trains, deeper).
ARCHITECTURES = {
    "cnn": ("cnn:16,32;head=64", "mnist"),
    "resmlp": ("resmlp:128x8", "mnist"),
    "transformer": ("transformer:64x2;heads=4;task=lm", "copy"),
}
#: Their arms: six initializers that apply to every layer of these networks, two seeds each (12 models).
ARCHITECTURE_INITS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_normal", "orthogonal")


def mlp_flops_per_sample(widths: list[int], *, executed: bool = True) -> float:
    """Training FLOPs of one sample through a dense network of P weights. Executed: forward 2·P, weight gradients
    2·P, input gradients 2·P for every layer but the first (whose input needs none). Model FLOPs (``executed=False``):
    3 × forward = 6·P, the usual convention of model FLOPs utilization (Chowdhery et al. 2022, PaLM, appendix B),
    and the count behind "the arithmetic takes under 90 seconds at the matmul peak" for 12 initializers x 20 epochs."""
    sizes = [a * b for a, b in itertools.pairwise(widths)]
    return 2 * (2 * sum(sizes) + (sum(sizes[1:]) if executed else sum(sizes)))


def idiomatic(
    model_spec: str,
    dataset: initlab.data.Dataset,
    epochs: int,
    models: int,
    threads: int,
    batch_size: int = 128,
    device: str = "cpu",
) -> float:
    """Median seconds per model-epoch of a textbook PyTorch loop: DataLoader(shuffle=True), default Adam. On a GPU
    the data sits on the device and each epoch draws a random permutation there (no DataLoader: what a careful GPU
    user writes)."""
    torch.set_num_threads(threads)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(dataset.x, dataset.y), batch_size=batch_size, shuffle=True
    )
    x, y = dataset.x.to(device), dataset.y.to(device)

    def gpu_batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        perm = torch.randperm(len(x), device=device)
        for start in range(0, len(x), batch_size):
            idx = perm[start : start + batch_size]
            yield x[idx], y[idx]

    times = []
    for m in range(models):
        torch.manual_seed(m)
        model = initlab.models.build(model_spec, input_shape=dataset.input_shape, num_classes=dataset.num_classes)
        model.to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        for _ in range(epochs):
            _sync(device)
            t = time.perf_counter()
            model.train()
            for xb, yb in loader if device == "cpu" else gpu_batches():
                opt.zero_grad()
                nn.functional.cross_entropy(model(xb), yb).backward()
                opt.step()
            _sync(device)
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


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


@contextmanager
def general_path() -> Iterator[None]:
    """Every population on the general path (``vmap`` over ``functional_call``), as without the stacked paths."""
    saved = population.FAST_PATHS
    population.FAST_PATHS = ()
    try:
        yield
    finally:
        population.FAST_PATHS = saved


def initlab_study(
    dataset: str,
    model: str,
    inits: Sequence[str],
    seeds: int,
    epochs: int,
    workers: int | None,
    precision: str,
    batch_size: int = 128,
    steps: int | None = None,
    device: str = "cpu",
) -> tuple[float, float, dict]:
    """(end-to-end seconds per model-epoch, training-only seconds per model-epoch, test accuracy by arm), run in this
    process with :func:`run_study`. With ``steps``, each run trains that many steps and the training time is scaled to
    a whole epoch (steps per epoch / steps)."""
    study = Study(
        name="bench",
        dataset=dataset,
        model=model,
        arms=tuple(Arm(i, i) for i in inits),
        seeds=tuple(range(seeds)),
        train=TrainSettings(epochs=epochs, steps=steps, lr=1e-3, batch_size=batch_size, precision=precision),
    )
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        run_study(study, Path(tmp) / "s", workers=workers, device=device)
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
    n_train = len(initlab.data.load(dataset, split="train", normalize=None))
    per_epoch = -(-n_train // batch_size)
    model_epochs = len(runs) * (epochs if steps is None else steps / per_epoch)
    # Every workload here is one population, so one shard trains in one worker whatever --workers says: the summed
    # epoch times are the wall time of training (dividing by the worker count would halve it with --workers 2).
    return total / model_epochs, train_time / model_epochs, acc


def whole_command(dataset: str, model: str, inits: Sequence[str], seeds: int, epochs: int, batch_size: int = 128,
                  extra: Sequence[str] = ()) -> float:  # fmt: skip
    """Seconds per model-epoch of ``initlab compare`` as a user runs it: a fresh process, from start-up to the
    report, in a new folder."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "initlab", "compare", "--dataset", dataset, "--model", model,
               "--inits", ",".join(inits), "--seeds", str(seeds), "--epochs", str(epochs),
               "--batch-size", str(batch_size), "--out", str(Path(tmp) / "s"), *extra]  # fmt: skip
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        return (time.perf_counter() - t) / (len(inits) * seeds * epochs)


def article(args: argparse.Namespace, cores: int, peak: float) -> None:
    mnist = initlab.data.load("mnist", split="train")
    seeds = max(1, args.models // len(ARTICLE_INITS))
    e2e, train_only, acc = initlab_study(
        "mnist", "keras-mnist", ARTICLE_INITS, seeds, args.epochs, args.workers, "float32"
    )
    command = whole_command("mnist", "keras-mnist", ARTICLE_INITS, seeds, args.epochs)
    base = idiomatic("keras-mnist", mnist, 1, args.baseline_models, cores)
    keras_t = keras_fit(mnist, 1, 1)
    flops = mlp_flops_per_sample([784, 256, 128, 10]) * len(mnist) / 1e9
    model_flops = mlp_flops_per_sample([784, 256, 128, 10], executed=False) * len(mnist) / 1e9
    gflops = flops / train_only
    print(f"article network, {len(ARTICLE_INITS) * seeds} models x {args.epochs} epochs, per model-epoch of "
          f"{len(mnist)} samples:")  # fmt: skip
    print(f"  initlab engine     {train_only:6.3f} s training ({e2e:6.3f} s in-process end to end)")
    print(f"  initlab compare    {command:6.3f} s the whole command (fresh process, start-up to report)")
    print(f"  idiomatic PyTorch  {base:6.3f} s   ratio {base / train_only:5.2f}x engine, "
          f"{base / command:5.2f}x whole command")  # fmt: skip
    if keras_t is None:
        print("  Keras model.fit    skipped (keras is not installed: pip install keras)")
    else:
        print(f"  Keras model.fit    {keras_t:6.3f} s   ratio {keras_t / train_only:5.2f}x engine, "
              f"{keras_t / command:5.2f}x whole command")  # fmt: skip
    print(
        f"  achieved {gflops:.1f} GFLOP/s of {flops:.1f} executed GFLOP per model-epoch = {100 * gflops / peak:.0f}% "
        f"of the float32 matmul peak"
    )
    print(
        f"  model FLOPs utilization (3 x forward = {model_flops:.1f} GFLOP per model-epoch): "
        f"{model_flops / train_only:.1f} GFLOP/s = {100 * model_flops / train_only / peak:.0f}% of the peak"
    )
    print("  mean test accuracy by arm: " + ", ".join(f"{k} {100 * statistics.fmean(v):.2f}" for k, v in acc.items()))


def bf16(args: argparse.Namespace, cores: int) -> None:
    """The article network in bf16 and in float32, same run: speed-up and test accuracy difference."""
    print(f"bf16 matmul peak: {matmul_peak(cores, torch.bfloat16):.1f} GFLOP/s")
    seeds = max(1, args.models // len(ARTICLE_INITS))
    _, t16, acc16 = initlab_study("mnist", "keras-mnist", ARTICLE_INITS, seeds, args.epochs, args.workers, "bf16")
    _, t32, acc32 = initlab_study("mnist", "keras-mnist", ARTICLE_INITS, seeds, args.epochs, args.workers, "float32")
    diffs = {k: 100 * (statistics.fmean(acc16[k]) - statistics.fmean(acc32[k])) for k in acc16}
    # Arms that do not learn (Zeros, Ones: near chance in float32) end wherever their saturated units leave them;
    # the claim is about the accuracy of networks that train.
    learning = [k for k in diffs if statistics.fmean(acc32[k]) >= 0.5]
    worst = max(abs(diffs[k]) for k in learning)
    print(f"article network in bf16 mixed precision, {len(ARTICLE_INITS) * seeds} models x {args.epochs} epochs:")
    print(f"  engine bf16 {t16:6.3f} s, float32 {t32:6.3f} s per model-epoch: bf16 is {t32 / t16:4.2f}x float32")
    print(
        "  test accuracy bf16 - float32 (points): "
        + ", ".join(f"{k} {d:+.2f}" for k, d in diffs.items())
        + f"; largest over the {len(learning)} arms that learn (float32 accuracy >= 50%): {worst:.2f} "
        f"(claim <= 0.30: {'PASS' if worst <= 0.3 else 'FAIL'})"
    )


def small(args: argparse.Namespace, cores: int) -> None:
    data = initlab.data.load("mnist1d", split="train")
    spec = "mlp:100,100"
    inits = ["glorot_uniform", "he_normal", "lecun_normal", "orthogonal"]
    seeds = max(1, args.small_runs // len(inits))
    e2e_s, train_s, _ = initlab_study("mnist1d", spec, inits, seeds, args.small_epochs, args.workers, "float32",
                                      batch_size=32)  # fmt: skip
    command = whole_command("mnist1d", spec, inits, seeds, args.small_epochs, batch_size=32)
    base_s = idiomatic(spec, data, 2, 3, cores, batch_size=32)
    print(f"small network ({spec} on MNIST-1D, batch 32, {len(inits) * seeds} runs x {args.small_epochs} epochs), "
          f"per model-epoch:")  # fmt: skip
    print(f"  initlab engine     {train_s * 1e3:7.2f} ms training ({e2e_s * 1e3:7.2f} ms in-process end to end)")
    print(f"  initlab compare    {command * 1e3:7.2f} ms the whole command")
    print(f"  idiomatic PyTorch  {base_s * 1e3:7.2f} ms   ratio {base_s / train_s:5.1f}x engine, "
          f"{base_s / command:5.1f}x whole command")  # fmt: skip


def architecture(name: str, args: argparse.Namespace, cores: int) -> None:
    """A CNN, residual MLP or transformer workload: 12 models (:data:`ARCHITECTURE_INITS`, two seeds each)."""
    spec, dataset = ARCHITECTURES[name]
    train = initlab.data.load(dataset, split="train")
    _, engine, acc = initlab_study(dataset, spec, ARCHITECTURE_INITS, 2, 1, args.workers, "float32")
    with general_path():
        _, general, _ = initlab_study(dataset, spec, ARCHITECTURE_INITS, 2, 1, args.workers, "float32",
                                      steps=args.general_steps)  # fmt: skip
    base = idiomatic(spec, train, 1, args.arch_baseline_models, cores)
    print(f"{name} ({spec} on {dataset}, {2 * len(ARCHITECTURE_INITS)} models, batch 128), per model-epoch:")
    print(f"  initlab engine     {engine:7.3f} s training")
    print(f"  general path vmap  {general:7.3f} s (timed over {args.general_steps} steps)   initlab is "
          f"{general / engine:5.2f}x")  # fmt: skip
    print(f"  idiomatic PyTorch  {base:7.3f} s (median of {args.arch_baseline_models} one-epoch runs)   ratio "
          f"{base / engine:5.2f}x engine")  # fmt: skip
    if name == "cnn":
        command = whole_command(dataset, spec, ARCHITECTURE_INITS, 2, 1)
        print(f"  initlab compare    {command:7.3f} s the whole command   ratio {base / command:5.2f}x")
    print("  test accuracy by arm: " + ", ".join(f"{k} {100 * statistics.fmean(v):.1f}" for k, v in acc.items()))


def cuda(args: argparse.Namespace) -> None:
    """The article network's population on the GPU against one model at a time on the same GPU."""
    device = "cuda"
    mnist = initlab.data.load("mnist", split="train")
    name = torch.cuda.get_device_name()
    a = torch.randn(8192, 8192, device=device)
    a @ a
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(5):
        a @ a
    torch.cuda.synchronize()
    peak = 5 * 2 * 8192**3 / (time.perf_counter() - t) / 1e9
    print(f"GPU: {name}, float32 matmul peak (8192^3, TF32 off): {peak:.0f} GFLOP/s")
    for precision in ("float32", "bf16"):
        seeds = max(1, args.gpu_models // len(ARTICLE_INITS))
        _, engine, _ = initlab_study("mnist", "keras-mnist", ARTICLE_INITS, seeds, args.epochs, None, precision,
                                     device=device)  # fmt: skip
        base = idiomatic("keras-mnist", mnist, 2, 2, 1, device=device)
        print(f"  article network, {len(ARTICLE_INITS) * seeds} models, {precision}: population {engine:6.3f} s per "
              f"model-epoch, one model at a time {base:6.3f} s: ratio {base / engine:5.1f}x")  # fmt: skip


def main() -> None:
    keep_freed_memory()  # as the initlab command does at start, before any thread allocates (initlab.malloc)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="article,small,cnn,resmlp,transformer,bf16,cuda",
                        help="comma-separated workloads")  # fmt: skip
    parser.add_argument(
        "--models", type=int, default=24, help="runs in the article workload: its 12 initializers x models/12 seeds"
    )
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: initlab's own)")
    parser.add_argument("--baseline-models", type=int, default=2, help="models the sequential baselines train")
    parser.add_argument("--arch-baseline-models", type=int, default=3,
                        help="models the cnn, resmlp, transformer loops train (one epoch each; median)")  # fmt: skip
    parser.add_argument("--small-runs", type=int, default=48)
    parser.add_argument("--small-epochs", type=int, default=5)
    parser.add_argument("--general-steps", type=int, default=40, help="steps over which the vmap path is timed")
    parser.add_argument("--gpu-models", type=int, default=96, help="models of the GPU population")
    args = parser.parse_args()
    only = set(args.only.split(","))
    cores = os.cpu_count() or 1
    print(f"torch {torch.__version__}, {cpu_name()}, {cores} cores; workloads: {', '.join(sorted(only))}")
    peak = matmul_peak(cores)
    print(f"float32 matmul peak ({cores} threads, 2048^3): {peak:.1f} GFLOP/s")
    if "article" in only:
        article(args, cores, peak)
    if "bf16" in only:
        bf16(args, cores)
    if "small" in only:
        small(args, cores)
    for name in ARCHITECTURES:
        if name in only:
            architecture(name, args, cores)
    if "cuda" in only:
        if torch.cuda.is_available():
            cuda(args)
        else:
            print("cuda: skipped (no GPU on this machine)")


if __name__ == "__main__":
    main()
