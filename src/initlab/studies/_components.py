"""Where a study meets the rest of initlab: data, model builders, schemes, and a record of the machine.

Kept in one module so that the runner reads as the training loop it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

import initlab
from initlab import data as _data
from initlab import models as _models
from initlab import schemes as _schemes
from initlab.studies.spec import Study

_SCHEME_NAMES = ("keras", "torch", "auto", "lsuv")


def load_splits(study: Study) -> tuple[_data.Dataset, _data.Dataset, _data.Dataset]:
    """Train, validation and test splits, normalized with statistics from the training split."""
    normalize = None if study.normalize == "none" else study.normalize
    return tuple(  # type: ignore[return-value]
        _data.load(study.dataset, split=split, normalize=normalize, **study.dataset_options)
        for split in ("train", "val", "test")
    )


def train_size(study: Study) -> int:
    """Number of training samples (to count epochs when the study is given in steps)."""
    return len(_data.load(study.dataset, split="train", normalize=None, **study.dataset_options))


def build_model(study: Study, train: _data.Dataset) -> nn.Module:
    """The study's architecture, sized by the data set."""
    if train.num_classes is None:
        raise ValueError(f"{study.dataset} has regression targets; studies compare classifiers.")
    return _models.build(study.model, input_shape=train.input_shape, num_classes=train.num_classes)


def initialize(model: nn.Module, scheme: str | Mapping[str, Any], *, seed: int, data: torch.Tensor) -> None:
    """Apply an arm's scheme with the run's seed (LSUV and "auto" get a batch of training inputs)."""
    _schemes.initialize(model, _scheme_object(scheme), seed=seed, data=data)


def _scheme_object(scheme: str | Mapping[str, Any]) -> Any:
    if isinstance(scheme, Mapping) and "rules" in scheme:
        return _schemes.Scheme.from_dict(scheme)
    return scheme


def validate(study: Study) -> None:
    """Check every arm's scheme and the model spec before anything trains; raise ValueError naming the closest."""
    for arm in study.arms:
        scheme = arm.scheme
        if isinstance(scheme, str):
            if scheme in _SCHEME_NAMES:
                continue
            try:
                initlab.get(scheme)
            except ValueError as exc:
                raise ValueError(f"arm {arm.label!r}: {exc} Model-wide schemes: {', '.join(_SCHEME_NAMES)}.") from None
        elif isinstance(scheme, Mapping):
            if "rules" in scheme:
                _scheme_object(scheme)
            else:
                initlab.get(scheme)
        else:
            raise TypeError(f"arm {arm.label!r}: a scheme must be a name or a config dict, got {scheme!r}.")
    _models.parse(study.model)
