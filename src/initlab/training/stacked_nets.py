"""A fast path for residual MLPs and transformers (:mod:`initlab.nets`): a population of N models of one of these
architectures runs as stacked tensor operations, without ``vmap``.

**Layout.** Activations keep the model axis first, contiguous: (N, B, width) in a residual MLP, (N, B, T, d) in a
transformer. Every ``nn.Linear`` is :class:`~initlab.training.stacked._StackedLinear` over its stacked weight
(N, out, in): the first layer of a batch shared by all models (or by groups of them) is one GEMM per group,
``x (B·T, in) @ W.view(N·out, in)ᵀ``, the others batched products over the model axis, (N, B·T, in) @ (N, in, out),
each gradient produced in its parameter's layout and the products in ``compute`` (bf16) when asked.

**Normalization.** Layer norm (Ba et al. 2016, "Layer Normalization") normalizes each position over its d features,
``y = γ ⊙ (x - μ) / √(σ² + ε) + β``, μ and σ² the mean and biased variance of the d features: ``F.layer_norm``
without the affine part, then the stacked γ, β (N, d) broadcast over (N, 1, ..., d) with one ``addcmul``. Where a
linear layer reads the result (pre-LN's q, k, v and fc1, the head after the mean over positions, a residual MLP
block's fc1), the affine part may instead fold into that layer's weights, ``W (γ ⊙ y + β) + b = (W diag γ) y +
(W β + b)``, which is cheaper when the activation has many more rows than the layer has outputs (:data:`FOLD_ROWS`).
Batch norm (Ioffe & Szegedy 2015) normalizes each model's features over its own batch: the stream (N, B, d) read as
(B, N·d) is N·d channels of ``F.batch_norm``, whose running statistics (N, d) are passed as (N·d,) views, so torch's
kernel updates them in place exactly as ``nn.BatchNorm1d`` does (``r ← (1 - m)·r + m·s``, momentum m, the unbiased
batch variance into ``running_var``; ``num_batches_tracked`` counts the steps); in eval mode it uses them.

**Attention** (Vaswani et al. 2017, "Attention Is All You Need", §3.2): ``softmax(q_h k_hᵀ / √d_h) v_h`` for each
head h, ``d_h = d / heads``, position t seeing positions ``≤ t`` when causal, as one batched product over N·B·heads:
``F.scaled_dot_product_attention`` for very short and for long sequences, the written-out product of
:class:`~initlab.nets.SelfAttention` in between, where it is faster (:data:`SMALL_T`, :data:`FUSED_ATTENTION_MIN_T`;
the two agree to ~2e-7). A decoder (``task="lm"``) reads its last position only, so its last block computes the
query, the output projection, the MLP and the norms of that position alone (keys and values still of every position):
the same outputs and gradients, for about 2/12 + 10/(12·T) of that block's matrix products (ffn = 4).

**Blocks.** A residual MLP block is ``x + g·fc2(drop(act(fc1(norm(x)))))`` (He et al. 2016, "Deep Residual Learning
for Image Recognition" and "Identity Mappings in Deep Residual Networks"). A transformer block has an attention and an
MLP branch, ``x + drop(g·f(LN(x)))`` each with pre-LN (Xiong et al. 2020), ``LN(x + drop(g·f(x)))`` with post-LN
(Vaswani et al. 2017), no norm at all, or ``LN(α·x + drop(g·f(x)))`` with DeepNorm's α = (2·depth)^(1/4) (Wang et
al. 2022, "DeepNet: Scaling Transformers to 1,000 Layers"; read from the block). ``g`` is the branch's gate
(SkipInit, De & Smith 2020; ReZero, Bachlechner et al. 2020; LayerScale, Touvron et al. 2021): a scalar (N,) or a
vector (N, d) per model. Token ids are looked up in the stacked table (N, V, d) viewed as (N·V, d), model n's ids
offset by n·V; an image's ``Conv2d`` with kernel = stride (ViT's patch embedding, Dosovitskiy et al. 2021) is a
reshape into patches followed by a linear map of each flattened (C·p·p) patch.

Dropout masks come from the :class:`~initlab.training.stacked.MaskSource`, each model drawing its own, as on the MLP
path. The choices between equivalent forms were measured on an AMD EPYC (AVX2), one thread, 12 models, batch 128 (see
the constants); tried and dropped as no faster: one fused q, k, v product (weights concatenated), attention written
as broadcast products for short sequences, in-place activations and residual additions, and a contiguous copy of
batch norm's (B, N·d) output.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812  (the name every torch user knows)
from torch import nn

from initlab.nets import FeedForward, ResidualMLP, ResidualMLPBlock, SelfAttention, Transformer, TransformerBlock
from initlab.training.stacked import ELEMENTWISE, MaskSource, _dropout, _StackedLinear, expand_groups

#: The pending affine part (γ, β) of a normalization, each (N, d) or None.
Affine = tuple[torch.Tensor | None, torch.Tensor | None]

#: Sequences this short or at least ``FUSED_ATTENTION_MIN_T`` long take the fused ``scaled_dot_product_attention``,
#: the others the written-out product, which is faster there. Measured, forward and backward of 12·128 sequences of
#: 4 heads of 16, one thread (fused vs written out): T = 2: 7.3 vs 6.9-7.5 ms; T = 3: 9.3-9.6 vs 12-19 ms; T = 5:
#: 15-16 vs 13 ms; T = 8: 21-22 vs 13-15 ms; T = 16: 35-36 vs 27-33 ms; T = 32: 70-72 vs 93-97 ms; T = 49: 148 vs
#: 384-456 ms (the scores no longer fit in the cache).
SMALL_T, FUSED_ATTENTION_MIN_T = 3, 32
#: A normalization's affine part folds into the next linear layers when the activation has at least this many rows
#: per model for each of their outputs (measured: 12 models, pre-LN transformer of width 64, T = 16 saves ~10% of a
#: step; a residual MLP of width 128 on batches of 128, where activation and weights have one size, loses ~9%).
FOLD_ROWS = 4


# -- what the path supports ----------------------------------------------------------------------------------------
def _children(module: nn.Module, names: set[str]) -> bool:
    return {name for name, _ in module.named_children()} == names


def _linear_ok(m: nn.Module) -> bool:
    return type(m) is nn.Linear


def _act_ok(m: nn.Module) -> bool:
    return type(m) in ELEMENTWISE and type(m) is not nn.PReLU


def _dropout_ok(m: nn.Module) -> bool:
    return type(m) is nn.Identity or type(m) is nn.Dropout


def _norm_ok(m: nn.Module, width: int, *, batch: bool) -> bool:
    """Identity, a LayerNorm over the last ``width`` features, or (``batch``) a BatchNorm1d of ``width`` features
    with a momentum (a cumulative average, momentum None, would need a per-model step count)."""
    if type(m) is nn.Identity:
        return True
    if type(m) is nn.LayerNorm:
        return tuple(m.normalized_shape) == (width,)
    if batch and type(m) is nn.BatchNorm1d:
        return m.num_features == width and m.momentum is not None
    return False


def _embedding_ok(m: nn.Module) -> bool:
    return (type(m) is nn.Embedding and m.padding_idx is None and m.max_norm is None and not m.scale_grad_by_freq
            and not m.sparse)  # fmt: skip


def _gate_ok(gate: object, width: int) -> bool:
    return gate is None or (isinstance(gate, nn.Parameter) and tuple(gate.shape) in ((), (width,)))


def _feedforward_ok(m: nn.Module, width: int) -> bool:
    return (type(m) is FeedForward and _children(m, {"fc1", "act", "drop", "fc2"}) and _linear_ok(m.fc1)
            and _linear_ok(m.fc2) and m.fc1.in_features == width and m.fc2.out_features == width
            and _act_ok(m.act) and _dropout_ok(m.drop))  # fmt: skip


def _resmlp_ok(model: ResidualMLP) -> bool:
    if not _children(model, {"flatten", "embed", "blocks", "norm", "act", "head"}):
        return False
    flat, embed = model.flatten, model.embed
    if type(flat) is not nn.Flatten or flat.start_dim != 1 or flat.end_dim != -1 or not _linear_ok(embed):
        return False
    width = embed.out_features
    for block in model.blocks:
        if not (type(block) is ResidualMLPBlock and _children(block, {"norm", "mlp"}) and _gate_ok(block.gate, width)
                and _norm_ok(block.norm, width, batch=True) and _feedforward_ok(block.mlp, width)):  # fmt: skip
            return False
    return (type(model.blocks) is nn.ModuleList and _norm_ok(model.norm, width, batch=True) and _act_ok(model.act)
            and _linear_ok(model.head))  # fmt: skip


def _attention_ok(m: nn.Module, width: int) -> bool:
    layers = ("q", "k", "v", "out")
    return (type(m) is SelfAttention and _children(m, set(layers)) and width % m.heads == 0
            and all(_linear_ok(getattr(m, k)) and getattr(m, k).in_features == getattr(m, k).out_features == width
                    for k in layers))  # fmt: skip


def _transformer_ok(model: Transformer) -> bool:
    if not _children(model, {"unflatten", "embed", "pos", "blocks", "norm", "head"}) or not _embedding_ok(model.pos):
        return False
    width = model.pos.embedding_dim
    embed = model.embed
    if model.inputs == "tokens":
        ok = _embedding_ok(embed) and type(model.unflatten) is nn.Identity
    elif model.inputs == "features":
        ok = _linear_ok(embed) and type(model.unflatten) is nn.Identity
    elif model.inputs == "image":
        unflat = model.unflatten
        ok = (type(embed) is nn.Conv2d and embed.kernel_size == embed.stride and embed.padding == (0, 0)
              and embed.dilation == (1, 1) and embed.groups == 1
              and (type(unflat) is nn.Identity or (type(unflat) is nn.Unflatten and unflat.dim == 1)))  # fmt: skip
    else:
        return False
    if not ok or model.task not in ("classify", "lm") or type(model.blocks) is not nn.ModuleList:
        return False
    for block in model.blocks:
        if not (type(block) is TransformerBlock and block.ln in ("pre", "post", "none", "deepnorm")
                and _children(block, {"ln1", "attn", "ln2", "mlp", "drop"})
                and _norm_ok(block.ln1, width, batch=False) and _norm_ok(block.ln2, width, batch=False)
                and _attention_ok(block.attn, width) and _feedforward_ok(block.mlp, width) and _dropout_ok(block.drop)
                and _gate_ok(block.attn_gate, width) and _gate_ok(block.mlp_gate, width)):  # fmt: skip
            return False
    return _norm_ok(model.norm, width, batch=False) and _linear_ok(model.head)


def supports(model: nn.Module) -> bool:
    """Whether ``model`` is a :class:`~initlab.nets.ResidualMLP` or a :class:`~initlab.nets.Transformer` built of
    exactly the layers this path computes (the module types themselves, not subclasses, whose forward may differ;
    no extra modules)."""
    if type(model) is ResidualMLP:
        return _resmlp_ok(model)
    if type(model) is Transformer:
        return _transformer_ok(model)
    return False


# -- the stacked layers --------------------------------------------------------------------------------------------
class _Stack:
    """The stacked parameters and buffers of one forward pass, and the stacked layers that read them by name."""

    def __init__(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], *, train: bool,
                 masks: MaskSource | None, compute: torch.dtype | None) -> None:  # fmt: skip
        self.params, self.buffers = params, buffers
        self.n = next(iter(params.values())).shape[0]
        self.train, self.masks, self.compute = train, masks, compute

    def linear(self, h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """``h (G or N, ..., in) -> (N, ..., out)``: ``h @ weight[n]ᵀ + bias[n]`` on the last axis. The output is
        contiguous: a shared or grouped batch's (B, N, out) product is copied once into the (N, B, out) layout, which
        every later batched product reads without a copy of its own (``baddbmm`` copies a strided operand, and
        elementwise results keep their first operand's layout, so the (B, N, out) layout would spread)."""
        lead = h.shape[1:-1]
        y = _StackedLinear.apply(h.reshape(h.shape[0], -1, h.shape[-1]), weight, bias, self.compute)
        return y.contiguous().view(self.n, *lead, y.shape[-1])

    def layer(self, h: torch.Tensor, name: str, affine: Affine | None = None) -> torch.Tensor:
        """The stacked ``nn.Linear`` called ``name`` of ``γ ⊙ h + β`` when given the pending ``affine`` (γ, β) of a
        normalization, folded into the layer: ``W (γ ⊙ h + β) + b = (W diag γ) h + (W β + b)``, products and sums
        of weight size (N, out, in) instead of two passes over the activation and three more for its gradients."""
        weight, bias = self.params[f"{name}.weight"], self.params.get(f"{name}.bias")
        if affine is not None:
            gamma, beta = affine
            if beta is not None:
                shift = torch.bmm(weight, beta.unsqueeze(-1)).squeeze(-1)  # W β: (N, out)
                bias = shift if bias is None else bias + shift
            if gamma is not None:
                weight = weight * gamma.unsqueeze(1)
        return self.linear(h, weight, bias)

    def _per_model(self, t: torch.Tensor, dims: int) -> torch.Tensor:
        """A stacked (N, *shape) tensor viewed to broadcast over an activation of ``dims`` axes, aligned on the
        last: (N, 1, ..., 1, *shape)."""
        return t.view(self.n, *(1,) * (dims - t.dim()), *t.shape[1:])

    def normalize(
        self, h: torch.Tensor, module: nn.Module, name: str, outputs: int = 0
    ) -> tuple[torch.Tensor, Affine | None]:
        """The normalization ``module`` of ``h`` (N, ..., d) and its affine part ``γ ⊙ y + β``, (γ, β) of (N, d) each.

        The affine part is returned pending, for the linear layers that read the result to fold in (see
        :meth:`layer`; they have ``outputs`` outputs in all), when ``h`` has at least :data:`FOLD_ROWS` times as many
        rows (positions) per model as there are ``outputs``: folding costs passes over the weights, applying passes
        over the activation. Otherwise (and with ``outputs`` 0: no linear layer next) it is applied, broadcast over
        (N, 1, ..., d), and the pending part is None."""
        if type(module) not in (nn.LayerNorm, nn.BatchNorm1d):
            return h, None
        gamma, beta = self.params.get(f"{name}.weight"), self.params.get(f"{name}.bias")
        affine = None if gamma is None and beta is None else (gamma, beta)
        fold = affine is not None and outputs > 0 and h.numel() // (self.n * h.shape[-1]) >= FOLD_ROWS * outputs
        if type(module) is nn.BatchNorm1d:  # torch's kernel applies the affine part as it normalizes
            return self._batch_norm(h, module, name, None if fold else affine), affine if fold else None
        y = F.layer_norm(h, module.normalized_shape, None, None, module.eps)
        if fold or affine is None:
            return y, affine
        gamma, beta = (None if t is None else self._per_model(t, y.dim()) for t in affine)
        if gamma is not None and beta is not None:
            return torch.addcmul(beta, y, gamma), None
        return (y * gamma if gamma is not None else y + beta), None

    def norm(self, h: torch.Tensor, module: nn.Module, name: str) -> torch.Tensor:
        """The normalization ``module`` of ``h``, affine part applied."""
        return self.normalize(h, module, name)[0]

    def _batch_norm(self, h: torch.Tensor, module: nn.BatchNorm1d, name: str, affine: Affine | None) -> torch.Tensor:
        """Batch norm of every model over its own batch, with the ``affine`` part if given: (N, B, d) as the N·d
        channels of (B, N·d)."""
        n, b, d = h.shape

        def flat(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.view(n * d)  # a view: the running statistics update in place

        mean, var = flat(self.buffers.get(f"{name}.running_mean")), flat(self.buffers.get(f"{name}.running_var"))
        batch_stats = self.train or mean is None
        if self.train and mean is not None:
            self.buffers[f"{name}.num_batches_tracked"].add_(1)
        weight, bias = (flat(t) for t in affine) if affine is not None else (None, None)
        y = F.batch_norm(h.transpose(0, 1).reshape(b, n * d), mean, var, weight, bias, batch_stats, module.momentum,
                         module.eps)  # fmt: skip
        return y.view(b, n, d).transpose(0, 1)

    def dropout(self, h: torch.Tensor, module: nn.Module) -> torch.Tensor:
        if type(module) is nn.Identity or not self.train or module.p == 0:
            return h
        if self.masks is None:
            raise ValueError("training a model with dropout needs a MaskSource for its masks.")
        return _dropout(expand_groups(h, self.n), module.p, self.masks)

    def gated(self, out: torch.Tensor, gate: str) -> torch.Tensor:
        """``g·out`` with the branch's gate ``g`` (N,) or (N, d), or ``out`` without one."""
        g = self.params.get(gate)
        return out if g is None else out * self._per_model(g, out.dim())

    def feedforward(
        self, h: torch.Tensor, module: FeedForward, name: str, affine: Affine | None = None
    ) -> torch.Tensor:
        """``fc2(drop(act(fc1(h))))``, ``h`` with its pending ``affine``."""
        return self.layer(self.dropout(module.act(self.layer(h, f"{name}.fc1", affine)), module.drop), f"{name}.fc2")

    def attention(self, h: torch.Tensor, module: SelfAttention, name: str, affine: Affine | None = None, *,
                  last: bool = False) -> torch.Tensor:  # fmt: skip
        """Multi-head self-attention of a (N, B, T, d) stream, ``out(concat_h softmax(q_h k_hᵀ / √d_h) v_h)``; with
        ``last``, only the last position's query (N, B, 1, d), which sees every position, causal or not."""
        n, b, t, d = h.shape
        heads, tq = module.heads, 1 if last else t

        def split(y: torch.Tensor) -> torch.Tensor:  # (N, B, T, d) -> (N·B, heads, T, d_h)
            y = y.reshape(n * b, y.shape[2], heads, d // heads).transpose(1, 2)
            return y if self.compute is None else y.to(self.compute)

        q = split(self.layer(h[:, :, -1:] if last else h, f"{name}.q", affine))
        k, v = split(self.layer(h, f"{name}.k", affine)), split(self.layer(h, f"{name}.v", affine))
        causal = module.causal and not last
        if t <= SMALL_T or t >= FUSED_ATTENTION_MIN_T:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        else:
            scores = (q @ k.transpose(-2, -1)).float() * (1.0 / math.sqrt(d // heads))  # softmax in float32
            if causal:
                future = torch.ones(t, t, dtype=torch.bool, device=h.device).triu(1)
                scores = scores.masked_fill(future, float("-inf"))
            y = scores.softmax(dim=-1).to(v.dtype) @ v
        y = y.transpose(1, 2).reshape(n, b, tq, d)
        return self.layer(y if self.compute is None else y.float(), f"{name}.out")

    def embedding(self, ids: torch.Tensor, name: str) -> torch.Tensor:
        """Token ids (G, B, ...) looked up in every model's table (N, V, d): ``F.embedding`` of the ids offset by
        n·V in the table viewed as (N·V, d). Returns (N, B, ..., d)."""
        table = self.params[f"{name}.weight"]
        n, vocab, d = table.shape
        if ids.numel():
            low, high = torch.aminmax(ids)
            if int(low) < 0 or int(high) >= vocab:
                raise IndexError(f"token ids must be in [0, {vocab}), got ids from {int(low)} to {int(high)}.")
        offsets = torch.arange(n, device=ids.device).mul_(vocab).view(n, *(1,) * (ids.dim() - 1))
        return F.embedding(expand_groups(ids, n) + offsets, table.reshape(n * vocab, d))


def _patches(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Images (G, B, C, H, W) as their p×q patches (G, B, T, C·p·q), T = (H/p)·(W/q) in row-major order: a ``Conv2d``
    with kernel = stride = (p, q) and no padding is a linear map of each flattened patch."""
    g, b, c, height, width = x.shape
    (p, q), rows, cols = size, height // size[0], width // size[1]
    x = x[..., : rows * p, : cols * q].reshape(g, b, c, rows, p, cols, q).permute(0, 1, 3, 5, 2, 4, 6)
    return x.reshape(g, b, rows * cols, c * p * q)


# -- the networks --------------------------------------------------------------------------------------------------
def _resmlp(model: ResidualMLP, s: _Stack, x: torch.Tensor) -> torch.Tensor:
    """``head(act(norm(blocks(embed(flatten(x))))))``, each block ``h + g·fc2(drop(act(fc1(norm(h)))))``."""
    h = s.layer(x.flatten(2), "embed")
    for i, block in enumerate(model.blocks):
        name = f"blocks.{i}"
        z, affine = s.normalize(h, block.norm, f"{name}.norm", block.mlp.fc1.out_features)
        out = s.feedforward(z, block.mlp, f"{name}.mlp", affine)
        h = h + s.gated(out, f"{name}.gate")
    return s.layer(model.act(s.norm(h, model.norm, "norm")), "head")


def _embed(model: Transformer, s: _Stack, x: torch.Tensor) -> torch.Tensor:
    """The input embedding (N, B, T, d): token ids, feature vectors or image patches."""
    if model.inputs == "tokens":
        if x.is_floating_point():
            raise TypeError(f"this transformer embeds token ids (int64 below {model.vocab}) and got {x.dtype} "
                            "inputs; feed float data as sequences (T, F) or images (C, H, W).")  # fmt: skip
        return s.embedding(x, "embed")
    if model.inputs == "features":
        return s.layer(x, "embed")
    if type(model.unflatten) is nn.Unflatten:
        x = x.unflatten(2, model.unflatten.unflattened_size)
    weight = s.params["embed.weight"]  # (N, d, C, p, q) -> (N, d, C·p·q)
    return s.linear(_patches(x, model.embed.kernel_size), weight.flatten(2), s.params.get("embed.bias"))


def _block(block: TransformerBlock, s: _Stack, h: torch.Tensor, name: str, *, last: bool = False) -> torch.Tensor:
    """One transformer block: attention and MLP branches with the layer norms where ``block.ln`` puts them. With
    ``last``, the block returns the last position only (N, B, 1, d): every step after the attention is per position,
    and the attention's keys and values still come from every position."""

    def attn(z: torch.Tensor, affine: Affine | None = None) -> torch.Tensor:
        out = s.attention(z, block.attn, f"{name}.attn", affine, last=last)
        return s.dropout(s.gated(out, f"{name}.attn_gate"), block.drop)

    def mlp(z: torch.Tensor, affine: Affine | None = None) -> torch.Tensor:
        out = s.feedforward(z, block.mlp, f"{name}.mlp", affine)
        return s.dropout(s.gated(out, f"{name}.mlp_gate"), block.drop)

    ln1, ln2 = f"{name}.ln1", f"{name}.ln2"
    skip = (lambda z: z[:, :, -1:]) if last else (lambda z: z)  # the residual of the positions computed
    if block.ln == "post":
        h = s.norm(skip(h) + attn(h), block.ln1, ln1)
        return s.norm(h + mlp(h), block.ln2, ln2)
    if block.ln == "deepnorm":
        h = s.norm(block.alpha * skip(h) + attn(h), block.ln1, ln1)
        return s.norm(block.alpha * h + mlp(h), block.ln2, ln2)
    h = skip(h) + attn(*s.normalize(h, block.ln1, ln1, 3 * h.shape[-1]))  # pre-LN: may fold into q, k, v
    return h + mlp(*s.normalize(h, block.ln2, ln2, block.mlp.fc1.out_features))  # and fc1


def _transformer(model: Transformer, s: _Stack, x: torch.Tensor) -> torch.Tensor:
    """``head(readout(norm(blocks(embed(x) + pos))))``, the readout the mean over positions or the last one."""
    h = _embed(model, s, x)
    t, positions = h.shape[2], s.params["pos.weight"]
    if t > positions.shape[1]:
        raise IndexError(f"the model has {positions.shape[1]} positions and got sequences of {t}.")
    h = h + positions[:, :t].unsqueeze(1)
    depth = len(model.blocks)
    for i, block in enumerate(model.blocks):
        # A decoder's head reads the last position only: the last block computes that one (its keys and values
        # still see every position), the same outputs and gradients for about 1/T of the block's work.
        h = _block(block, s, h, f"blocks.{i}", last=model.task == "lm" and i == depth - 1)
    # The final norm's affine part commutes with the mean over positions and may fold into the head.
    h, affine = s.normalize(h, model.norm, "norm", model.head.out_features)
    return s.layer(h.mean(dim=2) if model.task == "classify" else h[:, :, -1], "head", affine)


def forward(model: nn.Module, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor,
            *, per_model: bool, train: bool, masks: MaskSource | None = None,
            compute: torch.dtype | None = None) -> torch.Tensor:  # fmt: skip
    """Run the stacked ``model`` (see :func:`supports`) with stacked ``params`` and ``buffers``: (N, B, outputs).

    ``x`` is one batch shared by all N models (B, ...) or, with ``per_model``, one batch per group of N/G consecutive
    models (G, B, ...), G dividing N. In training mode batch norm uses each model's batch statistics and updates its
    running statistics in ``buffers`` in place, and dropout draws its masks from ``masks``; ``compute`` (bf16) is the
    dtype of the matrix products, while parameters, gradients and the activations between layers stay float32."""
    s = _Stack(params, buffers, train=train, masks=masks, compute=compute)
    h = x if per_model else x.unsqueeze(0)  # (G, B, ...): G = 1 for a shared batch
    if type(model) is ResidualMLP:
        return _resmlp(model, s, h)
    if type(model) is Transformer:
        return _transformer(model, s, h)
    raise TypeError(f"the stacked residual path does not run {type(model).__name__}; see supports().")
