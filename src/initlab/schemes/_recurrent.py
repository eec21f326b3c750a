"""Schemes for LSTMs: the forget-gate bias of 1 and chrono initialization.

Their targets are the gate blocks of every ``nn.LSTM``/``nn.LSTMCell`` bias (:mod:`initlab.schemes._roles`: torch's
gate order i, f, g, o). torch adds two biases, ``bias_ih`` and ``bias_hh``; both schemes set the gate's total bias in
``bias_ih`` and leave ``bias_hh`` at zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import torch
from torch import nn

from initlab.catalog import Zeros
from initlab.checks import check_finite
from initlab.schemes._roles import Slot
from initlab.schemes._structural import Override, Plan, Shared, StructuralScheme, Targets, fmt, generator_for
from initlab.seeding import Seed

LSTM_TYPES: tuple[type[nn.Module], ...] = (nn.LSTM, nn.LSTMCell)


def lstm_biases(targets: Targets, scheme: str) -> list[Slot]:
    """The gate blocks of every LSTM ``bias_ih`` and ``bias_hh``, or an error that says what the model lacks."""
    if not any(isinstance(m, LSTM_TYPES) for m in targets.model.modules()):
        raise ValueError(
            f"{scheme} sets the gate biases of LSTM layers (nn.LSTM, nn.LSTMCell); {type(targets.model).__name__} has"
            " none."
        )
    found = [s for s in targets.slots if isinstance(s.module, LSTM_TYPES) and s.role in ("bias", "recurrent_bias")]
    if not found:
        raise ValueError(f"{scheme} sets LSTM gate biases, and the LSTM layers of the model have bias=False.")
    return found


@dataclass(frozen=True)
class ForgetBias(StructuralScheme):
    """The forget-gate bias of 1 (Jozefowicz, Zaremba & Sutskever 2015, "An Empirical Exploration of Recurrent
    Network Architectures", §2.2; Gers et al. 2000): ``b_f = value`` (1) in every LSTM layer, so that the cell starts
    by remembering (f = σ(1) ≈ 0.73) and gradients flow through time. Keras' ``unit_forget_bias=True``. This is the
    ``lstm_forget_bias`` option of :class:`~initlab.schemes.Scheme` on the base: Glorot uniform input weights,
    orthogonal recurrent weights, other biases 0 (Keras' LSTM defaults).
    """

    config_name = "a ForgetBias config"
    scheme_name: ClassVar[str] = "forget_bias"

    value: float = 1.0  #: the forget gate's bias

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", check_finite("value", self.value))
        super().__post_init__()

    def default_base(self) -> Any:
        return "glorot_uniform"

    def plan(self, targets: Targets) -> Plan:
        lstm_biases(targets, self.scheme_name)
        return Plan(lstm_forget_bias=self.value, extra={"forget_bias": self.value})


@dataclass(frozen=True)
class Chrono(StructuralScheme):
    """Chrono initialization (Tallec & Ollivier 2018, "Can Recurrent Neural Networks Warp Time?", §4): for each LSTM
    unit, ``b_f = log(u)`` with ``u ~ U(1, T_max − 1)`` and ``b_i = −b_f``, where T_max is the longest time dependency
    expected (in steps). A forget gate with bias log(u) keeps its memory for about u steps at initialization, so the
    characteristic times of the units spread over [1, T_max]; the input gate opens as much as the forget gate
    keeps. Recurrent biases 0; the rest gets the base (Glorot uniform input weights, orthogonal recurrent weights).
    """

    config_name = "a Chrono config"
    scheme_name: ClassVar[str] = "chrono"

    t_max: float = 100.0  #: the longest dependency expected, in time steps (> 2)

    def __post_init__(self) -> None:
        t_max = check_finite("t_max", self.t_max)
        if t_max <= 2:
            raise ValueError(f"t_max={self.t_max!r} must be > 2: chrono draws u ~ U(1, t_max - 1).")
        object.__setattr__(self, "t_max", t_max)
        super().__post_init__()

    def default_base(self) -> Any:
        return "glorot_uniform"

    def plan(self, targets: Targets) -> Plan:
        biases = lstm_biases(targets, self.scheme_name)
        plan = Plan(extra={"t_max": self.t_max})
        text = f"log U(1, {fmt(self.t_max - 1)})"
        for name in dict.fromkeys(s.name for s in biases if s.role == "bias"):
            shared = Shared(partial(self._draw, name, targets.key(f"{name}[f]").shape[0]))
            plan.set([targets.key(f"{name}[f]")], Override(f"forget gate bias b_f → {text}", values=shared.part("f")))
            plan.set([targets.key(f"{name}[i]")], Override("input gate bias b_i → −b_f", values=shared.part("i")))
        recurrent = [s for s in biases if s.role == "recurrent_bias" and s.block in ("i", "f")]
        plan.set(recurrent, Override("recurrent bias of the i and f gates → 0 (the total is in bias_ih)", init=Zeros()))
        return plan

    def _draw(self, name: str, units: int, seed: Seed) -> dict[str, torch.Tensor]:
        generator = generator_for(seed, name, "chrono")
        u = torch.empty(units, dtype=torch.float64).uniform_(1.0, self.t_max - 1.0, generator=generator)
        forget = torch.log(u)
        return {"f": forget, "i": -forget}
