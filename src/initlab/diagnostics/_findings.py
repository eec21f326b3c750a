"""Findings: the textbook failures of an initialization, read off a diagnosis's figures, each with a fix.

Every threshold below is a documented constant. A finding carries a severity (``"warning"`` past the first
threshold, ``"error"`` past the second), the layers it concerns, the figures it was read from and a suggestion that
names a scheme of the catalog and its expected effect.
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal, NamedTuple, get_args

from initlab.diagnostics._stats import SIGMOID_SATURATION, TANH_SATURATION, LayerStats
from initlab.fileio import json_safe

FindingKind = Literal[
    "symmetry",
    "vanishing_signal",
    "exploding_signal",
    "saturation",
    "dead_units",
    "vanishing_gradients",
    "exploding_gradients",
]
FINDING_KINDS: tuple[FindingKind, ...] = get_args(FindingKind)
Severity = Literal["warning", "error"]

#: Symmetry: a layer with any duplicate unit is reported (random schemes never make one: a duplicate means a zero
#: or constant initialization, and duplicates stay duplicates under gradient descent); "error" when at least this
#: fraction of its units duplicate another.
SYMMETRY_ERROR_FRACTION = 0.5
#: Signal: the pre-activation std of a layer over the input's std. Below 0.1 the signal has vanished by a factor
#: of ten, "error" below 1e-3; above 10 it has exploded, "error" above 1e3. Variance-preserving schemes keep the
#: ratio near 1 at any depth (Glorot & Bengio 2010; He et al. 2015); a mis-scaled one multiplies it by a constant
#: factor per layer, so it leaves [0.1, 10] within a few dozen layers.
VANISHING_SIGNAL_RATIO = 0.1
VANISHING_SIGNAL_ERROR = 1e-3
EXPLODING_SIGNAL_RATIO = 10.0
EXPLODING_SIGNAL_ERROR = 1e3
#: Saturation: a tanh or sigmoid layer with more than 25% of its outputs saturated (see ``TANH_SATURATION``,
#: ``SIGMOID_SATURATION``); "error" above 50%. Not lower: tanh's recommended gain 5/3 gives pre-activations of std
#: about 1.7 and so about 11% of outputs beyond 0.99 by design; 25% takes a pre-activation std of 2.3.
SATURATION_FRACTION = 0.25
SATURATION_ERROR_FRACTION = 0.5
#: Dead units: a ReLU-family layer with more than 10% of its units off on the whole batch; "error" above 50%.
#: A well-initialized ReLU layer on a batch of 256 has almost none (each unit is off for about half the samples).
DEAD_FRACTION = 0.1
DEAD_ERROR_FRACTION = 0.5
#: Gradients: the std of ∂loss/∂output at the first layer over that at the last layer (the backpropagated signal).
#: Below 1e-2 it has vanished on its way back ("error" below 1e-4); above 1e2 it has exploded ("error" above 1e4).
#: Widths move the ratio by a small factor in a well-initialized net, never by a hundred. (The ratio of the
#: weight gradients' norms is reported too, but is no test: ‖∂loss/∂W_l‖ ∝ ‖∂loss/∂y_l‖·‖x_l‖, and when the forward
#: signal and the backward one shrink by the same factor per layer, as under Glorot with ReLU, the two cancel.)
VANISHING_GRADIENT_RATIO = 1e-2
VANISHING_GRADIENT_ERROR = 1e-4
EXPLODING_GRADIENT_RATIO = 1e2
EXPLODING_GRADIENT_ERROR = 1e4

THRESHOLDS: dict[str, float] = {
    "tanh_saturation": TANH_SATURATION,
    "sigmoid_saturation": SIGMOID_SATURATION,
    "symmetry_error_fraction": SYMMETRY_ERROR_FRACTION,
    "vanishing_signal_ratio": VANISHING_SIGNAL_RATIO,
    "vanishing_signal_error": VANISHING_SIGNAL_ERROR,
    "exploding_signal_ratio": EXPLODING_SIGNAL_RATIO,
    "exploding_signal_error": EXPLODING_SIGNAL_ERROR,
    "saturation_fraction": SATURATION_FRACTION,
    "saturation_error_fraction": SATURATION_ERROR_FRACTION,
    "dead_fraction": DEAD_FRACTION,
    "dead_error_fraction": DEAD_ERROR_FRACTION,
    "vanishing_gradient_ratio": VANISHING_GRADIENT_RATIO,
    "vanishing_gradient_error": VANISHING_GRADIENT_ERROR,
    "exploding_gradient_ratio": EXPLODING_GRADIENT_RATIO,
    "exploding_gradient_error": EXPLODING_GRADIENT_ERROR,
}


@dataclass(frozen=True)
class Finding:
    """One problem: what, how bad, where, the figures it was read from, and what to do about it.

    ``scheme`` is the name of the suggested scheme or initializer, as :func:`initlab.initialize` takes it.
    """

    kind: FindingKind
    severity: Severity
    layers: tuple[str, ...]
    message: str
    suggestion: str
    scheme: str
    figures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Every field in order, as JSON: ``layers`` a list and ``figures`` made JSON-safe."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**out, "layers": list(self.layers), "figures": json_safe(self.figures)}


# The fix for each activation: (scheme name for initialize(), what it is, what it does).
_FIXES: dict[str, tuple[str, str, str]] = {
    "relu": (
        "he_normal",
        "He normal (variance 2/fan_in, He et al. 2015; the 'auto' scheme picks it for ReLU layers)",
        "it keeps the pre-activation variance constant through ReLU layers: a per-layer factor near 1",
    ),
    "tanh": (
        "auto",
        "Glorot with gain 5/3, VarianceScaling(25/9, 'fan_avg') (the 'auto' scheme's choice for tanh), or "
        "Orthogonal(gain=5/3) for deep nets",
        "pre-activations of std near 1, mostly in tanh's linear range: few saturated units and a per-layer factor "
        "near 1",
    ),
    "sigmoid": (
        "glorot_normal",
        "Glorot normal (variance 2/(fan_in + fan_out), Glorot & Bengio 2010)",
        "pre-activations of std near 1, where sigmoid's slope is largest: few saturated units",
    ),
    "selu": (
        "lecun_normal",
        "LeCun normal (variance 1/fan_in, Klambauer et al. 2017)",
        "SELU's self-normalizing fixed point (mean 0, variance 1) at every layer",
    ),
    "other": (
        "auto",
        "the 'auto' scheme (variance scaled by the activation's numeric gain)",
        "a pre-activation variance that stays near its first layer's value",
    ),
    "none": (
        "lecun_normal",
        "LeCun normal (variance 1/fan_in)",
        "a linear layer that keeps its input's variance",
    ),
}


def _dominant(layers: Sequence[LayerStats]) -> str:
    kinds = Counter(layer.activation_kind for layer in layers if layer.activation_kind != "none")
    return kinds.most_common(1)[0][0] if kinds else "none"


def _fix(kind: str) -> tuple[str, str, str]:
    return _FIXES.get(kind, _FIXES["other"])


def _names(layers: Sequence[LayerStats]) -> tuple[str, ...]:
    return tuple(layer.name for layer in layers)


def _span(names: Sequence[str]) -> str:
    if len(names) <= 6:
        return ", ".join(names)
    return f"{', '.join(names[:3])}, ..., {', '.join(names[-2:])} ({len(names)} layers)"


def _g(x: float) -> str:
    return f"{x:.3g}"


def signal_chain(layers: Sequence[LayerStats], input_std: float | None) -> tuple[float, list[float]]:
    """The reference std (the input's, else the first layer's) and each layer's pre-activation std over it."""
    ref = input_std if input_std is not None and input_std > 0 else (layers[0].pre_std if layers else float("nan"))
    if not ref or not math.isfinite(ref) or ref <= 0:
        return float("nan"), [float("nan")] * len(layers)
    return ref, [layer.pre_std / ref for layer in layers]


