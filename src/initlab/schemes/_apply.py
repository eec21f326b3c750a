"""Applying a :class:`~initlab.schemes.Scheme`'s rules to every parameter of a model, and reporting what was done.

Seeding. ``seed=None`` draws from torch's default generator (so ``torch.manual_seed`` is honoured); an ``int`` gives
every parameter (every gate or projection block of a packed one) its own CPU generator seeded with
``derive_seed(seed, key)``, where ``key`` is the parameter's qualified name with its block (``"rnn.weight_hh_l0[f]"``).
A parameter's values therefore depend only on the seed, its name and its rule: they are bitwise identical on every
run on CPU, and adding a layer or a rule elsewhere leaves them unchanged. A ``torch.Generator`` is used for every
parameter in module order. (The "torch" scheme, :class:`~initlab.schemes.TorchDefaults`, seeds differently: see
there.)
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import torch
from torch import nn

from initlab.catalog import Initializer, serialize
from initlab.checks import did_you_mean
from initlab.schemes._auto import choose_initializer, discover_activations
from initlab.schemes._report import InitEntry, InitReport
from initlab.schemes._roles import Slot, slots
from initlab.schemes._rules import AUTO, Rule, initializer_gain
from initlab.schemes.base import warn_user
from initlab.seeding import Seed, derive_seed
from initlab.tracing import EMBEDDING_TYPES, Activation, ModelInput


class RuleSet(Protocol):
    """What the rule engine reads of a scheme (:class:`~initlab.schemes.Scheme` is one): declared here, below the
    Scheme class, so that the engine does not depend on it."""

    rules: tuple[Rule, ...]  #: the scheme's own rules (a rule of its base is not checked for typos)

    @property
    def uses_auto(self) -> bool: ...

    def effective_rules(self) -> list[Rule]: ...

    def to_config(self) -> dict[str, Any]: ...


logger = logging.getLogger("initlab.schemes")


class UncoveredParameterWarning(UserWarning):
    """A parameter that no rule of the scheme covers; it keeps its values and is listed in ``report.uncovered``."""


def _slot_seed(seed: Seed, slot: Slot) -> int | torch.Generator | None:
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    return derive_seed(seed, slot.key)


def blank_entry(slot: Slot) -> InitEntry:
    """The report entry of ``slot`` before anything is applied: names, role, shape and fans."""
    try:
        fans = slot.layout.fans(slot.shape)
        fan_in, fan_out = fans.fan_in, fans.fan_out
    except ValueError:  # a custom parameter whose shape does not fit the default layout
        fan_in = fan_out = None
    return InitEntry(
        name=slot.name,
        block=slot.block,
        module=slot.module_name,
        module_type=slot.module_type,
        role=slot.role,
        shape=slot.shape,
        rule=None,
        init=None,
        fan_in=fan_in,
        fan_out=fan_out,
    )


def apply_rules(
    model: nn.Module, scheme: RuleSet, *, seed: Seed = None, data: ModelInput | None = None
) -> tuple[InitReport, list[tuple[InitEntry, Slot]]]:
    """Apply a rule-based scheme; return the report and each entry with its slot (for LSUV to refine)."""
    activations = discover_activations(model, data) if scheme.uses_auto else {}
    rules = scheme.effective_rules()
    matched_rules: set[int] = set()
    report = InitReport(scheme=scheme.to_config(), seed=seed if isinstance(seed, int) else None)
    pairs: list[tuple[InitEntry, Slot]] = []
    for slot in slots(model):
        entry = blank_entry(slot)
        pairs.append((entry, slot))
        report.entries.append(entry)
        index, rule = next(((i, r) for i, r in enumerate(rules) if r.matches(slot)), (None, None))
        if rule is None or index is None:
            report.uncovered.append(slot.key)
            entry.note = "no rule covers it: left as it was"
            continue
        matched_rules.add(index)
        init, gain = _resolve_init(rule, slot, activations, entry)
        entry.rule = rule.describe()
        entry.init = serialize(init)
        entry.gain = gain
        try:
            init.fill_(slot.tensor, seed=_slot_seed(seed, slot), layout=slot.layout)
        except (ValueError, TypeError) as err:
            raise ValueError(
                f"rule {rule.describe()!r} cannot initialize {slot.key} ({slot.module_type}, role {slot.role}, "
                f"shape {slot.shape}): {err}"
            ) from err
        _keep_padding_row(slot, entry)
    _reset_running_stats(model)
    _warn_unused(model, scheme, rules, matched_rules)
    warn_uncovered(report)
    for entry, slot in pairs:
        entry.measure(slot.tensor)
    return report, pairs


def _resolve_init(
    rule: Rule, slot: Slot, activations: dict[int, Activation], entry: InitEntry
) -> tuple[Initializer, float | None]:
    if rule.init != AUTO:
        return rule.init, initializer_gain(rule.init)  # type: ignore[arg-type]
    activation = activations.get(id(slot.module))
    if activation is None:  # an "auto" rule on a module that is not a feed-forward layer
        activation = Activation("none", f"none ({slot.module_type} is not a feed-forward layer)", source="unknown")
    init, gain, choice = choose_initializer(activation)
    entry.activation = f"{activation.describe()} → {choice}"
    return init, gain


def _keep_padding_row(slot: Slot, entry: InitEntry) -> None:
    """Embedding rows at ``padding_idx`` stay zero (torch's constructors zero them too; they get no gradient)."""
    padding_idx = getattr(slot.module, "padding_idx", None)
    if slot.role == "embedding" and isinstance(slot.module, EMBEDDING_TYPES) and padding_idx is not None:
        with torch.no_grad():
            slot.parameter[padding_idx].zero_()
        entry.note = f"padding row {padding_idx} kept at zero"


def _reset_running_stats(model: nn.Module) -> None:
    """A re-initialized model starts with fresh normalization statistics (running mean 0, variance 1)."""
    for name, module in model.named_modules():
        reset = getattr(module, "reset_running_stats", None)
        if callable(reset) and getattr(module, "track_running_stats", False):
            reset()
            logger.debug("reset the running statistics of %s", name or type(module).__name__)


def warn_uncovered(report: InitReport) -> None:
    """Warn (:class:`UncoveredParameterWarning`) about the parameters no rule covered, if any."""
    if not report.uncovered:
        return
    message = (
        f"{len(report.uncovered)} parameter(s) not covered by any rule of the scheme, left as they were: "
        f"{', '.join(report.uncovered)}. Add a Rule for their module type (e.g. Rule('glorot_uniform', "
        "module=MyModule)) to initialize them."
    )
    warn_user(message, UncoveredParameterWarning)


def _warn_unused(model: nn.Module, scheme: RuleSet, rules: list[Rule], matched: set[int]) -> None:
    """Warn about a rule that matched nothing because its module names are neither torch.nn classes nor classes in
    the model: most likely a typo (``"Linaer"``)."""
    own = {id(r) for r in scheme.rules}
    class_names = {c.__name__ for m in model.modules() for c in type(m).__mro__}
    for i, rule in enumerate(rules):
        if i in matched or id(rule) not in own or rule.module is None:
            continue
        unknown = [s for s in rule.module if ":" not in s and s not in class_names and not hasattr(nn, s)]
        if len(unknown) == len(rule.module):
            known = sorted(class_names | {n for n in dir(nn) if n[:1].isupper()})
            hint = did_you_mean(unknown[0], known)
            message = (
                f"rule {rule.describe()!r} matched nothing: {unknown[0]!r} is no class in the model or torch.nn.{hint}"
            )
            warn_user(message, UserWarning)
