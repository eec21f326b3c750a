"""A fast path for convolutional networks: the ``cnn``/``cnn1d`` Sequentials and the small ResNet, N models at once.

**Layout.** The convolutional part (every module before the ``Flatten``) runs on chunks of k consecutive models. A
chunk's activations are one tensor (B, k·C, ...): model n of the chunk owns channels n·C .. (n+1)·C - 1, so each of
its convolutions is one grouped convolution with ``groups = k`` (Krizhevsky et al. 2012, "ImageNet Classification
with Deep Convolutional Neural Networks", §3.5: AlexNet's two channel groups): with the weights viewed as
(k·C_out, C_in, ...), ``y[:, n·C_out + o] = b[n, o] + Σ_c W[n, o, c] ⋆ x[:, n·C_in + c]``. The first convolution
reads a batch (B, C, ...) shared by the chunk as a plain convolution with k·C_out filters, or one batch per group
of models (G, B, C, ...) side by side, (B, G·C, ...), with ``groups = G``. Everything else acts per channel, so one
call serves the chunk: activations, pooling, dropout and residual additions (He et al. 2016, "Deep Residual
Learning for Image Recognition": :class:`initlab.nets.ResNet`'s blocks, ``act(branch(x) + shortcut(x))``); batch
norm (Ioffe & Szegedy 2015) over k·C channels with the weights and running statistics viewed flat is the k models'
batch norms, updating each model's statistics in place as ``nn.BatchNorm`` does (momentum, or the cumulative
average when momentum is None; the running variance from the unbiased batch variance); group norm (Wu & He 2018)
with g groups of C channels is group norm with k·g groups (the ``cnn`` spec's layer norm is ``GroupNorm(1, C)``).
The chunks' outputs are gathered into (N, B, C, ...), which the ``Flatten`` views as (N, B, F) for the dense tail,
the linear layers of the stacked MLP path (:class:`initlab.training.stacked._StackedLinear`).

**Chunks.** All N models in one chunk is the fewest calls, but its activations (N times a model's) leave the
caches, and tensors above 32 MiB are mapped afresh by the allocator (glibc's ``mmap`` threshold) at every step, so
every pass over them also pays for page faults. A chunk therefore holds as many models as keep its first
convolution's output within :data:`CHUNK_BYTES`, but at least one per intra-op thread below 32 MiB
(:data:`MODELS_PER_THREAD`): two MNIST-sized models with two threads, four of the 100-layer
``cnn1d`` of 16 channels on 40 positions (per model and step 124 ms against 161 ms for all 12 at once, the one-model
loop 156 ms). Measured on the ``cnn:16,32;head=64`` MNIST network (12 models, batch 128, Adam; AMD EPYC, 2 cores
shared with other jobs; per model and step, medians of alternating repetitions within one run): with one thread
(CPU time) k = 1: 19 ms, k = 2: 21 ms, k = 12: 41 ms, the ``vmap`` path 81 ms, one model trained alone in an
idiomatic loop (DataLoader, ``torch.optim.Adam``) 37 ms; with two threads (wall time) k = 1: 13 ms, k = 2: 12 ms,
``vmap`` 46 ms, alone 25 ms. Recomputing each chunk in the backward pass (gradient checkpointing), so that only one
chunk's activations are alive at a time, cost more than it saved (24 against 20 ms).

**Memory format.** Convolutions run channels last (NHWC), the layout of oneDNN's kernels (a 1-D convolution as a
2-D one over (1, L) positions); it also vectorizes max pooling over the channels (6x faster than NCHW for the first
pooling above), and the forward pass of the second convolution above (16 to 32 channels on 14x14) takes 2.6 ms
channels last against 7.3 ms NCHW. An activation whose gradient is computed from its output (ReLU, tanh, sigmoid)
runs in place on the fresh output of a convolution or norm, which nothing else keeps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812  (the name every torch user knows)
from torch import nn

from initlab.malloc import MMAP_THRESHOLD_MAX
from initlab.nets import BasicBlock, ResNet
from initlab.training.stacked import ELEMENTWISE, MaskSource, _StackedLinear, expand_groups
from initlab.training.stacked import _dropout as _dropout_mask

_CONVS = (nn.Conv1d, nn.Conv2d)
_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
          nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)  # fmt: skip
_ELEMENTWISE = tuple(t for t in ELEMENTWISE if t is not nn.PReLU)

# The layouts of the activations: "input" (G, B, ...) before the first convolution, "channels" (B, k·C, ...) for a
# chunk of k models from there to the Flatten, "models" (N, B, F) in the dense tail after it.
_INPUT, _CHANNELS, _MODELS = "input", "channels", "models"


def _children(m: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """The sub-modules a container runs one after the other, in its forward's order; None for any other module."""
    if type(m) is nn.Sequential:
        return list(m.named_children())
    if type(m) is ResNet:  # ResNet.forward: head(flatten(pool(stages(stem(unflatten(x))))))
        return [(k, getattr(m, k)) for k in ("unflatten", "stem", "stages", "pool", "flatten", "head")]
    return None


