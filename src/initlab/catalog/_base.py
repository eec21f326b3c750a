"""The :class:`Initializer` interface and the machinery every member shares.

A member only implements ``_fill(out, shape, layout, generator)``, which writes values into a contiguous float32 or
float64 tensor. The base class does the rest the same way for all of them: validating the shape, turning ``seed``
into a generator, drawing on the generator's device, casting to half precision, filling parameters under
``no_grad``, numpy input and output, and the config round trip.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch

from initlab.checks import check_shape
from initlab.fans import Fans, Layout, LayoutLike, as_layout
from initlab.seeding import Seed, make_generator

TensorOrArray = TypeVar("TensorOrArray", torch.Tensor, np.ndarray)

_SQRT2 = math.sqrt(2.0)


def _norm_pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi) if math.isfinite(x) else 0.0


def _norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / _SQRT2))


@dataclass(frozen=True)
class Distribution:
    """The exact distribution of the entries an initializer draws for one shape and layout.

    ``family`` is ``"constant"``, ``"normal"``, ``"truncated_normal"`` or ``"uniform"`` when the entries are
    independent and identically distributed (``iid=True``); structured members (Orthogonal, Identity, Dirac, Sparse)
    report ``family`` as their own name with ``iid=False`` and the exact mean and standard deviation of their entries.
    For the normal families ``loc`` and ``sigma`` are the parameters before truncation; ``low`` and ``high`` bound
    the support (infinite for a normal).
    """

    family: str
    mean: float
    std: float
    low: float
    high: float
    loc: float = 0.0
    sigma: float = 0.0
    iid: bool = True

    @classmethod
    def constant(cls, value: float) -> Distribution:
        return cls("constant", value, 0.0, value, value, loc=value)

    @classmethod
    def normal(cls, loc: float, sigma: float) -> Distribution:
        return cls("normal", loc, sigma, -math.inf, math.inf, loc=loc, sigma=sigma)

    @classmethod
    def uniform(cls, low: float, high: float) -> Distribution:
        return cls("uniform", (low + high) / 2.0, (high - low) / math.sqrt(12.0), low, high)

    @classmethod
    def truncated_normal(cls, loc: float, sigma: float, low: float, high: float) -> Distribution:
        """N(loc, sigma²) restricted to [low, high]; mean and std from the standard closed forms."""
        a, b = (low - loc) / sigma, (high - loc) / sigma
        z = _norm_cdf(b) - _norm_cdf(a)
        pa, pb = _norm_pdf(a), _norm_pdf(b)
        mean = loc + sigma * (pa - pb) / z
        var = sigma**2 * (1.0 + (a * pa - b * pb) / z - ((pa - pb) / z) ** 2)
        return cls("truncated_normal", mean, math.sqrt(var), low, high, loc=loc, sigma=sigma)


class Initializer(ABC):
    """A serializable config object that produces or fills a tensor of a given shape.

    Call it for a new tensor, ``init(shape, dtype=..., device=..., seed=..., layout=...)``; fill an existing tensor,
    parameter or numpy array in place with ``init.fill_(tensor, seed=..., layout=...)``; get a numpy array with
    ``init.numpy(shape, ...)``.

    ``seed`` is ``None`` (torch's default generator: fresh values each call, reproducible under
    ``torch.manual_seed``), an ``int`` (a fresh CPU generator: the same values in every call, every process and on
    every device) or a ``torch.Generator`` (used and advanced). This differs from Keras 3, where an initializer
    object created without a seed draws a seed once and returns the same values on every call: in initlab the seed
    belongs to the call, not to the object, so one config can be reused with many seeds.

    ``layout`` says how the shape's axes map to fan-in and fan-out (:mod:`initlab.fans`); it defaults to torch's
    ``(out, in, *kernel)``.
    """

    #: One-line formula shown by ``initlab list``.
    formula: ClassVar[str] = ""
    #: Where the definition comes from.
    source: ClassVar[str] = ""
    #: Names users know this member by, besides its class name and snake_case name.
    aliases: ClassVar[tuple[str, ...]] = ()
    #: Constructor arguments, in order; ``get_config`` returns exactly these.
    _params: ClassVar[tuple[str, ...]] = ()

    # -- the one method a member implements -------------------------------------------------------------------
    @abstractmethod
    def _fill(self, out: torch.Tensor, layout: Layout, generator: torch.Generator | None) -> None:
        """Write values into ``out``, a contiguous float32 or float64 tensor whose shape was validated."""

    def _check_shape(self, shape: tuple[int, ...], layout: Layout) -> None:
        """Raise ``ValueError`` if this member cannot fill ``shape``; members with rank rules override it."""
        return

    def distribution(self, shape: tuple[int, ...] | list[int], layout: LayoutLike = "torch") -> Distribution:
        """The exact distribution of the entries for ``shape`` under ``layout``."""
        shape_t, lay = self._prepare(shape, layout)
        return self._distribution(shape_t, lay)

    @abstractmethod
    def _distribution(self, shape: tuple[int, ...], layout: Layout) -> Distribution: ...

    # -- public API -----------------------------------------------------------------------------------------------
    def __call__(
        self,
        shape: tuple[int, ...] | list[int] | int | torch.Size,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        seed: Seed = None,
        layout: LayoutLike = "torch",
    ) -> torch.Tensor:
        """Return a new tensor of ``shape`` filled by this initializer."""
        shape_t = check_shape(shape) if shape != () else ()
        if not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating-point torch dtype, got {dtype}.")
        return self.fill_(torch.empty(shape_t, dtype=dtype, device=device), seed=seed, layout=layout)

    def numpy(
        self,
        shape: tuple[int, ...] | list[int] | int,
        *,
        dtype: np.dtype | type = np.float32,
        seed: Seed = None,
        layout: LayoutLike = "torch",
    ) -> np.ndarray:
        """Return a new numpy array of ``shape``; the values equal ``self(shape, seed=seed, ...)``."""
        np_dtype = np.dtype(dtype)
        if np_dtype.kind != "f":
            raise TypeError(f"dtype must be a floating-point numpy dtype, got {np_dtype}.")
        out = np.empty(check_shape(shape) if shape != () else (), dtype=np_dtype)
        return self.fill_(out, seed=seed, layout=layout)

    def fill_(self, tensor: TensorOrArray, *, seed: Seed = None, layout: LayoutLike = "torch") -> TensorOrArray:
        """Fill ``tensor`` (a tensor, ``nn.Parameter`` or numpy array) in place under ``no_grad``; return it."""
        if isinstance(tensor, np.ndarray):
            if tensor.dtype.kind != "f":
                raise TypeError(f"can only fill floating-point arrays, got dtype {tensor.dtype}.")
            if not tensor.flags.writeable:
                raise ValueError("the numpy array is read-only; pass a writeable array.")
            self.fill_(torch.from_numpy(tensor), seed=seed, layout=layout)
            return tensor
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"fill_ takes a torch.Tensor or a numpy array, got {type(tensor).__name__}.")
        if not tensor.is_floating_point():
            raise TypeError(f"can only fill floating-point tensors, got dtype {tensor.dtype}.")
        shape, lay = self._prepare(tuple(tensor.shape), layout)
        generator = make_generator(seed)
        draw_device = generator.device if generator is not None else tensor.device
        work_dtype = tensor.dtype if tensor.dtype in (torch.float32, torch.float64) else torch.float32
        with torch.no_grad():
            if tensor.dtype == work_dtype and tensor.device == draw_device and tensor.is_contiguous():
                self._fill(tensor, lay, generator)
            else:
                # Half precision, another device than the generator's, or a strided view: draw into a contiguous
                # buffer so that the values equal those of a float32 draw with the same seed.
                buffer = torch.empty(shape, dtype=work_dtype, device=draw_device)
                self._fill(buffer, lay, generator)
                tensor.copy_(buffer)
        return tensor

    def fans(self, shape: tuple[int, ...] | list[int], layout: LayoutLike = "torch") -> Fans:
        """Fan-in and fan-out of ``shape`` under ``layout`` (see :mod:`initlab.fans`)."""
        return as_layout(layout).fans(tuple(shape))

    # -- config ----------------------------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, such that ``type(self).from_config(self.get_config()) == self``."""
        return {name: getattr(self, name) for name in self._params}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Initializer:
        """Rebuild an initializer from :meth:`get_config`'s output (Keras' ``"seed": None`` entry is accepted)."""
        if not isinstance(config, Mapping):
            raise TypeError(f"{cls.__name__}.from_config takes a dict, got {type(config).__name__}.")
        config = dict(config)
        seed = config.pop("seed", None)
        if seed is not None:
            raise ValueError(
                f"{cls.__name__} config has seed={seed!r}; initlab takes the seed at call time "
                f"(init(shape, seed={seed!r})), not in the config."
            )
        unknown = sorted(set(config) - set(cls._params))
        if unknown:
            allowed = ", ".join(cls._params) or "none"
            raise ValueError(f"{cls.__name__} config has unknown keys {unknown}; allowed keys: {allowed}.")
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(sorted((k, repr(v)) for k, v in self.get_config().items()))))

    # -- helpers ---------------------------------------------------------------------------------------------------
    def _prepare(self, shape: tuple[int, ...] | list[int], layout: LayoutLike) -> tuple[tuple[int, ...], Layout]:
        shape_t = check_shape(shape) if len(shape) else ()
        lay = as_layout(layout)
        self._check_shape(shape_t, lay)
        return shape_t, lay


def trunc_normal_(
    out: torch.Tensor, mean: float, std: float, low: float, high: float, generator: torch.Generator | None
) -> torch.Tensor:
    """Fill ``out`` with N(mean, std²) truncated to [low, high] by inverting the CDF.

    Draws u ~ U(Φ(a), Φ(b)) for the standardized bounds a, b and returns mean + std·√2·erfinv(2u − 1), the method of
    ``torch.nn.init.trunc_normal_``; the final clamp only guards against rounding at the bounds.
    """
    lo = _norm_cdf((low - mean) / std)
    hi = _norm_cdf((high - mean) / std)
    out.uniform_(2.0 * lo - 1.0, 2.0 * hi - 1.0, generator=generator)
    out.erfinv_()
    out.mul_(std * _SQRT2).add_(mean)
    return out.clamp_(low, high)
