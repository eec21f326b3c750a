"""Residual structure, declared by the model rather than guessed from parameter names.

A scheme for a residual network must know which layers are special: the last layer of each residual branch (Fixup,
SkipInit and zero-init-last-BN set it to zero or scale it by the depth), the projections that write into the residual
stream (GPT-2 scales them by 1/√N), the embeddings (they set the stream's scale), the normalizations and the head
(muP rescales it). Those roles follow from how the forward pass is wired, which a parameter's name does not say, so
the networks of :mod:`initlab.nets` declare them:

- a residual block (a module computing ``x + f(x)``, or ``act(f(x) + shortcut(x))``) has a method
  ``residual_branches() -> tuple[BranchDecl, ...]`` naming, relative to itself, each branch ``f``, the branch's last
  weight layer, a normalization after that layer inside the branch (ResNet's second batch norm), a gate
  (ReZero's α) and a projection shortcut, where there are any (:class:`DeclaresBranches`);
- the model has a method ``declare_structure() -> Declaration`` naming its embeddings (the layers that write the input
  into the stream: token, position and patch embeddings, an input projection, a ResNet's stem) and its head
  (:class:`DeclaresStructure`).

:func:`structure` reads both and returns a :class:`Structure` of qualified module names (``model.get_submodule(name)``
gives the module). Normalization modules are found by their type (:data:`initlab.tracing.NORM_TYPES`). A model that
declares nothing (one from another library) goes to :func:`detect`, which reads the same structure from a forward
pass traced on an example input (:mod:`initlab.nets._detect`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from torch import nn

from initlab.tracing import NORM_TYPES


class StructureError(ValueError):
    """A model whose residual structure is not declared, or whose declaration names modules it does not have."""


@dataclass(frozen=True)
class BranchDecl:
    """One residual branch as its block declares it; every path is relative to the block (``"attn.out"``)."""

    branch: str  #: the submodule that computes the branch ``f`` of ``x + f(x)``
    last: str  #: its last weight layer: the output projection that writes into the residual stream
    last_norm: str | None = None  #: a normalization after ``last`` inside the branch (ResNet's ``bn2``), if any
    gate: str | None = None  #: a parameter that multiplies the branch (ReZero's α, SkipInit's scalar), if any
    shortcut: str | None = None  #: a projection on the skip path (ResNet's 1×1 convolution), ``None``: identity


@dataclass(frozen=True)
class Declaration:
    """What a model declares about itself beyond its blocks; paths relative to the model."""

    embeddings: tuple[str, ...] = ()  #: the layers that write the input into the residual stream
    head: str | None = None  #: the output layer (logits)


@runtime_checkable
class DeclaresBranches(Protocol):
    """A residual block: a module that names its branches (see the module docstring)."""

    def residual_branches(self) -> tuple[BranchDecl, ...]: ...


@runtime_checkable
class DeclaresStructure(Protocol):
    """A model that names its embeddings and head (see the module docstring)."""

    def declare_structure(self) -> Declaration: ...


@dataclass(frozen=True)
class Branch:
    """One residual branch, by qualified module names (``"blocks.3.attn"``)."""

    name: str
    last: str
    last_norm: str | None = None
    gate: str | None = None
    shortcut: str | None = None


@dataclass(frozen=True)
class Block:
    """One residual block: its qualified name, module type and branches, in forward order."""

    name: str
    type: str
    branches: tuple[Branch, ...]


@dataclass(frozen=True)
class Structure:
    """A model's residual structure (:func:`structure`); every entry a qualified module name.

    ``source`` says how it was found: ``"declared"`` by the model's own declarations, ``"detected"`` read from a
    traced forward pass (:func:`detect`).
    """

    blocks: tuple[Block, ...]
    embeddings: tuple[str, ...]
    norms: tuple[str, ...]
    head: str | None
    source: Literal["declared", "detected"] = "declared"

    @property
    def branches(self) -> tuple[Branch, ...]:
        """Every residual branch, in forward order."""
        return tuple(b for block in self.blocks for b in block.branches)

    @property
    def output_projections(self) -> tuple[str, ...]:
        """The last layer of every branch: the projections that write into the residual stream (GPT-2's ``c_proj``,
        the N of its 1/√N)."""
        return tuple(b.last for b in self.branches)

    def names(self) -> Iterator[str]:
        """Every module named anywhere in the structure, once."""
        seen: dict[str, None] = {}
        for name in (*self.embeddings, *(n for b in self.branches for n in _branch_names(b)), *self.norms):
            seen.setdefault(name)
        if self.head is not None:
            seen.setdefault(self.head)
        return iter(seen)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record."""
        return asdict(self)


def _branch_names(b: Branch) -> list[str]:
    return [n for n in (b.name, b.last, b.last_norm, b.gate, b.shortcut) if n is not None]


def _join(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if prefix and path else prefix or path


def _check_path(model: nn.Module, name: str, what: str, *, parameter: bool = False) -> str:
    """``name`` itself after checking that ``model`` has it (a submodule, or a parameter for a gate)."""
    try:
        if parameter:
            model.get_parameter(name)
        else:
            model.get_submodule(name)
    except AttributeError:
        kind = "parameter" if parameter else "module"
        raise StructureError(
            f"{type(model).__name__} declares {what} {name!r}, but it has no such {kind}; fix its declaration."
        ) from None
    return name


def declared(model: nn.Module) -> Structure | None:
    """The structure ``model`` declares, or ``None`` when it declares nothing (see :func:`initlab.nets.structure`).

    Blocks are the modules that declare branches (:class:`DeclaresBranches`), in ``named_modules()`` order (the
    forward order of every network in :mod:`initlab.nets`); embeddings and the head come from the model's
    :class:`Declaration`. ``StructureError`` when a declared name does not exist.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    found = [(name, m) for name, m in model.named_modules() if isinstance(m, DeclaresBranches)]
    if not found and not isinstance(model, DeclaresStructure):
        return None
    blocks = []
    for prefix, module in found:
        branches = []
        for d in module.residual_branches():
            where = f"block {prefix!r}"
            gate = _check_path(model, _join(prefix, d.gate), f"the gate of {where}", parameter=True) if d.gate else None
            branches.append(
                Branch(
                    name=_check_path(model, _join(prefix, d.branch), f"a branch of {where}"),
                    last=_check_path(model, _join(prefix, d.last), f"the last layer of a branch of {where}"),
                    last_norm=_check_path(model, _join(prefix, d.last_norm), f"a norm of {where}")
                    if d.last_norm
                    else None,
                    gate=gate,
                    shortcut=_check_path(model, _join(prefix, d.shortcut), f"the shortcut of {where}")
                    if d.shortcut
                    else None,
                )
            )
        blocks.append(Block(prefix, type(module).__name__, tuple(branches)))
    declaration = model.declare_structure() if isinstance(model, DeclaresStructure) else Declaration()
    embeddings = tuple(_check_path(model, e, "the embedding") for e in declaration.embeddings)
    head = _check_path(model, declaration.head, "the head") if declaration.head is not None else None
    norms = tuple(name for name, m in model.named_modules() if isinstance(m, NORM_TYPES))
    return Structure(tuple(blocks), embeddings, norms, head)
