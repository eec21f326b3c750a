"""Data you bring: an ``.npz``, a CSV or a Parquet file, or arrays, tensors and ``torch`` datasets from Python.

**Files.**

- ``.npz`` with Keras' names (``x_train``, ``y_train``, ``x_test``, ``y_test``; ``x_val``/``y_val`` too if given), or
  just ``x`` and ``y``: one set that initlab splits.
- ``.csv`` or ``.parquet`` (``.pq``): a table whose ``target`` column holds the labels and whose other columns, all
  numeric, are the features (read by pandas; Parquet through pyarrow).

**Splits.** A set given whole is split with ``seed`` (default 0): within each class (stratified; the whole set for
regression) a NumPy ``default_rng(seed)`` permutation puts ``round(0.2 n)`` samples in ``test``, ``round(0.1 n)`` in
``val`` and the rest in ``train``. A file with ``x_train`` and ``x_test`` but no ``x_val`` gives ``round(0.1 n)`` of
its training samples, drawn the same way, to ``val``. Normalization is fitted on ``train`` alone, as for every
data set (:mod:`initlab.data.normalize`).

**Task.** ``task="auto"`` infers it from the labels: integers, booleans and text are classes (text labels become
``0..K-1`` in sorted order, recorded as ``class_names``); floating-point labels are regression targets, unless every
one is a whole number (then they are classes). ``task="classification"`` or ``"regression"`` overrides it. Class
labels must be ``0..K-1`` after that mapping only in the sense that every class of ``val`` and ``test`` also occurs
in ``train``; a class that does not is an error.

**Content hash.** :func:`digest` is the sha256 of what the file holds: for an ``.npz``, of each array's name, dtype,
shape and bytes in name order (so rewriting the same arrays gives the same hash, whatever the zip's timestamps); for
a table, of the file's bytes. A study records it, and loading with ``sha256=`` refuses a file whose hash changed
(:class:`DataChangedError`), so that a resumed study never mixes two versions of the data.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from initlab.checks import check_choice, check_int, did_you_mean
from initlab.data._base import RawSplit

Task = Literal["auto", "classification", "regression"]
TASKS: tuple[Task, ...] = ("auto", "classification", "regression")
SUFFIXES = (".npz", ".csv", ".parquet", ".pq")
TEST_FRACTION = 0.2
VAL_FRACTION = 0.1
DEFAULT_SEED = 0
#: The options a file data set takes, with their defaults (``path`` is the data set's name itself).
OPTIONS: dict[str, Any] = {"target": None, "task": "auto", "sha256": None}
_KERAS = ("x_train", "y_train", "x_test", "y_test")


class DataChangedError(ValueError):
    """The data file's content hash is not the one the study recorded."""


def is_file(name: object) -> bool:
    """Whether a data set name is a file path (a supported suffix, or a path separator) rather than a built-in name."""
    if isinstance(name, os.PathLike):
        return True
    if not isinstance(name, str):
        return False
    return Path(name).suffix.lower() in SUFFIXES or os.sep in name or "/" in name


def _kind(path: Path) -> Literal["npz", "table"]:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return "npz"
    if suffix in (".csv", ".parquet", ".pq"):
        return "table"
    what = repr(suffix) if suffix else "a file without a suffix"
    raise ValueError(
        f"data file {str(path)!r}: initlab reads .npz, .csv and .parquet files, not {what}. Save your arrays with "
        "numpy.savez (x_train, y_train, x_test, y_test, or x and y) or your table as CSV."
    )


def _existing(path: str | os.PathLike[str]) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(
            f"data file {str(p)!r} does not exist; give the path of an .npz, .csv or .parquet file."
        )
    if not p.is_file():
        raise ValueError(f"data file {str(p)!r} is a folder, not a file; give an .npz, .csv or .parquet file.")
    return p


def digest(path: str | os.PathLike[str]) -> str:
    """The sha256 of the file's content (see the module docstring): arrays for an ``.npz``, bytes for a table."""
    p = _existing(path)
    h = hashlib.sha256()
    if _kind(p) == "npz":
        for name, array in sorted(_read_npz(p).items()):
            _update(h, name, array)
    else:
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def arrays_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """The sha256 that :func:`digest` gives for an ``.npz`` holding ``arrays``."""
    h = hashlib.sha256()
    for name, array in sorted(arrays.items()):
        _update(h, name, np.asarray(array))
    return h.hexdigest()


def _update(h: Any, name: str, array: np.ndarray) -> None:
    h.update(f"{name}\0{array.dtype.str}\0{array.shape}\0".encode())
    h.update(np.ascontiguousarray(array).tobytes())


def verify(path: str | os.PathLike[str], sha256: str | None) -> str:
    """The file's :func:`digest`; :class:`DataChangedError` when ``sha256`` is given and differs."""
    found = digest(path)
    if sha256 is not None and found != sha256:
        raise DataChangedError(
            f"data file {str(path)!r} has changed since the study started: its sha256 is now {found}, the study ran "
            f"on {sha256}. Restore that file, or start a new study (another --out) on the new data."
        )
    return found


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(
            f"data file {str(path)!r} is not a readable .npz ({exc}); write it with numpy.savez."
        ) from None
    except ValueError as exc:  # object arrays need pickle, which we never load from a file
        raise ValueError(
            f"data file {str(path)!r} holds an array numpy cannot read without pickle ({exc}); save numeric arrays "
            "(numbers, not Python objects)."
        ) from None


