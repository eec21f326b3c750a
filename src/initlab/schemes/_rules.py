"""Rules and schemes: ordered ``(predicate, initializer)`` pairs for a whole model, as serializable configs.

A :class:`Rule` matches a :class:`~initlab.schemes._roles.Slot` by module type, parameter role, block, the
parameter's attribute name on its module, and rank; a :class:`Scheme` is an ordered list of rules where the first
match wins, optionally followed by the rules of a ``base`` scheme. The presets (``Scheme.from_initializer``,
``Scheme.keras()``, ``Scheme.auto()``) are schemes like any other, so what ran can always be written out and re-run.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from torch import nn

from initlab.checks import check_choice, check_finite, check_int, did_you_mean
from initlab.catalog import (
    Constant,
    GlorotUniform,
    Initializer,
    Ones,
    Orthogonal,
    RandomNormal,
    RandomUniform,
    Zeros,
    catalog,
    get,
    serialize,
)
from initlab.schemes import _toml
from initlab.schemes._roles import BLOCKS, FEEDFORWARD_TYPES, ROLES, Role, Slot

#: The initializer of a rule whose weights are chosen from the activation that follows each layer (see "auto").
AUTO: Literal["auto"] = "auto"
InitSpec = Initializer | Literal["auto"]
ModuleSpec = str | type[nn.Module]
#: Scheme names that are not initializer names. "torch" and "lsuv" are procedures, not rule lists.
SCHEME_NAMES: tuple[str, ...] = ("auto", "keras", "torch", "lsuv")

_RULE_KEYS: tuple[str, ...] = ("init", "module", "role", "block", "param", "ndim", "label")
_SCHEME_KEYS: tuple[str, ...] = ("name", "base", "lstm_forget_bias", "rules")
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
        if not isinstance(config, Mapping):
            raise TypeError(f"a rule config must be a dict, got {type(config).__name__}.")
        unknown = [k for k in config if k not in _RULE_KEYS]
        if unknown:
            hint = did_you_mean(str(unknown[0]), _RULE_KEYS)
            raise ValueError(f"rule config has unknown keys {unknown}; allowed keys: {', '.join(_RULE_KEYS)}.{hint}")
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


# -- schemes -----------------------------------------------------------------------------------------------------
class Scheme:
    """Ordered rules for a whole model; for each parameter (or gate/projection block) the first match wins.

    ``base`` (a rule-based scheme: an initializer, ``"keras"``, ``"auto"``, a Scheme or a config) supplies the
    rules tried after this scheme's own, so a scheme can say only what differs:
    ``Scheme([Rule("ones", module=MyGate)], base="he_normal")``.

    ``lstm_forget_bias`` sets the forget-gate block of every LSTM/LSTMCell ``bias_ih`` to that value; with the
    recurrent bias ``bias_hh`` at zero (every preset's default), the forget gate's total bias equals it.
    Jozefowicz et al. (2015) recommend 1.0; Keras' ``unit_forget_bias=True`` does the same.
    """

    def __init__(
        self,
        rules: Iterable[Rule | Mapping[str, Any]] = (),
        *,
        base: SchemeLike | None = None,
        name: str | None = None,
        lstm_forget_bias: float | None = None,
    ) -> None:
        if isinstance(rules, (Rule, Mapping, str)):
            raise TypeError("rules must be a list of Rule objects or rule dicts, e.g. Scheme([Rule('he_normal')]).")
        self.rules: tuple[Rule, ...] = tuple(r if isinstance(r, Rule) else Rule.from_dict(r) for r in rules)
        self.base: Scheme | None = None if base is None else as_scheme(base, what="base")
        self._base_spec: Any = None if base is None else _base_spec(base)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string, got {name!r}.")
        self.name = name
        self.lstm_forget_bias = None if lstm_forget_bias is None else check_finite("lstm_forget_bias", lstm_forget_bias)
        if not self.rules and self.base is None:
            raise ValueError("a scheme needs at least one rule or a base, e.g. Scheme([Rule('glorot_uniform')]).")

    # -- rule resolution --------------------------------------------------------------------------------------------
    def effective_rules(self) -> list[Rule]:
        """Every rule in the order they are tried: the forget-bias rule, this scheme's rules, then the base's."""
        out: list[Rule] = []
        if self.lstm_forget_bias is not None:
            out.append(
                Rule(
                    Constant(self.lstm_forget_bias),
                    module=("LSTM", "LSTMCell"),
                    role="bias",
                    block="f",
                    label=f"LSTM forget-gate bias = {self.lstm_forget_bias:g} (Jozefowicz et al. 2015)",
                )
            )
        out.extend(self.rules)
        if self.base is not None:
            out.extend(self.base.effective_rules())
        return out

    def match(self, slot: Slot) -> Rule | None:
        """The first rule that matches ``slot``, or ``None``."""
        return next((r for r in self.effective_rules() if r.matches(slot)), None)

    @property
    def uses_auto(self) -> bool:
        """Whether some rule chooses its initializer from the following activation (needs a forward pass)."""
        return any(r.init == AUTO for r in self.effective_rules())

    # -- presets --------------------------------------------------------------------------------------------------
    @classmethod
    def from_initializer(
        cls,
        init: Initializer | str | Mapping[str, Any] | type[Initializer],
        *,
        recurrent: Initializer | str | Mapping[str, Any] | None = None,
        name: str | None = None,
    ) -> Scheme:
        """One initializer for every weight matrix and kernel, embeddings included.

        Recurrent (hidden-hidden) matrices get ``recurrent`` (default: ``Orthogonal()``, gate by gate, Saxe et al.
        2014), biases zeros, normalization layers scale 1 and shift 0, PReLU its slope 0.25 (He et al. 2015).
        """
        initializer = get(init)
        return cls(
            standard_rules(initializer, recurrent=Orthogonal() if recurrent is None else get(recurrent)),
            name=name or f"initializer:{type(initializer).__name__}",
        )

    @classmethod
    def keras(cls) -> Scheme:
        """Keras' layer defaults: kernels ``glorot_uniform``, recurrent kernels ``orthogonal``, embeddings
        ``RandomUniform(-0.05, 0.05)``, biases zeros, normalization 1/0, PReLU alpha zeros, LSTM forget bias 1.

        Sources: the constructor defaults of ``keras.layers.Dense``, ``Conv*``, ``LSTM``/``GRU``/``SimpleRNN``
        (``unit_forget_bias=True``), ``Embedding``, ``BatchNormalization``, ``MultiHeadAttention`` and ``PReLU``.
        Keras initializes an RNN's packed kernels as a whole; here each gate block is initialized on its own.
        """
        return cls(
            standard_rules(GlorotUniform(), embedding=RandomUniform(-0.05, 0.05), prelu=Zeros()),
            name="keras",
            lstm_forget_bias=1.0,
        )

    @classmethod
    def auto(cls) -> Scheme:
        """The activation-aware choice for Linear, Bilinear, Conv and ConvTranspose weights (see
        :func:`initlab.schemes.choose_initializer`), Glorot uniform for RNN input and attention weights, orthogonal
        recurrent weights, N(0, 1) embeddings (unit-variance outputs, torch's default), zero biases, norms 1/0."""
        feedforward = tuple(t.__name__ for t in FEEDFORWARD_TYPES)
        return cls(
            [
                Rule(AUTO, module=feedforward, role="weight", label="weights: by the following activation"),
                *standard_rules(GlorotUniform(), embedding=RandomNormal(0.0, 1.0)),
            ],
            name="auto",
        )

    # -- serialization ----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "base": self._base_spec,
            "lstm_forget_bias": self.lstm_forget_bias,
            "rules": [r.to_dict() for r in self.rules],
        }
        return {k: v for k, v in out.items() if v is not None and v != []}

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> Scheme:
        if not isinstance(config, Mapping):
            raise TypeError(f"a scheme config must be a dict, got {type(config).__name__}.")
        unknown = [k for k in config if k not in _SCHEME_KEYS]
        if unknown:
            hint = did_you_mean(str(unknown[0]), _SCHEME_KEYS)
            raise ValueError(f"scheme config has unknown keys {unknown}; allowed: {', '.join(_SCHEME_KEYS)}.{hint}")
        rules = config.get("rules", [])
        if not isinstance(rules, Sequence) or isinstance(rules, (str, Mapping)):
            raise TypeError(f"'rules' must be a list of rule dicts, got {type(rules).__name__}.")
        return cls(
            rules,
            base=config.get("base"),
            name=config.get("name"),
            lstm_forget_bias=config.get("lstm_forget_bias"),
        )

    def to_toml(self) -> str:
        """The scheme as a TOML document (``[[rules]]`` tables, initializers as inline tables)."""
        return _toml.dumps(self.to_dict())

    @classmethod
    def from_toml(cls, text: str) -> Scheme:
        return cls.from_dict(_toml.loads(text))

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_toml` to ``path`` and return it."""
        path = Path(path)
        path.write_text(self.to_toml(), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Scheme:
        """Read a scheme from a TOML file written by :meth:`save` (or by hand)."""
        return cls.from_toml(Path(path).read_text(encoding="utf-8"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scheme) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(repr(self.to_dict()))

    def __repr__(self) -> str:
        base = f", base={self._base_spec!r}" if self.base is not None else ""
        return f"Scheme(name={self.name!r}, rules={len(self.rules)}{base})"


SchemeLike = Scheme | str | Mapping[str, Any] | Initializer | type[Initializer]


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


def _base_spec(base: SchemeLike) -> Any:
    """How a base is written in a config: its name when it was given by name, else its config."""
    if isinstance(base, str):
        return base
    if isinstance(base, Scheme):
        return base.to_dict()
    if isinstance(base, Mapping):
        return dict(base)
    return serialize(get(base))


def scheme_name_choices() -> list[str]:
    """Every name :func:`as_scheme` accepts: the scheme names and every initializer name."""
    names = list(SCHEME_NAMES)
    for entry in catalog():
        names.extend((entry.snake_name, *entry.aliases))
    return names


def unknown_scheme_error(name: str) -> ValueError:
    names = ", ".join(repr(n) for n in SCHEME_NAMES)
    hint = did_you_mean(name, scheme_name_choices())
    return ValueError(
        f"unknown scheme {name!r}: a scheme is one of {names}, an initializer name (run `initlab list`), an "
        f"Initializer, a Scheme or a config dict.{hint}"
    )


def as_scheme(spec: SchemeLike, *, what: str = "scheme") -> Scheme:
    """Turn a rule-based scheme spec into a :class:`Scheme`: a Scheme, ``"auto"``, ``"keras"``, an initializer (name,
    config, class or object), a scheme config dict (with ``"rules"`` or ``"base"``) or
    ``{"class_name": "Scheme", "config": {...}}``. ``"torch"`` and ``"lsuv"`` are procedures, not rule lists: they
    are handled by :func:`initlab.initialize` and cannot be a ``base``."""
    if isinstance(spec, Scheme):
        return spec
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key == "auto":
            return Scheme.auto()
        if key == "keras":
            return Scheme.keras()
        if key in ("torch", "lsuv"):
            raise ValueError(
                f"{what}={spec!r} is a procedure, not a list of rules, so it cannot be used here; give a rule-based "
                "scheme: 'auto', 'keras', an initializer name or a Scheme."
            )
        try:
            return Scheme.from_initializer(spec)
        except ValueError:
            raise unknown_scheme_error(spec) from None
    if isinstance(spec, Mapping):
        if "class_name" in spec:
            if spec["class_name"] == "Scheme":
                return Scheme.from_dict(spec.get("config") or {})
            if spec["class_name"] == "LSUV":
                raise ValueError(f"{what}: LSUV is a procedure, not a list of rules, so it cannot be used here.")
            return Scheme.from_initializer(spec)
        return Scheme.from_dict(spec)
    if isinstance(spec, Initializer) or (isinstance(spec, type) and issubclass(spec, Initializer)):
        return Scheme.from_initializer(spec)
    raise TypeError(
        f"cannot interpret {spec!r} as a {what}: give 'auto', 'keras', 'torch', 'lsuv', an initializer (name, config "
        "or object), a Scheme or a scheme config dict."
    )


def initializer_gain(init: Initializer) -> float | None:
    """The gain an initializer applies: its ``gain`` argument, √scale for VarianceScaling, else ``None``."""
    value = getattr(init, "gain", None)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    scale = getattr(init, "scale", None)
    if isinstance(scale, (int, float)) and not isinstance(scale, bool):
        return math.sqrt(scale)
    return None
