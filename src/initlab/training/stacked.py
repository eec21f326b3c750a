"""A fast path for stacked MLPs: ``nn.Sequential`` of Flatten, Linear, elementwise activations and Dropout.

``vmap`` over ``functional_call`` (the general path in :mod:`initlab.training.population`) computes a stacked
linear layer's weight gradient as (N, in, out) and then transposes it into the (N, out, in) layout of the weight,
a copy that costs as much as the matrix product itself for the first layer of an MNIST MLP. Here a custom autograd
function produces every gradient directly in its parameter's layout, and a batch shared by all models is multiplied
by all their weights in one GEMM, ``x (B, in) @ W.view(N·out, in)ᵀ``, with the bias added by the same call
(``addmm``/``baddbmm``: one pass over the output fewer).

Dropout masks come from an explicit :class:`MaskSource`: on the CPU a NumPy PCG64 generator, whose float32 draws
cost about 60% of torch's Mersenne-Twister ``rand`` (measured 0.70 vs 1.12 ms for a 12x128x256 mask, one thread),
about 4% of a training step of the MNIST article's network.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

#: Modules applied elementwise, which act on a stacked (N, B, ...) tensor exactly as on each (B, ...) slice.
ELEMENTWISE: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.Sigmoid, nn.SELU, nn.GELU, nn.ELU, nn.CELU, nn.SiLU, nn.Mish, nn.Softplus,
    nn.Hardtanh, nn.ReLU6, nn.Hardswish, nn.Hardsigmoid, nn.Softsign, nn.Tanhshrink, nn.Identity, nn.PReLU,
)  # fmt: skip


def supports(model: nn.Module) -> bool:
    """Whether ``model`` can take the fast path: a Sequential of the layers above (PReLU excluded: it has
    parameters) whose only Flatten comes first."""
    if not isinstance(model, nn.Sequential):
        return False
    for i, m in enumerate(model):
        if isinstance(m, nn.Flatten):
            if i != 0 or m.end_dim != -1:
                return False
        elif isinstance(m, nn.PReLU) or not isinstance(m, (nn.Linear, nn.Dropout, *ELEMENTWISE)):
            return False
    return True


class _StackedLinear(torch.autograd.Function):
    """y[n] = x[g(n)] @ W[n]ᵀ + b[n] for N models. ``x`` is (G, B, in): one batch per group of N/G consecutive models
    (G = 1: shared by all) or, with G = N, one per model.

    Shared and grouped inputs take one batched product over the G groups, ``x[g] (B, in) @ W[group g].view(M·out,
    in)ᵀ``, written straight into the group's columns of one (B, N·out) output (``baddbmm`` with a strided ``out``),
    which the next layers see as (N, B, out); the weight gradient comes back the same way, one batched product into
    the weight's (N, out, in) layout. A GEMM per group took twice as long (547 against 268 µs for 12 groups of 4
    models, 32 samples, 40 to 100 features, one thread). Per-model inputs take batched products (``bmm``).

    With a ``compute`` dtype (bf16), the three matrix products of the forward and backward pass run in it while the
    parameters, their gradients and the activations between layers stay float32 (mixed precision; autocast does not
    reach a custom function's backward pass, hence the explicit dtype).
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        compute: torch.dtype | None,
    ) -> torch.Tensor:
        # The context is filled here rather than in a separate ``setup_context``, with which ``Function.apply``
        # binds the arguments through ``inspect.signature`` on every call (about 1% of a training step).
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        ctx.compute = compute
        n, out_f, in_f = weight.shape
        out_dtype = x.dtype
        if compute is not None:
            x, weight = x.to(compute), weight.to(compute)
        fuse = bias is not None and compute is None  # addmm's bias must have the product's dtype
        if x.shape[0] < n:
            _check_groups(x.shape[0], n)
            g, b, cols = x.shape[0], x.shape[1], n // x.shape[0] * out_f
            y = x.new_empty(b, n * out_f)
            # One batched product writes every group's columns of y: (G, B, M·out) with the strides of y's view.
            parts = y.view(b, g, cols).transpose(0, 1)
            w = weight.reshape(g, cols, in_f).transpose(1, 2)
            if fuse:
                torch.baddbmm(bias.reshape(g, 1, cols), x, w, out=parts)
            else:
                torch.bmm(x, w, out=parts)
            y = y.view(b, n, out_f).transpose(0, 1)
        else:
            w = weight.transpose(1, 2)
            y = torch.baddbmm(bias.unsqueeze(1), x, w) if fuse else torch.bmm(x, w)
        if fuse:
            return y
        y = y.to(out_dtype)
        return y + bias.unsqueeze(1) if bias is not None else y.contiguous()

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple:
        x, weight = ctx.saved_tensors
        n, out_f, in_f = weight.shape
        grad_x = grad_w = grad_b = None
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum(dim=1)
        if ctx.compute is not None:
            x, weight, grad = x.to(ctx.compute), weight.to(ctx.compute), grad.to(ctx.compute)
        if x.shape[0] < n:
            g, b, cols = x.shape[0], x.shape[1], n // x.shape[0] * out_f
            # (B, N·out): free, as the gradient has the layout of the forward's output; seen as (G, B, M·out).
            parts = grad.transpose(0, 1).reshape(b, n * out_f).view(b, g, cols).transpose(0, 1)
            if ctx.needs_input_grad[0]:
                grad_x = torch.bmm(parts, weight.reshape(g, cols, in_f)).float()
            if ctx.needs_input_grad[1]:  # (G, M·out, B) @ (G, B, in): the weight's own layout
                grad_w = torch.bmm(parts.transpose(1, 2), x).view(n, out_f, in_f).float()
        else:
            if ctx.needs_input_grad[0]:
                grad_x = torch.bmm(grad, weight).float()
            if ctx.needs_input_grad[1]:
                grad_w = torch.bmm(grad.transpose(1, 2), x).float()
        return grad_x, grad_w, grad_b, None