def per_layer_factor(ratio: float, steps: int) -> float:
    """The constant factor per layer that compounds to ``ratio`` over ``steps`` layers."""
    if steps <= 0 or not math.isfinite(ratio):
        return float("nan")
    return ratio ** (1.0 / steps) if ratio > 0 else 0.0


def find(layers: Sequence[LayerStats], input_std: float | None, grad_ratio: float | None) -> list[Finding]:
    """Every finding the figures support, in the order of :data:`FINDING_KINDS`."""
    out: list[Finding] = []
    if not layers:
        return out
    out += _symmetry(layers)
    out += _signal(layers, input_std)
    out += _saturation(layers)
    out += _dead(layers)
    if grad_ratio is not None:
        out += _gradients(layers, grad_ratio)
    return out


def _symmetry(layers: Sequence[LayerStats]) -> list[Finding]:
    hit = [layer for layer in layers if layer.units > 1 and layer.duplicates > 0]
    if not hit:
        return []
    worst = max(layer.duplicates / (layer.units - 1) for layer in hit)
    severity: Severity = "error" if worst >= SYMMETRY_ERROR_FRACTION else "warning"
    figures = {layer.name: {"duplicates": layer.duplicates, "units": layer.units} for layer in hit}
    full = [layer.name for layer in hit if layer.duplicates == layer.units - 1]
    detail = f"in {_span(full)} every unit is identical" if full else "some units are identical"
    return [
        Finding(
            "symmetry",
            severity,
            _names(hit),
            f"Symmetric units in {_span(_names(hit))}: {detail} (identical weight rows or identical activations over "
            "the batch). Identical units get identical gradients, so training can never tell them apart: the layer "
            "behaves as if it had one unit per group. This is what a zero or constant initialization does.",
            "Initialize weights randomly: the 'auto' scheme (He for ReLU layers, Glorot with gain 5/3 for tanh, "
            "LeCun for SELU); keep Zeros, Ones and Constant for biases. Expected: no duplicate units, and each unit "
            "learns its own feature.",
            "auto",
            figures,
        )
    ]


