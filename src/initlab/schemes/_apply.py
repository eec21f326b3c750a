"""``initialize``: apply a scheme to every parameter of a model and report what was done.

Seeding. ``seed=None`` draws from torch's default generator (so ``torch.manual_seed`` is honoured); an ``int`` gives
every parameter (every gate or projection block of a packed one) its own CPU generator seeded with
``derive_seed(seed, key)``, where ``key`` is the parameter's qualified name with its block (``"rnn.weight_hh_l0[f]"``).
A parameter's values therefore depend only on the seed, its name and its rule: they are bitwise identical on every
run on CPU, and adding a layer or a rule elsewhere leaves them unchanged. A ``torch.Generator`` is used for every
parameter in module order. The "torch" scheme, which calls each module's own ``reset_parameters``, cannot take a
generator: with an ``int`` seed it seeds torch's default generator inside ``torch.random.fork_rng``, so the global
random state is the same afterwards as before.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from initlab.checks import did_you_mean
from initlab.seeding import Seed, derive_seed, make_generator
from initlab.catalog import Initializer, serialize
from initlab.schemes._auto import Activation, choose_initializer, discover_activations
from initlab.schemes._forward import ModelInput, check_data
from initlab.schemes._report import InitEntry, InitReport
from initlab.schemes._roles import EMBEDDING_TYPES, Slot, slots
from initlab.schemes._rules import AUTO, Rule, Scheme, SchemeLike, as_scheme, initializer_gain

logger = logging.getLogger("initlab.schemes")


class UncoveredParameterWarning(UserWarning):
    """A parameter that no rule of the scheme covers; it keeps its values and is listed in ``report.uncovered``."""


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../initlab


def warn_user(message: str, category: type[Warning]) -> None:
    """Log ``message`` and issue a warning attributed to the first caller outside initlab."""
    logger.warning(message)
    level, frame = 1, sys._getframe(0)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR + os.sep):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


def initialize(
    model: nn.Module,
    scheme: SchemeLike | Any,
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
      MultiheadAttention ends as constructed): puts a model back to PyTorch's defaults;
    * ``"auto"``: He, LeCun, Glorot or a numeric gain, chosen by the activation that follows each layer
      (:meth:`Scheme.auto`, :func:`initlab.schemes.choose_initializer`); ``data``, if given, is the input of the one
      forward pass that finds the activations;
    * ``"lsuv"`` or an :class:`initlab.lsuv.LSUV` config: layer-sequential unit variance; needs ``data``;
    * a :class:`Scheme` of ordered rules, or its config dict.

    ``data`` is one input tensor, a tuple/list of positional inputs or a dict of keyword inputs (inputs only, no
    targets). See the module docstring for ``seed``. A parameter shared by several modules (tied weights) is
    initialized and reported once; a parameter no rule covers keeps its values, is listed in ``report.uncovered``
    and issues an :class:`UncoveredParameterWarning`.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    make_generator(seed)  # validates the seed's type and range
    if data is not None:
        check_data(data)
    resolved = resolve(scheme)
    if resolved == "torch":
        return apply_torch_defaults(model, seed=seed)
    if isinstance(resolved, Scheme):
        return apply_scheme(model, resolved, seed=seed, data=data)
    return resolved.apply(model, data=data, seed=seed)


def resolve(scheme: SchemeLike | Any) -> Any:
    """A :class:`Scheme`, the string ``"torch"``, or an :class:`initlab.lsuv.LSUV` config."""
    from initlab.lsuv import LSUV  # lsuv builds on this module

    if isinstance(scheme, LSUV):
        return scheme
    if isinstance(scheme, str) and scheme.strip().lower() in ("torch", "lsuv"):
        return "torch" if scheme.strip().lower() == "torch" else LSUV()
    if isinstance(scheme, Mapping) and scheme.get("class_name") == "LSUV":
        return LSUV.from_dict(scheme)
    return as_scheme(scheme)


def serialize_scheme(scheme: Scheme | str) -> Any:
    """The config form of a scheme, which :func:`initialize` accepts back."""
    if isinstance(scheme, Scheme):
        return {"class_name": "Scheme", "config": scheme.to_dict()}
    return scheme


def _slot_seed(seed: Seed, slot: Slot) -> int | torch.Generator | None:
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    return derive_seed(seed, slot.key)


def _entry(slot: Slot) -> InitEntry:
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
    model: nn.Module, scheme: Scheme, *, seed: Seed = None, data: ModelInput | None = None
) -> tuple[InitReport, list[tuple[InitEntry, Slot]]]:
    """Apply a rule-based scheme; return the report and each entry with its slot (for LSUV to refine)."""
    activations = discover_activations(model, data) if scheme.uses_auto else {}
    rules = scheme.effective_rules()
    matched_rules: set[int] = set()
    report = InitReport(scheme=serialize_scheme(scheme), seed=seed if isinstance(seed, int) else None)
    pairs: list[tuple[InitEntry, Slot]] = []
    for slot in slots(model):
        entry = _entry(slot)
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
    _warn_uncovered(report)
    for entry, slot in pairs:
        entry.measure(slot.tensor)
    return report, pairs


def apply_scheme(model: nn.Module, scheme: Scheme, *, seed: Seed = None, data: ModelInput | None = None) -> InitReport:
    """Apply a rule-based :class:`Scheme` to ``model`` (see :func:`initialize`)."""
    return apply_rules(model, scheme, seed=seed, data=data)[0]


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


def _warn_uncovered(report: InitReport) -> None:
    if not report.uncovered:
        return
    message = (
        f"{len(report.uncovered)} parameter(s) not covered by any rule of the scheme, left as they were: "
        f"{', '.join(report.uncovered)}. Add a Rule for their module type (e.g. Rule('glorot_uniform', "
        "module=MyModule)) to initialize them."
    )
    warn_user(message, UncoveredParameterWarning)


def _warn_unused(model: nn.Module, scheme: Scheme, rules: list[Rule], matched: set[int]) -> None:
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


# -- "torch": each module's own reset_parameters -----------------------------------------------------------------
def _post_order(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    seen: set[int] = set()

    def visit(prefix: str, module: nn.Module) -> Iterator[tuple[str, nn.Module]]:
        if id(module) in seen:
            return
        seen.add(id(module))
        for name, child in module.named_children():
            yield from visit(f"{prefix}.{name}" if prefix else name, child)
        yield prefix, module

    yield from visit("", model)


def apply_torch_defaults(model: nn.Module, *, seed: Seed = None) -> InitReport:
    """PyTorch's own defaults: every module that owns parameters runs its ``reset_parameters()``.

    Modules run children before their parent, so that a MultiheadAttention (whose ``_reset_parameters`` also zeros
    its ``out_proj.bias``) and an ``nn.Transformer`` (whose ``_reset_parameters`` re-draws every matrix with
    Xavier uniform) end as their constructors leave them. With an ``int`` seed this equals
    ``torch.manual_seed(seed)`` followed by the same calls, and leaves the global random state as it was.
    """
    if isinstance(seed, torch.Generator):
        raise TypeError(
            "the 'torch' scheme calls each module's reset_parameters, which cannot take a generator; pass an int seed "
            "or None."
        )
    how: dict[int, str] = {}
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    context = torch.random.fork_rng(devices=devices) if seed is not None else contextlib.nullcontext()
    with context:
        if seed is not None:
            torch.manual_seed(seed)
        for _, module in _post_order(model):
            owns = any(True for _ in module.parameters(recurse=False))
            if owns and callable(getattr(module, "reset_parameters", None)):
                module.reset_parameters()
                how[id(module)] = f"{type(module).__name__}.reset_parameters()"
            elif owns and isinstance(module, nn.MultiheadAttention):
                module._reset_parameters()
                how[id(module)] = "MultiheadAttention._reset_parameters()"
            if isinstance(module, nn.Transformer):
                module._reset_parameters()  # Xavier uniform on every matrix, as its constructor does last
                for m in module.modules():
                    if id(m) in how:
                        how[id(m)] += ", then Transformer._reset_parameters()"
    report = InitReport(scheme="torch", seed=seed)
    for slot in slots(model):
        entry = _entry(slot)
        report.entries.append(entry)
        rule = how.get(id(slot.module))
        if rule is None:
            report.uncovered.append(slot.key)
            entry.note = f"{slot.module_type} has no reset_parameters(): left as it was"
        else:
            entry.rule = rule
        entry.measure(slot.tensor)
    _warn_uncovered(report)
    return report
