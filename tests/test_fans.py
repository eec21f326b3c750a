"""Layouts and fans: the table in initlab.fans, the rank-0/1 rule, groups, explicit axes, errors."""

from __future__ import annotations

import pytest
import torch

from initlab import Layout, compute_fans


@pytest.mark.parametrize(
    ("shape", "layout", "fans"),
    [
        ((256, 784), Layout("torch"), (784, 256)),  # Linear(784, 256)
        ((64, 32, 3, 3), Layout("torch"), (32 * 9, 64 * 9)),  # Conv2d(32, 64, 3)
        ((64, 8, 3, 3), Layout("torch", groups=4), (8 * 9, 16 * 9)),  # Conv2d(32, 64, 3, groups=4)
        ((32, 1, 3, 3), Layout("torch", groups=32), (9, 9)),  # depthwise Conv2d(32, 32, 3, groups=32)
        ((32, 48, 3, 3), Layout("torch_transpose"), (32 * 9, 48 * 9)),  # ConvTranspose2d(32, 48, 3)
        ((32, 12, 3, 3), Layout("torch_transpose", groups=4), (8 * 9, 12 * 9)),  # ConvTranspose2d(32, 48, groups=4)
        ((16, 8, 5), Layout("torch"), (40, 80)),  # Conv1d
        ((8, 4, 2, 3, 3), Layout("torch"), (72, 144)),  # Conv3d
        ((784, 256), Layout("keras"), (784, 256)),  # Dense
        ((3, 3, 32, 64), Layout("keras"), (32 * 9, 64 * 9)),  # Conv2D
        ((3, 3, 8, 64), Layout("keras", groups=4), (8 * 9, 16 * 9)),
        ((7,), Layout("torch"), (7, 7)),
        ((7,), Layout("keras"), (7, 7)),
        ((), Layout("torch"), (1, 1)),
        ((5, 6, 7), Layout.axes(in_axes=2, out_axes=0), (7 * 6, 5 * 6)),
        ((5, 6, 7), Layout.axes(in_axes=(1, 2), out_axes=0), (42, 5)),
    ],
)
def test_fans(shape: tuple[int, ...], layout: Layout, fans: tuple[int, int]) -> None:
    f = compute_fans(shape, layout)
    assert (f.fan_in, f.fan_out) == fans


@pytest.mark.parametrize("shape", [(256, 784), (64, 32, 3, 3), (16, 8, 5)])
def test_torch_layout_agrees_with_torch_for_ungrouped_weights(shape: tuple[int, ...]) -> None:
    f = compute_fans(shape, "torch")
    assert (f.fan_in, f.fan_out) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


def test_aliases_name_the_same_layouts() -> None:
    assert Layout("linear") == Layout("conv") == Layout("torch")
    assert Layout("conv_transpose") == Layout("torch_transpose")
    assert Layout("dense") == Layout("keras")


def test_fan_modes() -> None:
    f = compute_fans((2, 8))
    assert (f.get("fan_in"), f.get("fan_out"), f.get("fan_avg"), f.get("fan_geo_avg")) == (8, 2, 5, 4)
    with pytest.raises(ValueError, match="mode='fan_mean' is not allowed"):
        f.get("fan_mean")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Layout("tourch"), r"layout='tourch' is not allowed.*Did you mean 'torch'"),
        (lambda: Layout("torch", groups=0), r"groups must be >= 1"),
        (lambda: Layout.axes(in_axes=(), out_axes=0), r"needs both in_axes and out_axes"),
        (lambda: Layout.axes(in_axes=1, out_axes=1), r"must not share an axis"),
        (lambda: compute_fans((4, 3), Layout.axes(in_axes=2, out_axes=0)), r"axis 2 is out of range"),
        (lambda: compute_fans((6, 3, 3), Layout("torch", groups=4)), r"groups=4 does not divide"),
        (lambda: Layout("torch", in_axes=(1,)), r"only for Layout.axes"),
    ],
)
def test_layout_errors(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()
