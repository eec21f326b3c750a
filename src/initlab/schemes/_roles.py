"""Parameter roles: what each parameter of a model is, found from its module's type, never from fragments of names.

A :class:`Slot` is one unit of initialization: a whole parameter, or one block of a packed parameter (one gate of an
RNN/LSTM/GRU matrix, or the q, k or v block of an attention projection). It carries the parameter's **role** and the
:class:`~initlab.fans.Layout` that gives its fans:

=====================================  ==================  ===========================================================
module                                 parameter           role, layout, blocks
=====================================  ==================  ===========================================================
Linear                                 weight, bias        weight ``Layout("torch")``; bias
Bilinear                               weight, bias        weight ``(out, in1, in2)``, fan-in = in1·in2, fan-out = out
                                                           (``Layout.axes((1, 2), 0)``); bias
Conv1d/2d/3d                           weight, bias        weight ``Layout("torch", groups=module.groups)``; bias
ConvTranspose1d/2d/3d                  weight, bias        weight ``Layout("torch_transpose", groups=module.groups)``
Embedding, EmbeddingBag                weight              embedding ``(num, dim)``, ``Layout("torch")``: fan-in = dim,
                                                           the orientation of a tied output projection
RNN, LSTM, GRU (and their cells)       weight_ih_l*        weight, one block per gate (LSTM i, f, g, o; GRU r, z, n)
                                       weight_hh_l*        recurrent_weight, one block per gate
                                       bias_ih_l*          bias, one block per gate
                                       bias_hh_l*          recurrent_bias, one block per gate
                                       weight_hr_l*        recurrent_weight (LSTM projection, ``proj_size > 0``)
transformers' Conv1D (GPT-2)           weight, bias        weight ``(in, out)``, ``Layout("keras")``; bias
MultiheadAttention                     in_proj_weight      weight, blocks q, k, v (each ``(E, E)``)
                                       q/k/v_proj_weight   weight, block q, k or v (``kdim``/``vdim`` differ from E)
                                       in_proj_bias        bias, blocks q, k, v
                                       bias_k, bias_v      bias, block k or v (``add_bias_kv=True``)
                                       out_proj            a Linear of its own
BatchNorm, InstanceNorm, LayerNorm,    weight, bias        norm_scale, norm_shift
GroupNorm, RMSNorm
anything else                          any                 other (covered only by a rule that names the module type)
=====================================  ==================  ===========================================================

Parameter names are read only where torch's own modules define them (``weight_ih_l0``, ``in_proj_weight``); a
parameter of a custom module, or an extra parameter on a subclass of a torch module, gets the role ``"other"``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, get_args

import torch
from torch import nn

from initlab.fans import Layout
from initlab.tracing import CONV_TRANSPOSE_TYPES, CONV_TYPES, EMBEDDING_TYPES, LINEAR_TYPES, NORM_TYPES

logger = logging.getLogger(__name__)

Role = Literal["weight", "bias", "recurrent_weight", "recurrent_bias", "embedding", "norm_scale", "norm_shift", "other"]
ROLES: tuple[str, ...] = get_args(Role)

#: Gate order of torch's packed RNN matrices (torch.nn.LSTM and torch.nn.GRU docs) and the attention projections.
LSTM_GATES: tuple[str, ...] = ("i", "f", "g", "o")
GRU_GATES: tuple[str, ...] = ("r", "z", "n")
ATTENTION_BLOCKS: tuple[str, ...] = ("q", "k", "v")
BLOCKS: tuple[str, ...] = LSTM_GATES + GRU_GATES + ATTENTION_BLOCKS

_RNN_NAME = re.compile(r"^(weight|bias)_(ih|hh|hr)_l\d+(_reverse)?$")
_CELL_NAME = re.compile(r"^(weight|bias)_(ih|hh)$")


@dataclass(frozen=True)
class Slot:
    """One unit of initialization: a parameter, or one block (rows ``start:stop``) of a packed parameter."""

    name: str  #: qualified parameter name, e.g. ``"encoder.rnn.weight_hh_l0"``
    module_name: str  #: qualified module name, ``""`` for the root
    module: nn.Module = field(repr=False, compare=False)
    param_name: str  #: the attribute name on the module, e.g. ``"weight_hh_l0"``
    role: Role
    layout: Layout
    block: str | None = None  #: gate or projection block (``"f"``, ``"q"``, ...), ``None`` for a whole parameter
    rows: tuple[int, int] | None = None  #: the block's rows of dimension 0, ``None`` for the whole parameter

    @property
    def key(self) -> str:
        """``name`` with the block in brackets: ``"rnn.weight_ih_l0[f]"``."""
        return self.name if self.block is None else f"{self.name}[{self.block}]"

    @property
    def parameter(self) -> nn.Parameter:
        return getattr(self.module, self.param_name)

    @property
    def tensor(self) -> torch.Tensor:
        """The values this slot initializes: the parameter or a view of its block (shares storage)."""
        p = self.parameter
        return p if self.rows is None else p[self.rows[0] : self.rows[1]]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.tensor.shape)

    @property
    def module_type(self) -> str:
        return type(self.module).__name__


def slots(model: nn.Module) -> list[Slot]:
    """Every initialization slot of ``model`` in module order (``model.named_modules()``), parameter by parameter.

    A parameter shared by several modules (tied weights) appears once, under the first module that owns it.
    Raises ``ValueError`` for a lazy module whose parameters are not materialized yet.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    out: list[Slot] = []
    seen: dict[int, str] = {}
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            name = f"{module_name}.{param_name}" if module_name else param_name
            if id(param) in seen:
                logger.debug("%s is tied to %s; it is initialized once, as %s.", name, seen[id(param)], seen[id(param)])
                continue
            seen[id(param)] = name
            if isinstance(param, nn.parameter.UninitializedParameter):
                raise ValueError(
                    f"parameter {name!r} of the lazy module {type(module).__name__} is not materialized yet; run one "
                    "forward pass with a real input first (or use the 'auto' scheme with data=...)."
                )
            out.extend(_param_slots(name, module_name, module, param_name, param))
    return out


