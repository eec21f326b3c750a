"""The structural schemes by name and by config class name: what :func:`initlab.schemes.resolve` reads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from initlab.schemes._matrices import DeltaOrthogonal, SpectralCondition, ZerO
from initlab.schemes._recurrent import Chrono, ForgetBias
from initlab.schemes._residual import Fixup, LayerScale, ReZero, SkipInit, ZeroGamma
from initlab.schemes._structural import StructuralScheme
from initlab.schemes._transformer import DeepNet, GPT2Scaling, Mimetic, SmallEmbedding, TFixup

#: Every structural scheme class, in the order of :data:`initlab.schemes.spec.STRUCTURAL_SCHEME_NAMES`.
STRUCTURAL_CLASSES: tuple[type[StructuralScheme], ...] = (
    Fixup,
    SkipInit,
    ReZero,
    ZeroGamma,
    LayerScale,
    GPT2Scaling,
    TFixup,
    DeepNet,
    SmallEmbedding,
    Mimetic,
    DeltaOrthogonal,
    ZerO,
    SpectralCondition,
    ForgetBias,
    Chrono,
)
BY_NAME: dict[str, type[StructuralScheme]] = {cls.scheme_name: cls for cls in STRUCTURAL_CLASSES}
BY_CLASS_NAME: dict[str, type[StructuralScheme]] = {cls.__name__: cls for cls in STRUCTURAL_CLASSES}


def structural_scheme(name: str) -> StructuralScheme:
    """The structural scheme named ``name`` (lower case) with its default settings."""
    return BY_NAME[name]()


def structural_from_dict(config: Mapping[str, Any]) -> StructuralScheme:
    """A structural scheme from ``{"class_name": "Fixup", "config": {...}}``."""
    return BY_CLASS_NAME[config["class_name"]].from_dict(config)
