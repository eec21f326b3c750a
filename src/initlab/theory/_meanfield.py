"""The length and correlation maps, their fixed points, χ₁, the depth scales, the phase and the critical line.

Formulas are in :mod:`initlab.theory`. Fixed points and the critical line are found by Brent's method
(``scipy.optimize.brentq``) on a bracket found by stepping, never by iterating a map (which converges arbitrarily
slowly near the critical line).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

import torch

from initlab.checks import check_nonnegative, check_positive
from initlab.theory._activations import ActivationSpec, Nonlinearity, nonlinearity
from initlab.theory._gauss import expect, expect_pair

logger = logging.getLogger(__name__)

Phase = Literal["ordered", "chaotic", "critical"]
PHASES: tuple[str, ...] = get_args(Phase)

#: |χ₁ − 1| at or below this is the critical line.
CRITICAL_TOL = 1e-6
# Below this length, with σ_b² = 0 and φ(0) = 0, the length map has only the fixed point 0 (q^l → 0).
_Q_ZERO = 1e-30
# Above this length the length map is taken to diverge (q* = ∞); 1e12 is far beyond any real network's q.
_Q_INFINITE = 1e12
# Brent's method: relative tolerance on the root (scipy's floor is 4·eps = 8.9e-16).
_RTOL = 1e-13
# δ = 1 − c at which the correlation map is probed for its stable fixed point below 1, from c = 1 down to c = −1.
_DELTA_SCAN = (1e-6, 1e-4, 1e-2, 0.1, 0.3, 0.6, 1.0, 1.4, 2.0)
# The largest weight variance searched for the critical line.
_MAX_WEIGHT_VAR = 1e6


@dataclass(frozen=True)
class MeanField:
    """The mean-field quantities of a deep network at one point (σ_w², σ_b²); see :mod:`initlab.theory`.

    ``q_star`` is 0 when the signal dies out (σ_b² = 0, φ(0) = 0) and ``inf`` when it grows without bound (an
    unbounded activation with χ₁ >= 1); ``xi_q``, ``xi_c`` are ``inf`` where the depth scale diverges.
    """

    activation: str  #: the activation's name
    weight_var: float  #: σ_w²: weights are N(0, σ_w²/fan_in)
    bias_var: float  #: σ_b²: biases are N(0, σ_b²)
    q_star: float  #: the fixed point of the length map reached from q⁰ (the pre-activations' mean square)
    chi_1: float  #: σ_w² E[φ'(√q* z)²]: the mean squared singular value of one layer's Jacobian
    chi_q: float  #: the slope of the length map at q*
    c_star: float  #: the stable fixed point of the correlation map
    chi_c: float  #: the slope of the correlation map at c*: σ_w² E[φ'(u₁)φ'(u₂)]
    xi_q: float  #: −1/ln|χ_q|: the depth over which q^l approaches q*
    xi_c: float  #: −1/ln χ_c: the depth over which c^l approaches c*
    phase: Phase  #: "ordered" (χ₁ < 1), "chaotic" (χ₁ > 1) or "critical" (|χ₁ − 1| <= tol)

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain data (infinite values stay ``inf``; :func:`initlab.fileio.json_safe` writes JSON)."""
        return asdict(self)


# -- the maps ------------------------------------------------------------------------------------------------------
def _length(phi: Nonlinearity, q: float, weight_var: float, bias_var: float) -> float:
    if q == 0.0:
        at_zero = float(phi.fn(torch.zeros(1, dtype=torch.float64))[0])
        return weight_var * at_zero**2 + bias_var
    return weight_var * expect(lambda x: phi.fn(x).square(), q, phi.kinks) + bias_var


def _chi_1(phi: Nonlinearity, q: float, weight_var: float) -> float:
    return weight_var * expect(lambda x: phi.derivative(x).square(), q, phi.kinks)


