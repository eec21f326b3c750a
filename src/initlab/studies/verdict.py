"""The verdict on a study: which configurations are best, which cannot be told apart from the best, which failed.

**The test.** Arms of one seed share their batches and data order, so a configuration is compared with the best by
the *paired* differences of their test metric over the seeds that both finished, ``d_s = m_best(s) - m_arm(s)``:
Student's paired t-test, ``t = mean(d) / (sd(d) / sqrt(n))`` with ``n - 1`` degrees of freedom, two-sided
(``scipy.stats.ttest_rel``). The p-values of all comparisons with the best are corrected for multiple comparisons
by Holm's step-down method (Holm 1979): sorted ascending, ``p_(i)`` becomes ``max_{j<=i} min(1, (k - j + 1) p_(j))``
for ``k`` comparisons. A configuration is *indistinguishable* from the best when its corrected p-value is at least
:data:`ALPHA`, or when no test is possible: fewer than two paired seeds, or the same non-zero difference on every
seed, where the t statistic is undefined (the verdict says which).

**The metric** is test accuracy, or test loss for regression studies (whose accuracy is undefined), as in the
ranked table (:mod:`initlab.studies.summary`).

**Seeds needed.** For the top two configurations, the smallest ``n`` with ``t_{0.975, n-1} sd(d) / sqrt(n) <
|mean(d)|``: the seeds at which a paired 95% interval of the observed mean difference at the observed spread would
exclude zero (``None`` when the difference is zero, or more than :data:`MAX_SEEDS` would be needed).

**Failures.** A configuration failed when some of its runs diverged or failed; the initial diagnosis of each run
(:func:`initlab.diagnose` at epoch 0, stored with the study) adds why in words: symmetry not broken, saturation,
vanishing or exploding signal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from initlab.store import Store
from initlab.studies.summary import ArmSummary, summarize

#: Significance level of the paired comparisons, after Holm's correction.
ALPHA = 0.05
#: The largest number of seeds :func:`seeds_needed` reports.
MAX_SEEDS = 1000
TEST_NAME = "paired t-test over seeds (two-sided), Holm-corrected for multiple comparisons, α = 0.05"


@dataclass(frozen=True)
class Comparison:
    """One configuration against the best: the paired seeds, the mean difference (best minus this one) and the
    Holm-corrected p-value (None without two paired seeds)."""

    arm: str
    seeds: int
    mean_difference: float
    p_value: float | None
    p_adjusted: float | None

    @property
    def indistinguishable(self) -> bool:
        """True when the test cannot separate this configuration from the best (or no test was possible)."""
        return self.p_adjusted is None or self.p_adjusted >= ALPHA


@dataclass(frozen=True)
class Verdict:
    """The verdict on a study (see the module docstring)."""

    metric: str  # "test_acc" or "test_loss"
    best: str | None
    comparisons: tuple[Comparison, ...]
    failed: Mapping[str, str]  # configuration -> why, in words
    seeds_needed: int | None  # to separate the top two; None when it cannot be estimated
    top_two: tuple[str, str] | None
    test: str = TEST_NAME
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def tied_with_best(self) -> list[str]:
        """The configurations the test cannot tell from the best, in ranked order."""
        return [c.arm for c in self.comparisons if c.indistinguishable]

    @property
    def different(self) -> list[str]:
        """The configurations that are worse than the best, by the test."""
        return [c.arm for c in self.comparisons if not c.indistinguishable]

    def sentences(self) -> list[str]:
        """The verdict in plain words, one sentence a line."""
        if self.best is None:
            return ["No run finished, so there is no verdict yet."]
        what = "test accuracy" if self.metric == "test_acc" else "test loss"
        out = [f"Best by mean {what}: {self.best}."]
        untested = [c.arm for c in self.comparisons if c.p_adjusted is None]
        tied = [a for a in self.tied_with_best if a not in untested]
        if tied:
            out.append(f"Statistically indistinguishable from it: {', '.join(tied)} ({self.test}).")
        elif self.comparisons and not untested:
            out.append(f"Every other configuration is worse by the {self.test}.")
        if untested:
            why = "fewer than two paired seeds, or the same difference on every seed"
            out.append(f"Not testable ({why}): {', '.join(untested)}.")
        if self.top_two is not None:
            a, b = self.top_two
            if self.seeds_needed is None:
                out.append(f"No number of seeds up to {MAX_SEEDS} would separate {a} from {b} at the observed spread.")
            else:
                n = self.seeds_needed
                out.append(f"About {n} seeds would separate {a} from {b} at the observed difference and spread.")
        for arm, why in self.failed.items():
            out.append(f"{arm} failed: {why}.")
        out.extend(self.notes)
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record of the verdict."""
        return {
            "metric": self.metric,
            "best": self.best,
            "test": self.test,
            "alpha": ALPHA,
            "comparisons": [{**c.__dict__, "indistinguishable": c.indistinguishable} for c in self.comparisons],
            "failed": dict(self.failed),
            "seeds_needed": self.seeds_needed,
            "sentences": self.sentences(),
        }


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given (see the module docstring)."""
    k = len(p_values)
    order = sorted(range(k), key=lambda i: p_values[i])
    adjusted = [0.0] * k
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (k - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def paired_p_value(differences: Sequence[float]) -> float | None:
    """The two-sided p-value of the paired t-test of ``differences`` against zero; None for fewer than two, and for
    equal non-zero differences, which have no spread and leave the t statistic undefined (1 when they are all
    zero: the two configurations scored the same on every seed)."""
    n = len(differences)
    if n < 2:
        return None
    mean = sum(differences) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1))
    if sd == 0.0 or not math.isfinite(sd):
        return 1.0 if mean == 0.0 else None
    from scipy.special import stdtr  # Student's t CDF; scipy.stats takes a second to import

    t = mean / (sd / math.sqrt(n))
    return float(2.0 * stdtr(n - 1, -abs(t)))


def seeds_needed(differences: Sequence[float]) -> int | None:
    """The smallest number of seeds at which a paired 95% t-interval of the observed mean difference, at the observed
    spread, excludes zero; None when it cannot be estimated or exceeds :data:`MAX_SEEDS`."""
    n = len(differences)
    if n < 2:
        return None
    mean = sum(differences) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1))
    if mean == 0.0 or sd == 0.0:
        return None
    import numpy as np
    from scipy.special import stdtrit  # Student's t quantile

    m = np.arange(2, MAX_SEEDS + 1)
    enough = np.flatnonzero(stdtrit(m - 1, 0.975) * sd / np.sqrt(m) < abs(mean))
    return int(m[enough[0]]) if enough.size else None


_WHY = {
    "symmetry": "symmetry not broken (units of a layer start identical)",
    "saturation": "saturated activations at initialization",
    "vanishing_signal": "the signal vanishes with depth at initialization",
    "exploding_signal": "the signal explodes with depth at initialization",
    "dead_units": "dead units at initialization",
    "vanishing_gradients": "vanishing gradients at initialization",
    "exploding_gradients": "exploding gradients at initialization",
}


def _initial_findings(store: Store) -> dict[str, set[str]]:
    """Per run id, the kinds of error-level findings of its stored diagnosis at epoch 0."""
    out: dict[str, set[str]] = {}
    for run_id, epoch, payload in store.diagnostics():
        if epoch != 0 or not isinstance(payload, Mapping):
            continue
        for finding in payload.get("findings") or []:
            if isinstance(finding, Mapping) and finding.get("severity") == "error":
                out.setdefault(run_id, set()).add(str(finding.get("kind")))
    return out


def verdict(store: Store, rows: Sequence[ArmSummary] | None = None) -> Verdict:
    """The verdict on the study in ``store`` (``rows``: its :func:`summarize` table, computed when not given)."""
    rows = list(rows) if rows is not None else summarize(store)
    runs = store.runs()
    metric = "test_acc" if any(r.test_acc.n for r in rows) else "test_loss"
    sign = 1.0 if metric == "test_acc" else -1.0  # differences in the direction "best minus other" is >= 0
    values: dict[str, dict[int, float]] = {}
    for r in runs:
        if r.status == "finished" and r.test_metrics and r.test_metrics.get(metric) is not None:
            value = float(r.test_metrics[metric])
            if math.isfinite(value):
                values.setdefault(r.arm, {})[r.seed] = value
    ranked = [row.arm for row in rows if row.arm in values]
    comparisons: tuple[Comparison, ...] = ()
    needed, top_two = None, None
    if ranked:
        best = ranked[0]
        diffs = {}
        for arm in ranked[1:]:
            shared = sorted(set(values[best]) & set(values[arm]))
            diffs[arm] = [sign * (values[best][s] - values[arm][s]) for s in shared]
        raw = {arm: paired_p_value(d) for arm, d in diffs.items()}
        testable = [arm for arm, p in raw.items() if p is not None]
        adjusted = dict(zip(testable, holm([raw[a] for a in testable if raw[a] is not None]), strict=True))
        comparisons = tuple(
            Comparison(arm, len(d), sum(d) / len(d) if d else math.nan, raw[arm], adjusted.get(arm))
            for arm, d in diffs.items()
        )
        if len(ranked) > 1:
            top_two, needed = (best, ranked[1]), seeds_needed(diffs[ranked[1]])
    worse = {c.arm for c in comparisons if not c.indistinguishable} | {r.arm for r in rows if r.arm not in ranked}
    findings = _initial_findings(store)
    failed: dict[str, str] = {}
    for row in rows:
        reasons = []
        if row.diverged:
            reasons.append(f"{row.diverged} of {row.runs} runs diverged")
        if row.failed:
            reasons.append(f"{row.failed} of {row.runs} runs failed with an error")
        kinds = sorted({k for r in runs if r.arm == row.arm for k in findings.get(r.run_id, ())})
        if kinds and (reasons or row.arm in worse):  # a finding explains a failure; alone it is not one
            reasons.extend(_WHY.get(k, k) for k in kinds)
        if reasons:
            failed[row.arm] = "; ".join(reasons)
    return Verdict(metric, ranked[0] if ranked else None, comparisons, failed, needed, top_two)
