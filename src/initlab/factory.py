"""Models you bring: an import path ``package.module:factory`` wherever a model spec is accepted.

``initlab compare --model mypkg.nets:build`` imports ``mypkg.nets`` (from the current folder first, as ``python -m``
does, then from the installed packages) and calls ``build``: a function ``f(input_shape, num_classes) ->
nn.Module``, an ``nn.Module`` class whose constructor takes ``(input_shape, num_classes)``, or either taking no
arguments. The import path itself is what a study records as its model, so a resumed study (and a worker process)
imports the same factory again. Width and depth sweeps and muP need a model spec (``mlp:64,64``), whose width
initlab can change.
"""

from __future__ import annotations

import copy
import hashlib
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
    if is_object(text):
        return True
    return bool(_IMPORT_PATH.match(text)) and text.split(":", 1)[0].lower() not in kinds


#: The prefix of the name under which a Python object given as a model is registered in this process.
OBJECT_PREFIX = "object:"
_OBJECTS: dict[str, Callable[[tuple[int, ...], int | None], nn.Module]] = {}


def is_object(text: str) -> bool:
    """Whether ``text`` names a model given as a Python object (:func:`register`), not an import path."""
    return text.strip().startswith(OBJECT_PREFIX)


def register(model: nn.Module | Callable[..., Any]) -> str:
    """The name a study records for a model given from Python, importing nothing again where it can.

    - A function or ``nn.Module`` class defined at the top of an importable module gives its import path
      (``package.module:build``): a worker process, a resumed study and the command line import it again.
    - Anything else (defined in a notebook or a script run as ``__main__``, a closure, or a built ``nn.Module``
      instance) is registered in this process as ``object:NAME``, which trains here, in this process only. An
      instance is deep-copied for every run (``copy.deepcopy``) before its run's scheme initializes it; its name
      carries a hash of its parameters' names and shapes, so that a resume with another architecture is refused.
    """
    if isinstance(model, nn.Module):
        shapes = ";".join(f"{n}:{tuple(p.shape)}" for n, p in model.named_parameters())
        digest = hashlib.sha256(f"{type(model).__qualname__}|{shapes}".encode()).hexdigest()[:12]
        name = f"{OBJECT_PREFIX}{_identifier(type(model).__name__)}-{digest}"
        instance = model
        _OBJECTS[name] = lambda input_shape, num_classes: copy.deepcopy(instance)
        return name
    if not callable(model):
        raise TypeError(f"a model must be a spec, an import path, a factory or an nn.Module; got {model!r}.")
    module, qualname = getattr(model, "__module__", None), getattr(model, "__qualname__", "")
    if module and module != "__main__" and "<" not in qualname:
        path = f"{module}:{qualname}"
        try:
            if load_factory(path) is not None and _resolve(module, qualname) is model:
                return path
        except FactoryError:
            pass
    name = f"{OBJECT_PREFIX}{_identifier(qualname or type(model).__name__)}"
    _OBJECTS[name] = _adapted(name, model)
    return name


def _identifier(text: str) -> str:
    return re.sub(r"\W+", "_", text).strip("_") or "model"


def _resolve(module: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def load_factory(path: str) -> Callable[[tuple[int, ...], int | None], nn.Module]:
    """The factory at ``path``, adapted to ``f(input_shape, num_classes)``; FactoryError names what is missing."""
    if is_object(path):
        if path.strip() not in _OBJECTS:
            raise FactoryError(
                f"model {path!r} was given as a Python object in another process; pass the same object again "
                "(initlab.compare(model=...)), or give an import path (package.module:factory) that any process "
                "can import."
            )
        return _OBJECTS[path.strip()]
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
