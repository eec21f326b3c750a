"""Whole-model initialization: schemes of ordered rules, the presets, the activation-aware choice, and the report.

``initialize(model, scheme, seed=..., data=...)`` applies a scheme to every parameter of a model and returns an
:class:`InitReport` of what was applied. A scheme is an initializer, ``"keras"``, ``"torch"``, ``"auto"``,
``"lsuv"`` (see :mod:`initlab.lsuv`) or a :class:`Scheme` of :class:`Rule` objects. Rules match parameters by module
type and role (see :mod:`initlab.schemes._roles` for the table of roles), never by fragments of names.
"""

from initlab.schemes._apply import (
    UncoveredParameterWarning,
    apply_torch_defaults,
    initialize,
    serialize_scheme,
)
from initlab.schemes._auto import Activation, choose_initializer, discover_activations
from initlab.schemes._report import InitEntry, InitReport
from initlab.schemes._roles import BLOCKS, ROLES, Role, Slot, slots
from initlab.schemes._rules import AUTO, SCHEME_NAMES, Rule, Scheme, SchemeLike, as_scheme, standard_rules

__all__ = [
    "AUTO",
    "BLOCKS",
    "ROLES",
    "SCHEME_NAMES",
    "Activation",
    "InitEntry",
    "InitReport",
    "Role",
    "Rule",
    "Scheme",
    "SchemeLike",
    "Slot",
    "UncoveredParameterWarning",
    "apply_torch_defaults",
    "as_scheme",
    "choose_initializer",
    "discover_activations",
    "initialize",
    "serialize_scheme",
    "slots",
    "standard_rules",
]
