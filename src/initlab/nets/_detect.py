"""Residual structure read from the computation, for models that do not declare it (:func:`detect`).

A model from another library (a Hugging Face GPT-2, a torchvision ResNet) names nothing; its residual structure is in
how its forward pass is wired. :func:`detect` traces one forward pass on an example input with ``torch.export``
(non-strict mode runs the Python ``forward`` as it is, so the control flow of library models traces where
``torch.fx.symbolic_trace`` fails), and reads the graph of ATen operations:

1. **Weighted ops.** A node whose inputs include a parameter (or a value computed from parameters alone, such as
   ``weight.t()``) is a weighted op: a linear layer, a convolution, an embedding lookup, a norm, a gate ``α · f(x)``.
   Its module is the innermost module on the node's ``nn_module_stack`` that owns the parameter (so a tied weight is
   attributed to the layer that uses it: GPT-2's ``lm_head`` and ``wte`` share one tensor), else the module the
   parameter's name gives. An op is a *norm op* if its module is a normalization (:data:`initlab.tracing.NORM_TYPES`),
   the op is one (``batch_norm``, ``layer_norm``, ...), or its parameters are vectors and its module computes a
   normalizing statistic (``rsqrt``, ``var``: Llama's RMSNorm); otherwise a *matrix op* if one of its parameters has
   two or more dimensions, else a *vector op* (a gate or a scale).
2. **Residual additions.** An ``add`` of two tensors of the output's shape, both computed from the model's input, is
   the junction ``shortcut + branch`` of a residual block when, with ``A`` and ``B`` the operands' ancestors,

   - the operands share a data ancestor (the block input): not the case for ``wte(ids) + wpe(positions)``, whose
     positions are a constant ``arange``, nor for a constant attention mask;
   - the branch side (``B \\ A``) holds more matrix ops than the shortcut side (``A \\ B``): an add inside an
     activation (GELU's ``x + 0.044715·x³``) has none, nor has ``fc1(x) + fc2(x)``;
   - the shortcut carries the block input itself, up to views, copies and dropout (its operand, or what those
     pass-through ops read, is an ancestor of the branch operand), or through a projection (``A \\ B`` holds a
     matrix op: ResNet's 1×1 convolution).

3. **Each branch.** Its last layer is the latest matrix op on the branch side; a norm op after it on the branch side
   is its norm-after (ResNet's last batch norm, which zero-init-last-BN sets to zero), a vector op after it that
   multiplies is its gate (ReZero's α, a layer scale). The block is the deepest module holding the addition and the
   weighted ops of both sides (GPT-2's ``GPT2Block``; BERT's ``BertLayer``, though BERT adds inside
   ``BertSelfOutput``). The branch module is the deepest module holding the branch's matrix ops, widened to the
   largest module inside the block whose parameters all serve the branch; the projection shortcut likewise for the
   shortcut side's weighted ops (``shortcut``, not ``shortcut.conv``). Consecutive additions of one block are its
   branches; a later addition whose branch contains the earlier one (a residual around residual blocks) starts a
   block of its own.
4. **The rest.** The embeddings are the matrix ops that feed the first block's stream and either read no other matrix
   op's output (token and position lookups, an input projection, a ResNet's stem) or add or concatenate a parameter
   to the stream (ViT's position embedding and class token). The head is the one matrix op the first output is read
   from, unless it is in a residual branch (a backbone without a head) or there are several. Norms are the modules of
   :data:`initlab.tracing.NORM_TYPES` and those with norm ops, in ``named_modules()`` order.

The result is the same :class:`~initlab.nets.Structure` that declarations give, with ``source="detected"``.
Detection sees one forward pass: a branch the example does not run (a data-dependent ``if``) is not seen.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from initlab.nets._structure import Block, Branch, Structure, StructureError
from initlab.tracing import NORM_TYPES, ModelInput, check_data, inspection

# ATen additions that can join a residual branch to its shortcut (``x + f(x)``, ``h += residual``).
_ADDS = frozenset({"aten::add.Tensor", "aten::add_.Tensor", "aten::add.out"})
# Ops that pass a value on unchanged (views, copies, dropout in eval mode): a shortcut made of them is an identity.
_PASSTHROUGH = frozenset(
    {
        "aten::view",
        "aten::reshape",
        "aten::_unsafe_view",
        "aten::alias",
        "aten::clone",
        "aten::contiguous",
        "aten::to",
        "aten::_to_copy",
        "aten::type_as",
        "aten::dropout",
        "aten::detach",
        "aten::flatten",
        "aten::squeeze",
        "aten::unsqueeze",
        "aten::expand",
        "aten::identity",
    }
)
# ATen normalizations: an op of these is a norm op whatever module runs it.
_NORM_OPS = frozenset(
    {
        "aten::batch_norm",
        "aten::_native_batch_norm_legit_no_training",
        "aten::_native_batch_norm_legit_functional",
        "aten::native_batch_norm",
        "aten::layer_norm",
        "aten::native_layer_norm",
        "aten::group_norm",
        "aten::native_group_norm",
        "aten::instance_norm",
        "aten::rms_norm",
        "aten::_fused_rms_norm",
    }
)
# Statistics that normalize: a module computing one of these and scaling by a vector parameter is a norm (RMSNorm,
# T5's and Llama's own layer norms), whatever its class.
_STATISTICS = frozenset(
    {
        "aten::rsqrt",
        "aten::var",
        "aten::var_mean",
        "aten::std",
        "aten::std_mean",
        "aten::linalg_vector_norm",
        "aten::norm",
    }
)
# Ops by which a vector or scalar parameter gates a branch (``α · f(x)``); a bias added after the last layer is no gate.
_SCALES = frozenset({"aten::mul", "aten::mul_"})
# Ops that write a parameter into the stream rather than transform it: a position embedding added, a class token
# concatenated.
_WRITES = frozenset({"aten::add", "aten::add_", "aten::sub", "aten::cat"})
# The wrapper's attribute holding the model: stripped from every name the trace reports.
_INNER = "model"


class _Outputs(nn.Module):
    """``model`` with its outputs reduced to a tuple of tensors: ``torch.export`` cannot return the objects some
    models put in their outputs (a Hugging Face ``DynamicCache``), and detection needs only the tensors."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, ...]:
        found: list[torch.Tensor] = []
        _tensors(self.model(*args, **kwargs), found)
        return tuple(found)


