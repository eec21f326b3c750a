"""The specs of the residual networks (:mod:`initlab.nets`): ``resmlp:WxD``, ``resnet:C1,C2,...`` and
``transformer:DxL``, each a frozen dataclass that prints as its canonical spec string, round-trips through a config
dict and builds its network; :mod:`initlab.models` parses and builds them beside the plain kinds."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar, Literal, TypeVar

import torch
from torch import nn

from initlab import nets
from initlab._spec_base import (
    ACTIVATIONS,
    MAX_PARAMETERS,
    NORMS,
    Activation,
    Norm,
    SpecError,
    check_widths,
    format_value,
    outputs,
    parse_bool,
    parse_int,
    parse_int_list,
    spec_error,
)
from initlab.checks import check_shape, did_you_mean

ResidualKind = Literal["resmlp", "resnet", "transformer"]
LNPlace = Literal["pre", "post", "none", "deepnorm"]
Task = Literal["classify", "lm"]
Gate = Literal["none", "scalar", "channel"]

RESIDUAL_KINDS: tuple[ResidualKind, ...] = ("resmlp", "resnet", "transformer")
LN_PLACES: tuple[LNPlace, ...] = ("pre", "post", "none", "deepnorm")
TASKS: tuple[Task, ...] = ("classify", "lm")
#: A learnable multiplier on each residual branch, ``x + g·f(x)``: none, one scalar (SkipInit, ReZero) or one per
#: channel (LayerScale); 1 until a scheme sets it.
GATES: tuple[Gate, ...] = ("none", "scalar", "channel")


# Names people write for what a residual spec takes in its kind (``transformer:64x4``) or as another option.
_SHAPE = "<shape>"
_RESIDUAL_ALIASES: dict[str, dict[str, str]] = {
    "resmlp": dict.fromkeys(("width", "depth", "blocks", "layers", "d", "dim"), _SHAPE),
    "resnet": {
        **dict.fromkeys(("depth", "n_blocks", "num_blocks", "layers"), "blocks"),
        **dict.fromkeys(("widths", "channels", "width"), _SHAPE),
    },
    "transformer": {
        **dict.fromkeys(("d", "dim", "d_model", "width", "n_embd", "layers", "n_layers", "n_layer", "depth"), _SHAPE),
        **dict.fromkeys(("n_heads", "num_heads", "nhead", "n_head", "head"), "heads"),
        **dict.fromkeys(("norm", "norm_first", "prenorm", "layer_norm"), "ln"),
        **dict.fromkeys(("patch_size", "patches"), "patch"),
        **dict.fromkeys(("mlp", "mlp_ratio", "ffn_ratio"), "ffn"),
        **dict.fromkeys(("vocab_size", "n_vocab"), "vocab"),
    },
}
_SHAPE_TEXT = {
    "resmlp": "write the width and depth in the kind: resmlp:64x8 (width 64, 8 blocks)",
    "resnet": "write the stage widths in the kind: resnet:16,32,64",
    "transformer": "write the width and depth in the kind: transformer:64x4 (width 64, 4 layers)",
}
# ``norm=bn`` and ``norm=ln`` as in the ResNet and transformer literature.
_NORM_ALIASES = {"bn": "batch", "ln": "layer", "batchnorm": "batch", "layernorm": "layer"}


def _check_choice(spec: object, name: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        hint = did_you_mean(value, allowed) if isinstance(value, str) else ""
        raise spec_error(spec, f"{name}={value!r} is not one of {'|'.join(allowed)}.{hint}")
    return str(value)


def _check_count(spec: object, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise spec_error(spec, f"{name} must be a positive integer, got {value!r}.")
    return value


def _check_common(spec: ResidualSpec) -> None:
    """``act``, and ``dropout`` and ``bias`` where the kind has them (resnet has neither)."""
    _check_choice(spec.kind, "act", spec.act, ACTIVATIONS)
    if "dropout" in spec.OPTIONS:
        dropout = spec.dropout  # type: ignore[union-attr]
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise spec_error(spec.kind, f"dropout must be a number in [0, 1), got {dropout!r}.")
        object.__setattr__(spec, "dropout", float(dropout))
    if "bias" in spec.OPTIONS and not isinstance(spec.bias, bool):  # type: ignore[union-attr]
        raise spec_error(spec.kind, f"bias must be true or false, got {spec.bias!r}.")  # type: ignore[union-attr]


class _ResidualSpecBase:
    """What the residual specs share: the canonical string, the config round trip, building with a size check."""

    kind: ClassVar[str]
    OPTIONS: ClassVar[tuple[str, ...]]

    def _shape_text(self) -> str:
        raise NotImplementedError

    def _build(self, shape: tuple[int, ...], num_classes: int | None) -> nn.Module:
        raise NotImplementedError

    @property
    def widths(self) -> tuple[int, ...]:
        """The width of every residual block, first to last (what a width sweep or muP scales)."""
        raise NotImplementedError

    def __str__(self) -> str:
        text = f"{self.kind}:{self._shape_text()}"
        defaults = type(self)()
        for name in self.OPTIONS:
            value = getattr(self, name)
            if value != getattr(defaults, name):
                text += f";{name}={format_value(value)}"
        return text

    def get_config(self) -> dict[str, Any]:
        """A JSON-ready dict, with ``kind``, that :func:`spec_from_config` turns back into an equal spec."""
        config = {"kind": self.kind, **asdict(self)}  # type: ignore[call-overload]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Any:
        """The inverse of :meth:`get_config`; unknown keys raise ``ValueError``."""
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        values = {k: v for k, v in config.items() if k != "kind"}
        if config.get("kind", cls.kind) != cls.kind:
            raise ValueError(f"a {cls.__name__} has kind {cls.kind!r}, not {config['kind']!r}.")
        unknown = [k for k in values if k not in names]
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {unknown}; the fields are {sorted(names)}.")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    def build(self, input_shape: tuple[int, ...] | torch.Size, num_classes: int | None) -> nn.Module:
        """Build the network for inputs of one-sample shape ``input_shape`` and ``num_classes`` outputs (the size
        is checked on the meta device first, as for :meth:`ModelSpec.build`)."""
        shape = check_shape(tuple(input_shape))
        outputs(num_classes)
        with torch.device("meta"):
            count = sum(p.numel() for p in self._build(shape, num_classes).parameters())
        if count > MAX_PARAMETERS:
            raise spec_error(
                str(self),
                f"it has {count:,} parameters for inputs {shape}; initlab builds models of at most "
                f"{MAX_PARAMETERS:,} (4 GB of float32). Use a smaller width or depth.",
            )
        return self._build(shape, num_classes)

    def _built(self, make: Callable[[], nn.Module]) -> nn.Module:
        """``make()``, with a shape error of the network prefixed by the spec."""
        try:
            return make()
        except ValueError as exc:
            raise ValueError(f"{self}: {exc}") from None


_Spec = TypeVar("_Spec", bound="_WidthByDepth")


class _WidthByDepth:
    """A spec written ``WIDTHxDEPTH`` whose hidden layers all have one width: its shape text, widths and resizing."""

    width: int
    depth: int

    def _shape_text(self) -> str:
        return f"{self.width}x{self.depth}"

    @property
    def widths(self) -> tuple[int, ...]:
        return (self.width,) * self.depth

    def resized(self: _Spec, width: int | None, depth: int | None) -> _Spec:
        """This spec with ``width`` and ``depth`` (``None`` keeps its own); every other option stays."""
        return replace(self, width=self.width if width is None else width, depth=self.depth if depth is None else depth)


@dataclass(frozen=True)
class ResMLPSpec(_WidthByDepth, _ResidualSpecBase):
    """``resmlp:WIDTHxDEPTH``: a residual MLP (:class:`initlab.nets.ResidualMLP`)."""

    width: int = 64
    depth: int = 4  # residual blocks, each two Linear(width, width)
    act: Activation = "relu"
    norm: Norm = "none"  # at the start of every branch and before the head; none: the bare residual stream
    dropout: float = 0.0  # after each branch's activation
    bias: bool = True
    gate: Gate = "none"  # a learnable multiplier on each branch (see GATES)

    kind: ClassVar[str] = "resmlp"
    OPTIONS: ClassVar[tuple[str, ...]] = ("act", "norm", "dropout", "bias", "gate")

    def __post_init__(self) -> None:
        _check_count(self.kind, "width", self.width)
        _check_count(self.kind, "depth", self.depth)
        _check_choice(self.kind, "norm", self.norm, NORMS)
        _check_choice(self.kind, "gate", self.gate, GATES)
        _check_common(self)

    def _build(self, shape: tuple[int, ...], num_classes: int | None) -> nn.Module:
        return self._built(
            lambda: nets.ResidualMLP(
                shape,
                outputs(num_classes),
                width=self.width,
                depth=self.depth,
                act=self.act,
                norm=self.norm,
                dropout=self.dropout,
                bias=self.bias,
                gate=self.gate,
            )
        )


@dataclass(frozen=True)
class ResNetSpec(_ResidualSpecBase):
    """``resnet:C1,C2,...``: He et al.'s CIFAR ResNet at MNIST size (:class:`initlab.nets.ResNet`)."""

    channels: tuple[int, ...] = (16, 32, 64)  # one stage per entry; every stage after the first halves H and W
    blocks: int = 2  # basic blocks per stage; ResNet-20 is blocks=3 with 16,32,64
    act: Activation = "relu"
    norm: Norm = "batch"  # the paper's batch norm; layer is GroupNorm(1, C)

    kind: ClassVar[str] = "resnet"
    OPTIONS: ClassVar[tuple[str, ...]] = ("blocks", "act", "norm")

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", check_widths(self.kind, "channels", self.channels))
        if not self.channels:
            raise spec_error(self.kind, "resnet needs at least one stage width, e.g. resnet:16,32,64.")
        _check_count(self.kind, "blocks", self.blocks)
        _check_choice(self.kind, "norm", self.norm, NORMS)
        _check_common(self)

    def _shape_text(self) -> str:
        return ",".join(map(str, self.channels))

    @property
    def widths(self) -> tuple[int, ...]:
        return self.channels

    def resized(self, width: int | None, depth: int | None) -> ResNetSpec:
        """This spec with the first stage ``width`` channels wide, the others scaled in proportion (as a wide ResNet
        widens every stage by one factor), and ``depth`` blocks per stage."""
        channels = self.channels
        if width is not None:
            first = channels[0]
            if any(c * width % first for c in channels):
                raise spec_error(
                    str(self),
                    f"stage widths {','.join(map(str, channels))} cannot all be scaled by {width}/{first}; give "
                    "stages that are multiples of the first (16,32,64) or a width that is a multiple of it.",
                )
            channels = tuple(c * width // first for c in channels)
        return replace(self, channels=channels, blocks=self.blocks if depth is None else depth)

    def _build(self, shape: tuple[int, ...], num_classes: int | None) -> nn.Module:
        return self._built(
            lambda: nets.ResNet(
                shape, outputs(num_classes), channels=self.channels, blocks=self.blocks, act=self.act, norm=self.norm
            )
        )


@dataclass(frozen=True)
class TransformerSpec(_WidthByDepth, _ResidualSpecBase):
    """``transformer:WIDTHxDEPTH``: an encoder or a causal decoder (:class:`initlab.nets.Transformer`)."""

    width: int = 64  # d_model
    depth: int = 2  # transformer blocks (layers)
    heads: int = 4  # must divide the width
    ln: LNPlace = "pre"  # pre: x + f(LN(x)) (GPT-2, Xiong et al. 2020); post: LN(x + f(x)) (Vaswani et al. 2017)
    # deepnorm: LN(α·x + f(x)), α = (2·depth)^(1/4) (Wang et al. 2022); none: no normalization (T-Fixup)
    task: Task = "classify"  # classify: encoder, mean over positions; lm: causal decoder, last position
    patch: int | None = None  # image inputs: patch side; None: the smallest giving at most 64 patches
    ffn: int = 4  # the MLP's hidden width, in multiples of the width (4 in Vaswani et al. and GPT)
    act: Activation = "gelu"
    dropout: float = 0.0  # on each branch's output before it is added to the stream
    bias: bool = True
    vocab: int | None = None  # token inputs: vocabulary size; None: the number of classes
    gate: Gate = "none"  # a learnable multiplier on each branch (see GATES)

    kind: ClassVar[str] = "transformer"
    OPTIONS: ClassVar[tuple[str, ...]] = (
        "heads", "ln", "task", "patch", "ffn", "act", "dropout", "bias", "vocab", "gate",
    )  # fmt: skip

    def __post_init__(self) -> None:
        for name in ("width", "depth", "heads", "ffn"):
            _check_count(self.kind, name, getattr(self, name))
        for name in ("patch", "vocab"):
            if getattr(self, name) is not None:
                _check_count(self.kind, name, getattr(self, name))
        if self.width % self.heads:
            divisors = [h for h in range(1, min(self.width, 16) + 1) if self.width % h == 0]
            raise spec_error(
                self.kind, f"heads={self.heads} does not divide the width {self.width}; use one of {divisors}."
            )
        _check_choice(self.kind, "ln", self.ln, LN_PLACES)
        _check_choice(self.kind, "task", self.task, TASKS)
        _check_choice(self.kind, "gate", self.gate, GATES)
        _check_common(self)

    def _build(self, shape: tuple[int, ...], num_classes: int | None) -> nn.Module:
        vocab = self.vocab if self.vocab is not None else num_classes
        if len(shape) == 1 and vocab is None:
            raise spec_error(str(self), "token inputs need the vocabulary size: give vocab=V (regression targets).")
        return self._built(
            lambda: nets.Transformer(
                shape,
                outputs(num_classes),
                width=self.width,
                depth=self.depth,
                heads=self.heads,
                ln=self.ln,
                task=self.task,
                patch=self.patch,
                ffn=self.ffn,
                act=self.act,
                dropout=self.dropout,
                bias=self.bias,
                vocab=vocab,
                gate=self.gate,
            )
        )


ResidualSpec = ResMLPSpec | ResNetSpec | TransformerSpec
RESIDUAL_SPECS: dict[str, type[ResMLPSpec] | type[ResNetSpec] | type[TransformerSpec]] = {
    "resmlp": ResMLPSpec,
    "resnet": ResNetSpec,
    "transformer": TransformerSpec,
}


_SHAPE_PATTERN = re.compile(r"^(\d+)\s*[x×]\s*(\d+)$", re.IGNORECASE)


def _parse_residual_shape(spec: str, kind: str, text: str) -> dict[str, Any]:
    text = text.strip()
    if kind == "resnet":
        return {"channels": parse_int_list(spec, "widths", text)}
    match = _SHAPE_PATTERN.match(text)
    if not match:
        raise spec_error(spec, f"{kind}:{text} is not WIDTHxDEPTH; {_SHAPE_TEXT[kind]}.")
    return {"width": parse_int(spec, "width", match.group(1)), "depth": parse_int(spec, "depth", match.group(2))}


def _parse_residual_option(spec: str, kind: str, name: str, text: str) -> Any:
    if name in ("act", "norm", "ln", "task", "gate"):
        allowed = {"act": ACTIVATIONS, "norm": NORMS, "ln": LN_PLACES, "task": TASKS, "gate": GATES}[name]
        value = text.lower()
        if name == "norm":
            value = _NORM_ALIASES.get(value, value)
        if value not in allowed:
            raise spec_error(spec, f"{name}={text!r} is not one of {'|'.join(allowed)}.{did_you_mean(text, allowed)}")
        return value
    if name == "dropout":
        try:
            return float(text)
        except ValueError:
            raise spec_error(spec, f"dropout={text!r} is not a number in [0, 1).") from None
    if name == "bias":
        return parse_bool(spec, name, text)
    if name in ("blocks", "heads", "ffn", "patch", "vocab"):
        return parse_int(spec, name, text)
    raise spec_error(spec, f"unknown option {name!r}.")  # unreachable: names are checked first


def parse_residual(spec: str, kind: str, shape_text: str | None, option_texts: list[str]) -> ResidualSpec:
    cls = RESIDUAL_SPECS[kind]
    values: dict[str, Any] = {}
    if shape_text is not None:
        if not shape_text.strip():
            raise spec_error(spec, f"nothing after '{kind}:'; {_SHAPE_TEXT[kind]} (or just {kind}).")
        values.update(_parse_residual_shape(spec, kind, shape_text))
    seen: set[str] = set()
    for option in option_texts:
        if not option:
            continue
        name, eq, value = (s.strip() for s in option.partition("="))
        name = name.lower()
        if not eq:
            raise spec_error(spec, f"option {option!r} is not KEY=VALUE.")
        if name not in cls.OPTIONS:
            alias = _RESIDUAL_ALIASES[kind].get(name)
            if alias == _SHAPE:
                hint = f" {_SHAPE_TEXT[kind][0].upper()}{_SHAPE_TEXT[kind][1:]}."
            elif alias in cls.OPTIONS:
                hint = f" Did you mean {alias!r}?"
            else:
                hint = did_you_mean(name, cls.OPTIONS)
            raise spec_error(spec, f"{kind} has no option {name!r}; its options are {', '.join(cls.OPTIONS)}.{hint}")
        if name in seen:
            raise spec_error(spec, f"option {name!r} is given twice.")
        seen.add(name)
        values[name] = _parse_residual_option(spec, kind, name, value)
    try:
        return cls(**values)
    except SpecError as exc:  # quote the user's text, not the kind alone
        raise spec_error(spec, exc.problem) from None