def _read_table(path: Path, target: str | None) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    if target is None:
        raise ValueError(f"data file {str(path)!r} is a table: name its label column with --target (target=...).")
    try:
        frame = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    except ImportError as exc:
        raise ImportError(f"reading {str(path)!r} needs pyarrow: pip install pyarrow ({exc}).") from None
    except (ValueError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"data file {str(path)!r} cannot be read as a table: {exc}") from None
    columns = [str(c) for c in frame.columns]
    if target not in columns:
        raise ValueError(
            f"data file {str(path)!r} has no column {target!r}.{did_you_mean(target, columns)} "
            f"Its columns: {', '.join(columns[:20])}{', ...' if len(columns) > 20 else ''}."
        )
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise ValueError(f"data file {str(path)!r} has no feature columns besides {target!r}.")
    text = [str(c) for c, t in features.dtypes.items() if not pd.api.types.is_numeric_dtype(t)]  # bool is numeric
    if text:
        raise ValueError(
            f"data file {str(path)!r}: feature column {text[0]!r} is not numeric ({features[text[0]].dtype}); encode "
            "it as numbers (e.g. pandas.get_dummies) or drop it."
        )
    return features.to_numpy(dtype=np.float32, na_value=np.nan), frame[target].to_numpy()


def _labels(path: str, ys: Sequence[np.ndarray], task: Task) -> tuple[list[np.ndarray], int | None, list[str] | None]:
    """The labels of every part as int64 classes (with their count and, for text labels, their names) or float32
    regression targets (count None)."""
    y_all = np.concatenate([np.asarray(y).reshape(len(y), -1) if np.asarray(y).ndim > 1 else np.asarray(y) for y in ys])
    kind = y_all.dtype.kind
    if task == "auto":
        if kind in "iub" or kind in "OSU":
            task = "classification"
        elif kind == "f":
            whole = y_all.ndim == 1 and bool(np.isfinite(y_all).all()) and bool((y_all == np.round(y_all)).all())
            task = "classification" if whole else "regression"
        else:
            raise ValueError(f"data {path!r}: labels of dtype {y_all.dtype} are neither classes nor numbers.")
    if task == "regression":
        if kind not in "iuf" and kind != "b":
            raise ValueError(
                f"data {path!r}: regression needs numeric targets, got {y_all.dtype} (e.g. {y_all.flat[0]!r}); use "
                "task='classification' (--task classification)."
            )
        out = [np.asarray(y, dtype=np.float32) for y in ys]
        if not all(np.isfinite(y).all() for y in out):
            raise ValueError(f"data {path!r}: the targets contain NaN or infinite values; drop or fill those rows.")
        return out, None, None
    if y_all.ndim != 1:
        raise ValueError(
            f"data {path!r}: class labels must be one per sample (shape (n,)), got shape {y_all.shape[1:]} per sample; "
            "for one-hot labels pass their argmax, or use task='regression' for vector targets."
        )
    if kind == "f":
        if not np.isfinite(y_all).all():
            raise ValueError(f"data {path!r}: the labels contain NaN or infinite values; drop or fill those rows.")
        if not (y_all == np.round(y_all)).all():
            first = y_all[y_all != np.round(y_all)][0]
            raise ValueError(f"data {path!r}: task='classification' needs whole-number labels, got {first!r}.")
    if kind in "OSU":
        if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in y_all):
            raise ValueError(f"data {path!r}: some labels are missing (empty or NaN); drop or fill those rows.")
        names = sorted({str(v) for v in y_all})
        index = {name: i for i, name in enumerate(names)}
        return [np.array([index[str(v)] for v in y], dtype=np.int64) for y in ys], len(names), names
    values = y_all.astype(np.int64)
    if values.size and values.min() < 0:
        raise ValueError(f"data {path!r}: class labels must be 0 or more, got {int(values.min())}.")
    return [np.asarray(y).astype(np.int64) for y in ys], int(values.max()) + 1 if values.size else 0, None


