"""Constant initializers: Zeros, Ones, Constant (Keras names and semantics)."""

from __future__ import annotations

import torch

from initlab.catalog._base import Distribution, Initializer
from initlab.checks import check_finite
from initlab.fans import Layout


class Constant(Initializer):
    """Every entry equals ``value``: ``W = value``.

    Source: ``keras.initializers.Constant``; ``torch.nn.init.constant_``.
    """

    formula = "W = value"
    source = "keras.initializers.Constant; torch.nn.init.constant_"
    aliases = ("const",)
    _params = ("value",)

    def __init__(self, value: float = 0.0) -> None:
        self.value = check_finite("value", value)

    def _fill(self, out: torch.Tensor, layout: Layout, generator: torch.Generator | None) -> None:
        out.fill_(self.value)

    def _distribution(self, shape: tuple[int, ...], layout: Layout) -> Distribution:
        return Distribution.constant(self.value)


class Zeros(Constant):
    """Every entry is 0. All-zero weights never break the symmetry between units: use it for biases only.

    Source: ``keras.initializers.Zeros``; ``torch.nn.init.zeros_``.
    """

    formula = "W = 0"
    source = "keras.initializers.Zeros; torch.nn.init.zeros_"
    aliases = ("zero",)
    _params = ()

    def __init__(self) -> None:
        super().__init__(0.0)


class Ones(Constant):
    """Every entry is 1.

    Source: ``keras.initializers.Ones``; ``torch.nn.init.ones_``.
    """

    formula = "W = 1"
    source = "keras.initializers.Ones; torch.nn.init.ones_"
    aliases = ("one",)
    _params = ()

    def __init__(self) -> None:
        super().__init__(1.0)
