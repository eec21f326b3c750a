"""The "auto" scheme's activation discovery: which activation follows each Linear, Bilinear, Conv or ConvTranspose
layer, and the initializer that suits it.

Discovery runs one forward pass (on ``data``, or else on a small random input built from the first layer's expected
input) in eval mode under ``no_grad`` with a forked random state, and records, in call order:

* every leaf module's output (forward hooks): layers, activation modules, and modules that pass the signal through
  unchanged in scale (normalization, dropout, pooling, padding, reshaping), which are skipped;
* every functional activation called outside a leaf module (a ``torch.overrides.TorchFunctionMode``), so that
  ``F.relu(self.fc(x))`` in a custom ``forward`` is seen too.

A layer's activation is the first activation recorded after the layer's first call; the next weight layer (or the
end of the pass) means none follows. This is call order, not data flow: in a residual block whose shortcut
convolution runs between a convolution and its activation, the convolution is seen as followed by no activation.
Layers the pass did not reach, or every layer when the pass fails, fall back to module order inside
``nn.Sequential`` containers.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F  # noqa: N812  (the name every torch user knows)
from torch import nn
from torch.overrides import TorchFunctionMode

from initlab.catalog import GlorotNormal, HeNormal, Initializer, LeCunNormal, VarianceScaling
from initlab.gains import gain, numeric_gain
from initlab.schemes._forward import ModelInput, inspection, run_model
from initlab.schemes._roles import (
    CONV_TRANSPOSE_TYPES,
    CONV_TYPES,
    EMBEDDING_TYPES,
    FEEDFORWARD_TYPES,
    NORM_TYPES,
)

logger = logging.getLogger(__name__)

ActivationKind = Literal["relu", "selu", "tanh", "sigmoid", "other", "none"]
Choice = Literal["he", "lecun", "glorot", "numeric"]


@dataclass(frozen=True)
class Activation:
    """The activation found after a layer.

    ``kind`` ``"relu"`` covers the ReLU family with negative ``slope`` (LeakyReLU's slope, PReLU's mean slope,
    RReLU's mean slope (lower + upper)/2); ``"other"`` carries the function ``fn`` whose numeric gain is used;
    ``"none"`` means no activation follows (an output layer, or softmax). ``source`` says how it was found:
    ``"forward"`` (the forward pass), ``"sequential"`` (module order in an ``nn.Sequential``) or ``"unknown"``.
    """

    kind: ActivationKind
    label: str
    slope: float = 0.0
    fn: Callable[[torch.Tensor], torch.Tensor] | None = field(default=None, compare=False, repr=False)
    source: str = "forward"

    def describe(self) -> str:
        return f"{self.label} [{self.source}]"


NONE = Activation("none", "none")


def choose_initializer(activation: Activation) -> tuple[Initializer, float, Choice]:
    """The initializer "auto" uses for a weight followed by ``activation``, its gain, and which rule it follows.

    ==========================  ==============================================================  =================
    activation                  initializer (every one a truncated normal, as Keras' presets)   gain
    ==========================  ==============================================================  =================
    ReLU family, slope ``a``    He: VarianceScaling(2/(1+a²), "fan_in") (He et al. 2015)        √(2/(1+a²))
    SELU                        LeCun normal, variance 1/fan_in (Klambauer et al. 2017)         1
    tanh                        Glorot with gain 5/3: VarianceScaling(25/9, "fan_avg")          5/3
    sigmoid                     Glorot normal, variance 2/(fan_in+fan_out) (Glorot & Bengio)    1
    none (output layer)         LeCun normal, variance 1/fan_in                                 1
    anything else, ``f``        VarianceScaling(g², "fan_in"), g = 1/√E[f(z)²], z ~ N(0, 1)     g (numeric)
    ==========================  ==============================================================  =================
    """
    if activation.kind == "relu":
        g = gain("leaky_relu", activation.slope)
        init = HeNormal() if activation.slope == 0.0 else VarianceScaling(g**2, "fan_in", "truncated_normal")
        return init, g, "he"
    if activation.kind in ("selu", "none"):
        return LeCunNormal(), 1.0, "lecun"
    if activation.kind == "tanh":
        g = gain("tanh")
        return VarianceScaling(g**2, "fan_avg", "truncated_normal"), g, "glorot"
    if activation.kind == "sigmoid":
        return GlorotNormal(), 1.0, "glorot"
    if activation.kind == "other" and activation.fn is not None:
        g = numeric_gain(activation.fn)
        return VarianceScaling(g**2, "fan_in", "truncated_normal"), g, "numeric"
    raise ValueError(f"no initializer rule for activation {activation!r}.")


# -- classification of modules and functions ---------------------------------------------------------------------
# torch.nn classes (and private bases, matched by name so that a torch upgrade that moves them does not break this)
# that change the signal's scale by a factor the next layer does not care about, or not at all.
_SKIPPED_NAMES: frozenset[str] = frozenset(
    {
        "_DropoutNd",
        "AlphaDropout",
        "FeatureAlphaDropout",
        "_MaxPoolNd",
        "_AvgPoolNd",
        "_AdaptiveAvgPoolNd",
        "_AdaptiveMaxPoolNd",
        "_LPPoolNd",
        "FractionalMaxPool2d",
        "FractionalMaxPool3d",
        "_ConstantPadNd",
        "_ReflectionPadNd",
        "_ReplicationPadNd",
        "_CircularPadNd",
        "Flatten",
        "Unflatten",
        "Identity",
        "Upsample",
        "PixelShuffle",
        "PixelUnshuffle",
        "ChannelShuffle",
        "LocalResponseNorm",
        "CrossMapLRN2d",
    }
)
# Not elementwise: the signal ends in a distribution (an output layer); no gain applies.
_TERMINAL_NAMES: frozenset[str] = frozenset({"Softmax", "LogSoftmax", "Softmin", "Softmax2d", "GLU"})

Event = tuple[Literal["layer", "stop", "act", "skip"], Any]


def _torch_names(cls: type) -> set[str]:
    return {c.__name__ for c in cls.__mro__ if c.__module__.startswith("torch.nn")}


def classify_module(module: nn.Module) -> Event:
    """What a module means for the layer before it: ``("layer", m)``, ``("stop", reason)``, ``("act", Activation)``
    or ``("skip", None)``."""
    if isinstance(module, FEEDFORWARD_TYPES):
        return "layer", module
    if isinstance(module, nn.PReLU):
        slope = float(module.weight.detach().float().mean())  # its value now: a scheme may set it later
        return "act", Activation("relu", f"PReLU(mean slope {slope:.3g})", slope)
    if isinstance(module, (nn.ReLU, nn.ReLU6)):
        return "act", Activation("relu", type(module).__name__)
    if isinstance(module, nn.LeakyReLU):
        return "act", Activation("relu", f"LeakyReLU({module.negative_slope:g})", float(module.negative_slope))
    if isinstance(module, nn.RReLU):
        slope = (module.lower + module.upper) / 2.0  # the slope RReLU uses in eval mode
        return "act", Activation("relu", f"RReLU(mean slope {slope:.3g})", slope)
    if isinstance(module, nn.SELU):
        return "act", Activation("selu", "SELU")
    if isinstance(module, nn.Tanh):
        return "act", Activation("tanh", "Tanh")
    if isinstance(module, nn.Sigmoid):
        return "act", Activation("sigmoid", "Sigmoid")
    if isinstance(module, NORM_TYPES):
        return "skip", None
    names = _torch_names(type(module))
    if names & _SKIPPED_NAMES:
        return "skip", None
    if names & _TERMINAL_NAMES:
        return "stop", f"{type(module).__name__} (not elementwise)"
    if any(True for _ in module.parameters(recurse=False)) or isinstance(module, nn.MultiheadAttention):
        return "stop", type(module).__name__
    if type(module).__module__ == "torch.nn.modules.activation":
        return "act", Activation("other", type(module).__name__, fn=module)
    return _probe(module)


def _probe(module: nn.Module) -> Event:
    """A parameter-free module initlab does not know: an activation if it maps a 1-D tensor elementwise to a
    different tensor of the same shape; skipped if it returns its input or does not take a 1-D tensor."""
    z = torch.linspace(-3.0, 3.0, 61)
    try:
        with torch.no_grad():
            y = module(z.clone())
    except Exception:  # any failure means "not an elementwise function of one tensor"; nothing to report
        return "skip", None
    if not isinstance(y, torch.Tensor) or y.shape != z.shape or torch.equal(y, z):
        return "skip", None
    return "act", Activation("other", type(module).__name__, fn=module)


def _functional_table() -> dict[Any, Callable[[tuple[Any, ...], dict[str, Any]], Activation | str]]:
    """Functional activations by function object: each maps the call's arguments to an Activation (or to a
    reason string when the call ends the signal). Built per discovery; nothing is cached at module level."""

    def fixed(kind: ActivationKind, label: str) -> Callable[..., Activation]:
        return lambda args, kwargs: Activation(kind, label)

    def leaky(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Activation:
        slope = float(args[1] if len(args) > 1 else kwargs.get("negative_slope", 0.01))
        return Activation("relu", f"leaky_relu({slope:g})", slope)

    def rrelu(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Activation:
        lower = float(args[1] if len(args) > 1 else kwargs.get("lower", 1.0 / 8.0))
        upper = float(args[2] if len(args) > 2 else kwargs.get("upper", 1.0 / 3.0))
        return Activation("relu", f"rrelu(mean slope {(lower + upper) / 2:.3g})", (lower + upper) / 2.0)

    def prelu(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Activation:
        weight = args[1] if len(args) > 1 else kwargs["weight"]
        slope = float(weight.detach().float().mean())
        return Activation("relu", f"prelu(mean slope {slope:.3g})", slope)

    def other(func: Callable[..., torch.Tensor]) -> Callable[..., Activation]:
        def make(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Activation:
            rest, kw = args[1:], dict(kwargs)
            return Activation("other", getattr(func, "__name__", repr(func)), fn=lambda z: func(z, *rest, **kw))

        return make

    def terminal(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        return "softmax (not elementwise)"

    T = torch.Tensor
    groups: list[tuple[tuple[Any, ...], Callable[..., Activation | str]]] = [
        ((F.relu, F.relu_, torch.relu, torch.relu_, T.relu, T.relu_), fixed("relu", "relu")),
        ((F.relu6,), fixed("relu", "relu6")),
        ((F.leaky_relu, F.leaky_relu_), leaky),
        ((F.rrelu, F.rrelu_, torch.rrelu), rrelu),
        ((F.prelu, torch.prelu), prelu),
        ((F.selu, F.selu_, torch.selu, torch.selu_), fixed("selu", "selu")),
        ((F.tanh, torch.tanh, torch.tanh_, T.tanh, T.tanh_), fixed("tanh", "tanh")),
        ((F.sigmoid, torch.sigmoid, torch.sigmoid_, T.sigmoid, T.sigmoid_), fixed("sigmoid", "sigmoid")),
        (
            (F.softmax, F.log_softmax, F.softmin, F.glu, torch.softmax, torch.log_softmax, T.softmax, T.log_softmax),
            terminal,
        ),
    ]
    table: dict[Any, Callable[..., Activation | str]] = {}
    for funcs, make in groups:
        for func in funcs:
            table[func] = make
    for func in (
        F.gelu,
        F.silu,
        F.elu,
        F.elu_,
        F.celu,
        F.mish,
        F.softplus,
        F.hardswish,
        F.hardsigmoid,
        F.logsigmoid,
        F.softsign,
        F.tanhshrink,
        F.hardtanh,
        F.hardtanh_,
        F.softshrink,
        F.hardshrink,
    ):
        table[func] = other(func)
    return table


class _Recorder(TorchFunctionMode):
    """Records layer outputs and activations in call order during one forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, Any]] = []  # ("module", m) or ("act", Activation) or ("stop", reason)
        self.depth = 0  # > 0 while a hooked leaf module runs: its internal calls are its own business
        self.table = _functional_table()

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if self.depth == 0:
            try:
                make = self.table.get(func)
            except TypeError:  # an unhashable callable
                make = None
            if make is not None:
                found = make(args, kwargs)
                self.events.append(("act", found) if isinstance(found, Activation) else ("stop", found))
        return func(*args, **kwargs)

    def pre_hook(self, module: nn.Module, args: Any) -> None:
        self.depth += 1

    def post_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        self.depth -= 1
        self.events.append(("module", module))


