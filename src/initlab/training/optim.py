"""torch's optimizers without the start-up cost of ``torch._dynamo``.

``torch.optim.Optimizer`` wraps ``add_param_group`` (called by every constructor), ``zero_grad``, ``state_dict`` and
``load_state_dict`` in ``torch._disable_dynamo``, and every ``step`` in a function that calls
``torch._dynamo.graph_break()``: each imports ``torch._dynamo`` on first use, which took 1.4 to 2.0 s of a
9 to 11 s ``initlab compare`` on our 2-core machine (``python -c "import torch, torch._dynamo"``: 4.3 s against 2.3 s
for ``import torch``). Those wrappers exist for ``torch.compile`` tracing an optimizer step; initlab runs its optimizers
eagerly. The classes here are torch's own (``Adam``, ``AdamW``, ``SGD``, ``RMSprop``: same state, same param groups,
same ``state_dict``, bit-identical steps, the same step hooks) whose methods call the undecorated ones: the update
runs under ``torch.no_grad()``, as torch's wrapper runs it for a non-differentiable optimizer.

Not for ``torch.compile``: compile a step with torch's classes instead.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["SGD", "Adam", "AdamW", "RMSprop", "is_eager"]


#: The methods without their decorators (each sets ``__wrapped__``; ``inspect.unwrap`` returns a bare one as it is).
_bare = inspect.unwrap
_ADD_PARAM_GROUP = _bare(torch.optim.Optimizer.add_param_group)
_ZERO_GRAD = _bare(torch.optim.Optimizer.zero_grad)
_STATE_DICT = _bare(torch.optim.Optimizer.state_dict)
_LOAD_STATE_DICT = _bare(torch.optim.Optimizer.load_state_dict)


class _Eager:
    """Mixin: the methods of the torch optimizer class that follows it in the MRO, undecorated."""

    _bare_step: Callable[..., Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        base = next(b for b in cls.__mro__ if b.__module__.startswith("torch.optim") and "step" in b.__dict__)
        cls._bare_step = staticmethod(_bare(base.__dict__["step"]))  # type: ignore[assignment]

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        _ADD_PARAM_GROUP(self, param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        _ZERO_GRAD(self, set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return _STATE_DICT(self)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        _LOAD_STATE_DICT(self, state_dict)

    def step(self, closure: Callable[[], float] | None = None) -> Any:  # type: ignore[override]
        if self.defaults["differentiable"]:  # type: ignore[attr-defined]
            raise ValueError("initlab's eager optimizers are not differentiable; use torch.optim's.")
        with torch.no_grad():
            return self._bare_step(self, closure)


class Adam(_Eager, torch.optim.Adam):
    """``torch.optim.Adam`` stepped eagerly (see the module docstring)."""


class AdamW(_Eager, torch.optim.AdamW):
    """``torch.optim.AdamW`` stepped eagerly (see the module docstring)."""


class SGD(_Eager, torch.optim.SGD):
    """``torch.optim.SGD`` stepped eagerly (see the module docstring)."""


class RMSprop(_Eager, torch.optim.RMSprop):
    """``torch.optim.RMSprop`` stepped eagerly (see the module docstring)."""


def is_eager(optimizer: torch.optim.Optimizer) -> bool:
    """Whether ``optimizer`` is one of this module's eager classes."""
    return isinstance(optimizer, _Eager)
