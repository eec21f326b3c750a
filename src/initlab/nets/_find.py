"""``structure``: a model's residual structure, as it declares it or, when it declares nothing, as traced."""

from __future__ import annotations

from torch import nn

from initlab.nets._detect import detect
from initlab.nets._structure import Structure, declared
from initlab.tracing import ModelInput


def structure(model: nn.Module, example: ModelInput | None = None) -> Structure:
    """The residual structure of ``model``: its blocks (each branch, the branch's last layer, a norm after it, a gate
    and a shortcut), its embeddings, its normalization modules and its head.

    A model that declares its structure (:func:`initlab.nets._structure.declared`: the networks of
    :mod:`initlab.nets`, or any model whose blocks implement ``residual_branches()``) gives it as declared; one that
    declares nothing is traced on ``example`` (an input the model accepts) by :func:`initlab.nets._detect.detect`.

    Raises:
        TypeError: ``model`` is not an ``nn.Module``.
        StructureError: nothing is declared and no ``example`` was given or the model could not be traced, or a
            declared name does not exist.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    found = declared(model)
    return found if found is not None else detect(model, example)
