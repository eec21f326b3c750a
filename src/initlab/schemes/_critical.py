"""The "critical" scheme: every layer on the critical line (the edge of chaos) of the activation that follows it.

For each Linear, Bilinear, Conv and ConvTranspose layer followed by an activation φ (found as the "auto" scheme finds
it, :func:`initlab.schemes.discover_activations`)::

    W ~ N(0, σ_w²*(φ, σ_b²) / fan_in),    b ~ N(0, σ_b²)    (b = 0 when σ_b² = 0, the default)

where σ_w²* is the weight variance at which χ₁ = σ_w² E[φ'(√q* z)²] = 1 at the length map's fixed point q*
(:func:`initlab.theory.critical_weight_var`): there the correlation depth scale ξ_c diverges, so that signals and
gradients propagate through arbitrarily many layers without vanishing or exploding on average (Poole et al. 2016,
"Exponential expressivity in deep neural networks through transient chaos"; Schoenholz et al. 2017, "Deep Information
Propagation"). At σ_b² = 0, σ_w²* is 2 for ReLU (He et al. 2015's variance), 2/(1 + a²) for leaky ReLU, 1 for tanh,
0.477 for SELU (whose usual LeCun variance 1 is slightly chaotic, χ₁ = 1.07), 2.35 for GELU and 103 for the sigmoid
(its mean φ(0) = 1/2 keeps it deep in the ordered phase below that); any other elementwise function gets its own
value. Convolutions use the same rule with fan_in = in_channels/groups × kernel size, as in the mean-field theory of
CNNs (Xiao et al. 2018, "Dynamical Isometry and a Mean Field Theory of CNNs"), which has the same critical line.

As in "auto" (and torch's ``calculate_gain``), a layer's variance is chosen by the activation that follows it; in a
network of one activation the hidden layers are then exactly the mean-field network, whose first layer sees the raw
input. A layer followed by no activation (the output layer) gets LeCun normal (variance 1/fan_in) and a zero bias. Every
other parameter gets the "auto" scheme's rules (orthogonal recurrent weights, N(0, 1) embeddings, Glorot uniform RNN
input and attention weights, zero biases, norms 1/0). ReLU6 and PReLU count as their ReLU family member (ReLU6's
cap at 6 is ignored); an activation that is neither named nor ReLU-like is handled by its own function, with its
derivative from autograd.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from initlab.catalog import GlorotUniform, Initializer, LeCunNormal, RandomNormal, VarianceScaling, Zeros, serialize
from initlab.checks import check_nonnegative
from initlab.schemes._apply import _slot_seed, apply_rules
from initlab.schemes._auto import discover_activations
from initlab.schemes._report import InitEntry, InitReport
from initlab.schemes._roles import Slot
from initlab.schemes._rules import standard_rules
from initlab.schemes._scheme import Scheme
from initlab.schemes.base import ProcedureConfig, check_arguments
from initlab.seeding import Seed
from initlab.theory import ActivationSpec, critical_weight_var
from initlab.tracing import FEEDFORWARD_TYPES, Activation, ModelInput

# Where an "other" activation is sampled to tell two functions apart (module or functional, any arguments).
_PROBE = torch.linspace(-4.0, 4.0, 33, dtype=torch.float64)


@dataclass(frozen=True)
class Critical(ProcedureConfig):
    """The ``"critical"`` scheme (see the module docstring): ``initialize(model, Critical(bias_var=0.05))``.

    An :class:`~initlab.schemes.Initialization` that needs no data; ``data``, when given, is the input of the one
    forward pass that finds the activations (a built input otherwise, as for "auto").
    """

    config_name = "a Critical config"  # not a field: no annotation

    bias_var: float = 0.0  #: σ_b²: hidden layers' biases are N(0, σ_b²), and σ_w²* is the critical value for it

    def __post_init__(self) -> None:
        object.__setattr__(self, "bias_var", check_nonnegative("bias_var", self.bias_var))

    @property
    def needs_data(self) -> bool:
        """``False``: the activations are found on ``data`` when given, on a built input otherwise."""
        return False

    def apply(self, model: nn.Module, *, seed: Seed = None, data: ModelInput | None = None) -> InitReport:
        """Initialize ``model`` in place (see the module docstring) and report each layer's rule."""
        check_arguments(model, seed, data)
        activations = discover_activations(model, data)
        report, pairs = apply_rules(model, _base_scheme(), seed=seed)
        report.scheme = self.to_dict()
        report.extra = {"bias_var": self.bias_var}
        critical: dict[Any, tuple[str, float]] = {}
        for entry, slot in pairs:
            if isinstance(slot.module, FEEDFORWARD_TYPES) and slot.role in ("weight", "bias"):
                activation = activations.get(id(slot.module)) or Activation("none", "none", source="unknown")
                self._fill(entry, slot, activation, seed, critical)
        return report

    def _fill(
        self,
        entry: InitEntry,
        slot: Slot,
        activation: Activation,
        seed: Seed,
        critical: dict[Any, tuple[str, float]],
    ) -> None:
        """Draw one layer's weight or bias by the rule for ``activation`` and record it in ``entry``."""
        init: Initializer
        if activation.kind == "none":
            init = LeCunNormal() if slot.role == "weight" else Zeros()
            entry.rule = "output layer: LeCun normal, Var = 1/fan_in" if slot.role == "weight" else "output bias → 0"
            entry.gain = 1.0 if slot.role == "weight" else None
        else:
            name, weight_var = _critical_for(activation, self.bias_var, critical)
            if slot.role == "weight":
                init = VarianceScaling(weight_var, "fan_in", "untruncated_normal")
                entry.rule = f"critical for {name} at σ_b²={self.bias_var:g}: Var = {weight_var:.6g}/fan_in (χ₁ = 1)"
                entry.gain = math.sqrt(weight_var)
            else:
                init = RandomNormal(0.0, math.sqrt(self.bias_var)) if self.bias_var > 0.0 else Zeros()
                entry.rule = f"critical bias: N(0, σ_b²={self.bias_var:g})" if self.bias_var > 0.0 else "bias → 0"
                entry.gain = None
        entry.activation = f"{activation.describe()} → critical"
        entry.init = serialize(init)
        init.fill_(slot.tensor, seed=_slot_seed(seed, slot), layout=slot.layout)
        entry.measure(slot.tensor)


