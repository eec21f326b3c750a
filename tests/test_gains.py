"""Gains: torch's table, and the numeric second-moment gain for any activation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, special

import initlab
from initlab.gains import second_moment


@pytest.mark.parametrize(
    ("name", "param", "value"),
    [("linear", None, 1.0), ("conv2d", None, 1.0), ("conv_transpose3d", None, 1.0), ("sigmoid", None, 1.0),
     ("tanh", None, 5 / 3), ("relu", None, math.sqrt(2)), ("leaky_relu", None, math.sqrt(2 / (1 + 0.01**2))),
     ("leaky_relu", 0.2, math.sqrt(2 / 1.04)), ("selu", None, 0.75), ("ReLU", None, math.sqrt(2))],
)  # fmt: skip
def test_table_matches_torch(name: str, param: float | None, value: float) -> None:
    assert initlab.gain(name, param) == pytest.approx(value, rel=1e-15)
    assert initlab.gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name.lower(), param), rel=1e-15)


def test_modules_of_known_types_use_the_table() -> None:
    assert initlab.gain(torch.nn.Tanh()) == 5 / 3
    assert initlab.gain(torch.nn.LeakyReLU(0.3)) == pytest.approx(math.sqrt(2 / 1.09))
    assert initlab.gain(None) == 1.0


def reference_gain(f) -> float:
    # The mass of N(0, 1) beyond ±40 is far below double precision.
    m2, _ = integrate.quad(lambda z: f(z) ** 2 * math.exp(-z * z / 2) / math.sqrt(2 * math.pi), -40.0, 40.0,
                           epsabs=1e-14, epsrel=1e-13, limit=400, points=[0.0])  # fmt: skip
    return 1 / math.sqrt(m2)


@pytest.mark.parametrize(
    ("torch_fn", "numpy_fn"),
    [
        (torch.tanh, np.tanh),
        (torch.sigmoid, special.expit),
        (torch.nn.functional.softplus, lambda z: math.log1p(math.exp(z)) if z < 30 else z),
        (torch.sin, math.sin),
        (torch.nn.GELU(), lambda z: z * 0.5 * (1 + math.erf(z / math.sqrt(2)))),
    ],
)
def test_numeric_gain_is_accurate_to_1e7(torch_fn, numpy_fn) -> None:
    assert initlab.numeric_gain(torch_fn) == pytest.approx(reference_gain(numpy_fn), rel=1e-7)


def test_numeric_gain_of_kinked_functions() -> None:
    assert initlab.numeric_gain(torch.relu) == pytest.approx(math.sqrt(2), rel=1e-9)
    assert initlab.numeric_gain(torch.nn.SELU()) == pytest.approx(1.0, abs=1e-6)  # SELU is self-normalizing
    assert initlab.gain(torch.nn.SiLU()) == pytest.approx(initlab.numeric_gain(torch.nn.functional.silu))
    assert second_moment(lambda z: z) == pytest.approx(1.0, rel=1e-9)
    # A module whose parameters are float32 works (with float32 accuracy).
    assert initlab.gain(torch.nn.PReLU(init=0.0)) == pytest.approx(math.sqrt(2), rel=1e-5)


def test_gain_errors() -> None:
    with pytest.raises(ValueError, match=r"activation='tahn' is not allowed.*Did you mean 'tanh'"):
        initlab.gain("tahn")
    with pytest.raises(ValueError, match=r"param is only used by 'leaky_relu'"):
        initlab.gain("relu", 0.1)
    with pytest.raises(ValueError, match="zero almost everywhere"):
        initlab.numeric_gain(torch.zeros_like)
    with pytest.raises(TypeError, match=r"must be a name, a callable or an nn\.Module"):
        initlab.gain(3)  # type: ignore[arg-type]
