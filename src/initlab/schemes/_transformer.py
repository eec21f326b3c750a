"""Schemes for transformers: GPT-2's residual scaling, T-Fixup, DeepNet, small embeddings and mimetic attention.

The residual stream's output projections and the embeddings come from the model's declared structure
(:func:`initlab.nets.structure`); attention's query, key, value and output projections from the attention module's
type (initlab's :class:`~initlab.nets.SelfAttention`, torch's ``nn.MultiheadAttention``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from initlab.catalog import RandomNormal, RandomUniform, XavierNormal
from initlab.checks import check_choice, check_finite, check_positive
from initlab.nets import Structure, StructureError, TransformerBlock
from initlab.schemes._roles import Slot
from initlab.schemes._structural import (
    ATTENTION_TYPES,
    Override,
    Plan,
    Shared,
    StructuralScheme,
    Targets,
    attention_parts,
    fmt,
    generator_for,
    optional_structure,
    residual_structure,
    submodules,
    weights_of,
)
from initlab.seeding import Seed
from initlab.tracing import EMBEDDING_TYPES, FEEDFORWARD_TYPES


def transformer_structure(targets: Targets, scheme: str) -> tuple[Structure, list[str]]:
    """The structure and the attention modules of a transformer's residual branches, or a clear error."""
    found = residual_structure(targets, scheme, needs="transformer blocks")
    attention = [a for b in found.branches for a in submodules(targets.model, b.name, ATTENTION_TYPES)]
    if not attention:
        raise StructureError(
            f"{scheme} needs transformer blocks (residual branches with self-attention); the branches of "
            f"{type(targets.model).__name__} have none: build a transformer spec (transformer:64x4)."
        )
    return found, attention


def branch_weights(targets: Targets, branch: str, *, attention: tuple[str, ...]) -> list[Slot]:
    """The weights of a branch that a transformer scheme scales: the ``attention`` parts (e.g. value and output) of
    an attention branch, every weight layer of a feed-forward (MLP) branch."""
    model = targets.model
    modules = submodules(model, branch, ATTENTION_TYPES)
    if modules:
        return [targets.key(attention_parts(model, a)[part]) for a in modules for part in attention]
    return weights_of(targets, submodules(model, branch, FEEDFORWARD_TYPES))


@dataclass(frozen=True)
class GPT2Scaling(StructuralScheme):
    """GPT-2's initialization (Radford et al. 2019, "Language Models are Unsupervised Multitask Learners", §2.3; the
    values as in OpenAI's code and nanoGPT): every weight and embedding N(0, 0.02²), biases 0, layer norms 1/0,
    and the residual stream's output projections (the last layer of each residual branch: attention's ``out``, the
    MLP's ``fc2``) N(0, (0.02/√N)²), where N is the number of residual layers, two per transformer block: "we scale
    the weights of residual layers at initialization by a factor of 1/√N". The sum of N branch outputs then keeps
    the stream's variance independent of depth.
    """

    config_name = "a GPT2Scaling config"
    scheme_name: ClassVar[str] = "gpt2"

    std: float = 0.02  #: the std of every weight; the projections get std/√N

    def __post_init__(self) -> None:
        object.__setattr__(self, "std", check_positive("std", self.std))
        super().__post_init__()

    def default_base(self) -> Any:
        return {"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": self.std}}

    def plan(self, targets: Targets) -> Plan:
        found = residual_structure(targets, self.scheme_name)
        count = len(found.branches)
        std = self.std / math.sqrt(count)
        label = f"residual output projection → N(0, ({fmt(self.std)}/√N)²), N = {count}: std {fmt(std)}"
        plan = Plan(extra={"residual_layers": count, "projection_std": std})
        plan.set(weights_of(targets, found.output_projections), Override(label, init=RandomNormal(0.0, std)))
        return plan


