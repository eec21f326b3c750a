"""The layers the residual networks share: activations by name, normalizations, a two-layer MLP and self-attention.

Every weight sits in a plain ``nn.Linear``, ``nn.Conv2d`` or ``nn.Embedding``, so initlab's schemes give each its
role and fans from the module type (:mod:`initlab.schemes._roles`); in particular the attention's query, key, value
and output projections are four ``nn.Linear`` layers of shape ``(d, d)``, not torch's packed ``in_proj_weight``.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

ActivationName = Literal["relu", "tanh", "sigmoid", "selu", "gelu", "leaky_relu", "linear"]
NormName = Literal["none", "batch", "layer"]

# The module class of each activation; "linear" is the identity.
_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "linear": nn.Identity,
}


def activation(name: ActivationName) -> nn.Module:
    """A fresh activation module; ``"linear"`` gives ``nn.Identity``."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"act={name!r} is not one of {'|'.join(_ACTIVATIONS)}.")
    return _ACTIVATIONS[name]()


def norm_1d(name: NormName, width: int) -> nn.Module:
    """The normalization of a ``(B, width)`` stream: ``BatchNorm1d``, ``LayerNorm`` or the identity."""
    if name == "batch":
        return nn.BatchNorm1d(width)
    if name == "layer":
        return nn.LayerNorm(width)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"norm={name!r} is not one of none|batch|layer.")


def norm_2d(name: NormName, channels: int) -> nn.Module:
    """The normalization of a ``(B, C, H, W)`` map: ``BatchNorm2d``, ``GroupNorm(1, C)`` (a layer norm over channels
    and positions, as in :mod:`initlab.models`' ``cnn``) or the identity."""
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "layer":
        return nn.GroupNorm(1, channels)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"norm={name!r} is not one of none|batch|layer.")


class FeedForward(nn.Module):
    """``fc2(drop(act(fc1(x))))``: the position-wise MLP of a transformer block and the branch of a residual MLP.

    ``fc2`` is the branch's last layer: the output projection into the residual stream.
    """

    def __init__(self, width: int, hidden: int, *, act: ActivationName, dropout: float, bias: bool) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden, bias=bias)
        self.act = activation(act)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc2 = nn.Linear(hidden, width, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(self.act(self.fc1(x))))


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention (Vaswani et al. 2017, "Attention Is All You Need", §3.2.2):
    ``out(concat_h softmax(q_h k_hᵀ / √d_h) v_h)`` with ``d_h = d / heads``, optionally causal (position ``t`` sees
    positions ``≤ t``, the decoder's mask).

    ``q``, ``k``, ``v`` and ``out`` are separate ``nn.Linear(d, d)`` layers, so each has fan-in and fan-out ``d``
    (torch's ``nn.MultiheadAttention`` packs q, k and v into one ``(3d, d)`` parameter). The product is written out
    rather than calling ``F.scaled_dot_product_attention``, which ``torch.func.vmap`` (population training) runs
    one model at a time.
    """

    def __init__(self, width: int, heads: int, *, causal: bool, bias: bool) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"heads={heads} does not divide the width {width}.")
        self.heads = heads
        self.causal = causal
        self.q = nn.Linear(width, width, bias=bias)
        self.k = nn.Linear(width, width, bias=bias)
        self.v = nn.Linear(width, width, bias=bias)
        self.out = nn.Linear(width, width, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.heads

        def split(y: torch.Tensor) -> torch.Tensor:  # (B, T, d) -> (B, heads, T, d_h)
            return y.reshape(b, t, h, d // h).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scores = q @ k.transpose(-2, -1) * (1.0 / math.sqrt(d // h))
        if self.causal:
            future = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.masked_fill(future, float("-inf"))
        y = scores.softmax(dim=-1) @ v
        return self.out(y.transpose(1, 2).reshape(b, t, d))


def branch_gate(kind: str, width: int) -> nn.Parameter | None:
    """The learnable multiplier ``g`` of a residual branch ``x + g·f(x)``: ``None`` for ``"none"``, one scalar for
    ``"scalar"`` (SkipInit, De & Smith 2020; ReZero, Bachlechner et al. 2020), one value per channel for ``"channel"``
    (LayerScale, Touvron et al. 2021). It starts at 1, the ungated block, until a scheme sets it."""
    if kind == "none":
        return None
    if kind not in ("scalar", "channel"):
        raise ValueError(f"gate={kind!r} is not one of none|scalar|channel.")
    return nn.Parameter(torch.ones(() if kind == "scalar" else (width,)))
