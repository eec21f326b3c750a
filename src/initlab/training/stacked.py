"""A fast path for stacked MLPs: ``nn.Sequential`` of Flatten, Linear, elementwise activations and Dropout.

``vmap`` over ``functional_call`` (the general path in :mod:`initlab.training.population`) computes a stacked
linear layer's weight gradient as (N, in, out) and then transposes it into the (N, out, in) layout of the weight,
a copy that costs as much as the matrix product itself for the first layer of an MNIST MLP. Here a custom autograd
function produces every gradient directly in its parameter's layout, and a batch shared by all models is multiplied
by all their weights in one GEMM, ``x (B, in) @ W.view(N·out, in)ᵀ``.
"""

from __future__ import annotations

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
    """y[n] = x[n] @ W[n]ᵀ + b[n] for N models; ``x`` is shared (B, in) or per model (N, B, in).

    With a ``compute`` dtype (bf16), the three matrix products of the forward and backward pass run in it while the
    parameters, their gradients and the activations between layers stay float32 (mixed precision; autocast does not
    reach a custom function's backward pass, hence the explicit dtype).
    """

    @staticmethod
    def forward(
        x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, compute: torch.dtype | None
    ) -> torch.Tensor:
        n, out_f, in_f = weight.shape
        out_dtype = x.dtype
        if compute is not None:
            x, weight = x.to(compute), weight.to(compute)
        if x.dim() == 2:  # shared input: one GEMM for the whole population
            y = (x @ weight.reshape(n * out_f, in_f).t()).view(x.shape[0], n, out_f).transpose(0, 1)
        else:
            y = torch.bmm(x, weight.transpose(1, 2))
        y = y.to(out_dtype)
        return y + bias.unsqueeze(1) if bias is not None else y.contiguous()

    @staticmethod
    def setup_context(ctx: torch.autograd.function.FunctionCtx, inputs: tuple, output: torch.Tensor) -> None:
        x, weight, bias, compute = inputs
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        ctx.compute = compute

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple:
        x, weight = ctx.saved_tensors
        n, out_f, in_f = weight.shape
        grad_x = grad_w = grad_b = None
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum(dim=1)
        if ctx.compute is not None:
            x, weight, grad = x.to(ctx.compute), weight.to(ctx.compute), grad.to(ctx.compute)
        if ctx.needs_input_grad[0]:
            grad_x = torch.bmm(grad, weight)
            if x.dim() == 2:
                grad_x = grad_x.sum(dim=0)
            grad_x = grad_x.float()
        if ctx.needs_input_grad[1]:
            if x.dim() == 2:  # (N·out, B) @ (B, in): the gradient comes out in the weight's own layout
                grad_w = (grad.transpose(1, 2).reshape(n * out_f, -1) @ x).view(n, out_f, in_f)
            else:
                grad_w = torch.bmm(grad.transpose(1, 2), x)
            grad_w = grad_w.float()
        return grad_x, grad_w, grad_b, None


def _dropout(h: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted dropout with one mask over the stacked tensor, so each model draws its own (as
    ``vmap(randomness="different")``). The mask is ``U[0, 1) >= p`` scaled by 1/(1-p): the same distribution as
    ``F.dropout``, whose ``bernoulli_`` costs about twice as much on the CPU (measured: 4.5 vs 2.6 ms for a
    12x128x256 activation, one thread)."""
    if p >= 1.0:
        return torch.zeros_like(h)
    mask = torch.rand_like(h)
    mask.ge_(p).mul_(1.0 / (1.0 - p))
    return h * mask


def forward(model: nn.Sequential, params: dict[str, torch.Tensor], x: torch.Tensor, *, per_model: bool,
            train: bool, compute: torch.dtype | None = None) -> torch.Tensor:  # fmt: skip
    """Run the stacked ``model`` (see :func:`supports`) with stacked ``params``; returns (N, B, ...)."""
    h = x
    for i, m in enumerate(model):
        if isinstance(m, nn.Flatten):
            h = h.flatten(m.start_dim + (1 if per_model else 0))
        elif isinstance(m, nn.Linear):
            h = _StackedLinear.apply(h, params[f"{i}.weight"], params.get(f"{i}.bias"), compute)
        elif isinstance(m, nn.Dropout):
            h = _dropout(h, m.p) if train and m.p > 0 else h
        else:
            h = m(h)
    return h
