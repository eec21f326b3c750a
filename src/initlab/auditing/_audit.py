"""``audit(model, scheme)``: every parameter measured, compared with what the scheme (or torch's defaults) would
draw, and checked for what is suspicious on its own.

**Positions.** What is expected of a tensor on its own depends on where it sits: a weight matrix (two or more axes of
size > 1, role weight, recurrent weight or other) is a *hidden* matrix, the *head* (the weight of the last
feed-forward layer in module order, taken as the output layer) or a *residual* output projection
(:mod:`initlab.auditing._residual`); an embedding table is an *embedding*; anything else (biases, norm scales and
shifts) is a *vector*.

**Severities.**

===================  ==================================================================  =========================
finding              when                                                                severity
===================  ==================================================================  =========================
non_finite           NaN or ±inf anywhere                                                error
all_zero, constant   a hidden matrix or an embedding with one value (every unit            error
                     computes the same function and gets the same update: symmetry
                     never breaks)
                     the head where the reference draws it at random                     error
                     the head where the reference prescribes the constant (muP's zero    warning
                     readout, Yang et al. 2022, trains: its gradient is not zero)
                     a residual projection (a zero-initialized branch: Fixup, Zhang      info
                     et al. 2019; ReZero; SkipInit)
                     a vector where the reference draws random values (a zero bias is    info
                     harmless)
duplicate_units      two rows (output units) or columns (input units) exactly equal      error
                     in a randomly drawn tensor (a copy: units that start equal stay
                     symmetric)
std_mismatch,        the std (or mean) test rejects the reference:
mean_mismatch          a scheme the caller named                                         error
                       torch's defaults, but the std is the model's declared std         info
                       torch's defaults, weight matrix, std fits a fan-based rule        warning
                       torch's defaults, weight matrix, std far from every rule          error
                       torch's defaults, embedding or vector                             warning
value_mismatch       a constant other than the reference's, or random values where it    error (named scheme),
                     sets a constant                                                     warning (defaults)
family_mismatch      the std fits but the shape does not (uniform for normal)            warning (named scheme),
                                                                                         info (defaults)
off_rule             a weight matrix no rule covers whose std is far from every          warning
                     fan-based rule and from the model's declared std
residual_not_scaled  a residual output projection at the base std (not 1/√N)             warning
residual_scaled      a residual output projection scaled for depth                       info
residual_other       a residual output projection scaled by another factor (reported)    info
tied                 one tensor under several names (audited once)                       info
uncovered            parameters no rule of the reference covers                          warning (named scheme),
                                                                                         info (defaults)
===================  ==================================================================  =========================

``initlab audit`` exits 1 when there is an error-level finding (with ``--strict``, a warning too), 0 otherwise.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from initlab.auditing import _stats
from initlab.auditing._reference import (
    Expectation,
    Reference,
    declared_std,
    foreign_layout,
    make_reference,
    slot_fans,
    slot_layout,
)
from initlab.auditing._residual import ResidualProjection, ResidualVerdict, base_std, find_residual_projections, judge
from initlab.auditing._result import SEVERITIES, Audit, AuditFinding, FindingKind, ParameterAudit, Severity
from initlab.catalog import Distribution
from initlab.checks import check_finite
from initlab.schemes import Slot, slots
from initlab.tracing import EMBEDDING_TYPES, FEEDFORWARD_TYPES, ModelInput

logger = logging.getLogger(__name__)

_MATRIX_POSITIONS = ("hidden", "head", "residual")
_ORDER = {s: i for i, s in enumerate(SEVERITIES)}


@dataclass
class _Context:
    """What every parameter's checks share."""

    reference: Reference
    declared: tuple[str, float] | None
    residuals: dict[str, ResidualProjection]
    head: str | None
    stds: dict[str, float]
    significance: float
    min_deviation: float

    @property
    def depth(self) -> int:
        return len(self.residuals)


