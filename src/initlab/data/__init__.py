"""Data sets, offline: real MNIST, scikit-learn's digits, MNIST-1D, 2-D toy problems and Gaussian inputs.

``load(name, split=...)`` returns a :class:`Dataset` of tensors whose inputs are standardized with statistics of the
training split only. Converted data live in the cache folder (``$INITLAB_CACHE``, default ``~/.cache/initlab``), each
file checked by sha256 before it is read. ``initlab data list`` shows what is available offline and
``initlab data prepare NAME`` makes a data set available. ``load("my.npz", ...)``, ``load("my.csv", target="label",
...)`` read data you bring (:mod:`initlab.data.files`).
"""

from initlab.data import files
from initlab.data._base import SPLITS, Dataset, Split
from initlab.data._cache import DataNotFoundError, IntegrityError, cache_dir
from initlab.data._load import (
    DATASETS,
    NAMES,
    Availability,
    DatasetInfo,
    availability,
    info,
    load,
    load_splits,
    prepare,
)
from initlab.data.normalize import Normalization, NormalizeKind, NormalizePer, fit_normalization

__all__ = [
    "DATASETS",
    "NAMES",
    "SPLITS",
    "Availability",
    "DataNotFoundError",
    "Dataset",
    "DatasetInfo",
    "IntegrityError",
    "Normalization",
    "NormalizeKind",
    "NormalizePer",
    "Split",
    "availability",
    "cache_dir",
    "files",
    "fit_normalization",
    "info",
    "load",
    "load_splits",
    "prepare",
]