def _layout_after(m: nn.Module, layout: str) -> str | None:
    """The layout after ``m`` runs on activations in ``layout``, or None where this path cannot run ``m`` there."""
    children = _children(m)
    if children is not None:
        for _, child in children:
            layout = _layout_after(child, layout)  # type: ignore[assignment]
            if layout is None:
                return None
        return layout
    t = type(m)
    if t in _ELEMENTWISE or t is nn.Dropout:
        return layout
    if t is BasicBlock:
        parts = [m.branch, *([m.shortcut] if m.shortcut is not None else []), m.act]
        ok = layout == _CHANNELS and all(_layout_after(p, _CHANNELS) == _CHANNELS for p in parts)
        return layout if ok else None
    if t in _CONVS:
        ok = layout != _MODELS and m.groups == 1 and m.padding_mode == "zeros"
        return _CHANNELS if ok else None
    if t in (nn.Flatten, nn.Unflatten) and layout == _INPUT:
        return layout
    if t is nn.Flatten and layout == _CHANNELS and m.start_dim == 1 and m.end_dim == -1:
        return _MODELS
    if t in _POOLS or t is nn.GroupNorm or t is nn.BatchNorm2d:
        return layout if layout == _CHANNELS and not getattr(m, "return_indices", False) else None
    if t is nn.BatchNorm1d:
        return layout if layout != _INPUT else None
    if t in (nn.Linear, nn.LayerNorm):
        return layout if layout == _MODELS and (t is nn.Linear or len(m.normalized_shape) == 1) else None
    return None


def _cut(steps: list[tuple[str, nn.Module]]) -> int | None:
    """The index of the top-level ``Flatten`` that ends the convolutional part (``len(steps)`` if none does), or None
    where this path cannot run the model."""
    layout = _INPUT
    for i, (_, m) in enumerate(steps):
        if layout == _CHANNELS and type(m) is nn.Flatten:
            return i if all(_layout_after(t, _MODELS) == _MODELS for _, t in steps[i + 1 :]) else None
        layout = _layout_after(m, layout)  # type: ignore[assignment]
        if layout in (None, _MODELS):  # a Flatten into the dense tail must be a step of the model itself
            return None
    return len(steps) if layout == _CHANNELS else None


def supports(model: nn.Module) -> bool:
    """Whether ``model`` can take this path: an ``nn.Sequential`` of an optional leading Unflatten/Flatten, then
    ``Conv1d``/``Conv2d`` (groups 1, zero padding; any kernel, stride, padding, dilation, bias or none), BatchNorm,
    GroupNorm, elementwise activations (PReLU excluded), max/average pooling (plain or adaptive), Dropout, and after
    one ``Flatten`` the dense tail (Linear, BatchNorm1d, LayerNorm over the features, activations, Dropout); or an
    :class:`initlab.nets.ResNet`. Exact module types only: a subclass may compute something else."""
    steps = _children(model)
    return steps is not None and _cut(steps) is not None


#: The most bytes a chunk's first convolution output should take (see the module docstring): 1.5 MiB.
CHUNK_BYTES = 3 << 19
#: ... but at least this many models per intra-op thread, as long as the first convolution's output stays within
#: :data:`MMAP_THRESHOLD_MAX` (glibc's largest mmap threshold, 32 MiB: above it every step maps fresh pages again).
#: Measured once the training process kept its freed memory (:func:`initlab.malloc.keep_freed_memory`): 12
#: ``cnn:16,32;head=64`` MNIST models, two threads, 25 steps, alternating runs: 185, 228 and 190 ms per step with one
#: model per chunk against 151, 186 and 168 with two (three: 196, six: 221); the 100-layer ``cnn1d`` above keeps its
#: four (881 against 929 ms per step for all 12 in one chunk).
MODELS_PER_THREAD = 1
#: In eval mode, where samples are independent, a batch is cut into pieces whose first convolution output takes at
#: most this per model: 12 MNIST models of ``cnn:16,32;head=64`` evaluate 4,000 samples in 6.7 s (one thread) in
#: batches of 2,000 (100 MB per model) and in 2.8 to 3.7 s in batches of 32 to 1,000.
PIECE_BYTES = 16 << 20


