"""Input normalization: statistics fitted on the training split only, then applied to every split.

Both kinds are one affine map, ``x' = (x - shift) / scale``:

- ``"standardize"``: ``shift = mean``, ``scale = std`` (population std, ``ddof=0``), so the training inputs have zero
  mean and unit variance. This is the "standardization" of the seed documents (subtract the mean of the data set,
  divide by its standard deviation); it keeps the first layer's pre-activations at the scale that Glorot/He
  initialization assumes (unit-variance inputs).
- ``"minmax"``: ``shift = min``, ``scale = max - min``, so the training inputs lie in [0, 1] (the documents'
  "normalization"). Other splits may fall slightly outside.

Statistics are taken ``per`` one of:

- ``"global"``: one scalar over every value;
- ``"channel"``: one value per channel of an input shaped ``(C, ...)`` (over the samples and the spatial axes), the
  convention for images (MNIST's single channel: mean about 0.131, std about 0.308);
- ``"feature"``: one value per input coordinate (scikit-learn's ``StandardScaler``);
- ``"auto"``: ``"channel"`` for inputs with two or more axes, ``"feature"`` for flat vectors.

A zero spread (a constant feature, e.g. a border pixel under ``per="feature"``) gets ``scale = 1``, as scikit-learn
does, so the map stays finite. Fitting on the test split would leak its statistics into training, so the loader calls
:func:`fit_normalization` (through this module, so a test can wrap it) on the training split alone, and
:class:`Normalization` records which split the statistics came from (``fitted_on``) and how many samples (``n_fit``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

from initlab.checks import check_choice

NormalizeKind = Literal["standardize", "minmax"]
NormalizePer = Literal["auto", "global", "channel", "feature"]
NORMALIZE_KINDS: tuple[NormalizeKind, ...] = ("standardize", "minmax")
NORMALIZE_PERS: tuple[NormalizePer, ...] = ("auto", "global", "channel", "feature")


@dataclass(frozen=True, eq=False)
class Normalization:
    """The map applied to a data set's inputs and the statistics it was built from.

    ``kind`` is ``None`` for raw inputs (then ``shift``/``scale`` are ``None``). ``shift`` and ``scale`` broadcast
    against one sample (shape ``()``, ``(C, 1, ...)`` or the input shape).
    """

    kind: NormalizeKind | None
    per: Literal["global", "channel", "feature"] | None = None
    shift: torch.Tensor | None = None  # mean (standardize) or min (minmax) of the fitted split
    scale: torch.Tensor | None = None  # std (standardize) or max - min (minmax), with 0 replaced by 1
    fitted_on: str | None = None  # the split the statistics came from: always "train" when built by `load`
    n_fit: int = 0  # how many samples the statistics were computed from

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``(x - shift) / scale`` (a new tensor), or ``x`` itself when ``kind`` is ``None``."""
        if self.kind is None or self.shift is None or self.scale is None:
            return x
        return (x - self.shift.to(x.dtype)).div_(self.scale.to(x.dtype))

    def invert(self, x: torch.Tensor) -> torch.Tensor:
        """Map normalized inputs back to the raw scale: ``x * scale + shift``."""
        if self.kind is None or self.shift is None or self.scale is None:
            return x
        return x * self.scale.to(x.dtype) + self.shift.to(x.dtype)

    @property
    def statistics(self) -> dict[str, torch.Tensor]:
        """The fitted statistics by name: ``mean``/``std`` or ``min``/``max``; empty when ``kind`` is ``None``."""
        if self.kind is None or self.shift is None or self.scale is None:
            return {}
        if self.kind == "standardize":
            return {"mean": self.shift, "std": self.scale}
        return {"min": self.shift, "max": self.shift + self.scale}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record (statistics as nested lists)."""
        return {
            "kind": self.kind,
            "per": self.per,
            "fitted_on": self.fitted_on,
            "n_fit": self.n_fit,
            "statistics": {k: v.tolist() for k, v in self.statistics.items()},
        }

    def __repr__(self) -> str:
        if self.kind is None:
            return "Normalization(None)"
        stats = ", ".join(f"{k}={_short(v)}" for k, v in self.statistics.items())
        head = f"{self.kind!r}, per={self.per!r}, fitted_on={self.fitted_on!r}, n_fit={self.n_fit}"
        return f"Normalization({head}, {stats})"


def _short(t: torch.Tensor) -> str:
    return f"{float(t):.4g}" if t.numel() == 1 else f"<{tuple(t.shape)} tensor>"


def resolve_per(per: str, sample_shape: tuple[int, ...]) -> Literal["global", "channel", "feature"]:
    """Turn ``"auto"`` into ``"channel"`` (two or more axes) or ``"feature"`` (flat vectors); check the rest."""
    per = check_choice("normalize_per", per, NORMALIZE_PERS)
    if per == "auto":
        return "channel" if len(sample_shape) >= 2 else "feature"
    if per == "channel" and len(sample_shape) < 1:
        raise ValueError("normalize_per='channel' needs inputs with a channel axis; use 'global'.")
    return per  # type: ignore[return-value]


def _reduce_dims(per: str, ndim: int) -> tuple[int, ...]:
    if per == "global":
        return tuple(range(ndim))
    if per == "channel":
        return (0, *range(2, ndim))
    return (0,)


_CHUNK = 1024  # samples summed in float32 before the running total moves to float64


def _sum(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """Sum over ``dims`` (keeping them): within samples and chunks of samples in ``x``'s dtype, then in float64."""
    inner = tuple(d for d in dims if d != 0)
    part = x.sum(dim=inner, keepdim=True) if inner else x
    if 0 not in dims:
        return part.double()
    chunks = [c.sum(dim=0, keepdim=True).double() for c in torch.split(part, _CHUNK)]
    return torch.cat(chunks).sum(dim=0, keepdim=True)


def fit_normalization(
    x: torch.Tensor,
    kind: NormalizeKind,
    *,
    per: NormalizePer = "auto",
    fitted_on: str = "train",
) -> Normalization:
    """Fit a :class:`Normalization` of ``kind`` on ``x`` (shape ``(N, *sample_shape)``), the training inputs.

    Two passes (the mean, then the mean squared deviation, which stays accurate when the mean is large against the
    spread). Values are summed in float32 within a sample and within chunks of 1,024 samples, and those partial sums
    in float64, so the statistics of MNIST's 39 million pixels are exact to float32 precision without a float64 copy.
    """
    kind = check_choice("normalize", kind, NORMALIZE_KINDS)
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"cannot fit a normalization on an empty tensor of shape {tuple(x.shape)}.")
    sample_shape = tuple(x.shape[1:])
    resolved = resolve_per(per, sample_shape)
    dims = _reduce_dims(resolved, x.ndim)
    if kind == "standardize":
        x = x.float() if x.dtype != torch.float64 else x
        count = math.prod(x.shape[d] for d in dims)
        shift = _sum(x, dims) / count
        scale = (_sum((x - shift.to(x.dtype)).square_(), dims) / count).sqrt_()
    else:
        shift = x.amin(dim=dims, keepdim=True).double()
        scale = x.amax(dim=dims, keepdim=True).double() - shift
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    # Drop the batch axis so the statistics broadcast against one sample (and against a batch).
    shift = shift.squeeze(0).float() if resolved != "global" else shift.reshape(()).float()
    scale = scale.squeeze(0).float() if resolved != "global" else scale.reshape(()).float()
    return Normalization(kind, resolved, shift, scale, fitted_on, int(x.shape[0]))
