"""A small ResNet for MNIST-sized images: He et al. 2016, "Deep Residual Learning for Image Recognition", §4.2.

The CIFAR-10 variant of the paper, with the stage widths as arguments: a 3×3 stem convolution, then one stage per
width of ``blocks`` basic blocks (two 3×3 convolutions each, ``act(branch(x) + shortcut(x))``), the first block of
every stage after the first halving the resolution with stride 2 and a projection shortcut (1×1 convolution and
norm, the paper's option B), then global average pooling and a linear head. ``ResNet((1, 28, 28), 10,
channels=(16, 32, 64), blocks=3)`` is the paper's ResNet-20 on one input channel.

Normalization is the paper's batch norm, a layer norm over channels and positions (``GroupNorm(1, C)``), or none;
a convolution followed by a norm has no bias (the norm's shift replaces it).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from initlab.nets._layers import ActivationName, NormName, activation, norm_2d
from initlab.nets._structure import BranchDecl, Declaration


class BasicBlock(nn.Module):
    """``act(branch(x) + shortcut(x))`` with ``branch = conv1 -> norm1 -> act -> conv2 -> norm2`` (3×3 convolutions,
    ``conv1`` with ``stride``) and an identity shortcut, or a 1×1 convolution and norm where the shape changes."""

    def __init__(self, c_in: int, c_out: int, *, stride: int, act: ActivationName, norm: NormName) -> None:
        super().__init__()
        bias = norm == "none"
        self.branch = nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=bias),
                norm1=norm_2d(norm, c_out),
                act=activation(act),
                conv2=nn.Conv2d(c_out, c_out, 3, padding=1, bias=bias),
                norm2=norm_2d(norm, c_out),
            )
        )
        self.shortcut: nn.Module | None = None
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                OrderedDict(conv=nn.Conv2d(c_in, c_out, 1, stride=stride, bias=bias), norm=norm_2d(norm, c_out))
            )
        self.act = activation(act)
        self._has_norm = norm != "none"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.act(self.branch(x) + skip)

    def residual_branches(self) -> tuple[BranchDecl, ...]:
        return (
            BranchDecl(
                branch="branch",
                last="branch.conv2",
                last_norm="branch.norm2" if self._has_norm else None,
                shortcut=None if self.shortcut is None else "shortcut",
            ),
        )


class ResNet(nn.Module):
    """``stem (conv 3×3, norm, act) -> stages -> global average pool -> head: Linear(channels[-1], outputs)`` for
    inputs ``(C, H, W)`` or ``(H, W)`` (one channel added); see the module docstring."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        outputs: int,
        *,
        channels: tuple[int, ...],
        blocks: int,
        act: ActivationName = "relu",
        norm: NormName = "batch",
    ) -> None:
        super().__init__()
        if len(input_shape) not in (2, 3):
            raise ValueError(
                f"resnet needs image inputs shaped (C, H, W) or (H, W), got input_shape={tuple(input_shape)}; use "
                "resmlp for flat inputs or transformer for token sequences."
            )
        # (B, H, W) -> (B, 1, H, W)
        self.unflatten = nn.Unflatten(1, (1, input_shape[0])) if len(input_shape) == 2 else nn.Identity()
        c_in = 1 if len(input_shape) == 2 else input_shape[0]
        self.stem = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(c_in, channels[0], 3, padding=1, bias=norm == "none"),
                norm=norm_2d(norm, channels[0]),
                act=activation(act),
            )
        )
        stages = []
        c = channels[0]
        for i, width in enumerate(channels):
            stage = [
                BasicBlock(c if j == 0 else width, width, stride=2 if (i > 0 and j == 0) else 1, act=act, norm=norm)
                for j in range(blocks)
            ]
            stages.append(nn.Sequential(*stage))
            c = width
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.head = nn.Linear(c, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.flatten(self.pool(self.stages(self.stem(self.unflatten(x))))))

    def declare_structure(self) -> Declaration:
        return Declaration(embeddings=("stem.conv",), head="head")
