"""What a study stored besides its metrics, as the report shows it: the diagnoses of each arm's first seed (drawn as
figures) and any other payload (shown as a table of its values)."""

from __future__ import annotations

from typing import Any

from initlab.report._collect import StudyData

# Diagnostics payloads are free-form; a report shows at most this many values per run so the page stays readable.
_MAX_DIAGNOSTIC_ROWS = 200
# Per arm, the stored diagnoses of its first seed as (epoch, Diagnosis.to_dict() payload), by epoch.
_ArmDiagnoses = dict[str, list[tuple[int, dict[str, Any]]]]


def _flatten(value: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, str]]:
    """Scalar leaves of a JSON payload as (dotted key, text); long lists are summarized, not dumped."""
    if isinstance(value, dict) and depth < 6:
        rows: list[tuple[str, str]] = []
        for k, v in value.items():
            rows += _flatten(v, f"{prefix}.{k}" if prefix else str(k), depth + 1)
        return rows
    if isinstance(value, list):
        if len(value) <= 8 and all(isinstance(v, (int, float, str, bool)) or v is None for v in value):
            return [(prefix, ", ".join(_scalar(v) for v in value))]
        if depth < 6 and len(value) <= 64 and all(isinstance(v, dict) for v in value):
            rows = []
            for i, v in enumerate(value):
                name = v.get("name", v.get("layer", i)) if isinstance(v, dict) else i
                rows += _flatten(v, f"{prefix}[{name}]", depth + 1)
            return rows
        return [(prefix, f"list of {len(value)} values")]
    return [(prefix or "(value)", _scalar(value))]


def _scalar(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _diagnostics(data: StudyData) -> list[dict[str, Any]]:
    """The stored payloads that are not diagnoses (drawn as figures), as tables of their values."""
    out = []
    for run_id, epoch, payload in data.diagnostics:
        if _is_diagnosis(payload):
            continue
        rows = _flatten(payload)
        out.append(
            dict(
                run_id=run_id, epoch=epoch, rows=rows[:_MAX_DIAGNOSTIC_ROWS], truncated=len(rows) > _MAX_DIAGNOSTIC_ROWS
            )
        )
    return out


def _is_diagnosis(payload: Any) -> bool:
    """Whether a stored payload is a ``Diagnosis.to_dict()`` (layers with a name and an output std)."""
    layers = payload.get("layers") if isinstance(payload, dict) else None
    return (
        isinstance(layers, list)
        and bool(layers)
        and all(isinstance(layer, dict) and "name" in layer and "std" in layer for layer in layers)
    )


def _first_seed_diagnoses(data: StudyData) -> _ArmDiagnoses:
    """Per arm (study order), the stored diagnoses ``(epoch, payload)`` of its first seed that has any."""
    by_run: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for run_id, epoch, payload in data.diagnostics:
        if _is_diagnosis(payload):
            by_run.setdefault(run_id, []).append((epoch, payload))
    out = {}
    for arm in data.arms:
        run = next((r for r in data.runs_of(arm) if r.run_id in by_run), None)
        if run is not None:
            out[arm] = sorted(by_run[run.run_id], key=lambda item: item[0])
    return out
