"""Training one shard: a population of runs that start from the same epoch, reported event by event.

:func:`run_shard` is what every executor calls, in this process, in a worker process or in a Ray task: it trains
the shard and always ends with exactly one :class:`~initlab.studies.events.ShardDone` or
:class:`~initlab.studies.events.ShardFailed`. The shard never writes the Store; it saves each run's checkpoint
before it reports the epoch (see :mod:`initlab.studies.checkpoints`).

Determinism. The batch order of an epoch is a permutation drawn from ``(seed, "batches", epoch)``, the dropout masks
from ``(first run's seed, "dropout", epoch, run ids)``, and the learning rate is a function of the epoch, so a resumed
shard reproduces the numbers of an uninterrupted one.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from initlab.malloc import keep_freed_memory
from initlab.seeding import derive_seed
from initlab.store import EpochRecord, LayerStat
from initlab.studies import build, checkpoints, sweep
from initlab.studies.events import Diagnosed, Emit, EpochDone, ShardDone, ShardFailed, TestDone
from initlab.studies.spec import Study
from initlab.training import Batch, Population

#: Samples of the fixed training batch on which runs are diagnosed during a study.
DIAGNOSE_BATCH = 256


@dataclass(frozen=True)
class ShardRun:
    """One run handed to a shard: where it starts (0 = from initialization)."""

    run_id: str
    arm_index: int
    seed: int
    start_epoch: int
    point_index: int = 0  # the run's grid point in Study.points() (0 without a sweep)


@dataclass(frozen=True)
class ShardTask:
    """Everything a shard needs, picklable for a worker process or a Ray task."""

    study: Study
    runs: tuple[ShardRun, ...]
    out_dir: Path
    shard: int
    device: str
    threads: int
    #: The study's splits as the driver loaded them (None: the shard loads them, as a Ray task on another machine).
    splits: build.Splits | None = None


def run_shard(task: ShardTask, emit: Emit) -> None:
    """Train ``task`` and report through ``emit``, ending with ShardDone, or ShardFailed naming the error."""
    try:
        train_shard(task, emit)
    except Exception as exc:  # reported to the driver, which marks the shard's unfinished runs failed
        emit(ShardFailed(task.shard, f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    else:
        emit(ShardDone(task.shard))


def batches(
    x: torch.Tensor, y: torch.Tensor, seeds: Sequence[int], epoch: int, batch_size: int, device: torch.device
) -> Iterator[Batch]:
    """The epoch's batches: one permutation per distinct seed, drawn from (seed, epoch). The runs come in seed order,
    so runs of one seed share their batch: one batch for all when they have one seed, one per seed when each seed
    has the same number of runs, else one per run. Data resident on a GPU is gathered there (the permutation, drawn
    on the CPU so that it is the same everywhere, is copied over once per epoch)."""
    n = x.shape[0]
    distinct = list(dict.fromkeys(seeds))
    perms = {
        s: torch.randperm(n, generator=torch.Generator().manual_seed(derive_seed(s, "batches", epoch))).to(x.device)
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


def diagnosis(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """``initlab.diagnose`` of one run on the study's fixed batch, as stored. The timing is left out so that a resumed
    study, which diagnoses the same weights again, stores an identical payload (the Store accepts it as a no-op)."""
    from initlab.diagnostics import diagnose

    payload = diagnose(model, x, targets=y).to_dict()
    payload.pop("seconds", None)
    return payload


def train_shard(task: ShardTask, emit: Emit) -> None:
    """Train the shard's runs (all starting at the same epoch) as one population; report through ``emit``."""
    torch.set_num_threads(max(1, task.threads))
    if torch.device(task.device).type == "cpu":
        keep_freed_memory()
    if any(r.start_epoch != task.runs[0].start_epoch for r in task.runs):
        raise ValueError("a shard's runs must resume from the same epoch.")
    _Trainer(task, emit).run()


