"""Running a model for inspection without changing it: the input forms, eval mode that is put back, and a forked
random state, shared by the "auto" scheme and LSUV."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

#: What ``data`` may be: one input tensor, a tuple or list of positional inputs, or a dict of keyword inputs.
ModelInput = torch.Tensor | tuple[Any, ...] | list[Any] | Mapping[str, Any]


def run_model(model: nn.Module, data: ModelInput) -> Any:
    """``model(data)``, ``model(*data)`` or ``model(**data)`` for a tensor, a tuple/list or a dict."""
    if isinstance(data, torch.Tensor):
        return model(data)
    if isinstance(data, (tuple, list)):
        return model(*data)
    if isinstance(data, Mapping):
        return model(**data)
    raise TypeError(
        "data must be a tensor, a tuple or list of positional inputs, or a dict of keyword inputs (the model's "
        f"inputs only, not the targets), got {type(data).__name__}."
    )


def check_data(data: object) -> None:
    """Raise ``TypeError`` now, rather than in the middle of a forward pass, if ``data`` has an unusable form."""
    if not isinstance(data, (torch.Tensor, tuple, list, Mapping)):
        run_model(nn.Identity(), data)  # type: ignore[arg-type]  # raises the TypeError with the message


@contextlib.contextmanager
def inspection(model: nn.Module) -> Iterator[None]:
    """Eval mode (dropout off; normalization layers use their running statistics and leave them unchanged),
    ``no_grad`` and a forked random state, all put back on exit, module by module (a model may mix train and eval
    submodules)."""
    modes = [(m, m.training) for m in model.modules()]
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    try:
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            model.eval()
            yield
    finally:
        for module, training in modes:
            module.training = training