class _Drift(NamedTuple):
    """A direction in which a ratio leaves its healthy range: ``past(r, t)`` says whether ``r`` is beyond the
    threshold ``t`` that way, and ``worst`` picks the ratio furthest that way."""

    past: Callable[[float, float], bool]
    worst: Callable[[Iterable[float]], float]


_BELOW = _Drift(operator.lt, min)
_ABOVE = _Drift(operator.gt, max)

# The signal's two failures, checked in this order: (kind, direction, threshold, error threshold, message).
_SIGNAL_DRIFTS: tuple[tuple[FindingKind, _Drift, float, float, str], ...] = (
    (
        "vanishing_signal",
        _BELOW,
        VANISHING_SIGNAL_RATIO,
        VANISHING_SIGNAL_ERROR,
        "Vanishing signal: the pre-activation std falls below {threshold:g}× the input's in {span}, down to "
        "{worst}× (per-layer factor {factor} over {n} layers). Deep layers see almost no signal and their gradients "
        "vanish with it.",
    ),
    (
        "exploding_signal",
        _ABOVE,
        EXPLODING_SIGNAL_RATIO,
        EXPLODING_SIGNAL_ERROR,
        "Exploding signal: the pre-activation std exceeds {threshold:g}× the input's in {span}, up to {worst}× "
        "(per-layer factor {factor} over {n} layers). The weights are too large for their fan-in.",
    ),
)


def _signal(layers: Sequence[LayerStats], input_std: float | None) -> list[Finding]:
    ref, ratios = signal_chain(layers, input_std)
    if not math.isfinite(ref):
        return []
    factor = per_layer_factor(ratios[-1], len(layers))
    figures_common = {
        "reference_std": ref,
        "last_ratio": ratios[-1],
        "per_layer_factor": factor,
        "pre_std": {layer.name: layer.pre_std for layer in layers},
    }
    scheme, what, effect = _fix(_dominant(layers))
    out: list[Finding] = []
    for kind, drift, threshold, error, message in _SIGNAL_DRIFTS:
        hit = _names([layer for layer, r in zip(layers, ratios, strict=True) if drift.past(r, threshold)])
        if not hit:
            continue
        worst = drift.worst(ratios)
        depth = ratios.index(worst) + 1  # the factor per layer that compounds to the worst ratio where it occurs
        text = message.format(threshold=threshold, span=_span(hit), worst=_g(worst),
                              factor=_g(per_layer_factor(worst, depth)), n=depth)  # fmt: skip
        out.append(
            Finding(
                kind,
                "error" if drift.past(worst, error) else "warning",
                hit,
                text,
                f"Use {what}; expected: {effect}.",
                scheme,
                {**figures_common, "worst_ratio": worst},
            )
        )
    return out