def _leaves(model: nn.Module) -> Iterator[nn.Module]:
    """Modules with no children, plus MultiheadAttention (its out_proj is not called as a module)."""
    skip: set[int] = set()
    for module in model.modules():
        if id(module) in skip:
            continue
        if isinstance(module, nn.MultiheadAttention):
            skip.update(id(m) for m in module.modules())
            yield module
        elif not any(True for _ in module.children()):
            yield module


def sample_inputs(model: nn.Module) -> list[tuple[Any, ...]]:
    """Candidate inputs built from the first layer's expected input (in module order); empty if none can be built.

    Drawn from a private generator seeded 0, so building them touches no global random state."""
    first = next(
        (m for m in model.modules() if isinstance(m, (*FEEDFORWARD_TYPES, *EMBEDDING_TYPES, nn.RNNBase))), None
    )
    if first is None:
        return []
    params = list(first.parameters(recurse=False))
    if not params or isinstance(params[0], nn.parameter.UninitializedParameter):
        return []
    device, dtype = params[0].device, params[0].dtype
    gen = torch.Generator().manual_seed(0)

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=gen).to(device=device, dtype=dtype)

    if isinstance(first, nn.Bilinear):
        return [(randn(2, first.in1_features), randn(2, first.in2_features))]
    if isinstance(first, nn.Linear):
        return [(randn(2, first.in_features),)]
    if isinstance(first, CONV_TYPES + CONV_TRANSPOSE_TYPES):
        dims = len(first.kernel_size)
        sizes = {1: (64, 256), 2: (32, 96), 3: (16, 32)}[dims]
        return [(randn(2, first.in_channels, *([s] * dims)),) for s in sizes]
    if isinstance(first, EMBEDDING_TYPES):
        return [(torch.randint(0, first.num_embeddings, (2, 8), generator=gen).to(device),)]
    if isinstance(first, nn.RNNBase):
        shape = (2, 5, first.input_size) if first.batch_first else (5, 2, first.input_size)
        return [(randn(*shape),)]
    return []