def _tensors(value: Any, found: list[torch.Tensor]) -> None:
    """The tensors in ``value`` (nested tuples, lists and mappings, Hugging Face ``ModelOutput`` included), in order."""
    if isinstance(value, torch.Tensor):
        found.append(value)
    elif isinstance(value, Mapping):
        for v in value.values():
            _tensors(v, found)
    elif isinstance(value, (tuple, list)):
        for v in value:
            _tensors(v, found)


def _op_name(node: torch.fx.Node) -> str:
    """``"aten::add.Tensor"`` style name of a call node's target (``"aten::linear"`` for the default overload)."""
    target = node.target
    name = getattr(target, "name", None)
    if callable(name):
        text = name()
        return text[: -len(".default")] if text.endswith(".default") else text
    return getattr(target, "__name__", str(target))


def _base_op(node: torch.fx.Node) -> str:
    """The op's name without its overload: ``"aten::add"`` for ``aten::add.Tensor``."""
    return _op_name(node).split(".")[0]


def _strip(path: str) -> str:
    """A module path of the wrapped model as the user's model names it (``"model.h.0@1"`` -> ``"h.0"``)."""
    path = re.sub(r"@\d+$", "", path)
    if path == _INNER:
        return ""
    return path[len(_INNER) + 1 :] if path.startswith(_INNER + ".") else path


def _innermost(node: torch.fx.Node) -> str:
    """The module whose ``forward`` ran ``node`` (the innermost of its ``nn_module_stack``); ``""``: the model's."""
    stack = list((node.meta.get("nn_module_stack") or {}).values())
    return _strip(stack[-1][0]) if stack else ""


def _common_module(names: Iterable[str]) -> str:
    """The deepest module holding every one of ``names``: their longest common prefix by path components."""
    parts = [n.split(".") if n else [] for n in names]
    if not parts:
        return ""
    prefix = parts[0]
    for p in parts[1:]:
        k = 0
        while k < min(len(prefix), len(p)) and prefix[k] == p[k]:
            k += 1
        prefix = prefix[:k]
    return ".".join(prefix)


