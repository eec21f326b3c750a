"""A small transformer: an encoder for sequence and image classification, a causal decoder for next-token prediction.

- **Blocks** (Vaswani et al. 2017, "Attention Is All You Need"): self-attention and a position-wise MLP, each a
  residual branch. ``ln="post"`` is the original placement, ``x = LN(x + f(x))`` after each addition; ``ln="pre"``
  normalizes each branch's input, ``x = x + f(LN(x))``, and the stream once more before the head (GPT-2; Xiong et
  al. 2020, "On Layer Normalization in the Transformer Architecture", show that pre-LN keeps the gradients at the
  output well-behaved at initialization, so it trains without warm-up); ``ln="none"`` has no normalization at all
  (what T-Fixup-style initializations make trainable); ``ln="deepnorm"`` is post-LN with the residual up-weighted,
  ``x = LN(α·x + f(x))`` with α = (2N)^(1/4) for N blocks (DeepNorm: Wang et al. 2022, "DeepNet: Scaling
  Transformers to 1,000 Layers", the encoder-only and decoder-only α; the matching initialization is the
  ``deepnet`` scheme).
- **Inputs**: token ids ``(B, T)`` through an ``nn.Embedding(vocab, d)``; feature sequences ``(B, T, F)`` through an
  ``nn.Linear(F, d)``; images ``(B, C, H, W)`` cut into ``patch × patch`` patches, each linearly embedded (a
  ``Conv2d`` with kernel and stride ``patch``), as in ViT (Dosovitskiy et al. 2021, "An Image is Worth 16x16
  Words"). A learned position embedding (``nn.Embedding(T, d)``) is added in every case.
- **Readout**: ``task="classify"`` is an encoder (every position sees every other) whose head reads the mean over
  positions (ViT's global-average-pool variant, without a class token); ``task="lm"`` is a decoder (causal mask,
  GPT: Radford et al. 2018) whose head reads the last position: the logits of the next token.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from initlab.nets._layers import ActivationName, FeedForward, SelfAttention, branch_gate
from initlab.nets._structure import BranchDecl, Declaration

LNPlace = Literal["pre", "post", "none", "deepnorm"]
Task = Literal["classify", "lm"]

#: An image gets the smallest patch that gives at most this many tokens, unless the patch is given.
MAX_AUTO_PATCHES = 64


class TransformerBlock(nn.Module):
    """Self-attention then an MLP (hidden ``ffn · d``), each a residual branch, with the layer norms where ``ln``
    says (see the module docstring); ``attn.out`` and ``mlp.fc2`` write into the stream. ``alpha`` is DeepNorm's
    residual weight (``ln="deepnorm"`` only; :class:`Transformer` sets it to (2N)^(1/4))."""

    def __init__(
        self,
        width: int,
        heads: int,
        *,
        ffn: int,
        act: ActivationName,
        ln: LNPlace,
        dropout: float,
        causal: bool,
        bias: bool,
        gate: str = "none",
        alpha: float = 1.0,
    ) -> None:
        super().__init__()
        if ln not in ("pre", "post", "none", "deepnorm"):
            raise ValueError(f"ln={ln!r} is not one of pre|post|none|deepnorm.")
        if alpha != 1.0 and ln != "deepnorm":
            raise ValueError(f"alpha={alpha!r} up-weights the residual of ln=deepnorm blocks only, not ln={ln!r}.")
        self.ln = ln
        # DeepNorm's residual weight α in LN(α·x + f(x)); a plain float, not a parameter: it is architecture.
        self.alpha = float(alpha)
        self.ln1 = nn.LayerNorm(width) if ln != "none" else nn.Identity()
        self.attn = SelfAttention(width, heads, causal=causal, bias=bias)
        self.ln2 = nn.LayerNorm(width) if ln != "none" else nn.Identity()
        self.mlp = FeedForward(width, ffn * width, act=act, dropout=0.0, bias=bias)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        # x + g·f(x) when gated (SkipInit, ReZero, LayerScale): one gate per branch.
        self.attn_gate, self.mlp_gate = branch_gate(gate, width), branch_gate(gate, width)

    @staticmethod
    def _gated(gate: nn.Parameter | None, out: torch.Tensor) -> torch.Tensor:
        return out if gate is None else gate * out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.ln == "post":
            x = self.ln1(x + self.drop(self._gated(self.attn_gate, self.attn(x))))
            return self.ln2(x + self.drop(self._gated(self.mlp_gate, self.mlp(x))))
        if self.ln == "deepnorm":
            x = self.ln1(self.alpha * x + self.drop(self._gated(self.attn_gate, self.attn(x))))
            return self.ln2(self.alpha * x + self.drop(self._gated(self.mlp_gate, self.mlp(x))))
        x = x + self.drop(self._gated(self.attn_gate, self.attn(self.ln1(x))))
        return x + self.drop(self._gated(self.mlp_gate, self.mlp(self.ln2(x))))

    def residual_branches(self) -> tuple[BranchDecl, ...]:
        gated = self.attn_gate is not None
        return (
            BranchDecl(branch="attn", last="attn.out", gate="attn_gate" if gated else None),
            BranchDecl(branch="mlp", last="mlp.fc2", gate="mlp_gate" if gated else None),
        )


def auto_patch(height: int, width: int) -> int:
    """The smallest patch size dividing both sides that cuts the image into at most :data:`MAX_AUTO_PATCHES`."""
    side = math.gcd(height, width)
    for p in range(1, side + 1):
        if side % p == 0 and (height // p) * (width // p) <= MAX_AUTO_PATCHES:
            return p
    return side


class Transformer(nn.Module):
    """``embed + pos -> depth × TransformerBlock -> [LN] -> mean or last position -> head: Linear(d, outputs)``.

    ``input_shape`` decides the input kind: ``(T,)`` token ids below ``vocab``; ``(T, F)`` feature vectors, or a
    one-channel ``(H, W)`` image when ``patch`` is given; ``(C, H, W)`` an image, cut into patches of ``patch``
    (``None``: :func:`auto_patch`). See the module docstring for the rest.
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        outputs: int,
        *,
        width: int,
        depth: int,
        heads: int = 4,
        ln: LNPlace = "pre",
        task: Task = "classify",
        patch: int | None = None,
        ffn: int = 4,
        act: ActivationName = "gelu",
        dropout: float = 0.0,
        bias: bool = True,
        vocab: int | None = None,
        gate: str = "none",
    ) -> None:
        super().__init__()
        shape = tuple(input_shape)
        if task not in ("classify", "lm"):
            raise ValueError(f"task={task!r} is not one of classify|lm.")
        image = len(shape) == 3 or (len(shape) == 2 and patch is not None)
        self.inputs: Literal["tokens", "features", "image"] = (
            "image" if image else "tokens" if len(shape) == 1 else "features"
        )
        self.unflatten: nn.Module = nn.Identity()
        if self.inputs == "image":
            if task == "lm":
                raise ValueError("task=lm predicts the next token and needs token inputs, not images.")
            if len(shape) == 2:
                self.unflatten = nn.Unflatten(1, (1, shape[0]))  # (B, H, W) -> (B, 1, H, W)
                shape = (1, *shape)
            c, h, w = shape
            patch = auto_patch(h, w) if patch is None else patch
            if h % patch or w % patch:
                raise ValueError(
                    f"patch={patch} does not divide the image size {h}×{w}; use one of "
                    f"{[p for p in range(1, math.gcd(h, w) + 1) if math.gcd(h, w) % p == 0]}."
                )
            self.embed: nn.Module = nn.Conv2d(c, width, patch, stride=patch, bias=bias)
            tokens = (h // patch) * (w // patch)
        elif patch is not None:
            raise ValueError(f"patch applies to image inputs (C, H, W) or (H, W), not input_shape={shape}.")
        elif self.inputs == "tokens":
            if vocab is None:
                raise ValueError("a transformer on token ids needs the vocabulary size (vocab=V).")
            self.embed = nn.Embedding(vocab, width)
            tokens = shape[0]
        elif len(shape) == 2:
            self.embed = nn.Linear(shape[1], width, bias=bias)
            tokens = shape[0]
        else:
            raise ValueError(
                f"a transformer takes token ids (T,), feature sequences (T, F) or images (C, H, W); got "
                f"input_shape={shape}."
            )
        self.patch = patch
        self.vocab = vocab if self.inputs == "tokens" else None
        self.task = task
        self.pos = nn.Embedding(tokens, width)
        # DeepNorm's α = (2N)^(1/4), N blocks (Wang et al. 2022, Fig. 2, encoder-only and decoder-only).
        alpha = (2 * depth) ** 0.25 if ln == "deepnorm" else 1.0
        self.blocks = nn.ModuleList(
            TransformerBlock(
                width,
                heads,
                ffn=ffn,
                act=act,
                ln=ln,
                dropout=dropout,
                causal=task == "lm",
                bias=bias,
                gate=gate,
                alpha=alpha,
            )
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(width) if ln == "pre" else nn.Identity()
        self.head = nn.Linear(width, outputs, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inputs == "tokens":
            if x.is_floating_point():
                raise TypeError(
                    f"this transformer embeds token ids (int64 below {self.vocab}) and got {x.dtype} inputs; feed "
                    "float data as sequences (T, F) or images (C, H, W)."
                )
            h = self.embed(x)
        elif self.inputs == "image":
            h = self.embed(self.unflatten(x)).flatten(2).transpose(1, 2)  # (B, d, H/p, W/p) -> (B, T, d)
        else:
            h = self.embed(x)
        h = h + self.pos(torch.arange(h.shape[1], device=h.device))
        for block in self.blocks:
            h = block(h)
        h = self.norm(h)
        return self.head(h.mean(dim=1) if self.task == "classify" else h[:, -1])

    def declare_structure(self) -> Declaration:
        return Declaration(embeddings=("embed", "pos"), head="head")
