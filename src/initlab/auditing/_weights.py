"""Loading a state dict file into a model for an audit, with an error that names what does not fit."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load the state dict saved at ``path`` (``torch.save(model.state_dict(), path)``) into ``model``; return it.

    The file is read with ``torch.load(weights_only=True)``, which unpickles tensors and plain containers only (no
    code runs). Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a file that is not a state
    dict, or whose keys or shapes do not fit the model (naming the first missing or unexpected key and the first
    mismatched shape).
    """
    path = Path(path)
    if not path.is_file():
        what = "a folder, not a file" if path.is_dir() else "no such file"
        raise FileNotFoundError(f"--weights {path}: {what}; give a file saved with torch.save(model.state_dict(), "
                                "path).")  # fmt: skip
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"--weights {path} is not a state dict saved with torch.save ({first}).") from None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        kind = type(state).__name__
        hint = ""
        if isinstance(state, Mapping):
            nested = [k for k, v in state.items() if isinstance(v, Mapping)]
            hint = f" It holds the dict(s) {nested[:3]}: save the model's own state dict alone." if nested else ""
        raise ValueError(f"--weights {path} holds a {kind} that is not a state dict (a dict of parameter names to "
                         f"tensors, from model.state_dict()).{hint}")  # fmt: skip
    check_fits(model, state, path)
    model.load_state_dict(state)
    return model


def check_fits(model: nn.Module, state: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """Raise ``ValueError`` naming the first missing key, unexpected key or mismatched shape of ``state``."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    problems = []
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        problems.append(f"missing key {missing[0]!r}{more}")
    if unexpected:
        more = f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""
        problems.append(f"unexpected key {unexpected[0]!r}{more}")
    for key, tensor in state.items():
        if key in expected and tuple(tensor.shape) != tuple(expected[key].shape):
            problems.append(f"{key!r} has shape {tuple(tensor.shape)} in the file but {tuple(expected[key].shape)} in "
                            "the model")  # fmt: skip
            break
    if problems:
        raise ValueError(f"--weights {path} does not fit the model: {'; '.join(problems)}. Build the model the weights "
                         "were saved from (--model, --input-shape, --num-classes).")  # fmt: skip