@dataclass
class _Run:
    """One pass over a chunk of n models: their parameters and buffers (views of the stacked ones), the mode, the
    layout of the activations, and whether the last module's output is a fresh tensor that no other op keeps."""

    n: int
    params: dict[str, torch.Tensor]
    buffers: dict[str, torch.Tensor]
    train: bool
    masks: MaskSource | None
    compute: torch.dtype | None
    layout: str = _INPUT
    fresh: bool = False


def _channels_last(h: torch.Tensor) -> torch.Tensor:
    """``h`` (B, C, H, W) in the channels-last memory format; with one channel, the same memory seen with the strides
    that convolutions read as channels last (``contiguous`` would leave it as it is)."""
    if h.shape[1] == 1 and h.is_contiguous():
        return h.as_strided(h.shape, (h.stride(0), 1, h.stride(2), 1))
    return h.contiguous(memory_format=torch.channels_last)


def _conv(run: _Run, name: str, m: nn.Conv1d | nn.Conv2d, h: torch.Tensor) -> torch.Tensor:
    """The chunk's convolutions ``m`` as one grouped convolution (see the module docstring); a 1-D convolution as a
    2-D one over (1, L) positions, channels last."""
    if run.layout == _INPUT:  # (G, B, C, ...) -> (B, G·C, ...): a view for a shared batch (G = 1)
        groups = h.shape[0]
        h = h.transpose(0, 1).reshape(h.shape[1], groups * h.shape[2], *h.shape[3:])
        h = _channels_last(h.unsqueeze(2) if h.dim() == 3 else h)
        run.layout = _CHANNELS
    else:
        groups = run.n
    w = run.params[name + "weight"]
    w = w.reshape(-1, *w.shape[2:])
    b = run.params.get(name + "bias")
    b = b.reshape(-1) if b is not None else None
    stride, padding, dilation = m.stride, m.padding, m.dilation
    if type(m) is nn.Conv1d:
        w = w.unsqueeze(2)
        stride, dilation = (1, *stride), (1, *dilation)
        padding = padding if isinstance(padding, str) else (0, *padding)
    if w.shape[2:] == (1, 1) and stride != (1, 1):
        # oneDNN's channels-last backward of a strided 1x1 convolution returns wrong weight gradients (torch 2.13 on
        # the CPU, e.g. 2 -> 4 channels, stride 2): the stride is taken by subsampling instead, the same numbers.
        h = _Subsample.apply(h, (0, 0) if isinstance(padding, str) else padding, stride)
        stride, padding = (1, 1), (0, 0)
    if run.compute is None:
        return F.conv2d(h, w, b, stride, padding, dilation, groups)
    cast = run.compute
    return F.conv2d(h.to(cast), w.to(cast), b.to(cast) if b is not None else None, stride, padding, dilation,
                    groups).float()  # fmt: skip


