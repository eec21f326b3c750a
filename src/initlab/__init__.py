"""initlab: neural-network weight initialization for PyTorch.

The exact catalog of initializers (Keras' set and torch's) with correct fans for every layout, whole-model schemes
(``initialize``), diagnostics, real datasets and model builders; studies live in :mod:`initlab.studies`.
``initlab.compare(model=..., data=..., inits=[...])`` runs a study in one call and ``initlab.audit(model)`` checks
how a model is initialized.

The names below are loaded on first use (PEP 562): ``import initlab`` itself imports neither torch nor anything else
heavy, so that ``initlab --help`` answers at once. ``initlab.HeNormal`` imports the catalog (and torch) the first time
it is touched. The study API (``Study``, ``run_study``, ``Store``, ...) moved to :mod:`initlab.studies`; its old
top-level names still work, with a ``DeprecationWarning``, for one release.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from initlab import data, models, theory
    from initlab.auditing import Audit, audit
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
    from initlab.comparing import CompareResult, compare
    from initlab.diagnostics import Comparison, Diagnosis, Finding, compare_diagnoses, diagnose
    from initlab.fans import Fans, Layout, compute_fans
    from initlab.gains import gain, numeric_gain
    from initlab.schemes import (
        LSUV,
        InitEntry,
        InitReport,
        Rule,
        Scheme,
        UncoveredParameterWarning,
        initialize,
        lsuv,
    )

_CATALOG = (
    "TRUNCATED_STD_FACTOR", "CatalogEntry", "Constant", "Dirac", "Distribution", "Function", "GlorotNormal",
    "GlorotUniform", "HeNormal", "HeUniform", "Identity", "Initializer", "KaimingNormal", "KaimingUniform",
    "LeCunNormal", "LeCunUniform", "Ones", "Orthogonal", "RandomNormal", "RandomUniform", "Sparse", "TruncatedNormal",
    "VarianceScaling", "XavierNormal", "XavierUniform", "Zeros", "get", "serialize",
)  # fmt: skip
_SCHEMES = ("LSUV", "InitEntry", "InitReport", "Rule", "Scheme", "UncoveredParameterWarning", "initialize", "lsuv")
_DIAGNOSTICS = ("Comparison", "Diagnosis", "Finding", "compare_diagnoses", "diagnose")

#: Public name -> the module that defines it.
_LAZY: dict[str, str] = {
    **dict.fromkeys(_CATALOG, "initlab.catalog"),
    **dict.fromkeys(_SCHEMES, "initlab.schemes"),
    **dict.fromkeys(_DIAGNOSTICS, "initlab.diagnostics"),
    **dict.fromkeys(("Fans", "Layout", "compute_fans"), "initlab.fans"),
    **dict.fromkeys(("gain", "numeric_gain"), "initlab.gains"),
    **dict.fromkeys(("compare", "CompareResult"), "initlab.comparing"),
    **dict.fromkeys(("audit", "Audit"), "initlab.auditing"),
}
#: Submodules served as attributes (``initlab.catalog`` is also callable: ``initlab.catalog()`` lists it).
_SUBMODULES = ("catalog", "coordcheck", "data", "models", "mup", "theory")
#: Old top-level names of the study API, served from initlab.studies with a DeprecationWarning until 0.3.
_MOVED = ("Arm", "Store", "Study", "TrainSettings", "run_study", "summarize")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"initlab.{name}")
    elif name in _MOVED:
        warnings.warn(
            f"initlab.{name} moved to initlab.studies.{name}; the old name goes away in initlab 0.3.",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module("initlab.studies"), name)
    elif name == "__version__":
        from initlab.about import installed_version

        value = installed_version()
    else:
        raise AttributeError(f"module 'initlab' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "LSUV",
    "TRUNCATED_STD_FACTOR",
    "Audit",
    "CatalogEntry",
    "CompareResult",
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
    "TruncatedNormal",
    "UncoveredParameterWarning",
    "VarianceScaling",
    "XavierNormal",
    "XavierUniform",
    "Zeros",
    "__version__",
    "audit",
    "catalog",
    "compare",
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
    "serialize",
    "theory",
]
