"""The ``Dataset`` record every loader returns, and the split names they share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from initlab.data.normalize import Normalization

Split = Literal["train", "val", "test", "train+val"]
SPLITS: tuple[Split, ...] = ("train", "val", "test", "train+val")


@dataclass(frozen=True)
class RawSplit:
    """One split as a reader produces it: raw float32 inputs, labels or targets, and where they came from."""

    x: torch.Tensor
    y: torch.Tensor
    source: str


@dataclass(frozen=True, eq=False)
class Dataset:
    """One split of a data set as tensors, with what was done to it and where it came from.

    ``x`` is float32 of shape ``(n, *input_shape)`` (int64 token ids, never normalized, for the sequence tasks);
    ``y`` is int64 class labels of shape ``(n,)`` (or float32 regression targets when ``num_classes`` is ``None``).
    ``config()`` holds the arguments that rebuild it with :func:`initlab.data.load`.
    """

    x: torch.Tensor
    y: torch.Tensor
    name: str
    split: Split
    num_classes: int | None  # None: y holds float regression targets
    input_shape: tuple[int, ...]  # one sample's shape: (1, 28, 28) for MNIST, (2,) for the toy sets
    normalization: Normalization  # the map applied to x, with statistics fitted on the train split
    source: str  # where the samples came from (file, package, generator), in words
    seed: int | None = None  # the generator seed for generated sets; None for fixed data
    options: Mapping[str, Any] = field(default_factory=dict)  # the data set's own options, as resolved

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def class_counts(self) -> list[int]:
        """How many samples of each class, in class order (a classification set only)."""
        if self.num_classes is None:
            raise ValueError(f"{self.name} has regression targets, not classes.")
        return torch.bincount(self.y, minlength=self.num_classes).tolist()

    def config(self) -> dict[str, Any]:
        """The arguments of :func:`initlab.data.load` that rebuild this split: ``load(**ds.config())``."""
        return {
            "name": self.name,
            "split": self.split,
            "seed": self.seed,
            "normalize": self.normalization.kind,
            "normalize_per": self.normalization.per or "auto",
            **dict(self.options),
        }

    def describe(self) -> dict[str, Any]:
        """A JSON-ready record: sizes, shapes, the normalization and its statistics, the source."""
        return {
            **self.config(),
            "n": len(self),
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "normalization": self.normalization.to_dict(),
            "source": self.source,
        }

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, split={self.split!r}, n={len(self)}, input_shape={self.input_shape}, "
            f"num_classes={self.num_classes}, normalization={self.normalization!r}, source={self.source!r})"
        )
