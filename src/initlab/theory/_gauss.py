"""Gaussian expectations for mean-field theory, accurate for activations with kinks.

Both integrals are composite Gauss-Legendre rules (12 nodes a panel) over ``|z| <= 10`` (the rest of N(0, 1) holds
1.5e-23 of the mass, negligible against any integrand of polynomial growth):

* ``expect(f, q) = E[f(√q·z)]``, z ~ N(0, 1). The panels end at the points of a uniform grid of step 1 in z and at
  every *feature* of φ mapped to z = x/√q: each kink k of φ (and 0), and the points k ± 2^j for every j from
  2^j = 1/16 up to the integration range. On every panel the integrand is smooth, and the geometric grading around
  each feature keeps every panel's width below about its distance to the nearest complex singularity of φ (tanh's
  poles at ±iπ/2, say), so the rule converges geometrically whatever q is, from 1e-30 to 1e12.
* ``expect_pair(f, q, δ) = E[f(u₁, u₂)]`` for (u₁, u₂) normal with variances q and correlation c = 1 − δ, by nested
  rules: u₁ = √q·z₁, u₂ = c·u₁ + √q·s·z₂ with s = √(δ(2 − δ)) (from δ, so that s keeps its digits as c → 1). The
  inner rule over z₂ is built per outer node, with its panels ending where u₂ crosses a feature; the outer rule's
  panels also end where the inner expectation, a copy of φ smoothed over a width √q·s, bends (at k/c, graded down
  to that width).

Measured accuracy: E[φ(√q z)²] and E[φ'(√q z)²] of every named activation, q from 1e-6 to 1e6, agree with
``scipy.integrate.quad`` to a relative 7e-16 (ReLU, leaky ReLU and the identity are exact); for (u₁, u₂) with q from
1e-6 to 1e6 and δ from 1e-9 to 1.999, ReLU's arc-cosine kernel E[φ(u₁)φ(u₂)] agrees with its closed form (in 40-digit
arithmetic) to a relative 7e-16, erf's arcsine kernel and E[1{u₁ > 0}1{u₂ > 0}] to 2e-16, E[(φ(u₁) − φ(u₂))²] for
ReLU to a relative 2e-13, and tanh's E[φ(u₁)φ(u₂)] agrees with ``scipy.integrate.dblquad`` to 6e-17. The stated
accuracy, with a margin, is a relative 1e-13 in one dimension and 1e-12 in two. It needs the kinks: a kink that
falls inside a panel costs up to 2e-2 in E[φ'²] (for callables, :func:`initlab.theory.find_kinks` finds them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

_Z_MAX = 10.0  # P(|z| > 10) = 1.5e-23
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(12)
_UNIFORM = np.linspace(-_Z_MAX, _Z_MAX, 21)
_FINEST = 1.0 / 16.0  # the finest grading step around a feature, in units of φ's argument
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _features(centres: Sequence[float], lo: float, hi: float, finest: float) -> np.ndarray:
    """Every centre k and k ± 2^j (finest <= 2^j <= hi - lo) that lies strictly inside (lo, hi)."""
    span = max(hi - lo, finest)
    steps = np.exp2(np.arange(math.floor(math.log2(finest)), math.ceil(math.log2(span)) + 1))
    k = np.asarray(centres, dtype=np.float64)[:, None]
    points = np.unique(np.concatenate([k.ravel(), (k - steps).ravel(), (k + steps).ravel()]))
    return points[(points > lo) & (points < hi)]


def _panels(offset: np.ndarray, scale: float, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nodes z and weights w·N(z) of one rule per row for x = offset + scale·z, each with panels ending at the
    uniform grid and at the features mapped to z (clipped to the range, where they make empty panels)."""
    rows = offset.shape[0]
    mapped = np.clip((features[None, :] - offset[:, None]) / scale, -_Z_MAX, _Z_MAX)
    ends = np.concatenate([np.broadcast_to(_UNIFORM, (rows, _UNIFORM.size)), mapped], axis=1)
    ends.sort(axis=1)
    half = 0.5 * (ends[:, 1:] - ends[:, :-1])
    mid = 0.5 * (ends[:, 1:] + ends[:, :-1])
    nodes = mid[..., None] + half[..., None] * _NODES
    weights = half[..., None] * _WEIGHTS * np.exp(-0.5 * nodes**2) * _INV_SQRT_2PI
    return nodes.reshape(rows, -1), weights.reshape(rows, -1)


def _values(f: Callable[..., torch.Tensor], *args: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = f(*(torch.from_numpy(np.ascontiguousarray(a)) for a in args))
    return out.detach().to(torch.float64).numpy()


def expect(f: Callable[[torch.Tensor], torch.Tensor], q: float, kinks: Sequence[float] = ()) -> float:
    """E[f(√q·z)], z ~ N(0, 1), for q > 0 (see the module docstring for the rule and its accuracy)."""
    root = math.sqrt(q)
    reach = _Z_MAX * root
    features = _features(sorted({0.0, *kinks}), -reach, reach, _FINEST)
    z, w = _panels(np.zeros(1), root, features)
    return float((_values(f, root * z[0]) * w[0]).sum())


def expect_pair(
    f: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], q: float, delta: float, kinks: Sequence[float] = ()
) -> float:
    """E[f(u₁, u₂)] for (u₁, u₂) ~ N(0, q·[[1, c], [c, 1]]), c = 1 − ``delta``, 0 <= delta <= 2, q > 0.

    ``f`` must broadcast: it is called with u₁ of shape (n, 1) and u₂ of shape (n, m)."""
    c = 1.0 - delta
    s = math.sqrt(max(delta * (2.0 - delta), 0.0))
    root = math.sqrt(q)
    width = root * s  # the standard deviation of u₂ given u₁
    centres = sorted({0.0, *kinks})
    if width == 0.0:  # u₂ = c·u₁ exactly
        return expect(lambda x: f(x, c * x), q, (*centres, *(k / c for k in centres)))
    bends = set(centres) | ({k / c for k in centres} if abs(c) > 1e-12 else set())
    reach = _Z_MAX * root
    outer_features = _features(sorted(bends), -reach, reach, min(_FINEST, width / 4.0))
    z1, w1 = _panels(np.zeros(1), root, outer_features)
    x1 = root * z1[0]
    mean2 = c * x1
    inner_features = _features(
        centres, float(mean2.min()) - _Z_MAX * width, float(mean2.max()) + _Z_MAX * width, _FINEST
    )
    z2, w2 = _panels(mean2, width, inner_features)
    # u₁ as a column: f broadcasts it over the row's inner nodes, and φ(u₁) is computed once per outer node.
    values = _values(f, x1[:, None], mean2[:, None] + width * z2)
    return float(((values * w2).sum(axis=1) * w1[0]).sum())
