"""Generated data sets: the 2-D toy problems (``circles``, ``moons``, ``spiral``, ``gaussians``, ``xor``) and
``gaussian`` inputs of any shape for diagnostics and tests.

Every split is an independent draw of ``n_samples`` points from the same distribution, with a seed derived from
``seed``, the data set's name and the split (BLAKE2b, :func:`initlab.seeding.derive_seed`), so ``train`` and ``test``
never share a draw and the same arguments give the same points on every machine. ``train+val`` is the ``train`` draw
followed by the ``val`` draw. A ``seed`` of ``None`` means seed 0.

- ``circles``: scikit-learn's ``make_circles``: two concentric circles (radius 1 and ``factor``) with Gaussian noise
  of std ``noise``; 2 classes.
- ``moons``: scikit-learn's ``make_moons``: two interleaved half circles with Gaussian noise of std ``noise``.
- ``spiral``: ``num_classes`` arms (CS231n's spiral): for arm ``j``, radius ``r`` from 0 to 1 and angle
  ``4 j + 4 r`` plus Gaussian noise of std ``noise`` (radians); the point is ``r (sin t, cos t)``.
- ``gaussians``: ``num_classes`` isotropic Gaussian blobs of std ``noise`` centred on a circle of radius 2.
- ``xor``: points uniform on [-1, 1]², class 1 where the signs of the two coordinates differ, then Gaussian noise of
  std ``noise`` added to the inputs (the label follows the noiseless point).
- ``gaussian``: inputs ``loc + scale * N(0, 1)`` of shape ``shape``; labels uniform over ``num_classes`` classes and
  independent of the inputs (there is nothing to learn), or, with ``num_classes=None``, float N(0, 1) targets.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from initlab.checks import check_finite, check_int, check_nonnegative, check_positive, check_shape
from initlab.data._base import RawSplit
from initlab.seeding import derive_seed

DEFAULT_SEED = 0
DEFAULT_N = 1000
GAUSSIANS_RADIUS = 2.0  # blob centres lie on this circle; with noise 0.5 the blobs barely touch

TOY_NAMES: tuple[str, ...] = ("circles", "moons", "spiral", "gaussians", "xor")

# The options each generated set takes, with their defaults.
OPTIONS: dict[str, dict[str, Any]] = {
    "circles": {"n_samples": DEFAULT_N, "noise": 0.05, "factor": 0.5},
    "moons": {"n_samples": DEFAULT_N, "noise": 0.1},
    "spiral": {"n_samples": DEFAULT_N, "noise": 0.2, "num_classes": 3},
    "gaussians": {"n_samples": DEFAULT_N, "noise": 0.5, "num_classes": 3},
    "xor": {"n_samples": DEFAULT_N, "noise": 0.05},
    "gaussian": {"n_samples": DEFAULT_N, "shape": (32,), "num_classes": 10, "loc": 0.0, "scale": 1.0},
}


def split_seed(seed: int, name: str, split: str) -> int:
    """The seed of one split's draw: stable across processes, below 2**32 so NumPy's legacy seeding accepts it."""
    return derive_seed(seed, "data", name, split) % 2**32


def check_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a generated set's options (already merged with the defaults); return them normalized."""
    out = dict(options)
    out["n_samples"] = check_int("n_samples", out["n_samples"], minimum=1)
    if "noise" in out:
        out["noise"] = check_nonnegative("noise", out["noise"])
    if name == "circles":
        factor = check_positive("factor", out["factor"])
        if factor >= 1:
            raise ValueError(f"factor must be in (0, 1) (the inner circle's radius), got {factor!r}.")
        out["factor"] = factor
    if name in ("spiral", "gaussians"):
        out["num_classes"] = check_int("num_classes", out["num_classes"], minimum=2)
    if name == "gaussian":
        out["shape"] = check_shape(out["shape"])
        if out["num_classes"] is not None:
            out["num_classes"] = check_int("num_classes", out["num_classes"], minimum=1)
        out["loc"] = check_finite("loc", out["loc"])
        out["scale"] = check_positive("scale", out["scale"])
    return out