def _base_scheme() -> Scheme:
    """The "auto" scheme's rules for what the critical rule does not cover (feed-forward weights are drawn again)."""
    return Scheme(standard_rules(GlorotUniform(), embedding=RandomNormal(0.0, 1.0)), name="critical")


def _theory_activation(activation: Activation) -> tuple[Any, ActivationSpec, float | None]:
    """A cache key, the activation as :mod:`initlab.theory` takes it, and its parameter."""
    if activation.kind == "relu":
        if activation.slope == 0.0:
            return "relu", "relu", None
        return ("leaky_relu", activation.slope), "leaky_relu", activation.slope
    if activation.kind in ("tanh", "sigmoid", "selu"):
        return activation.kind, activation.kind, None
    if activation.kind == "other" and activation.fn is not None:
        fn = activation.fn
        with torch.no_grad():
            try:
                values = fn(_PROBE.clone())
            except RuntimeError:  # a module with float32 parameters
                values = fn(_PROBE.float())
        # Two functions with the same values at 33 points are, for activations, the same function.
        return ("other", tuple(torch.as_tensor(values, dtype=torch.float64).tolist())), fn, None
    raise ValueError(f"no critical rule for activation {activation!r}.")


def _critical_for(activation: Activation, bias_var: float, cache: dict[Any, tuple[str, float]]) -> tuple[str, float]:
    """The activation's name and σ_w²*, computed once per distinct activation of the model."""
    key, spec, param = _theory_activation(activation)
    if key not in cache:
        cache[key] = (activation.label, critical_weight_var(spec, bias_var, param=param))
    return cache[key]
