"""Every bad input gets a clear message that names the problem and what to do: a table of cases across the command line
and the Python API. No command prints a traceback; each case asserts its message."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import initlab
from initlab import data, models, mup, theory
from initlab.cli import app
from initlab.coordcheck import coord_check
from initlab.studies import Arm, Study
from initlab.training import Population, TrainSettings

runner = CliRunner()

TOML = {
    "bad": "inits = [\n",
    "name5": 'name = 5\ninits = ["he_normal"]\n',
    "arms5": "arms = 5\n",
    "seeds": 'seeds = "two"\ninits = ["he_normal"]\n',
    "unknown": 'inits = ["he_normal"]\nepochz = 3\n',
    "lrr": 'inits = ["he_normal"]\n[train]\nlrr = 0.1\n',
    "axis": 'inits = ["he_normal"]\n[sweep]\nlrs = [0.1]\n',
    "dataset": 'inits = "he_normal"\ndataset = ["digits"]\n',
    "lrtext": 'inits = ["he_normal"]\n[train]\nlr = "fast"\n',
    "train3": 'inits = ["he_normal"]\ntrain = 3\n',
    "seedlist": 'inits = ["he_normal"]\nseeds = [0, "1"]\n',
    "armtable": '[arms.a]\nschem = "he_normal"\n',
}

# (arguments, what the message must say); {T} is a folder holding the TOML files above as NAME.toml.
CLI_CASES: list[tuple[list[str], str]] = [
    (["compare", "--inits", "he_nromal"], "Did you mean 'he_normal'"),
    (["compare", "--inits", ""], "at least one arm"),
    (["compare", "--dataset", "mnsit"], "Did you mean 'mnist'"),
    (["compare", "--model", "mlp:0"], "width must be a positive integer, got 0"),
    (["compare", "--model", "mlp:64;act=rellu"], "Did you mean 'relu'"),
    (["compare", "--model", "mlp:64;dropout=1.5"], "dropout must be in [0, 1)"),
    (["compare", "--model", "mpl:64"], "unknown kind 'mpl'"),
    (["compare", "--model", "mlp:100000000"], "initlab builds models of at most 1,000,000,000"),
    (["compare", "--seeds", "1000000000"], "is more than a study can run"),
    (
        [
            "compare",
            "--inits",
            "all",
            "--seeds",
            "100",
            "--lr",
            ",".join(f"{i}e-4" for i in range(1, 11)),
            "--scale",
            ",".join(str(i) for i in range(1, 11)),
        ],
        "initlab runs at most 100,000 in one study",
    ),
    (["compare", "--lr", "-1"], "lr must be > 0"),
    (["compare", "--lr", "abc"], "'abc' is not a number"),
    (["compare", "--lr", "1e-3,1e-3"], "repeats a value"),
    (["compare", "--batch-size", "0"], "batch_size must be >= 1"),
    (["compare", "--batch-size", "1.5"], "is not an integer"),
    (["compare", "--optimizer", "adma"], "Did you mean 'adam'"),
    (["compare", "--optimizer", "sgd", "--momentum", "5"], "momentum must be in [0, 1)"),
    (["compare", "--momentum", "0.9"], "does not apply to optimizer='adam'"),
    (["compare", "--scale", "-1"], "finite number >= 0"),
    (["compare", "--scale", "inf"], "finite number >= 0"),
    (["compare", "--width", "0", "--model", "mlp:8,8"], "width must be a positive integer"),
    (["compare", "--depth", "2", "--model", "mlp:64,32"], "equal hidden widths"),
    (["compare", "--width", "8", "--model", "mlp"], "no hidden layers"),
    (["compare", "--seeds", "0"], "Invalid value"),
    (["compare", "--epochs", "0"], "Invalid value"),
    (["compare", "--schedule", "cosin"], "Did you mean 'cosine'"),
    (["compare", "--loss", "mae"], "choose one of 'cross_entropy', 'bce', 'mse'"),
    (["compare", "--precision", "fp16"], "Did you mean 'bf16'"),
    (["compare", "--target-accuracy", "2"], "target_accuracy must be in [0, 1]"),
    (["compare", "--device", "tpu"], "choose auto, cpu or cuda"),
    (["compare", "--executor", "slurm"], "choose one of 'local', 'ray'"),
    (["compare", "--parametrization", "mpu"], "Did you mean 'mup'"),
    (["compare", "--inits", "[/x]"], "unknown scheme '[/x]'"),
    (["compare", "--inits", "[bold]he_normal"], "unknown scheme '[bold]he_normal'"),
    (["compare", "--inits", "a b,a_b"], "differ only in case, spaces or punctuation"),
    (["compare", "--config", "{T}/missing.toml"], "does not exist"),
    (["compare", "--config", "{T}/bad.toml"], "is not valid TOML"),
    (["compare", "--config", "{T}/name5.toml"], "study field 'name' must be text, got 5 (integer)"),
    (["compare", "--config", "{T}/arms5.toml"], "study field 'arms' must be a list of arms"),
    (["compare", "--config", "{T}/seeds.toml"], "study field 'seeds' must be a count or a list of integers"),
    (["compare", "--config", "{T}/seedlist.toml"], "got '1' (text) in it"),
    (["compare", "--config", "{T}/unknown.toml"], "unknown study field 'epochz'"),
    (["compare", "--config", "{T}/lrr.toml"], "Did you mean 'lr'"),
    (["compare", "--config", "{T}/axis.toml"], "unknown sweep axis 'lrs'"),
    (["compare", "--config", "{T}/dataset.toml"], "study field 'dataset' must be text"),
    (["compare", "--config", "{T}/lrtext.toml"], "lr must be a real number, got 'fast'"),
    (["compare", "--config", "{T}/train3.toml"], "study field 'train' must be a table"),
    (["compare", "--config", "{T}/armtable.toml"], "unknown arm field 'schem'. Did you mean 'scheme'?"),
    (["compare", "--resume", "{T}/nowhere"], "no study there"),
    (["compare", "--resume", "{T}", "--inits", "he_normal"], "drop --inits"),
    (
        [
            "compare",
            "--out",
            "{T}/bad.toml",
            "--inits",
            "he_normal",
            "--dataset",
            "digits",
            "--model",
            "mlp:4",
            "--steps",
            "1",
            "--seeds",
            "1",
        ],
        "a file is in the way where a folder should be",
    ),
    (["export", "{T}/nowhere"], "no study there"),
    (["report", "{T}/nowhere"], "no study there"),
    (["doctor", "{T}/nowhere"], "is not a folder"),
    (["show", "he_nromal"], "Did you mean 'he_normal'"),
    (["show", "he_normal", "--shape", "100000x100000"], "draws at most 100,000,000"),
    (["show", "he_normal", "--shape", ""], "--shape is empty"),
    (["show", "he_normal", "--shape", "3xa"], "is not a shape"),
    (["show", "he_normal", "--shape", "0x3"], "dimension of size 0"),
    (["show", "he_normal", "--layout", "kears"], "Did you mean 'keras'"),
    (["show", "he_normal", "--groups", "0"], "groups must be >= 1"),
    (["diagnose", "--scheme", "lsuvv", "--dataset", "digits", "--model", "mlp:8"], "Did you mean 'lsuv'"),
    (["diagnose", "--model", "mlp:8", "--dataset", "digts"], "Did you mean 'digits'"),
    (["theory", "--act", "tnah"], "Did you mean 'tanh'"),
    (["theory", "--weight-var", "-1"], "weight_var must be > 0"),
    (["theory", "--bias-var", "-1"], "bias_var must be >= 0"),
    (["coordcheck", "mlp:64,64", "--widths", "64"], "at least two widths"),
    (["coordcheck", "mlp:64,64", "--widths", "a,b"], "comma-separated positive integers"),
    (["coordcheck", "mlp:64,64", "--optimizer", "sdg"], "Did you mean 'sgd'"),
    (["coordcheck", "mlp:64,32"], "equal hidden widths"),
    (["coordcheck", "mlp:64,64", "--widths", "32,64", "--steps", "0"], "steps must be >= 1"),
    (["coordcheck", "mlp:64,64", "--output", "zeros"], "Did you mean 'zero'"),
    (["reproduce", "he2015"], "Did you mean 'he2015-depth'"),
    (["data", "prepare", "mnsit"], "Did you mean 'mnist'"),
]


@pytest.fixture(scope="module")
def toml_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("toml")
    for name, text in TOML.items():
        (folder / f"{name}.toml").write_text(text)
    (folder / "study.sqlite").write_text("")  # so that --resume finds "a study" and checks the flags first
    return folder


@pytest.mark.parametrize(("args", "expected"), CLI_CASES, ids=[" ".join(a)[:60] for a, _ in CLI_CASES])
def test_the_command_line_answers_bad_input_in_one_message(args: list[str], expected: str, toml_dir: Path) -> None:
    ran = runner.invoke(app, [a.replace("{T}", str(toml_dir)) for a in args], env={"COLUMNS": "300"})
    assert ran.exit_code == 2, ran.output
    assert expected in " ".join(ran.output.split()), ran.output
    assert "Traceback" not in ran.output
    assert ran.exception is None or isinstance(ran.exception, SystemExit), ran.exception


def _nan_batch() -> torch.Tensor:
    x = torch.randn(16, 8)
    x[3, 2] = math.nan
    return x


def _mlp() -> torch.nn.Module:
    return models.build("mlp:16", input_shape=(8,), num_classes=3)


# (call, exception type, what the message must say)
API_CASES: list[tuple[Callable[[], object], type[Exception], str]] = [
    (lambda: initlab.get("he_nromal"), ValueError, "Did you mean 'he_normal'"),
    (lambda: initlab.initialize(_mlp(), "lsuvv", seed=0), ValueError, "Did you mean 'lsuv'"),
    (lambda: initlab.initialize(_mlp(), "lsuv", seed=0, data=_nan_batch()), ValueError, "non-finite"),
    (lambda: initlab.diagnose(_mlp(), _nan_batch()), ValueError, "non-finite"),
    (lambda: initlab.initialize(_mlp(), "he_normal", seed=-1), ValueError, "seed"),
    (lambda: Study(arms=()), ValueError, "at least one arm"),
    (lambda: Study(arms=(Arm("a", "he_normal"),), seeds=(0, 0)), ValueError, "seeds must be distinct"),
    (lambda: Study(arms=(Arm("a", "he_normal"),), normalize="std"), ValueError, "choose 'standardize'"),
    (lambda: Study(arms=(Arm("a b", "he_normal"), Arm("a_b", "he_normal"))), ValueError, "differ only in case"),
    (lambda: Study(arms=(Arm("a", "he_normal"),), sweep={"lrs": [1]}), ValueError, "unknown sweep axis 'lrs'"),
    (lambda: Study.from_config({"inits": ["he_normal"], "seeds": "two"}), TypeError, "'seeds' must be a count"),
    (lambda: TrainSettings(lr=math.nan), ValueError, "lr"),
    (lambda: TrainSettings(epochs=0), ValueError, "epochs must be >= 1"),
    (lambda: TrainSettings(optimizer="adam", momentum=0.9), ValueError, "Adam's momentum is beta1"),
    (lambda: TrainSettings(optimizer="sgd", momentum=1.0), ValueError, "momentum must be in [0, 1)"),
    (lambda: TrainSettings(optimizer="sgd", nesterov=True), ValueError, "nesterov=True needs"),
    (lambda: models.parse("mlp:64;dropout=1.5"), ValueError, "dropout must be in [0, 1)"),
    (lambda: models.parse("mlp:64;activation=tanh"), ValueError, "Did you mean 'act'"),
    (lambda: mup.parse("mpu"), ValueError, "Did you mean 'mup'"),
    (lambda: coord_check("mlp:64,64", [64]), ValueError, "at least two widths"),
    (lambda: data.load("digits", split="tset"), ValueError, "Did you mean 'test'"),
    (lambda: theory.mean_field("tanh", -1.0, 0.0), ValueError, "weight_var must be > 0"),
    (lambda: Population([], TrainSettings()), ValueError, "at least one model"),
    (lambda: Population([_mlp(), _mlp()], TrainSettings()).set_lr([1e-3]), ValueError, "one rate per model"),
    (lambda: initlab.HeNormal()((0, 3)), ValueError, "dimension of size 0"),
]


@pytest.mark.parametrize(("call", "kind", "expected"), API_CASES, ids=[str(i) for i in range(len(API_CASES))])
def test_the_python_api_answers_bad_input_in_one_message(
    call: Callable[[], object], kind: type[Exception], expected: str
) -> None:
    with pytest.raises(kind) as caught:
        call()
    assert expected in str(caught.value)


def test_the_table_is_long_enough() -> None:
    assert len(CLI_CASES) + len(API_CASES) >= 60
