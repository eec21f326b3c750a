"""Plain random initializers with fixed parameters: RandomNormal, RandomUniform, TruncatedNormal (Keras semantics)."""

from __future__ import annotations

import torch

from initlab.catalog._base import Distribution, Initializer, trunc_normal_
from initlab.checks import check_finite, check_nonnegative, check_positive
from initlab.fans import Layout


class RandomNormal(Initializer):
    """Independent normal entries: ``W ~ N(mean, stddev²)``.

    Defaults ``mean=0.0, stddev=0.05`` are Keras'. Source: ``keras.initializers.RandomNormal``;
    ``torch.nn.init.normal_`` (whose default std is 1).
    """

    formula = "W ~ N(mean, stddev²)"
    source = "keras.initializers.RandomNormal; torch.nn.init.normal_"
    aliases = ("normal", "gaussian")
    _params = ("mean", "stddev")

    def __init__(self, mean: float = 0.0, stddev: float = 0.05) -> None:
        self.mean = check_finite("mean", mean)
        self.stddev = check_nonnegative("stddev", stddev)

    def _fill(self, out: torch.Tensor, layout: Layout, generator: torch.Generator | None) -> None:
        out.normal_(self.mean, self.stddev, generator=generator)

    def _distribution(self, shape: tuple[int, ...], layout: Layout) -> Distribution:
        if self.stddev == 0.0:
            return Distribution.constant(self.mean)
        return Distribution.normal(self.mean, self.stddev)


class RandomUniform(Initializer):
    """Independent uniform entries: ``W ~ U[minval, maxval)``.

    Defaults ``minval=-0.05, maxval=0.05`` are Keras'. Source: ``keras.initializers.RandomUniform``;
    ``torch.nn.init.uniform_`` (whose default range is [0, 1)).
    """

    formula = "W ~ U[minval, maxval)"
    source = "keras.initializers.RandomUniform; torch.nn.init.uniform_"
    aliases = ("uniform",)
    _params = ("minval", "maxval")

    def __init__(self, minval: float = -0.05, maxval: float = 0.05) -> None:
        self.minval = check_finite("minval", minval)
        self.maxval = check_finite("maxval", maxval)
        if self.minval > self.maxval:
            raise ValueError(f"minval must be <= maxval, got minval={minval!r} > maxval={maxval!r}.")

    def _fill(self, out: torch.Tensor, layout: Layout, generator: torch.Generator | None) -> None:
        out.uniform_(self.minval, self.maxval, generator=generator)

    def _distribution(self, shape: tuple[int, ...], layout: Layout) -> Distribution:
        if self.minval == self.maxval:
            return Distribution.constant(self.minval)
        return Distribution.uniform(self.minval, self.maxval)


class TruncatedNormal(Initializer):
    """Normal entries cut at two standard deviations: ``W ~ N(mean, stddev²)`` restricted to
    ``[mean - 2·stddev, mean + 2·stddev]``.

    ``stddev`` is the standard deviation *before* truncation, so the entries' actual standard deviation is
    ``0.87962566103423978 · stddev``. Keras' semantics (``keras.initializers.TruncatedNormal``, defaults
    ``mean=0.0, stddev=0.05``). Not the same as ``torch.nn.init.trunc_normal_``, which takes absolute bounds
    ``a=-2, b=2`` whatever the std (with its default ``std=1`` the two coincide).
    """

    formula = "W ~ N(mean, stddev²) cut to mean ± 2·stddev"
    source = "keras.initializers.TruncatedNormal"
    aliases = ("truncated",)
    _params = ("mean", "stddev")

    def __init__(self, mean: float = 0.0, stddev: float = 0.05) -> None:
        self.mean = check_finite("mean", mean)
        self.stddev = check_positive("stddev", stddev)

    def _fill(self, out: torch.Tensor, layout: Layout, generator: torch.Generator | None) -> None:
        d = self._distribution((), layout)
        trunc_normal_(out, self.mean, self.stddev, d.low, d.high, generator)

    def _distribution(self, shape: tuple[int, ...], layout: Layout) -> Distribution:
        return Distribution.truncated_normal(
            self.mean, self.stddev, self.mean - 2.0 * self.stddev, self.mean + 2.0 * self.stddev
        )
