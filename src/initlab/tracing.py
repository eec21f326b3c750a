"""Tracing a forward pass: run a model on its inputs without changing it, and record in call order what each layer
and each activation did. The "auto" scheme reads the record to find the activation after each layer
(:func:`initlab.schemes.discover_activations`); diagnostics read it, with the outputs kept, for per-layer statistics
(:func:`initlab.diagnostics.diagnose`).

* **Inputs.** :data:`ModelInput` is one tensor, a tuple/list of positional inputs or a dict of keyword inputs;
  :func:`run_model` calls the model with it and :func:`check_data` rejects any other form before a pass starts.
* **No trace left.** :func:`inspection` runs the pass in eval mode (dropout off; normalization layers use, and leave,
  their running statistics) with a forked random state, and puts every module's train/eval flag back.
* **Module types.** The tables (:data:`FEEDFORWARD_TYPES`, :data:`NORM_TYPES`, ...) say which torch.nn classes are
  layers, normalizations and embeddings; :func:`classify_module` says what a module means for the layer before it.
* **The record.** A :class:`Recorder` inside :func:`hooked` sees every leaf module's output (forward hooks) and
  every functional activation called outside a leaf module (a ``torch.overrides.TorchFunctionMode``), so
  ``F.relu(self.fc(x))`` in a custom ``forward`` is seen too.

This module sits below :mod:`initlab.schemes` and :mod:`initlab.diagnostics` and imports neither.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F  # noqa: N812  (the name every torch user knows)
from torch import nn
from torch.overrides import TorchFunctionMode

# -- module types ------------------------------------------------------------------------------------------------
LINEAR_TYPES: tuple[type[nn.Module], ...] = (nn.Linear,)
CONV_TYPES: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
CONV_TRANSPOSE_TYPES: tuple[type[nn.Module], ...] = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
EMBEDDING_TYPES: tuple[type[nn.Module], ...] = (nn.Embedding, nn.EmbeddingBag)
NORM_TYPES: tuple[type[nn.Module], ...] = tuple(
    t
    for t in (
        nn.BatchNorm1d,
        nn.BatchNorm2d,
        nn.BatchNorm3d,
        nn.SyncBatchNorm,
        nn.InstanceNorm1d,
        nn.InstanceNorm2d,
        nn.InstanceNorm3d,
        nn.LayerNorm,
        nn.GroupNorm,
        getattr(nn, "RMSNorm", None),  # torch >= 2.4
    )
    if t is not None
)
#: Layers whose weight feeds an activation directly: the ones the "auto" scheme and LSUV act on, and the layers of a
#: diagnosis.
FEEDFORWARD_TYPES: tuple[type[nn.Module], ...] = (*LINEAR_TYPES, nn.Bilinear, *CONV_TYPES, *CONV_TRANSPOSE_TYPES)


# -- running a model for inspection ------------------------------------------------------------------------------
#: What ``data`` may be: one input tensor, a tuple or list of positional inputs, or a dict of keyword inputs.
ModelInput = torch.Tensor | tuple[Any, ...] | list[Any] | Mapping[str, Any]


def run_model(model: nn.Module, data: ModelInput) -> Any:
    """``model(data)``, ``model(*data)`` or ``model(**data)`` for a tensor, a tuple/list or a dict."""
    if isinstance(data, torch.Tensor):
        return model(data)
    if isinstance(data, (tuple, list)):
        return model(*data)
    if isinstance(data, Mapping):
        return model(**data)
    raise TypeError(
        "data must be a tensor, a tuple or list of positional inputs, or a dict of keyword inputs (the model's "
        f"inputs only, not the targets), got {type(data).__name__}."
    )


def check_data(data: object) -> None:
    """Raise ``TypeError`` now, rather than in the middle of a forward pass, if ``data`` has an unusable form, and
    ``ValueError`` if a floating-point tensor in it holds NaN or infinity (every statistic measured on it would be
    NaN, and read as a dead or exploding layer)."""
    if not isinstance(data, (torch.Tensor, tuple, list, Mapping)):
        run_model(nn.Identity(), data)  # type: ignore[arg-type]  # raises the TypeError with the message
    tensors = [data] if isinstance(data, torch.Tensor) else list(data.values() if isinstance(data, Mapping) else data)
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            bad = int((~torch.isfinite(t)).sum())
            if bad:
                raise ValueError(f"the data holds {bad} non-finite value(s) (NaN or infinity) of {t.numel()}; "
                                 "measurements on it would be NaN. Clean or impute the batch first.")  # fmt: skip


@contextlib.contextmanager
def inspection(model: nn.Module, *, grad: bool = False) -> Iterator[None]:
    """Eval mode (dropout off; normalization layers use their running statistics and leave them unchanged), a forked
    random state, and ``no_grad`` (``grad=False``) or ``enable_grad`` (``grad=True``, for a diagnosis that
    back-propagates), all put back on exit, module by module (a model may mix train and eval submodules)."""
    modes = [(m, m.training) for m in model.modules()]
    devices = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    try:
        with torch.random.fork_rng(devices=devices), torch.enable_grad() if grad else torch.no_grad():
            model.eval()
            yield
    finally:
        for module, training in modes:
            module.training = training


# -- activations -------------------------------------------------------------------------------------------------
ActivationKind = Literal["relu", "selu", "tanh", "sigmoid", "other", "none"]


@dataclass(frozen=True)
class Activation:
    """The activation found after a layer (by :func:`classify_module` or a functional call in a :class:`Recorder`).

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