@contextlib.contextmanager
def hooked(model: nn.Module, recorder: _Recorder) -> Iterator[_Recorder]:
    """Record a forward pass: ``recorder``'s hooks on every leaf module (call order) and its functional-activation
    mode, both removed on exit whatever happens."""
    handles = []
    for leaf in _leaves(model):
        handles.append(leaf.register_forward_pre_hook(recorder.pre_hook))
        handles.append(leaf.register_forward_hook(recorder.post_hook))
    try:
        with recorder:
            yield recorder
    finally:
        for h in handles:
            h.remove()


def _record(model: nn.Module, data: ModelInput | None) -> list[tuple[str, Any]] | None:
    """The events of one forward pass, or ``None`` if no forward pass could be run."""
    candidates: list[Any] = [data] if data is not None else sample_inputs(model)
    if not candidates:
        logger.info("auto: no input given and none could be built from the first layer; using nn.Sequential order.")
        return None
    last_error: Exception | None = None
    for inputs in candidates:
        recorder = _Recorder()
        try:
            with inspection(model), hooked(model, recorder):
                run_model(model, inputs)
            return recorder.events
        except Exception as err:  # a forward pass on a guessed input may fail in any way; fall back, log why
            last_error = err
    if data is not None:
        raise ValueError(f"the 'auto' scheme could not run the model on the given data: {last_error}") from last_error
    logger.info("auto: a forward pass on a built input failed (%s); using nn.Sequential order.", last_error)
    return None


