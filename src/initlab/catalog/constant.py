"""Constant initializers: Zeros, Ones, Constant (Keras names and semantics)."""

from __future__ import annotations

from typing import Any, ClassVar

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


class _Fixed(Constant):
    """A Constant whose value is fixed in the class statement, ``class Zeros(_Fixed, value=0.0)``: its config is
    empty and its formula reads ``W = value``."""

    _params = ()
    _value: ClassVar[float]

    def __init_subclass__(cls, *, value: float | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if value is not None:
            cls._value = value
            cls.formula = f"W = {value:g}"

    def __init__(self) -> None:
        super().__init__(self._value)


class Zeros(_Fixed, value=0.0):
    """Every entry is 0. All-zero weights never break the symmetry between units: use it for biases only.

    Source: ``keras.initializers.Zeros``; ``torch.nn.init.zeros_``.
    """

    source = "keras.initializers.Zeros; torch.nn.init.zeros_"
    aliases = ("zero",)


class Ones(_Fixed, value=1.0):
    """Every entry is 1.

    Source: ``keras.initializers.Ones``; ``torch.nn.init.ones_``.
    """

    source = "keras.initializers.Ones; torch.nn.init.ones_"
    aliases = ("one",)
