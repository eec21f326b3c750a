"""Measuring a model on one batch: per-layer statistics in call order, and gradients (the input-output Jacobian is
:mod:`initlab.diagnostics.jacobian`).

A *layer* is one call of a Linear, Bilinear, Conv or ConvTranspose module together with the activation that follows
it (a module such as ``nn.ReLU`` or a functional call such as ``F.relu``), found from the record of a forward pass
(:class:`initlab.tracing.Recorder`) as the "auto" scheme finds it: the first activation recorded after the layer's
call, before the next weight layer.
A normalization module between the two is part of the layer: the *pre-activation* is the activation's input (the
normalization's output when there is one). Embeddings, recurrent layers and attention are not analysed as layers.

Units are output features (the last dimension) of Linear and Bilinear layers and channels (dimension 1) of
convolutions; a unit's values over the batch (and over positions, for a convolution) decide whether it is dead or
duplicates another unit.

The pass runs in eval mode (dropout off; normalization layers use their running statistics), with a forked random
state, and leaves the model's modes and its parameters' ``.grad`` as they were.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812  (the name every torch user knows)
from torch import nn

from initlab.checks import check_choice
from initlab.fileio import json_safe
from initlab.tracing import (
    CONV_TRANSPOSE_TYPES,
    CONV_TYPES,
    EMBEDDING_TYPES,
    FEEDFORWARD_TYPES,
    NORM_TYPES,
    Activation,
    ModelInput,
    Recorder,
    check_data,
    classify_module,
    first_tensor,
    hooked,
    run_model,
)

logger = logging.getLogger("initlab.diagnostics")

#: A tanh unit counts as saturated where |tanh(x)| > 0.99, i.e. |x| > 2.65: its derivative 1 - tanh² is below 0.02,
#: so it passes less than 2% of the gradient (LeCun et al. 1998, "Efficient BackProp", §4.4).
TANH_SATURATION = 0.99
#: A sigmoid unit counts as saturated where σ(x) < 0.01 or σ(x) > 0.99, i.e. |x| > 4.6: its derivative σ(1-σ) is
#: below 0.0099, 4% of its peak 0.25 (Glorot & Bengio 2010 watch sigmoid units saturate at 0 in deep nets).
SIGMOID_SATURATION = 0.01
#: Bins of the per-layer histograms of activations and gradients: 50 equal bins over the observed range, as in the
#: "activation values per layer" histograms of Glorot & Bengio 2010 (Fig. 3, 6, 7); enough to show a spike at 0 or
#: a pile-up at ±1 while keeping a stored diagnosis small (about 1 kB per histogram as JSON).
HISTOGRAM_BINS = 50


@dataclass(frozen=True)
class Histogram:
    """Counts of values in ``bins`` equal bins: ``edges`` has one more entry than ``counts``.

    Only finite values are counted (``nonfinite`` says how many were not); the range is the finite values' minimum
    to maximum, widened to ±0.5 around a constant (all zeros, say) so that it still has a width.
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    nonfinite: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts)

    def to_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "counts": list(self.counts), "nonfinite": self.nonfinite}


def _histc(values: torch.Tensor, bins: int, lo: float, hi: float) -> torch.Tensor:
    """``torch.histc(values, bins, lo, hi)`` as int64 counts, for ``values`` within [lo, hi], 2-3x faster on the CPU
    (histc's CPU kernel is one scalar loop: 9-25 ms for a 256-sample batch of a 16-channel 28x28 convolution's
    outputs, a third of diagnosing a small CNN). The same arithmetic as histc's equal-width bins: bin
    ``⌊(x - lo)·bins / (hi - lo)⌋`` computed in the values' dtype, with lo and hi rounded to it, and the maximum in
    the last bin, so every value is counted exactly once; a property test holds the counts equal to histc's."""
    lo_t = torch.tensor(lo, dtype=values.dtype, device=values.device)
    span = torch.tensor(hi, dtype=values.dtype, device=values.device) - lo_t
    pos = (values - lo_t).mul_(bins).div_(span).long().clamp_(0, bins - 1)
    return torch.bincount(pos, minlength=bins)


