"""Running a study: populations in worker processes, every epoch committed to the Store, resumable after a kill.

Flow. The driver (the process that called :func:`run_study`) takes the study folder's lock, opens the Store,
records the config and the runs, and cuts the unfinished runs into shards, one per worker (runs that resume from the
same epoch, seeds kept together so that runs of one seed share their batches). Each worker trains its shard as one
:class:`~initlab.training.Population` and sends one message per epoch; the driver is the only writer of the Store.

Durability. At the end of an epoch a worker first writes each run's checkpoint (parameters, buffers, optimizer
state) atomically to ``checkpoints/<run>/epoch-NNNN.pt``, then sends the epoch's metrics; the driver commits them in
one transaction and only then deletes the run's older checkpoints. So whatever the moment of a kill, the checkpoint
of every run's last committed epoch exists, and a restart continues from it: no epoch is lost or stored twice.

Determinism. The batch order of an epoch is a permutation drawn from ``(seed, epoch)``, dropout masks from
``(shard, epoch)`` and the learning rate is a function of the epoch, so a resumed study reproduces the numbers of an
uninterrupted one with the same number of workers.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import multiprocessing as mp
import os
import queue
import re
import shutil
import signal
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from initlab.checks import check_choice
from initlab.seeding import derive_seed
from initlab.store import EpochRecord, LayerStat, RunSpec, Store, environment_meta, study_lock
from initlab.studies import _components as components
from initlab.studies.spec import Study
from initlab.training import Batch, Population

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"

Executor = Literal["local", "ray"]
#: Where a study's shards run: worker processes on this machine, or tasks on a Ray cluster (``ray_executor.py``).
EXECUTORS: tuple[Executor, ...] = ("local", "ray")


@dataclass(frozen=True)
class ShardRun:
    """One run handed to a worker: where it starts (0 = from initialization)."""

    run_id: str
    arm_index: int
    seed: int
    start_epoch: int


@dataclass
class Event:
    """A message from a worker to the driver."""

    kind: str  # "epoch" | "test" | "diagnostics" | "error" | "done"
    shard: int
    payload: dict[str, Any] = field(default_factory=dict)


def checkpoint_path(out_dir: Path, run_id: str, epoch: int) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id)
    return out_dir / CHECKPOINTS / safe / f"epoch-{epoch:04d}.pt"


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(obj, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def prune_checkpoints(out_dir: Path, run_id: str, keep_epoch: int | None) -> None:
    """Delete a run's checkpoints older than ``keep_epoch`` (all of them if None)."""
    folder = checkpoint_path(out_dir, run_id, 0).parent
    if not folder.exists():
        return
    if keep_epoch is None:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for f in folder.glob("epoch-*.pt"):
        if int(f.stem.split("-")[1]) < keep_epoch:
            f.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------------------------------
# The worker side
# ---------------------------------------------------------------------------------------------------------------------
def _batches(
    x: torch.Tensor, y: torch.Tensor, seeds: Sequence[int], epoch: int, batch_size: int, device: torch.device
) -> Iterator[Batch]:
    """The epoch's batches: one permutation per distinct seed, drawn from (seed, epoch). The runs come in seed order,
    so runs of one seed share their batch: one batch for all when they have one seed, one per seed when each seed
    has the same number of runs, else one per run."""
    n = x.shape[0]
    distinct = list(dict.fromkeys(seeds))
    perms = {
        s: torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(s, "batches", epoch)))
        for s in distinct
    }
    size = len(seeds) // len(distinct)
    grouped = [s for s in distinct for _ in range(size)] == list(seeds)
    rows = distinct if grouped else list(seeds)
    for start in range(0, n, batch_size):
        if len(distinct) == 1:
            idx = perms[distinct[0]][start : start + batch_size]
            yield Batch(x[idx].to(device, non_blocking=True), y[idx].to(device, non_blocking=True))
        else:
            idx = torch.stack([perms[s][start : start + batch_size] for s in rows])
            yield Batch(x[idx].to(device), y[idx].to(device), per_model=True)


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when the driver dies (a SIGKILLed driver must not leave trainers behind)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


#: Samples of the fixed training batch on which runs are diagnosed during a study.
DIAGNOSE_BATCH = 256