def _chi_q(phi: Nonlinearity, q: float, weight_var: float) -> float:
    # dL/dq = σ_w² E[z φ(√q z) φ'(√q z)]/√q (Stein's lemma turns Schoenholz's E[φ'² + φφ''] into this, which needs
    # no φ'' and so holds for ReLU's kink too); with x = √q z it is σ_w² E[x φ(x) φ'(x)]/q.
    return weight_var * expect(lambda x: x * phi.fn(x) * phi.derivative(x), q, phi.kinks) / q


def _gap(phi: Nonlinearity, q: float, weight_var: float, bias_var: float, delta: float) -> float:
    """1 − C(1 − δ) at length q, computed as σ_w² E[(φ(u₁) − φ(u₂))²]/(2 L(q)) so that it keeps its digits as δ → 0
    (E[φ(u₁)²] = E[φ(u₂)²], so this is (L(q) − σ_w² E[φ(u₁)φ(u₂)] − σ_b²)/L(q) exactly)."""
    spread = expect_pair(lambda a, b: (phi.fn(a) - phi.fn(b)).square(), q, delta, phi.kinks)
    return weight_var * spread / (2.0 * _length(phi, q, weight_var, bias_var))


def _evaluation_length(q_star: float) -> float:
    """Where the q*-dependent quantities are evaluated: their limits at q* = 0 and q* = ∞ are taken at 1e-30 and
    1e12 (exact for ReLU, leaky ReLU and the identity, whose maps scale with q)."""
    return _Q_ZERO if q_star == 0.0 else _Q_INFINITE if math.isinf(q_star) else q_star


def length_map(
    activation: ActivationSpec, q: float, weight_var: float, bias_var: float = 0.0, *, param: float | None = None
) -> float:
    """One layer of the length map: q^l = σ_w² E[φ(√q^{l-1} z)²] + σ_b², z ~ N(0, 1) (Poole et al. 2016)."""
    phi = nonlinearity(activation, param)
    q = check_nonnegative("q", q)
    return _length(phi, q, check_nonnegative("weight_var", weight_var), check_nonnegative("bias_var", bias_var))


def correlation_map(
    activation: ActivationSpec,
    c: float,
    weight_var: float,
    bias_var: float = 0.0,
    *,
    q: float | None = None,
    param: float | None = None,
) -> float:
    """One layer of the correlation map for two inputs of length q (default: q*):

    C(c) = (σ_w² E[φ(u₁)φ(u₂)] + σ_b²) / L(q),  u₁ = √q z₁,  u₂ = √q (c z₁ + √(1 − c²) z₂)

    (Poole et al. 2016; L(q*) = q*). At q* = 0 and q* = ∞ it is evaluated at q = 1e-30 and 1e12.
    """
    phi = nonlinearity(activation, param)
    weight_var = check_positive("weight_var", weight_var)
    bias_var = check_nonnegative("bias_var", bias_var)
    c = float(c)
    if not -1.0 <= c <= 1.0:
        raise ValueError(f"c must be a correlation in [-1, 1], got {c!r}.")
    if q is None:
        q = _evaluation_length(_fixed_point_q(phi, weight_var, bias_var, 1.0))
    q = check_positive("q", q)
    return 1.0 - _gap(phi, q, weight_var, bias_var, 1.0 - c)


# -- fixed points --------------------------------------------------------------------------------------------------
def _fixed_point_q(phi: Nonlinearity, weight_var: float, bias_var: float, q0: float) -> float:
    """The fixed point of the length map that q^l reaches from q⁰: 0, a finite root, or ∞ if it diverges."""

    def excess(q: float) -> float:
        return _length(phi, q, weight_var, bias_var) - q

    start = excess(q0)
    if abs(start) <= 1e-14 * q0:  # q0 is a fixed point (ReLU at σ_w² = 2, σ_b² = 0 has a line of them)
        return q0
    lo = hi = q0
    if start > 0.0:  # q^l grows: step up until the map falls below the diagonal
        while excess(hi) > 0.0:
            lo, hi = hi, 4.0 * hi
            if hi > _Q_INFINITE:
                return math.inf
    else:  # q^l shrinks: step down until the map rises above it
        while excess(lo) < 0.0:
            hi, lo = lo, lo / 4.0
            if lo < _Q_ZERO:
                return 0.0
    return float(_brentq()(excess, lo, hi, xtol=1e-300, rtol=_RTOL))