class _Trainer:
    """The state of one shard while it trains: data, the population, the runs still live."""

    def __init__(self, task: ShardTask, emit: Emit) -> None:
        self.task, self.emit, self.study = task, emit, task.study
        self.points = task.study.points()
        # Every run of a population shares its architecture and its settings but the learning rate and the scale.
        self.point = self.points[task.runs[0].point_index]
        self.settings = task.study.settings_for(self.point)
        # Which population this is, recorded with every epoch of a sweep (Study.population_indices).
        populations = task.study.population_indices() if task.study.sweep else []
        self.extra = {"population": populations[task.runs[0].point_index]} if populations else {}
        self.device = torch.device(task.device)
        self.train, self.val, self.test = task.splits or build.load_splits(task.study)
        # On a GPU the three splits live on the device for the whole shard: batches are gathered and evaluated there,
        # with no copy from the host per step.
        self.resident = {
            name: (split.x.to(self.device), split.y.to(self.device))
            for name, split in (("train", self.train), ("val", self.val), ("test", self.test))
        }
        self.start = task.runs[0].start_epoch
        self.live = list(task.runs)
        # Checkpoints are written in the background (see epoch); the epoch they belong to waits in ``pending``.
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="initlab-checkpoints")
        self.pending: tuple[Future[dict[str, str]], int, tuple[EpochRecord, ...], tuple[str, ...]] | None = None
        # Each run's per-parameter learning-rate multipliers (its arm's parametrization; all 1 for the standard one).
        self.multipliers: dict[str, dict[str, float]] = {}
        self.total = self.settings.total_epochs(self.train.x.shape[0])
        # One fixed batch for every run and epoch, so that diagnoses compare across arms, seeds and epochs.
        pick = torch.randperm(self.train.x.shape[0], generator=torch.Generator().manual_seed(0))[:DIAGNOSE_BATCH]
        self.diag_x, self.diag_y = self.train.x[pick], self.train.y[pick]

    def model(self) -> torch.nn.Module:
        return build.build_model(self.study, self.train.input_shape, build.outputs(self.train), self.point)

    def run(self) -> None:
        models = []
        for r in self.live:  # built and initialized in turn: building a model draws from torch's global RNG
            model = self.model()
            arm, point = self.study.arms[r.arm_index], self.points[r.point_index]
            shape, classes = self.train.input_shape, build.outputs(self.train)
            param = build.parametrization(self.study, arm, model, shape, classes, point)
            self.multipliers[r.run_id] = param.lr_multipliers(self.settings.optimizer)
            if self.start == 0:
                sample = build.init_sample(self.train.x, r.seed)
                scale = sweep.scale_for(point)
                build.initialize(model, arm.scheme, seed=r.seed, sample=sample, scale=scale, parametrization=param)
            models.append(model)
        if self.start == 0 and 0 in self.study.diagnose_epochs:
            for r, model in zip(self.live, models, strict=True):
                self.emit(Diagnosed(self.task.shard, r.run_id, 0, diagnosis(model, self.diag_x, self.diag_y)))
        self.pop = Population(models, self.settings, device=self.device)
        if self.start > 0:
            self.pop.load_run_states([checkpoints.load(self.task.out_dir, r.run_id, self.start) for r in self.live])
        steps_done = self.start * math.ceil(self.train.x.shape[0] / self.settings.batch_size)
        try:
            for epoch in range(self.start + 1, self.total + 1):
                steps_done += self.epoch(epoch, steps_done)
                if not self.live:
                    break
        finally:  # an epoch whose checkpoints are written is reported, also when the next one fails
            self._report_pending()
            self.writer.shutdown()
        if self.live:
            self.finish()

    def _report_pending(self) -> None:
        """Wait for the last epoch's checkpoints, then report that epoch (EpochDone with their checksums)."""
        if self.pending is None:
            return
        saving, epoch, rows, diverged = self.pending
        self.pending = None
        self.emit(EpochDone(self.task.shard, epoch, rows, diverged, saving.result()))

    def _save(self, epoch: int, states: dict[str, dict[str, Any]]) -> dict[str, str]:
        """Write the runs' checkpoints after ``epoch``; their SHA-256 by run id."""
        return {run_id: checkpoints.save(self.task.out_dir, run_id, epoch, state) for run_id, state in states.items()}

    def epoch(self, epoch: int, steps_done: int) -> int:
        """Train, evaluate, checkpoint and report one epoch; drop the runs that diverged. Returns the steps taken."""
        t0 = time.perf_counter()
        rates = [self.study.settings_for(self.points[r.point_index]).lr_at(epoch, self.total) for r in self.live]
        self.pop.set_lr(rates, multipliers=[self.multipliers[r.run_id] for r in self.live])
        self.pop.reseed(derive_seed(self.live[0].seed, "dropout", epoch, *[r.run_id for r in self.live]))
        max_steps = None if self.settings.steps is None else self.settings.steps - steps_done
        seeds = [r.seed for r in self.live]
        data = batches(*self.resident["train"], seeds, epoch, self.settings.batch_size, self.device)
        stats, steps = self.pop.train_epoch(data, max_steps=max_steps)
        train_time = time.perf_counter() - t0
        val_loss, val_acc = self.pop.evaluate(*self.resident["val"])
        train_loss, train_acc = stats.train_loss(), stats.train_acc()
        weight_norms, grad_norms = self.pop.weight_norms(), stats.grad_norms()
        wall = time.perf_counter() - t0
        self._report_pending()
        rows, diverged, keep, states = [], [], [], {}
        for i, r in enumerate(self.live):
            if self.settings.diverged(train_loss[i], val_loss[i]):
                diverged.append(r.run_id)
            else:
                states[r.run_id] = self.pop.run_state(i)  # copies: the next epoch trains on while they are written
                keep.append(i)
            layers = [LayerStat(name, weight_norms[name][i], grad_norms[name][i]) for name in weight_norms]
            # Each run's share of the population's time: the whole epoch, and its training steps alone.
            share = len(self.live)
            extra = {"train_time_s": train_time / share, **self.extra}
            rows.append(EpochRecord(r.run_id, epoch, train_loss[i], train_acc[i], val_loss[i], val_acc[i],
                                    wall / share, layers, extra=extra))  # fmt: skip
        if epoch in self.study.diagnose_epochs:
            # Before the epoch is reported, so that a kill cannot leave a committed epoch without its diagnosis.
            for i in keep:
                model = self.pop.export(i, self.model())
                run_id = self.live[i].run_id
                self.emit(Diagnosed(self.task.shard, run_id, epoch, diagnosis(model, self.diag_x, self.diag_y)))
        # The checkpoints are written by a background thread while the next epoch trains; the epoch is reported once
        # they are on disk (before anything of the next epoch is), so a kill loses at most the epochs in flight.
        self.pending = (self.writer.submit(self._save, epoch, states), epoch, tuple(rows), tuple(diverged))
        if len(keep) < len(self.live):
            self.live = [self.live[i] for i in keep]
            if self.live:
                self.pop.keep(keep)
        return steps

    def finish(self) -> None:
        """Evaluate the runs that are left on the test split and report them complete."""
        t0 = time.perf_counter()
        test_loss, test_acc = self.pop.evaluate(*self.resident["test"])
        wall = time.perf_counter() - t0
        for i, r in enumerate(self.live):
            metrics = {"test_loss": test_loss[i], "test_acc": test_acc[i]}
            self.emit(TestDone(self.task.shard, r.run_id, metrics, wall))
