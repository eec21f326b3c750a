"""The `initlab` command line: --version, list, show."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

import initlab
from initlab.cli import app

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"initlab {initlab.__version__}"


def test_console_script_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "initlab", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith("initlab ")


def test_list_shows_every_member_and_formula() -> None:
    result = runner.invoke(app, ["list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for entry in initlab.catalog():
        assert entry.name in result.output
        assert entry.formula in result.output


def test_show_prints_fans_theory_sample_and_histogram() -> None:
    result = runner.invoke(app, ["show", "he_normal", "--shape", "64x3x3x3", "--seed", "1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "fan_in 27  fan_out 576" in result.output
    theory = initlab.HeNormal().distribution((64, 3, 3, 3))
    assert f"{theory.std:.6g}" in result.output
    assert "sample" in result.output
    assert any(ch in result.output for ch in "▁▂▃▄▅▆▇█")


def test_show_keras_layout_and_groups() -> None:
    result = runner.invoke(app, ["show", "glorot_uniform", "--shape", "3x3x8x64", "--layout", "keras", "--groups", "4"])
    assert result.exit_code == 0, result.output
    assert "fan_in 72  fan_out 144" in result.output


def test_show_typo_suggests_the_closest_name() -> None:
    result = runner.invoke(app, ["show", "glorot_unifrom"])
    assert result.exit_code == 2
    assert "Did you mean 'glorot_uniform'" in result.output


def test_show_bad_shape() -> None:
    result = runner.invoke(app, ["show", "orthogonal", "--shape", "12xab"])
    assert result.exit_code == 2
    assert "write it like 256x784" in result.output