def _follow(events: Iterator[tuple[str, Any]], source: str) -> Activation | None:
    """The activation that the first decisive event gives, ``NONE`` if a weight layer or the end comes first."""
    for kind, what in events:
        if kind == "act":
            return _with_source(what, source)
        if kind == "stop":
            return Activation("none", f"none (then {what})", source=source)
        if kind == "module":
            cls, value = classify_module(what)
            if cls == "act":
                return _with_source(value, source)
            if cls == "layer":
                return Activation("none", f"none (then {type(what).__name__})", source=source)
            if cls == "stop":
                return Activation("none", f"none (then {value})", source=source)
    return None


def _with_source(act: Activation, source: str) -> Activation:
    return Activation(act.kind, act.label, act.slope, act.fn, source)


def _sequential_followers(model: nn.Module, layer: nn.Module) -> tuple[Iterator[tuple[str, Any]], bool]:
    """Modules after ``layer`` in module order within the ``nn.Sequential`` containers around it (climbing out of
    nested ones), and whether ``layer`` sits in an ``nn.Sequential`` at all."""
    parents: dict[int, nn.Module] = {}
    for module in model.modules():
        for child in module.children():
            parents.setdefault(id(child), module)
    in_sequential = isinstance(parents.get(id(layer)), nn.Sequential)

    def walk() -> Iterator[tuple[str, Any]]:
        node = layer
        while isinstance(parent := parents.get(id(node)), nn.Sequential):
            siblings = list(parent.children())
            index = next(i for i, s in enumerate(siblings) if s is node)
            for sibling in siblings[index + 1 :]:
                for leaf in _leaves(sibling):
                    yield "module", leaf
            node = parent

    return walk(), in_sequential


def discover_activations(model: nn.Module, data: ModelInput | None = None) -> dict[int, Activation]:
    """For each Linear, Bilinear, Conv and ConvTranspose module (by ``id``), the activation that follows it."""
    events = _record(model, data)
    first_call: dict[int, int] = {}
    if events is not None:
        for i, (kind, what) in enumerate(events):
            if kind == "module" and isinstance(what, FEEDFORWARD_TYPES):
                first_call.setdefault(id(what), i)
    found: dict[int, Activation] = {}
    for module in model.modules():
        if not isinstance(module, FEEDFORWARD_TYPES):
            continue
        if events is not None and id(module) in first_call:
            act = _follow(iter(events[first_call[id(module)] + 1 :]), "forward")
            found[id(module)] = act or Activation("none", "none (end of the forward pass)", source="forward")
            continue
        followers, in_sequential = _sequential_followers(model, module)
        act = _follow(followers, "sequential")
        if act is None:
            act = (
                Activation("none", "none (last in its nn.Sequential)", source="sequential")
                if in_sequential
                else Activation(
                    "none", "none (not reached by a forward pass, not in an nn.Sequential)", source="unknown"
                )
            )
        found[id(module)] = act
    return found
