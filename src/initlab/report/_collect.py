"""What a report shows, read from a study's Store and from the model rebuilt at initialization.

Everything the figures and the HTML need is gathered here once, so that the drawing code reads plain arrays and the
report never writes to the Store.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from initlab.store import EpochRecord, RunRecord, Store, StudyRecord
from initlab.studies import ArmSummary, Study, summarize
from initlab.studies import sweep as sweeps
from initlab.studies.verdict import Verdict, verdict

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InitLayer:
    """One weight tensor of the model right after initialization (before any training step)."""

    name: str  # the parameter's name in the model, e.g. "1.weight"
    shape: tuple[int, ...]
    values: np.ndarray  # the weights, flat, as float32
    norm: float  # Frobenius norm, comparable with the stored per-epoch weight norms


@dataclass(frozen=True)
class ArmInit:
    """An arm's model initialized with its scheme and its first seed; ``error`` says why there is none."""

    arm: str
    seed: int
    layers: list[InitLayer] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class Configuration:
    """One configuration of a sweep: an arm at a grid point, and the label its runs are stored under."""

    label: str  # e.g. "he_normal@lr=0.01,scale=0.5", the ``arm`` column of its runs
    arm: str  # the arm's own label, e.g. "he_normal"
    point: dict[str, Any]  # the value of every sweep axis, e.g. {"lr": 0.01, "scale": 0.5}