@dataclass(frozen=True)
class _Op:
    """A weighted op of the trace: its node index, module, parameters (qualified names) and kind."""

    index: int
    module: str
    params: tuple[str, ...]
    kind: str  # "matrix", "norm" or "vector"


class _Graph:
    """The traced graph as ancestor sets (Python ints used as bit sets over node indices) and weighted ops."""

    def __init__(self, model: nn.Module, program: torch.export.ExportedProgram) -> None:
        self.model = model
        self.nodes = list(program.graph.nodes)
        self.index = {n: i for i, n in enumerate(self.nodes)}
        sig = program.graph_signature
        param_of = {k: _strip(v) for k, v in sig.inputs_to_parameters.items()}
        user_inputs = set(sig.user_inputs)
        self.modules = dict(model.named_modules())
        self.anc: list[int] = []  # every ancestor, the node itself included
        self.data = 0  # nodes computed from the user's inputs
        pure: dict[torch.fx.Node, frozenset[str]] = {}  # node -> parameters, for values of parameters alone
        self.ops: dict[int, _Op] = {}  # by node index, in graph order
        self.normalizing = {_innermost(n) for n in self.nodes if n.op == "call_function" and _base_op(n) in _STATISTICS}
        for i, node in enumerate(self.nodes):
            inputs = node.all_input_nodes
            mask = 1 << i
            for a in inputs:
                mask |= self.anc[self.index[a]]
            self.anc.append(mask)
            if node.op == "placeholder":
                if node.name in param_of:
                    pure[node] = frozenset({param_of[node.name]})
                elif node.name in user_inputs:
                    self.data |= 1 << i
                continue
            if node.op != "call_function":
                continue
            if any(self.data >> self.index[a] & 1 for a in inputs):
                self.data |= 1 << i
            if inputs and all(a in pure for a in inputs):
                pure[node] = frozenset().union(*(pure[a] for a in inputs))
            elif any(a in pure for a in inputs):
                self.ops[i] = self._weighted(i, node, sorted(set().union(*(pure[a] for a in inputs if a in pure))))

    def _weighted(self, i: int, node: torch.fx.Node, params: list[str]) -> _Op:
        """The :class:`_Op` of a node that reads ``params``: attributed to the innermost module on its stack that
        owns one of them (a tied weight goes to the layer using it), else to the module the name gives."""
        tensors = {id(self.model.get_parameter(p)): p for p in params}
        stack = [_strip(path) for path, _ in (node.meta.get("nn_module_stack") or {}).values()]
        module, names = params[0].rpartition(".")[0], params
        for path in reversed(stack):
            owner = self.modules.get(path)
            if owner is None:
                continue
            own = [f"{path}.{n}" if path else n for n, p in owner.named_parameters(recurse=False) if id(p) in tensors]
            if own:
                module, names = path, own
                break
        dims = max(self.model.get_parameter(p).dim() for p in params)
        is_norm = (
            isinstance(self.modules.get(module), NORM_TYPES)
            or _base_op(node) in _NORM_OPS
            or (dims < 2 and module in self.normalizing)
        )
        kind = "norm" if is_norm else "matrix" if dims >= 2 else "vector"
        return _Op(i, module, tuple(names), kind)

    def ops_in(self, mask: int, kind: str | None = None) -> list[_Op]:
        """The weighted ops among the nodes of ``mask``, in graph order; only those of ``kind`` if given."""
        return [op for i, op in self.ops.items() if mask >> i & 1 and (kind is None or op.kind == kind)]

    def is_data(self, node: torch.fx.Node) -> bool:
        return bool(self.data >> self.index[node] & 1)


def _shape(node: torch.fx.Node) -> tuple[int, ...] | None:
    val = node.meta.get("val")
    return tuple(val.shape) if isinstance(val, torch.Tensor) else None


def _identity_source(g: _Graph, node: torch.fx.Node, branch_anc: int) -> bool:
    """Whether ``node`` is the branch's input, or reads it through pass-through ops only (an identity shortcut)."""
    while True:
        i = g.index[node]
        if branch_anc >> i & 1:
            return True
        data_inputs = [a for a in node.all_input_nodes if g.is_data(a)]
        if i in g.ops or _base_op(node) not in _PASSTHROUGH or len(data_inputs) != 1:
            return False
        node = data_inputs[0]


