"""The measurements and tests of an audit: a tensor's moments, the variance, mean and shape tests against an
expected distribution, duplicated slices, and the fan-based rules a weight's std is compared with.

Every threshold is a documented constant here; :data:`THRESHOLDS` lists them for the report.

**The variance test.** For ``n`` values drawn independently from a distribution of variance σ², the statistic
``T = n·s²/σ² = Σ(xᵢ − x̄)²/σ²`` follows χ²(n − 1) exactly when the draw is normal (Cochran's theorem). The audit
rejects "the values were drawn with std σ" when the two-sided p-value ``2·min(P(χ² ≤ T), P(χ² ≥ T))`` is below
:data:`SIGNIFICANCE` *and* the observed std is more than :data:`MIN_RELATIVE_DEVIATION` away from σ: the p-value
alone would flag a 1% deviation in a tensor of a hundred million entries. For the lighter-tailed families an
initializer draws (uniform, excess kurtosis −1.2; normal truncated at ±2σ, −0.634) ``s²`` varies less than χ²
assumes (Var(s²) ≈ σ⁴(2/(n−1) + κ/n)), so the test is conservative there: it never flags more often than stated.

**The mean test.** ``z = (x̄ − μ)·√n/σ`` is N(0, 1) for any distribution of finite variance (central limit theorem);
a mean shift is reported when ``2·P(Z ≥ |z|) <`` :data:`SIGNIFICANCE` and ``|x̄ − μ| >``
:data:`MIN_MEAN_SHIFT` · σ.

**The shape test** tells a uniform draw from a normal one: values outside a bounded family's support prove it
outright; otherwise the sample excess kurtosis ``g₂`` is compared with the family's (normal 0, uniform −1.2,
truncated normal at ±2σ −0.634) by ``z = (g₂ − κ)/√(24/n)`` (the normal-theory standard error, conservative for the
lighter-tailed families), on tensors of at least :data:`FAMILY_MIN_SIZE` values and gaps over
:data:`FAMILY_MIN_KURTOSIS_GAP`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from scipy import stats

from initlab.catalog import Distribution
from initlab.fans import Fans

#: Two-sided p-value below which a test rejects the expected distribution. One in a million: an audit of a model of a
#: thousand parameters raises a false alarm about once in a thousand audits.
SIGNIFICANCE = 1e-6
#: The smallest relative deviation of the std, |s/σ − 1|, that counts: 20%, a fifth of the gap between LeCun's
#: variance 1/fan_in and He's 2/fan_in (a factor √2 in std), so every mix-up of two standard rules is caught.
MIN_RELATIVE_DEVIATION = 0.2
#: The smallest mean shift that counts, in units of the expected std.
MIN_MEAN_SHIFT = 0.2
#: A weight's std fits a fan-based rule when it is within this factor of the rule's std, either way.
RULE_FACTOR = 2.0
#: The shape test needs this many values: below, the kurtosis is too noisy to tell the families apart.
FAMILY_MIN_SIZE = 4096
#: The smallest gap between the sample's excess kurtosis and the family's that counts (uniform and normal differ
#: by 1.2; a normal truncated at ±2σ differs from both by about 0.6).
FAMILY_MIN_KURTOSIS_GAP = 0.5
#: Duplicated slices are looked for only in slices of at least this many entries (32-bit and wider floats) or
#: :data:`MIN_SLICE_16BIT` entries (16-bit floats): two continuous draws of that length tie by chance with a
#: probability far below 1e-9 even among 10⁵ slices, so a tie means a copy.
MIN_SLICE = 4
MIN_SLICE_16BIT = 8

THRESHOLDS: dict[str, float] = {
    "significance": SIGNIFICANCE,
    "min_relative_deviation": MIN_RELATIVE_DEVIATION,
    "min_mean_shift": MIN_MEAN_SHIFT,
    "rule_factor": RULE_FACTOR,
    "family_min_size": FAMILY_MIN_SIZE,
    "family_min_kurtosis_gap": FAMILY_MIN_KURTOSIS_GAP,
    "min_slice": MIN_SLICE,
    "min_slice_16bit": MIN_SLICE_16BIT,
}


# -- measuring ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Measurement:
    """Moments of a tensor's finite values (float64): count, non-finite count, mean, population std, range and
    excess kurtosis (NaN when undefined)."""

    n: int
    nonfinite: int
    mean: float
    std: float
    min: float
    max: float
    kurtosis: float

    @property
    def constant(self) -> bool:
        """Whether every finite value is the same (an empty tensor counts as constant)."""
        return self.n == 0 or self.min == self.max


def measure(values: torch.Tensor) -> Measurement:
    """The :class:`Measurement` of ``values`` (any shape, device and floating dtype)."""
    flat = values.detach().reshape(-1).to(device="cpu", dtype=torch.float64)
    finite = torch.isfinite(flat)
    nonfinite = int((~finite).sum())
    if nonfinite:
        flat = flat[finite]
    n = flat.numel()
    if n == 0:
        return Measurement(0, nonfinite, math.nan, math.nan, math.nan, math.nan, math.nan)
    mean = float(flat.mean())
    centred = flat - mean
    var = float(centred.square().mean())
    kurtosis = float(centred.pow(4).mean()) / var**2 - 3.0 if var > 0 else math.nan
    return Measurement(n, nonfinite, mean, math.sqrt(var), float(flat.min()), float(flat.max()), kurtosis)


# -- tests against an expected distribution ----------------------------------------------------------------------
def variance_p_value(m: Measurement, sigma: float) -> float:
    """Two-sided p-value of ``n·s²/σ² ~ χ²(n − 1)`` (see the module docstring); 1.0 when it cannot be computed."""
    if m.n < 2 or not sigma > 0 or not math.isfinite(m.std):
        return 1.0
    t = m.n * m.std**2 / sigma**2
    dof = m.n - 1
    return min(1.0, 2.0 * min(float(stats.chi2.cdf(t, dof)), float(stats.chi2.sf(t, dof))))


def mean_p_value(m: Measurement, mu: float, sigma: float) -> float:
    """Two-sided p-value of ``z = (x̄ − μ)·√n/σ ~ N(0, 1)``; 1.0 when it cannot be computed."""
    if m.n < 1 or not sigma > 0:
        return 1.0
    z = (m.mean - mu) * math.sqrt(m.n) / sigma
    return min(1.0, 2.0 * float(stats.norm.sf(abs(z))))


def std_mismatch(m: Measurement, sigma: float, *, significance: float, min_deviation: float) -> bool:
    """Whether the std test rejects σ: significant and by more than ``min_deviation`` relative."""
    if not sigma > 0:
        return False
    relative = abs(m.std / sigma - 1.0)
    return relative > min_deviation and variance_p_value(m, sigma) < significance


def mean_mismatch(m: Measurement, mu: float, sigma: float, *, significance: float) -> bool:
    """Whether the mean test rejects μ: significant and shifted by more than :data:`MIN_MEAN_SHIFT` · σ."""
    if not sigma > 0:
        return False
    return abs(m.mean - mu) > MIN_MEAN_SHIFT * sigma and mean_p_value(m, mu, sigma) < significance


def family_kurtosis(d: Distribution) -> float | None:
    """The excess kurtosis of an i.i.d. family, ``None`` for the others."""
    if not d.iid:
        return None
    if d.family == "normal":
        return 0.0
    if d.family == "uniform":
        return -1.2
    if d.family == "truncated_normal" and d.sigma > 0:
        a, b = (d.low - d.loc) / d.sigma, (d.high - d.loc) / d.sigma
        return float(stats.truncnorm(a, b).stats(moments="k"))
    return None


def outside_support(m: Measurement, d: Distribution, eps: float) -> bool:
    """Whether some value lies outside the bounded support ``[low, high]`` of ``d`` (with a rounding margin of
    ``eps`` relative, the dtype's resolution)."""
    if not (math.isfinite(d.low) and math.isfinite(d.high)):
        return False
    margin = 4.0 * eps * max(abs(d.low), abs(d.high))
    return m.min < d.low - margin or m.max > d.high + margin


def family_mismatch(m: Measurement, d: Distribution, *, significance: float, eps: float) -> str | None:
    """Why the values cannot come from ``d``'s family (support or kurtosis), or ``None``."""
    if outside_support(m, d, eps):
        return f"values reach [{m.min:.4g}, {m.max:.4g}], outside the support [{d.low:.4g}, {d.high:.4g}]"
    kappa = family_kurtosis(d)
    if kappa is None or m.n < FAMILY_MIN_SIZE or not math.isfinite(m.kurtosis):
        return None
    gap = m.kurtosis - kappa
    p = 2.0 * float(stats.norm.sf(abs(gap) / math.sqrt(24.0 / m.n)))
    if abs(gap) > FAMILY_MIN_KURTOSIS_GAP and p < significance:
        return f"excess kurtosis {m.kurtosis:.3g} where a {d.family.replace('_', ' ')} draw has {kappa:.3g}"
    return None


# -- duplicated slices -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Duplicates:
    """Slices along one axis that equal another: the first pair found and how many slices are copies."""

    axis: int
    first: int
    second: int
    copies: int


def min_slice(dtype: torch.dtype) -> int:
    """The shortest slice in which a tie means a copy (see :data:`MIN_SLICE`)."""
    return MIN_SLICE_16BIT if dtype in (torch.float16, torch.bfloat16) else MIN_SLICE


def find_duplicates(values: torch.Tensor, axis: int) -> Duplicates | None:
    """Exactly equal slices of ``values`` along ``axis`` (e.g. two rows of a weight matrix), or ``None``.

    Slices shorter than :func:`min_slice` are not compared (a chance tie is too likely there).
    """
    if values.dim() < 2 or values.shape[axis] < 2:
        return None
    rows = values.detach().movedim(axis, 0).reshape(values.shape[axis], -1)
    if rows.shape[1] < min_slice(values.dtype):
        return None
    rows = rows.to(device="cpu", dtype=torch.float64)
    unique, inverse, counts = torch.unique(rows, dim=0, return_inverse=True, return_counts=True)
    if unique.shape[0] == rows.shape[0]:
        return None
    group = int(torch.nonzero(counts > 1)[0])
    members = torch.nonzero(inverse == group).flatten().tolist()
    return Duplicates(axis % values.dim(), members[0], members[1], rows.shape[0] - unique.shape[0])


# -- fan-based rules ---------------------------------------------------------------------------------------------
#: The gains of the fan-based rules, with the rule each is known by: σ = gain / √fan.
RULE_GAINS: tuple[tuple[str, str, float], ...] = (
    ("torch default", "(1/√3)", 1.0 / math.sqrt(3.0)),  # kaiming_uniform_(a=√5): gain² = 2/(1 + 5)
    ("SELU (torch)", "(3/4)", 0.75),  # torch.nn.init.calculate_gain("selu")
    ("LeCun/Glorot", "1", 1.0),  # LeCun et al. 1998; Glorot & Bengio 2010
    ("He", "√2", math.sqrt(2.0)),  # He et al. 2015
    ("tanh", "(5/3)", 5.0 / 3.0),  # torch.nn.init.calculate_gain("tanh")
)
_MODE_TEXT: dict[str, str] = {"fan_in": "fan_in", "fan_out": "fan_out", "fan_avg": "((fan_in+fan_out)/2)"}


@dataclass(frozen=True)
class RuleFit:
    """The rule whose std is closest to the observed one (in ratio), and the ratio observed/rule."""

    rule: str
    std: float
    ratio: float

    @property
    def fits(self) -> bool:
        return 1.0 / RULE_FACTOR <= self.ratio <= RULE_FACTOR


def fan_rules(fans: Fans, *, declared: tuple[str, float] | None = None, depth: int = 1) -> list[tuple[str, float]]:
    """Every fan-based rule's std at ``fans`` (σ = gain/√fan for the gains of :data:`RULE_GAINS` and fan_in, fan_out
    and their mean), plus a fixed std the model declares; with ``depth`` N > 1 (a residual projection) each also
    divided by √N."""
    rules: list[tuple[str, float]] = []
    for label, gain_text, g in RULE_GAINS:
        for mode, text in _MODE_TEXT.items():
            rules.append((f"{label} {gain_text}/√{text}", g / math.sqrt(max(1.0, fans.get(mode)))))
    if declared is not None:
        rules.append((f"declared {declared[0]}", declared[1]))
    if depth > 1:
        rules += [(f"{name}, /√{depth} for depth", std / math.sqrt(depth)) for name, std in rules]
    return rules


def closest_rule(std: float, rules: list[tuple[str, float]]) -> RuleFit | None:
    """The rule nearest ``std`` on a log scale, or ``None`` when ``std`` is not positive or there are no rules."""
    if not rules or not std > 0:
        return None
    name, rule_std = min(rules, key=lambda r: abs(math.log(std / r[1])))
    return RuleFit(name, rule_std, std / rule_std)
