"""Layouts: how a tensor's axes map to fan-in and fan-out.

The fan-in of a weight is the number of inputs that feed one output unit; the fan-out is the number of outputs that
one input unit feeds. Variance-scaling initializers divide by one of them, so getting them right matters:

========================  ===============================  ======================================  ====================
layout                    shape                            fan_in                                  fan_out
========================  ===============================  ======================================  ====================
``"torch"``               Linear ``(out, in)``,            ``shape[1] * rf``                       ``shape[0] / groups
                          ConvNd ``(out, in/groups, *k)``                                          * rf``
``"torch_transpose"``     ConvTransposeNd                  ``shape[0] / groups * rf``              ``shape[1] * rf``
                          ``(in, out/groups, *k)``
``"keras"``               Dense ``(in, out)``,             ``shape[-2] * rf``                      ``shape[-1] / groups
                          ConvNd ``(*k, in/groups, out)``                                          * rf``
explicit axes             any                              product of ``in_axes`` sizes * rf       product of
                                                                                                   ``out_axes`` * rf
========================  ===============================  ======================================  ====================

``rf`` (the receptive field) is the product of the remaining axes: the kernel size of a convolution, 1 for a
matrix. Two conventions differ from what torch and Keras compute:

* grouped convolutions: one input channel feeds ``out / groups`` channels, so fan-out is divided by ``groups``
  (``torch.nn.init`` and Keras both use ``out * rf``);
* transposed convolutions: the weight is stored ``(in, out/groups, *k)``, so the fans are the other way round from a
  convolution (``torch.nn.init._calculate_fan_in_and_fan_out`` reads them as if it were a convolution and swaps them).

Shapes of rank 0 and 1, which have no in/out structure, follow Keras: a scalar has ``fan_in = fan_out = 1``; a
vector of length ``n`` has ``fan_in = fan_out = n``. These rules apply to every layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, get_args

from initlab.checks import check_choice, check_int, check_shape

LayoutKind = Literal["torch", "torch_transpose", "keras", "axes"]
LAYOUT_KINDS: tuple[str, ...] = get_args(LayoutKind)
# Names users reach for, mapped to the layout they mean.
_LAYOUT_ALIASES: dict[str, str] = {
    "linear": "torch",
    "conv": "torch",
    "conv_transpose": "torch_transpose",
    "convtranspose": "torch_transpose",
    "transpose": "torch_transpose",
    "dense": "keras",
    "tf": "keras",
}


@dataclass(frozen=True)
class Fans:
    """Fan-in, fan-out and the receptive field they include."""

    fan_in: int
    fan_out: int
    receptive_field: int = 1

    def get(self, mode: str) -> float:
        """The fan for a variance-scaling ``mode``: ``fan_in``, ``fan_out``, ``fan_avg`` or ``fan_geo_avg``."""
        if mode == "fan_in":
            return float(self.fan_in)
        if mode == "fan_out":
            return float(self.fan_out)
        if mode == "fan_avg":
            return (self.fan_in + self.fan_out) / 2.0
        if mode == "fan_geo_avg":
            return math.sqrt(self.fan_in * self.fan_out)
        check_choice("mode", mode, ("fan_in", "fan_out", "fan_avg", "fan_geo_avg"))
        raise AssertionError("unreachable")


@dataclass(frozen=True)
class Layout:
    """How the axes of a weight map to fan-in and fan-out (see the module docstring for the table).

    Build one with a name (``Layout("keras")``), with ``groups`` for grouped convolutions
    (``Layout("torch", groups=4)``), or with explicit axes (``Layout.axes(in_axes=(1,), out_axes=(0,))``).
    """

    kind: LayoutKind = "torch"
    groups: int = 1
    in_axes: tuple[int, ...] = field(default=())
    out_axes: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        kind = _LAYOUT_ALIASES.get(self.kind, self.kind)
        check_choice("layout", kind, LAYOUT_KINDS + tuple(_LAYOUT_ALIASES))
        object.__setattr__(self, "kind", kind)
        check_int("groups", self.groups, minimum=1)
        if kind == "axes":
            if not self.in_axes or not self.out_axes:
                raise ValueError("an 'axes' layout needs both in_axes and out_axes, e.g. Layout.axes((1,), (0,)).")
            if set(self.in_axes) & set(self.out_axes):
                raise ValueError(f"in_axes {self.in_axes} and out_axes {self.out_axes} must not share an axis.")
        elif self.in_axes or self.out_axes:
            raise ValueError(f"in_axes/out_axes are only for Layout.axes(...), not for layout {kind!r}.")

    @classmethod
    def axes(cls, in_axes: int | tuple[int, ...], out_axes: int | tuple[int, ...], groups: int = 1) -> Layout:
        """A layout with explicit fan-in and fan-out axes; every other axis counts as receptive field."""
        ia = (in_axes,) if isinstance(in_axes, int) else tuple(in_axes)
        oa = (out_axes,) if isinstance(out_axes, int) else tuple(out_axes)
        return cls("axes", groups=groups, in_axes=ia, out_axes=oa)

    def fans(self, shape: tuple[int, ...] | list[int]) -> Fans:
        """Fan-in and fan-out of a tensor of ``shape`` under this layout."""
        shape = check_shape(shape) if len(shape) else ()
        if len(shape) == 0:
            return Fans(1, 1)
        if len(shape) == 1:
            return Fans(shape[0], shape[0])
        if self.kind == "axes":
            rank = len(shape)
            for a in self.in_axes + self.out_axes:
                if not -rank <= a < rank:
                    raise ValueError(f"layout axis {a} is out of range for shape {shape} (rank {rank}).")
            ins = {a % rank for a in self.in_axes}
            outs = {a % rank for a in self.out_axes}
            rf = math.prod(s for i, s in enumerate(shape) if i not in ins | outs)
            fan_in = math.prod(shape[i] for i in ins) * rf
            fan_out = math.prod(shape[i] for i in outs) * rf
            return Fans(fan_in, self._per_group(fan_out, "out", shape), rf)
        if self.kind == "keras":
            rf = math.prod(shape[:-2])
            return Fans(shape[-2] * rf, self._per_group(shape[-1] * rf, "out", shape), rf)
        rf = math.prod(shape[2:])
        if self.kind == "torch_transpose":
            return Fans(self._per_group(shape[0] * rf, "in", shape), shape[1] * rf, rf)
        return Fans(shape[1] * rf, self._per_group(shape[0] * rf, "out", shape), rf)

    def _per_group(self, fan: int, which: str, shape: tuple[int, ...]) -> int:
        if fan % self.groups:
            raise ValueError(
                f"groups={self.groups} does not divide the {which}put channels of shape {shape} under layout "
                f"{self.kind!r}."
            )
        return fan // self.groups

    def matrix_shape(self, shape: tuple[int, ...]) -> tuple[int, int]:
        """The ``(rows, cols)`` matrix view used by Orthogonal: one row per output unit where the layout allows.

        ``"keras"`` flattens leading axes, ``(prod(shape[:-1]), shape[-1])``, as Keras does; every other layout keeps
        the first axis and flattens the rest, ``(shape[0], prod(shape[1:]))``, as ``torch.nn.init.orthogonal_`` does.
        """
        if self.kind == "keras":
            return math.prod(shape[:-1]), shape[-1]
        return shape[0], math.prod(shape[1:])


LayoutLike = Layout | str


def as_layout(layout: LayoutLike) -> Layout:
    """Turn a layout name into a :class:`Layout`; pass a ``Layout`` through."""
    if isinstance(layout, Layout):
        return layout
    if isinstance(layout, str):
        return Layout(layout)  # type: ignore[arg-type]
    raise TypeError(f"layout must be a Layout or one of {LAYOUT_KINDS[:3]}, got {layout!r}.")


def compute_fans(shape: tuple[int, ...] | list[int], layout: LayoutLike = "torch") -> Fans:
    """Fan-in and fan-out of ``shape`` under ``layout``; see :mod:`initlab.fans` for the rules."""
    return as_layout(layout).fans(tuple(shape))
