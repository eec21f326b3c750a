"""Models you bring (``--model package.module:factory``): a package written on the fly trains, resumes and reports."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from initlab import models
from initlab.cli import app
from initlab.store import Store

runner = CliRunner()

NETS = '''
import math
from torch import nn


def build(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), 24), nn.Tanh(), nn.Linear(24, num_classes))


class Fixed(nn.Module):
    """For 8x8 digits: built with no arguments."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 12), nn.ReLU())
        self.head = nn.Linear(12, 10)

    def forward(self, x):
        return self.head(self.body(x))


def wrong(a, b, c):
    return None


NOT_A_FACTORY = 3
'''


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    """A package ``userpkg_<test>`` with a module ``nets`` in the current folder, as a user's project has it."""
    name = f"userpkg_{request.node.name.replace('[', '_').replace(']', '').replace('-', '_')}"[:60]
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    (tmp_path / name / "nets.py").write_text(NETS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the import path initlab adds goes away with the test
    return name


def test_a_factory_of_your_own_trains_resumes_and_reports(package: str, tmp_path: Path) -> None:
    # Two batch sizes: two populations, each trained in a worker process that imports the package again.
    out = tmp_path / "study"
    args = ["compare", "--model", f"{package}.nets:build", "--dataset", "digits", "--inits", "he_normal,lsuv",
            "--seeds", "2", "--epochs", "2", "--batch-size", "32,64", "--workers", "2", "--out", str(out)]  # fmt: skip
    ran = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert ran.exit_code == 0, ran.output
    assert (out / "report" / "report.html").exists()
    with Store.in_dir(out, readonly=True) as store:
        assert store.study().config["model"] == f"{package}.nets:build"  # where the factory came from
        assert {r.status for r in store.runs()} == {"finished"}
        before = [(e.run_id, e.epoch, e.train_loss) for e in store.epochs()]
        layers = [s.name for s in store.epochs()[0].layers]
    assert layers == ["1.weight", "1.bias", "3.weight", "3.bias"]
    again = runner.invoke(app, ["compare", "--resume", str(out), "--no-report"], env={"COLUMNS": "200"})
    assert again.exit_code == 0, again.output
    with Store.in_dir(out, readonly=True) as store:
        assert [(e.run_id, e.epoch, e.train_loss) for e in store.epochs()] == before


def test_a_module_class_without_arguments_is_a_factory(package: str) -> None:
    model = models.build(f"{package}.nets:Fixed", input_shape=(1, 8, 8), num_classes=10)
    assert type(model).__name__ == "Fixed"
    assert models.describe(f"{package}.nets:Fixed") == f"{package}.nets:Fixed"


@pytest.mark.parametrize(
    ("path", "expected"),
    [("{p}.nets:buidl", "has no attribute 'buidl'. Did you mean 'build'?"),
     ("{p}.nest:build", "cannot import '{p}.nest'"),
     ("{p}.nets:wrong", "must take (input_shape, num_classes) or nothing"),
     ("{p}.nets:NOT_A_FACTORY", "is a int, not a function or class"),
     ("mlp:64", "")],
    ids=["typo", "no-module", "signature", "not-callable", "a-spec-is-not-a-path"],
)  # fmt: skip
def test_bad_factories_are_named(package: str, path: str, expected: str) -> None:
    path, expected = path.replace("{p}", package), expected.replace("{p}", package)
    if not expected:
        assert models.is_spec(path)
        return
    with pytest.raises(ValueError, match=re.escape(expected)):
        models.check(path)
    ran = runner.invoke(app, ["compare", "--model", path, "--dataset", "digits", "--inits", "he_normal"])
    assert ran.exit_code == 2
    assert expected in " ".join(ran.output.split())


def test_width_sweeps_need_a_spec(package: str) -> None:
    ran = runner.invoke(app, ["compare", "--model", f"{package}.nets:build", "--dataset", "digits", "--width", "8"])
    assert ran.exit_code == 2
    assert "width and depth sweeps and muP need a model spec" in " ".join(ran.output.split())
