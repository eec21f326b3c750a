"""Mean-field signal propagation in deep random networks: the order-to-chaos transition and the critical line.

A fully connected network h^l = W^l φ(h^{l-1}) + b^l with weights N(0, σ_w²/fan_in) and biases N(0, σ_b²), in the
limit of infinite width, carries two numbers from layer to layer (Poole et al. 2016, "Exponential expressivity in
deep neural networks through transient chaos", NeurIPS; Schoenholz et al. 2017, "Deep Information Propagation",
ICLR). With z, z₁, z₂ independent N(0, 1):

* the **length map** of the pre-activations' mean square q^l, and its fixed point q* (:func:`fixed_point_q`)::

      q^l = σ_w² E[φ(√q^{l-1} z)²] + σ_b²

* the **correlation map** of two inputs' correlation c^l at q* (:func:`correlation_map`), and its stable fixed point
  c*: 1 in the ordered phase, below 1 in the chaotic phase::

      c^l = (σ_w² E[φ(u₁)φ(u₂)] + σ_b²) / q*,   u₁ = √q* z₁,  u₂ = √q* (c^{l-1} z₁ + √(1 − (c^{l-1})²) z₂)

* **χ₁ = σ_w² E[φ'(√q* z)²]**, the slope of the correlation map at c = 1 and the mean squared singular value of a
  layer's Jacobian: χ₁ < 1 is the ordered phase (gradients vanish, inputs become alike), χ₁ > 1 the chaotic phase
  (gradients explode, nearby inputs decorrelate), χ₁ = 1 the critical line (:func:`critical_weight_var`,
  :func:`critical_line`);
* the **depth scales** (Schoenholz et al. 2017): |q^l − q*| ~ e^{−l/ξ_q} and |c^l − c*| ~ e^{−l/ξ_c} with

      ξ_q = −1/ln χ_q,  χ_q = dL/dq at q* = σ_w² E[φ'(√q* z)² + φ''(√q* z) φ(√q* z)]
      ξ_c = −1/ln χ_c,  χ_c = σ_w² E[φ'(u₁)φ'(u₂)] at c*  (= χ₁ when c* = 1)

  χ_q is computed in the equal form σ_w² E[z φ(√q* z) φ'(√q* z)]/√q* (Stein's lemma), which needs no φ'' and so is
  right for ReLU's kink. ξ_c diverges on the critical line: signals propagate arbitrarily deep only there.

:func:`mean_field` returns all of them as a :class:`MeanField`. Two limits are reported as such: q* = 0 (σ_b² = 0,
φ(0) = 0 and the signal dies out; the quantities are their limits as q → 0, and c* = 1, χ_c = χ₁ as for σ_b² → 0⁺)
and q* = ∞ (an unbounded activation at χ₁ >= 1 whose signal grows without bound; c* = 1 and ξ_q = ξ_c = ∞).

**Accuracy.** Expectations are composite Gauss-Legendre rules whose panels end at the kinks of φ and are graded
around them (see ``initlab/theory/_gauss.py``); Gauss-Hermite quadrature, which assumes a smooth integrand, is not
used because it converges only algebraically across a kink. One-dimensional expectations are accurate to a relative
1e-13 and two-dimensional ones to 1e-12 (measured: 7e-16 and 2e-13 at worst, against closed forms in 40-digit
arithmetic and ``scipy.integrate``); fixed points and the critical σ_w² are Brent roots to a relative 1e-13.
tests/test_theory.py checks the integrals against closed forms (ReLU's arc-cosine kernel, erf's arcsine kernel, the
identity) and ``scipy.integrate``, and the whole theory against wide random networks.

**Activations.** A name (:data:`ACTIVATION_NAMES`: relu, leaky_relu, tanh, sigmoid, erf, selu, elu, gelu, silu/swish,
softplus, linear) with closed-form derivatives and kinks, or any elementwise callable of tensors, differentiated by
autograd and searched for kinks (:func:`find_kinks`; see :func:`nonlinearity`).
"""

from initlab.theory._activations import (
    ACTIVATION_NAMES,
    ActivationName,
    ActivationSpec,
    Nonlinearity,
    find_kinks,
    nonlinearity,
)
from initlab.theory._meanfield import (
    CRITICAL_TOL,
    PHASES,
    MeanField,
    Phase,
    correlation_map,
    critical_line,
    critical_weight_var,
    fixed_point_q,
    length_map,
    mean_field,
)

__all__ = [
    "ACTIVATION_NAMES",
    "CRITICAL_TOL",
    "PHASES",
    "ActivationName",
    "ActivationSpec",
    "MeanField",
    "Nonlinearity",
    "Phase",
    "correlation_map",
    "critical_line",
    "critical_weight_var",
    "find_kinks",
    "fixed_point_q",
    "length_map",
    "mean_field",
    "nonlinearity",
]
