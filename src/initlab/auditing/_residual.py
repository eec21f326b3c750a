"""Residual output projections: the layers that write into a residual stream, and whether they are scaled for depth.

GPT-2 (Radford et al. 2019, "Language Models are Unsupervised Multitask Learners", §2.3): "A modified initialization
which accounts for the accumulation on the residual path with model depth is used. We scale the weights of residual
layers at initialization by a factor of 1/√N where N is the number of residual layers." In a pre-norm transformer
every block adds the output of its attention and of its MLP to the stream, so the stream's variance grows with each
of the N additions; with every added branch scaled by 1/√N it stays of order one at any depth. Hugging Face's
``GPT2PreTrainedModel._init_weights`` draws ``c_proj`` with std ``initializer_range / √(2·n_layer)``: two residual
layers per block.

A projection is recognised by its module type (a class name anywhere in the MRO) and the attribute path of the
projection on it, never by fragments of parameter names:

===========================================  ==============================================================
module type                                  residual output projections
===========================================  ==============================================================
``GPT2Attention`` (transformers)             ``c_proj``
``GPT2MLP`` (transformers)                   ``c_proj``
``TransformerEncoderLayer`` (torch.nn)       ``self_attn.out_proj``, ``linear2``  (pre-norm only)
``TransformerDecoderLayer`` (torch.nn)       ``self_attn.out_proj``, ``multihead_attn.out_proj``, ``linear2``
                                             (pre-norm only)
===========================================  ==============================================================

Post-norm layers (``norm_first=False``, torch's default) normalize the stream after every addition, so nothing
accumulates and the rule does not apply to them.

**The verdict.** N is the number of residual projections in the model. The base std σ₀ is the std the projection
would have without depth scaling: the model's declared std (``config.initializer_range``) if it has one, else the
reference's expected std for that parameter, else the median std of the block's other weight matrices. With
``f = std / σ₀``: *scaled for depth* when ``f`` is within a factor :data:`RESIDUAL_TOLERANCE` of 1/√N and nearer to it
than to 1; *not scaled* when within that factor of 1; otherwise scaled by some other factor, which is reported as
it is.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from torch import nn

#: Module type (class name) -> attribute paths of its residual output projections (see the module docstring).
RESIDUAL_OUTPUTS: dict[str, tuple[str, ...]] = {
    "GPT2Attention": ("c_proj",),  # transformers/models/gpt2/modeling_gpt2.py
    "GPT2MLP": ("c_proj",),
    "TransformerEncoderLayer": ("self_attn.out_proj", "linear2"),  # torch/nn/modules/transformer.py
    "TransformerDecoderLayer": ("self_attn.out_proj", "multihead_attn.out_proj", "linear2"),
}
#: Module types of :data:`RESIDUAL_OUTPUTS` that are residual only when pre-norm (their ``norm_first`` is true).
_PRE_NORM_ONLY = frozenset({"TransformerEncoderLayer", "TransformerDecoderLayer"})
#: A residual projection's factor matches 1/√N (or 1) when within this factor of it, either way.
RESIDUAL_TOLERANCE = 1.25

Verdict = Literal["scaled", "not_scaled", "other"]


@dataclass(frozen=True)
class ResidualProjection:
    """A weight that writes into the residual stream: its parameter, its block, and the block's other matrices."""

    name: str  #: qualified name of the projection's weight
    block: str  #: qualified name of the block module (``"transformer.h.0.attn"``)
    block_type: str
    siblings: tuple[str, ...]  #: qualified names of the block's other weight matrices


@dataclass(frozen=True)
class ResidualVerdict:
    """Whether a residual projection is scaled for depth: the verdict, N, the base std and where it came from, and
    the observed factor ``std / base``."""

    verdict: Verdict
    depth: int
    base: float
    base_source: str
    factor: float

    @property
    def target(self) -> float:
        """GPT-2's factor 1/√N."""
        return 1.0 / math.sqrt(self.depth)

    def describe(self) -> str:
        n = self.depth
        if self.verdict == "scaled":
            return (f"scaled for depth by 1/√{n} = {self.target:.3g} (observed factor {self.factor:.3g} on the base "
                    f"std {self.base:.3g}, {self.base_source})")  # fmt: skip
        if self.verdict == "not_scaled":
            return (f"at {self.factor:.3g} times the base std {self.base:.3g} ({self.base_source}), where GPT-2's "
                    f"rule gives 1/√{n} = {self.target:.3g}")  # fmt: skip
        return (f"scaled by {self.factor:.3g} ≈ 1/√{1.0 / self.factor**2:.3g} on the base std {self.base:.3g} "
                f"({self.base_source}); GPT-2's rule gives 1/√{n} = {self.target:.3g}")  # fmt: skip


def _type_key(module: nn.Module) -> str | None:
    return next((c.__name__ for c in type(module).__mro__ if c.__name__ in RESIDUAL_OUTPUTS), None)


def find_residual_projections(model: nn.Module, names: Mapping[int, str]) -> dict[str, ResidualProjection]:
    """Every residual output projection of ``model`` (see :data:`RESIDUAL_OUTPUTS`), by the qualified name of its
    weight; ``names`` maps a parameter's ``id`` to its qualified name."""
    found: dict[str, ResidualProjection] = {}
    for block_name, block in model.named_modules():
        key = _type_key(block)
        if key is None or (key in _PRE_NORM_ONLY and not getattr(block, "norm_first", False)):
            continue
        weights: list[str] = []
        for path in RESIDUAL_OUTPUTS[key]:
            try:
                weight = block.get_submodule(path).get_parameter("weight")
            except AttributeError:
                continue
            if id(weight) in names:
                weights.append(names[id(weight)])
        siblings = tuple(
            names[id(p)] for p in block.parameters() if p.dim() >= 2 and id(p) in names and names[id(p)] not in weights
        )
        for name in weights:
            found[name] = ResidualProjection(name, block_name, type(block).__name__, siblings)
    return found


def base_std(
    projection: ResidualProjection,
    *,
    declared: tuple[str, float] | None,
    expected: float | None,
    stds: Mapping[str, float],
) -> tuple[float, str] | None:
    """σ₀ for ``projection`` and where it comes from (see the module docstring), or ``None`` when nothing gives it."""
    if declared is not None:
        return declared[1], f"the model's declared std {declared[0]}"
    if expected is not None and expected > 0:
        return expected, "the reference's std"
    sibling = [stds[s] for s in projection.siblings if s in stds and stds[s] > 0]
    if sibling:
        return statistics.median(sibling), "the median std of the block's other weight matrices"
    return None


def judge(std: float, depth: int, base: float, base_source: str) -> ResidualVerdict:
    """The verdict for a residual projection of observed ``std`` in a model of ``depth`` residual projections."""
    factor = std / base
    target = 1.0 / math.sqrt(depth)
    to_target, to_one = abs(math.log(factor / target)), abs(math.log(factor))
    tolerance = math.log(RESIDUAL_TOLERANCE)
    if to_target <= tolerance and (to_target < to_one or depth == 1):  # N = 1: 1/√N is 1, nothing to scale
        verdict: Verdict = "scaled"
    elif to_one <= tolerance:
        verdict = "not_scaled"
    else:
        verdict = "other"
    return ResidualVerdict(verdict, depth, base, base_source, factor)
