"""Training settings: optimizer, schedule, batches, epochs or steps, loss, precision. A validated config object."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Literal, get_args

import torch

from initlab.checks import check_choice, check_int, check_nonnegative, check_positive, did_you_mean
from initlab.training import optim

OptimizerName = Literal["sgd", "adam", "adamw", "rmsprop"]
ScheduleName = Literal["constant", "step", "cosine"]
LossName = Literal["cross_entropy", "bce", "mse"]
PrecisionName = Literal["float32", "bf16"]


@dataclass(frozen=True)
class TrainSettings:
    """How each run is trained. Every field is validated on construction; ``to_dict``/``from_dict`` round-trip."""

    optimizer: OptimizerName = "adam"
    lr: float = 1e-3
    # SGD and RMSprop momentum; Nesterov only with SGD and momentum > 0 (torch's rule).
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    # Adam/AdamW moments. eps defaults to torch's 1e-8 (Keras uses 1e-7).
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    # RMSprop smoothing constant (torch's alpha; Keras calls it rho and defaults to 0.9).
    alpha: float = 0.99
    schedule: ScheduleName = "constant"
    # Step schedule: multiply lr by gamma every step_epochs epochs. Cosine anneals to 0 over the run's epochs.
    step_epochs: int = 10
    gamma: float = 0.1
    batch_size: int = 128
    epochs: int = 3
    # If set, stop every run after this many optimizer steps (the last epoch may be partial).
    steps: int | None = None
    loss: LossName = "cross_entropy"
    precision: PrecisionName = "float32"
    # Epochs are recorded for validation accuracy; the summary reports the first epoch at or above this accuracy.
    target_accuracy: float = 0.97
    # A run diverges when an epoch's mean training or validation loss is NaN, infinite or above max_loss (a
    # classifier at chance has loss ln C, 2.3 for ten classes; 1e4 is far beyond any run that is still learning).
    max_loss: float = 1e4

    def __post_init__(self) -> None:
        check_choice("optimizer", self.optimizer, get_args(OptimizerName))
        check_choice("schedule", self.schedule, get_args(ScheduleName))
        check_choice("loss", self.loss, get_args(LossName))
        check_choice("precision", self.precision, get_args(PrecisionName))
        check_positive("lr", self.lr)
        check_nonnegative("momentum", self.momentum)
        check_nonnegative("weight_decay", self.weight_decay)
        for name in ("beta1", "beta2", "alpha"):
            value = getattr(self, name)
            if not 0.0 <= check_nonnegative(name, value) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}.")
        check_positive("eps", self.eps)
        check_positive("gamma", self.gamma)
        check_positive("max_loss", self.max_loss)
        check_int("step_epochs", self.step_epochs, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_int("epochs", self.epochs, minimum=1)
        if self.steps is not None:
            check_int("steps", self.steps, minimum=1)
        if not 0.0 <= self.target_accuracy <= 1.0:
            raise ValueError(f"target_accuracy must be in [0, 1], got {self.target_accuracy!r}.")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            raise ValueError("nesterov=True needs optimizer='sgd' and momentum > 0.")
        if not self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}: at 1 or more the updates never decay "
                             "and training diverges (0.9 is usual).")  # fmt: skip
        self._check_applies()

    #: The settings each optimizer reads besides lr and weight_decay; the others must keep their defaults.
    _USES: ClassVar[dict[str, tuple[str, ...]]] = {
        "sgd": ("momentum", "nesterov"),
        "adam": ("beta1", "beta2", "eps"),
        "adamw": ("beta1", "beta2", "eps"),
        "rmsprop": ("momentum", "alpha", "eps"),
    }

    def _check_applies(self) -> None:
        """ValueError for an optimizer setting given to an optimizer that ignores it (momentum with Adam)."""
        defaults = {f.name: f.default for f in fields(self)}
        for name in ("momentum", "nesterov", "beta1", "beta2", "eps", "alpha"):
            if name not in self._USES[self.optimizer] and getattr(self, name) != defaults[name]:
                users = [o for o, uses in self._USES.items() if name in uses]
                hint = " (Adam's momentum is beta1)" if name == "momentum" else ""
                raise ValueError(f"{name}={getattr(self, name)!r} does not apply to optimizer={self.optimizer!r}, "
                                 f"which would ignore it{hint}; it applies to {' and '.join(users)}.")  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            hint = did_you_mean(unknown[0], known)
            raise ValueError(f"unknown training setting {unknown[0]!r}.{hint} Allowed: {', '.join(sorted(known))}.")
        return cls(**data)

    def diverged(self, *losses: float) -> bool:
        """Whether these losses mean the run diverged (see ``max_loss``)."""
        return any(not math.isfinite(v) or v > self.max_loss for v in losses)

    def total_epochs(self, num_samples: int) -> int:
        """Epochs needed: ``epochs``, or enough to make ``steps`` steps when ``steps`` is set."""
        if self.steps is None:
            return self.epochs
        return math.ceil(self.steps / math.ceil(num_samples / self.batch_size))

    def make_optimizer(self, params: list[torch.Tensor] | list[dict[str, Any]]) -> torch.optim.Optimizer:
        """The torch optimizer over (stacked) parameters, or over param groups (dicts with ``params`` and options that
        override these settings, as :meth:`initlab.mup.Parametrization.param_groups` gives), as an eager subclass of
        torch's class (:mod:`initlab.training.optim`: the same steps, without importing ``torch._dynamo``). CPU
        Adam/AdamW use the fused kernel, which is many times faster than torch's default per-parameter loop and
        elementwise identical to per-model Adam."""
        first = params[0]
        device = (first["params"][0] if isinstance(first, dict) else first).device
        fused = device.type in ("cpu", "cuda")
        if self.optimizer == "sgd":
            return optim.SGD(params, lr=self.lr, momentum=self.momentum, nesterov=self.nesterov,
                             weight_decay=self.weight_decay, foreach=True)  # fmt: skip
        if self.optimizer in ("adam", "adamw"):
            cls = optim.Adam if self.optimizer == "adam" else optim.AdamW
            return cls(params, lr=self.lr, betas=(self.beta1, self.beta2), eps=self.eps,
                       weight_decay=self.weight_decay, fused=fused)  # fmt: skip
        return optim.RMSprop(params, lr=self.lr, alpha=self.alpha, eps=self.eps, momentum=self.momentum,
                             weight_decay=self.weight_decay, foreach=True)  # fmt: skip

    def lr_at(self, epoch: int, total_epochs: int) -> float:
        """The learning rate of ``epoch`` (1-based): a pure function of the epoch, so a resumed run needs no
        scheduler state. ``step``: lr·gamma^⌊(epoch-1)/step_epochs⌋ (torch's StepLR); ``cosine``:
        lr·(1 + cos(π·(epoch-1)/total_epochs))/2 (torch's CosineAnnealingLR with T_max = total_epochs, eta_min 0)."""
        e = epoch - 1
        if self.schedule == "step":
            return self.lr * self.gamma ** (e // self.step_epochs)
        if self.schedule == "cosine":
            return self.lr * 0.5 * (1.0 + math.cos(math.pi * e / max(1, total_epochs)))
        return self.lr