class _Subsample(torch.autograd.Function):
    """``h`` (B, C, H, W) zero-padded by ``padding`` and taken at every ``stride``-th position: what a 1x1 convolution
    with that stride and padding reads; channels last, and so is its gradient."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, h: torch.Tensor, padding: tuple[int, int],
                stride: tuple[int, int]) -> torch.Tensor:  # fmt: skip
        ctx.padding, ctx.stride, ctx.shape = padding, stride, h.shape
        h = F.pad(h, (padding[1], padding[1], padding[0], padding[0])) if any(padding) else h
        return h[:, :, :: stride[0], :: stride[1]].contiguous(memory_format=torch.channels_last)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        (ph, pw), (sh, sw), (b, c, height, width) = ctx.padding, ctx.stride, ctx.shape
        out = torch.empty(b, c, height + 2 * ph, width + 2 * pw, dtype=grad.dtype, device=grad.device,
                          memory_format=torch.channels_last).zero_()  # fmt: skip
        out[:, :, ::sh, ::sw] = grad
        return out[:, :, ph : ph + height, pw : pw + width], None, None


def _pool(m: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """Pooling ``m``; a 1-D pooling on (B, C, 1, L) as the 2-D one over (1, L) (keeping channels last)."""
    t = type(m)
    if t is nn.MaxPool1d:
        return F.max_pool2d(h, (1, _single(m.kernel_size)), (1, _single(m.stride)), (0, _single(m.padding)),
                            (1, _single(m.dilation)), m.ceil_mode)  # fmt: skip
    if t is nn.AvgPool1d:
        return F.avg_pool2d(h, (1, m.kernel_size[0]), (1, m.stride[0]), (0, m.padding[0]), m.ceil_mode,
                            m.count_include_pad)  # fmt: skip
    if t is nn.AdaptiveAvgPool1d:
        return F.adaptive_avg_pool2d(h, (1, _single(m.output_size)))
    if t is nn.AdaptiveMaxPool1d:
        return F.adaptive_max_pool2d(h, (1, _single(m.output_size)))
    return m(h)


def _single(v: int | tuple[int, ...]) -> int:
    return v[0] if isinstance(v, tuple) else v


def _batch_norm(run: _Run, name: str, m: nn.BatchNorm1d | nn.BatchNorm2d, h: torch.Tensor) -> torch.Tensor:
    """The chunk's batch norms as one over its stacked channels (B, n·C, ...), the running statistics updated in
    place as ``torch.nn.modules.batchnorm._BatchNorm.forward`` does."""
    weight, bias = (_flat(run.params.get(name + k)) for k in ("weight", "bias"))
    mean, var = run.buffers.get(name + "running_mean"), run.buffers.get(name + "running_var")
    tracked = run.buffers.get(name + "num_batches_tracked")
    if not run.train or mean is None:  # the running statistics, or the batch's where there are none
        return F.batch_norm(h, _flat(mean), _flat(var), weight, bias, mean is None, 0.0, m.eps)
    momentum: float | torch.Tensor = 0.0
    if tracked is not None:
        tracked.add_(1)
        momentum = m.momentum if m.momentum is not None else 1.0 / tracked.double()
    if isinstance(momentum, float) or bool((momentum == momentum[0]).all()):  # one factor for every model
        momentum = momentum if isinstance(momentum, float) else float(momentum[0])
        return F.batch_norm(h, _flat(mean), _flat(var), weight, bias, True, momentum, m.eps)
    # Cumulative averages over different numbers of batches (models resumed from different checkpoints): the batch's
    # statistics, then each model's own factor.
    batch_mean, batch_var = torch.zeros_like(mean), torch.ones_like(var)
    out = F.batch_norm(h, _flat(batch_mean), _flat(batch_var), weight, bias, True, 1.0, m.eps)
    factor = momentum.to(mean.dtype).unsqueeze(1)
    mean.lerp_(batch_mean, factor)
    var.lerp_(batch_var, factor)
    return out


def _flat(t: torch.Tensor | None) -> torch.Tensor | None:
    """A stacked (n, C) tensor as (n·C,): for a buffer a view, which ``F.batch_norm`` updates in place."""
    return t.reshape(-1) if t is not None else None


#: In-place forms of the activations whose gradient is computed from their output: applied to the fresh output of a
#: convolution or norm, which nothing else keeps, they save a tensor and a pass over the activations.
_INPLACE = {nn.ReLU: torch.relu_, nn.Tanh: torch.tanh_, nn.Sigmoid: torch.sigmoid_}


#: Activations that never decrease, so that max pooling commutes with them: max f(x) = f(max x), and the gradient
#: reaches the same element with the same factor f'(x), also where f is flat (ReLU on a window of negatives: zero
#: either way). Pooling first applies the activation to a quarter of the values (2x2 pooling).
_MONOTONE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.ELU, nn.CELU, nn.SELU, nn.Softplus, nn.Identity)
_MAX_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)


def _pool_first(children: list[tuple[str, nn.Module]]) -> list[tuple[str, nn.Module]]:
    """``children`` with every monotone activation that a max pooling follows moved after it (see
    :data:`_MONOTONE`): the same outputs and gradients for less work."""
    out = list(children)
    for i in range(len(out) - 1):
        act, pool = out[i][1], out[i + 1][1]
        # ELU/CELU with a negative alpha, or Softplus with a negative beta, would decrease somewhere.
        monotone = type(act) in _MONOTONE and getattr(act, "alpha", 1.0) >= 0 and getattr(act, "beta", 1.0) > 0
        if monotone and type(pool) in _MAX_POOLS and not getattr(pool, "return_indices", False):
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


def _apply(run: _Run, name: str, m: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """Module ``m`` (its parameters and buffers under ``name``) on the chunk's activations ``h``."""
    fresh, run.fresh = run.fresh, False
    children = _children(m)
    if children is not None:
        run.fresh = fresh
        for key, child in _pool_first(children):
            h = _apply(run, f"{name}{key}.", child, h)
        return h
    t = type(m)
    if t in _ELEMENTWISE:
        return _INPLACE[t](h) if fresh and t in _INPLACE else m(h)
    if t is BasicBlock:
        skip = h if m.shortcut is None else _apply(run, name + "shortcut.", m.shortcut, h)
        run.fresh = False
        h = _apply(run, name + "branch.", m.branch, h) + skip
        run.fresh = True
        return _apply(run, name + "act.", m.act, h)
    # Outputs that nothing else keeps (pooling saves its input, not its output), for an in-place activation.
    run.fresh = t in _CONVS or t in _BATCH_NORMS or t is nn.GroupNorm or t in _POOLS
    if t in _CONVS:
        return _conv(run, name, m, h)
    if t in _BATCH_NORMS:
        if run.layout == _CHANNELS:
            return _batch_norm(run, name, m, h)
        flat = h.transpose(0, 1).reshape(h.shape[1], -1)  # (n, B, F) -> (B, n·F): a view after a shared GEMM
        return _batch_norm(run, name, m, flat).view(h.shape[1], run.n, -1).transpose(0, 1)
    if t is nn.GroupNorm:
        w, b = (_flat(run.params.get(name + k)) for k in ("weight", "bias"))
        return F.group_norm(h, run.n * m.num_groups, w, b, m.eps)
    if t is nn.Dropout:
        if not run.train or m.p == 0:
            return h
        if run.masks is None:
            raise ValueError("training a model with dropout needs a MaskSource for its masks.")
        return _dropout_mask(expand_groups(h, run.n) if run.layout == _INPUT else h, m.p, run.masks)
    if run.layout == _INPUT:  # Flatten, Unflatten: on each sample, behind the group axis
        dims = (m.start_dim, m.end_dim) if t is nn.Flatten else (m.dim,)
        dims = tuple(d + 1 if d >= 0 else d for d in dims)
        return h.flatten(*dims) if t is nn.Flatten else h.unflatten(dims[0], m.unflattened_size)
    if t is nn.Linear:
        return _StackedLinear.apply(h, run.params[name + "weight"], run.params.get(name + "bias"), run.compute)
    if t is nn.LayerNorm:
        w, b = run.params.get(name + "weight"), run.params.get(name + "bias")
        h = F.layer_norm(h, m.normalized_shape, None, None, m.eps)
        h = h * w.unsqueeze(1) if w is not None else h
        return h + b.unsqueeze(1) if b is not None else h
    return _pool(m, h)  # per channel


