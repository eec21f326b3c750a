"""``schoenholz2017``: the quick form's claims hold, the curve drawn is the theory's 6 ξ_c, and claims can fail."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from initlab.reproduce import Result, reproduce, schoenholz2017
from initlab.theory import critical_weight_var, mean_field


def test_quick_form_claims_hold(tmp_path: Path) -> None:
    result = reproduce("schoenholz2017", tmp_path, quick=True)
    assert result.passed, [c for c in result.claims if not c.passed]
    assert len(result.claims) == 7
    assert (tmp_path / "summary.md").exists()
    figure = tmp_path / "schoenholz2017.png"
    assert result.figures == [figure]
    assert figure.stat().st_size > 10_000
    acc = result.details["test_accuracy_percent"]
    assert set(acc) == {"L=10", "L=60"}
    assert set(acc["L=60"]) == {"1", "1.75", "4"}
    # The outer columns at depth 60 learned nothing: one class predicted, at most 11.35% of the test set.
    assert acc["L=60"]["1"] <= 15
    assert acc["L=60"]["4"] <= 15
    # The curve drawn is the theory's 6 ξ_c at every point.
    curve = result.details["curve"]
    assert len(curve) == 60 + schoenholz2017.QUICK_CURVE_POINTS
    for weight_var, depth in curve[::17]:
        assert depth == 6 * mean_field("tanh", weight_var, 0.05).xi_c


def test_overlay_curve_is_six_xi_c() -> None:
    points = [1.0, 1.5, 2.0, 3.0]
    curve = schoenholz2017.boundary_curve(points)
    assert [w for w, _ in curve] == points
    for weight_var, depth in curve:
        assert depth == 6 * mean_field("tanh", weight_var, 0.05).xi_c
    assert curve[0][1] == pytest.approx(21.76, abs=0.01)  # ξ_c = 3.63 at σ_w² = 1
    assert math.isinf(schoenholz2017.boundary_depth(critical_weight_var("tanh", 0.05)))
    xs = schoenholz2017.curve_weight_vars(0.8, 4.2, 5)
    assert xs == sorted(xs)
    assert xs[0] == 0.8
    assert xs[-1] == pytest.approx(4.2)
    assert len(xs) == 65


def _grid(trained_to: dict[float, int]) -> schoenholz2017.Grid:
    """A made-up grid whose column σ_w² trains (90%) up to depth ``trained_to[σ_w²]`` and is at chance beyond."""
    weight_vars, depths = tuple(sorted(trained_to)), (10, 50, 100)
    accuracy = {(w, d): 90.0 if d <= trained_to[w] else 10.0 for w in weight_vars for d in depths}
    boundary = {w: 6 * mean_field("tanh", w, 0.05).xi_c for w in weight_vars}
    return schoenholz2017.Grid(weight_vars, depths, accuracy, boundary)


def test_claims_can_fail() -> None:
    faithful = _grid({1.0: 10, 1.75: 100, 4.0: 10})  # 6 ξ_c: 22, 2557, 42
    assert faithful.deepest_trained(40) == {1.0: 10, 1.75: 100, 4.0: 10}
    result = Result("schoenholz2017", "", "", quick=True)
    schoenholz2017._check_depth_scale(result, faithful, 40, 1.0)
    schoenholz2017._check_widest(result, faithful, 40)
    assert result.passed
    # Trained deepest in the ordered phase, not at the critical column: every claim fails.
    wrong = _grid({1.0: 100, 1.75: 50, 4.0: 10})
    result = Result("schoenholz2017", "", "", quick=True)
    schoenholz2017._check_depth_scale(result, wrong, 40, 1.0)
    schoenholz2017._check_widest(result, wrong, 40)
    assert [c.passed for c in result.claims] == [False] * 6


def test_the_package_registers_it() -> None:
    # Importing initlab.reproduce alone (as the command does) registers the reproduction.
    code = "from initlab.reproduce import REGISTRY; print('schoenholz2017' in REGISTRY)"
    ran = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert ran.stdout.strip() == "True"