@dataclass(frozen=True)
class TFixup(StructuralScheme):
    """T-Fixup (Huang et al. 2020, "Improving Transformer Optimization Through Better Initialization", Alg. 2), for a
    transformer without layer normalization (T-Fixup replaces it and learning-rate warm-up):

    * Xavier initialization (the base, Xavier uniform) for every parameter except the input embeddings, which are
      N(0, 1/d) (std d^-1/2, d the embedding width) for embedding tables and keep the base for a Linear or
      patch-convolution input layer;
    * input embeddings (token and position) scaled by (9N)^(-1/4);
    * in every block, the value and output projections of attention and the MLP's weights scaled by
      0.67·N^(-1/4) in an encoder, by (9N)^(-1/4) in a decoder (causal attention); N is the number of blocks.
      The query and key projections keep their Xavier values.
    """

    config_name = "a TFixup config"
    scheme_name: ClassVar[str] = "t_fixup"

    def default_base(self) -> Any:
        return "xavier_uniform"

    def plan(self, targets: Targets) -> Plan:
        model = targets.model
        found, attention = transformer_structure(targets, self.scheme_name)
        if found.norms:
            raise StructureError(
                f"t_fixup is for transformers without layer normalization (T-Fixup replaces it): build the transformer "
                f"with ln=none, e.g. transformer:64x4;ln=none. {type(model).__name__} has {len(found.norms)} norm "
                f"layer(s): {', '.join(found.norms[:3])}."
            )
        n = len(found.blocks)
        decoder = any(bool(getattr(model.get_submodule(a), "causal", False)) for a in attention)
        factor = (9 * n) ** -0.25 if decoder else 0.67 * n**-0.25
        rule = f"(9N)^(-1/4), N = {n}" if decoder else f"0.67·N^(-1/4), N = {n}"
        plan = Plan(extra={"blocks": n, "decoder": decoder, "branch_factor": factor})
        for branch in found.branches:
            label = f"{'decoder' if decoder else 'encoder'} v/out and MLP weights: base × {rule} = {fmt(factor)}"
            plan.set(branch_weights(targets, branch.name, attention=("v", "out")), Override(label, scale=factor))
        embed = (9 * n) ** -0.25
        for name in found.embeddings:
            if isinstance(model.get_submodule(name), EMBEDDING_TYPES):
                for slot in targets.of(name, "embedding"):
                    std = slot.shape[1] ** -0.5
                    label = f"input embedding → N(0, 1/d) × (9N)^(-1/4) = std {fmt(std)} × {fmt(embed)}"
                    plan.set([slot], Override(label, init=RandomNormal(0.0, std), scale=embed))
            else:
                label = f"input embedding layer: base × (9N)^(-1/4) = {fmt(embed)}"
                plan.set(targets.of(name, "weight"), Override(label, scale=embed))
        return plan


@dataclass(frozen=True)
class DeepNet(StructuralScheme):
    """DeepNet's initialization (Wang et al. 2022, "DeepNet: Scaling Transformers to 1,000 Layers", §3 and Fig. 2),
    for a post-LN transformer of N blocks, encoder-only or decoder-only:

    * the MLP's weights and attention's value and output projections: Xavier normal with gain β = (8N)^(-1/4);
    * the query and key projections: Xavier normal with gain 1; the rest: the base (Xavier normal).

    DeepNorm also up-weights the residual, ``x_{l+1} = LN(α·x_l + G(x_l))`` with α = (2N)^(1/4): that is part of the
    architecture, not of the initialization: initlab's transformer applies it with ``ln=deepnorm``
    (``transformer:64x24;ln=deepnorm``). A block of initlab must be post-LN, ``ln=post`` (β only: the residual is not
    up-weighted) or ``ln=deepnorm`` (β and α: DeepNorm as published); ``report.extra`` records α and whether the
    model applies it (``alpha_applied``).
    """

    config_name = "a DeepNet config"
    scheme_name: ClassVar[str] = "deepnet"

    def default_base(self) -> Any:
        return "xavier_normal"

    def plan(self, targets: Targets) -> Plan:
        model = targets.model
        found, _ = transformer_structure(targets, self.scheme_name)
        blocks = [(b.name, model.get_submodule(b.name)) for b in found.blocks]
        pre = [name for name, m in blocks if isinstance(m, TransformerBlock) and m.ln not in ("post", "deepnorm")]
        if pre:
            raise StructureError(
                f"deepnet is for post-LN transformers (DeepNorm: x = LN(α·x + f(x))); block {pre[0]!r} is not "
                "post-LN: build the transformer with ln=deepnorm (or ln=post, without α), e.g. "
                "transformer:64x4;ln=deepnorm."
            )
        n = len(found.blocks)
        beta, alpha = (8 * n) ** -0.25, (2 * n) ** 0.25
        # α is the model's (ln=deepnorm sets it from the same N); a block of another type is not known to apply it.
        applied = bool(blocks) and all(
            isinstance(m, TransformerBlock) and m.ln == "deepnorm" and math.isclose(m.alpha, alpha) for _, m in blocks
        )
        plan = Plan(extra={"blocks": n, "beta": beta, "alpha": alpha, "alpha_applied": applied})
        scaled = Override(
            f"v/out and MLP weights → Xavier normal, gain β = (8N)^(-1/4) = {fmt(beta)}", XavierNormal(beta)
        )
        plain = Override("q/k → Xavier normal, gain 1", init=XavierNormal(1.0))
        for branch in found.branches:
            plan.set(branch_weights(targets, branch.name, attention=("q", "k")), plain)
            plan.set(branch_weights(targets, branch.name, attention=("v", "out")), scaled)
        return plan