# -- the record of a forward pass --------------------------------------------------------------------------------
def first_tensor(value: Any) -> torch.Tensor | None:
    """``value`` if it is a tensor, the first element of a tuple or list that starts with one, else ``None``."""
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    return None


class Recorder(TorchFunctionMode):
    """Records layer outputs and activations in call order during one forward pass (use it through :func:`hooked`).

    ``events`` holds ``("module", m)`` for each leaf module call (when it returns), ``("act", Activation)`` for a
    functional activation and ``("stop", reason)`` for a functional call that ends the signal (softmax). Calls made
    inside a hooked leaf module are its own business and are not recorded. With ``keep_outputs``, ``outputs[i]`` is
    the output of event ``i`` and ``snapshots[i]`` a detached copy of its (first) tensor, taken before any later
    in-place operation can change it.
    """

    def __init__(self, *, keep_outputs: bool = False) -> None:
        super().__init__()
        self.events: list[tuple[str, Any]] = []
        self.depth = 0  # > 0 while a hooked leaf module runs
        self.table = _functional_table()
        self.keep_outputs = keep_outputs
        self.outputs: dict[int, Any] = {}
        self.snapshots: dict[int, torch.Tensor] = {}

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        index: int | None = None
        if self.depth == 0:
            try:
                make = self.table.get(func)
            except TypeError:  # an unhashable callable
                make = None
            if make is not None:
                found = make(args, kwargs)
                index = len(self.events)
                self.events.append(("act", found) if isinstance(found, Activation) else ("stop", found))
        output = func(*args, **kwargs)
        if index is not None and self.keep_outputs:
            self._keep(index, output)
        return output

    def pre_hook(self, module: nn.Module, args: Any) -> None:
        self.depth += 1

    def post_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        self.depth -= 1
        self.events.append(("module", module))
        if self.keep_outputs:
            self._keep(len(self.events) - 1, output)

    def _keep(self, index: int, output: Any) -> None:
        self.outputs[index] = output
        tensor = first_tensor(output)
        if tensor is not None:
            self.snapshots[index] = tensor.detach().clone()


def leaves(model: nn.Module) -> Iterator[nn.Module]:
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


@contextlib.contextmanager
def hooked(model: nn.Module, recorder: Recorder) -> Iterator[Recorder]:
    """Record a forward pass: ``recorder``'s hooks on every leaf module (call order) and its functional-activation
    mode, both removed on exit whatever happens."""
    handles = []
    for leaf in leaves(model):
        handles.append(leaf.register_forward_pre_hook(recorder.pre_hook))
        handles.append(leaf.register_forward_hook(recorder.post_hook))
    try:
        with recorder:
            yield recorder
    finally:
        for h in handles:
            h.remove()