def _is_hf_conv1d(module: nn.Module) -> bool:
    """Whether ``module`` is Hugging Face's ``transformers.pytorch_utils.Conv1D`` (found by its class's module and
    name, so that transformers is never imported here)."""
    cls = type(module)
    return cls.__name__ == "Conv1D" and cls.__module__.startswith("transformers.")


def _param_slots(name: str, module_name: str, module: nn.Module, pname: str, param: torch.Tensor) -> Iterator[Slot]:
    def one(role: Role, layout: Layout | None = None) -> Iterator[Slot]:
        yield Slot(name, module_name, module, pname, role, layout or Layout("torch"))

    def blocks(role: Role, names: tuple[str, ...]) -> Iterator[Slot]:
        size = param.shape[0] // len(names)
        for i, block in enumerate(names):
            yield Slot(name, module_name, module, pname, role, Layout("torch"), block, (i * size, (i + 1) * size))

    if _is_hf_conv1d(module):
        # Hugging Face's GPT-2 Conv1D computes x @ W + b with W stored (in, out): Keras' layout, fan-in = shape[0].
        if pname == "weight":
            return one("weight", Layout("keras"))
        if pname == "bias":
            return one("bias")
    if isinstance(module, nn.Bilinear):
        if pname == "weight":
            # y_k = x1ᵀ W_k x2: every output sums in1·in2 products, so that is its fan-in (torch's own default uses
            # only in1, giving U[-1/√in1, 1/√in1]).
            return one("weight", Layout.axes(in_axes=(1, 2), out_axes=(0,)))
        if pname == "bias":
            return one("bias")
    elif isinstance(module, LINEAR_TYPES):
        if pname in ("weight", "bias"):
            return one(pname)  # type: ignore[arg-type]
    elif isinstance(module, CONV_TYPES + CONV_TRANSPOSE_TYPES):
        if pname == "weight":
            kind = "torch_transpose" if isinstance(module, CONV_TRANSPOSE_TYPES) else "torch"
            return one("weight", Layout(kind, groups=module.groups))  # type: ignore[arg-type]
        if pname == "bias":
            return one("bias")
    elif isinstance(module, EMBEDDING_TYPES):
        if pname == "weight":
            return one("embedding")
    elif isinstance(module, NORM_TYPES):
        if pname == "weight":
            return one("norm_scale")
        if pname == "bias":
            return one("norm_shift")
    elif isinstance(module, (nn.RNNBase, nn.RNNCellBase)):
        match = (_RNN_NAME if isinstance(module, nn.RNNBase) else _CELL_NAME).match(pname)
        if match:
            kind, where = match.group(1), match.group(2)
            if where == "hr":  # LSTM projection h_t = W_hr(o_t ⊙ tanh(c_t)): on the recurrent path, no gates
                return one("recurrent_weight")
            role: Role = {
                ("weight", "ih"): "weight",
                ("weight", "hh"): "recurrent_weight",
                ("bias", "ih"): "bias",
                ("bias", "hh"): "recurrent_bias",
            }[(kind, where)]  # type: ignore[assignment]
            gates = _gates(module)
            return blocks(role, gates) if gates else one(role)
    elif isinstance(module, nn.MultiheadAttention):
        if pname in ("in_proj_weight", "in_proj_bias"):
            return blocks("weight" if pname == "in_proj_weight" else "bias", ATTENTION_BLOCKS)
        if pname in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
            return iter([Slot(name, module_name, module, pname, "weight", Layout("torch"), pname[0])])
        if pname in ("bias_k", "bias_v"):
            return iter([Slot(name, module_name, module, pname, "bias", Layout("torch"), pname[-1])])
    return one("other")


def _gates(module: nn.Module) -> tuple[str, ...]:
    """Gate names of an RNN module's packed matrices; empty for a plain (one-gate) RNN."""
    if isinstance(module, nn.RNNBase):
        return {"LSTM": LSTM_GATES, "GRU": GRU_GATES}.get(module.mode, ())
    if isinstance(module, nn.LSTMCell):
        return LSTM_GATES
    if isinstance(module, nn.GRUCell):
        return GRU_GATES
    return ()
