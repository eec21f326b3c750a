"""Residual networks whose structure is declared: a residual MLP, a small ResNet and a transformer.

Build them from a spec (``initlab.models.build("resmlp:64x8", ...)``, ``"resnet:16,32,64"``,
``"transformer:64x4;heads=4"``) or directly. Every block names its residual branches and every model its embeddings
and head, so :func:`structure` lists them exactly (:mod:`initlab.nets._structure`). For a model that declares nothing
(one from another library), :func:`detect` reads the same structure from a forward pass traced on an example input
(:mod:`initlab.nets._detect`).
"""

from initlab.nets._detect import detect
from initlab.nets._find import structure
from initlab.nets._layers import FeedForward, SelfAttention
from initlab.nets._resmlp import ResidualMLP, ResidualMLPBlock
from initlab.nets._resnet import BasicBlock, ResNet
from initlab.nets._structure import (
    Block,
    Branch,
    BranchDecl,
    Declaration,
    DeclaresBranches,
    DeclaresStructure,
    Structure,
    StructureError,
    declared,
)
from initlab.nets._transformer import Transformer, TransformerBlock, auto_patch

__all__ = [
    "BasicBlock",
    "Block",
    "Branch",
    "BranchDecl",
    "Declaration",
    "DeclaresBranches",
    "DeclaresStructure",
    "FeedForward",
    "ResNet",
    "ResidualMLP",
    "ResidualMLPBlock",
    "SelfAttention",
    "Structure",
    "StructureError",
    "Transformer",
    "TransformerBlock",
    "auto_patch",
    "declared",
    "detect",
    "structure",
]
