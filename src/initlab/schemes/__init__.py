"""Whole-model initialization: one interface, schemes of ordered rules, the presets, LSUV, and the report.

``initialize(model, scheme, seed=..., data=...)`` applies a scheme to every parameter of a model and returns an
:class:`InitReport` of what was applied; it is ``resolve(scheme).apply(model, seed=..., data=...)``. Every scheme is
an :class:`Initialization` (``apply`` and ``needs_data``): a :class:`Scheme` of :class:`Rule` objects (an
initializer, ``"keras"`` and ``"auto"`` are schemes), :class:`TorchDefaults` (``"torch"``), :class:`LSUV`
(``"lsuv"``), :class:`Critical` (``"critical"``: every layer on its activation's critical line) or a
:class:`StructuralScheme` (Fixup, GPT-2's residual scaling, T-Fixup, ZerO, chrono, ...: targets found through the
model's declared structure, :data:`STRUCTURAL_SCHEME_NAMES`, ``docs/schemes.md``). :func:`resolve`
reads every form a scheme can be given in (:mod:`initlab.schemes.spec`). Rules match parameters by module type and
role (see :mod:`initlab.schemes._roles` for the table of roles), never by fragments of names; how a model is traced
to find the activations is :mod:`initlab.tracing`.
"""

from initlab.schemes._apply import UncoveredParameterWarning
from initlab.schemes._auto import choose_initializer, discover_activations
from initlab.schemes._critical import Critical
from initlab.schemes._lsuv import LSUV, LSUVWarning, lsuv
from initlab.schemes._matrices import DeltaOrthogonal, SpectralCondition, ZerO
from initlab.schemes._recurrent import Chrono, ForgetBias
from initlab.schemes._report import InitEntry, InitReport
from initlab.schemes._residual import Fixup, LayerScale, ReZero, SkipInit, ZeroGamma
from initlab.schemes._roles import BLOCKS, ROLES, Role, Slot, slots
from initlab.schemes._rules import AUTO, Rule, standard_rules
from initlab.schemes._scheme import Scheme, SchemeLike, as_scheme, serialize_scheme
from initlab.schemes._structural import StructuralScheme
from initlab.schemes._torch import TorchDefaults, apply_torch_defaults
from initlab.schemes._transformer import DeepNet, GPT2Scaling, Mimetic, SmallEmbedding, TFixup
from initlab.schemes.base import Initialization
from initlab.schemes.resolve import initialize, resolve, uses_data
from initlab.schemes.spec import SCHEME_NAMES, STRUCTURAL_SCHEME_NAMES, SchemeSpec
from initlab.tracing import Activation

__all__ = [
    "AUTO",
    "BLOCKS",
    "LSUV",
    "ROLES",
    "SCHEME_NAMES",
    "STRUCTURAL_SCHEME_NAMES",
    "Activation",
    "Chrono",
    "Critical",
    "DeepNet",
    "DeltaOrthogonal",
    "Fixup",
    "ForgetBias",
    "GPT2Scaling",
    "InitEntry",
    "InitReport",
    "Initialization",
    "LSUVWarning",
    "LayerScale",
    "Mimetic",
    "ReZero",
    "Role",
    "Rule",
    "Scheme",
    "SchemeLike",
    "SchemeSpec",
    "SkipInit",
    "Slot",
    "SmallEmbedding",
    "SpectralCondition",
    "StructuralScheme",
    "TFixup",
    "TorchDefaults",
    "UncoveredParameterWarning",
    "ZerO",
    "ZeroGamma",
    "apply_torch_defaults",
    "as_scheme",
    "choose_initializer",
    "discover_activations",
    "initialize",
    "lsuv",
    "resolve",
    "serialize_scheme",
    "slots",
    "standard_rules",
    "uses_data",
]
