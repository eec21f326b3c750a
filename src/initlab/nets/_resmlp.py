"""A residual MLP: an input projection, ``depth`` pre-norm residual blocks of one width, and a linear head.

Each block computes ``x + fc2(act(fc1(norm(x))))`` (an identity shortcut around a two-layer MLP, He et al. 2016,
"Deep Residual Learning for Image Recognition"; the normalization at the start of the branch, "pre-norm", as in He et
al. 2016, "Identity Mappings in Deep Residual Networks", and Xiong et al. 2020). Without normalization the stream's
variance grows with every block unless the initialization shrinks the branches, which is what makes this network a
test bed for depth-aware schemes (Fixup, SkipInit, 1/√depth scaling of ``fc2``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from initlab.nets._layers import ActivationName, FeedForward, NormName, activation, branch_gate, norm_1d
from initlab.nets._structure import BranchDecl, Declaration


class ResidualMLPBlock(nn.Module):
    """``x + fc2(drop(act(fc1(norm(x)))))`` on a ``(B, width)`` stream; ``mlp.fc2`` writes into the stream."""

    def __init__(
        self, width: int, *, act: ActivationName, norm: NormName, dropout: float, bias: bool, gate: str = "none"
    ) -> None:
        super().__init__()
        self.norm = norm_1d(norm, width)
        self.mlp = FeedForward(width, width, act=act, dropout=dropout, bias=bias)
        self.gate = branch_gate(gate, width)  # x + g·f(x) when gated (SkipInit, ReZero, LayerScale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.mlp(self.norm(x))
        return x + (out if self.gate is None else self.gate * out)

    def residual_branches(self) -> tuple[BranchDecl, ...]:
        return (BranchDecl(branch="mlp", last="mlp.fc2", gate=None if self.gate is None else "gate"),)


class ResidualMLP(nn.Module):
    """``Flatten -> embed: Linear(in, width) -> depth × ResidualMLPBlock -> norm -> act -> head: Linear(width, out)``.

    The final normalization and activation before the head follow the pre-activation ResNet (He et al. 2016,
    "Identity Mappings"); ``norm="none"`` leaves only the activation.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        outputs: int,
        *,
        width: int,
        depth: int,
        act: ActivationName = "relu",
        norm: NormName = "none",
        dropout: float = 0.0,
        bias: bool = True,
        gate: str = "none",
    ) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.embed = nn.Linear(math.prod(input_shape), width, bias=bias)
        self.blocks = nn.ModuleList(
            ResidualMLPBlock(width, act=act, norm=norm, dropout=dropout, bias=bias, gate=gate) for _ in range(depth)
        )
        self.norm = norm_1d(norm, width)
        self.act = activation(act)
        self.head = nn.Linear(width, outputs, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(self.flatten(x))
        for block in self.blocks:
            h = block(h)
        return self.head(self.act(self.norm(h)))

    def declare_structure(self) -> Declaration:
        return Declaration(embeddings=("embed",), head="head")