def _sample_bytes(model: nn.Module, x: torch.Tensor) -> float:
    """The bytes of one model's first convolution output per sample of the batch ``x`` (G, B, ...)."""
    conv = next(m for m in model.modules() if type(m) in _CONVS)
    return 4 * x[0, 0].numel() / conv.in_channels / math.prod(conv.stride) * conv.out_channels


def batch_bytes(model: nn.Module, x: torch.Tensor, *, per_model: bool) -> float:
    """The bytes of one model's first convolution output for the batch ``x``: (B, ...), or with ``per_model``
    (G, B, ...)."""
    x = x if per_model else x.unsqueeze(0)
    return x.shape[1] * _sample_bytes(model, x)


def _chunks(model: nn.Module, x: torch.Tensor, n: int) -> list[int]:
    """The sizes of the chunks of consecutive models: as many as keep the first convolution's output for the batch
    ``x`` (G, B, ...) within :data:`CHUNK_BYTES`, aligned with the G groups of models that share a batch. On another
    device than the CPU (unmeasured), one chunk: a GPU's kernels want the work in as few calls as possible."""
    if x.device.type != "cpu":
        return [n]
    per_model = batch_bytes(model, x, per_model=True)
    k = max(1, min(n, int(CHUNK_BYTES / per_model)))
    # At least one model per intra-op thread, while the output stays below the mmap threshold (see MODELS_PER_THREAD).
    k = max(k, min(n, MODELS_PER_THREAD * torch.get_num_threads(), int(MMAP_THRESHOLD_MAX / per_model)))
    size = n // x.shape[0]  # models per batch
    if x.shape[0] > 1:
        k = max(d for d in range(1, k + 1) if size % d == 0) if k < size else k // size * size
    return [min(k, n - a) for a in range(0, n, k)]


