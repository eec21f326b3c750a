"""LSUV: layer-sequential unit-variance initialization (Mishkin & Matas, "All you need is a good init", ICLR 2016).

Algorithm 1 of the paper, for every Linear, Bilinear, Conv and ConvTranspose layer:

1. pre-initialize every weight with an orthonormal matrix (Saxe et al., 2014), gate by gate for RNNs; biases zero,
   normalization layers 1 and 0, embeddings N(0, 1) (``pre_init=False`` keeps the model's current values instead);
2. in the order the layers are called on the batch, repeat: run the batch up to the layer, measure the variance
   ``v`` of the layer's output (over every element), and multiply the weight by ``√(target / v)``; stop when
   ``|v - target| <= tol`` or after ``max_iter`` rescalings.

With ``correct_mean=True`` each step also subtracts the output's per-channel mean through the bias (then scales the
bias with the weight), so the output has mean 0 and variance ``target``; a layer then also needs
``max |mean| <= tol · √target`` to stop. This is an extension used by several implementations, not part of the
paper (off by default, as in the paper).

Each layer's output depends only on the layers before it, which are already fixed when it is processed, so after
the pass every layer's output variance on the batch is within ``tol`` of ``target`` (unless it did not converge;
that is reported, with a warning). The batch runs in eval mode (dropout off; normalization layers use, and do not
update, their running statistics) under ``no_grad`` with a forked random state; each module's train/eval flag is
put back at the end and no state is kept. Embeddings, RNNs and attention are pre-initialized but not rescaled.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from initlab.catalog import Orthogonal, RandomNormal
from initlab.checks import check_int, check_nonnegative, check_positive
from initlab.schemes._apply import apply_rules
from initlab.schemes._report import InitEntry, InitReport
from initlab.schemes._roles import slots
from initlab.schemes._rules import standard_rules
from initlab.schemes._scheme import Scheme
from initlab.schemes.base import ProcedureConfig, warn_user
from initlab.seeding import Seed, make_generator
from initlab.tracing import (
    CONV_TRANSPOSE_TYPES,
    CONV_TYPES,
    FEEDFORWARD_TYPES,
    ModelInput,
    check_data,
    inspection,
    run_model,
)

logger = logging.getLogger(__name__)


class LSUVWarning(UserWarning):
    """A layer whose output variance did not reach the target within ``max_iter`` rescalings (or cannot)."""


@dataclass(frozen=True)
class LSUV(ProcedureConfig):
    """The LSUV scheme's settings; ``initialize(model, LSUV(tol=0.05), data=x)`` or ``"lsuv"`` for the defaults.

    The defaults are the paper's: target variance 1, tolerance 0.1, at most 10 iterations per layer. An
    :class:`~initlab.schemes.Initialization` that needs data (see the module docstring for the algorithm).
    """

    config_name = "an LSUV config"  # not a field: no annotation

    target: float = 1.0  #: the output variance every layer should have on the batch
    tol: float = 0.1  #: accepted |variance - target|
    max_iter: int = 10  #: most rescalings per layer
    correct_mean: bool = False  #: also zero each output channel's mean through the bias (not in the paper)
    pre_init: bool = True  #: start from the orthonormal pre-initialization; False keeps the current weights

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", check_positive("target", self.target))
        object.__setattr__(self, "tol", check_nonnegative("tol", self.tol))
        check_int("max_iter", self.max_iter, minimum=1)
        for flag in ("correct_mean", "pre_init"):
            if not isinstance(getattr(self, flag), bool):
                raise TypeError(f"{flag} must be True or False, got {getattr(self, flag)!r}.")

    @property
    def needs_data(self) -> bool:
        """``True``: LSUV measures every layer's output on a batch of the model's inputs."""
        return True

    def apply(self, model: nn.Module, *, seed: Seed = None, data: ModelInput | None = None) -> InitReport:
        """Run LSUV on ``model`` with the batch ``data``; see the module docstring."""
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
        if data is None:
            raise ValueError(
                "the 'lsuv' scheme needs data: pass a batch of inputs, e.g. initialize(model, 'lsuv', data=x) with "
                "x a mini-batch of real training inputs (the paper uses one batch of a few hundred samples)."
            )
        check_data(data)
        make_generator(seed)
        if self.pre_init:
            report, pairs = apply_rules(model, pre_init_scheme(), seed=seed)
        else:
            report = InitReport(scheme=None, seed=None)
            pairs = []
            for slot in slots(model):
                entry = InitEntry(
                    slot.name,
                    slot.block,
                    slot.module_name,
                    slot.module_type,
                    slot.role,
                    slot.shape,
                    rule="kept (LSUV with pre_init=False)",
                    init=None,
                )
                report.entries.append(entry)
                pairs.append((entry, slot))
        report.scheme = self.to_dict()
        report.seed = seed if isinstance(seed, int) else None
        weight_entries = {
            id(slot.module): entry
            for entry, slot in pairs
            if slot.param_name == "weight" and isinstance(slot.module, FEEDFORWARD_TYPES)
        }
        with inspection(model):
            order = _call_order(model, data)
            if not order:
                raise ValueError(
                    "LSUV found no Linear, Bilinear, Conv or ConvTranspose layer called on the batch; it rescales "
                    "only those."
                )
            for name, layer in order:
                self._fit(name, layer, model, data, weight_entries[id(layer)])
        reached = {id(m) for _, m in order}
        for name, module in model.named_modules():
            if isinstance(module, FEEDFORWARD_TYPES) and id(module) not in reached:
                entry = weight_entries.get(id(module))
                if entry is not None:
                    entry.note = "not called on the batch: not rescaled by LSUV"
                logger.info("LSUV: %s was not called on the batch; it keeps its pre-initialization.", name)
        for entry, slot in pairs:
            entry.measure(slot.tensor)
        return report

    def _fit(self, name: str, layer: nn.Module, model: nn.Module, data: ModelInput, entry: InitEntry) -> None:
        """Rescale ``layer`` until its output variance on ``data`` is within ``tol`` of ``target``."""
        weight: torch.Tensor = layer.weight
        bias: torch.Tensor | None = layer.bias if self.correct_mean else None
        channel_dim = 1 if isinstance(layer, CONV_TYPES + CONV_TRANSPOSE_TYPES) else -1
        var, means, centered = _stats(_layer_output(model, layer, data), channel_dim)
        entry.var_before = var
        steps, total = 0, 1.0
        while steps < self.max_iter and self._needs_step(var, means):
            if not math.isfinite(var) or var <= 0.0:
                break  # a dead or constant output cannot be rescaled to any variance
            # With the mean corrected, the output becomes alpha · (out - mean): aim its variance at the target.
            spread = centered if bias is not None and centered > 0.0 else var
            alpha = math.sqrt(self.target / spread)
            with torch.no_grad():
                if bias is not None:
                    bias.sub_(means.to(bias.dtype)).mul_(alpha)
                weight.mul_(alpha)
            total *= alpha
            steps += 1
            var, means, centered = _stats(_layer_output(model, layer, data), channel_dim)
        entry.var_after = var
        entry.iterations = steps
        entry.converged = not self._needs_step(var, means)
        entry.rule = f"{entry.rule}; then LSUV" if entry.rule else "LSUV"
        entry.note = f"LSUV scaled the weight by {total:.4g}" + (" and centred the output" if bias is not None else "")
        if not entry.converged:
            message = (
                f"LSUV: {name} ({type(layer).__name__}) output variance {var:.4g} is not within tol={self.tol} of "
                f"target={self.target} after {steps} rescaling(s)"
                + ("; the output is constant or dead" if not (math.isfinite(var) and var > 0) else "")
                + ". Try a larger max_iter, another batch, or check the layers before it."
            )
            warn_user(message, LSUVWarning)

    def _needs_step(self, var: float, means: torch.Tensor) -> bool:
        if not math.isfinite(var) or abs(var - self.target) > self.tol:
            return True
        return self.correct_mean and float(means.abs().max()) > self.tol * math.sqrt(self.target)


def lsuv(
    model: nn.Module,
    data: ModelInput,
    *,
    target: float = 1.0,
    tol: float = 0.1,
    max_iter: int = 10,
    correct_mean: bool = False,
    pre_init: bool = True,
    seed: Seed = None,
) -> InitReport:
    """Run LSUV (see the module docstring); the same as ``initialize(model, LSUV(...), data=data, seed=seed)``."""
    settings = LSUV(target=target, tol=tol, max_iter=max_iter, correct_mean=correct_mean, pre_init=pre_init)
    return settings.apply(model, data=data, seed=seed)


def pre_init_scheme() -> Scheme:
    """The paper's orthonormal pre-initialization as a scheme: Orthogonal weights (every gate block of an RNN on
    its own), N(0, 1) embeddings (an orthonormal embedding table would have tiny entries), zero biases, norms 1/0."""
    return Scheme(standard_rules(Orthogonal(), embedding=RandomNormal(0.0, 1.0)), name="lsuv pre-init")


class _LayerReachedError(Exception):
    """Raised by a hook to end a forward pass once the layer of interest has produced its output."""


def _layer_output(model: nn.Module, layer: nn.Module, data: ModelInput) -> torch.Tensor:
    captured: list[torch.Tensor] = []

    def hook(module: nn.Module, args: Any, output: torch.Tensor) -> None:
        captured.append(output.detach())
        raise _LayerReachedError

    handle = layer.register_forward_hook(hook)
    try:
        run_model(model, data)
    except _LayerReachedError:
        pass
    finally:
        handle.remove()
    if not captured:
        raise RuntimeError(f"LSUV: {type(layer).__name__} was not called on the batch in a second forward pass.")
    return captured[0]


def _stats(output: torch.Tensor, channel_dim: int) -> tuple[float, torch.Tensor, float]:
    """The variance over every element (float64, population), the per-channel means, and the variance around them."""
    values = output.detach().to(torch.float64)
    channels = values.movedim(channel_dim, -1).reshape(-1, values.shape[channel_dim])
    means = channels.mean(0)
    return float(values.var(correction=0)), means, float((channels - means).square().mean())


def _call_order(model: nn.Module, data: ModelInput) -> list[tuple[str, nn.Module]]:
    """Linear, Bilinear, Conv and ConvTranspose layers in the order of their first call on ``data``."""
    names = {id(m): name for name, m in model.named_modules()}
    order: list[tuple[str, nn.Module]] = []
    seen: set[int] = set()

    def hook(module: nn.Module, args: Any, output: Any) -> None:
        if id(module) not in seen:
            seen.add(id(module))
            order.append((names[id(module)], module))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, FEEDFORWARD_TYPES)]
    try:
        run_model(model, data)
    finally:
        for h in handles:
            h.remove()
    return order