def _diagnostics(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """``initlab.diagnose`` of one run on the study's fixed batch, as stored. The timing is left out so that a resumed
    study, which diagnoses the same weights again, stores an identical payload (the Store accepts it as a no-op)."""
    from initlab.diagnostics import diagnose

    payload = diagnose(model, x, targets=y).to_dict()
    payload.pop("seconds", None)
    return payload


def train_shard(
    config: dict[str, Any],
    runs: Sequence[ShardRun],
    out_dir: str,
    shard: int,
    device: str,
    threads: int,
    emit: Callable[[Event], None],
) -> None:
    """Train ``runs`` (all starting at the same epoch) as one population; report through ``emit``."""
    torch.set_num_threads(max(1, threads))
    study = Study.from_config(config)
    settings = study.train
    dev = torch.device(device)
    out = Path(out_dir)
    splits = components.load_splits(study)
    train, val, test = splits
    start = runs[0].start_epoch
    if any(r.start_epoch != start for r in runs):
        raise ValueError("a shard's runs must resume from the same epoch.")
    models = []
    for r in runs:
        model = components.build_model(study, train)
        if start == 0:
            arm = study.arms[r.arm_index]
            sample = train.x[torch.randperm(train.x.shape[0], generator=torch.Generator().manual_seed(r.seed))[:256]]
            components.initialize(model, arm.scheme, seed=r.seed, data=sample)
        models.append(model)
    # One fixed batch for every run and epoch, so that diagnoses compare across arms, seeds and epochs.
    diag_idx = torch.randperm(train.x.shape[0], generator=torch.Generator().manual_seed(0))[:DIAGNOSE_BATCH]
    diag_x, diag_y = train.x[diag_idx], train.y[diag_idx]
    if start == 0 and 0 in study.diagnose_epochs:
        for r, model in zip(runs, models, strict=True):
            emit(
                Event(
                    "diagnostics", shard, {"run_id": r.run_id, "epoch": 0, "data": _diagnostics(model, diag_x, diag_y)}
                )
            )
    pop = Population(models, settings, device=dev)
    if start > 0:
        states = []
        for r in runs:
            path = checkpoint_path(out, r.run_id, start)
            if not path.exists():
                raise FileNotFoundError(
                    f"run {r.run_id} finished epoch {start} but its checkpoint {path} is missing; delete the study "
                    "folder to start over."
                )
            states.append(torch.load(path, map_location="cpu", weights_only=True))
        pop.load_run_states(states)
    live = list(runs)
    total = settings.total_epochs(train.x.shape[0])
    steps_done = start * math.ceil(train.x.shape[0] / settings.batch_size)
    x_train, y_train = train.x, train.y
    for epoch in range(start + 1, total + 1):
        t0 = time.perf_counter()
        lr = settings.lr_at(epoch, total)
        for g in pop.optimizer.param_groups:
            g["lr"] = lr
        pop.reseed(derive_seed(live[0].seed, "dropout", epoch, *[r.run_id for r in live]))
        max_steps = None if settings.steps is None else settings.steps - steps_done
        stats, steps = pop.train_epoch(
            _batches(x_train, y_train, [r.seed for r in live], epoch, settings.batch_size, dev), max_steps=max_steps
        )
        steps_done += steps
        train_time = time.perf_counter() - t0
        val_loss, val_acc = pop.evaluate(val.x, val.y)
        train_loss, train_acc = stats.train_loss(), stats.train_acc()
        weight_norms, grad_norms = pop.weight_norms(), stats.grad_norms()
        wall = time.perf_counter() - t0
        rows, diverged, keep = [], [], []
        for i, r in enumerate(live):
            if not settings.diverged(train_loss[i], val_loss[i]):
                _atomic_save({**pop.run_state(i), "epoch": epoch}, checkpoint_path(out, r.run_id, epoch))
                keep.append(i)
            else:
                diverged.append(r.run_id)
            layers = [LayerStat(name, weight_norms[name][i], grad_norms[name][i]) for name in weight_norms]
            rows.append(
                EpochRecord(
                    r.run_id,
                    epoch,
                    train_loss[i],
                    train_acc[i],
                    val_loss[i],
                    val_acc[i],
                    wall / len(live),
                    layers,
                    # Each run's share of the population's time: the whole epoch, and its training steps alone.
                    extra={"train_time_s": train_time / len(live)},
                )
            )
        if epoch in study.diagnose_epochs:
            # Before the epoch is reported, so that a kill cannot leave a committed epoch without its diagnosis.
            for i, r in enumerate(live):
                if r.run_id not in diverged:
                    model = pop.export(i, components.build_model(study, train))
                    emit(Event("diagnostics", shard, {"run_id": r.run_id, "epoch": epoch,
                                                      "data": _diagnostics(model, diag_x, diag_y)}))  # fmt: skip
        emit(Event("epoch", shard, {"rows": rows, "diverged": diverged, "epoch": epoch}))
        if len(keep) < len(live):
            live = [live[i] for i in keep]
            if not live:
                break
            pop.keep(keep)
    if live:
        t0 = time.perf_counter()
        test_loss, test_acc = pop.evaluate(test.x, test.y)
        wall = time.perf_counter() - t0
        for i, r in enumerate(live):
            emit(
                Event(
                    "test",
                    shard,
                    {"run_id": r.run_id, "metrics": {"test_loss": test_loss[i], "test_acc": test_acc[i]}, "wall": wall},
                )
            )


def _worker_main(
    config: dict[str, Any],
    runs: Sequence[ShardRun],
    out_dir: str,
    shard: int,
    device: str,
    threads: int,
    events: mp.Queue,
) -> None:
    _die_with_parent()
    try:
        train_shard(config, runs, out_dir, shard, device, threads, events.put)
        events.put(Event("done", shard))
    except BaseException as exc:  # report every failure to the driver, which marks the shard's runs
        events.put(Event("error", shard, {"message": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}))


# ---------------------------------------------------------------------------------------------------------------------
# The driver side
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class Progress:
    """What the driver reports to a progress callback after every event."""

    total_epochs: int
    done_epochs: int = 0
    finished_runs: int = 0
    diverged_runs: int = 0
    failed_runs: int = 0
    total_runs: int = 0
    message: str = ""


def plan_shards(all_runs: Sequence[ShardRun], pending: Sequence[ShardRun], workers: int) -> list[list[ShardRun]]:
    """Cut the study into at most ``workers`` shards, then keep each shard's pending runs.

    The shards are planned over *all* runs of the study (in seed order, near-equal sizes), not over the pending ones,
    so a resumed study trains the same populations as an uninterrupted one and reproduces its numbers bit for bit
    (the summation order of a stacked matrix product depends on the population). A shard's runs are committed
    together, so they resume from the same epoch; should they not, the shard is split by start epoch.
    """
    ordered = sorted(all_runs, key=lambda r: (r.seed, r.arm_index))
    k = max(1, min(workers, len(ordered)))
    size = math.ceil(len(ordered) / k)
    by_id = {r.run_id: r for r in pending}
    shards: list[list[ShardRun]] = []
    for i in range(0, len(ordered), size):
        mine = [by_id[r.run_id] for r in ordered[i : i + size] if r.run_id in by_id]
        for epoch in sorted({r.start_epoch for r in mine}):
            shards.append([r for r in mine if r.start_epoch == epoch])
    return shards


def default_workers(num_runs: int) -> int:
    """One worker per core (each with one thread), but no more workers than runs."""
    return max(1, min(os.cpu_count() or 1, num_runs))


def run_study(
    study: Study,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    device: str = "cpu",
    on_progress: Callable[[Progress], None] | None = None,
    executor: Executor = "local",
    address: str | None = None,
) -> Path:
    """Run (or resume) ``study`` in ``out_dir``; return the folder. Finished runs are never repeated.

    ``executor="local"`` trains the shards in worker processes on this machine; ``executor="ray"`` runs each shard
    as a task on the Ray cluster at ``address`` (``"auto"``, ``"ray://host:10001"``; None connects to the cluster
    this process already joined, or starts a local one) while this process stays the Store's only writer. Either
    executor resumes a study that the other started.
    """
    executor = check_choice("executor", executor, EXECUTORS)
    if address is not None and executor != "ray":
        raise ValueError(f"address={address!r} only goes with executor='ray'.")
    if executor == "ray":
        # Imported here so that initlab works without Ray; fails at once, naming the extra, when Ray is missing.
        from initlab.studies import ray_executor
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    components.validate(study)
    with study_lock(out), Store.in_dir(out) as store:
        store.init_study(study.name, study.config(), meta=environment_meta(device=device))
        run_list = study.run_ids()
        store.add_runs([RunSpec(rid, arm.label, _scheme_config(arm.scheme), seed) for rid, arm, seed in run_list])
        records = {r.run_id: r for r in store.runs()}
        arm_index = {arm.label: i for i, arm in enumerate(study.arms)}
        all_runs = [ShardRun(rid, arm_index[arm.label], seed, records[rid].last_epoch) for rid, arm, seed in run_list]
        pending = [r for r in all_runs if records[r.run_id].status not in ("finished", "diverged")]
        total_epochs = study.train.total_epochs(components.train_size(study))
        progress = Progress(total_epochs=total_epochs * len(run_list), total_runs=len(run_list))
        for r in records.values():
            progress.done_epochs += total_epochs if r.status in ("finished", "diverged") else r.last_epoch
            progress.finished_runs += r.status == "finished"
            progress.diverged_runs += r.status == "diverged"
        if on_progress:
            on_progress(progress)
        if not pending:
            return out
        store.mark_study(started=True)
        if executor == "ray":
            ray_executor.drive(
                study,
                out,
                store,
                all_runs,
                pending,
                workers=workers,
                device=device,
                progress=progress,
                on_progress=on_progress,
                address=address,
            )
        else:
            n_workers = workers or default_workers(len(run_list))
            shards = plan_shards(all_runs, pending, n_workers)
            # Threads per worker follow from the study's worker count, not from what is left to do: the thread
            # count changes the blocking of matrix products, and a resumed study must reproduce the same numbers.
            threads = max(1, (os.cpu_count() or 1) // n_workers) if device == "cpu" else 1
            _drive(study, out, store, shards, device, threads, progress, on_progress, in_process=n_workers == 1)
        if all(r.status in ("finished", "diverged") for r in store.runs()):
            store.mark_study(finished=True)
    return out


def _scheme_config(scheme: Any) -> dict[str, Any]:
    return scheme if isinstance(scheme, dict) else {"name": scheme}


def _handle(
    event: Event, store: Store, out: Path, shards: list[list[ShardRun]], progress: Progress, pending_shards: set[int]
) -> None:
    if event.kind == "epoch":
        rows: list[EpochRecord] = event.payload["rows"]
        store.record_epochs(rows)
        for run_id in event.payload["diverged"]:
            store.set_status(
                run_id,
                "diverged",
                diverged_epoch=event.payload["epoch"],
                message=f"loss non-finite or above max_loss in epoch {event.payload['epoch']}",
            )
            prune_checkpoints(out, run_id, None)
            progress.diverged_runs += 1
        for row in rows:
            if row.run_id not in event.payload["diverged"]:
                prune_checkpoints(out, row.run_id, row.epoch)
        progress.done_epochs += len(rows)
    elif event.kind == "test":
        store.record_test(event.payload["run_id"], event.payload["metrics"], wall_time_s=event.payload["wall"])
        prune_checkpoints(out, event.payload["run_id"], None)
        progress.finished_runs += 1
    elif event.kind == "diagnostics":
        store.record_diagnostics(event.payload["run_id"], event.payload["epoch"], event.payload["data"])
    elif event.kind == "error":
        log.error("shard %d failed: %s\n%s", event.shard, event.payload["message"], event.payload["trace"])
        for r in shards[event.shard]:
            rec = next(x for x in store.runs() if x.run_id == r.run_id)
            if rec.status not in ("finished", "diverged"):
                store.set_status(r.run_id, "failed", message=event.payload["message"])
                progress.failed_runs += 1
        progress.message = event.payload["message"]
        pending_shards.discard(event.shard)
    elif event.kind == "done":
        pending_shards.discard(event.shard)


def _drive(
    study: Study,
    out: Path,
    store: Store,
    shards: list[list[ShardRun]],
    device: str,
    threads: int,
    progress: Progress,
    on_progress: Callable[[Progress], None] | None,
    *,
    in_process: bool,
) -> None:
    pending_shards = set(range(len(shards)))
    config = study.config()

    def handle(event: Event) -> None:
        _handle(event, store, out, shards, progress, pending_shards)
        if on_progress:
            on_progress(progress)

    if in_process:
        # One shard in this process; fork_rng keeps the caller's global RNG state as it was.
        with torch.random.fork_rng():
            saved_threads = torch.get_num_threads()
            try:
                for i, shard in enumerate(shards):
                    try:
                        train_shard(config, shard, str(out), i, device, threads, handle)
                        handle(Event("done", i))
                    except Exception as exc:
                        handle(
                            Event(
                                "error", i, {"message": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
                            )
                        )
            finally:
                torch.set_num_threads(saved_threads)
        return
    ctx = mp.get_context("spawn")
    events: mp.Queue = ctx.Queue()
    procs = [
        ctx.Process(target=_worker_main, args=(config, shard, str(out), i, device, threads, events), daemon=True)
        for i, shard in enumerate(shards)
    ]
    for p in procs:
        p.start()
    try:
        while pending_shards:
            try:
                handle(events.get(timeout=0.5))
            except queue.Empty:
                for i, p in enumerate(procs):
                    if i in pending_shards and not p.is_alive() and p.exitcode not in (0, None):
                        # Killed without a word (out of memory, a signal): drain, then mark the shard failed.
                        with contextlib.suppress(queue.Empty):
                            while True:
                                handle(events.get(timeout=0.2))
                        if i in pending_shards:
                            handle(
                                Event("error", i, {"message": f"worker {i} died (exit code {p.exitcode})", "trace": ""})
                            )
    finally:
        for p in procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
