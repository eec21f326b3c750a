"""The records the Store takes and returns: a study, a run's spec and state, an epoch and its layer statistics.

They are frozen dataclasses with no behaviour, so that a runner, a report and a test can build and compare them without
a database; :mod:`initlab.store.database` validates them when they are written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

__all__ = [
    "EPOCH_FLOATS",
    "EPOCH_OPTIONAL",
    "RUN_STATUSES",
    "EpochRecord",
    "LayerStat",
    "RunRecord",
    "RunSpec",
    "RunStatus",
    "StudyRecord",
]

RunStatus = Literal["pending", "running", "finished", "diverged", "failed"]
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)

# The float metrics of an EpochRecord, in column order; the validation ones are None when a study has no validation.
EPOCH_FLOATS = ("train_loss", "train_acc", "val_loss", "val_acc")
EPOCH_OPTIONAL = frozenset({"val_loss", "val_acc"})


@dataclass(frozen=True)
class StudyRecord:
    """The study row. Timestamps are UTC ISO 8601 strings; ``duration_s`` spans first start to last finish."""

    name: str
    config: dict[str, Any]
    # Where and with what it ran: initlab/torch/python versions, machine, CPU, hostname, device (environment_meta()).
    meta: dict[str, Any]
    created_at: str
    started_at: str | None
    finished_at: str | None
    duration_s: float | None


@dataclass(frozen=True)
class RunSpec:
    """What a run is: an arm (a labelled scheme) trained with one seed."""

    run_id: str  # unique in the study, e.g. "glorot_uniform/s0"
    arm: str  # the arm's label, shared by its seeds
    scheme: dict[str, Any]  # the arm's JSON-serializable config, so the run can be re-created from the record
    seed: int


@dataclass(frozen=True)
class RunRecord:
    """A run as stored: its spec and its progress."""

    run_id: str
    arm: str
    scheme: dict[str, Any]
    seed: int
    status: RunStatus
    last_epoch: int  # the highest epoch stored; 0 before the first
    diverged_epoch: int | None
    message: str | None  # why it failed or diverged, in words
    test_metrics: dict[str, float] | None  # None until record_test
    wall_time_s: float | None  # the whole run's wall time, from record_test
    attempts: int  # retries recorded with bump_attempts


@dataclass(frozen=True)
class LayerStat:
    """Norms of one layer's weight and of its gradient at the end of an epoch (NaN or inf when diverged)."""

    name: str
    weight_norm: float
    grad_norm: float | None  # None when the layer had no gradient


@dataclass(frozen=True)
class EpochRecord:
    """One run's metrics after one epoch. Losses and accuracies may be NaN or inf (a diverged run)."""

    run_id: str
    epoch: int  # 1-based
    train_loss: float
    train_acc: float
    val_loss: float | None  # None when the study has no validation split
    val_acc: float | None
    wall_time_s: float  # this epoch's wall time; not compared when a stored epoch is written again
    layers: Sequence[LayerStat] = field(default_factory=list)
    extra: Mapping[str, float] = field(default_factory=dict)
