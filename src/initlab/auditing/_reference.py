"""What each parameter should look like: the exact distribution a scheme, or torch's defaults, would draw it from.

Without a scheme the reference is PyTorch's own defaults, each module's ``reset_parameters`` as of torch 2.x, written
out here so that every expected distribution is exact (fans as torch computes them, ``fan_in = shape[1] · kernel``,
which for a ConvTranspose is its output channels per group):

==========================================  =========================================================================
module                                      default
==========================================  =========================================================================
Linear, Conv*, ConvTranspose*               weight ``kaiming_uniform_(a=√5)`` = U(±1/√fan_in), std 1/√(3·fan_in);
                                            bias U(±1/√fan_in)
Bilinear ``(out, in1, in2)``                weight and bias U(±1/√in1)
Embedding, EmbeddingBag                     N(0, 1), the padding row 0
BatchNorm, InstanceNorm, LayerNorm,         weight 1, bias 0
GroupNorm, RMSNorm
RNN, LSTM, GRU and their cells              every weight and bias U(±1/√hidden_size)
MultiheadAttention                          packed ``in_proj_weight`` Xavier uniform over the whole (3E, E) matrix,
                                            separate q/k/v weights Xavier uniform each, ``in_proj_bias`` and
                                            ``out_proj.bias`` 0, ``bias_k``/``bias_v`` Xavier normal
inside an ``nn.Transformer``                every matrix Xavier uniform (``Transformer._reset_parameters``)
PReLU                                       its ``init`` (0.25)
==========================================  =========================================================================

With a scheme (anything :func:`initlab.schemes.resolve` reads that is a rule-based :class:`~initlab.schemes.Scheme`,
or ``"torch"`` for the table above), each parameter gets the distribution of the initializer of the first rule that
matches it, at the parameter's own shape and layout, exactly as :func:`initlab.initialize` would apply it; "auto"
rules choose their initializer from the activation found by one forward pass, as ``initialize`` does.

Models from other libraries: ``transformers.pytorch_utils.Conv1D`` (GPT-2's layers) stores its weight ``(in, out)``
(``y = x W + b``), so its fans are read with the Keras layout, fan_in = ``shape[0]``. A Hugging Face model declares
the std its own ``_init_weights`` draws from, ``config.initializer_range`` (0.02 for GPT-2 and BERT): the audit
accepts that std as one more rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from torch import nn

from initlab.catalog import Distribution, Initializer
from initlab.fans import Fans, Layout
from initlab.schemes import (
    AUTO,
    LSUV,
    Critical,
    Scheme,
    Slot,
    TorchDefaults,
    choose_initializer,
    discover_activations,
    resolve,
)
from initlab.tracing import (
    CONV_TRANSPOSE_TYPES,
    CONV_TYPES,
    EMBEDDING_TYPES,
    LINEAR_TYPES,
    NORM_TYPES,
    Activation,
    ModelInput,
)

#: Module classes of other libraries whose weight layout differs from torch's, by ``"module:QualName"``.
FOREIGN_LAYOUTS: dict[str, Layout] = {
    # y = x @ W + b with W of shape (nx, nf) = (in, out): transformers/pytorch_utils.py, class Conv1D.
    "transformers.pytorch_utils:Conv1D": Layout("keras"),
}
#: Config attributes by which a model declares the std its own initialization draws weights from (Hugging Face's
#: ``PreTrainedModel._init_weights`` reads the first of these that the config has).
DECLARED_STD_ATTRIBUTES: tuple[str, ...] = ("initializer_range", "init_std")


@dataclass(frozen=True)
class Expectation:
    """What a parameter should be: the rule in words, its exact distribution, and whether the caller named it."""

    rule: str
    distribution: Distribution
    explicit: bool

    @property
    def constant(self) -> bool:
        return self.distribution.family == "constant"


def foreign_layout(module: nn.Module) -> Layout | None:
    """The layout of a module class listed in :data:`FOREIGN_LAYOUTS` (matched on its MRO), or ``None``."""
    for cls in type(module).__mro__:
        layout = FOREIGN_LAYOUTS.get(f"{cls.__module__}:{cls.__qualname__}")
        if layout is not None:
            return layout
    return None


def slot_layout(slot: Slot) -> Layout:
    """The slot's layout, or the layout of its module's class where :data:`FOREIGN_LAYOUTS` knows better."""
    found = foreign_layout(slot.module) if slot.param_name == "weight" else None
    return found if found is not None and slot.layout == Layout("torch") else slot.layout


def slot_fans(slot: Slot) -> Fans | None:
    """Fan-in and fan-out of the slot's tensor under :func:`slot_layout`; ``None`` where the layout does not fit."""
    try:
        return slot_layout(slot).fans(slot.shape)
    except ValueError:
        return None