@dataclass(frozen=True)
class StudyData:
    """A study as the report sees it: its record, runs, epochs, ranked arms, initial weights and diagnostics."""

    study_dir: Path
    study: StudyRecord
    runs: list[RunRecord]
    epochs: dict[str, list[EpochRecord]]  # by run_id, in epoch order
    summary: list[ArmSummary]  # ranked, from initlab.studies.summarize
    verdict: Verdict  # best, indistinguishable, failed and why (initlab.studies.verdict)
    # Labels in the study's order (legend and colour order, stable between reports); with a sweep, every
    # configuration's label, as the runs are stored under them.
    arms: list[str]
    target_accuracy: float
    init: list[ArmInit]
    diagnostics: list[tuple[str, int, dict[str, Any]]]
    # The sweep's axes and their values, in the grid's order ({} without a sweep), and its configurations (arms at
    # grid points) in the study's order ([] without a sweep).
    sweep: dict[str, list[Any]] = field(default_factory=dict)
    configurations: list[Configuration] = field(default_factory=list)

    def sweep_arms(self) -> list[str]:
        """The arms' own labels in the study's order (without a sweep, the same as :attr:`arms`)."""
        if not self.configurations:
            return list(self.arms)
        return list(dict.fromkeys(c.arm for c in self.configurations))

    def runs_of(self, arm: str) -> list[RunRecord]:
        """The runs of ``arm``, in seed order."""
        return sorted((r for r in self.runs if r.arm == arm), key=lambda r: r.seed)

    def series(self, arm: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """``(epochs, values)`` of ``metric`` for every run of ``arm``: values is (runs, epochs), NaN where absent.

        Non-finite values become NaN, and a diverged run's epochs from the one it diverged in are left out, so that
        its curve stops before the blow-up instead of stretching the axis to 1e18 and hiding every other arm.
        """
        runs = self.runs_of(arm)
        last = max((e.epoch for r in runs for e in self.epochs.get(r.run_id, [])), default=0)
        epochs = np.arange(1, last + 1)
        values = np.full((len(runs), last), np.nan)
        for i, r in enumerate(runs):
            for e in self.epochs.get(r.run_id, []):
                if r.diverged_epoch is not None and e.epoch >= r.diverged_epoch:
                    continue
                v = getattr(e, metric)
                if v is not None and math.isfinite(v):
                    values[i, e.epoch - 1] = v
        return epochs, values

    def layer_series(self, arm: str, layer: str, which: str) -> tuple[np.ndarray, np.ndarray]:
        """``(epochs, values)`` of a layer statistic (``weight_norm`` or ``grad_norm``) for every run of ``arm``."""
        runs = self.runs_of(arm)
        last = max((e.epoch for r in runs for e in self.epochs.get(r.run_id, [])), default=0)
        values = np.full((len(runs), last), np.nan)
        for i, r in enumerate(runs):
            for e in self.epochs.get(r.run_id, []):
                for stat in e.layers:
                    if stat.name == layer:
                        v = getattr(stat, which)
                        if v is not None and math.isfinite(v):
                            values[i, e.epoch - 1] = v
        return np.arange(1, last + 1), values

    def weight_layers(self) -> list[str]:
        """Names of the stored layers that are weights (not biases), in the model's order."""
        for records in self.epochs.values():
            if records:
                names = [s.name for s in records[0].layers]
                weights = [n for n in names if not n.endswith("bias")]
                return weights or names
        return []


def collect(study_dir: str | Path, *, with_init: bool = True) -> StudyData:
    """Read the study in ``study_dir`` (read-only) and rebuild each arm's initial weights when ``with_init``."""
    folder = Path(study_dir)
    with Store.in_dir(folder, readonly=True) as store:
        study = store.study()
        runs = store.runs()
        epochs = _by_run(store.epochs())
        summary = summarize(store)
        found = verdict(store, summary)
        diagnostics = store.diagnostics()
    sweep, configurations = _configurations(study.config)
    return StudyData(
        study_dir=folder,
        study=study,
        runs=runs,
        epochs=epochs,
        summary=summary,
        verdict=found,
        arms=_arm_order(study.config, runs, configurations),
        target_accuracy=float(study.config.get("train", {}).get("target_accuracy", math.nan)),
        init=initial_weights(study.config, runs) if with_init else [],
        diagnostics=diagnostics,
        sweep=sweep,
        configurations=configurations,
    )


def _configurations(config: Mapping[str, Any]) -> tuple[dict[str, list[Any]], list[Configuration]]:
    """The sweep of a study config (axes in the grid's order) and its configurations; ``({}, [])`` without one."""
    if not config.get("sweep"):
        return {}, []
    study = Study.from_config(config)
    points = study.points()
    configurations = [
        Configuration(label=sweeps.label(arm.label, point), arm=arm.label, point=dict(point))
        for arm in study.arms
        for point in points
    ]
    return {name: list(values) for name, values in study.sweep.items()}, configurations


def _by_run(epochs: Iterable[EpochRecord]) -> dict[str, list[EpochRecord]]:
    """The epochs grouped by run id (runs in the order first met), each run's in epoch order."""
    out: dict[str, list[EpochRecord]] = {}
    for e in epochs:
        out.setdefault(e.run_id, []).append(e)
    for records in out.values():
        records.sort(key=lambda e: e.epoch)
    return out


def _arm_order(config: Mapping[str, Any], runs: list[RunRecord], configurations: list[Configuration]) -> list[str]:
    """The arms' labels in the study's order (with a sweep, the configurations'), then, sorted, those of stored runs
    that the config does not list."""
    listed = [c.label for c in configurations] or [str(a["label"]) for a in config.get("arms", [])]
    return listed + sorted({r.arm for r in runs} - set(listed))


def initial_weights(config: Mapping[str, Any], runs: list[RunRecord]) -> list[ArmInit]:
    """Each configuration's model built from the study config and initialized with its arm's scheme, its first seed
    and its grid point (scale, width, depth); without a sweep, one per arm.

    Nothing is trained; the model is initialized exactly as a study initializes it (:mod:`initlab.studies.build`:
    same scheme, seed and, for schemes that look at data, the same training samples), so the histograms show the
    weights the run started from. A failure for one arm (a model or data set this machine cannot build) is recorded
    in ``ArmInit.error`` and logged, never raised: the rest of the report does not depend on it.
    """
    import torch

    from initlab.studies import Study, build

    first_seed: dict[str, int] = {}
    for r in runs:
        first_seed[r.arm] = min(first_seed.get(r.arm, r.seed), r.seed)
    try:
        study = Study.from_config(config)
        source = build.InitSource(study)
    except Exception as exc:
        logger.warning("cannot size the model of the study for the initial weights: %s", exc)
        seed = int(next(iter(config.get("seeds", [])), 0))
        return [ArmInit(arm=str(a["label"]), seed=seed, error=str(exc)) for a in config.get("arms", [])]
    out = []
    points = study.points()
    # One model per configuration (an arm at a grid point; just the arms without a sweep): its scale, width and depth
    # shape the initial weights, its learning rate does not.
    configurations = {r.label: (study.arms[r.arm_index], points[r.point_index]) for r in study.runs()}
    for label, (arm, point) in configurations.items():
        seed = int(first_seed.get(label, study.seeds[0]))
        try:
            model = source.initial_model(arm, seed, point)
        except Exception as exc:
            logger.warning("cannot rebuild the initial weights of %r: %s", label, exc)
            out.append(ArmInit(arm=label, seed=seed, error=f"{type(exc).__name__}: {exc}"))
            continue
        # The model is thrown away, so its float32 weights are viewed, not copied (a float64 copy of the default
        # study's twelve models cost a fifth of the interactive report's build).
        layers = [
            InitLayer(
                name=name,
                shape=tuple(p.shape),
                values=p.detach().float().reshape(-1).numpy(),
                norm=float(torch.linalg.vector_norm(p.detach().float())),
            )
            for name, p in model.named_parameters()
            if p.dim() >= 2
        ]
        out.append(ArmInit(arm=label, seed=seed, layers=layers))
    return out
