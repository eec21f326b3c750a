"""The registry: ``get`` turns a name, a config dict, a class, an object or a callable into an Initializer, and
``catalog`` lists every member with its formula."""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from initlab.catalog._base import Distribution, Initializer
from initlab.catalog.constant import Constant, Ones, Zeros
from initlab.catalog.random import RandomNormal, RandomUniform, TruncatedNormal
from initlab.catalog.structured import Dirac, Identity, Orthogonal, Sparse
from initlab.catalog.variance_scaling import (
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    KaimingNormal,
    KaimingUniform,
    LeCunNormal,
    LeCunUniform,
    VarianceScaling,
    XavierNormal,
    XavierUniform,
)
from initlab.checks import did_you_mean
from initlab.fans import Layout


class Function(Initializer):
    """Wraps a function ``fn(tensor)`` that fills a tensor in place, such as ``torch.nn.init.xavier_uniform_``.

    A ``seed`` is honoured by passing a generator when ``fn`` takes a ``generator`` argument (the
    ``torch.nn.init`` functions do), else by seeding torch's default generator inside ``torch.random.fork_rng``, which
    leaves the global state as it was. Its config is the function's import path, so only importable module-level
    functions round-trip through ``get_config``/``from_config``.
    """

    formula = "W = fn(W)"
    source = "a user function"
    _params = ("function",)

    def __init__(self, function: Callable[..., Any] | str) -> None:
        if isinstance(function, str):
            function = _import_path(function)
        if not callable(function):
            raise TypeError(f"function must be callable or an import path 'module:name', got {function!r}.")
        self.fn = function
        self._takes_generator = "generator" in _parameters(function)

    @property
    def function(self) -> str:
        module = getattr(self.fn, "__module__", None)
        qualname = getattr(self.fn, "__qualname__", None)
        if not module or not qualname or "<" in qualname:
            return repr(self.fn)
        return f"{module}:{qualname}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Function) and other.fn is self.fn

    def __hash__(self) -> int:
        return hash(self.fn)

    def fill_(self, tensor: Any, *, seed: Any = None, layout: Any = "torch") -> Any:
        if self._takes_generator or seed is None or isinstance(seed, torch.Generator):
            return super().fill_(tensor, seed=seed, layout=layout)
        # An int seed for a function without a generator argument: seed the default generator in a forked state.
        devices = [tensor.device] if isinstance(tensor, torch.Tensor) and tensor.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            return super().fill_(tensor, seed=None, layout=layout)

    def _fill(self, out: torch.Tensor, layout: Layout, generator: torch.Generator | None) -> None:
        if generator is not None and not self._takes_generator:
            raise TypeError(f"{self.function} takes no generator argument; pass an int seed instead.")
        result = self.fn(out, generator=generator) if self._takes_generator else self.fn(out)
        if isinstance(result, torch.Tensor) and result.data_ptr() != out.data_ptr():
            out.copy_(result)

    def _distribution(self, shape: tuple[int, ...], layout: Layout) -> Distribution:
        raise NotImplementedError(f"the distribution of a user function ({self.function}) is not known.")


def _parameters(fn: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()


def _import_path(path: str) -> Callable[..., Any]:
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError):
        raise ValueError(f"cannot import the function {path!r}; give it as 'package.module:function'.") from None
    return obj


MEMBERS: tuple[type[Initializer], ...] = (
    Zeros,
    Ones,
    Constant,
    RandomNormal,
    RandomUniform,
    TruncatedNormal,
    VarianceScaling,
    GlorotNormal,
    GlorotUniform,
    HeNormal,
    HeUniform,
    LeCunNormal,
    LeCunUniform,
    Identity,
    Orthogonal,
    KaimingNormal,
    KaimingUniform,
    XavierNormal,
    XavierUniform,
    Dirac,
    Sparse,
)
#: The members that come from Keras' list; the rest follow torch.nn.init.
KERAS_MEMBERS: frozenset[type[Initializer]] = frozenset(MEMBERS[:15])


def snake_case(name: str) -> str:
    """``GlorotUniform`` -> ``glorot_uniform``; ``LeCunNormal`` -> ``lecun_normal``."""
    name = name.replace("LeCun", "Lecun")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name).lower()


def _build_index() -> tuple[dict[str, type[Initializer]], list[str]]:
    index: dict[str, type[Initializer]] = {}
    names: list[str] = []
    for cls in (*MEMBERS, Function):
        for name in (cls.__name__, snake_case(cls.__name__), *cls.aliases):
            index[_key(name)] = cls
        names.extend((snake_case(cls.__name__), *cls.aliases))  # suggestions: one spelling per name
    return index, names


_INDEX, _ALL_NAMES = _build_index()


def get(
    identifier: Initializer | str | Mapping[str, Any] | type[Initializer] | Callable[..., Any],
) -> Initializer:
    """Resolve ``identifier`` to an :class:`Initializer`.

    Accepts an Initializer (returned as is), a class name (``"GlorotUniform"``), a snake_case name
    (``"glorot_uniform"``), an alias (``"xavier_uniform"``, ``"kaiming_normal"``, ``"eye"``, ``"normal"``,
    ``"uniform"``, ``"zero"``, ``"one"``, ...), a Keras-style config dict ``{"class_name": ..., "config": {...}}``,
    an Initializer subclass, or a callable that fills a tensor in place (wrapped in :class:`Function`).
    Names ignore case, underscores and hyphens. An unknown name raises ``ValueError`` naming the closest matches.
    """
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        return _lookup(identifier)()
    if isinstance(identifier, Mapping):
        if "class_name" not in identifier:
            raise ValueError(
                "an initializer config dict needs 'class_name' (and optionally 'config'), "
                f"got keys {sorted(identifier)}."
            )
        config = identifier.get("config") or {}
        if not isinstance(config, Mapping):
            raise TypeError(f"'config' must be a dict, got {type(config).__name__}.")
        return _lookup(str(identifier["class_name"])).from_config(config)
    if inspect.isclass(identifier) and issubclass(identifier, Initializer):
        return identifier()
    if callable(identifier):
        return Function(identifier)
    raise TypeError(
        f"cannot interpret {identifier!r} as an initializer: give a name, a config dict, an Initializer or a callable."
    )


def _lookup(name: str) -> type[Initializer]:
    cls = _INDEX.get(_key(name))
    if cls is None:
        raise ValueError(
            f"unknown initializer {name!r}.{did_you_mean(name, _ALL_NAMES)} Run `initlab list` to see them all."
        )
    return cls


def serialize(initializer: Initializer) -> dict[str, Any]:
    """``{"class_name": ..., "config": {...}}``, the form :func:`get` reads back (Keras' format)."""
    return {"class_name": type(initializer).__name__, "config": initializer.get_config()}


@dataclass(frozen=True)
class CatalogEntry:
    """One catalog member: its class, names, formula and source."""

    name: str
    snake_name: str
    aliases: tuple[str, ...]
    formula: str
    source: str
    family: str  # "keras" or "torch"
    cls: type[Initializer]


def catalog() -> list[CatalogEntry]:
    """Every member of the catalog, Keras' list first, then the torch-style ones."""
    return [
        CatalogEntry(
            name=cls.__name__,
            snake_name=snake_case(cls.__name__),
            aliases=cls.aliases,
            formula=cls.formula,
            source=cls.source,
            family="keras" if cls in KERAS_MEMBERS else "torch",
            cls=cls,
        )
        for cls in MEMBERS
    ]