def histogram(values: torch.Tensor, bins: int = HISTOGRAM_BINS) -> Histogram | None:
    """The :class:`Histogram` of ``values`` (any shape, any device), or ``None`` when no value is finite."""
    flat = values.detach().reshape(-1)
    flat = flat if flat.dtype in (torch.float32, torch.float64) else flat.double()
    if flat.numel() == 0:
        return None
    # min and max propagate NaN, so finite extremes mean every value is finite (one pass instead of three).
    lo, hi = (float(v) for v in torch.aminmax(flat))
    finite = flat
    if not (math.isfinite(lo) and math.isfinite(hi)):
        finite = flat[torch.isfinite(flat)]
        if finite.numel() == 0:
            return None
        lo, hi = (float(v) for v in torch.aminmax(finite))
    if hi - lo <= 1e-12 * max(1.0, abs(lo)):
        lo, hi = lo - 0.5, hi + 0.5
    counts = _histc(finite, bins, lo, hi).cpu()
    edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
    return Histogram(
        edges=tuple(float(e) for e in edges),
        counts=tuple(int(c) for c in counts),
        nonfinite=int(flat.numel() - finite.numel()),
    )


@dataclass(frozen=True)
class LayerStats:
    """Statistics of one layer (a weight layer and the activation after it) on one batch.

    ``mean``/``std`` are those of the layer's output (the activation's output, or the weight layer's output when no
    activation follows); ``pre_mean``/``pre_std`` those of the activation's input. ``saturated`` is the fraction of
    output values near the limits of tanh or sigmoid (:data:`TANH_SATURATION`, :data:`SIGMOID_SATURATION`);
    ``dead`` the fraction of ReLU-family units whose pre-activation is ≤ 0 on every sample (and position) of the
    batch. ``duplicates`` counts units that duplicate an earlier unit of the layer: identical weight rows (bias
    included), or identical non-constant activations over the batch (``duplicate_rows``, ``duplicate_activations``:
    the larger is ``duplicates``). Gradients (with targets only): the std of ∂loss/∂output and of ∂loss/∂weight,
    and the Frobenius norm of ∂loss/∂weight. ``hist`` is the histogram of the layer's output values over the batch
    (Glorot & Bengio 2010's "activation values" per layer) and ``grad_hist`` that of ∂loss/∂output, the
    back-propagated gradient (with targets only). ``None`` means not measured (no such activation, no targets).
    """

    index: int
    name: str  # qualified module name; a second call of the same module gets "#2"
    module_type: str
    activation: str  # the activation's label, "none" if no activation follows
    activation_kind: str  # relu | selu | tanh | sigmoid | other | none
    units: int
    mean: float
    std: float
    pre_mean: float
    pre_std: float
    saturated: float | None
    dead: float | None
    duplicates: int
    duplicate_rows: int | None
    duplicate_activations: int
    grad_output_std: float | None = None
    grad_weight_std: float | None = None
    grad_weight_norm: float | None = None
    hist: Histogram | None = None
    grad_hist: Histogram | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record: non-finite numbers become ``None``, histograms plain dicts of lists. (Field by field:
        ``dataclasses.asdict`` deep-copies every number of the histograms, a sixth of a diagnosis's time.)"""
        record = {f.name: getattr(self, f.name) for f in fields(self)}
        for key in ("hist", "grad_hist"):
            if record[key] is not None:
                record[key] = record[key].to_dict()
        return json_safe(record)


# -- the expected input ------------------------------------------------------------------------------------------
def first_layer(model: nn.Module) -> tuple[str, nn.Module] | None:
    """The first weight or embedding layer in module order, with its qualified name."""
    for name, module in model.named_modules():
        if isinstance(module, (*FEEDFORWARD_TYPES, *EMBEDDING_TYPES, nn.RNNBase)):
            return name, module
    return None


def expected_input(model: nn.Module) -> str:
    """What the model expects, in words, from its first layer in module order."""
    found = first_layer(model)
    if found is None:
        return "inputs its forward() accepts (initlab found no Linear, Conv or Embedding layer to describe them)"
    name, layer = found
    weight = getattr(layer, "weight", None)
    dtype = str(weight.dtype).replace("torch.", "") if isinstance(weight, torch.Tensor) else "float"
    where = f"its first layer {name!r} ({type(layer).__name__})"
    if isinstance(layer, nn.Linear):
        return (
            f"{dtype} inputs of shape (batch, ..., {layer.in_features}) at {where}: {layer.in_features} features per "
            f"sample (for a model that starts with Flatten, any per-sample shape with {layer.in_features} values)"
        )
    if isinstance(layer, nn.Bilinear):
        return (
            f"two {dtype} inputs of shapes (batch, {layer.in1_features}) and (batch, {layer.in2_features}) at {where}"
        )
    if isinstance(layer, CONV_TYPES + CONV_TRANSPOSE_TYPES):
        dims = len(layer.kernel_size)  # type: ignore[arg-type]
        spatial = ", ".join("HWD"[i] if dims > 1 else "L" for i in range(dims))
        return f"{dtype} inputs of shape (batch, {layer.in_channels}, {spatial}) at {where}"  # type: ignore[str-format]
    if isinstance(layer, EMBEDDING_TYPES):
        return f"integer indices in [0, {layer.num_embeddings}) at {where}"  # type: ignore[union-attr]
    return f"{dtype} inputs at {where}"


def check_inputs(model: nn.Module, inputs: ModelInput) -> int:
    """Validate ``inputs`` before any forward pass and return the batch size.

    Raises ``TypeError`` for an unusable form or a dtype the first layer cannot take, ``ValueError`` for fewer than
    two samples; each message says what the model expects.
    """
    tensors = _tensors(inputs)
    if not tensors:
        raise TypeError(
            f"inputs must be a tensor, a tuple or list of tensors, or a dict of tensors; got {type(inputs).__name__}. "
            f"The model expects {expected_input(model)}."
        )
    check_data(inputs)  # NaN or infinity in the batch: every statistic would be NaN
    x = tensors[0]
    found = first_layer(model)
    if found is not None:
        _, layer = found
        weight = getattr(layer, "weight", None)
        if isinstance(layer, EMBEDDING_TYPES):
            if x.is_floating_point() or x.is_complex():
                raise TypeError(f"inputs have dtype {x.dtype}; the model expects {expected_input(model)}.")
        elif isinstance(weight, torch.Tensor) and x.dtype != weight.dtype:
            hint = (
                f" (convert with inputs.to({weight.dtype}))" if x.is_floating_point() or x.dtype == torch.uint8 else ""
            )
            raise TypeError(
                f"inputs have dtype {x.dtype} and shape {tuple(x.shape)}; the model expects {expected_input(model)}"
                f"{hint}."
            )
    if x.dim() == 0 or x.shape[0] < 2:
        raise ValueError(
            f"inputs of shape {tuple(x.shape)}: a diagnosis needs a batch of at least 2 samples along dimension 0 "
            f"(statistics are over the batch; 256 is a good size). The model expects {expected_input(model)}."
        )
    return int(x.shape[0])


def _tensors(inputs: object) -> list[torch.Tensor]:
    if isinstance(inputs, torch.Tensor):
        return [inputs]
    if isinstance(inputs, (tuple, list)):
        return [t for t in inputs if isinstance(t, torch.Tensor)]
    if isinstance(inputs, Mapping):
        return [t for t in inputs.values() if isinstance(t, torch.Tensor)]
    return []


# -- recording ---------------------------------------------------------------------------------------------------
@dataclass
class _Layer:
    """A layer while it is being assembled from the events."""

    name: str
    module: nn.Module
    out: torch.Tensor  # the tensor the gradient is taken against (kept in the graph)
    pre: torch.Tensor  # detached copies, safe from in-place activations
    post: torch.Tensor
    activation: Activation | None = None


def record(model: nn.Module, inputs: ModelInput) -> tuple[Any, list[_Layer]]:
    """Run the model once on ``inputs`` and return its output and its layers in call order.

    Must run inside ``inspection(model, grad=True)`` (:func:`initlab.tracing.inspection`). Raises ``ValueError``
    (saying what the model expects) if the forward pass fails.
    """
    names = {id(m): n for n, m in model.named_modules()}
    recorder = Recorder(keep_outputs=True)
    try:
        with hooked(model, recorder):
            output = run_model(model, inputs)
    except (RuntimeError, ValueError, IndexError, TypeError) as err:
        shapes = ", ".join(f"{tuple(t.shape)} {str(t.dtype).replace('torch.', '')}" for t in _tensors(inputs))
        raise ValueError(
            f"the model cannot run on inputs of shape {shapes}: it expects {expected_input(model)}. PyTorch said: {err}"
        ) from err

    layers: list[_Layer] = []
    calls: dict[int, int] = {}
    current: _Layer | None = None
    for i, (kind, what) in enumerate(recorder.events):
        out = first_tensor(recorder.outputs.get(i))
        snap = recorder.snapshots.get(i)
        if kind == "module":
            cls, value = classify_module(what)
            if cls == "layer" and out is not None:
                calls[id(what)] = calls.get(id(what), 0) + 1
                name = names.get(id(what), type(what).__name__) or "(root)"
                if calls[id(what)] > 1:
                    name = f"{name}#{calls[id(what)]}"
                snapshot = snap if snap is not None else out.detach().clone()
                current = _Layer(name, what, out, snapshot, snapshot)
                layers.append(current)
            elif cls == "act":
                _attach(current, value, out, snap)
                current = None if current is not None and current.activation is not None else current
            elif cls == "stop":
                current = None
            elif cls == "skip" and current is not None and isinstance(what, NORM_TYPES) and out is not None:
                current.out, current.pre = out, snap if snap is not None else out.detach().clone()
                current.post = current.pre
        elif kind == "act":
            _attach(current, what, out, snap)
            current = None if current is not None and current.activation is not None else current
        elif kind == "stop":
            current = None
    return output, layers


def _attach(layer: _Layer | None, activation: Activation, out: torch.Tensor | None, snap: torch.Tensor | None) -> None:
    if layer is None or out is None or out.shape != layer.pre.shape:
        return
    layer.activation = activation
    layer.out, layer.post = out, snap if snap is not None else out.detach().clone()


# -- per-layer figures -------------------------------------------------------------------------------------------
def _unit_rows(t: torch.Tensor, conv: bool) -> torch.Tensor:
    """(units, values): one row per unit, its values over the batch (and positions): channels (dim 1) of a
    convolution, last-dimension features otherwise. A convolution's rows are one copy of ``t``, contiguous, so
    that every per-unit reduction runs along memory."""
    t = t.detach().float()
    if conv and t.dim() >= 2:
        return t.transpose(0, 1).reshape(t.shape[1], -1)
    return (t.reshape(-1, t.shape[-1]) if t.dim() >= 1 else t.reshape(1, 1)).T


def _weight_rows(module: nn.Module) -> torch.Tensor | None:
    """One row per output unit: the weight (and bias) that makes it; ``None`` when units do not map to rows."""
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor):
        return None
    w = weight.detach().float()
    if isinstance(module, CONV_TRANSPOSE_TYPES):
        if module.groups != 1:  # type: ignore[union-attr]
            return None
        w = w.transpose(0, 1)
    rows = w.reshape(w.shape[0], -1)
    bias = getattr(module, "bias", None)
    if isinstance(bias, torch.Tensor) and bias.shape == (rows.shape[0],):
        rows = torch.cat([rows, bias.detach().float()[:, None]], dim=1)
    return rows


