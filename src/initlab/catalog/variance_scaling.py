"""VarianceScaling, the one general mechanism, and its presets: Glorot, He, LeCun (Keras) and Xavier, Kaiming (torch).

Every preset is ``VarianceScaling`` with fixed arguments; only the names of its own arguments differ.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal, get_args

import torch

from initlab.catalog._base import Distribution, Initializer, trunc_normal_
from initlab.checks import check_choice, check_finite, check_positive
from initlab.fans import Layout
from initlab.gains import ACTIVATION_NAMES, gain

Mode = Literal["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]
DistributionName = Literal["truncated_normal", "untruncated_normal", "uniform"]
MODES: tuple[str, ...] = get_args(Mode)
DISTRIBUTIONS: tuple[str, ...] = get_args(DistributionName)

#: Standard deviation of a standard normal truncated to [-2, 2]: sqrt(1 - 4φ(2)/(2Φ(2) - 1)). Keras divides by it so
#: that the *truncated* draw has the intended variance (keras/src/initializers/random_initializers.py).
TRUNCATED_STD_FACTOR = 0.87962566103423978


class VarianceScaling(Initializer):
    """Entries whose variance is ``scale / n``, where ``n`` is a fan chosen by ``mode``.

    With ``n`` = fan_in, fan_out, (fan_in + fan_out)/2 or √(fan_in·fan_out) for ``mode`` = ``"fan_in"``,
    ``"fan_out"``, ``"fan_avg"`` or ``"fan_geo_avg"``, and ``s = scale / max(1, n)``:

    * ``"truncated_normal"``: N(0, σ²) with σ = √s / 0.87962566103423978, cut at ±2σ (variance exactly ``s``);
    * ``"untruncated_normal"``: N(0, s);
    * ``"uniform"``: U[-√(3s), √(3s)].

    Fans follow the layout (:mod:`initlab.fans`). Source: ``keras.initializers.VarianceScaling`` (same arguments,
    defaults and constants); Glorot & Bengio (2010), He et al. (2015) and LeCun et al. (1998) for the presets.
    """

    formula = "Var(W) = scale / n(mode); truncated normal, normal or uniform"
    source = "keras.initializers.VarianceScaling"
    _params = ("scale", "mode", "distribution")

    def __init__(
        self, scale: float = 1.0, mode: Mode = "fan_in", distribution: DistributionName = "truncated_normal"
    ) -> None:
        self.scale = check_positive("scale", scale)
        self.mode: Mode = check_choice("mode", mode, MODES)
        self.distribution_name: DistributionName = check_choice("distribution", distribution, DISTRIBUTIONS)

    # ``distribution`` is both a constructor argument (Keras' name) and a method of every Initializer; the config
    # reads the argument under its Keras name.
    def get_config(self) -> dict[str, object]:
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution_name}

    def variance(self, shape: tuple[int, ...] | list[int], layout: Layout | str = "torch") -> float:
        """``scale / max(1, n)``: the variance of every entry for ``shape`` under ``layout``."""
        return self.scale / max(1.0, self.fans(shape, layout).get(self.mode))

    def _fill(self, out: torch.Tensor, layout: Layout, generator: torch.Generator | None) -> None:
        d = self._distribution(tuple(out.shape), layout)
        if d.family == "truncated_normal":
            trunc_normal_(out, 0.0, d.sigma, d.low, d.high, generator)
        elif d.family == "normal":
            out.normal_(0.0, d.sigma, generator=generator)
        else:
            out.uniform_(d.low, d.high, generator=generator)

    def _distribution(self, shape: tuple[int, ...], layout: Layout) -> Distribution:
        s = self.scale / max(1.0, layout.fans(shape).get(self.mode))
        if self.distribution_name == "truncated_normal":
            sigma = math.sqrt(s) / TRUNCATED_STD_FACTOR
            return Distribution.truncated_normal(0.0, sigma, -2.0 * sigma, 2.0 * sigma)
        if self.distribution_name == "untruncated_normal":
            return Distribution.normal(0.0, math.sqrt(s))
        limit = math.sqrt(3.0 * s)
        return Distribution.uniform(-limit, limit)


class _Preset(VarianceScaling):
    """A VarianceScaling with fixed arguments; its config holds only its own (named) arguments.

    A preset names the distribution it draws from in its class statement: ``class XavierUniform(_Xavier,
    distribution="uniform")``.
    """

    _params: tuple[str, ...] = ()
    _distribution_name: ClassVar[DistributionName]

    def __init_subclass__(cls, *, distribution: DistributionName | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if distribution is not None:
            cls._distribution_name = distribution

    def get_config(self) -> dict[str, object]:
        return Initializer.get_config(self)


class _Fixed(_Preset):
    """A preset without arguments of its own; its class statement fixes all of VarianceScaling's, as in
    ``class HeNormal(_Fixed, scale=2.0, mode="fan_in", distribution="truncated_normal")``, and the formula follows
    from them."""

    _fixed: ClassVar[tuple[float, Mode]]

    def __init_subclass__(cls, *, scale: float | None = None, mode: Mode = "fan_in", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if scale is not None:
            cls._fixed = (scale, mode)
            cls.formula = _formula(scale, mode, cls._distribution_name)

    def __init__(self) -> None:
        super().__init__(*self._fixed, self._distribution_name)


# How a formula writes each fan; fan_avg is written through the sum, scale/fan_avg = 2·scale/(fan_in+fan_out).
_FAN_TEXT: dict[str, tuple[float, str]] = {
    "fan_in": (1.0, "fan_in"),
    "fan_out": (1.0, "fan_out"),
    "fan_avg": (2.0, "(fan_in+fan_out)"),
    "fan_geo_avg": (1.0, "√(fan_in·fan_out)"),
}


def _formula(scale: float, mode: Mode, distribution: DistributionName) -> str:
    """What ``VarianceScaling(scale, mode, distribution)`` draws, e.g. ``U[-√(6/fan_in), +√(6/fan_in)]``."""
    factor, fan = _FAN_TEXT[mode]
    variance = factor * scale
    if distribution == "uniform":
        bound = f"√({3.0 * variance:g}/{fan})"
        return f"U[-{bound}, +{bound}]"
    normal = f"N(0, {variance:g}/{fan})"
    return f"{normal} truncated at ±2σ" if distribution == "truncated_normal" else normal


class GlorotNormal(_Fixed, scale=1.0, mode="fan_avg", distribution="truncated_normal"):
    """Glorot (Xavier) normal, Keras' form: ``VarianceScaling(1.0, "fan_avg", "truncated_normal")``.

    Truncated at ±2σ with σ = √(2/(fan_in+fan_out)) / 0.8796…, so the variance is 2/(fan_in+fan_out).
    Source: Glorot & Bengio (2010); ``keras.initializers.GlorotNormal``. Torch's ``xavier_normal_`` is untruncated:
    see :class:`XavierNormal`.
    """

    source = "Glorot & Bengio 2010; keras.initializers.GlorotNormal"


class GlorotUniform(_Fixed, scale=1.0, mode="fan_avg", distribution="uniform"):
    """Glorot (Xavier) uniform: ``VarianceScaling(1.0, "fan_avg", "uniform")``, U[-√(6/(fan_in+fan_out)), +…].

    Source: Glorot & Bengio (2010), eq. 16; ``keras.initializers.GlorotUniform`` (Keras' default kernel init).
    """

    source = "Glorot & Bengio 2010; keras.initializers.GlorotUniform"


class HeNormal(_Fixed, scale=2.0, mode="fan_in", distribution="truncated_normal"):
    """He normal, Keras' form: ``VarianceScaling(2.0, "fan_in", "truncated_normal")``, variance 2/fan_in.

    Source: He et al. (2015); ``keras.initializers.HeNormal``. Torch's ``kaiming_normal_`` is untruncated: see
    :class:`KaimingNormal`.
    """

    source = "He et al. 2015; keras.initializers.HeNormal"


class HeUniform(_Fixed, scale=2.0, mode="fan_in", distribution="uniform"):
    """He uniform: ``VarianceScaling(2.0, "fan_in", "uniform")``, U[-√(6/fan_in), +√(6/fan_in)].

    Source: He et al. (2015); ``keras.initializers.HeUniform``.
    """

    source = "He et al. 2015; keras.initializers.HeUniform"


class LeCunNormal(_Fixed, scale=1.0, mode="fan_in", distribution="truncated_normal"):
    """LeCun normal: ``VarianceScaling(1.0, "fan_in", "truncated_normal")``, variance 1/fan_in.

    The initialization SELU networks need (Klambauer et al., 2017). Source: LeCun et al. (1998), "Efficient
    BackProp"; ``keras.initializers.LecunNormal``.
    """

    source = "LeCun et al. 1998; keras.initializers.LecunNormal"


class LeCunUniform(_Fixed, scale=1.0, mode="fan_in", distribution="uniform"):
    """LeCun uniform: ``VarianceScaling(1.0, "fan_in", "uniform")``, U[-√(3/fan_in), +√(3/fan_in)].

    Source: LeCun et al. (1998); ``keras.initializers.LecunUniform``.
    """

    source = "LeCun et al. 1998; keras.initializers.LecunUniform"


class _Xavier(_Preset):
    """Torch's Xavier initializers: ``VarianceScaling(gain², "fan_avg", distribution)``."""

    _params = ("gain",)

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = check_positive("gain", gain)
        super().__init__(self.gain**2, "fan_avg", self._distribution_name)


class XavierNormal(_Xavier, distribution="untruncated_normal"):
    """Torch's Xavier normal: N(0, σ²), σ = gain·√(2/(fan_in+fan_out)), untruncated.

    ``VarianceScaling(gain², "fan_avg", "untruncated_normal")``. Source: Glorot & Bengio (2010);
    ``torch.nn.init.xavier_normal_``.
    """

    formula = "N(0, gain²·2/(fan_in+fan_out))"
    source = "Glorot & Bengio 2010; torch.nn.init.xavier_normal_"


class XavierUniform(_Xavier, distribution="uniform"):
    """Torch's Xavier uniform: U[-a, a], a = gain·√(6/(fan_in+fan_out)).

    ``VarianceScaling(gain², "fan_avg", "uniform")``. Source: Glorot & Bengio (2010);
    ``torch.nn.init.xavier_uniform_``.
    """

    formula = "U[-gain·√(6/(fan_in+fan_out)), +…]"
    source = "Glorot & Bengio 2010; torch.nn.init.xavier_uniform_"


KaimingMode = Literal["fan_in", "fan_out"]


class _Kaiming(_Preset):
    _params = ("a", "mode", "nonlinearity")

    def __init__(self, a: float = 0.0, mode: KaimingMode = "fan_in", nonlinearity: str = "leaky_relu") -> None:
        self.a = check_finite("a", a)
        self.nonlinearity = check_choice("nonlinearity", nonlinearity, ACTIVATION_NAMES)
        g = gain(nonlinearity, self.a if nonlinearity == "leaky_relu" else None)
        super().__init__(g**2, check_choice("mode", mode, ("fan_in", "fan_out")), self._distribution_name)


class KaimingNormal(_Kaiming, distribution="untruncated_normal"):
    """Torch's Kaiming (He) normal: N(0, σ²), σ = gain(nonlinearity, a) / √fan, untruncated.

    Defaults ``a=0, mode="fan_in", nonlinearity="leaky_relu"`` are torch's (gain √2).
    ``VarianceScaling(gain², mode, "untruncated_normal")``. Source: He et al. (2015);
    ``torch.nn.init.kaiming_normal_``.
    """

    formula = "N(0, gain²/fan), gain = √(2/(1+a²))"
    source = "He et al. 2015; torch.nn.init.kaiming_normal_"


class KaimingUniform(_Kaiming, distribution="uniform"):
    """Torch's Kaiming (He) uniform: U[-b, b], b = gain(nonlinearity, a) · √(3 / fan).

    ``VarianceScaling(gain², mode, "uniform")``. Torch's layers call it with ``a=√5``, which gives their default
    U[-1/√fan_in, 1/√fan_in]. Source: He et al. (2015); ``torch.nn.init.kaiming_uniform_``.
    """

    formula = "U[-gain·√(3/fan), +gain·√(3/fan)]"
    source = "He et al. 2015; torch.nn.init.kaiming_uniform_"