@dataclass(frozen=True)
class _Junction:
    """A residual addition: the add node's index, its block (the deepest module holding the addition and both
    sides), its branch, the branch side's nodes and the shortcut operand."""

    index: int
    block: str
    branch: Branch
    branch_side: int  # node bit set of the branch (ancestors of the branch operand only)
    stream: torch.fx.Node  # the shortcut operand


def _junction(g: _Graph, i: int, node: torch.fx.Node) -> _Junction | None:
    """The residual junction at add node ``i``, or ``None`` if the add is not one (see the module docstring)."""
    args = [a for a in node.args[:2] if isinstance(a, torch.fx.Node)]
    if len(args) != 2 or not all(g.is_data(a) for a in args):
        return None
    out = _shape(node)
    if out is None or _shape(args[0]) != out or _shape(args[1]) != out:
        return None
    x, y = args
    ax, ay = g.anc[g.index[x]], g.anc[g.index[y]]
    if not ax & ay & g.data:
        return None
    only_x, only_y = ax & ~ay, ay & ~ax
    mx, my = len(g.ops_in(only_x, "matrix")), len(g.ops_in(only_y, "matrix"))
    if mx == my:
        return None
    stream, branch_op, shortcut_side, branch_side = (x, y, only_x, only_y) if my > mx else (y, x, only_y, only_x)
    shortcut_ops = g.ops_in(shortcut_side)
    projection = any(op.kind == "matrix" for op in shortcut_ops)
    if not projection and not _identity_source(g, stream, g.anc[g.index[branch_op]]):
        return None
    matrices = g.ops_in(branch_side, "matrix")
    last = matrices[-1]
    after = [op for op in g.ops_in(branch_side) if op.index > last.index and g.anc[op.index] >> last.index & 1]
    norm = next((op.module for op in after if op.kind == "norm"), None)
    gate = next((op.params[0] for op in after if op.kind == "vector" and _base_op(g.nodes[op.index]) in _SCALES), None)
    # The block: the deepest module holding the addition and both paths (BERT adds in a submodule, BertSelfOutput,
    # that holds only the branch's last layer).
    block = _common_module([_innermost(node), *(op.module for op in (*matrices, *shortcut_ops))])
    branch = Branch(
        name=_widen(g, _common_module(op.module for op in matrices), block, g.ops_in(branch_side)),
        last=last.module,
        last_norm=norm,
        gate=gate,
        shortcut=_widen(g, _common_module(op.module for op in shortcut_ops), block, shortcut_ops)
        if projection
        else None,
    )
    return _Junction(i, block, branch, branch_side, stream)


def _widen(g: _Graph, name: str, block: str, side: list[_Op]) -> str:
    """The largest module inside ``block`` that holds ``name`` and whose parameters are all used on ``side``: the
    container of a path (a shortcut ``Sequential(conv, Identity)``, not its convolution), as a declaration names it."""
    used = {p for op in side for p in op.params}
    while name and name != block and name.startswith(f"{block}." if block else ""):
        parent = name.rpartition(".")[0]
        if parent == block or not all(p in used for p, _ in _qualified(g, parent)):
            break
        name = parent
    return name


def _qualified(g: _Graph, module: str) -> list[tuple[str, nn.Parameter]]:
    prefix = f"{module}." if module else ""
    return [(prefix + n, p) for n, p in g.modules[module].named_parameters()]


def _joins(block: str, j: _Junction, previous: _Junction) -> bool:
    """Whether junction ``j`` belongs to the block of the ``previous`` one, named ``block`` so far."""
    if j.block == block:
        return True
    inside = block.startswith(f"{j.block}.") or (j.block == "" and block != "")
    return inside and not j.branch_side >> previous.index & 1