def _split(y: np.ndarray, n: int, seed: int, fractions: Sequence[float], stratify: bool) -> list[np.ndarray]:
    """Index arrays for parts of sizes ``round(f * n_group)`` (the last part takes the rest), per class when
    ``stratify``, each sorted."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(n)]
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for idx in groups:
        idx = rng.permutation(idx)
        start = 0
        for i, f in enumerate(fractions):
            k = round(f * len(idx))
            parts[i].append(idx[start : start + k])
            start += k
        parts[-1].append(idx[start:])
    return [np.sort(np.concatenate(p)) if p else np.zeros(0, np.int64) for p in parts]


def _check_x(path: str, name: str, x: np.ndarray) -> np.ndarray:
    if x.dtype.kind not in "iufb":
        raise ValueError(f"data {path!r}: {name} must hold numbers, got dtype {x.dtype}.")
    if x.ndim < 2:
        raise ValueError(
            f"data {path!r}: {name} must have one row per sample and at least one feature (shape (n, ...)), got "
            f"shape {x.shape}."
        )
    x = x.astype(np.float32)
    bad = ~np.isfinite(x)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise ValueError(
            f"data {path!r}: {name} contains NaN or infinite values (first in sample {row}); drop or fill them."
        )
    return x


def _pairs(path: str, arrays: Mapping[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{part: (x, y)}`` for the parts an .npz (or a dict of arrays) holds: train/test(/val), or one ``all``."""
    names = set(arrays)
    if {"x", "y"} <= names:
        parts = {"all": ("x", "y")}
    elif set(_KERAS) <= names:
        parts = {"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}
        if {"x_val", "y_val"} <= names:
            parts["val"] = ("x_val", "y_val")
    else:
        missing = [k for k in _KERAS if k not in names]
        raise ValueError(
            f"data {path!r} holds {', '.join(sorted(names)) or 'no arrays'}; initlab needs Keras' names x_train, "
            f"y_train, x_test, y_test (missing: {', '.join(missing)}) or one set as x and y."
        )
    out = {}
    for part, (xk, yk) in parts.items():
        x, y = np.asarray(arrays[xk]), np.asarray(arrays[yk])
        if len(x) != len(y):
            raise ValueError(f"data {path!r}: {xk} has {len(x)} samples but {yk} has {len(y)}; they must match.")
        if len(x) == 0:
            raise ValueError(f"data {path!r}: {xk} is empty.")
        out[part] = (_check_x(path, xk, x), y)
    shapes = {p: xy[0].shape[1:] for p, xy in out.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"data {path!r}: the parts' samples differ in shape: {shapes}.")
    return out


def read_file(
    path: str | os.PathLike[str], seed: int | None, options: Mapping[str, Any]
) -> tuple[dict[str, RawSplit], int | None, tuple[int, ...], list[str] | None]:
    """Every split of a data file, raw (``{split: RawSplit}``), with the number of classes (None: regression), one
    sample's shape and the class names of text labels. ``options``: ``target``, ``task``, ``sha256``."""
    p = _existing(path)
    kind = _kind(p)
    sha = verify(p, options.get("sha256"))
    task = check_choice("task", options.get("task", "auto"), TASKS)
    name = str(p)
    if kind == "npz":
        if options.get("target") is not None:
            raise ValueError(f"data file {name!r} is an .npz: --target names a column of a CSV or Parquet table only.")
        pairs = _pairs(name, _read_npz(p))
    else:
        x, y = _read_table(p, options.get("target"))
        pairs = {"all": (_check_x(name, "the features", x), y)}
    return split_pairs(name, pairs, seed, task, source=f"{name} (sha256 {sha[:12]})")


def split_pairs(
    name: str, pairs: Mapping[str, tuple[np.ndarray, np.ndarray]], seed: int | None, task: Task, *, source: str
) -> tuple[dict[str, RawSplit], int | None, tuple[int, ...], list[str] | None]:
    """Labels resolved, then train/val/test split (see the module docstring); ``{split: RawSplit}``."""
    seed = DEFAULT_SEED if seed is None else check_int("seed", seed, minimum=0)
    order = list(pairs)
    ys, classes, names = _labels(name, [pairs[p][1] for p in order], task)
    labelled = {p: (pairs[p][0], y) for p, y in zip(order, ys, strict=True)}
    stratify = classes is not None
    if "all" in labelled:
        x, y = labelled["all"]
        test, val, train = _split(y, len(y), seed, (TEST_FRACTION, VAL_FRACTION), stratify)
        parts = {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": (x[test], y[test])}
    else:
        parts = dict(labelled)
        if "val" not in parts:
            x, y = parts["train"]
            val, train = _split(y, len(y), seed, (VAL_FRACTION,), stratify)
            parts["train"], parts["val"] = (x[train], y[train]), (x[val], y[val])
    for part in ("train", "val", "test"):
        if len(parts[part][0]) == 0:
            raise ValueError(f"data {name!r}: too few samples to split: the {part} split would be empty.")
    if classes is not None:
        seen = set(np.unique(parts["train"][1]).tolist())
        for part in ("val", "test"):
            missing = sorted(set(np.unique(parts[part][1]).tolist()) - seen)
            if missing:
                label = names[missing[0]] if names else missing[0]
                raise ValueError(
                    f"data {name!r}: class {label!r} occurs in {part} but not in train; every class needs training "
                    "samples (add some, or drop that class)."
                )
    out = {
        part: RawSplit(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.ascontiguousarray(y)), source)
        for part, (x, y) in parts.items()
    }
    out["train+val"] = RawSplit(
        torch.cat([out["train"].x, out["val"].x]), torch.cat([out["train"].y, out["val"].y]), source
    )
    shape = tuple(int(s) for s in parts["train"][0].shape[1:])
    return out, classes, shape, names
