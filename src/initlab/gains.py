"""Gains: the factor by which an initializer's standard deviation is multiplied to suit an activation.

For a named activation, :func:`gain` returns the value of PyTorch's table (``torch.nn.init.calculate_gain``), which
most published code uses. For any other callable or ``nn.Module``, it returns the *second-moment gain*

.. math:: g(f) = 1 / \\sqrt{E_{z \\sim N(0,1)}[f(z)^2]}

the factor that keeps the mean square of the signal at 1 through a linear layer with unit-variance pre-activations
followed by ``f`` (He et al., 2015, eq. 10 generalised). It is computed by composite Simpson quadrature of
``f(z)^2 φ(z)`` on ``[-12, 12]`` with 240,001 points in float64, accurate to better than 1e-7 relative for any
piecewise-smooth ``f`` of polynomial growth (the tails beyond ±12 carry under 1e-30 of the mass). For ReLU it gives
exactly √2, the table value; for tanh it gives 1.5925, where the table's 5/3 is a heuristic chosen to keep tanh
networks in their non-saturated regime (it is not variance preserving).

SELU's 3/4 is debated: SELU's authors (Klambauer et al., 2017) prescribe LeCun normal (gain 1, fan-in), under which
the activations converge to mean 0 and variance 1; PyTorch's 3/4 (added in PyTorch 1.8) was chosen empirically for
more stable gradients and does not preserve the variance (the second-moment gain of SELU is 1.0).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, get_args

import torch
from torch import nn

from initlab.checks import check_choice, check_finite

ActivationName = Literal[
    "linear",
    "identity",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
]
ACTIVATION_NAMES: tuple[str, ...] = get_args(ActivationName)

#: PyTorch's default negative slope for leaky_relu (calculate_gain in torch/nn/init.py, F.leaky_relu).
DEFAULT_LEAKY_SLOPE = 0.01

# Simpson's rule on [-_Z_MAX, _Z_MAX]; _NUM_POINTS must be odd.
_Z_MAX = 12.0
_NUM_POINTS = 240_001

# Module types that have an entry in the table; anything else gets the numeric gain.
_MODULE_NAMES: dict[type[nn.Module], str] = {
    nn.Identity: "linear",
    nn.Sigmoid: "sigmoid",
    nn.Tanh: "tanh",
    nn.ReLU: "relu",
    nn.SELU: "selu",
}


def gain(activation: str | Callable[[torch.Tensor], torch.Tensor] | None, param: float | None = None) -> float:
    """The recommended gain for ``activation``.

    ========================================  ======================
    activation                                gain
    ========================================  ======================
    linear, identity, conv*, conv_transpose*  1
    sigmoid                                   1
    tanh                                      5/3
    relu                                      √2
    leaky_relu (negative slope ``param``)     √(2 / (1 + param²)), ``param`` defaults to 0.01
    selu                                      3/4 (see the module docstring for why it is debated)
    any other callable or ``nn.Module``       1 / √E[f(z)²], z ~ N(0, 1) (numeric, see :func:`numeric_gain`)
    ========================================  ======================

    ``None`` means linear. ``nn.LeakyReLU`` modules use their own ``negative_slope``. Source: the table of
    ``torch.nn.init.calculate_gain``; He et al. (2015) for the ReLU family.
    """
    if activation is None:
        return 1.0
    if isinstance(activation, str):
        name = check_choice("activation", activation.lower(), ACTIVATION_NAMES)
        return _table_gain(name, param)
    if isinstance(activation, nn.LeakyReLU):
        return _table_gain("leaky_relu", activation.negative_slope)
    if isinstance(activation, nn.Module) and type(activation) in _MODULE_NAMES:
        return _table_gain(_MODULE_NAMES[type(activation)], None)
    if callable(activation):
        return numeric_gain(activation)
    raise TypeError(f"activation must be a name, a callable or an nn.Module, got {activation!r}.")


def _table_gain(name: str, param: float | None) -> float:
    if name == "leaky_relu":
        slope = DEFAULT_LEAKY_SLOPE if param is None else check_finite("param", param)
        return math.sqrt(2.0 / (1.0 + slope**2))
    if param is not None:
        raise ValueError(f"param is only used by 'leaky_relu', got param={param!r} for activation {name!r}.")
    if name == "tanh":
        return 5.0 / 3.0
    if name == "relu":
        return math.sqrt(2.0)
    if name == "selu":
        return 3.0 / 4.0
    return 1.0  # linear, identity, the convolutions and sigmoid


def second_moment(activation: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """E[f(z)²] for z ~ N(0, 1), by composite Simpson quadrature (see the module docstring for its accuracy)."""
    z = torch.linspace(-_Z_MAX, _Z_MAX, _NUM_POINTS, dtype=torch.float64)
    with torch.no_grad():
        try:
            # A clone, so that an in-place activation (nn.ELU(inplace=True)) cannot overwrite the quadrature grid.
            fz = activation(z.clone())
        except RuntimeError:
            # Modules with float32 parameters (nn.PReLU, say) refuse float64 input; float32 costs accuracy (~1e-6).
            fz = activation(z.float())
        if not isinstance(fz, torch.Tensor) or fz.shape != z.shape:
            raise TypeError(f"activation {activation!r} must map a 1-D tensor to a tensor of the same shape.")
        fz = fz.to(torch.float64)
    integrand = fz.square() * torch.exp(-0.5 * z.square()) / math.sqrt(2.0 * math.pi)
    h = 2.0 * _Z_MAX / (_NUM_POINTS - 1)
    weights = torch.ones(_NUM_POINTS, dtype=torch.float64)
    weights[1:-1:2] = 4.0
    weights[2:-1:2] = 2.0
    value = float((integrand * weights).sum() * h / 3.0)
    if not math.isfinite(value):
        raise ValueError(f"E[f(z)^2] is not finite for activation {activation!r}.")
    return value


def numeric_gain(activation: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """The second-moment gain ``1 / sqrt(E[f(z)²])``, z ~ N(0, 1), of any elementwise activation."""
    m2 = second_moment(activation)
    if m2 <= 0.0:
        raise ValueError(f"activation {activation!r} is zero almost everywhere on N(0, 1); it has no finite gain.")
    return 1.0 / math.sqrt(m2)