@dataclass(frozen=True)
class SmallEmbedding(StructuralScheme):
    """Small embeddings: every embedding table U(-ε, ε) (``distribution="uniform"``) or N(0, ε²) (``"normal"``), with
    ε = 1e-4 by default; the rest gets the base, GPT-2's N(0, 0.02²).

    Embedding rows that start near zero move fast away from it in the first steps, and a layer norm after the
    embedding (pre-LN's first norm) turns them into well-scaled inputs; this is the "small init embedding" of RWKV
    (Peng et al. 2023) and related to the small initialization of Nguyen & Salazar (2019, "Transformers without
    Tears"). Targets: the declared embeddings that are embedding tables (token and position), or every embedding
    table of a model that declares no structure.
    """

    config_name = "a SmallEmbedding config"
    scheme_name: ClassVar[str] = "small_embedding"

    scale: float = 1e-4  #: ε: the half-width of the uniform, or the std of the normal
    distribution: Literal["uniform", "normal"] = "uniform"

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", check_positive("scale", self.scale))
        check_choice("distribution", self.distribution, ("uniform", "normal"))
        super().__post_init__()

    def default_base(self) -> Any:
        return {"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": 0.02}}

    def plan(self, targets: Targets) -> Plan:
        found = optional_structure(targets)
        tables = targets.with_role("embedding")
        if found is not None and found.embeddings:
            tables = [s for s in tables if s.module_name in found.embeddings]
        if not tables:
            raise ValueError(
                f"small_embedding initializes embedding tables (nn.Embedding); {type(targets.model).__name__} has none"
                " among its embeddings: build a transformer on token inputs (a sequence task such as modadd)."
            )
        if self.distribution == "uniform":
            init, text = RandomUniform(-self.scale, self.scale), f"U(±{fmt(self.scale)})"
        else:
            init, text = RandomNormal(0.0, self.scale), f"N(0, {fmt(self.scale)}²)"
        plan = Plan(extra={"tables": [s.name for s in tables]})
        plan.set(tables, Override(f"embedding table → {text}", init=init))
        return plan


