"""initlab: neural-network weight initialization for PyTorch.

The exact catalog of initializers (Keras' set and torch's), correct fans for every layout, gains, and a registry.
"""

from importlib.metadata import PackageNotFoundError, version

from initlab.catalog import (
    TRUNCATED_STD_FACTOR,
    CatalogEntry,
    Constant,
    Dirac,
    Distribution,
    Function,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    Identity,
    Initializer,
    KaimingNormal,
    KaimingUniform,
    LeCunNormal,
    LeCunUniform,
    Ones,
    Orthogonal,
    RandomNormal,
    RandomUniform,
    Sparse,
    TruncatedNormal,
    VarianceScaling,
    XavierNormal,
    XavierUniform,
    Zeros,
    catalog,
    get,
    serialize,
)
from initlab.fans import Fans, Layout, compute_fans
from initlab.gains import gain, numeric_gain

try:
    __version__ = version("initlab")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "TRUNCATED_STD_FACTOR",
    "CatalogEntry",
    "Constant",
    "Dirac",
    "Distribution",
    "Fans",
    "Function",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "Identity",
    "Initializer",
    "KaimingNormal",
    "KaimingUniform",
    "Layout",
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
    "__version__",
    "catalog",
    "compute_fans",
    "gain",
    "get",
    "numeric_gain",
    "serialize",
]
