"""The initializer catalog: every Keras initializer and the torch-style ones, as config objects.

``initlab.catalog`` is this package, and calling it lists the catalog (``initlab.catalog()`` is :func:`catalog`):
the package's class is a callable module, so the call works however the package was first imported.
"""

import sys
import types
from typing import Any

from initlab.catalog._base import Distribution, Initializer
from initlab.catalog.constant import Constant, Ones, Zeros
from initlab.catalog.random import RandomNormal, RandomUniform, TruncatedNormal
from initlab.catalog.registry import CatalogEntry, Function, catalog, get, serialize
from initlab.catalog.structured import Dirac, Identity, Orthogonal, Sparse
from initlab.catalog.variance_scaling import (
    TRUNCATED_STD_FACTOR,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    KaimingNormal,
    KaimingUniform,
    LeCunNormal,
    LeCunUniform,
    VarianceScaling,
    XavierNormal,
    XavierUniform,
)


class _CallableModule(types.ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> list[CatalogEntry]:
        return catalog(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = [
    "TRUNCATED_STD_FACTOR",
    "CatalogEntry",
    "Constant",
    "Dirac",
    "Distribution",
    "Function",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "Identity",
    "Initializer",
    "KaimingNormal",
    "KaimingUniform",
    "LeCunNormal",
    "LeCunUniform",
    "Ones",
    "Orthogonal",
    "RandomNormal",
    "RandomUniform",
    "Sparse",
    "TruncatedNormal",
    "VarianceScaling",
    "XavierNormal",
    "XavierUniform",
    "Zeros",
    "catalog",
    "get",
    "serialize",
]
