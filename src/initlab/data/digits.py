"""scikit-learn's bundled 8×8 digits (1,797 images of 10 classes, UCI "Optical Recognition of Handwritten Digits").

The images ship inside scikit-learn (``sklearn.datasets.load_digits``), so nothing is downloaded or cached.

**Split** (fixed, stratified): within each class, the samples are shuffled by a NumPy ``default_rng(0)`` permutation;
the first ``round(0.2 n_c)`` go to ``test``, the next ``round(0.2 n_c)`` to ``val`` and the rest to ``train``
(60% / 20% / 20% of every class), each split then kept in the original order. That gives 1,079 train, 359 val and
359 test images (1,438 in ``train+val``).

**Pixels**: the 17 grey levels 0-16 divided by 16, so raw inputs lie in [0, 1] as MNIST's do; shape ``(1, 8, 8)``.
"""

from __future__ import annotations

import numpy as np
import torch

from initlab.data._base import RawSplit

SPLIT_SEED = 0  # the permutation that fixes the split; changing it changes every published digits number
TEST_FRACTION = 0.2
VAL_FRACTION = 0.2
SPLIT_SIZES: dict[str, int] = {"train": 1079, "val": 359, "test": 359, "train+val": 1438}
INPUT_SHAPE = (1, 8, 8)
NUM_CLASSES = 10


def _bunch() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # imported here: scikit-learn takes about a second to import

    bunch = load_digits()
    return np.asarray(bunch.images), np.asarray(bunch.target)


def split_indices(labels: np.ndarray) -> dict[str, np.ndarray]:
    """The fixed stratified split as sorted index arrays for ``train``, ``val`` and ``test``."""
    rng = np.random.default_rng(SPLIT_SEED)
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = round(TEST_FRACTION * len(idx))
        n_val = round(VAL_FRACTION * len(idx))
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test : n_test + n_val])
        parts["train"].append(idx[n_test + n_val :])
    return {k: np.sort(np.concatenate(v)) for k, v in parts.items()}


def read(split: str) -> RawSplit:
    """One split of the digits as float32 images ``(n, 1, 8, 8)`` in [0, 1] and int64 labels."""
    images, labels = _bunch()
    parts = split_indices(labels)
    idx = np.sort(np.concatenate([parts["train"], parts["val"]])) if split == "train+val" else parts[split]
    x = torch.from_numpy(images[idx].astype(np.float32) / 16.0).unsqueeze(1)
    y = torch.from_numpy(labels[idx].astype(np.int64))
    import sklearn

    return RawSplit(x, y, f"scikit-learn {sklearn.__version__} load_digits (bundled)")
