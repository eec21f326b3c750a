"""Schemes: ordered rules for a whole model, the presets, and reading a rule-based scheme from its spec.

A :class:`Scheme` is an ordered list of :class:`~initlab.schemes.Rule` objects where the first match wins, optionally
followed by the rules of a ``base`` scheme. The presets (``Scheme.from_initializer``, ``Scheme.keras()``,
``Scheme.auto()``) are schemes like any other, so what ran can always be written out and re-run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from initlab.catalog import (
    Constant,
    GlorotUniform,
    Initializer,
    Orthogonal,
    RandomNormal,
    RandomUniform,
    Zeros,
    get,
    serialize,
)
from initlab.checks import check_finite, check_keys, check_mapping
from initlab.schemes import _toml
from initlab.schemes._apply import apply_rules
from initlab.schemes._report import InitReport
from initlab.schemes._roles import Slot
from initlab.schemes._rules import AUTO, Rule, standard_rules
from initlab.schemes.base import check_arguments
from initlab.schemes.spec import (
    RULE_SCHEME_NAMES,
    parse,
    procedure_error,
    uninterpretable_error,
    unknown_scheme_error,
)
from initlab.seeding import Seed
from initlab.tracing import FEEDFORWARD_TYPES, ModelInput

_SCHEME_KEYS: tuple[str, ...] = ("name", "base", "lstm_forget_bias", "rules")


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

    # -- the Initialization protocol ------------------------------------------------------------------------------
    @property
    def needs_data(self) -> bool:
        """``False``: a scheme with "auto" rules uses ``data`` when given, and builds an input otherwise."""
        return False

    def apply(self, model: nn.Module, *, seed: Seed = None, data: ModelInput | None = None) -> InitReport:
        """Apply the rules to every parameter of ``model`` in place (see :func:`initlab.initialize`)."""
        check_arguments(model, seed, data)
        return apply_rules(model, self, seed=seed, data=data)[0]

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
    def to_config(self) -> dict[str, Any]:
        """``{"class_name": "Scheme", "config": self.to_dict()}``, the form a report records and ``resolve`` reads."""
        return {"class_name": "Scheme", "config": self.to_dict()}

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
        check_mapping("a scheme config", config)
        check_keys("scheme config", config, _SCHEME_KEYS, listed_as="allowed")
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


def as_scheme(spec: SchemeLike, *, what: str = "scheme") -> Scheme:
    """Turn a rule-based scheme spec into a :class:`Scheme`: a Scheme, ``"auto"``, ``"keras"``, an initializer (name,
    config, class or object), a scheme config dict (with ``"rules"`` or ``"base"``) or
    ``{"class_name": "Scheme", "config": {...}}`` (see :mod:`initlab.schemes.spec`). ``"torch"`` and ``"lsuv"`` are
    procedures, not rule lists: :func:`initlab.schemes.resolve` reads them, and they cannot be a ``base``."""
    form, value = parse(spec, what=what)
    if form == "object":
        if isinstance(value, Scheme):
            return value
        raise uninterpretable_error(spec, what)
    if form == "name":
        if value not in RULE_SCHEME_NAMES:
            raise procedure_error(spec, what)
        return Scheme.auto() if value == "auto" else Scheme.keras()
    if form in ("lsuv_config", "critical_config", "structural_config"):
        raise procedure_error(spec, what)
    if form == "scheme_config":
        return Scheme.from_dict(value)
    if isinstance(value, str):
        try:
            return Scheme.from_initializer(value)
        except ValueError:
            raise unknown_scheme_error(value) from None
    return Scheme.from_initializer(value)


def serialize_scheme(scheme: Scheme | str) -> Any:
    """The config form of a scheme, which :func:`initlab.initialize` accepts back (a name is returned as it is)."""
    if isinstance(scheme, Scheme):
        return scheme.to_config()
    return scheme


def _base_spec(base: SchemeLike) -> Any:
    """How a base is written in a config: its name when it was given by name, else its config."""
    if isinstance(base, str):
        return base
    if isinstance(base, Scheme):
        return base.to_dict()
    if isinstance(base, Mapping):
        return dict(base)
    return serialize(get(base))