def _saturation(layers: Sequence[LayerStats]) -> list[Finding]:
    hit = [layer for layer in layers if layer.saturated is not None and layer.saturated > SATURATION_FRACTION]
    if not hit:
        return []
    worst = max(layer.saturated or 0.0 for layer in hit)
    scheme, what, effect = _fix(_dominant(hit))
    return [
        Finding(
            "saturation",
            "error" if worst > SATURATION_ERROR_FRACTION else "warning",
            _names(hit),
            f"Saturated units in {_span(_names(hit))}: up to {worst:.0%} of the outputs are at the activation's "
            f"limits (|tanh| > {TANH_SATURATION}, sigmoid < {SIGMOID_SATURATION} or > {1 - SIGMOID_SATURATION}), "
            "where its slope is nearly 0 and almost no gradient passes. The weights are too large.",
            f"Use {what}; expected: {effect}.",
            scheme,
            {layer.name: {"saturated": layer.saturated, "pre_std": layer.pre_std} for layer in hit},
        )
    ]


def _dead(layers: Sequence[LayerStats]) -> list[Finding]:
    hit = [layer for layer in layers if layer.dead is not None and layer.dead > DEAD_FRACTION]
    if not hit:
        return []
    worst = max(layer.dead or 0.0 for layer in hit)
    return [
        Finding(
            "dead_units",
            "error" if worst > DEAD_ERROR_FRACTION else "warning",
            _names(hit),
            f"Dead ReLU units in {_span(_names(hit))}: up to {worst:.0%} of the units are off (pre-activation ≤ 0) "
            "on every sample of the batch, so they output 0 and get no gradient. Weights too small for ReLU or "
            "negative biases cause it; so does depth, as a deep ReLU stack maps all inputs to nearly parallel "
            "vectors.",
            "Use He normal (variance 2/fan_in, He et al. 2015; the 'auto' scheme picks it for ReLU layers) with "
            "zero biases (negative biases switch units off), or a LeakyReLU; expected: each unit on for about half "
            "the samples and almost no dead units.",
            "he_normal",
            {layer.name: {"dead": layer.dead, "pre_mean": layer.pre_mean, "pre_std": layer.pre_std} for layer in hit},
        )
    ]


# The backward signal's two failures, in the same form as _SIGNAL_DRIFTS.
_GRADIENT_DRIFTS: tuple[tuple[FindingKind, _Drift, float, float, str], ...] = (
    (
        "vanishing_gradients",
        _BELOW,
        VANISHING_GRADIENT_RATIO,
        VANISHING_GRADIENT_ERROR,
        "Vanishing gradients: the gradient reaching the first layer's output is {ratio}× the one at the last "
        "layer's (per-layer factor {factor}); it is below {threshold:g}× in {span}, whose inputs therefore barely "
        "learn.",
    ),
    (
        "exploding_gradients",
        _ABOVE,
        EXPLODING_GRADIENT_RATIO,
        EXPLODING_GRADIENT_ERROR,
        "Exploding gradients: the gradient reaching the first layer's output is {ratio}× the one at the last "
        "layer's (per-layer factor {factor}), above {threshold:g}× in {span}: a learning rate that suits the last "
        "layers will blow up the first ones.",
    ),
)


def _gradients(layers: Sequence[LayerStats], ratio: float) -> list[Finding]:
    stds = {layer.name: layer.grad_output_std for layer in layers if layer.grad_output_std is not None}
    if len(stds) < 2 or math.isnan(ratio):
        return []
    factor = per_layer_factor(ratio, len(stds) - 1)
    last = next(reversed(stds.values())) or 0.0
    figures = {
        "first_over_last": ratio,
        "per_layer_factor": factor,
        "grad_output_std": stds,
        "grad_weight_norm": {layer.name: layer.grad_weight_norm for layer in layers},
    }
    scheme, what, _ = _fix(_dominant(layers))
    for kind, drift, threshold, error, message in _GRADIENT_DRIFTS:
        if not drift.past(ratio, threshold):
            continue
        hit = tuple(n for n, v in stds.items() if v is not None and drift.past(v, threshold * last))
        hit = hit or (next(iter(stds)),)
        return [
            Finding(
                kind,
                "error" if drift.past(ratio, error) else "warning",
                hit,
                message.format(threshold=threshold, span=_span(hit), ratio=_g(ratio), factor=_g(factor)),
                f"Use {what}; expected: gradients of similar size at every layer.",
                scheme,
                figures,
            )
        ]
    return []