@dataclass(frozen=True)
class Mimetic(StructuralScheme):
    """Mimetic initialization of self-attention (Trockman & Kolter 2023, "Mimetic Initialization of Self-Attention
    Layers"): the query/key and value/output products start like those of pretrained transformers,

        W_qᵀ W_k ≈ α₁·Z₁ + β₁·I (per head),     W_o W_v ≈ α₂·Z₂ − β₂·I,     Z entries N(0, 1/d)

    in torch's convention (``y = W x``; the paper writes W_q W_kᵀ and W_v W_proj for row vectors), with α₁ = β₁ = 0.7
    and α₂ = β₂ = 0.4 (the paper's values). For each head h, A = α₁Z₁ + β₁I = U S Vᵀ (a fresh Z₁ per head) gives
    W_q[h] = S_k^½ U_kᵀ and W_k[h] = S_k^½ V_kᵀ with the top k = d/heads singular values: W_q[h]ᵀ W_k[h] is A's best
    rank-k approximation. A = α₂Z₂ − β₂I = U S Vᵀ gives W_o = U S^½ and W_v = S^½ Vᵀ: W_o W_v = A exactly. Each
    token then attends most to itself, and the value/output path starts close to −β₂·I. ``distribution="uniform"``
    draws Z uniform with the same variance (the authors' code). The rest gets the base (Xavier uniform).
    """

    config_name = "a Mimetic config"
    scheme_name: ClassVar[str] = "mimetic"

    alpha_qk: float = 0.7
    beta_qk: float = 0.7
    alpha_vo: float = 0.4
    beta_vo: float = 0.4
    distribution: Literal["normal", "uniform"] = "normal"

    def __post_init__(self) -> None:
        for name in ("alpha_qk", "beta_qk", "alpha_vo", "beta_vo"):
            object.__setattr__(self, name, check_finite(name, getattr(self, name)))
        check_choice("distribution", self.distribution, ("normal", "uniform"))
        super().__post_init__()

    def default_base(self) -> Any:
        return "xavier_uniform"

    def plan(self, targets: Targets) -> Plan:
        model = targets.model
        modules = submodules(model, "", ATTENTION_TYPES)
        if not modules:
            raise ValueError(
                f"mimetic initializes self-attention layers (initlab's SelfAttention or torch's nn.MultiheadAttention);"
                f" {type(model).__name__} has none: build a transformer spec (transformer:64x4)."
            )
        plan = Plan(extra={"attention": modules})
        label = {
            "q": f"attention q: W_qᵀW_k ≈ {fmt(self.alpha_qk)}·Z + {fmt(self.beta_qk)}·I per head",
            "k": f"attention k: W_qᵀW_k ≈ {fmt(self.alpha_qk)}·Z + {fmt(self.beta_qk)}·I per head",
            "v": f"attention v: W_oW_v = {fmt(self.alpha_vo)}·Z − {fmt(self.beta_vo)}·I",
            "out": f"attention out: W_oW_v = {fmt(self.alpha_vo)}·Z − {fmt(self.beta_vo)}·I",
        }
        for name in modules:
            width, heads = _attention_shape(model.get_submodule(name), name)
            shared = Shared(partial(self._draw, width, heads, name))
            for part, key in attention_parts(model, name).items():
                plan.set([targets.key(key)], Override(label[part], values=shared.part(part)))
        return plan

    def _draw(self, width: int, heads: int, name: str, seed: Seed) -> dict[str, torch.Tensor]:
        return self.matrices(width, heads, generator_for(seed, name, "mimetic"))

    def matrices(self, width: int, heads: int, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        """The query, key, value and output weights (torch layout, float64) of one attention module."""
        k = width // heads
        q, key = torch.empty(width, width, dtype=torch.float64), torch.empty(width, width, dtype=torch.float64)
        for h in range(heads):
            u, s, vh = torch.linalg.svd(self._target(width, self.alpha_qk, self.beta_qk, generator))
            root = s[:k].sqrt()
            q[h * k : (h + 1) * k] = root[:, None] * u[:, :k].T
            key[h * k : (h + 1) * k] = root[:, None] * vh[:k]
        u, s, vh = torch.linalg.svd(self._target(width, self.alpha_vo, -self.beta_vo, generator))
        return {"q": q, "k": key, "v": s.sqrt()[:, None] * vh, "out": u * s.sqrt()}

    def _target(self, width: int, alpha: float, beta: float, generator: torch.Generator | None) -> torch.Tensor:
        """α·Z + β·I with Z's entries of variance 1/d, normal or uniform."""
        if self.distribution == "normal":
            z = torch.randn(width, width, generator=generator, dtype=torch.float64) / math.sqrt(width)
        else:
            z = (torch.rand(width, width, generator=generator, dtype=torch.float64) * 2 - 1) * math.sqrt(3 / width)
        return alpha * z + beta * torch.eye(width, dtype=torch.float64)


def _attention_shape(module: nn.Module, name: str) -> tuple[int, int]:
    """The width and number of heads of an attention module whose four projections are square."""
    if isinstance(module, nn.MultiheadAttention):
        if module.in_proj_weight is None:
            raise ValueError(f"mimetic needs square projections; attention {name!r} has kdim/vdim != embed_dim.")
        return module.embed_dim, module.num_heads
    return int(module.q.weight.shape[0]), int(module.heads)