def _duplicates(rows: torch.Tensor) -> int:
    """How many rows equal an earlier row exactly: the rows less the distinct ones, told apart by their bytes (a hash
    set; ``+ 0.0`` makes -0.0 equal 0.0, as ``==`` has it). ``torch.unique(dim=0)`` gives the same count but sorts the
    rows lexicographically, which costs seconds for the 256·28·28-value rows of a convolution's channels."""
    if rows.shape[0] < 2:
        return 0
    data = (rows.detach().float() + 0.0).cpu().contiguous().numpy()
    return int(rows.shape[0] - len({row.tobytes() for row in data}))


def _std(t: torch.Tensor) -> float:
    t = t.detach().float()
    return float(t.std(correction=0)) if t.numel() > 0 else float("nan")


def layer_stats(
    index: int, layer: _Layer, grad_out: torch.Tensor | None, grad_weight: torch.Tensor | None
) -> LayerStats:
    """The figures of one recorded layer (see :class:`LayerStats`)."""
    act = layer.activation
    kind = act.kind if act is not None else "none"
    conv = isinstance(layer.module, CONV_TYPES + CONV_TRANSPOSE_TYPES)
    post_rows = _unit_rows(layer.post, conv)
    post = layer.post.detach().float()

    saturated: float | None = None
    if kind == "tanh":
        saturated = float((post.abs() > TANH_SATURATION).float().mean())
    elif kind == "sigmoid":
        saturated = float(((post < SIGMOID_SATURATION) | (post > 1.0 - SIGMOID_SATURATION)).float().mean())
    # A unit is dead when its largest pre-activation is <= 0 (NaN: never, as with every value <= 0).
    dead = float((_unit_rows(layer.pre, conv).amax(dim=1) <= 0).float().mean()) if kind == "relu" else None

    rows = _weight_rows(layer.module)
    dup_rows = _duplicates(rows) if rows is not None else None
    lo, hi = post_rows.aminmax(dim=1)
    dup_acts = _duplicates(post_rows[lo != hi])

    return LayerStats(
        index=index,
        name=layer.name,
        module_type=type(layer.module).__name__,
        activation=act.label if act is not None else "none",
        activation_kind=kind,
        units=int(post_rows.shape[0]),
        mean=float(post.mean()),
        std=_std(post),
        pre_mean=float(layer.pre.float().mean()),
        pre_std=_std(layer.pre),
        saturated=saturated,
        dead=dead,
        duplicates=max(dup_rows or 0, dup_acts),
        duplicate_rows=dup_rows,
        duplicate_activations=dup_acts,
        grad_output_std=_std(grad_out) if grad_out is not None else None,
        grad_weight_std=_std(grad_weight) if grad_weight is not None else None,
        grad_weight_norm=float(grad_weight.detach().float().norm()) if grad_weight is not None else None,
        hist=histogram(post),
        grad_hist=histogram(grad_out) if grad_out is not None else None,
    )