def _trace(model: nn.Module, example: ModelInput) -> torch.export.ExportedProgram:
    """One forward pass of ``model`` on ``example`` as an ATen graph, in eval mode and without a trace left."""
    if isinstance(example, torch.Tensor):
        args, kwargs = (example,), {}
    elif isinstance(example, (tuple, list)):
        args, kwargs = tuple(example), {}
    else:
        args, kwargs = (), dict(example)
    try:
        with inspection(model):
            return torch.export.export(_Outputs(model), args, kwargs, strict=False)
    except Exception as e:  # any failure of the tracer: the user's remedy is the same
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise StructureError(
            f"{type(model).__name__} does not declare its residual structure, and tracing it to detect the "
            f"structure failed ({type(e).__name__}: {first}). Check that the model runs on the example input; "
            "otherwise give its blocks a residual_branches() method and the model a declare_structure() method "
            "(initlab.nets; see docs/residual.md)."
        ) from e


def detect(model: nn.Module, example: ModelInput | None = None) -> Structure:
    """The residual structure of ``model`` read from one traced forward pass on ``example`` (the algorithm is in
    the module docstring): its blocks and branches (each branch's last layer, a norm after it, a gate, a projection
    shortcut), embeddings, norms and head, as qualified module names, with ``source="detected"``.

    ``example`` is an input the model accepts, in :data:`initlab.tracing.ModelInput` form: a tensor, a tuple of
    positional inputs or a dict of keyword inputs (``{"input_ids": ids}``); one small batch is enough. The model is
    traced in eval mode and left as it was.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``, or ``example`` has no usable form.
        StructureError: no example was given, or the model could not be traced (the message says why).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    if example is None:
        raise StructureError(
            f"{type(model).__name__} does not declare its residual structure; to detect it from the computation, "
            "pass an example input: structure(model, example=x) or detect(model, x), where x is a batch the model "
            "accepts (a tensor, a tuple of inputs or a dict of keyword inputs). Or give its blocks a "
            "residual_branches() method and the model a declare_structure() method (initlab.nets)."
        )
    check_data(example)
    g = _Graph(model, _trace(model, example))

    junctions = []
    for i, node in enumerate(g.nodes):
        if node.op == "call_function" and _op_name(node) in _ADDS:
            found = _junction(g, i, node)
            if found is not None:
                junctions.append(found)

    # Consecutive additions form one block when they are in one module, or when the later one's module holds the
    # earlier one's without the earlier addition being inside its branch (a nested residual is a block of its own).
    blocks: list[Block] = []
    for k, j in enumerate(junctions):
        if blocks and _joins(blocks[-1].name, j, junctions[k - 1]):
            previous = blocks[-1]
            blocks[-1] = Block(j.block, type(model.get_submodule(j.block)).__name__, (*previous.branches, j.branch))
        else:
            blocks.append(Block(j.block, type(model.get_submodule(j.block)).__name__, (j.branch,)))

    matrices = 0  # every matrix op, as a bit set
    for op in g.ops_in(-1, "matrix"):
        matrices |= 1 << op.index
    embeddings: tuple[str, ...] = ()
    if junctions:
        feeding = g.ops_in(g.anc[g.index[junctions[0].stream]], "matrix")
        sources = [
            op
            for op in feeding
            if not g.anc[op.index] & matrices & ~(1 << op.index) or _base_op(g.nodes[op.index]) in _WRITES
        ]
        embeddings = tuple(dict.fromkeys(op.module for op in sources))

    # The head: the one weight layer the first output is read from (none when two are summed, or when it is the
    # last layer of a residual branch: a backbone's output is its stream).
    head = None
    output = next(n for n in g.nodes if n.op == "output")
    outputs = [a for a in output.all_input_nodes if g.is_data(a)]
    if outputs:
        before = g.ops_in(g.anc[g.index[outputs[0]]], "matrix")
        below = 0  # matrix ops that feed another one before the output
        for op in before:
            below |= g.anc[op.index] & matrices & ~(1 << op.index)
        sinks = {op.module: op for op in before if not below >> op.index & 1}
        if len(sinks) == 1:
            (sink,) = sinks.values()
            if not any(j.branch_side >> sink.index & 1 for j in junctions):
                head = sink.module

    normalizing = {op.module for op in g.ops.values() if op.kind == "norm"}
    norms = tuple(name for name, m in model.named_modules() if isinstance(m, NORM_TYPES) or name in normalizing)
    return Structure(tuple(blocks), embeddings, norms, head, source="detected")
