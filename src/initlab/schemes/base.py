"""The one interface of a whole-model initialization, and what every implementation shares.

An :class:`Initialization` initializes every parameter of a model in place and reports what it did. initlab's are
the rule-based :class:`~initlab.schemes.Scheme` (every initializer, ``"keras"`` and ``"auto"`` are schemes),
:class:`~initlab.schemes.TorchDefaults` (``"torch"``: each module's own ``reset_parameters``) and
:class:`~initlab.schemes.LSUV` (``"lsuv"``); :func:`initlab.schemes.resolve` turns any name or config into one, and
any object with the same two members can be passed to :func:`initlab.initialize` too.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Mapping
from dataclasses import asdict, fields
from typing import Any, Protocol, TypeVar, runtime_checkable

from torch import nn

from initlab.checks import check_keys, check_mapping
from initlab.schemes._report import InitReport
from initlab.seeding import Seed, make_generator
from initlab.tracing import ModelInput, check_data

logger = logging.getLogger("initlab.schemes")


@runtime_checkable
class Initialization(Protocol):
    """A whole-model initialization: ``apply(model, seed=..., data=...)`` fills every parameter it covers in place and
    returns an :class:`~initlab.schemes.InitReport`.

    ``needs_data`` is ``True`` when ``apply`` cannot run without ``data`` (a batch of the model's inputs), as LSUV,
    which measures each layer's output on it. A scheme that only *uses* data when given ("auto" finds the activations
    with one forward pass, on a built input otherwise) does not need it.

    ``seed``: ``None`` draws from torch's default generator, an ``int`` gives the same values on every run, a
    ``torch.Generator`` is used as it is (see :mod:`initlab.schemes._apply` for how a seed reaches each parameter).
    """

    @property
    def needs_data(self) -> bool:
        """Whether :meth:`apply` needs ``data``."""
        ...

    def apply(self, model: nn.Module, *, seed: Seed = None, data: ModelInput | None = None) -> InitReport:
        """Initialize ``model`` in place and report what was done."""
        ...


def check_arguments(model: object, seed: Seed, data: object) -> None:
    """Raise ``TypeError`` for a model that is not a module, a seed of the wrong type or range, or data of an
    unusable form, before any parameter changes."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    make_generator(seed)  # validates the seed's type and range
    if data is not None:
        check_data(data)


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../initlab


def warn_user(message: str, category: type[Warning]) -> None:
    """Log ``message`` and issue a warning attributed to the first caller outside initlab."""
    logger.warning(message)
    level, frame = 1, sys._getframe(0)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR + os.sep):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


_P = TypeVar("_P", bound="ProcedureConfig")


class ProcedureConfig:
    """The config form of a procedure scheme (LSUV, Critical): a frozen dataclass whose fields are its settings,
    serialized as ``{"class_name": <class>, "config": {<fields>}}``, the form :func:`initlab.initialize` accepts."""

    #: How messages name a config of this class, e.g. "an LSUV config".
    config_name: str = "a config"

    def to_dict(self) -> dict[str, Any]:
        """``{"class_name": ..., "config": {...}}``, which :func:`initlab.initialize` accepts as a scheme."""
        return {"class_name": type(self).__name__, "config": asdict(self)}  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[_P], config: Mapping[str, Any]) -> _P:
        """Read :meth:`to_dict`'s form, or the bare settings dict; unknown keys name the closest allowed one."""
        check_mapping(cls.config_name, config)
        if "class_name" in config:
            config = config.get("config") or {}
        allowed = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
        check_keys(cls.config_name.split(" ", 1)[1], config, allowed, listed_as="allowed")
        return cls(**config)
