"""Activations for mean-field theory: each a function, its derivative and the points where either is not smooth.

Named activations have closed-form derivatives; any other callable (a torch function, an ``nn.Module`` without
parameters, a Python function of tensors, or one that returns a NumPy array) gets its derivative from autograd, or
from a central difference where autograd cannot follow it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812  (the name every torch user knows)

from initlab.checks import check_choice, check_finite
from initlab.gains import DEFAULT_LEAKY_SLOPE

Fn = Callable[[torch.Tensor], torch.Tensor]

ActivationName = Literal[
    "linear",
    "identity",
    "relu",
    "leaky_relu",
    "tanh",
    "sigmoid",
    "erf",
    "selu",
    "elu",
    "gelu",
    "silu",
    "swish",
    "softplus",
]
ACTIVATION_NAMES: tuple[str, ...] = get_args(ActivationName)

# SELU's constants, as torch.nn.SELU and Klambauer et al. (2017), eq. 14 give them.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
# Central-difference step relative to max(1, |x|): the error is O(h²) ≈ 1e-10 for smooth functions, and the rounding
# error O(eps/h) ≈ 1e-11.
_FD_STEP = 1e-5
# Kink detection for callables: a grid of step 128/65536 ≈ 0.002 on [-64, 64]; jumps below 1e-6 of the function's
# scale are ignored (their effect on any expectation is smaller still).
_KINK_RANGE = 64.0
_KINK_GRID = 65_537
_JUMP_FLOOR = 1e-6
_MAX_KINKS = 32


@dataclass(frozen=True)
class Nonlinearity:
    """An elementwise activation as mean-field theory needs it.

    ``fn`` and ``derivative`` map a float64 tensor to a tensor of the same shape; ``kinks`` are the points where
    ``fn`` or its derivative is not smooth (a quadrature panel ends at each, and at 0). Build one with
    :func:`nonlinearity`.
    """

    name: str
    fn: Fn = field(repr=False, compare=False)
    derivative: Fn = field(repr=False, compare=False)
    kinks: tuple[float, ...] = ()


ActivationSpec = str | Nonlinearity | Callable[[torch.Tensor], torch.Tensor]


def _leaky(slope: float) -> tuple[Fn, Fn]:
    return (
        lambda x: torch.where(x > 0, x, slope * x),
        lambda x: torch.where(x > 0, torch.ones_like(x), torch.full_like(x, slope)),
    )


def _elu(alpha: float, scale: float) -> tuple[Fn, Fn]:
    return (
        lambda x: scale * torch.where(x > 0, x, alpha * torch.expm1(torch.clamp(x, max=0.0))),
        lambda x: scale * torch.where(x > 0, torch.ones_like(x), alpha * torch.exp(torch.clamp(x, max=0.0))),
    )


def _sigmoid_prime(x: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(x)
    return s * (1.0 - s)


def _named(name: str, param: float | None) -> tuple[Fn, Fn, tuple[float, ...]]:
    """``(fn, derivative, kinks)`` of a named activation (see :func:`nonlinearity` for the table)."""
    if param is not None and name not in ("leaky_relu", "elu"):
        raise ValueError(
            f"param is only used by 'leaky_relu' (negative slope) and 'elu' (alpha), got param={param!r} for "
            f"activation {name!r}."
        )
    if name in ("linear", "identity"):
        return (lambda x: x), torch.ones_like, ()
    if name == "relu":
        return *_leaky(0.0), (0.0,)
    if name == "leaky_relu":
        return *_leaky(DEFAULT_LEAKY_SLOPE if param is None else check_finite("param", param)), (0.0,)
    if name == "elu":
        return *_elu(1.0 if param is None else check_finite("param", param), 1.0), (0.0,)
    if name == "selu":
        return *_elu(_SELU_ALPHA, _SELU_SCALE), (0.0,)
    if name == "tanh":
        return torch.tanh, (lambda x: 1.0 - torch.tanh(x).square()), ()
    if name == "sigmoid":
        return torch.sigmoid, _sigmoid_prime, ()
    if name == "erf":
        return torch.erf, (lambda x: (2.0 / math.sqrt(math.pi)) * torch.exp(-x.square())), ()
    if name == "gelu":
        # The exact form x·Φ(x) (torch's approximate="none"); Φ' = the standard normal density.
        cdf: Fn = lambda x: 0.5 * torch.erfc(-x / math.sqrt(2.0))  # noqa: E731
        return (lambda x: x * cdf(x)), (lambda x: cdf(x) + x * _INV_SQRT_2PI * torch.exp(-0.5 * x.square())), ()
    if name in ("silu", "swish"):
        return F.silu, (lambda x: torch.sigmoid(x) + x * _sigmoid_prime(x)), ()
    if name == "softplus":
        # log(1 + e^x) without torch's threshold (softplus returns x itself above 20).
        return (lambda x: torch.logaddexp(x, torch.zeros_like(x))), torch.sigmoid, ()
    raise ValueError(f"no rule for activation {name!r}.")  # unreachable: the name was checked


def _as_tensor_fn(fn: Callable[..., object], name: str) -> Fn:
    """``fn`` as a float64 tensor function: NumPy results are converted; a module with float32 parameters that
    refuses float64 input is called in float32."""

    def call(x: torch.Tensor) -> torch.Tensor:
        try:
            y = fn(x)
        except RuntimeError:
            y = fn(x.float())
        if isinstance(y, np.ndarray):
            y = torch.from_numpy(np.asarray(y, dtype=np.float64))
        if not isinstance(y, torch.Tensor) or y.shape != x.shape:
            raise TypeError(f"activation {name} must map a 1-D tensor to a tensor of the same shape.")
        return y.to(torch.float64)

    return call


def _derivative_of(fn: Fn) -> Fn:
    """φ' by autograd when ``fn`` is differentiable by torch, else by a central difference."""

    def by_autograd(x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            leaf = x.detach().clone().requires_grad_(True)
            y = fn(leaf)
            (grad,) = torch.autograd.grad(y.sum(), leaf)
        return grad.to(torch.float64)

    def by_difference(x: torch.Tensor) -> torch.Tensor:
        h = _FD_STEP * torch.clamp(x.abs(), min=1.0)
        return (fn(x + h) - fn(x - h)) / (2.0 * h)

    probe = torch.linspace(-3.0, 3.0, 7, dtype=torch.float64)
    try:
        by_autograd(probe)
    except (RuntimeError, TypeError):  # no graph: the callable left torch (NumPy inside, or a detached result)
        return by_difference
    return by_autograd


def _jumps(values: torch.Tensor) -> torch.Tensor:
    """Grid cells where ``values`` jumps: the step is 10x those two cells away on either side (a smooth function's
    steps change by far less over 4 cells of 0.002) and not negligible."""
    steps = values.diff().abs()
    padded = torch.nn.functional.pad(steps, (2, 2), value=0.0)
    local = torch.maximum(padded[:-4], padded[4:])
    return torch.nonzero((steps > 10.0 * local) & (steps > _JUMP_FLOOR * (1.0 + values.abs().max()))).flatten()


def _locate(g: Fn, a: float, b: float) -> float:
    """Narrow [a, b] down to the point where ``g`` jumps: its largest step on a grid of 1025 points, six times over
    (0.002 / 1024⁶, below the spacing of floats)."""
    for _ in range(6):
        xs = torch.linspace(a, b, 1025, dtype=torch.float64)
        j = int(g(xs).diff().abs().argmax())
        a, b = float(xs[j]), float(xs[j + 1])
    return 0.5 * (a + b)


def find_kinks(fn: Fn, derivative: Fn) -> tuple[float, ...]:
    """The points in [−64, 64] where ``fn`` or its derivative jumps (ReLU6's 0 and 6, Hardswish's ±3), found on a
    grid of step 0.002 and narrowed down to full precision; at most 32, nearest 0 first. Spurious points cost nothing
    (a panel ends there), a missed kink costs accuracy: up to 2e-2 in E[φ'²] for a kink mid-panel."""
    grid = torch.linspace(-_KINK_RANGE, _KINK_RANGE, _KINK_GRID, dtype=torch.float64)
    found: set[float] = set()
    with torch.no_grad():
        for g in (fn, derivative):
            for i in _jumps(g(grid)).tolist():
                found.add(round(_locate(g, float(grid[i]), float(grid[i + 1])), 12) + 0.0)  # + 0.0: no −0.0
    return tuple(sorted(sorted(found, key=abs)[:_MAX_KINKS]))


def nonlinearity(
    activation: ActivationSpec, param: float | None = None, *, kinks: Sequence[float] = ()
) -> Nonlinearity:
    """The :class:`Nonlinearity` for a name or a callable.

    =====================  ==========================================  =====================================
    name                   φ(x)                                        φ'(x)
    =====================  ==========================================  =====================================
    linear, identity       x                                           1
    relu                   max(0, x)                                   1 for x > 0, else 0
    leaky_relu             x for x > 0, else a·x (a = ``param``, 0.01)  1 or a
    elu                    x for x > 0, else α(eˣ − 1) (α = ``param``,  1 or α·eˣ
                           1)
    selu                   λ·elu_α(x), α = 1.6733, λ = 1.0507           λ or λα·eˣ
    tanh                   tanh x                                      1 − tanh² x
    sigmoid                1 / (1 + e⁻ˣ)                               σ(x)(1 − σ(x))
    erf                    erf x                                       (2/√π) e^(−x²)
    gelu                   x·Φ(x) (exact, not the tanh approximation)  Φ(x) + x·ϕ(x)
    silu, swish            x·σ(x)                                      σ(x) + x·σ(x)(1 − σ(x))
    softplus               log(1 + eˣ)                                 σ(x)
    =====================  ==========================================  =====================================

    A callable must be elementwise and take a tensor (a NumPy result is accepted); its derivative comes from
    autograd, or from a central difference (step 1e-5·max(1, |x|)) if autograd cannot follow it. The points where a
    callable or its derivative jumps are found by :func:`find_kinks`; ``kinks`` adds any it cannot see (beyond ±64).
    A :class:`Nonlinearity` is returned as it is. Names are case-insensitive; an unknown one raises ``ValueError``
    with the closest names.
    """
    if isinstance(activation, Nonlinearity):
        return activation
    extra = tuple(sorted(check_finite("kink", k) for k in kinks))
    if isinstance(activation, str):
        name = check_choice("activation", activation.strip().lower(), ACTIVATION_NAMES)
        fn, derivative, own = _named(name, param)
        label = name if param is None else f"{name}({param:g})"
        return Nonlinearity(label, fn, derivative, tuple(sorted({*own, *extra})))
    if callable(activation):
        if param is not None:
            raise ValueError(f"param is only used with a named activation, got param={param!r} with a callable.")
        label = getattr(activation, "__name__", None) or type(activation).__name__
        fn = _as_tensor_fn(activation, label)
        try:
            fn(torch.linspace(-3.0, 3.0, 7, dtype=torch.float64))
        except Exception as err:  # any failure of a user's function on a tensor: say what is needed
            raise TypeError(
                f"activation {label} cannot be evaluated on a float64 tensor ({err}); give an elementwise function "
                "of tensors (e.g. torch.tanh or lambda x: x * torch.sigmoid(x)) or a name."
            ) from err
        derivative = _derivative_of(fn)
        return Nonlinearity(label, fn, derivative, tuple(sorted({*find_kinks(fn, derivative), *extra})))
    raise TypeError(
        f"activation must be a name ({', '.join(ACTIVATION_NAMES)}), a callable or a Nonlinearity, got {activation!r}."
    )
