"""The "auto" scheme's activation discovery: which activation follows each Linear, Bilinear, Conv or ConvTranspose
layer, and the initializer that suits it.

Discovery runs one forward pass (on ``data``, or else on a small random input built from the first layer's expected
input) in eval mode under ``no_grad`` with a forked random state, and records in call order
(:class:`initlab.tracing.Recorder`):

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

import logging
from collections.abc import Iterator
from typing import Any, Literal

import torch
from torch import nn

from initlab.catalog import GlorotNormal, HeNormal, Initializer, LeCunNormal, VarianceScaling
from initlab.gains import gain, numeric_gain
from initlab.tracing import (
    CONV_TRANSPOSE_TYPES,
    CONV_TYPES,
    EMBEDDING_TYPES,
    FEEDFORWARD_TYPES,
    Activation,
    ModelInput,
    Recorder,
    classify_module,
    hooked,
    inspection,
    leaves,
    run_model,
)

logger = logging.getLogger(__name__)

Choice = Literal["he", "lecun", "glorot", "numeric"]

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


def _record(model: nn.Module, data: ModelInput | None) -> list[tuple[str, Any]] | None:
    """The events of one forward pass, or ``None`` if no forward pass could be run."""
    candidates: list[Any] = [data] if data is not None else sample_inputs(model)
    if not candidates:
        logger.info("auto: no input given and none could be built from the first layer; using nn.Sequential order.")
        return None
    last_error: Exception | None = None
    for inputs in candidates:
        recorder = Recorder()
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
                for leaf in leaves(sibling):
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