def audit(
    module: nn.Module,
    scheme: Any = None,
    *,
    data: ModelInput | None = None,
    significance: float = _stats.SIGNIFICANCE,
    min_deviation: float = _stats.MIN_RELATIVE_DEVIATION,
) -> Audit:
    """Audit every parameter of ``module`` against ``scheme`` (``None``: torch's defaults) and return an
    :class:`Audit`.

    ``scheme`` is anything :func:`initlab.initialize` takes that has one distribution per parameter: an initializer
    name (``"he_normal"``), ``"keras"``, ``"auto"`` (``data``, if given, is the input of the forward pass that finds
    each layer's activation), ``"torch"``, a :class:`~initlab.Scheme` or its config. Each parameter is measured
    (mean, std, min, max over its finite values), compared with the exact distribution the scheme's matching rule
    draws from by a χ² test on its variance (two-sided p < ``significance`` and a relative std deviation over
    ``min_deviation``), and checked for what is wrong whatever the scheme: NaN or infinite values, all-zero or
    constant weight matrices, duplicated rows or columns, a std far from every fan-based rule, residual output
    projections not scaled for depth (Radford et al. 2019, §2.3), tied weights and parameters no rule covers. See
    :mod:`initlab.auditing._audit` for the severities and :mod:`initlab.auditing._stats` for the tests.
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"audit takes a torch.nn.Module, got {type(module).__name__}.")
    significance = check_finite("significance", significance)
    if not 0.0 < significance < 1.0:
        raise ValueError(f"significance must be in (0, 1), got {significance!r}.")
    min_deviation = check_finite("min_deviation", min_deviation)
    if min_deviation < 0:
        raise ValueError(f"min_deviation must be >= 0, got {min_deviation!r}.")
    reference = make_reference(module, scheme, data)
    names = {id(p): n for n, p in module.named_parameters()}
    measured = [(slot, _values(slot)) for slot in slots(module)]
    measurements = {slot.key: _stats.measure(values) for slot, values in measured}
    ctx = _Context(
        reference=reference,
        declared=declared_std(module),
        residuals=find_residual_projections(module, names),
        head=_head(module, names),
        stds={k: m.std for k, m in measurements.items()},
        significance=significance,
        min_deviation=min_deviation,
    )
    rows: list[ParameterAudit] = []
    findings: list[AuditFinding] = []
    uncovered: list[Slot] = []
    for slot, values in measured:
        expectation = reference.expect(slot)
        if expectation is None:
            uncovered.append(slot)
        row, found = _audit_slot(slot, values, measurements[slot.key], expectation, ctx)
        rows.append(row)
        findings.extend(found)
    findings += _tied(module, rows) + _uncovered(uncovered, reference)
    findings.sort(key=lambda f: _ORDER[f.severity])
    result = Audit(type(module).__name__, reference.name, reference.explicit, rows, findings, significance,
                   min_deviation)  # fmt: skip
    logger.info("%s", result.summary())
    return result


# -- parameters --------------------------------------------------------------------------------------------------
def _values(slot: Slot) -> torch.Tensor:
    """The slot's values, without an embedding's padding row (torch and every scheme keep it at zero)."""
    tensor = slot.tensor.detach()
    padding_idx = getattr(slot.module, "padding_idx", None)
    if slot.role == "embedding" and isinstance(slot.module, EMBEDDING_TYPES) and padding_idx is not None:
        keep = torch.ones(tensor.shape[0], dtype=torch.bool, device=tensor.device)
        keep[padding_idx] = False
        return tensor[keep]
    return tensor


def _head(model: nn.Module, names: dict[int, str]) -> str | None:
    """The weight of the last feed-forward layer in module order (the output layer), unless it is tied to an
    earlier parameter (a tied output projection is the embedding's)."""
    last = None
    for name, module in model.named_modules():
        if isinstance(module, FEEDFORWARD_TYPES) or foreign_layout(module) is not None:
            last = (name, module)
    if last is None or not isinstance(getattr(last[1], "weight", None), nn.Parameter):
        return None
    key = names.get(id(last[1].weight))
    return key if key == (f"{last[0]}.weight" if last[0] else "weight") else None


def _position(slot: Slot, ctx: _Context) -> str:
    if slot.role == "embedding":
        return "embedding"
    matrix = sum(s > 1 for s in slot.shape) >= 2
    if not matrix or slot.role not in ("weight", "recurrent_weight", "other"):
        return "vector"
    if slot.block is None and slot.name in ctx.residuals:
        return "residual"
    return "head" if slot.block is None and slot.name == ctx.head else "hidden"


def _audit_slot(
    slot: Slot, values: torch.Tensor, m: _stats.Measurement, expectation: Expectation | None, ctx: _Context
) -> tuple[ParameterAudit, list[AuditFinding]]:
    fans = slot_fans(slot)
    position = _position(slot, ctx)
    row = ParameterAudit(
        key=slot.key, module=slot.module_name, module_type=slot.module_type, role=slot.role, position=position,
        shape=slot.shape, dtype=str(values.dtype).removeprefix("torch."), fan_in=fans.fan_in if fans else None,
        fan_out=fans.fan_out if fans else None, n=m.n, nonfinite=m.nonfinite, mean=m.mean, std=m.std, min=m.min,
        max=m.max, expected=expectation.rule if expectation else None,
        expected_mean=expectation.distribution.mean if expectation else None,
        expected_std=expectation.distribution.std if expectation else None,
    )  # fmt: skip
    if m.nonfinite or m.n == 0:
        what = f"{m.nonfinite} non-finite value(s) (NaN or ±inf) of {m.nonfinite + m.n}"
        return _done(row, [_finding("non_finite", "error", slot, f"{slot.key} holds {what}; every output that "
                                    "depends on it is NaN.", nonfinite=m.nonfinite)])  # fmt: skip
    verdict = _residual_verdict(slot, m, expectation, ctx) if position == "residual" and not m.constant else None
    depth_factor = verdict.target if verdict is not None and verdict.verdict == "scaled" else 1.0
    if position in _MATRIX_POSITIONS and fans is not None:
        depth = ctx.depth if position == "residual" else 1
        fit = _stats.closest_rule(m.std, _stats.fan_rules(fans, declared=ctx.declared, depth=depth))
        row.closest_rule, row.rule_ratio = (fit.rule, fit.ratio) if fit else (None, None)
    if m.constant:
        found = _constant_findings(slot, m, expectation, position)
    else:
        found = _duplicate_findings(slot, expectation, position)
        found += _random_findings(slot, m, expectation, position, depth_factor, ctx, row)
    if verdict is not None:
        row.residual = verdict.describe()
        found.append(_residual_finding(slot, verdict))
    return _done(row, found)


def _done(row: ParameterAudit, found: list[AuditFinding]) -> tuple[ParameterAudit, list[AuditFinding]]:
    if found:
        row.severity = min((f.severity for f in found), key=_ORDER.__getitem__)
    return row, found


def _finding(kind: FindingKind, severity: Severity, slot: Slot, message: str, **figures: Any) -> AuditFinding:
    return AuditFinding(kind, severity, (slot.key,), message, figures)


# -- constant tensors --------------------------------------------------------------------------------------------
_CONSTANT_WHY: dict[str, tuple[Severity, str]] = {
    "hidden": (
        "error",
        "every unit of the layer computes the same function and gets the same update, so the symmetry never breaks",
    ),
    "embedding": ("error", "every token gets the same vector, so the model cannot tell tokens apart"),
    "head": (
        "warning",
        "the reference draws it at random; a zero readout is deliberate only in some recipes (muP's zero output "
        "layer, Yang et al. 2022), which audit it with a scheme that zeros the head",
    ),
    "residual": (
        "info",
        "a zero-initialized residual branch (Fixup, Zhang et al. 2019; ReZero; SkipInit): the block "
        "starts as the identity",
    ),
    "vector": ("info", "harmless for a bias or a norm shift"),
}


def _constant_findings(
    slot: Slot, m: _stats.Measurement, expectation: Expectation | None, position: str
) -> list[AuditFinding]:
    value = m.min
    found: list[AuditFinding] = []
    prescribed = expectation is not None and expectation.constant and _same(value, expectation.distribution.mean)
    if expectation is not None and expectation.constant and not prescribed:
        severity: Severity = "error" if expectation.explicit else "warning"
        message = (
            f"{slot.key} is the constant {value:.4g} where {expectation.rule} sets {expectation.distribution.mean:.4g}."
        )
        found.append(_finding("value_mismatch", severity, slot, message, value=value))
    random_expected = expectation is not None and not expectation.constant
    if position != "vector" or random_expected:
        kind: FindingKind = "all_zero" if value == 0 else "constant"
        severity, why = _CONSTANT_WHY[position]
        if position == "head" and random_expected:  # a zero readout passes only where the reference prescribes it
            severity = "error"
        what = "all zero" if value == 0 else f"the constant {value:.4g} everywhere"
        note = f" (as {expectation.rule} prescribes)" if prescribed and expectation else ""
        where = {"head": "the output layer's weight", "residual": "a residual output projection"}.get(position, "")
        found.append(_finding(kind, severity, slot, f"{slot.key}{', ' + where + ',' if where else ''} is {what}"
                              f"{note}: {why}.", value=value, position=position))  # fmt: skip
    return found


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(1.0, abs(b))


# -- random tensors ----------------------------------------------------------------------------------------------
def _unit_axes(slot: Slot) -> list[tuple[int, str]]:
    """The axes whose slices are units: (axis, what a slice along it is)."""
    if slot.role == "embedding":
        return [(0, "rows (token vectors)"), (1, "columns (embedding dimensions)")]
    layout = slot_layout(slot)
    if layout.kind == "keras":
        out_axis, in_axis = -1, -2
    elif layout.kind == "torch_transpose":
        out_axis, in_axis = 1, 0
    elif layout.kind == "axes":
        out_axis, in_axis = layout.out_axes[0], layout.in_axes[0]
    else:
        out_axis, in_axis = 0, 1
    return [(out_axis, "output units (incoming weights)"), (in_axis, "input units (outgoing weights)")]


def _duplicate_findings(slot: Slot, expectation: Expectation | None, position: str) -> list[AuditFinding]:
    """Copied units, looked for in the whole tensor (an embedding's zero padding row included, so that the indices
    are the real ones and a second zero row counts as a copy of it)."""
    structured = expectation is not None and not expectation.distribution.iid
    if position == "vector" or structured:
        return []
    found = []
    for axis, what in _unit_axes(slot):
        dup = _stats.find_duplicates(slot.tensor, axis)
        if dup is not None:
            message = (f"{slot.key}: {what} {dup.first} and {dup.second} are identical ({dup.copies} slice(s) along "
                       f"axis {dup.axis} copy another); a random draw never repeats, so this is a copy, and units "
                       "that start equal stay symmetric.")  # fmt: skip
            found.append(_finding("duplicate_units", "error", slot, message, axis=dup.axis, first=dup.first,
                                  second=dup.second, copies=dup.copies))  # fmt: skip
    return found


def _random_findings(
    slot: Slot,
    m: _stats.Measurement,
    expectation: Expectation | None,
    position: str,
    depth_factor: float,
    ctx: _Context,
    row: ParameterAudit,
) -> list[AuditFinding]:
    if expectation is None:
        return _off_rule(slot, m, position, row)
    d = expectation.distribution
    if expectation.constant:
        severity: Severity = "error" if expectation.explicit else "warning"
        return [_finding("value_mismatch", severity, slot, f"{slot.key} holds random values (std {m.std:.4g}) where "
                         f"{expectation.rule} sets the constant {d.mean:.4g}.", std=m.std)]  # fmt: skip
    sigma, mu = d.std * depth_factor, d.mean * depth_factor
    row.expected_std, row.expected_mean = sigma, mu
    scaled = " scaled by 1/√N for depth" if depth_factor != 1.0 else ""
    found: list[AuditFinding] = []
    if d.iid:
        row.p_value = _stats.variance_p_value(m, sigma)
        off = _stats.std_mismatch(m, sigma, significance=ctx.significance, min_deviation=ctx.min_deviation)
    else:  # a structured draw (orthogonal, identity, ...): its std is exact, so compare it directly
        off = abs(m.std / sigma - 1.0) > ctx.min_deviation
    if off:
        severity, note = _mismatch_severity(expectation, position, row, m, ctx)
        p = "" if row.p_value is None else f", p = {row.p_value:.2g}" if row.p_value > 0 else ", p < 1e-300"
        found.append(_finding("std_mismatch", severity, slot, f"{slot.key} has std {m.std:.4g} where "
                              f"{expectation.rule}{scaled} draws std {sigma:.4g} (ratio {m.std / sigma:.3g}{p}); "
                              f"{note}", std=m.std, expected_std=sigma, p_value=row.p_value))  # fmt: skip
    if d.iid and _stats.mean_mismatch(m, mu, sigma, significance=ctx.significance):
        severity = "error" if expectation.explicit else "warning"
        found.append(_finding("mean_mismatch", severity, slot, f"{slot.key} has mean {m.mean:.4g} where "
                              f"{expectation.rule} draws mean {mu:.4g} (std {sigma:.4g}).", mean=m.mean))  # fmt: skip
    eps = torch.finfo(slot.tensor.dtype).eps if slot.tensor.is_floating_point() else 0.0
    shape = None if off else _stats.family_mismatch(m, _scaled(d, depth_factor), significance=ctx.significance,
                                                    eps=eps)  # fmt: skip
    if shape is not None:
        severity = "warning" if expectation.explicit else "info"
        found.append(_finding("family_mismatch", severity, slot, f"{slot.key}: the std fits {expectation.rule}, but "
                              f"not its shape: {shape}.", kurtosis=m.kurtosis))  # fmt: skip
    return found


def _scaled(d: Distribution, factor: float) -> Distribution:
    """``d`` for values multiplied by ``factor`` (a residual projection scaled for depth)."""
    if factor == 1.0:
        return d
    return replace(d, mean=d.mean * factor, std=d.std * factor, low=d.low * factor, high=d.high * factor,
                   loc=d.loc * factor, sigma=d.sigma * factor)  # fmt: skip


def _mismatch_severity(
    expectation: Expectation, position: str, row: ParameterAudit, m: _stats.Measurement, ctx: _Context
) -> tuple[Severity, str]:
    if expectation.explicit:
        return "error", "the model is not initialized as the scheme says."
    if ctx.declared is not None and _declared_fit(m.std, ctx.declared[1], position, ctx):
        return "info", f"it matches the model's declared std, {ctx.declared[0]} (its own framework's default)."
    if position in _MATRIX_POSITIONS and row.rule_ratio is not None:
        if 1.0 / _stats.RULE_FACTOR <= row.rule_ratio <= _stats.RULE_FACTOR:
            return "warning", f"not torch's default, but near the fan-based rule {row.closest_rule}."
        return "error", (f"far from every fan-based rule (the nearest, {row.closest_rule}, is off by "
                         f"{_ratio_text(row.rule_ratio)}).")  # fmt: skip
    return "warning", "not torch's default."


def _declared_fit(std: float, declared: float, position: str, ctx: _Context) -> bool:
    targets = [declared] + ([declared / math.sqrt(ctx.depth)] if position == "residual" and ctx.depth > 1 else [])
    return any(abs(std / t - 1.0) <= ctx.min_deviation for t in targets)


def _ratio_text(ratio: float) -> str:
    return f"a factor {ratio:.3g}" if ratio >= 1 else f"a factor 1/{1 / ratio:.3g}"


def _off_rule(slot: Slot, m: _stats.Measurement, position: str, row: ParameterAudit) -> list[AuditFinding]:
    if position not in _MATRIX_POSITIONS or row.rule_ratio is None:
        return []
    if 1.0 / _stats.RULE_FACTOR <= row.rule_ratio <= _stats.RULE_FACTOR:
        return []
    message = (f"{slot.key} ({slot.module_type}, no rule covers it) has std {m.std:.4g}, far from every fan-based "
               f"rule: the nearest, {row.closest_rule}, is off by {_ratio_text(row.rule_ratio)} (more than "
               f"×/÷{_stats.RULE_FACTOR:g}).")  # fmt: skip
    return [_finding("off_rule", "warning", slot, message, std=m.std, closest_rule=row.closest_rule,
                     ratio=row.rule_ratio)]  # fmt: skip


# -- residual projections ----------------------------------------------------------------------------------------
def _residual_verdict(
    slot: Slot, m: _stats.Measurement, expectation: Expectation | None, ctx: _Context
) -> ResidualVerdict | None:
    expected = None if expectation is None or expectation.constant else expectation.distribution.std
    # A scheme you named sets the base std; the model's declared std is the base only against its own defaults.
    declared = None if ctx.reference.explicit and expected else ctx.declared
    base = base_std(ctx.residuals[slot.name], declared=declared, expected=expected, stds=ctx.stds)
    return None if base is None else judge(m.std, ctx.depth, *base)


def _residual_finding(slot: Slot, verdict: ResidualVerdict) -> AuditFinding:
    figures = {"factor": verdict.factor, "depth": verdict.depth, "base_std": verdict.base}
    if verdict.verdict == "not_scaled":
        message = (f"residual projection not scaled for depth: {slot.key} writes into the residual stream "
                   f"{verdict.describe()} (N = {verdict.depth} residual projections). GPT-2 scales the weights of "
                   "residual layers by 1/√N so that the stream's variance does not grow with depth (Radford et al. "
                   "2019, §2.3).")  # fmt: skip
        return _finding("residual_not_scaled", "warning", slot, message, **figures)
    if verdict.verdict == "other":
        return _finding("residual_other", "info", slot, f"{slot.key} is a residual output projection, "
                        f"{verdict.describe()}.", **figures)  # fmt: skip
    return _finding("residual_scaled", "info", slot, f"{slot.key} is a residual output projection, "
                    f"{verdict.describe()}.", **figures)  # fmt: skip


# -- model-wide findings -----------------------------------------------------------------------------------------
def _tied(model: nn.Module, rows: list[ParameterAudit]) -> list[AuditFinding]:
    groups: dict[int, list[str]] = defaultdict(list)
    for name, param in model.named_parameters(remove_duplicate=False):
        groups[id(param)].append(name)
    by_name = {r.key: r for r in rows}
    found = []
    for names in groups.values():
        if len(names) < 2:
            continue
        first, others = names[0], tuple(names[1:])
        if first in by_name:
            by_name[first].tied_to = others
        found.append(AuditFinding("tied", "info", (first, *others), f"{', '.join(others)} is tied to {first}: one "
                                  f"tensor, audited once as {first}.", {"names": list(names)}))  # fmt: skip
    return found


def _uncovered(uncovered: list[Slot], reference: Reference) -> list[AuditFinding]:
    by_type: dict[str, list[Slot]] = defaultdict(list)
    for slot in uncovered:
        cls = type(slot.module)
        by_type[f"{cls.__module__}.{cls.__qualname__}"].append(slot)
    found = []
    for qualname, group in by_type.items():
        keys = tuple(s.key for s in group)
        if reference.explicit:
            message = (f"no rule of {reference.name} covers {len(keys)} parameter(s) of {qualname}: initialize would "
                       "leave them as they are; they are judged by the fan-based rules and the model's declared std "
                       "only.")  # fmt: skip
            found.append(AuditFinding("uncovered", "warning", keys, message, {"module_type": qualname}))
        else:
            message = (f"torch has no default for {len(keys)} parameter(s) of {qualname} (not a torch.nn layer the "
                       "audit knows); they are judged by the fan-based rules and the model's declared std "
                       "only.")  # fmt: skip
            found.append(AuditFinding("uncovered", "info", keys, message, {"module_type": qualname}))
    return found
