"""What a shard reports while it trains: typed, frozen messages from a worker (or a Ray task) to the driver.

A shard is trained where the executor puts it (this process, a worker process, a Ray task) and reports through an
``emit`` callback; the driver applies every event to the Store in order (:mod:`initlab.studies.sink`). The events are
plain picklable dataclasses, so they cross a ``multiprocessing`` queue and a Ray queue unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from initlab.store import EpochRecord


@dataclass(frozen=True)
class ShardStarted:
    """The shard started in process ``pid`` on ``host`` (sent by Ray tasks: the driver does not place them)."""

    shard: int
    pid: int
    host: str


@dataclass(frozen=True)
class EpochDone:
    """One epoch of every live run of the shard: their metrics, and the runs that diverged in it."""

    shard: int
    epoch: int
    rows: tuple[EpochRecord, ...]
    diverged: tuple[str, ...] = ()
    # Run id to the SHA-256 of the checkpoint it wrote after this epoch (the runs that did not diverge).
    checksums: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Diagnosed:
    """``initlab.diagnose`` of one run after ``epoch`` (0: at initialization), as stored."""

    shard: int
    run_id: str
    epoch: int
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TestDone:
    """A finished run's test metrics; the run is complete."""

    __test__ = False  # not a pytest test class, whatever its name

    shard: int
    run_id: str
    metrics: Mapping[str, float]
    wall_time_s: float


@dataclass(frozen=True)
class ShardFailed:
    """The shard stopped with an error; its unfinished runs are marked failed with ``message``."""

    shard: int
    message: str
    trace: str = ""


@dataclass(frozen=True)
class ShardDone:
    """The shard ended normally: every one of its runs finished or diverged."""

    shard: int


Event = ShardStarted | EpochDone | Diagnosed | TestDone | ShardFailed | ShardDone
Emit = Callable[[Event], None]
