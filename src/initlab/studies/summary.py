"""The ranked table of a study's arms, computed from its Store.

For each arm, over its seeds: final test accuracy and loss as mean ± sample standard deviation with a 95% interval
(Student's t, n - 1 degrees of freedom), the mean number of epochs until validation accuracy first reaches the
target (over the runs that reach it), and how many runs diverged. Arms are ranked by mean test accuracy (regression
targets, whose accuracy is undefined: by mean test loss, lowest first); diverged
runs have no test metrics and count in ``diverged``, not in the mean.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from initlab.store import Store
from initlab.studies.spec import Study

# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom (scipy.stats.t.ppf(0.975, df)); beyond 30 the
# normal quantile 1.96 is within 2%.
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


def t975(df: int) -> float:
    """The 97.5% quantile of Student's t with ``df`` degrees of freedom."""
    return _T975[df - 1] if 1 <= df <= len(_T975) else 1.96


@dataclass(frozen=True)
class Stat:
    """Mean, sample standard deviation, 95% half-width and count of a set of values (NaN where undefined)."""

    mean: float
    std: float
    ci95: float
    n: int

    @classmethod
    def of(cls, values: list[float | None]) -> Stat:
        """The statistics of the defined values (None and NaN, e.g. a regression run's accuracy, are left out)."""
        values = [v for v in values if v is not None and not math.isnan(v)]
        n = len(values)
        if n == 0:
            return cls(math.nan, math.nan, math.nan, 0)
        mean = statistics.fmean(values)
        if n == 1:
            return cls(mean, math.nan, math.nan, 1)
        std = statistics.stdev(values)
        return cls(mean, std, t975(n - 1) * std / math.sqrt(n), n)

    def text(self, scale: float = 1.0, digits: int = 2) -> str:
        if self.n == 0:
            return "-"
        if self.n == 1 or math.isnan(self.std):
            return f"{self.mean * scale:.{digits}f}"
        return f"{self.mean * scale:.{digits}f} ± {self.std * scale:.{digits}f}"


@dataclass(frozen=True)
class ArmSummary:
    """One row of the ranked table."""

    rank: int
    arm: str
    runs: int
    finished: int
    diverged: int
    failed: int
    test_acc: Stat
    test_loss: Stat
    epochs_to_target: Stat
    reached_target: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def configuration_labels(config: Mapping[str, Any]) -> list[str]:
    """The rows of a study's table, in its order: its arms, or with a sweep every arm at every grid point."""
    if config.get("sweep"):
        return Study.from_config(config).labels()
    return [a["label"] for a in config["arms"]]


def best_per_arm(config: Mapping[str, Any], rows: list[ArmSummary]) -> dict[str, ArmSummary]:
    """For a sweep, each arm's best configuration: its row with the highest mean test accuracy (rows as ranked by
    :func:`summarize`); arms with no finished run are left out."""
    study = Study.from_config(config)
    arm_of = {r.label: study.arms[r.arm_index].label for r in study.runs()}
    best: dict[str, ArmSummary] = {}
    for row in rows:
        arm = arm_of.get(row.arm)
        if arm is not None and arm not in best and row.test_acc.n:
            best[arm] = row
    return best


def _order(row: Mapping[str, Any]) -> tuple[int, float, str]:
    """Rows with a test accuracy first, best first; then (regression: accuracy is undefined) by test loss, lowest
    first; rows without a finished run last."""
    acc, loss = row["test_acc"], row["test_loss"]
    if acc.n and not math.isnan(acc.mean):
        return (0, -acc.mean, row["arm"])
    if loss.n and not math.isnan(loss.mean):
        return (1, loss.mean, row["arm"])
    return (2, 0.0, row["arm"])


def summarize(store: Store, *, target_accuracy: float | None = None) -> list[ArmSummary]:
    """The ranked arms of the study in ``store`` (see the module docstring)."""
    study = store.study()
    target = target_accuracy if target_accuracy is not None else study.config["train"]["target_accuracy"]
    arm_order = configuration_labels(study.config)
    runs = store.runs()
    epochs_by_run: dict[str, list[Any]] = {}
    for e in store.epochs():
        epochs_by_run.setdefault(e.run_id, []).append(e)
    rows = []
    for arm in arm_order:
        mine = [r for r in runs if r.arm == arm]
        tests = [r.test_metrics for r in mine if r.status == "finished" and r.test_metrics]
        to_target = []
        for r in mine:
            hit = next(
                (
                    e.epoch
                    for e in sorted(epochs_by_run.get(r.run_id, []), key=lambda e: e.epoch)
                    if e.val_acc is not None and e.val_acc >= target
                ),
                None,
            )
            if hit is not None:
                to_target.append(float(hit))
        rows.append(
            dict(
                arm=arm,
                runs=len(mine),
                finished=sum(r.status == "finished" for r in mine),
                diverged=sum(r.status == "diverged" for r in mine),
                failed=sum(r.status == "failed" for r in mine),
                test_acc=Stat.of([t["test_acc"] for t in tests]),
                test_loss=Stat.of([t["test_loss"] for t in tests]),
                epochs_to_target=Stat.of(to_target),
                reached_target=len(to_target),
            )
        )
    rows.sort(key=_order)
    return [ArmSummary(rank=i + 1, **r) for i, r in enumerate(rows)]
