"""What a scheme can be given as: the one list of model-wide scheme names, the config shapes, and :func:`parse`.

A scheme spec is one of:

* an :class:`~initlab.schemes.Initialization` object (a :class:`~initlab.schemes.Scheme`,
  :class:`~initlab.schemes.TorchDefaults`, :class:`~initlab.schemes.LSUV`, or any object with ``apply`` and
  ``needs_data``), used as it is;
* a model-wide name (:data:`SCHEME_NAMES`, case and surrounding spaces ignored): ``"auto"`` and ``"keras"`` are
  ordered rules (:data:`RULE_SCHEME_NAMES`: a Scheme can use them as its ``base``), ``"torch"``, ``"lsuv"`` and
  ``"critical"`` are procedures;
* an initializer: a catalog name such as ``"he_normal"``, an :class:`~initlab.Initializer` object or class, or its
  config ``{"class_name": "HeNormal", "config": {...}}``, which initializes every weight
  (:meth:`~initlab.schemes.Scheme.from_initializer`);
* a Scheme's config: ``{"class_name": "Scheme", "config": {...}}`` or the bare ``{"rules": [...], "base": ...,
  "name": ..., "lstm_forget_bias": ...}``;
* an LSUV config: ``{"class_name": "LSUV", "config": {...}}``;
* a critical-scheme config: ``{"class_name": "Critical", "config": {"bias_var": ...}}``;
* a structural scheme (:data:`STRUCTURAL_SCHEME_NAMES`: Fixup, GPT-2 scaling, ZerO, chrono, ...; see
  ``docs/schemes.md``) by name, ``"fixup"``, or by config, ``{"class_name": "Fixup", "config": {...}}``.

:func:`parse` says which form a spec has without building anything; :func:`initlab.schemes.resolve` builds it. They
live apart because a Scheme reads its ``base`` with :func:`parse` as well, while :func:`~initlab.schemes.resolve`
builds LSUV and Critical, which are themselves built on Scheme.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from initlab.catalog import Initializer, catalog
from initlab.checks import did_you_mean
from initlab.schemes.base import Initialization

#: The model-wide scheme names: every name a scheme can have that is not an initializer's.
SchemeName = Literal["auto", "keras", "torch", "lsuv", "critical"]
SCHEME_NAMES: tuple[SchemeName, ...] = get_args(SchemeName)
#: The model-wide names that are lists of rules; "torch", "lsuv" and "critical" are procedures and cannot be a
#: Scheme's base.
RULE_SCHEME_NAMES: tuple[SchemeName, ...] = ("auto", "keras")

#: The structural schemes: procedures that find their targets (the last layer of each residual branch, the residual
#: stream's output projections, the embeddings, attention, convolution kernels, LSTM gates) by the model's declared
#: structure and module types. Kept apart from :data:`SCHEME_NAMES`, the general-purpose names.
StructuralName = Literal[
    "fixup",
    "skipinit",
    "rezero",
    "zero_gamma",
    "layerscale",
    "gpt2",
    "t_fixup",
    "deepnet",
    "small_embedding",
    "mimetic",
    "delta_orthogonal",
    "zero_init",
    "spectral",
    "forget_bias",
    "chrono",
]
STRUCTURAL_SCHEME_NAMES: tuple[StructuralName, ...] = get_args(StructuralName)
#: The config class names of the structural schemes, in the order of :data:`STRUCTURAL_SCHEME_NAMES`.
STRUCTURAL_CLASS_NAMES: tuple[str, ...] = (
    "Fixup",
    "SkipInit",
    "ReZero",
    "ZeroGamma",
    "LayerScale",
    "GPT2Scaling",
    "TFixup",
    "DeepNet",
    "SmallEmbedding",
    "Mimetic",
    "DeltaOrthogonal",
    "ZerO",
    "SpectralCondition",
    "ForgetBias",
    "Chrono",
)

#: Anything :func:`initlab.schemes.resolve` and :func:`initlab.initialize` accept.
SchemeSpec = Initialization | str | Mapping[str, Any] | Initializer | type[Initializer]
#: The forms :func:`parse` tells apart.
SpecForm = Literal[
    "object", "name", "initializer", "scheme_config", "lsuv_config", "critical_config", "structural_config"
]


def parse(spec: object, *, what: str = "scheme") -> tuple[SpecForm, Any]:
    """The form of ``spec`` and the part that builds it.

    ====================  ================================================================================
    form                  value
    ====================  ================================================================================
    ``"object"``          the :class:`~initlab.schemes.Initialization` itself
    ``"name"``            the model-wide name, lower case (one of :data:`SCHEME_NAMES` or
                          :data:`STRUCTURAL_SCHEME_NAMES`)
    ``"initializer"``     ``spec`` as given: a name, config, object or class for :func:`initlab.get`
    ``"scheme_config"``   the dict for :meth:`Scheme.from_dict <initlab.schemes.Scheme.from_dict>`
    ``"lsuv_config"``     ``spec`` as given, for :meth:`LSUV.from_dict <initlab.schemes.LSUV.from_dict>`
    ``"critical_config"`` ``spec`` as given, for :meth:`Critical.from_dict <initlab.schemes.Critical.from_dict>`
    ====================  ================================================================================

    and ``"structural_config"``: ``spec`` as given, for the ``from_dict`` of the structural scheme it names.

    Raises ``TypeError`` (naming ``what``, e.g. ``"base"``) for anything else. Nothing is validated beyond the form:
    an unknown initializer name is the builder's error (:func:`unknown_scheme_error`).
    """
    if isinstance(spec, Initialization) and not isinstance(spec, type):
        return "object", spec
    if isinstance(spec, str):
        key = spec.strip().lower()
        return ("name", key) if key in SCHEME_NAMES or key in STRUCTURAL_SCHEME_NAMES else ("initializer", spec)
    if isinstance(spec, Mapping):
        if "class_name" not in spec:
            return "scheme_config", spec
        if spec["class_name"] == "Scheme":
            return "scheme_config", spec.get("config") or {}
        if spec["class_name"] == "LSUV":
            return "lsuv_config", spec
        if spec["class_name"] == "Critical":
            return "critical_config", spec
        if spec["class_name"] in STRUCTURAL_CLASS_NAMES:
            return "structural_config", spec
        return "initializer", spec
    if isinstance(spec, Initializer) or (isinstance(spec, type) and issubclass(spec, Initializer)):
        return "initializer", spec
    raise uninterpretable_error(spec, what)


def uninterpretable_error(spec: object, what: str) -> TypeError:
    """The error for a spec of none of the forms, or of a form that does not fit where it is used."""
    return TypeError(
        f"cannot interpret {spec!r} as a {what}: give {_listed(SCHEME_NAMES)}, an initializer (name, config or "
        "object), a Scheme or a scheme config dict."
    )


def scheme_name_choices() -> list[str]:
    """Every name a scheme can be given by: the model-wide names and every initializer name and alias."""
    names: list[str] = [*SCHEME_NAMES, *STRUCTURAL_SCHEME_NAMES]
    for entry in catalog():
        names.extend((entry.snake_name, *entry.aliases))
    return names


def unknown_scheme_error(name: str) -> ValueError:
    """The error for a name that is neither a model-wide scheme nor an initializer: it lists the model-wide schemes
    and suggests the closest name of either kind."""
    hint = did_you_mean(name, scheme_name_choices())
    return ValueError(
        f"unknown scheme {name!r}: a scheme is one of {_listed(SCHEME_NAMES)}, a structural scheme "
        f"({_listed(STRUCTURAL_SCHEME_NAMES)}), an initializer name (run `initlab list`), an Initializer, a Scheme or "
        f"a config dict.{hint}"
    )


def procedure_error(spec: object, what: str) -> ValueError:
    """The error for "torch", "lsuv", "critical", a structural scheme, or an LSUV or Critical config where only a list
    of rules will do (a Scheme's ``base``)."""
    if isinstance(spec, Mapping):
        kind = spec.get("class_name", "LSUV")
        return ValueError(f"{what}: {kind} is a procedure, not a list of rules, so it cannot be used here.")
    return ValueError(
        f"{what}={spec!r} is a procedure, not a list of rules, so it cannot be used here; give a rule-based "
        f"scheme: {_listed(RULE_SCHEME_NAMES)}, an initializer name or a Scheme."
    )


def _listed(names: tuple[str, ...]) -> str:
    return ", ".join(repr(n) for n in names)
