"""Schemes for residual networks that make each residual block start at (or near) the identity: Fixup, SkipInit,
ReZero, zero-γ and LayerScale.

Each finds its targets through the model's declared structure (:func:`initlab.nets.structure`): the last layer of
each residual branch, the normalization after it, the gate that multiplies it, the head. SkipInit, ReZero and
LayerScale initialize a gate, a parameter that the architecture must have (``x + α·f(x)``): they apply to blocks that
declare one (``BranchDecl(gate=...)``) and raise an error naming the missing gate elsewhere; initlab's own resmlp,
resnet and transformer specs do not have gates yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import nn

from initlab.catalog import Constant, Zeros
from initlab.checks import check_finite, check_positive
from initlab.nets import Branch, Structure, StructureError
from initlab.schemes._rules import Rule
from initlab.schemes._structural import (
    Override,
    Plan,
    StructuralScheme,
    Targets,
    branch_layers,
    fmt,
    residual_structure,
    weights_of,
)


def require_gates(model: nn.Module, found: Structure, scheme: str, what: str) -> None:
    """Raise :class:`StructureError` when some residual branch declares no gate."""
    missing = [b.name for b in found.branches if b.gate is None]
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise StructureError(
            f"{scheme} needs a gate on every residual branch ({what}, x + α·f(x)), which is part of the architecture: "
            f"{len(missing)} of {len(found.branches)} branches of {type(model).__name__} declare none ({shown}). "
            "Build the model with a gate (resmlp:64x8;gate=scalar, transformer:64x4;gate=channel for LayerScale), or "
            "give your blocks a gate parameter and declare it with BranchDecl(..., gate='alpha') (initlab.nets)."
        )


def gate_rules(model: nn.Module, branches: Iterable[Branch], value: float, label: str) -> list[Rule]:
    """Rules that set the gate of each of ``branches`` to ``value``: one per (module class, parameter name), since a
    gate is a parameter of a custom module, which only a rule naming its module type covers."""
    rules: dict[tuple[type, str], Rule] = {}
    for branch in branches:
        if branch.gate is None:
            continue
        owner, _, attr = branch.gate.rpartition(".")
        cls = type(model.get_submodule(owner))
        rules.setdefault((cls, attr), Rule(Constant(value), module=cls, param=attr, label=label))
    return list(rules.values())


@dataclass(frozen=True)
class Fixup(StructuralScheme):
    """Fixup (Zhang, Dauphin & Ma 2019, "Fixup Initialization: Residual Learning Without Normalization", §3):

    1. the classification layer (the declared head) and the last layer of each residual branch are 0;
    2. every other layer gets the base (He et al. 2015 by default), and the weight layers inside residual branches
       are scaled by ``L^(-1/(2m-2))``, with L the number of residual branches and m the layers per branch (an
       attention module counts two: value and output projection);
    3. (architecture) a scalar multiplier, initialized at 1, in every branch, and scalar biases before each layer:
       a declared branch gate is set to 1; initlab's networks have no scalar biases, so those are not added.

    With the last layers at 0 every block is the identity at initialization, and the scaling keeps the update of
    each branch O(1/L) so that the whole network's changes stay bounded with depth. Designed for networks without
    normalization (``resmlp`` with ``norm=none``, ``resnet`` with ``norm=none``).
    """

    config_name = "a Fixup config"
    scheme_name: ClassVar[str] = "fixup"

    def plan(self, targets: Targets) -> Plan:
        model = targets.model
        found = residual_structure(targets, self.scheme_name)
        count = len(found.branches)
        plan = Plan(extra={"branches": count})
        for branch in found.branches:
            layers, depth = branch_layers(model, branch.name)
            factor = count ** (-1.0 / (2 * depth - 2)) if depth > 1 else 1.0
            label = f"branch layer: base × L^(-1/(2m-2)) = {count}^(-1/{2 * depth - 2}) = {fmt(factor)}"
            plan.set(weights_of(targets, [n for n in layers if n != branch.last]), Override(label, scale=factor))
            plan.set(targets.of(branch.last), Override("branch last layer → 0", init=Zeros()))
        if found.head is not None:
            plan.set(targets.of(found.head), Override("classification layer → 0", init=Zeros()))
        plan.rules = gate_rules(model, found.branches, 1.0, "branch multiplier → 1")
        return plan


@dataclass(frozen=True)
class SkipInit(StructuralScheme):
    """SkipInit (De & Smith 2020, "Batch Normalization Biases Residual Blocks Towards the Identity Function in Deep
    Networks"): each residual block computes ``x + α·f(x)`` with a learnable scalar α initialized to ``value`` (0 in
    the paper), so that every block is the identity at initialization, which is what batch normalization achieves
    implicitly; the rest gets the base (He normal). Needs a declared gate on every branch (an architecture change).
    """

    config_name = "a SkipInit config"
    scheme_name: ClassVar[str] = "skipinit"

    value: float = 0.0  #: α at initialization; the paper uses 0 ("or a small constant")

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", check_finite("value", self.value))
        super().__post_init__()

    def plan(self, targets: Targets) -> Plan:
        found = residual_structure(targets, self.scheme_name)
        require_gates(targets.model, found, self.scheme_name, "a scalar α")
        rules = gate_rules(targets.model, found.branches, self.value, f"branch gate α → {fmt(self.value)}")
        return Plan(rules=rules, extra={"branches": len(found.branches), "alpha": self.value})


@dataclass(frozen=True)
class ReZero(StructuralScheme):
    """ReZero (Bachlechner et al. 2021, "ReZero is All You Need: Fast Convergence at Large Depth"): ``x + α·f(x)``
    with a learnable scalar α = 0 at initialization and no normalization, so that every block starts as the
    identity and the input-output Jacobian is exactly the identity (dynamical isometry). The rest gets the base
    (Xavier uniform, as the paper's transformers). Needs a declared gate on every branch (an architecture change);
    build the network without normalization for the paper's architecture.
    """

    config_name = "a ReZero config"
    scheme_name: ClassVar[str] = "rezero"

    def default_base(self) -> Any:
        return "xavier_uniform"

    def plan(self, targets: Targets) -> Plan:
        found = residual_structure(targets, self.scheme_name)
        require_gates(targets.model, found, self.scheme_name, "a scalar α")
        rules = gate_rules(targets.model, found.branches, 0.0, "branch gate α → 0")
        return Plan(rules=rules, extra={"branches": len(found.branches)})


@dataclass(frozen=True)
class ZeroGamma(StructuralScheme):
    """Zero-γ (Goyal et al. 2017, "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", §5.1): the scale γ of
    the last batch normalization of each residual branch is 0, so that every block starts as its shortcut; the rest
    gets the base (He normal, as the paper). torchvision's ``zero_init_residual=True``. Needs a normalization after
    each branch's last layer (``resnet`` with ``norm=batch`` or ``norm=layer``).
    """

    config_name = "a ZeroGamma config"
    scheme_name: ClassVar[str] = "zero_gamma"

    def plan(self, targets: Targets) -> Plan:
        found = residual_structure(targets, self.scheme_name)
        norms = [b.last_norm for b in found.branches if b.last_norm is not None]
        if not norms:
            raise StructureError(
                f"zero_gamma needs a normalization after the last layer of each residual branch (ResNet's second batch "
                f"norm); the branches of {type(targets.model).__name__} declare none. Build resnet with norm=batch "
                "(the default) or norm=layer, or declare BranchDecl(..., last_norm=...) on your blocks."
            )
        plan = Plan(extra={"branches": len(found.branches), "zeroed": len(norms)})
        for norm in norms:
            plan.set(targets.of(norm, "norm_scale"), Override("last norm scale γ of the branch → 0", init=Zeros()))
        return plan


#: CaiT's ε by depth (Touvron et al. 2021, "Going deeper with Image Transformers", §2): 0.1 up to 18 blocks, 1e-5 up
#: to 24, 1e-6 beyond.
LAYERSCALE_EPSILON: tuple[tuple[int, float], ...] = ((18, 0.1), (24, 1e-5))
LAYERSCALE_DEEP = 1e-6


def layerscale_epsilon(depth: int) -> float:
    """LayerScale's initial ε for a network of ``depth`` blocks (see :data:`LAYERSCALE_EPSILON`)."""
    return next((eps for limit, eps in LAYERSCALE_EPSILON if depth <= limit), LAYERSCALE_DEEP)


@dataclass(frozen=True)
class LayerScale(StructuralScheme):
    """LayerScale (Touvron et al. 2021, "Going deeper with Image Transformers", §2): each branch is multiplied by a
    learnable diagonal ``diag(λ_1, ..., λ_d)`` (``x + diag(λ)·f(x)``), every λ initialized to ε: 0.1 for networks of
    up to 18 blocks, 1e-5 up to 24, 1e-6 deeper (or ``epsilon``). The rest gets the base: truncated normal with std
    0.02 (DeiT and CaiT's init). Needs a declared gate on every branch (an architecture change).
    """

    config_name = "a LayerScale config"
    scheme_name: ClassVar[str] = "layerscale"

    epsilon: float | None = None  #: λ at initialization; None: by depth, as CaiT

    def __post_init__(self) -> None:
        if self.epsilon is not None:
            object.__setattr__(self, "epsilon", check_positive("epsilon", self.epsilon))
        super().__post_init__()

    def default_base(self) -> Any:
        return {"class_name": "TruncatedNormal", "config": {"mean": 0.0, "stddev": 0.02}}

    def plan(self, targets: Targets) -> Plan:
        found = residual_structure(targets, self.scheme_name)
        eps = self.epsilon if self.epsilon is not None else layerscale_epsilon(len(found.blocks))
        require_gates(targets.model, found, self.scheme_name, "a per-channel scale diag(λ)")
        rules = gate_rules(targets.model, found.branches, eps, f"branch scale diag(λ) → ε = {fmt(eps)}")
        return Plan(rules=rules, extra={"blocks": len(found.blocks), "epsilon": eps})
