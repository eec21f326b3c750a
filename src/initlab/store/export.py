"""Exports of a study database for other tools: three CSV tables, or one strict JSON document.

:func:`export_csv` writes floats with ``repr`` (``nan``, ``inf``, ``-inf``), which :func:`float` and pandas read back
exactly; :func:`export_json` writes strict JSON, with non-finite floats as the strings ``"NaN"``, ``"Infinity"`` and
``"-Infinity"`` (:func:`initlab.fileio.json_safe`). Both write through :func:`initlab.fileio.atomic_writer`, so a
reader never sees half a file.

Both take optional ``run_columns``: per run id, values to write with every row of that run (a sweep's axis values and
population index, which :func:`initlab.cli.compare.export_command` computes from the study config). The Store knows
nothing of sweeps, so the caller passes them in; without them an export is exactly the Store's contents.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, Protocol

from initlab.fileio import atomic_writer, json_safe, write_atomic
from initlab.store.codec import csv_cell
from initlab.store.records import EPOCH_FLOATS, EpochRecord, LayerStat, RunRecord, StudyRecord


class StoreContents(Protocol):
    """What an export reads of a study store (:class:`~initlab.store.Store` is one): declared here so that this
    module, which the Store's own ``export_*`` methods call, does not import the Store back."""

    SCHEMA_VERSION: int
    path: Path

    def study(self) -> StudyRecord: ...

    def runs(self) -> list[RunRecord]: ...

    def epochs(self, run_id: str | None = None) -> list[EpochRecord]: ...

    def layer_stats(
        self, run_id: str | None = None, *, layer: str | None = None
    ) -> list[tuple[str, int, LayerStat]]: ...

    def diagnostics(self, run_id: str | None = None) -> list[tuple[str, int, dict[str, Any]]]: ...


__all__ = ["RunColumns", "StoreContents", "export_csv", "export_json"]

#: Per run id, extra columns for every row of that run: ``{"he_normal@lr=0.1/s0": {"lr": 0.1, "population": 0}}``.
RunColumns = Mapping[str, Mapping[str, Any]]

logger = logging.getLogger(__name__)

# The columns each CSV file always has, in this order; test metrics and ``extra`` entries follow, sorted.
_RUN_COLUMNS = (
    "run_id", "arm", "seed", "status", "last_epoch", "diverged_epoch", "attempts", "wall_time_s", "message", "scheme",
)  # fmt: skip
_EPOCH_COLUMNS = ("run_id", "arm", "seed", "epoch", *EPOCH_FLOATS, "wall_time_s")
_LAYER_COLUMNS = ("run_id", "arm", "seed", "epoch", "layer", "weight_norm", "grad_norm")


def _column_names(run_columns: RunColumns, reserved: Sequence[str]) -> list[str]:
    """The names of the run columns in order of first appearance; ValueError when one would hide a column the export
    writes itself (``reserved``, or a ``test_``/``extra_`` column)."""
    names = list(dict.fromkeys(name for columns in run_columns.values() for name in columns))
    for name in names:
        if not isinstance(name, str) or not name:
            raise TypeError(f"run_columns: a column name must be a non-empty string, got {name!r}.")
        if name in reserved or name.startswith(("test_", "extra_")):
            raise ValueError(
                f"run_columns: {name!r} would hide a column of the export itself; rename it (taken: "
                f"{', '.join(reserved)}, test_*, extra_*)."
            )
    return names


def _after_seed(fixed: Sequence[str], names: Sequence[str]) -> tuple[str, ...]:
    """``fixed`` with ``names`` after its ``seed`` column, so that a row's identity comes first."""
    at = list(fixed).index("seed") + 1
    return (*fixed[:at], *names, *fixed[at:])


