"""Rules: ``(predicate, initializer)`` pairs that say how to initialize the parameters of a whole model.

A :class:`Rule` matches a :class:`~initlab.schemes._roles.Slot` by module type, parameter role, block, the
parameter's attribute name on its module, and rank. A :class:`~initlab.schemes.Scheme` is an ordered list of them
(the first match wins); :func:`standard_rules` are the rules every preset shares.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from torch import nn

from initlab.catalog import Constant, Initializer, Ones, Orthogonal, Zeros, get, serialize
from initlab.checks import check_choice, check_int, check_keys, check_mapping
from initlab.schemes._roles import BLOCKS, ROLES, Role, Slot

#: The initializer of a rule whose weights are chosen from the activation that follows each layer (see "auto").
AUTO: Literal["auto"] = "auto"
InitSpec = Initializer | Literal["auto"]
ModuleSpec = str | type[nn.Module]

_RULE_KEYS: tuple[str, ...] = ("init", "module", "role", "block", "param", "ndim", "label")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_QUALIFIED = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.<>]*$")


# -- module specs ------------------------------------------------------------------------------------------------
def module_spec(module: ModuleSpec) -> str:
    """The string form of a module-type predicate.

    A class exported by ``torch.nn`` becomes its name (``"Linear"``); any other class becomes
    ``"package.module:QualName"``. A string is checked and returned: a plain class name (``"Conv2d"``, ``"RNNBase"``,
    ``"MyBlock"``) or a qualified ``"package.module:QualName"``.
    """
    if isinstance(module, type):
        if not issubclass(module, nn.Module):
            raise TypeError(f"module={module.__name__} is not a torch.nn.Module subclass.")
        if getattr(nn, module.__name__, None) is module:
            return module.__name__
        return f"{module.__module__}:{module.__qualname__}"
    if not isinstance(module, str):
        raise TypeError(f"module must be a torch.nn.Module subclass or a class name, got {module!r}.")
    if _NAME.match(module) or _QUALIFIED.match(module):
        return module
    raise ValueError(
        f"module={module!r} is not a class name; give a name such as 'Linear' or 'MyBlock', a qualified "
        "'package.module:ClassName', or the class itself."
    )


def spec_matches(spec: str, cls: type) -> bool:
    """Whether ``cls`` or one of its base classes is the class ``spec`` names (so 'RNNBase' matches LSTM)."""
    if ":" in spec:
        return any(f"{c.__module__}:{c.__qualname__}" == spec for c in cls.__mro__)
    return any(c.__name__ == spec for c in cls.__mro__)


def _tuple(value: object) -> tuple[Any, ...]:
    if isinstance(value, (str, type)) or not isinstance(value, Iterable):
        return (value,)
    return tuple(value)


# -- rules -------------------------------------------------------------------------------------------------------
class Rule:
    """A predicate on (module type, parameter role, block, parameter name, rank) paired with an initializer.

    Every predicate left as ``None`` matches anything; a tuple matches any of its values.

    * ``module``: a module class or class name; matches the module or any subclass (``"RNNBase"`` matches LSTM,
      ``"Linear"`` matches ``LazyLinear``). Custom classes defined anywhere can be given as the class itself.
    * ``role``: one of ``ROLES`` (see :mod:`initlab.schemes._roles`).
    * ``block``: a gate or projection block: ``"i" "f" "g" "o"`` (LSTM), ``"r" "z" "n"`` (GRU), ``"q" "k" "v"``
      (attention).
    * ``param``: the parameter's exact attribute name on its module (``"alpha"``), for custom modules whose
      parameters have no standard role; it never matches a fragment of a qualified name.
    * ``ndim``: the rank of the slot's tensor.
    * ``init``: an initializer (object, name or config dict, see :func:`initlab.get`), or ``"auto"`` for the
      activation-aware choice of the "auto" scheme.
    """

    __slots__ = ("block", "init", "label", "module", "ndim", "param", "role")

    def __init__(
        self,
        init: InitSpec | str | Mapping[str, Any] | type[Initializer],
        *,
        module: ModuleSpec | Sequence[ModuleSpec] | None = None,
        role: Role | Sequence[Role] | None = None,
        block: str | Sequence[str] | None = None,
        param: str | None = None,
        ndim: int | Sequence[int] | None = None,
        label: str | None = None,
    ) -> None:
        self.init: InitSpec = AUTO if isinstance(init, str) and init == AUTO else get(init)  # type: ignore[arg-type]
        self.module: tuple[str, ...] | None = None if module is None else tuple(map(module_spec, _tuple(module)))
        self.role: tuple[Role, ...] | None = (
            None if role is None else tuple(check_choice("role", r, ROLES) for r in _tuple(role))  # type: ignore[misc]
        )
        self.block: tuple[str, ...] | None = (
            None if block is None else tuple(check_choice("block", b, BLOCKS) for b in _tuple(block))
        )
        if param is not None and not (isinstance(param, str) and _NAME.match(param)):
            raise ValueError(f"param={param!r} must be a parameter's attribute name on its module, such as 'alpha'.")
        self.param = param
        self.ndim: tuple[int, ...] | None = (
            None if ndim is None else tuple(check_int("ndim", n, minimum=0) for n in _tuple(ndim))
        )
        if label is not None and not isinstance(label, str):
            raise TypeError(f"label must be a string, got {label!r}.")
        self.label = label
        for field_name in ("module", "role", "block", "ndim"):
            if getattr(self, field_name) == ():
                raise ValueError(f"{field_name}=() matches nothing; leave it as None to match anything.")

    def matches(self, slot: Slot) -> bool:
        """Whether this rule applies to ``slot``."""
        return (
            (self.role is None or slot.role in self.role)
            and (self.block is None or slot.block in self.block)
            and (self.param is None or slot.param_name == self.param)
            and (self.ndim is None or len(slot.shape) in self.ndim)
            and (self.module is None or any(spec_matches(s, type(slot.module)) for s in self.module))
        )

    def describe(self) -> str:
        """The label, or the predicates in words: ``"Linear|Conv2d weight → HeNormal()"``."""
        if self.label:
            return self.label
        parts = [
            "|".join(self.module) if self.module else "",
            "|".join(self.role) if self.role else "",
            f"[{'|'.join(self.block)}]" if self.block else "",
            f".{self.param}" if self.param else "",
            f"ndim={'|'.join(map(str, self.ndim))}" if self.ndim else "",
        ]
        what = " ".join(p for p in parts if p) or "any parameter"
        return f"{what} → {self.init!r}" if self.init != AUTO else f"{what} → auto"

    def to_dict(self) -> dict[str, Any]:
        """A plain dict (one value instead of a one-element list) that :meth:`from_dict` reads back."""

        def plain(values: tuple[Any, ...] | None) -> Any:
            if values is None:
                return None
            return values[0] if len(values) == 1 else list(values)

        out: dict[str, Any] = {
            "module": plain(self.module),
            "role": plain(self.role),
            "block": plain(self.block),
            "param": self.param,
            "ndim": plain(self.ndim),
            "init": AUTO if self.init == AUTO else serialize(self.init),  # type: ignore[arg-type]
            "label": self.label,
        }
        return {k: v for k, v in out.items() if v is not None}

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> Rule:
        check_mapping("a rule config", config)
        check_keys("rule config", config, _RULE_KEYS)
        if "init" not in config:
            raise ValueError(f"rule config {dict(config)!r} has no 'init'; every rule needs an initializer.")
        kwargs = dict(config)
        return cls(kwargs.pop("init"), **kwargs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rule) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self.to_dict()))

    def __repr__(self) -> str:
        args = [repr(self.init) if self.init != AUTO else "'auto'"]
        args += [f"{k}={v!r}" for k, v in self.to_dict().items() if k != "init"]
        return f"Rule({', '.join(args)})"


def standard_rules(
    weight: InitSpec,
    *,
    recurrent: InitSpec | None = None,
    embedding: InitSpec | None = None,
    prelu: Initializer | None = None,
) -> list[Rule]:
    """The rules every preset shares: ``weight`` for weights (and embeddings unless ``embedding`` is given),
    ``recurrent`` (default Orthogonal) for hidden-hidden matrices, zero biases, norm scale 1 and shift 0, and
    PReLU's slope (default 0.25, He et al. 2015; torch's default)."""
    return [
        Rule(weight, role="weight", label=f"weights → {_short(weight)}"),
        Rule(
            Orthogonal() if recurrent is None else recurrent,
            role="recurrent_weight",
            label=f"recurrent weights → {_short(Orthogonal() if recurrent is None else recurrent)}",
        ),
        Rule(
            weight if embedding is None else embedding,
            role="embedding",
            label=f"embeddings → {_short(weight if embedding is None else embedding)}",
        ),
        Rule(Zeros(), role=("bias", "recurrent_bias"), label="biases → Zeros()"),
        Rule(Ones(), role="norm_scale", label="norm scale → Ones()"),
        Rule(Zeros(), role="norm_shift", label="norm shift → Zeros()"),
        Rule(
            Constant(0.25) if prelu is None else prelu,
            module="PReLU",
            param="weight",
            label=f"PReLU slope → {_short(Constant(0.25) if prelu is None else prelu)}",
        ),
    ]


def _short(init: InitSpec) -> str:
    return "auto" if init == AUTO else repr(init)


def initializer_gain(init: Initializer) -> float | None:
    """The gain an initializer applies: its ``gain`` argument, √scale for VarianceScaling, else ``None``."""
    value = getattr(init, "gain", None)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    scale = getattr(init, "scale", None)
    if isinstance(scale, (int, float)) and not isinstance(scale, bool):
        return math.sqrt(scale)
    return None