def fixed_point_q(
    activation: ActivationSpec,
    weight_var: float,
    bias_var: float = 0.0,
    *,
    q0: float = 1.0,
    param: float | None = None,
) -> float:
    """q*: the fixed point q = L(q) of the length map that q^l reaches from q⁰ = ``q0`` (relative accuracy 1e-13).

    0 when the signal dies out (only with σ_b² = 0 and φ(0) = 0), ``inf`` when it grows past 1e12 (an unbounded
    activation with χ₁ >= 1, such as ReLU at σ_w² >= 2 with σ_b² > 0).
    """
    phi = nonlinearity(activation, param)
    return _fixed_point_q(
        phi,
        check_nonnegative("weight_var", weight_var),
        check_nonnegative("bias_var", bias_var),
        check_positive("q0", q0),
    )


def _c_star(phi: Nonlinearity, q: float, weight_var: float, bias_var: float, chi_1: float) -> float:
    """The largest fixed point c* < 1 of the correlation map, for χ₁ > 1 (where c = 1 is unstable).

    It is the first root in δ = 1 − c of h(δ) = (1 − C(1 − δ))/δ − 1, which tends to χ₁ − 1 > 0 as δ → 0 and is
    <= 0 at δ = 2 (C(−1) >= −1); between its first sign change and the one before, Brent's method finds it.
    """

    def h(delta: float) -> float:
        if delta == 0.0:
            return chi_1 - 1.0
        return _gap(phi, q, weight_var, bias_var, delta) / delta - 1.0

    lo = 0.0
    for delta in _DELTA_SCAN:
        if h(delta) <= 0.0:
            return 1.0 - float(_brentq()(h, lo, delta, xtol=1e-15, rtol=_RTOL))
        lo = delta
    return -1.0  # unreachable: h(2) <= 0


def _depth(chi: float) -> float:
    """−1/ln|χ|: ∞ when |χ| >= 1 − CRITICAL_TOL (no decay), 0 when χ = 0 (immediate)."""
    size = abs(chi)
    if size >= 1.0 - CRITICAL_TOL:
        return math.inf
    if size == 0.0:
        return 0.0
    return -1.0 / math.log(size)


def _phase(chi_1: float, tol: float) -> Phase:
    if abs(chi_1 - 1.0) <= tol:
        return "critical"
    return "ordered" if chi_1 < 1.0 else "chaotic"


