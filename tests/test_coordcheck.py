"""The coordinate check (initlab.coordcheck, ``initlab coordcheck``): muP's layers keep their size across widths,
the standard parametrization's output layer does not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from initlab.cli import app
from initlab.coordcheck import coord_check

runner = CliRunner()


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_the_mup_mlp_passes_and_the_standard_output_layer_is_flagged(optimizer: str) -> None:
    result = coord_check("mlp:64,64", [32, 128, 512], optimizer=optimizer, seeds=2, steps=5)  # type: ignore[arg-type]
    roles = {layer.layer: layer.role for layer in result.layers["mup"]}
    assert roles == {"1": "input", "3": "hidden", "5": "output"}
    assert result.passed("mup"), [(x.layer, x.slope) for x in result.layers["mup"]]
    sp = {layer.role: layer for layer in result.layers["standard"]}
    assert not sp["output"].passed
    assert sp["output"].slope > 0.3  # SP's logits change more the wider the network
    # Every step is recorded (initialization and five updates) at every width.
    assert len(sp["output"].scales) == len(sp["output"].changes) == 6
    assert all(len(row) == 3 for row in sp["output"].scales)
    assert sp["output"].changes[0] == [0.0, 0.0, 0.0]


class Wide(nn.Module):
    """A model built elsewhere with its width as the factory's parameter, for 8x8 digits."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh())
        self.head = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def test_a_factory_model_is_checked_by_its_module_names() -> None:
    result = coord_check(Wide, [32, 256], seeds=1, steps=3)
    assert [(x.layer, x.role) for x in result.layers["mup"]] == [("body.1", "input"), ("body.3", "hidden"),
                                                                  ("head", "output")]  # fmt: skip
    assert result.model == "Wide"
    assert result.passed("mup")


def test_bad_arguments_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="at least two widths"):
        coord_check("mlp:64,64", [64])
    with pytest.raises(ValueError, match="equal hidden widths"):
        coord_check("mlp:64,32", [64, 128])
    with pytest.raises(ValueError, match="Did you mean 'adam'"):
        coord_check("mlp:64,64", [64, 128], optimizer="adm")  # type: ignore[arg-type]


def test_the_command_prints_the_verdicts_and_writes_the_figure_and_values(tmp_path: Path) -> None:
    out = tmp_path / "cc"
    args = ["coordcheck", "mlp:32,32", "--widths", "32,128,512", "--seeds", "2", "--out", str(out)]
    ran = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert ran.exit_code == 0, ran.output
    assert "muP passes at every layer" in ran.output
    assert "FAIL" in ran.output  # the standard parametrization's
    assert (out / "coordcheck.png").stat().st_size > 20_000
    values = json.loads((out / "coordcheck.json").read_text())
    assert values["widths"] == [32, 128, 512]
    assert {layer["role"] for layer in values["layers"]["mup"]} == {"input", "hidden", "output"}
    typo = runner.invoke(app, ["coordcheck", "mlp:32,32", "--optimizer", "sdg"])
    assert typo.exit_code == 2
    assert "Did you mean 'sgd'" in typo.output