def _chunk_input(x: torch.Tensor, n: int, a: int, b: int) -> torch.Tensor:
    """The batches of models a .. b-1, (G', B, ...), from one per group of N/G models (G, B, ...): a view of the
    groups the chunk covers (chunks are aligned with groups: one holds a divisor or a multiple of N/G models)."""
    size = n // x.shape[0]
    return x[a // size : (b - 1) // size + 1]


class _Gather(torch.autograd.Function):
    """The chunks' outputs (B, k·C, ...) as one (N, B, C, ...) tensor. The backward pass hands every chunk its slice
    of the gradient in the memory format of its output (channels last), which pooling and convolution kernels read
    without converting; autograd's own ``cat`` would hand them (N, B, C, ...) views."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, sizes: list[int], *parts: torch.Tensor) -> torch.Tensor:
        first = parts[0]
        out = first.new_empty(sum(sizes), first.shape[0], first.shape[1] // sizes[0], *first.shape[2:])
        for part, piece in zip(parts, out.split(sizes), strict=True):
            piece.copy_(part.unflatten(1, (piece.shape[0], -1)).transpose(0, 1))
        ctx.layouts = [(p.shape, p.stride()) for p in parts]
        ctx.sizes = sizes
        return out

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grads = []
        for (shape, stride), piece in zip(ctx.layouts, grad.split(ctx.sizes), strict=True):
            g = grad.new_empty_strided(shape, stride)
            g.unflatten(1, (piece.shape[0], -1)).transpose(0, 1).copy_(piece)
            grads.append(g)
        return None, *grads


def forward(model: nn.Module, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor,
            *, per_model: bool, train: bool, masks: MaskSource | None = None,
            compute: torch.dtype | None = None) -> torch.Tensor:  # fmt: skip
    """Run the stacked ``model`` (see :func:`supports`) with stacked ``params`` and ``buffers``; returns (N, B, ...).

    ``x`` is one batch shared by all N models (B, ...) or, with ``per_model``, one batch per group of N/G consecutive
    models (G, B, ...), G dividing N. In training mode batch norms use each model's batch statistics and update its
    running statistics in ``buffers`` in place; dropout draws each model's masks from ``masks``. ``compute`` (bf16)
    is the dtype of the convolutions and matrix products; parameters, gradients and activations stay float32."""
    n = next(iter(params.values())).shape[0]
    x = x if per_model else x.unsqueeze(0)
    if n % x.shape[0]:
        raise ValueError(f"{x.shape[0]} batch groups do not divide a population of {n} models.")
    if not train and all(m.track_running_stats for m in model.modules() if type(m) in _BATCH_NORMS):
        piece = max(1, int(PIECE_BYTES / _sample_bytes(model, x)))
        if piece < x.shape[1]:  # samples are independent: a large batch in pieces (see PIECE_BYTES)
            return torch.cat([forward(model, params, buffers, part, per_model=True, train=False, masks=masks,
                                      compute=compute) for part in x.split(piece, 1)], 1)  # fmt: skip
    steps = _pool_first(_children(model) or [])
    cut = _cut(steps)
    if cut is None:
        raise ValueError(f"the stacked convolution path cannot run a {type(model).__name__} like this one.")
    prefixes = tuple(name + "." for name, _ in steps[:cut])
    sizes = _chunks(model, x, n)
    one_d = any(type(m) is nn.Conv1d for m in model.modules())
    split = {k: p.split(sizes) for k, p in params.items() if k.startswith(prefixes)}
    parts, a = [], 0
    for i, k in enumerate(sizes):
        run = _Run(k, {name: p[i] for name, p in split.items()},
                   {name: b[a : a + k] for name, b in buffers.items() if name.startswith(prefixes)},
                   train, masks, compute)  # fmt: skip
        h = _chunk_input(x, n, a, a + k)
        for name, m in steps[:cut]:
            h = _apply(run, name + ".", m, h)
        parts.append(h.squeeze(2) if one_d else h)
        a += k
    h = _Gather.apply(sizes, *parts)  # (N, B, C, ...)
    if cut == len(steps):  # no Flatten: the convolutions' output, per model
        return h
    run = _Run(n, params, buffers, train, masks, compute, layout=_MODELS)
    h = h.flatten(2)  # the Flatten: (N, B, F)
    for name, m in steps[cut + 1 :]:
        h = _apply(run, name + ".", m, h)
    return h
