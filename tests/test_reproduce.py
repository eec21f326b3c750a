"""Reproductions: every claim of the quick forms holds, and the command prints them."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from initlab.cli import app
from initlab.reproduce import REGISTRY, dlai_circles, reproduce

runner = CliRunner()


def test_dlai_circles_matches_the_published_costs_and_accuracies(tmp_path: Path) -> None:
    state = np.random.get_state()
    result = reproduce("dlai-circles", tmp_path, quick=True)
    assert result.passed, [c for c in result.claims if not c.passed]
    assert len(result.claims) == 40
    assert tuple(result.details["he"]["accuracy"]) == (0.9933333333333333, 0.96)
    assert (tmp_path / "summary.md").exists()
    assert (tmp_path / "dlai_circles.png").stat().st_size > 10_000
    # The caller's global numpy random state is left as it was.
    assert all(np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b
               for a, b in zip(state, np.random.get_state(), strict=True))  # fmt: skip


def test_dlai_claims_can_fail() -> None:
    # A different learning rate changes the trajectory: the comparison is not vacuous.
    assert not dlai_circles._same_digits(0.8830537463419761, 0.8830537463419761 * (1 + 1e-13))
    assert dlai_circles._same_digits(0.09917746546525937, 0.09917746546525934)
    costs, *_ = dlai_circles.train("zeros")
    assert math.isclose(costs[0], math.log(2), rel_tol=1e-15)


def test_keras_mnist_quick_claims_hold(tmp_path: Path) -> None:
    result = reproduce("keras-mnist", tmp_path, quick=True)
    assert result.passed, [c for c in result.claims if not c.passed]
    assert {c.text.split(" ")[0] for c in result.claims} == {"Zeros", "Ones", "The"}
    acc = result.details["test_accuracy_percent"]
    assert acc["zeros"] == pytest.approx(11.35, abs=0.01)


def test_reproduce_command_lists_and_runs(tmp_path: Path) -> None:
    listed = runner.invoke(app, ["reproduce", "--list"], env={"COLUMNS": "200"})
    assert listed.exit_code == 0
    for name in REGISTRY:
        assert name in listed.output
    ran = runner.invoke(app, ["reproduce", "dlai-circles", "--quick", "--out", str(tmp_path)], env={"COLUMNS": "200"})
    assert ran.exit_code == 0, ran.output
    assert ran.output.count("PASS") == 40
    typo = runner.invoke(app, ["reproduce", "dlai-circle"])
    assert typo.exit_code == 2
    assert "Did you mean 'dlai-circles'" in typo.output


def test_saxe2014_quick_claims_hold(tmp_path: Path) -> None:
    result = reproduce("saxe2014", tmp_path, quick=True)
    assert result.passed, [c for c in result.claims if not c.passed]
    steps = result.details["steps"]
    assert steps["scaled Gaussian"]["12"][0] > 4 * steps["scaled Gaussian"]["1"][0]
    assert steps["orthogonal"]["12"][0] <= steps["orthogonal"]["1"][0]


def test_glorot2010_quick_claims_hold(tmp_path: Path) -> None:
    result = reproduce("glorot2010", tmp_path, quick=True)
    assert result.passed, [c for c in result.claims if not c.passed]
    ratios = result.details["mean_ratios"]
    # Linear theory for standard init: (1/3)^2 = 0.11 over four layers, in both directions.
    assert ratios["standard"]["activation"] == pytest.approx(0.11, abs=0.04)
    assert ratios["standard"]["backprop"] == pytest.approx(0.11, abs=0.04)
    # The two initializations differ by a large factor: the claims separate them.
    assert ratios["normalized"]["activation"] > 5 * ratios["standard"]["activation"]
    assert all(p.stat().st_size > 10_000 for p in result.figures)


def test_isometry_quick_claims_hold(tmp_path: Path) -> None:
    result = reproduce("isometry", tmp_path, quick=True)
    assert result.passed, [c for c in result.claims if not c.passed]
    stats = result.details["stats"]
    assert stats["tanh + orthogonal"]["within"] > 0.95
    assert stats["tanh + Gaussian"]["within"] < 0.2
    assert stats["ReLU + He"]["within"] < 0.2
    assert (tmp_path / "isometry.png").stat().st_size > 10_000


def test_isometry_jacobian_matches_autograd() -> None:
    # The reproduction's forward-mode Jacobian equals autograd's, for tanh and ReLU networks.
    import torch

    import initlab
    from initlab.reproduce import isometry

    x = torch.randn(3, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for act in ("tanh", "relu"):
        model = initlab.models.build(f"mlp:16,16;act={act}", input_shape=(16,), num_classes=16).double()
        initlab.initialize(model, initlab.RandomNormal(stddev=0.5), seed=0)
        model[1].bias.data.normal_(generator=torch.Generator().manual_seed(1))  # non-zero biases matter for tanh'
        expected = torch.stack([torch.autograd.functional.jacobian(model, x[i : i + 1])[0, :, 0] for i in range(3)])
        torch.testing.assert_close(isometry.jacobians(model, x), expected)


def test_he2015_depth_quick_claims_hold(tmp_path: Path) -> None:
    result = reproduce("he2015-depth", tmp_path, quick=True)
    assert result.passed, [c for c in result.claims if not c.passed]
    acc = result.details["test_accuracy_percent"]
    assert abs(acc["xavier"] - 10) <= 5
    assert min(acc["he"], acc["lsuv"]) >= acc["xavier"] + 8
    assert (tmp_path / "he2015_depth.png").stat().st_size > 10_000
