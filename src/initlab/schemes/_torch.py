"""The "torch" scheme: every module's own ``reset_parameters``, which puts a model back to PyTorch's defaults.

It cannot take a ``torch.Generator`` (``reset_parameters`` draws from torch's default generator); with an ``int``
seed it seeds torch's default generator inside ``torch.random.fork_rng``, so the global random state is the same
afterwards as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from initlab.schemes._apply import blank_entry, warn_uncovered
from initlab.schemes._report import InitReport
from initlab.schemes._roles import slots
from initlab.schemes.base import check_arguments
from initlab.seeding import Seed
from initlab.tracing import ModelInput


class TorchDefaults:
    """The ``"torch"`` scheme as an :class:`~initlab.schemes.Initialization`: :func:`apply_torch_defaults`.

    ``data`` is checked and not used; the report names the scheme ``"torch"``.
    """

    @property
    def needs_data(self) -> bool:
        """``False``: ``reset_parameters`` looks at no data."""
        return False

    def apply(self, model: nn.Module, *, seed: Seed = None, data: ModelInput | None = None) -> InitReport:
        """Run every module's ``reset_parameters`` (see :func:`apply_torch_defaults`)."""
        check_arguments(model, seed, data)
        return apply_torch_defaults(model, seed=seed)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TorchDefaults)

    def __hash__(self) -> int:
        return hash(TorchDefaults)

    def __repr__(self) -> str:
        return "TorchDefaults()"


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
        entry = blank_entry(slot)
        report.entries.append(entry)
        rule = how.get(id(slot.module))
        if rule is None:
            report.uncovered.append(slot.key)
            entry.note = f"{slot.module_type} has no reset_parameters(): left as it was"
        else:
            entry.rule = rule
        entry.measure(slot.tensor)
    warn_uncovered(report)
    return report