def export_csv(
    store: StoreContents, out_dir: str | os.PathLike[str], *, run_columns: RunColumns | None = None
) -> list[Path]:
    """Write ``runs.csv``, ``epochs.csv`` and ``layers.csv`` of ``store`` into ``out_dir``; return their paths.

    Test metrics become ``test_<name>`` columns of runs.csv and ``extra`` entries ``extra_<name>`` columns of
    epochs.csv; floats are written exactly (``repr``), non-finite ones as ``nan``, ``inf``, ``-inf``; a missing
    value is an empty cell. Every row names its run's arm and seed, and its ``run_columns`` (after the seed; a run
    they do not list has empty cells there), so each file can be grouped on its own.
    """
    extra = run_columns or {}
    names = _column_names(extra, tuple(dict.fromkeys((*_RUN_COLUMNS, *_EPOCH_COLUMNS, *_LAYER_COLUMNS))))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    runs = store.runs()
    by_id = {r.run_id: r for r in runs}
    run_rows = []
    for r in runs:
        row = {k: getattr(r, k) for k in ("run_id", "arm", "seed", "status", "last_epoch", "diverged_epoch")}
        row.update(attempts=r.attempts, wall_time_s=r.wall_time_s, message=r.message, **extra.get(r.run_id, {}))
        row.update({f"test_{k}": v for k, v in sorted((r.test_metrics or {}).items())})
        run_rows.append({**row, "scheme": r.scheme})
    epochs = store.epochs()
    epoch_rows = []
    for e in epochs:
        row = {"run_id": e.run_id, "arm": by_id[e.run_id].arm, "seed": by_id[e.run_id].seed, "epoch": e.epoch}
        row.update({k: getattr(e, k) for k in (*EPOCH_FLOATS, "wall_time_s")}, **extra.get(e.run_id, {}))
        epoch_rows.append({**row, **{f"extra_{k}": v for k, v in sorted(e.extra.items())}})
    layer_rows = [
        {"run_id": rid, "arm": by_id[rid].arm, "seed": by_id[rid].seed, "epoch": epoch, "layer": s.name,
         "weight_norm": s.weight_norm, "grad_norm": s.grad_norm, **extra.get(rid, {})}
        for rid, epoch, s in store.layer_stats()
    ]  # fmt: skip
    paths = [
        _write_csv(out / "runs.csv", run_rows, _after_seed(_RUN_COLUMNS, names)),
        _write_csv(out / "epochs.csv", epoch_rows, _after_seed(_EPOCH_COLUMNS, names)),
        _write_csv(out / "layers.csv", layer_rows, _after_seed(_LAYER_COLUMNS, names)),
    ]
    logger.info("exported %d runs and %d epochs of %s to %s", len(runs), len(epochs), store.path, out)
    return paths


def export_json(store: StoreContents, path: str | os.PathLike[str], *, run_columns: RunColumns | None = None) -> Path:
    """Write one strict JSON document with the study, runs (with test metrics), epochs (with layer statistics) and
    diagnostics of ``store``; non-finite floats are written as the strings "NaN", "Infinity" and "-Infinity".

    Each run's ``run_columns`` become keys of its run object (epochs name their run by ``run_id``)."""
    extra = run_columns or {}
    _column_names(extra, tuple(f.name for f in fields(RunRecord)))
    try:
        study: dict[str, Any] | None = _record_dict(store.study())
    except ValueError:  # no init_study yet: the runs, if any, are still worth exporting
        study = None
    doc = {
        "schema_version": store.SCHEMA_VERSION,
        "study": study,
        "runs": [{**_record_dict(r), **extra.get(r.run_id, {})} for r in store.runs()],
        "epochs": [_record_dict(e) for e in store.epochs()],
        "diagnostics": [{"run_id": r, "epoch": e, "payload": p} for r, e, p in store.diagnostics()],
    }
    text = json.dumps(json_safe(doc, nonfinite="string"), indent=1, sort_keys=True, allow_nan=False)
    # Bytes, so that the file ends in "\n" (not os.linesep) on every system.
    out = write_atomic(Path(path), (text + "\n").encode("utf-8"))
    logger.info("exported %s to %s", store.path, out)
    return out


def _record_dict(record: Any) -> dict[str, Any]:
    """A dataclass record as plain dicts and lists (an epoch's layers included)."""
    out: dict[str, Any] = {}
    for name in record.__dataclass_fields__:
        value = getattr(record, name)
        if name == "layers":
            value = [{"name": s.name, "weight_norm": s.weight_norm, "grad_norm": s.grad_norm} for s in value]
        elif isinstance(value, Mapping):
            value = dict(value)
        out[name] = value
    return out


def _write_csv(path: Path, rows: list[dict[str, Any]], fixed: Sequence[str]) -> Path:
    """Write ``rows`` as CSV: the ``fixed`` columns (always present, in order), then any other keys sorted.

    Cells are :func:`~initlab.store.codec.csv_cell`; a key a row lacks is an empty cell.
    """
    others = sorted({k for row in rows for k in row} - set(fixed))
    header = [*fixed, *others]
    # Keep the wide JSON scheme column last.
    if "scheme" in header:
        header.remove("scheme")
        header.append("scheme")
    with atomic_writer(path, "wb") as raw:
        # newline="", as the csv module asks: rows end in "\n" and a newline inside a quoted cell is written as it is,
        # on every system. Detached (not closed) at the end, so that atomic_writer can still sync and rename the file.
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        try:
            writer = csv.writer(text, lineterminator="\n")
            writer.writerow(header)
            writer.writerows([csv_cell(row.get(k)) for k in header] for row in rows)
        finally:
            text.detach()
    return path