def declared_std(model: nn.Module) -> tuple[str, float] | None:
    """``("N(0, config.initializer_range=0.02)", 0.02)`` for a model whose ``config`` declares its weights' std."""
    config = getattr(model, "config", None)
    for name in DECLARED_STD_ATTRIBUTES:
        value = getattr(config, name, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
            return f"N(0, config.{name}={value:g})", float(value)
    return None


# -- references --------------------------------------------------------------------------------------------------
class Reference:
    """Gives each slot its :class:`Expectation`, or ``None`` where no rule covers it."""

    name: str
    explicit: bool

    def expect(self, slot: Slot) -> Expectation | None:
        raise NotImplementedError


class TorchReference(Reference):
    """PyTorch's defaults (the table of the module docstring)."""

    def __init__(self, model: nn.Module, *, explicit: bool) -> None:
        self.name = "torch" if explicit else "torch defaults (no scheme given)"
        self.explicit = explicit
        self._parents: dict[int, nn.Module] = {}
        self._in_transformer: set[int] = set()
        for module in model.modules():
            for child in module.children():
                self._parents.setdefault(id(child), module)
            if isinstance(module, nn.Transformer):
                self._in_transformer.update(id(m) for m in module.modules())

    def expect(self, slot: Slot) -> Expectation | None:
        found = torch_default(slot, self._parents.get(id(slot.module)), id(slot.module) in self._in_transformer)
        return None if found is None else Expectation(found[0], found[1], self.explicit)


class SchemeReference(Reference):
    """A rule-based scheme: the first matching rule's initializer at the slot's shape and layout."""

    def __init__(self, scheme: Scheme, model: nn.Module, data: ModelInput | None, label: str) -> None:
        self.name = label
        self.explicit = True
        self._rules = scheme.effective_rules()
        self._activations = discover_activations(model, data) if scheme.uses_auto else {}

    def expect(self, slot: Slot) -> Expectation | None:
        rule = next((r for r in self._rules if r.matches(slot)), None)
        if rule is None:
            return None
        init: Initializer
        if rule.init == AUTO:
            activation = self._activations.get(id(slot.module)) or Activation("none", "none", source="unknown")
            init = choose_initializer(activation)[0]
        else:
            init = rule.init  # type: ignore[assignment]
        try:
            distribution = init.distribution(slot.shape, slot_layout(slot))
        except ValueError as err:
            raise ValueError(
                f"rule {rule.describe()!r} cannot initialize {slot.key} ({slot.module_type}, shape {slot.shape}): {err}"
            ) from err
        return Expectation(f"{rule.describe()}", distribution, True)


def make_reference(model: nn.Module, scheme: Any, data: ModelInput | None) -> Reference:
    """The reference for ``scheme``: torch's defaults for ``None`` or ``"torch"``, else a rule-based scheme.

    ``"lsuv"`` and ``"critical"`` are refused with the reason: their scale is set layer by layer from data or from
    the activations, so there is no one distribution per parameter to test against.
    """
    if scheme is None:
        return TorchReference(model, explicit=False)
    init = resolve(scheme)
    if isinstance(init, TorchDefaults):
        return TorchReference(model, explicit=True)
    if isinstance(init, LSUV):
        raise ValueError(
            "the 'lsuv' scheme rescales each layer to unit output variance on a batch of data, so its result has no "
            "fixed distribution to audit against; audit against its starting point ('orthogonal') or with no scheme."
        )
    if isinstance(init, Critical):
        raise ValueError(
            "the 'critical' scheme is not supported by audit: it sets each layer's variance from the activation that "
            "follows it; audit against 'auto' (the same activation-aware choice at the standard gains) instead."
        )
    if isinstance(init, Scheme):
        label = scheme if isinstance(scheme, str) else (init.name or repr(init))
        return SchemeReference(init, model, data, f"scheme {label!r}")
    raise TypeError(f"audit cannot read the rules of {type(init).__name__}; give a rule-based scheme or 'torch'.")


# -- torch's defaults --------------------------------------------------------------------------------------------
def _torch_fan_in(shape: tuple[int, ...]) -> int:
    """``torch.nn.init._calculate_fan_in_and_fan_out``'s fan-in: ``shape[1]`` times the receptive field."""
    return shape[1] * math.prod(shape[2:]) if len(shape) >= 2 else (shape[0] if shape else 1)


def _torch_fan_out(shape: tuple[int, ...]) -> int:
    return shape[0] * math.prod(shape[2:]) if len(shape) >= 2 else (shape[0] if shape else 1)


def _bound(text: str, b: float) -> tuple[str, Distribution]:
    return f"{text}: U(±{b:.4g})", Distribution.uniform(-b, b)


def _xavier(text: str, shape: tuple[int, ...], *, normal: bool = False) -> tuple[str, Distribution]:
    var = 2.0 / (_torch_fan_in(shape) + _torch_fan_out(shape))
    if normal:
        return f"{text}: xavier_normal_ N(0, {var:.4g})", Distribution.normal(0.0, math.sqrt(var))
    b = math.sqrt(3.0 * var)
    return f"{text}: xavier_uniform_ U(±{b:.4g})", Distribution.uniform(-b, b)


def _constant(text: str, value: float) -> tuple[str, Distribution]:
    return f"{text}: {value:g}", Distribution.constant(value)


def torch_default(slot: Slot, parent: nn.Module | None, in_transformer: bool) -> tuple[str, Distribution] | None:
    """PyTorch's default for ``slot`` (see the module docstring), as (rule in words, distribution), or ``None``."""
    m, p, shape = slot.module, slot.param_name, tuple(slot.parameter.shape)
    kind = type(m).__name__
    if in_transformer and len(shape) > 1:
        return _xavier("Transformer._reset_parameters", shape)
    if isinstance(m, nn.Bilinear) and p in ("weight", "bias"):
        return _bound(f"{kind}.reset_parameters: 1/√in1_features", 1.0 / math.sqrt(m.in1_features))
    if isinstance(m, LINEAR_TYPES + CONV_TYPES + CONV_TRANSPOSE_TYPES):
        if isinstance(parent, nn.MultiheadAttention) and m is getattr(parent, "out_proj", None) and p == "bias":
            return _constant("MultiheadAttention._reset_parameters", 0.0)
        fan_in = _torch_fan_in(tuple(m.weight.shape))
        if p == "weight":
            return _bound(f"{kind}.reset_parameters: kaiming_uniform_(a=√5), 1/√fan_in", 1.0 / math.sqrt(fan_in))
        if p == "bias":
            return _bound(f"{kind}.reset_parameters: 1/√fan_in", 1.0 / math.sqrt(fan_in))
    if isinstance(m, EMBEDDING_TYPES) and p == "weight":
        return f"{kind}.reset_parameters: N(0, 1)", Distribution.normal(0.0, 1.0)
    if isinstance(m, NORM_TYPES) and p in ("weight", "bias"):
        return _constant(f"{kind}.reset_parameters", 1.0 if p == "weight" else 0.0)
    if isinstance(m, (nn.RNNBase, nn.RNNCellBase)):
        return _bound(f"{kind}.reset_parameters: 1/√hidden_size", 1.0 / math.sqrt(m.hidden_size))
    if isinstance(m, nn.MultiheadAttention):
        return _mha_default(p, shape)
    if isinstance(m, nn.PReLU) and p == "weight":
        return _constant("PReLU(init)", float(getattr(m, "init", 0.25)))
    return None


def _mha_default(p: str, shape: tuple[int, ...]) -> tuple[str, Distribution] | None:
    if p in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
        return _xavier("MultiheadAttention._reset_parameters", shape)
    if p == "in_proj_bias":
        return _constant("MultiheadAttention._reset_parameters", 0.0)
    if p in ("bias_k", "bias_v"):
        return _xavier("MultiheadAttention._reset_parameters", shape, normal=True)
    return None