# -- losses ------------------------------------------------------------------------------------------------------
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LOSSES: tuple[str, ...] = ("cross_entropy", "mse", "bce")


def resolve_loss(loss: str | LossFn | None, targets: torch.Tensor) -> tuple[str, LossFn]:
    """The loss's name and function: ``None`` picks cross-entropy for integer targets and MSE for float targets."""
    if loss is None:
        loss = "mse" if targets.is_floating_point() else "cross_entropy"
    if isinstance(loss, str):
        if loss == "cross_entropy":
            return loss, F.cross_entropy
        if loss == "mse":
            return loss, lambda out, y: F.mse_loss(out, y.reshape(out.shape).to(out.dtype))
        if loss == "bce":
            return loss, lambda out, y: F.binary_cross_entropy_with_logits(out, y.reshape(out.shape).to(out.dtype))
        check_choice("loss", loss, LOSSES)
    if callable(loss):
        return getattr(loss, "__name__", type(loss).__name__), loss
    raise TypeError(
        f"loss must be None, one of {', '.join(LOSSES)} or a callable (output, targets) -> scalar; got {loss!r}."
    )


def gradients(
    output: Any, layers: list[_Layer], targets: torch.Tensor, loss_fn: LossFn
) -> tuple[float, list[tuple[torch.Tensor | None, torch.Tensor | None]]]:
    """The loss and, per layer, ∂loss/∂output and ∂loss/∂weight (``None`` where not in the graph)."""
    out = first_tensor(output)
    if out is None:
        raise TypeError(f"the model returned {type(output).__name__}; a loss needs a tensor output.")
    value = loss_fn(out, targets)
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise ValueError("the loss must return a scalar tensor.")
    wrt: list[torch.Tensor] = []
    slots: list[tuple[int | None, int | None]] = []
    for layer in layers:
        o = w = None
        if layer.out.requires_grad:
            o = len(wrt)
            wrt.append(layer.out)
        weight = getattr(layer.module, "weight", None)
        if isinstance(weight, torch.Tensor) and weight.requires_grad:
            w = len(wrt)
            wrt.append(weight)
        slots.append((o, w))
    if not value.requires_grad or not wrt:
        return float(value.detach()), [(None, None)] * len(layers)
    grads = torch.autograd.grad(value, wrt, allow_unused=True)
    # A module called twice has one weight gradient (summed over both calls); each call reports it.
    return float(value.detach()), [
        (grads[o] if o is not None else None, grads[w] if w is not None else None) for o, w in slots
    ]