def _check_groups(groups: int, n: int) -> None:
    if n % groups:
        raise ValueError(f"{groups} batch groups do not divide a population of {n} models.")


def expand_groups(x: torch.Tensor, n: int) -> torch.Tensor:
    """A grouped (G, B, ...) batch as one batch per model (N, B, ...): group g's batch repeated for its N/G models
    (a view when G = 1)."""
    if x.shape[0] == n:
        return x
    _check_groups(x.shape[0], n)
    if x.shape[0] == 1:
        return x.expand(n, *x.shape[1:])
    return x.repeat_interleave(n // x.shape[0], dim=0)


class MaskSource:
    """Uniform draws on [0, 1) for dropout masks, from an explicit seed.

    On the CPU the draws come from NumPy's PCG64 (``Generator.random`` in float32: the top 24 bits of a 32-bit
    draw times 2⁻²⁴, the grid of torch's ``rand``); on another device from a ``torch.Generator`` there.
    """

    def __init__(self, seed: int, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self._numpy: np.random.Generator | None = None
        self._torch: torch.Generator | None = None
        if self.device.type == "cpu":
            self._numpy = np.random.Generator(np.random.PCG64(seed))
        else:
            self._torch = torch.Generator(device=self.device).manual_seed(seed)

    def uniform_like(self, h: torch.Tensor) -> torch.Tensor:
        """A float32 tensor of ``h``'s shape, device and memory layout, filled with U[0, 1) draws."""
        out = torch.empty_like(h, dtype=torch.float32)
        if self._numpy is None:
            return out.uniform_(generator=self._torch)
        # The draws are independent, so they fill the storage in memory order, whatever the layout (empty_like of
        # a dense tensor is dense).
        self._numpy.random(out=out.as_strided((out.numel(),), (1,)).numpy(), dtype=np.float32)
        return out


def _dropout(h: torch.Tensor, p: float, masks: MaskSource) -> torch.Tensor:
    """Inverted dropout with one mask over the stacked tensor, so each model draws its own (as
    ``vmap(randomness="different")``). The mask is ``U[0, 1) >= p`` scaled by 1/(1-p): the same distribution as
    ``F.dropout``, whose ``bernoulli_`` costs about twice as much on the CPU (measured: 4.5 vs 2.6 ms for a
    12x128x256 activation, one thread)."""
    if p >= 1.0:
        return torch.zeros_like(h)
    mask = masks.uniform_like(h)
    mask.ge_(p).mul_(1.0 / (1.0 - p))
    return h * mask.to(h.dtype)


def forward(model: nn.Module, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor,
            *, per_model: bool, train: bool, masks: MaskSource | None = None,
            compute: torch.dtype | None = None) -> torch.Tensor:  # fmt: skip
    """Run the stacked ``model`` (see :func:`supports`) with stacked ``params``; returns (N, B, ...).

    ``buffers`` is unused (these layers have none). ``x`` is one batch shared by all N models (B, ...) or, with
    ``per_model``, one batch per group of N/G consecutive models (G, B, ...), G dividing N (G = N: one per model).
    Training a model with dropout takes its masks from ``masks``; a dropout before the first linear layer gets a
    batch per model first, so that each draws its own mask.
    """
    n = next(iter(params.values())).shape[0]
    h = x if per_model else x.unsqueeze(0)  # (G, B, ...): G = 1 for a shared batch
    for i, m in enumerate(model):
        if isinstance(m, nn.Flatten):
            h = h.flatten(m.start_dim + 1)
        elif isinstance(m, nn.Linear):
            # A linear layer acts on the last axis: any axes between the batch and the features ride along with B.
            lead = h.shape[1:-1]
            y = _StackedLinear.apply(h.reshape(h.shape[0], -1, h.shape[-1]), params[f"{i}.weight"],
                                     params.get(f"{i}.bias"), compute)  # fmt: skip
            h = y.view(n, *lead, y.shape[-1])
        elif isinstance(m, nn.Dropout):
            if train and m.p > 0:
                if masks is None:
                    raise ValueError("training a model with dropout needs a MaskSource for its masks.")
                h = _dropout(expand_groups(h, n), m.p, masks)
        else:
            h = m(h)
    return expand_groups(h, n)
