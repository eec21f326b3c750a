"""Model builders: a spec string, a :class:`ModelSpec` or a factory becomes a model.

``mlp``, ``cnn`` and ``cnn1d`` build plain ``torch.nn.Sequential`` models; ``resmlp``, ``resnet`` and ``transformer``
build the residual networks of :mod:`initlab.nets`, whose blocks declare their branches (:func:`structure`).

Every Sequential model is a flat ``nn.Sequential`` of ``nn.Linear``/``nn.Conv*`` layers, each followed (in module
order) by its normalization, its activation module, pooling and dropout, so other parts of initlab find a layer's
activation by walking the modules in order. A ``linear`` activation adds no module. The last layer returns logits
(no softmax: use ``nn.CrossEntropyLoss``), with ``num_classes`` outputs, or 1 for regression (``num_classes=None``).

Spec grammar (:data:`SPEC_GRAMMAR`; every parse error quotes it)::

    KIND[:W1,W2,...][;KEY=VALUE]...

- ``mlp:256,128`` Flatten, then ``Linear -> [norm] -> act -> [Dropout]`` per width, then ``Linear(classes)``;
  ``mlp`` with no widths is a linear (softmax-regression) model. Options ``act``, ``dropout``, ``bias``, ``norm``.
- ``cnn:32,64`` a small 2-D convnet: per width ``Conv2d(kernel, stride, padding=kernel//2) -> [norm] -> act ->
  [pool 2×2] -> [Dropout]``, then Flatten, the ``head`` widths as dense layers, and ``Linear(classes)``. Inputs
  ``(C, H, W)``, or ``(H, W)`` with one channel added. Options: those of ``mlp`` plus ``kernel`` (3), ``stride``
  (1), ``pool`` (max) and ``head`` (none).
- ``cnn1d:32,32`` the same with ``Conv1d`` for signals ``(C, L)`` or ``(L,)`` (MNIST-1D).
- ``keras-mnist``: the network of the MNIST initialization article, ``Flatten -> Dense(256, relu) -> Dropout(0.2)
  -> Dense(128, relu) -> Dropout(0.2) -> Dense(10)``; i.e. ``mlp:256,128;dropout=0.2``. Options override its
  settings (``keras-mnist;act=tanh``); widths cannot be given.

Residual networks (:mod:`initlab.nets`; their specs are :class:`ResMLPSpec`, :class:`ResNetSpec`,
:class:`TransformerSpec`, and ``docs/residual.md`` describes them)::

    resmlp[:WxD]  resnet[:C1,C2,...]  transformer[:DxL]   [;KEY=VALUE]...

- ``resmlp:64x8`` Flatten, ``Linear(in, 64)``, 8 pre-norm blocks ``x + fc2(act(fc1(norm(x))))``, norm, act, head.
  Options ``act`` (relu), ``norm`` (none), ``dropout``, ``bias``. Default ``resmlp`` = ``resmlp:64x4``.
- ``resnet:16,32,64`` He et al.'s CIFAR ResNet for MNIST-sized images: a 3×3 stem, one stage of ``blocks`` basic
  blocks per width (stride 2 and a 1×1 projection shortcut entering stages 2, 3, ...), global average pooling,
  head. Options ``blocks`` (2), ``norm`` (batch), ``act`` (relu). Default ``resnet`` = ``resnet:16,32,64``.
- ``transformer:64x4`` 4 blocks of width 64 (self-attention and an MLP of ``ffn`` × 64 hidden units). Options
  ``heads`` (4), ``ln`` pre | post | none (pre), ``task`` classify | lm (classify: an encoder read out by the mean
  over positions; lm: a causal decoder read out at the last position, the next token), ``patch`` (image inputs are
  cut into patch × patch patches; default: the smallest giving at most 64), ``ffn`` (4), ``act`` (gelu),
  ``dropout``, ``bias``, ``vocab`` (token inputs: the vocabulary size; default the number of classes, since
  initlab's sequence tasks share one vocabulary between tokens and labels). Default ``transformer:64x2``.

``norm`` also accepts ``bn`` and ``ln`` (for ``batch`` and ``layer``).

Option values: ``act`` relu | tanh | sigmoid | selu | gelu | leaky_relu | linear (default relu; leaky_relu has
torch's slope 0.01); ``dropout`` a probability in [0, 1) (0); ``bias`` true | false (true, for every layer);
``norm`` none | batch | layer (none; for convolutions ``layer`` is ``GroupNorm(1, C)``, a layer norm over channels
and positions); ``pool`` max | avg | none; ``kernel``, ``stride`` positive integers; ``head`` widths like ``128`` or
``256,128``.

From Python: ``build(ModelSpec("mlp", (256, 128), act="tanh"), input_shape=..., num_classes=...)``, or any factory
``f(input_shape, num_classes) -> nn.Module`` wherever a spec is accepted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import torch
from torch import nn

from initlab import factory, nets
from initlab._residual_specs import (
    LN_PLACES,
    RESIDUAL_KINDS,
    RESIDUAL_SPECS,
    TASKS,
    LNPlace,
    ResidualKind,
    ResidualSpec,
    ResMLPSpec,
    ResNetSpec,
    Task,
    TransformerSpec,
    parse_residual,
)
from initlab._spec_base import (
    ACTIVATIONS,
    MAX_PARAMETERS,
    NORMS,
    SPEC_GRAMMAR,
    Activation,
    Norm,
    SpecError,
)
from initlab._spec_base import check_widths as _check_widths
from initlab._spec_base import format_value as _format_value
from initlab._spec_base import outputs as _outputs
from initlab._spec_base import parse_bool as _parse_bool
from initlab._spec_base import parse_int as _parse_int
from initlab._spec_base import parse_int_list as _parse_int_list
from initlab._spec_base import spec_error as _spec_error
from initlab.checks import check_shape, did_you_mean

__all__ = [
    "ACTIVATIONS",
    "KINDS",
    "LN_PLACES",
    "MAX_PARAMETERS",
    "NORMS",
    "POOLS",
    "PRESETS",
    "RESIDUAL_KINDS",
    "SPEC_GRAMMAR",
    "TASKS",
    "Activation",
    "AnySpec",
    "Kind",
    "LNPlace",
    "ModelFactory",
    "ModelSpec",
    "Norm",
    "Pool",
    "ResMLPSpec",
    "ResNetSpec",
    "ResidualKind",
    "ResidualSpec",
    "SpecError",
    "Task",
    "TransformerSpec",
    "build",
    "check",
    "describe",
    "is_spec",
    "parse",
    "resize",
    "spec_from_config",
    "structure",
]

Pool = Literal["max", "avg", "none"]
Kind = Literal["mlp", "cnn", "cnn1d"]

POOLS: tuple[Pool, ...] = ("max", "avg", "none")
KINDS: tuple[Kind, ...] = ("mlp", "cnn", "cnn1d")

# Named networks: a preset is a spec string; options after its name override its settings.
PRESETS: dict[str, str] = {
    # The Dense network of the MNIST initializer comparison (the seed article trained it for 20 epochs with Adam and
    # sparse categorical cross-entropy under twelve initializers): Flatten, Dense(256, relu), Dropout(0.2),
    # Dense(128, relu), Dropout(0.2), Dense(10, softmax) -- the softmax is left to the loss here.
    "keras-mnist": "mlp:256,128;act=relu;dropout=0.2",
}

_COMMON_OPTIONS = ("act", "dropout", "bias", "norm")
_CONV_OPTIONS = (*_COMMON_OPTIONS, "kernel", "stride", "pool", "head")
_OPTIONS_BY_KIND: dict[str, tuple[str, ...]] = {"mlp": _COMMON_OPTIONS, "cnn": _CONV_OPTIONS, "cnn1d": _CONV_OPTIONS}

# Names people write for an option (from Keras and torch), used only to suggest the right one.
_OPTION_ALIASES = {
    "activation": "act",
    "nonlinearity": "act",
    "p": "dropout",
    "drop": "dropout",
    "use_bias": "bias",
    "normalization": "norm",
    "kernel_size": "kernel",
    "k": "kernel",
    "pooling": "pool",
    "hidden": "head",
}

ModelFactory = Callable[[tuple[int, ...], "int | None"], nn.Module]


@dataclass(frozen=True)
class ModelSpec:
    """A model architecture as a serializable config; ``str(spec)`` is its canonical spec string.

    Fields that a kind does not use (``kernel`` for an MLP) must keep their defaults.
    """

    kind: Kind
    widths: tuple[int, ...] = ()  # hidden widths (mlp) or conv channels (cnn, cnn1d), first to last
    act: Activation = "relu"
    dropout: float = 0.0  # after every hidden activation (and pooling); 0 adds no module
    bias: bool = True  # for every Linear and Conv layer, the output layer included
    norm: Norm = "none"  # between each hidden layer and its activation
    kernel: int = 3  # conv kernel size; padding kernel // 2 keeps the size for odd kernels at stride 1
    stride: int = 1
    pool: Pool = "max"  # a 2 (×2) pooling after each conv block
    head: tuple[int, ...] = field(default=())  # dense hidden widths between the conv stack and the output layer
    preset: str | None = field(default=None, compare=False)  # the preset it is, unmodified (display only)

    def __post_init__(self) -> None:
        spec = self.preset or self.kind
        if self.kind in RESIDUAL_KINDS:
            name = RESIDUAL_SPECS[self.kind].__name__
            raise _spec_error(spec, f"a {self.kind} is a {name}, not a ModelSpec: {name}(...) or parse('{self.kind}').")
        if self.kind not in KINDS:
            known = [*KINDS, *PRESETS]
            raise _spec_error(spec, f"unknown kind {self.kind!r}.{did_you_mean(str(self.kind), known)}")
        object.__setattr__(self, "widths", _check_widths(spec, "widths", self.widths))
        object.__setattr__(self, "head", _check_widths(spec, "head", self.head))
        if self.kind in ("cnn", "cnn1d") and not self.widths:
            raise _spec_error(spec, f"{self.kind} needs at least one conv width, e.g. {self.kind}:32,64.")
        for name, allowed in (("act", ACTIVATIONS), ("norm", NORMS), ("pool", POOLS)):
            value = getattr(self, name)
            if value not in allowed:
                hint = did_you_mean(value, allowed) if isinstance(value, str) else ""
                raise _spec_error(spec, f"{name}={value!r} is not one of {'|'.join(allowed)}.{hint}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)):
            raise _spec_error(spec, f"dropout must be a number in [0, 1), got {self.dropout!r}.")
        if not 0.0 <= self.dropout < 1.0:
            raise _spec_error(spec, f"dropout must be in [0, 1), got {self.dropout!r}.")
        object.__setattr__(self, "dropout", float(self.dropout))
        if not isinstance(self.bias, bool):
            raise _spec_error(spec, f"bias must be true or false, got {self.bias!r}.")
        for name in ("kernel", "stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _spec_error(spec, f"{name} must be a positive integer, got {value!r}.")
        if self.kind == "mlp":
            defaults = ModelSpec.__dataclass_fields__
            for name in ("kernel", "stride", "pool", "head"):
                if getattr(self, name) != defaults[name].default:
                    raise _spec_error(spec, f"option {name!r} applies to cnn and cnn1d only.")

    def __str__(self) -> str:
        text = self.kind + (":" + ",".join(map(str, self.widths)) if self.widths else "")
        defaults = ModelSpec(self.kind, self.widths)
        for name in _OPTIONS_BY_KIND[self.kind]:
            value = getattr(self, name)
            if value != getattr(defaults, name):
                text += f";{name}={_format_value(value)}"
        return text

    def get_config(self) -> dict[str, Any]:
        """A JSON-ready dict that :meth:`from_config` turns back into an equal spec."""
        config = asdict(self)
        config["widths"] = list(self.widths)
        config["head"] = list(self.head)
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ModelSpec:
        """The inverse of :meth:`get_config`; unknown keys raise ``ValueError``."""
        names = {f.name for f in fields(cls)}
        unknown = [k for k in config if k not in names]
        if unknown:
            raise ValueError(f"unknown ModelSpec fields {unknown}; the fields are {sorted(names)}.")
        values = dict(config)
        for key in ("widths", "head"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)

    def build(self, input_shape: tuple[int, ...] | torch.Size, num_classes: int | None) -> nn.Sequential:
        """Build the model for inputs of one-sample shape ``input_shape`` and ``num_classes`` outputs."""
        shape = check_shape(tuple(input_shape))
        outputs = _outputs(num_classes)
        with torch.device("meta"):  # counted first, without memory: a typo in a width must not allocate 300 GB
            count = sum(p.numel() for p in self._build(shape, outputs).parameters())
        if count > MAX_PARAMETERS:
            raise _spec_error(
                self.preset or str(self),
                f"it has {count:,} parameters for inputs {shape}; initlab "
                f"builds models of at most {MAX_PARAMETERS:,} (4 GB of float32). Use smaller widths.",
            )
        return self._build(shape, outputs)

    def _build(self, shape: tuple[int, ...], outputs: int) -> nn.Sequential:
        if self.kind == "mlp":
            return _build_mlp(self, shape, outputs)
        return _build_cnn(self, shape, outputs, dims=2 if self.kind == "cnn" else 1)


# ------------------------------------------------------------------------------------------------------------ parsing
def _parse_option(spec: str, name: str, text: str) -> Any:
    if name in ("act", "norm", "pool"):
        allowed = {"act": ACTIVATIONS, "norm": NORMS, "pool": POOLS}[name]
        value = text.lower()
        if value not in allowed:
            raise _spec_error(spec, f"{name}={text!r} is not one of {'|'.join(allowed)}.{did_you_mean(text, allowed)}")
        return value
    if name == "dropout":
        try:
            return float(text)
        except ValueError:
            raise _spec_error(spec, f"dropout={text!r} is not a number in [0, 1).") from None
    if name == "bias":
        return _parse_bool(spec, name, text)
    if name in ("kernel", "stride"):
        return _parse_int(spec, name, text)
    if name == "head":
        return () if text.lower() in ("", "none") else _parse_int_list(spec, "head", text)
    raise _spec_error(spec, f"unknown option {name!r}.")  # unreachable: names are checked first


def parse(spec: str) -> AnySpec:
    """Parse a spec string (see :data:`SPEC_GRAMMAR`) into a :class:`ModelSpec`, or a :class:`ResMLPSpec`,
    :class:`ResNetSpec` or :class:`TransformerSpec` for the residual kinds; ``ValueError`` shows the grammar."""
    if not isinstance(spec, str):
        raise TypeError(f"a model spec string is expected, got {spec!r} of type {type(spec).__name__}.")
    text = spec.strip()
    if not text:
        raise _spec_error(spec, "it is empty.")
    head, *option_texts = (part.strip() for part in text.split(";"))
    kind_text, colon, widths_text = head.partition(":")
    kind = kind_text.strip().lower()
    preset: str | None = None
    base: dict[str, Any] = {}
    if kind in RESIDUAL_KINDS:
        return parse_residual(spec, kind, widths_text if colon else None, option_texts)
    if kind in PRESETS:
        if colon:
            raise _spec_error(spec, f"{kind} is a fixed network; it takes options (;act=tanh) but no widths.")
        preset, base_spec = kind, parse(PRESETS[kind])
        if not isinstance(base_spec, ModelSpec):
            raise TypeError(f"preset {kind!r} must be an mlp or cnn spec.")  # a preset of a residual kind: not yet
        kind = base_spec.kind
        base = {f.name: getattr(base_spec, f.name) for f in fields(base_spec) if f.name != "preset"}
    elif kind not in KINDS:
        known = [*KINDS, *RESIDUAL_KINDS, *PRESETS]
        raise _spec_error(spec, f"unknown kind {kind_text.strip()!r}.{did_you_mean(kind, known)}")
    else:
        base = {"kind": kind}
        if colon:
            if not widths_text.strip():
                raise _spec_error(spec, f"no widths after '{kind}:'; write e.g. {kind}:256,128 (or just {kind}).")
            base["widths"] = _parse_int_list(spec, "widths", widths_text)
    allowed = _OPTIONS_BY_KIND[kind]
    seen: set[str] = set()
    for option in option_texts:
        if not option:
            continue  # a trailing or doubled ';' is harmless
        name, eq, value = (s.strip() for s in option.partition("="))
        name = name.lower()
        if not eq:
            raise _spec_error(spec, f"option {option!r} is not KEY=VALUE.")
        if name not in allowed:
            where = "" if name not in _CONV_OPTIONS else f" ({name} applies to cnn and cnn1d only)"
            alias = _OPTION_ALIASES.get(name)
            hint = f" Did you mean {alias!r}?" if alias in allowed else did_you_mean(name, allowed)
            listed = ", ".join(allowed)
            raise _spec_error(spec, f"{kind} has no option {name!r}{where}; its options are {listed}.{hint}")
        if name in seen:
            raise _spec_error(spec, f"option {name!r} is given twice.")
        seen.add(name)
        base[name] = _parse_option(spec, name, value)
    try:
        # A preset keeps its name only when nothing overrides it.
        return ModelSpec(**base, preset=None if seen else preset)
    except SpecError as exc:  # quote the user's text, not the normalized one
        raise _spec_error(spec, exc.problem) from None


# ----------------------------------------------------------------------------------------------------------- building
# The module class of each activation, a fresh instance per layer; "linear" adds none.
_ACTIVATION_MODULES: dict[str, type[nn.Module] | None] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "linear": None,
}


def _activation(name: Activation) -> nn.Module | None:
    if name not in _ACTIVATION_MODULES:
        raise ValueError(f"act={name!r} is not one of {'|'.join(ACTIVATIONS)}.")
    module = _ACTIVATION_MODULES[name]
    return module() if module is not None else None


def _dense_block(spec: ModelSpec, d_in: int, d_out: int) -> list[nn.Module]:
    block: list[nn.Module] = [nn.Linear(d_in, d_out, bias=spec.bias)]
    if spec.norm == "batch":
        block.append(nn.BatchNorm1d(d_out))
    elif spec.norm == "layer":
        block.append(nn.LayerNorm(d_out))
    act = _activation(spec.act)
    if act is not None:
        block.append(act)
    if spec.dropout > 0:
        block.append(nn.Dropout(spec.dropout))
    return block


def _build_mlp(spec: ModelSpec, shape: tuple[int, ...], outputs: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    d_in = math.prod(shape)
    for width in spec.widths:
        layers += _dense_block(spec, d_in, width)
        d_in = width
    layers.append(nn.Linear(d_in, outputs, bias=spec.bias))
    return nn.Sequential(*layers)


def _build_cnn(spec: ModelSpec, shape: tuple[int, ...], outputs: int, *, dims: int) -> nn.Sequential:
    name = "cnn" if dims == 2 else "cnn1d"
    expected = "(C, H, W) or (H, W)" if dims == 2 else "(C, L) or (L,)"
    if len(shape) == dims:
        layers: list[nn.Module] = [nn.Unflatten(1, (1, *shape))]
        channels, spatial = 1, list(shape)
    elif len(shape) == dims + 1:
        layers = []
        channels, spatial = shape[0], list(shape[1:])
    else:
        raise ValueError(f"{name} needs inputs shaped {expected}, got input_shape={shape}; use mlp for flat inputs.")
    conv = nn.Conv2d if dims == 2 else nn.Conv1d
    batch_norm = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
    pool_cls = {"max": nn.MaxPool2d if dims == 2 else nn.MaxPool1d, "avg": nn.AvgPool2d if dims == 2 else nn.AvgPool1d}
    padding = spec.kernel // 2
    for i, width in enumerate(spec.widths, start=1):
        layers.append(conv(channels, width, spec.kernel, stride=spec.stride, padding=padding, bias=spec.bias))
        spatial = [(s + 2 * padding - spec.kernel) // spec.stride + 1 for s in spatial]
        if spec.norm == "batch":
            layers.append(batch_norm(width))
        elif spec.norm == "layer":
            layers.append(nn.GroupNorm(1, width))
        act = _activation(spec.act)
        if act is not None:
            layers.append(act)
        if spec.pool != "none":
            layers.append(pool_cls[spec.pool](2))
            spatial = [s // 2 for s in spatial]
        if spec.dropout > 0:
            layers.append(nn.Dropout(spec.dropout))
        if min(spatial) < 1:
            raise ValueError(
                f"{spec}: input {shape} shrinks to nothing after conv block {i} of {len(spec.widths)}; use fewer "
                "widths, pool=none, a smaller stride or a smaller kernel."
            )
        channels = width
    layers.append(nn.Flatten())
    d_in = channels * math.prod(spatial)
    for width in spec.head:
        layers += _dense_block(spec, d_in, width)
        d_in = width
    layers.append(nn.Linear(d_in, outputs, bias=spec.bias))
    return nn.Sequential(*layers)


AnySpec = ModelSpec | ResMLPSpec | ResNetSpec | TransformerSpec


def spec_from_config(config: Mapping[str, Any]) -> AnySpec:
    """The spec of a config dict (``spec.get_config()``): a :class:`ModelSpec` or a residual spec, by ``kind``."""
    kind = config.get("kind")
    if kind in RESIDUAL_SPECS:
        return RESIDUAL_SPECS[kind].from_config(config)
    return ModelSpec.from_config(config)


def structure(model: nn.Module, example: Any = None) -> nets.Structure:
    """The residual structure of a model: its blocks and branches, each branch's last layer, the residual stream's
    output projections, the embeddings, the norms and the head (:func:`initlab.nets.structure`). Declared by a model
    built from a residual spec; read from one traced forward pass on ``example`` for a model that declares nothing
    (``StructureError`` without an example, or when the model cannot be traced)."""
    return nets.structure(model, example)


def build(
    spec: str | AnySpec | Mapping[str, Any] | ModelFactory,
    *,
    input_shape: tuple[int, ...] | torch.Size,
    num_classes: int | None,
) -> nn.Module:
    """Build a model from a spec string, a :class:`ModelSpec` or residual spec, its config dict, or a factory.

    ``input_shape`` is one sample's shape (``Dataset.input_shape``) and ``num_classes`` the number of outputs
    (``Dataset.num_classes``; ``None`` gives one regression output). A factory is called as
    ``factory(input_shape, num_classes)`` and must return an ``nn.Module``.
    """
    if isinstance(spec, str):
        if not is_spec(spec):
            return build(factory.load_factory(spec), input_shape=input_shape, num_classes=num_classes)
        return parse(spec).build(input_shape, num_classes)
    if isinstance(spec, (ModelSpec, *RESIDUAL_SPECS.values())):
        return spec.build(input_shape, num_classes)
    if isinstance(spec, Mapping):
        return spec_from_config(spec).build(input_shape, num_classes)
    if isinstance(spec, nn.Module):
        raise TypeError(
            f"build() takes a spec or a factory, not a built {type(spec).__name__}: wrap it as "
            "`lambda input_shape, num_classes: model` if you mean to reuse that instance."
        )
    if callable(spec):
        model = spec(tuple(check_shape(tuple(input_shape))), num_classes)
        if not isinstance(model, nn.Module):
            raise TypeError(f"the model factory {spec!r} returned {type(model).__name__}, not a torch.nn.Module.")
        return model
    raise TypeError(
        f"a model spec must be a string, a ModelSpec, a config dict or a factory (input_shape, num_classes) -> "
        f"nn.Module; got {spec!r} of type {type(spec).__name__}."
    )


def resize(spec: str, *, width: int | None = None, depth: int | None = None) -> str:
    """The spec string of ``spec`` with ``depth`` hidden layers (or conv blocks) of ``width`` units (or channels) each.

    What a study sweeps when it varies width or depth: the architecture must have equal hidden widths (``mlp:64,64``,
    ``cnn:32,32``) so that "the width" and "the depth" mean one thing; ``None`` keeps the spec's own value. Every
    other option (activation, dropout, norm, ...) is kept.

    Residual specs: ``resmlp:WxD`` and ``transformer:WxD`` take ``width`` as W and ``depth`` as D; ``resnet`` takes
    ``width`` as its first stage's channels, the other stages scaled in proportion, and ``depth`` as its blocks per
    stage.
    """
    if not is_spec(spec):
        raise ValueError(f"--model {spec!r} is a factory of your own, whose width and depth initlab cannot change; "
                         "width and depth sweeps and muP need a model spec such as mlp:64,64.")  # fmt: skip
    parsed = parse(spec)
    if not isinstance(parsed, ModelSpec):
        for name, value in (("width", width), ("depth", depth)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise _spec_error(spec, f"{name} must be a positive integer, got {value!r}.")
        try:
            return str(parsed.resized(width, depth))
        except SpecError as exc:
            raise _spec_error(spec, exc.problem) from None
    widths = parsed.widths
    if (width is not None or depth is not None) and len(set(widths)) > 1:
        raise _spec_error(
            spec,
            f"sweeping width or depth needs equal hidden widths (e.g. mlp:64,64), not {','.join(map(str, widths))}.",
        )
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 1):
        raise _spec_error(spec, f"depth must be a positive integer, got {depth!r}.")
    if width is not None and (isinstance(width, bool) or not isinstance(width, int) or width < 1):
        raise _spec_error(spec, f"width must be a positive integer, got {width!r}.")
    if not widths and (width is None) != (depth is None):
        raise _spec_error(spec, "it has no hidden layers; sweep width and depth together, or give widths: mlp:64,64.")
    new_depth = len(widths) if depth is None else depth
    new_width = (widths[0] if widths else 1) if width is None else width
    values = {f.name: getattr(parsed, f.name) for f in fields(parsed) if f.name != "preset"}
    return str(ModelSpec(**{**values, "widths": (new_width,) * new_depth}))


def is_spec(text: str) -> bool:
    """Whether ``text`` is a model spec (``mlp:64``, ``keras-mnist``) rather than an import path of a factory."""
    return not factory.is_import_path(text, kinds=(*KINDS, *RESIDUAL_KINDS, *PRESETS))


def check(spec: str) -> None:
    """Check a model given as text before anything trains: a spec parses, an import path imports and gives a
    factory (ValueError says what is wrong)."""
    if is_spec(spec):
        parse(spec)
    else:
        factory.load_factory(spec)


def describe(spec: str | AnySpec | Mapping[str, Any] | ModelFactory) -> str:
    """The canonical text of a spec (a preset keeps its name), the import path of a factory, or a factory's
    qualified name."""
    if isinstance(spec, str) and not is_spec(spec):
        return spec.strip()
    if isinstance(spec, (str, ModelSpec, *RESIDUAL_SPECS.values())):
        parsed = parse(spec) if isinstance(spec, str) else spec
        return getattr(parsed, "preset", None) or str(parsed)
    if isinstance(spec, Mapping):
        return str(spec_from_config(spec))
    return getattr(spec, "__qualname__", repr(spec))
