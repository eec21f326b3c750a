"""What every model spec shares: the grammar text quoted by every error, :class:`SpecError`, the activations and
norms by name, the size limit, and the parsers of integers, width lists and booleans (:mod:`initlab.models` for the
plain kinds, :mod:`initlab._residual_specs` for the residual ones)."""

from __future__ import annotations

from typing import Literal

Activation = Literal["relu", "tanh", "sigmoid", "selu", "gelu", "leaky_relu", "linear"]
Norm = Literal["none", "batch", "layer"]

ACTIVATIONS: tuple[Activation, ...] = ("relu", "tanh", "sigmoid", "selu", "gelu", "leaky_relu", "linear")
NORMS: tuple[Norm, ...] = ("none", "batch", "layer")

SPEC_GRAMMAR = """\
Model spec grammar: KIND[:W1,W2,...][;KEY=VALUE]...
  mlp[:W1,W2,...]    dense layers of these widths            e.g. mlp:256,128;act=tanh;dropout=0.2;bias=false;norm=batch
  cnn:C1,C2,...      2-D conv blocks of these channels        e.g. cnn:32,64;kernel=3;pool=max;head=128
  cnn1d:C1,C2,...    1-D conv blocks (MNIST-1D)               e.g. cnn1d:32,32;kernel=5;stride=2;pool=none
  keras-mnist        Dense(256, relu), Dropout(0.2), Dense(128, relu), Dropout(0.2), Dense(classes)
  resmlp[:WxD]       D residual MLP blocks of width W         e.g. resmlp:64x8;norm=layer
  resnet[:C1,C2,...] a ResNet stage per channel count         e.g. resnet:16,32,64;blocks=2;norm=batch
  transformer[:DxL]  L transformer blocks of width D          e.g. transformer:64x4;heads=4;ln=pre;task=classify
options: act=relu|tanh|sigmoid|selu|gelu|leaky_relu|linear  dropout=P in [0,1)  bias=true|false  norm=none|batch|layer
         cnn/cnn1d only: kernel=K  stride=S  pool=max|avg|none  head=W1[,W2...]
         resmlp: act norm dropout bias    resnet: blocks=B (per stage)  norm (default batch)  act
         transformer: heads=H  ln=pre|post|none|deepnorm  task=classify|lm  patch=P  ffn=F  vocab=V  act (default gelu)
           dropout  bias
widths are positive integers; input and output sizes come from the data set."""

#: The most parameters a model spec may build (4 GB of float32), checked on the meta device before allocating.
MAX_PARAMETERS = 1_000_000_000


class SpecError(ValueError):
    """A model spec that does not parse or does not make sense; the message ends with :data:`SPEC_GRAMMAR`."""

    def __init__(self, spec: object, problem: str) -> None:
        super().__init__(f"bad model spec {spec!r}: {problem}\n{SPEC_GRAMMAR}")
        self.problem = problem


def spec_error(spec: object, problem: str) -> SpecError:
    return SpecError(spec, problem)


def format_value(value: object) -> str:
    """An option value as a spec writes it: ``true``/``false``, ``256,128``, ``0.2``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def check_widths(spec: object, name: str, widths: object) -> tuple[int, ...]:
    """``widths`` as a tuple of positive integers (one integer is a tuple of one); ``SpecError`` otherwise."""
    if isinstance(widths, int) and not isinstance(widths, bool):
        widths = (widths,)
    if isinstance(widths, str) or not isinstance(widths, (tuple, list)):
        raise spec_error(spec, f"{name} must be a sequence of positive integers, got {widths!r}.")
    for w in widths:
        if isinstance(w, bool) or not isinstance(w, int):
            raise spec_error(spec, f"{name} must be positive integers, got {w!r}.")
        if w < 1:
            raise spec_error(spec, f"{name} must be positive integers, got {w}.")
    return tuple(widths)


def outputs(num_classes: int | None) -> int:
    """The output units for ``num_classes``: the classes, or 1 for regression (``None``)."""
    if num_classes is None:
        return 1
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer or None (regression), got {num_classes!r}.")
    return num_classes


def parse_int(spec: str, name: str, text: str) -> int:
    """A positive integer from spec text; ``SpecError`` naming ``name`` otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise spec_error(spec, f"{name} {text!r} is not a positive integer.") from None
    if value < 1:
        raise spec_error(spec, f"{name} must be a positive integer, got {value}.")
    return value


def parse_int_list(spec: str, name: str, text: str) -> tuple[int, ...]:
    """Comma-separated positive integers (``256,128``) from spec text."""
    items = [t.strip() for t in text.split(",")]
    if any(not t for t in items):
        raise spec_error(spec, f"{name} {text!r} has an empty entry; write them like 256,128.")
    return tuple(parse_int(spec, f"{name} entry" if name == "head" else "width", t) for t in items)


def parse_bool(spec: str, name: str, text: str) -> bool:
    """``true``/``false`` (also 1/0, yes/no, on/off) from spec text."""
    lowered = text.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise spec_error(spec, f"{name}={text!r} is not true or false.")
