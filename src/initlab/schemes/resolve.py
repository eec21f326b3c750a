"""From a scheme spec to an :class:`~initlab.schemes.Initialization`, and :func:`initialize`, which applies it.

:func:`resolve` is the one reader of scheme specs: the forms are listed in :mod:`initlab.schemes.spec`, the model-wide
names in :data:`~initlab.schemes.spec.SCHEME_NAMES`. A study checks its arms with it before anything trains, and
runs them with ``resolve(spec).apply(model, seed=..., data=...)``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from initlab.schemes._critical import Critical
from initlab.schemes._lsuv import LSUV
from initlab.schemes._registry import BY_NAME, structural_from_dict, structural_scheme
from initlab.schemes._report import InitReport
from initlab.schemes._scheme import Scheme, as_scheme
from initlab.schemes._structural import StructuralScheme
from initlab.schemes._torch import TorchDefaults
from initlab.schemes.base import Initialization, check_arguments
from initlab.schemes.spec import SchemeSpec, parse
from initlab.seeding import Seed
from initlab.tracing import ModelInput


def resolve(spec: SchemeSpec | Any) -> Initialization:
    """The :class:`~initlab.schemes.Initialization` that ``spec`` names or configures.

    ``"torch"`` gives :class:`~initlab.schemes.TorchDefaults`, ``"lsuv"`` and ``{"class_name": "LSUV", ...}`` an
    :class:`~initlab.schemes.LSUV`, ``"critical"`` and ``{"class_name": "Critical", ...}`` a
    :class:`~initlab.schemes.Critical`, a structural scheme's name (``"fixup"``, ``"gpt2"``, ...) or config its
    :class:`~initlab.schemes.StructuralScheme`, an Initialization object itself; every other form (``"auto"``,
    ``"keras"``, an initializer, a Scheme config) a :class:`~initlab.schemes.Scheme`. Raises ``ValueError`` for an
    unknown name, naming the closest initializer or scheme name and listing the model-wide schemes, and ``TypeError``
    for a value of no scheme form.
    """
    form, value = parse(spec)
    if form == "object":
        return value
    if form == "lsuv_config":
        return LSUV.from_dict(value)
    if form == "critical_config":
        return Critical.from_dict(value)
    if form == "structural_config":
        return structural_from_dict(value)
    if form == "name" and value in BY_NAME:
        return structural_scheme(value)
    if form == "name" and value == "torch":
        return TorchDefaults()
    if form == "name" and value == "lsuv":
        return LSUV()
    if form == "name" and value == "critical":
        return Critical()
    return as_scheme(spec)


def uses_data(spec: SchemeSpec | Any) -> bool:
    """Whether the values ``spec`` gives can depend on ``data``: it needs data (LSUV), or it finds the activations
    with a forward pass that runs on ``data`` when given (on a built input otherwise): a Scheme with an "auto" rule, or
    "critical", or a structural scheme on an "auto" base. A study shows such a scheme a sample of training inputs;
    for any other, ``data`` changes nothing and need not be loaded."""
    init = resolve(spec)
    return (
        bool(init.needs_data)
        or isinstance(init, Critical)
        or (isinstance(init, (Scheme, StructuralScheme)) and init.uses_auto)
    )


def initialize(
    model: nn.Module,
    scheme: SchemeSpec | Any,
    *,
    seed: Seed = None,
    data: ModelInput | None = None,
) -> InitReport:
    """Initialize every parameter of ``model`` in place by ``scheme`` and return an :class:`InitReport`.

    ``scheme`` is one of:

    * an initializer (object, name such as ``"he_normal"``, or config dict): it initializes every weight matrix,
      kernel and embedding; recurrent (hidden-hidden) matrices are orthogonal, gate by gate; biases become zeros;
      normalization layers get scale 1 and shift 0 (:meth:`Scheme.from_initializer`);
    * ``"keras"``: Keras' layer defaults (:meth:`Scheme.keras`);
    * ``"torch"``: each module's own ``reset_parameters`` (children before their parent, so that
      MultiheadAttention ends as constructed): puts a model back to PyTorch's defaults (:class:`TorchDefaults`);
    * ``"auto"``: He, LeCun, Glorot or a numeric gain, chosen by the activation that follows each layer
      (:meth:`Scheme.auto`, :func:`initlab.schemes.choose_initializer`); ``data``, if given, is the input of the one
      forward pass that finds the activations;
    * ``"lsuv"`` or an :class:`~initlab.schemes.LSUV` config: layer-sequential unit variance; needs ``data``;
    * ``"critical"`` or a :class:`~initlab.schemes.Critical` config: each layer on the critical line (χ₁ = 1) of
      the activation that follows it, by mean-field theory (:mod:`initlab.theory`); ``data`` as for ``"auto"``;
    * a structural scheme: ``"fixup"``, ``"skipinit"``, ``"rezero"``, ``"zero_gamma"``, ``"layerscale"``,
      ``"gpt2"``, ``"t_fixup"``, ``"deepnet"``, ``"small_embedding"``, ``"mimetic"``, ``"delta_orthogonal"``,
      ``"zero_init"``, ``"spectral"``, ``"forget_bias"``, ``"chrono"`` or its config dict: targets found through the
      model's declared structure (the last layer of each residual branch, the output projections, the embeddings)
      and module types, the rest by the scheme's base (``docs/schemes.md``);
    * a :class:`Scheme` of ordered rules, or its config dict;
    * any :class:`~initlab.schemes.Initialization` object.

    ``data`` is one input tensor, a tuple/list of positional inputs or a dict of keyword inputs (inputs only, no
    targets). ``seed``: see :mod:`initlab.schemes._apply`. A parameter shared by several modules (tied weights) is
    initialized and reported once; a parameter no rule covers keeps its values, is listed in ``report.uncovered``
    and issues an :class:`UncoveredParameterWarning`. The same as ``resolve(scheme).apply(model, seed=seed,
    data=data)``, with the model, seed and data checked before the scheme is read.
    """
    check_arguments(model, seed, data)
    return resolve(scheme).apply(model, seed=seed, data=data)
