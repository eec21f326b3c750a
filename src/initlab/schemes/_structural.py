"""What the structural schemes share: a base for what they leave alone, then overrides of the parameters they target.

A structural scheme (Fixup, GPT-2's residual scaling, ZerO, chrono, ...; ``docs/schemes.md`` lists them) is a
:class:`StructuralScheme`: a frozen dataclass config, ``{"class_name": "Fixup", "config": {...}}``, whose ``apply``

1. plans: finds its targets through the model's declared structure (:func:`initlab.nets.structure`: the last layer
   of each residual branch, the residual stream's output projections, the embeddings, the gates) and module types
   (attention, convolution, LSTM), never through fragments of parameter names, and raises an error that says what
   the model lacks and how to get it before any parameter changes;
2. applies its ``base``, a rule-based scheme (an initializer name such as ``"he_normal"``, ``"auto"``, a Scheme or its
   config), to every parameter, together with the plan's own rules (gates: parameters of custom modules);
3. overrides each target (a parameter, or a gate or projection block of one): draws it anew, scales the base's
   draw, or writes the values the scheme computes.

The report names the rule that set every parameter: ``"fixup: branch last layer → 0"`` for a target,
``"fixup base: weights → HeNormal()"`` for the rest. Seeding is that of every scheme (:mod:`initlab.schemes._apply`):
a drawn override uses the parameter's own derived seed; a draw shared by several parameters (mimetic attention's
query and key, chrono's input and forget gates) derives its seed from the module or parameter it belongs to.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from initlab.catalog import Initializer, serialize
from initlab.nets import SelfAttention, Structure, StructureError, structure
from initlab.schemes._apply import _keep_padding_row, _slot_seed, apply_rules
from initlab.schemes._report import InitEntry, InitReport
from initlab.schemes._roles import Slot, slots
from initlab.schemes._rules import Rule, initializer_gain
from initlab.schemes._scheme import Scheme, as_scheme
from initlab.schemes.base import ProcedureConfig, check_arguments
from initlab.seeding import Seed, derive_seed, make_generator
from initlab.tracing import FEEDFORWARD_TYPES, ModelInput

#: Values a scheme computes for one slot from the run's seed (the slot's shape, float32 or float64).
Values = Callable[[Slot, Seed], torch.Tensor]
#: The attention modules whose query, key, value and output projections the schemes know.
ATTENTION_TYPES: tuple[type[nn.Module], ...] = (SelfAttention, nn.MultiheadAttention)
#: What the residual-structure errors suggest.
BUILD_RESIDUAL = (
    "build a resmlp/resnet/transformer spec (initlab.models) or declare residual_branches() on your blocks "
    "(initlab.nets)"
)


@dataclass(frozen=True)
class Override:
    """What a structural scheme does to one slot instead of (or on top of) the base rule.

    Exactly one of ``init`` (draw anew from the slot's seed), ``values`` (write what the scheme computes) or neither
    (keep the base's draw); then the values are multiplied by ``scale``. ``label`` is the rule in words.
    """

    label: str
    init: Initializer | None = None
    scale: float = 1.0
    values: Values | None = None
    gain: float | None = None  #: the gain to report with ``values``


@dataclass
class Plan:
    """A structural scheme's targets: an :class:`Override` per slot key, extra rules for the base (gates), an LSTM
    forget-gate bias for the base Scheme's own option, and settings for ``report.extra``."""

    overrides: dict[str, Override] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    lstm_forget_bias: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def set(self, targets: Iterable[Slot], override: Override) -> None:
        """Override every slot of ``targets`` (a later call for the same slot wins)."""
        for slot in targets:
            self.overrides[slot.key] = override


class Shared:
    """One draw that sets several slots (mimetic attention's q, k, v and out; chrono's input and forget gates): made
    on first use, from the run's seed, and handed out part by part."""

    def __init__(self, draw: Callable[[Seed], dict[str, torch.Tensor]]) -> None:
        self._draw = draw
        self._parts: dict[str, torch.Tensor] | None = None

    def part(self, name: str) -> Values:
        """The :data:`Values` of the part ``name`` of the draw."""

        def values(slot: Slot, seed: Seed) -> torch.Tensor:
            if self._parts is None:
                self._parts = self._draw(seed)
            return self._parts[name]

        return values


class Targets:
    """A model and its initialization slots (:func:`initlab.schemes.slots`), looked up by module and role; ``data``
    (the inputs ``apply`` got, if any) lets a model that declares no structure have it detected."""

    def __init__(self, model: nn.Module, data: ModelInput | None = None) -> None:
        self.model = model
        self.data = data
        self.slots: list[Slot] = slots(model)
        self._by_key = {s.key: s for s in self.slots}

    def of(self, module: str, *roles: str) -> list[Slot]:
        """The slots of the module with qualified name ``module`` (only those of ``roles`` when given)."""
        return [s for s in self.slots if s.module_name == module and (not roles or s.role in roles)]

    def key(self, key: str) -> Slot:
        """The slot with ``key`` (``"blocks.0.attn.in_proj_weight[v]"``)."""
        return self._by_key[key]

    def with_role(self, *roles: str) -> list[Slot]:
        return [s for s in self.slots if s.role in roles]


@dataclass(frozen=True)
class StructuralScheme(ProcedureConfig):
    """The base class of the structural schemes (see the module docstring); a subclass sets :attr:`scheme_name`,
    :meth:`default_base` and :meth:`plan`.

    ``base``: the rule-based scheme for every parameter the scheme does not target; ``None`` gives the scheme's
    default (:meth:`default_base`), which the config then records.
    """

    scheme_name: ClassVar[str] = "structural"

    base: Any = None

    def __post_init__(self) -> None:
        if self.base is None:
            object.__setattr__(self, "base", self.default_base())
        as_scheme(self.base, what=f"{self.scheme_name} base")  # a rule-based scheme, or a clear error now

    def default_base(self) -> Any:
        """The base scheme when none is given: He normal (He et al. 2015) unless the scheme's paper says otherwise."""
        return "he_normal"

    @property
    def needs_data(self) -> bool:
        """``False``: no structural scheme measures activations."""
        return False

    @property
    def uses_auto(self) -> bool:
        """Whether the base chooses initializers by activation (``"auto"``), which runs one forward pass on
        ``data`` when given."""
        return as_scheme(self.base).uses_auto

    def plan(self, targets: Targets) -> Plan:
        """The targets of this scheme in ``targets.model``; raises when the model lacks what the scheme needs."""
        raise NotImplementedError

    def apply(self, model: nn.Module, *, seed: Seed = None, data: ModelInput | None = None) -> InitReport:
        """Initialize ``model`` in place: the base, then the plan's overrides; report the rule of each parameter."""
        check_arguments(model, seed, data)
        plan = self.plan(Targets(model, data))
        scheme = Scheme(plan.rules, base=self.base, name=self.scheme_name, lstm_forget_bias=plan.lstm_forget_bias)
        rules = scheme.effective_rules()
        own = {r.describe() for r in rules[: len(rules) - len(as_scheme(self.base).effective_rules())]}
        report, pairs = apply_rules(model, scheme, seed=seed, data=data)
        with torch.no_grad():
            for entry, slot in pairs:
                override = plan.overrides.get(slot.key)
                if override is not None:
                    self._override(entry, slot, override, seed)
                    if slot.key in report.uncovered:
                        report.uncovered.remove(slot.key)
                elif entry.rule is not None:
                    entry.rule = f"{self.scheme_name}{'' if entry.rule in own else ' base'}: {entry.rule}"
        report.scheme = self.to_dict()
        report.extra = dict(plan.extra)
        return report

    def _override(self, entry: InitEntry, slot: Slot, override: Override, seed: Seed) -> None:
        if override.values is not None:
            slot.tensor.copy_(override.values(slot, seed))
            entry.init, entry.gain = None, override.gain
        elif override.init is not None:
            override.init.fill_(slot.tensor, seed=_slot_seed(seed, slot), layout=slot.layout)
            entry.init, entry.gain = serialize(override.init), initializer_gain(override.init)
        if override.scale != 1.0:
            slot.tensor.mul_(override.scale)
            entry.gain = None if entry.gain is None else entry.gain * abs(override.scale)
            entry.note = f"the draw × {override.scale:.6g}"
        entry.rule = f"{self.scheme_name}: {override.label}"
        _keep_padding_row(slot, entry)
        entry.measure(slot.tensor)


# -- what the plans share ------------------------------------------------------------------------------------------
def generator_for(seed: Seed, *keys: str) -> torch.Generator | None:
    """The generator of a draw shared by several slots: ``None`` (torch's default) for ``seed=None``, the generator
    itself for a generator, a fresh one seeded with ``derive_seed(seed, *keys)`` for an int."""
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    return make_generator(derive_seed(seed, *keys))


def _structure(targets: Targets) -> Structure:
    """:func:`initlab.nets.structure`, given the data as its example input when there is any."""
    if targets.data is None:
        return structure(targets.model)
    return structure(targets.model, targets.data)


def residual_structure(targets: Targets, scheme: str, *, needs: str = "residual blocks") -> Structure:
    """The model's residual structure with at least one residual block, or a :class:`StructureError` that says how
    to get one."""
    model = targets.model
    try:
        found = _structure(targets)
    except StructureError as exc:
        raise StructureError(f"{scheme} needs {needs}; {BUILD_RESIDUAL}. ({exc})") from None
    if not found.blocks:
        raise StructureError(f"{scheme} needs {needs}; {type(model).__name__} declares none: {BUILD_RESIDUAL}.")
    return found


def optional_structure(targets: Targets) -> Structure | None:
    """The model's structure, or ``None`` for a model that declares none (a plain MLP or CNN)."""
    try:
        return _structure(targets)
    except StructureError:
        return None


def submodules(model: nn.Module, name: str, types: tuple[type[nn.Module], ...]) -> list[str]:
    """Qualified names of the modules of ``types`` in ``model.get_submodule(name)`` (itself included), in order."""
    return [
        f"{name}.{sub}" if name and sub else name or sub
        for sub, m in model.get_submodule(name).named_modules()
        if isinstance(m, types)
    ]


def attention_parts(model: nn.Module, name: str) -> dict[str, str]:
    """The slot keys of the query, key, value and output weights of the attention module ``name``: initlab's
    :class:`~initlab.nets.SelfAttention` (four ``nn.Linear``) or torch's ``nn.MultiheadAttention`` (packed
    ``in_proj_weight`` blocks, or separate ``q/k/v_proj_weight`` when ``kdim``/``vdim`` differ)."""
    module = model.get_submodule(name)
    if isinstance(module, SelfAttention):
        return {part: f"{name}.{part}.weight" for part in ("q", "k", "v", "out")}
    if isinstance(module, nn.MultiheadAttention):
        if module.in_proj_weight is not None:
            parts = {b: f"{name}.in_proj_weight[{b}]" for b in ("q", "k", "v")}
        else:
            parts = {b: f"{name}.{b}_proj_weight" for b in ("q", "k", "v")}
        return {**parts, "out": f"{name}.out_proj.weight"}
    raise TypeError(f"{name} ({type(module).__name__}) is not an attention module initlab knows.")


def branch_layers(model: nn.Module, branch: str) -> tuple[list[str], int]:
    """The weight layers of a residual branch (Linear, Conv, ...; an attention module's projections included) and
    the branch's depth m: the number of weight layers a signal crosses in series, where an attention module counts
    two (value, then output projection; the query and key only weight the mixing)."""
    layers = submodules(model, branch, FEEDFORWARD_TYPES)
    attention = submodules(model, branch, ATTENTION_TYPES)
    inside = [n for n in layers if any(n.startswith(f"{a}.") for a in attention)]
    return layers, len(layers) - len(inside) + 2 * len(attention)


def weights_of(targets: Targets, modules: Iterable[str]) -> list[Slot]:
    """The weight slots (role ``"weight"``) of ``modules``."""
    return [s for name in modules for s in targets.of(name, "weight")]


def fmt(value: float) -> str:
    """A number for a rule label: four significant digits."""
    return f"{value:.4g}" if math.isfinite(value) else str(value)