def _circles(n: int, seed: int, o: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_circles

    return make_circles(n_samples=n, noise=o["noise"], factor=o["factor"], random_state=seed)


def _moons(n: int, seed: int, o: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_moons

    return make_moons(n_samples=n, noise=o["noise"], random_state=seed)


def _per_class(n: int, k: int) -> list[int]:
    """Split ``n`` samples over ``k`` classes as evenly as possible (the first classes get the remainder)."""
    return [n // k + (1 if j < n % k else 0) for j in range(k)]


def _spiral(n: int, seed: int, o: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for j, m in enumerate(_per_class(n, o["num_classes"])):
        r = np.linspace(0.0, 1.0, m)
        t = 4.0 * j + 4.0 * r + rng.normal(0.0, o["noise"], m)
        xs.append(np.stack([r * np.sin(t), r * np.cos(t)], axis=1))
        ys.append(np.full(m, j))
    return _shuffled(np.concatenate(xs), np.concatenate(ys), rng)


def _gaussians(n: int, seed: int, o: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    k = o["num_classes"]
    xs, ys = [], []
    for j, m in enumerate(_per_class(n, k)):
        angle = 2 * math.pi * j / k
        centre = GAUSSIANS_RADIUS * np.array([math.cos(angle), math.sin(angle)])
        xs.append(centre + rng.normal(0.0, o["noise"], (m, 2)))
        ys.append(np.full(m, j))
    return _shuffled(np.concatenate(xs), np.concatenate(ys), rng)


def _xor(n: int, seed: int, o: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    points = rng.uniform(-1.0, 1.0, (n, 2))
    labels = (np.sign(points[:, 0]) != np.sign(points[:, 1])).astype(np.int64)
    return points + rng.normal(0.0, o["noise"], (n, 2)), labels


def _shuffled(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    order = rng.permutation(len(y))
    return x[order], y[order]


_GENERATORS: dict[str, Callable[[int, int, Mapping[str, Any]], tuple[np.ndarray, np.ndarray]]] = {
    "circles": _circles,
    "moons": _moons,
    "spiral": _spiral,
    "gaussians": _gaussians,
    "xor": _xor,
}
_SOURCES = {
    "circles": "sklearn.datasets.make_circles",
    "moons": "sklearn.datasets.make_moons",
    "spiral": "initlab spiral generator (NumPy)",
    "gaussians": "initlab Gaussian-blobs generator (NumPy)",
    "xor": "initlab XOR generator (NumPy)",
}


def num_classes(name: str, options: Mapping[str, Any]) -> int | None:
    """How many classes a generated set has under ``options``."""
    if name in ("spiral", "gaussians", "gaussian"):
        return options["num_classes"]
    return 2


def input_shape(name: str, options: Mapping[str, Any]) -> tuple[int, ...]:
    """One sample's shape: ``(2,)`` for the toy sets, ``shape`` for ``gaussian``."""
    return tuple(options["shape"]) if name == "gaussian" else (2,)


def _draw(name: str, split: str, seed: int, options: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    n = options["n_samples"]
    s = split_seed(seed, name, split)
    if name == "gaussian":
        g = torch.Generator().manual_seed(s)
        x = torch.randn((n, *options["shape"]), generator=g).mul_(options["scale"]).add_(options["loc"])
        k = options["num_classes"]
        y = torch.randn(n, generator=g) if k is None else torch.randint(0, k, (n,), generator=g)
        return x, y
    x_np, y_np = _GENERATORS[name](n, s, options)
    return torch.from_numpy(np.asarray(x_np, dtype=np.float32)), torch.from_numpy(np.asarray(y_np, dtype=np.int64))


def read(name: str, split: str, seed: int, options: Mapping[str, Any]) -> RawSplit:
    """One split of a generated set (``options`` already checked by :func:`check_options`)."""
    if split == "train+val":
        parts = [_draw(name, s, seed, options) for s in ("train", "val")]
        x, y = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    else:
        x, y = _draw(name, split, seed, options)
    source = "torch.randn" if name == "gaussian" else _SOURCES[name]
    return RawSplit(x, y, f"generated by {source}, seed {seed}")
