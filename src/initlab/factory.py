"""Models you bring: an import path ``package.module:factory`` wherever a model spec is accepted.

``initlab compare --model mypkg.nets:build`` imports ``mypkg.nets`` (from the current folder first, as ``python -m``
does, then from the installed packages) and calls ``build``: a function ``f(input_shape, num_classes) ->
nn.Module``, an ``nn.Module`` class whose constructor takes ``(input_shape, num_classes)``, or either taking no
arguments. The import path itself is what a study records as its model, so a resumed study (and a worker process)
imports the same factory again. Width and depth sweeps and muP need a model spec (``mlp:64,64``), whose width
initlab can change.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from torch import nn

from initlab.checks import did_you_mean

#: ``package.module:attribute``: dotted identifiers on both sides of one colon.
_IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


class FactoryError(ValueError):
    """An import path that cannot be imported or does not give a model factory; the message says what to do."""


def is_import_path(text: str, *, kinds: tuple[str, ...] = ()) -> bool:
    """Whether ``text`` reads as ``package.module:factory`` rather than a model spec whose kind is one of ``kinds``
    (``mlp:64`` is a spec: ``64`` is not a name)."""
    text = text.strip()
    return bool(_IMPORT_PATH.match(text)) and text.split(":", 1)[0].lower() not in kinds


def load_factory(path: str) -> Callable[[tuple[int, ...], int | None], nn.Module]:
    """The factory at ``path``, adapted to ``f(input_shape, num_classes)``; FactoryError names what is missing."""
    module_name, _, attribute = path.strip().partition(":")
    here = os.getcwd()
    if here not in sys.path:  # like `python -m`: a package in the current folder imports
        sys.path.insert(0, here)
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise FactoryError(f"--model {path!r}: cannot import {module_name!r} ({exc}). Run initlab from the folder that "
                           "holds the package, or install it.") from None  # fmt: skip
    for part in attribute.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            raise FactoryError(f"--model {path!r}: {getattr(obj, '__name__', module_name)!r} has no attribute "
                               f"{part!r}.{did_you_mean(part, names)}")  # fmt: skip
        obj = getattr(obj, part)
    if not callable(obj):
        raise FactoryError(f"--model {path!r} is a {type(obj).__name__}, not a function or class that builds a model.")
    return _adapted(path, obj)


def _adapted(path: str, obj: Callable[..., Any]) -> Callable[[tuple[int, ...], int | None], nn.Module]:
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):  # a builtin without a signature: assume the documented one
        signature = None
    takes_shapes = signature is None or _accepts(signature, 2)
    if not takes_shapes and not _accepts(signature, 0):  # type: ignore[arg-type]
        raise FactoryError(f"--model {path!r} must take (input_shape, num_classes) or nothing; its signature is "
                           f"{signature}.")  # fmt: skip

    def factory(input_shape: tuple[int, ...], num_classes: int | None) -> nn.Module:
        model = obj(input_shape, num_classes) if takes_shapes else obj()
        if not isinstance(model, nn.Module):
            raise FactoryError(f"--model {path!r} returned {type(model).__name__}, not a torch.nn.Module.")
        return model

    factory.__qualname__ = path
    return factory


def _accepts(signature: inspect.Signature, count: int) -> bool:
    """Whether a call with ``count`` positional arguments binds."""
    try:
        signature.bind(*range(count))
    except TypeError:
        return False
    return True
