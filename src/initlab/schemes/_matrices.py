"""Schemes that set whole weight matrices by their structure: delta-orthogonal convolutions, ZerO's identities and
Hadamard transforms, and the spectral condition.

Their targets are found by module type and parameter role (:mod:`initlab.schemes._roles`): convolution kernels,
Linear and Conv weights; ZerO also zeros the last layer of each residual branch when the model declares its
structure (:func:`initlab.nets.structure`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from initlab.catalog import Orthogonal, RandomNormal, Zeros
from initlab.checks import check_choice, check_positive
from initlab.schemes._roles import Slot
from initlab.schemes._structural import (
    Override,
    Plan,
    StructuralScheme,
    Targets,
    fmt,
    generator_for,
    optional_structure,
)
from initlab.seeding import Seed
from initlab.tracing import CONV_TYPES, LINEAR_TYPES


def _groups(slot: Slot) -> int:
    return int(getattr(slot.module, "groups", 1))


@dataclass(frozen=True)
class DeltaOrthogonal(StructuralScheme):
    """Delta-orthogonal convolutions (Xiao et al. 2018, "Dynamical Isometry and a Mean Field Theory of CNNs: How to
    Train 10,000-Layer Vanilla Convolutional Neural Networks", Alg. 2): every Conv1d/2d/3d kernel ``(out, in, *k)``
    is zero except its centre tap ``W[:, :, k//2, ...] = gain·Q``, with Q a random (semi-)orthogonal ``(out, in)``
    matrix (per group for a grouped convolution; the tap at k//2 for an even kernel). With ``out ≥ in``, QᵀQ = I, so
    the convolution maps every input to an output of the same norm times the gain, at every position: the
    input-output Jacobian of a deep network of them (with gain on the critical line) is orthogonal, dynamical
    isometry. With ``out < in`` the rows are orthonormal instead (QQᵀ = I). The rest gets the base: orthogonal
    matrices with the same gain (Saxe et al. 2014). For ReLU networks pass ``gain=√2``.
    """

    config_name = "a DeltaOrthogonal config"
    scheme_name: ClassVar[str] = "delta_orthogonal"

    gain: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "gain", check_positive("gain", self.gain))
        super().__post_init__()

    def default_base(self) -> Any:
        return {"class_name": "Orthogonal", "config": {"gain": self.gain}}

    def plan(self, targets: Targets) -> Plan:
        kernels = [s for s in targets.with_role("weight") if isinstance(s.module, CONV_TYPES)]
        if not kernels:
            raise ValueError(
                f"delta_orthogonal initializes convolution kernels (Conv1d/2d/3d); {type(targets.model).__name__} has "
                "none: build a cnn or resnet spec (cnn:32,64, resnet:16,32,64)."
            )
        plan = Plan(extra={"gain": self.gain})
        label = f"conv kernel → delta-orthogonal: centre tap {fmt(self.gain)}·Q (QᵀQ = I), other taps 0"
        for slot in kernels:
            plan.set([slot], Override(label, values=self._kernel, gain=self.gain))
        return plan

    def _kernel(self, slot: Slot, seed: Seed) -> torch.Tensor:
        generator = generator_for(seed, slot.key)
        out = torch.zeros(slot.shape, dtype=torch.float64)
        groups = _groups(slot)
        rows = slot.shape[0] // groups
        centre = tuple(k // 2 for k in slot.shape[2:])
        for g in range(groups):
            q = Orthogonal(self.gain)((rows, slot.shape[1]), dtype=torch.float64, seed=generator)
            out[(slice(g * rows, (g + 1) * rows), slice(None), *centre)] = q
        return out


def hadamard(order: int) -> torch.Tensor:
    """Sylvester's Hadamard matrix of size 2^order (entries ±1, H Hᵀ = 2^order·I), float64."""
    h = torch.ones(1, 1, dtype=torch.float64)
    for _ in range(order):
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def zero_matrix(rows: int, cols: int) -> torch.Tensor:
    """ZerO's matrix for a layer ``y = W x`` with W ``(rows, cols)`` (Zhao et al. 2022, Alg. 1): the (partial)
    identity when rows ≤ cols; else ``I* H_m I* / 2^(m/2)`` with m = ⌈log₂ rows⌉, the first ``rows`` rows and
    ``cols`` columns of the normalized Hadamard matrix of size 2^m. The paper's Algorithm 1 writes the factor
    2^(-(m-1)/2); this follows the authors' code (``jiaweizzhao/ZerO-initialization``), whose 2^(-m/2) makes the
    Hadamard transform orthogonal, so the layer is an isometry when rows is a power of two."""
    if rows <= cols:
        return torch.eye(rows, cols, dtype=torch.float64)
    order = math.ceil(math.log2(rows))
    return hadamard(order)[:rows, :cols] / 2 ** (order / 2)


@dataclass(frozen=True)
class ZerO(StructuralScheme):
    """ZerO (Zhao, Schäfer & Anandkumar 2022, "ZerO Initialization: Initializing Neural Networks with only Zeros and
    Ones", Alg. 1 and 2): a deterministic initialization, the same for every seed:

    * every Linear weight is :func:`zero_matrix` (identity, partial identity, or a Hadamard transform when the layer
      widens); every Conv kernel is zero except its centre tap, which is that matrix (per group);
    * the last layer of each residual branch is 0 when the model declares its residual structure (Alg. 2), so that
      every residual block starts as the identity;
    * biases 0, normalization scale 1 and shift 0.

    A resmlp with ``norm=none`` then computes, at initialization, its head's partial identity of ``act`` of the first
    ``width`` inputs. Models with embeddings, recurrent or attention layers are outside the paper and raise.
    """

    config_name = "a ZerO config"
    scheme_name: ClassVar[str] = "zero_init"

    def default_base(self) -> Any:
        return "zeros"

    def plan(self, targets: Targets) -> Plan:
        model = targets.model
        layer_types = (*LINEAR_TYPES, *CONV_TYPES)
        outside = [
            s.key
            for s in targets.slots
            if s.role in ("embedding", "recurrent_weight")
            or (s.role == "weight" and not isinstance(s.module, layer_types))
            or (s.role == "other" and not isinstance(s.module, nn.PReLU))
        ]
        if outside:
            shown = ", ".join(outside[:3]) + (", ..." if len(outside) > 3 else "")
            raise ValueError(
                f"zero_init is defined for Linear and Conv layers (Zhao et al. 2022); {type(model).__name__} has "
                f"parameters it does not cover: {shown}. Use it on mlp, cnn, resmlp or resnet models."
            )
        plan = Plan()
        for slot in targets.with_role("weight"):
            kind = "conv centre tap" if isinstance(slot.module, CONV_TYPES) else "linear"
            plan.set([slot], Override(f"{kind} → identity / Hadamard (ZerO Alg. 1)", values=_zero_values))
        found = optional_structure(targets)
        branches = found.branches if found is not None else ()
        for branch in branches:
            plan.set(targets.of(branch.last), Override("branch last layer → 0", init=Zeros()))
        plan.extra = {"branches": len(branches)}
        return plan


def _zero_values(slot: Slot, seed: Seed) -> torch.Tensor:
    """:func:`zero_matrix` for a Linear weight, at the centre tap of a Conv kernel (per group); ``seed`` unused."""
    if len(slot.shape) == 2:
        return zero_matrix(*slot.shape)
    out = torch.zeros(slot.shape, dtype=torch.float64)
    groups = _groups(slot)
    rows = slot.shape[0] // groups
    centre = tuple(k // 2 for k in slot.shape[2:])
    for g in range(groups):
        out[(slice(g * rows, (g + 1) * rows), slice(None), *centre)] = zero_matrix(rows, slot.shape[1])
    return out


@dataclass(frozen=True)
class SpectralCondition(StructuralScheme):
    """The spectral condition (Yang, Simon & Bernstein 2023, "A Spectral Condition for Feature Learning", Cond. 1):
    every weight's spectral norm ‖W‖₂ = √(fan_out/fan_in), so that each layer's output and its update have norms of
    the right order, √fan_out, at any width. Each Linear weight ``(out, in)`` (each gate or projection block, each
    convolution by its ``(out, in/groups·k)`` matrix view) is drawn (semi-)orthogonal (``"orthogonal"``, every
    singular value equal) or Gaussian (``"normal"``) and rescaled so that its largest singular value is exactly
    √(out/in). Embedding tables map one-hot inputs of norm 1, so they get N(0, 1) entries, ‖W e_i‖ ≈ √d. The rest
    (recurrent matrices, biases, norms, ConvTranspose and Bilinear weights) gets the base (Glorot uniform).
    """

    config_name = "a SpectralCondition config"
    scheme_name: ClassVar[str] = "spectral"

    distribution: Literal["orthogonal", "normal"] = "orthogonal"

    def __post_init__(self) -> None:
        check_choice("distribution", self.distribution, ("orthogonal", "normal"))
        super().__post_init__()

    def default_base(self) -> Any:
        return "glorot_uniform"

    def plan(self, targets: Targets) -> Plan:
        weights = [s for s in targets.with_role("weight") if s.layout.kind == "torch" and len(s.shape) >= 2]
        if not weights:
            raise ValueError(
                f"spectral sets the spectral norm of Linear and Conv weights; {type(targets.model).__name__} has none."
            )
        plan = Plan(extra={"distribution": self.distribution})
        for slot in weights:
            target = math.sqrt(slot.shape[0] / math.prod(slot.shape[1:]))
            label = f"weight → {self.distribution}, ‖W‖₂ = √(fan_out/fan_in) = {fmt(target)}"
            plan.set([slot], Override(label, values=partial(self._matrix, target), gain=target))
        embedding = Override("embedding → N(0, 1): ‖W·e_i‖ ≈ √d for one-hot inputs", init=RandomNormal(0.0, 1.0))
        plan.set(targets.with_role("embedding"), embedding)
        return plan

    def _matrix(self, target: float, slot: Slot, seed: Seed) -> torch.Tensor:
        rows, cols = slot.shape[0], math.prod(slot.shape[1:])
        generator = generator_for(seed, slot.key)
        if self.distribution == "orthogonal":
            w = Orthogonal()((rows, cols), dtype=torch.float64, seed=generator)
        else:
            w = torch.randn(rows, cols, generator=generator, dtype=torch.float64)
        w = w * (target / torch.linalg.matrix_norm(w, ord=2))
        return w.reshape(slot.shape)