def mean_field(
    activation: ActivationSpec,
    weight_var: float,
    bias_var: float = 0.0,
    *,
    param: float | None = None,
    q0: float = 1.0,
    tol: float = CRITICAL_TOL,
) -> MeanField:
    """Every mean-field quantity of a deep fully connected network with weights N(0, σ_w²/fan_in), biases
    N(0, σ_b²) and activation ``activation`` (a name, a callable or a :class:`Nonlinearity`; ``param`` is
    leaky_relu's slope or elu's alpha). See :mod:`initlab.theory` for the formulas, the sources and the accuracy.

    ``q0`` is the inputs' mean square, which picks the fixed point when the length map has several; ``tol`` is the
    distance |χ₁ − 1| within which the point is called critical.
    """
    phi = nonlinearity(activation, param)
    weight_var = check_positive("weight_var", weight_var)
    bias_var = check_nonnegative("bias_var", bias_var)
    tol = check_nonnegative("tol", tol)
    q_star = _fixed_point_q(phi, weight_var, bias_var, check_positive("q0", q0))
    q = _evaluation_length(q_star)
    chi_1 = _chi_1(phi, q, weight_var)
    chi_q = _chi_q(phi, q, weight_var)
    phase = _phase(chi_1, tol)
    if math.isinf(q_star):
        # q^l → ∞: the correlation map tends to that of φ's piecewise-linear tails, whose slope at c = 1 is exactly
        # 1, so c^l creeps towards 1 (polynomially; for the identity not at all) and no depth scale is finite.
        c_star, chi_c, xi_q, xi_c = 1.0, 1.0, math.inf, math.inf
    else:
        c_star, chi_c = 1.0, chi_1  # ordered and critical: c* = 1, where C's slope is χ₁
        if phase == "chaotic" and q_star > 0.0:
            c_star = _c_star(phi, q, weight_var, bias_var, chi_1)
            chi_c = weight_var * expect_pair(
                lambda a, b: phi.derivative(a) * phi.derivative(b), q, 1.0 - c_star, phi.kinks
            )
        xi_q = _depth(chi_q)
        xi_c = math.inf if phase == "critical" else _depth(chi_c)
    logger.debug("mean field of %s at (%g, %g): q*=%g, chi_1=%g", phi.name, weight_var, bias_var, q_star, chi_1)
    return MeanField(phi.name, weight_var, bias_var, q_star, chi_1, chi_q, c_star, chi_c, xi_q, xi_c, phase)


# -- the critical line -----------------------------------------------------------------------------------------------
def _chi_1_at_fixed_point(phi: Nonlinearity, weight_var: float, bias_var: float, q0: float) -> float:
    q_star = _fixed_point_q(phi, weight_var, bias_var, q0)
    return _chi_1(phi, _evaluation_length(q_star), weight_var)


def _critical(phi: Nonlinearity, bias_var: float, q0: float) -> float:
    def excess(weight_var: float) -> float:
        return _chi_1_at_fixed_point(phi, weight_var, bias_var, q0) - 1.0 if weight_var > 0.0 else -1.0

    lo, hi = 0.0, 1.0
    while excess(hi) <= 0.0:
        lo, hi = hi, 2.0 * hi
        if hi > _MAX_WEIGHT_VAR:
            raise ValueError(
                f"no critical point for {phi.name} at bias_var={bias_var:g}: chi_1 stays below 1 up to "
                f"weight_var={_MAX_WEIGHT_VAR:g}."
            )
    return float(_brentq()(excess, lo, hi, xtol=1e-14, rtol=_RTOL))


def critical_weight_var(
    activation: ActivationSpec, bias_var: float = 0.0, *, param: float | None = None, q0: float = 1.0
) -> float:
    """σ_w²*: the weight variance at which χ₁ = 1 for the bias variance ``bias_var`` (the order-to-chaos transition,
    Poole et al. 2016; Schoenholz et al. 2017), by Brent's method to a relative 1e-13 in χ₁'s root.

    Closed forms: ReLU 2 for every σ_b² (He et al. 2015's variance), leaky ReLU 2/(1 + a²), the identity 1, and
    tanh at σ_b² = 0: 1 (φ'(0) = 1 and q* = 0 below it).
    """
    phi = nonlinearity(activation, param)
    return _critical(phi, check_nonnegative("bias_var", bias_var), check_positive("q0", q0))


def critical_line(
    activation: ActivationSpec, bias_vars: Iterable[float], *, param: float | None = None, q0: float = 1.0
) -> list[tuple[float, float]]:
    """The critical line: ``(σ_w²*, σ_b²)`` for each σ_b² in ``bias_vars`` (see :func:`critical_weight_var`)."""
    phi = nonlinearity(activation, param)
    q0 = check_positive("q0", q0)
    return [(_critical(phi, b, q0), b) for b in (check_nonnegative("bias_var", v) for v in bias_vars)]


def _brentq() -> Any:
    """``scipy.optimize.brentq``, imported on first use: SciPy's optimizer package takes a few tenths of a second to
    import, which every ``initlab`` command would otherwise pay at start-up."""
    from scipy.optimize import brentq

    return brentq
