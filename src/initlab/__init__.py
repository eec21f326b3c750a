"""initlab: neural-network weight initialization for PyTorch.

The exact catalog of initializers (Keras' set and torch's) with correct fans for every layout, whole-model schemes
(``initialize``), real datasets and model builders, and studies that compare initializers by training populations.
"""

from importlib.metadata import PackageNotFoundError, version

from initlab import data, models
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
from initlab.diagnostics import Comparison, Diagnosis, Finding, compare_diagnoses, diagnose
from initlab.fans import Fans, Layout, compute_fans
from initlab.gains import gain, numeric_gain
from initlab.lsuv import LSUV, lsuv
from initlab.schemes import InitEntry, InitReport, Rule, Scheme, UncoveredParameterWarning, initialize
from initlab.store import Store
from initlab.studies import Arm, Study, run_study, summarize
from initlab.training import TrainSettings

try:
    __version__ = version("initlab")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "LSUV",
    "TRUNCATED_STD_FACTOR",
    "Arm",
    "CatalogEntry",
    "Comparison",
    "Constant",
    "Diagnosis",
    "Dirac",
    "Distribution",
    "Fans",
    "Finding",
    "Function",
    "GlorotNormal",
    "GlorotUniform",
    "HeNormal",
    "HeUniform",
    "Identity",
    "InitEntry",
    "InitReport",
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
    "Rule",
    "Scheme",
    "Sparse",
    "Store",
    "Study",
    "TrainSettings",
    "TruncatedNormal",
    "UncoveredParameterWarning",
    "VarianceScaling",
    "XavierNormal",
    "XavierUniform",
    "Zeros",
    "__version__",
    "catalog",
    "compare_diagnoses",
    "compute_fans",
    "data",
    "diagnose",
    "gain",
    "get",
    "initialize",
    "lsuv",
    "models",
    "numeric_gain",
    "run_study",
    "serialize",
    "summarize",
]
