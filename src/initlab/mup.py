"""Parametrizations: the standard one and the maximal-update parametrization (muP) of Yang et al. (2022).

A parametrization says, for every parameter of a network, how its initial variance, its learning rate and (in
Yang's notation) its multiplier scale with the width. Under the standard parametrization (SP) every weight is drawn
with variance ~ 1/fan_in and every parameter trains at the same rate, so the best learning rate moves as the
network gets wider. muP chooses the scalings so that every layer's activations change by Θ(1) per step at any
width, and hence the best learning rate of a narrow "base" model transfers to a wide one.

**The rules** (Yang, Hu, Babuschkin, Sidor, Liu, Farhi, Ryder, Pachocki, Chen & Gao 2022, "Tensor Programs V:
Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer", table 3), written relative to a base model as
the ``mup`` package does, so that at the base width muP is SP (but for a zero output layer) and the base model's
learning rate is the one that transfers. The dimensions of a parameter that change with width are its "infinite"
ones; ``m_in = fan_in / base fan_in`` and ``m_out = fan_out / base fan_out``
(dimension 1 and dimension 0 of a weight; 1 when that dimension does not change):

=========================  =====================  ===========================  ============================
role                       initial variance       learning rate, SGD           learning rate, Adam/RMSprop
=========================  =====================  ===========================  ============================
input weights (fan_out     as drawn (~1/fan_in)   lr · m_out                   lr
grows), biases and other
vectors that grow
hidden weights (both       as drawn (~1/fan_in)   lr · m_out / m_in            lr / m_in
grow)
output weights (fan_in     zero, or drawn / m_in  lr / m_in                   lr / m_in
grows)
everything else            as drawn               lr                           lr
=========================  =====================  ===========================  ============================

"As drawn" is what the model's scheme gives; muP needs it to be a fan-in scheme (variance ∝ 1/fan_in: LeCun, He,
torch's defaults), which is SP's own. By default (``output="zero"``) the output weights start at zero: the paper's
recommendation (§D.2), and the form whose coordinate check is flat from the first steps with SGD and Adam alike
(:mod:`initlab.coordcheck`); ``output="scaled"`` divides their drawn variance by ``m_in`` instead (table 3:
1/fan_in² for 1/fan_in), under which SGD's output change after 5 steps still shrinks a little with width (slope
-0.20 on digits at widths 64-1024), a finite-width effect of the small initial readout. Which dimensions grow is
found against the same model at another width, so that a model at the base width knows its output layer too (a zero
output layer is zero at every width). An ``nn.Embedding`` is an input layer whatever its shape (its weight is
(vocabulary, width)). Weight decay coupled to the gradient (SGD, Adam, RMSprop) is divided by the same multiplier,
so that each step's decay lr·wd stays as in SP (the ``mup`` package's rule); AdamW's decoupled decay is left alone.
Attention's 1/d logit scaling is part of the model's forward pass and is not applied here.

Use: ``p = Parametrization.mup(model, base, wider=...)``, or :func:`from_factory` for a model whose width is a
parameter of its factory; ``p.rescale(model)`` after the scheme; ``p.param_groups(model, lr=..., optimizer=...)`` or
:meth:`Parametrization.lr_multipliers` for the optimizer (a :class:`~initlab.training.Population` takes them in
``set_lr``). In a study, an arm's ``parametrization = "mup"`` does all of it (``initlab.studies``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
from torch import nn

from initlab.checks import check_choice, check_int, check_keys, check_mapping

Role = Literal["input", "hidden", "output", "vector", "fixed"]
Kind = Literal["standard", "mup"]
Output = Literal["scaled", "zero"]

KINDS: tuple[Kind, ...] = get_args(Kind)
OUTPUTS: tuple[Output, ...] = get_args(Output)
#: Optimizers whose update is normalized per coordinate (muP's "Adam" column).
ADAPTIVE = ("adam", "adamw", "rmsprop")
#: Optimizers whose weight decay is added to the gradient (divided by a parameter's multiplier).
COUPLED_DECAY = ("sgd", "adam", "rmsprop")


@dataclass(frozen=True)
class ParamRole:
    """How one parameter scales with width: its role and its width multipliers (1 where a dimension is fixed)."""

    name: str
    role: Role
    m_in: float = 1.0
    m_out: float = 1.0

    def lr_multiplier(self, optimizer: str) -> float:
        """The factor on the learning rate of this parameter under muP (see the module's table)."""
        adaptive = optimizer in ADAPTIVE
        if self.role in ("input", "vector"):
            return 1.0 if adaptive else self.m_out
        if self.role == "hidden":
            return 1.0 / self.m_in if adaptive else self.m_out / self.m_in
        if self.role == "output":
            return 1.0 / self.m_in
        return 1.0


def _embedding_weights(model: nn.Module) -> set[str]:
    return {f"{prefix}.weight" if prefix else "weight" for prefix, m in model.named_modules()
            if isinstance(m, nn.Embedding)}  # fmt: skip


def _shapes(model: nn.Module | Mapping[str, Sequence[int]]) -> Mapping[str, Sequence[int]]:
    return model if isinstance(model, Mapping) else {n: tuple(p.shape) for n, p in model.named_parameters()}


def classify(
    model: nn.Module,
    base: nn.Module | Mapping[str, Sequence[int]],
    *,
    wider: nn.Module | Mapping[str, Sequence[int]] | None = None,
) -> dict[str, ParamRole]:
    """Every parameter's :class:`ParamRole`: its width multipliers from its shape against the base model's (a module
    or ``{name: shape}``), its role from the dimensions that change with width: those that differ from ``wider`` (the
    same model at another width), or from the base when ``wider`` is not given (then a model at the base width has
    no role but "fixed", and ``output="zero"`` cannot find its output layer). ValueError when a parameter is missing,
    has another number of dimensions, or differs in a dimension other than its first two (a convolution's kernel)."""
    base_shapes = _shapes(base)
    other_shapes = base_shapes if wider is None else _shapes(wider)
    embeddings = _embedding_weights(model)
    roles: dict[str, ParamRole] = {}
    for name, p in model.named_parameters():
        shape = tuple(p.shape)
        for what, shapes in (("base", base_shapes), ("wider", other_shapes)):
            if name not in shapes:
                raise ValueError(f"parameter {name!r} is not in the {what} model; it must be the same architecture "
                                 "at another width.")  # fmt: skip
            other = tuple(shapes[name])
            if len(shape) != len(other) or shape[2:] != other[2:]:
                raise ValueError(f"parameter {name!r} has shape {shape} here and {other} in the {what} model; only "
                                 "the first two dimensions (fan_out, fan_in) may change with width.")  # fmt: skip
        grows = tuple(a != b for a, b in zip(shape[:2], tuple(other_shapes[name])[:2], strict=True))
        roles[name] = _role(name, shape, tuple(base_shapes[name]), grows, embedding=name in embeddings)
    return roles


def _role(
    name: str, shape: tuple[int, ...], base: tuple[int, ...], grows: tuple[bool, ...], *, embedding: bool
) -> ParamRole:
    """The role from which of (fan_out, fan_in) grow with width; the multipliers from the shape against the base."""
    if not shape:
        return ParamRole(name, "fixed")
    m_out = shape[0] / base[0]
    if len(shape) == 1:
        return ParamRole(name, "vector" if grows[0] else "fixed", m_out=m_out)
    m_in = shape[1] / base[1]
    if embedding:  # (vocabulary, width): the width is its output
        return ParamRole(name, "input" if grows[1] else "fixed", m_out=m_in)
    grows_out, grows_in = grows
    role: Role = "hidden" if grows_out and grows_in else "input" if grows_out else "output" if grows_in else "fixed"
    return ParamRole(name, role, m_in=m_in, m_out=m_out)


@dataclass(frozen=True)
class Parametrization:
    """A parametrization of one model: ``kind`` ("standard" or "mup"), each parameter's role, and for muP the
    output layer's initialization ("zero", the default, or "scaled": variance / m_in). Standard changes nothing."""

    kind: Kind
    roles: Mapping[str, ParamRole]
    output: Output = "zero"

    @classmethod
    def mup(cls, model: nn.Module, base: nn.Module | Mapping[str, Sequence[int]], *, output: Output = "zero",
            wider: nn.Module | Mapping[str, Sequence[int]] | None = None) -> Parametrization:  # fmt: skip
        """muP for ``model`` relative to ``base`` (the same architecture at the base width); ``wider``, the same at
        yet another width, is needed only when ``model`` is at the base width (see :func:`classify`)."""
        check_choice("output", output, OUTPUTS)
        return cls("mup", classify(model, base, wider=wider), output)

    @classmethod
    def standard(cls, model: nn.Module) -> Parametrization:
        """The standard parametrization: the scheme's initialization, one learning rate."""
        return cls("standard", {n: ParamRole(n, "fixed") for n, _ in model.named_parameters()})

    def lr_multipliers(self, optimizer: str) -> dict[str, float]:
        """Per parameter name, the factor on the base learning rate (all 1 for standard)."""
        if self.kind == "standard":
            return {name: 1.0 for name in self.roles}
        return {name: role.lr_multiplier(optimizer) for name, role in self.roles.items()}

    @torch.no_grad()
    def rescale(self, model: nn.Module) -> None:
        """After the scheme (and any scale): muP's output weights divided by √m_in (variance / m_in) or zeroed."""
        if self.kind == "standard":
            return
        params = dict(model.named_parameters())
        for name, role in self.roles.items():
            if role.role == "output" and params[name].dim() >= 2:
                if self.output == "zero":
                    params[name].zero_()
                else:
                    params[name].mul_(1.0 / math.sqrt(role.m_in))

    def param_groups(self, model: nn.Module, *, lr: float, weight_decay: float = 0.0,
                     optimizer: str = "adam") -> list[dict[str, Any]]:  # fmt: skip
        """torch optimizer param groups for ``model``: one per distinct multiplier, with its ``lr`` and
        ``weight_decay`` (see the module docstring). ``torch.optim.Adam(p.param_groups(model, lr=1e-3))``."""
        multipliers = self.lr_multipliers(optimizer)
        groups: dict[float, list[torch.Tensor]] = {}
        for name, p in model.named_parameters():
            groups.setdefault(multipliers[name], []).append(p)
        return [{"params": params, **group_options(lr, weight_decay, m, optimizer)} for m, params in groups.items()]


def group_options(lr: float, weight_decay: float, multiplier: float, optimizer: str) -> dict[str, float]:
    """``lr`` and ``weight_decay`` of a param group whose learning-rate multiplier is ``multiplier``: the rate
    times it, the decay divided by it when the optimizer adds the decay to the gradient (so that lr·wd is kept)."""
    decay = weight_decay / multiplier if optimizer in COUPLED_DECAY and weight_decay else weight_decay
    return {"lr": lr * multiplier, "weight_decay": decay}


# -- configs ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParametrizationSpec:
    """A parametrization as a config, before there is a model: what a study's arm names. ``base_width`` None: the
    study's smallest width."""

    kind: Kind = "standard"
    base_width: int | None = None
    output: Output = "zero"

    def to_config(self) -> str | dict[str, Any]:
        """The short form (a name) when the other fields are defaults, else a dict."""
        if self.base_width is None and self.output == "zero":
            return self.kind
        config: dict[str, Any] = {"name": self.kind, "output": self.output}
        if self.base_width is not None:
            config["base_width"] = self.base_width
        return config


def parse(config: str | Mapping[str, Any] | None) -> ParametrizationSpec:
    """A :class:`ParametrizationSpec` from a name ("standard", "mup") or ``{"name": "mup", "base_width": 64,
    "output": "zero"}``; ``None`` is standard. ValueError names the problem and the closest name."""
    if config is None:
        return ParametrizationSpec()
    if isinstance(config, str):
        return ParametrizationSpec(check_choice("parametrization", config, KINDS))
    config = check_mapping("parametrization", config)
    check_keys("parametrization", config, ("name", "base_width", "output"))
    kind = check_choice("parametrization name", config.get("name", "mup"), KINDS)
    base = config.get("base_width")
    if base is not None:
        check_int("parametrization base_width", base, minimum=1)
    output = check_choice("parametrization output", config.get("output", "zero"), OUTPUTS)
    if kind == "standard" and (base is not None or "output" in config):
        raise ValueError("the standard parametrization takes no base_width or output; did you mean name = 'mup'?")
    return ParametrizationSpec(kind, base, output)


def from_factory(factory: Callable[[int], nn.Module], width: int, base_width: int, *,
                 output: Output = "zero") -> tuple[nn.Module, Parametrization]:  # fmt: skip
    """The model ``factory(width)`` and its muP relative to ``factory(base_width)``, its roles found against
    ``factory(2 * width)`` (both built on the meta device: no memory, no random draws)."""
    model = factory(width)
    with torch.device("meta"):
        base, wider = factory(base_width), factory(2 * width)
    return model, Parametrization.mup(model, base, output=output, wider=wider)
