"""Diagnostics: the textbook failures of an initialization are found, named and explained; the CLI shows them."""

from __future__ import annotations

import base64
import html
import json
import math
import re
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from typer.testing import CliRunner

import initlab
from initlab import models
from initlab.cli import app
from initlab.diagnostics import (
    HISTOGRAM_BINS,
    SATURATION_FRACTION,
    VANISHING_SIGNAL_RATIO,
    Comparison,
    Diagnosis,
    compare_diagnoses,
    diagnose,
)
from initlab.diagnostics._stats import histogram

runner = CliRunner()
DIM = 64
EVIL = "<script>alert(1)</script>"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def batch(n: int = 256, dim: int = DIM, scale: float = 1.0, seed: int = 1) -> torch.Tensor:
    return scale * torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def labels(n: int = 256, classes: int = 10, seed: int = 2) -> torch.Tensor:
    return torch.randint(0, classes, (n,), generator=torch.Generator().manual_seed(seed))


def mlp(depth: int, width: int, act: str, scheme: object, outputs: int = 10) -> nn.Module:
    model = models.build(f"mlp:{','.join([str(width)] * depth)};act={act}", input_shape=(DIM,), num_classes=outputs)
    initlab.initialize(model, scheme, seed=0)
    return model


def hidden_names(model: nn.Module) -> list[str]:
    linears = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    return linears[:-1]


def test_zeros_break_no_symmetry_in_any_hidden_layer() -> None:
    model = mlp(3, 32, "relu", "zeros")
    d = diagnose(model, batch(), targets=labels())
    finding = d.finding("symmetry")
    assert finding is not None
    assert finding.severity == "error"
    assert set(hidden_names(model)) <= set(finding.layers)
    for name in hidden_names(model):
        assert finding.figures[name] == {"duplicates": 31, "units": 32}
    assert finding.scheme == "auto"
    assert all(layer.duplicate_rows == layer.units - 1 for layer in d.layers)


def test_constant_init_duplicates_activations_too() -> None:
    d = diagnose(mlp(2, 16, "tanh", initlab.Constant(0.05)), batch())
    assert d.finding("symmetry") is not None
    assert [layer.duplicate_activations for layer in d.layers[:2]] == [15, 15]


def test_random_init_has_no_duplicates() -> None:
    d = diagnose(mlp(2, 64, "relu", "he_normal"), batch())
    assert all(layer.duplicates == 0 for layer in d.layers)
    assert d.finding("symmetry") is None


def test_large_normal_saturates_a_deep_tanh_mlp() -> None:
    d = diagnose(mlp(10, 64, "tanh", initlab.RandomNormal(stddev=1.0)), batch(), targets=labels())
    finding = d.finding("saturation")
    assert finding is not None
    hidden = [layer for layer in d.layers if layer.activation_kind == "tanh"]
    assert len(hidden) == 10
    assert all(layer.saturated is not None and layer.saturated > SATURATION_FRACTION for layer in hidden)
    assert set(finding.layers) == {layer.name for layer in hidden}
    assert "5/3" in finding.suggestion
    assert finding.scheme == "auto"


def test_glorot_in_a_deep_relu_mlp_vanishes_and_names_the_per_layer_factor() -> None:
    d = diagnose(mlp(30, 128, "relu", initlab.GlorotNormal()), batch(), targets=labels())
    finding = d.finding("vanishing_signal")
    assert finding is not None
    assert finding.severity == "error"
    # ReLU halves the second moment and Glorot (fan_avg = fan_in here) does not double it back: 1/√2 per layer.
    factor = finding.figures["per_layer_factor"]
    assert 0.6 < factor < 0.8
    assert f"per-layer factor {factor:.3g}" in finding.message
    deep = [layer.name for layer in d.layers[-5:]]
    assert set(deep) <= set(finding.layers)
    assert d.layers[0].name not in finding.layers  # the first layer still has its signal
    assert all(name in finding.message or "layers)" in finding.message for name in deep[-2:])
    assert finding.scheme == "he_normal"
    assert "He" in finding.suggestion
    assert d.finding("vanishing_gradients") is not None
    assert d.finding("exploding_signal") is None


def test_he_keeps_the_same_deep_relu_mlp_stable() -> None:
    d = diagnose(mlp(30, 128, "relu", initlab.HeNormal()), batch(), targets=labels())
    kinds = set(d.kinds)
    assert not kinds & {"vanishing_signal", "exploding_signal", "vanishing_gradients", "exploding_gradients"}, kinds
    assert d.signal_factor is not None
    assert 0.9 < d.signal_factor < 1.1
    assert d.signal_ratio is not None
    assert VANISHING_SIGNAL_RATIO < d.signal_ratio < 1 / VANISHING_SIGNAL_RATIO


def test_orthogonal_tanh_is_near_isometric_and_relu_he_is_not() -> None:
    # Pennington et al. 2017: orthogonal weights with gain just above 1 and small pre-activations keep a deep tanh
    # net's Jacobian near an isometry; ReLU (He) spreads its singular values over orders of magnitude.
    x = batch(scale=0.3)
    tanh = diagnose(mlp(20, DIM, "tanh", initlab.Orthogonal(gain=1.05), outputs=DIM), x).jacobian
    relu = diagnose(mlp(20, DIM, "relu", initlab.HeNormal(), outputs=DIM), x).jacobian
    assert tanh is not None
    assert relu is not None
    assert (tanh.outputs, tanh.inputs, tanh.samples) == (DIM, DIM, 8)
    assert tanh.within > 0.6
    assert relu.within < 0.2
    assert 0.3 < tanh.mean_sq < 3.0
    assert tanh.log_std < 1.0
    assert relu.log_std > 3 * tanh.log_std
    assert relu.max > 2 * tanh.max
    # The singular values themselves are kept for the spectrum: all 8 × 64 of them, sorted, matching the summary.
    sv = torch.tensor(tanh.singular_values, dtype=torch.float64)
    assert len(sv) == 8 * DIM
    assert torch.equal(sv, sv.sort().values)
    assert (sv[0].item(), sv[-1].item()) == (tanh.min, tanh.max)
    assert float((sv**2).mean()) == pytest.approx(tanh.mean_sq)


def test_jacobian_singular_values_are_capped_keeping_the_extremes(monkeypatch: pytest.MonkeyPatch) -> None:
    full = diagnose(mlp(2, DIM, "relu", "he_normal", outputs=DIM), batch()).jacobian
    monkeypatch.setattr("initlab.diagnostics.jacobian.JACOBIAN_MAX_SINGULAR_VALUES", 50)
    capped = diagnose(mlp(2, DIM, "relu", "he_normal", outputs=DIM), batch()).jacobian
    assert full is not None
    assert capped is not None
    assert len(full.singular_values) == 8 * DIM
    assert len(capped.singular_values) == 50
    assert capped.singular_values[0] == full.singular_values[0] == full.min
    assert capped.singular_values[-1] == full.singular_values[-1] == full.max
    assert set(capped.singular_values) <= set(full.singular_values)


def test_jacobian_is_skipped_above_the_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("initlab.diagnostics.jacobian.JACOBIAN_MAX_ENTRIES", 100)
    d = diagnose(mlp(1, 16, "relu", "he_normal"), batch())
    assert d.jacobian is None
    assert any("Jacobian skipped" in note and "640" in note for note in d.notes)


def test_dead_units_after_negative_biases() -> None:
    model = mlp(2, 32, "relu", "he_normal")
    with torch.no_grad():
        model[1].bias.fill_(-100.0)  # type: ignore[index,union-attr]
    d = diagnose(model, batch())
    finding = d.finding("dead_units")
    assert finding is not None
    assert finding.severity == "error"
    assert d.layers[0].dead == 1.0
    assert finding.layers[0] == d.layers[0].name


def test_functional_activations_and_convolutions_are_seen() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 8, 3, padding=1)
            self.fc = nn.Linear(8 * 6 * 6, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.tanh(self.conv(x)).flatten(1))

    net = Net()
    initlab.initialize(net, initlab.RandomNormal(stddev=3.0), seed=0)
    x = torch.randn(32, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    d = diagnose(net, x, targets=labels(32))
    assert [layer.name for layer in d.layers] == ["conv", "fc"]
    assert d.layers[0].activation == "tanh"
    assert d.layers[0].units == 8
    assert d.finding("saturation") is not None
    assert d.layers[0].grad_weight_std is not None
    assert d.layers[0].grad_output_std is not None


def test_to_dict_is_json_and_records_everything() -> None:
    d = diagnose(mlp(2, 16, "relu", "zeros"), batch(), targets=labels(), label="zeros")
    record = json.loads(d.to_json())
    assert record == json.loads(json.dumps(d.to_dict(), allow_nan=False))
    assert record["label"] == "zeros"
    assert record["batch"] == 256
    assert record["loss_name"] == "cross_entropy"
    assert len(record["layers"]) == 3
    assert record["layers"][0]["duplicate_rows"] == 15
    assert {"symmetry", "dead_units"} <= {f["kind"] for f in record["findings"]}
    assert record["thresholds"]["tanh_saturation"] == 0.99
    assert record["jacobian"]["mean_sq"] == 0.0
    assert isinstance(d, Diagnosis)
    # Histograms and singular values travel through to_dict: a zero net's outputs are all 0 (one bin of width 1).
    hist = record["layers"][0]["hist"]
    assert len(hist["edges"]) == HISTOGRAM_BINS + 1
    assert sum(hist["counts"]) == 256 * 16
    assert hist["edges"][0] == -0.5
    assert hist["edges"][-1] == 0.5
    assert max(hist["counts"]) == 256 * 16
    assert record["jacobian"]["singular_values"] == [0.0] * (8 * 10)


def test_histograms_count_every_activation_and_gradient() -> None:
    x = batch()
    d = diagnose(mlp(3, 32, "tanh", initlab.RandomNormal(stddev=1.0)), x, targets=labels())
    for layer in d.layers:
        assert layer.hist is not None
        assert layer.grad_hist is not None
        assert len(layer.hist.counts) == HISTOGRAM_BINS
        assert len(layer.hist.edges) == HISTOGRAM_BINS + 1
        assert layer.hist.total == 256 * layer.units
        assert layer.grad_hist.total == 256 * layer.units
        assert layer.hist.nonfinite == 0
    # Saturated tanh units pile up in the outermost bins (Glorot & Bengio 2010, Fig. 2): the first hidden layer
    # (std 1 weights on 64 inputs, pre-activation std about 8) has most of its mass in the two end bins.
    first = d.layers[0].hist
    assert first is not None
    assert (first.counts[0] + first.counts[-1]) / first.total > 0.5
    assert first.edges[0] >= -1.0
    assert first.edges[-1] <= 1.0
    # Without targets there are no gradients, hence no gradient histograms.
    assert all(layer.grad_hist is None for layer in diagnose(mlp(1, 8, "relu", "he_normal"), x).layers)


def test_histogram_skips_non_finite_values() -> None:
    h = histogram(torch.tensor([0.0, 1.0, 2.0, float("inf"), float("nan")]), bins=4)
    assert h is not None
    assert h.counts == (1, 0, 1, 1)
    assert h.edges == (0.0, 0.5, 1.0, 1.5, 2.0)
    assert h.nonfinite == 2
    assert histogram(torch.tensor([float("nan")])) is None


def test_table_and_text() -> None:
    d = diagnose(mlp(2, 16, "tanh", initlab.RandomNormal(stddev=2.0)), batch(), targets=labels(), label="big")
    text = str(d)
    assert "diagnosis of big" in text
    assert "saturation" in text
    assert "→" in text
    assert d.table().row_count == 3


def test_model_state_is_left_as_it_was() -> None:
    model = models.build("keras-mnist", input_shape=(DIM,), num_classes=10)
    initlab.initialize(model, "he_normal", seed=0)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    diagnose(model, batch(), targets=labels())
    assert model.training
    assert all(m.training for m in model.modules())
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(rng, torch.get_rng_state())


def test_wrong_shape_says_what_the_model_expects() -> None:
    model = models.build("keras-mnist", input_shape=(1, 28, 28), num_classes=10)
    with pytest.raises(ValueError, match=r"cannot run on inputs of shape \(256, 20\).*expects float32 inputs.*784"):
        diagnose(model, batch(dim=20))
    conv = models.build("cnn:8", input_shape=(3, 8, 8), num_classes=10)
    with pytest.raises(ValueError, match=r"expects float32 inputs of shape \(batch, 3, H, W\)"):
        diagnose(conv, torch.randn(4, 1, 8, 8))


def test_wrong_dtype_says_what_the_model_expects() -> None:
    model = models.build("keras-mnist", input_shape=(1, 28, 28), num_classes=10)
    with pytest.raises(TypeError, match=r"dtype torch.uint8.*expects float32 inputs.*784.*inputs.to\(torch.float32\)"):
        diagnose(model, torch.zeros(8, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(TypeError, match=r"dtype torch\.float64"):
        diagnose(model, torch.zeros(8, 784, dtype=torch.float64))


def test_bad_batch_and_targets() -> None:
    model = mlp(1, 8, "relu", "he_normal")
    with pytest.raises(ValueError, match="at least 2 samples"):
        diagnose(model, batch(n=1))
    with pytest.raises(ValueError, match=r"targets of shape \(7,\) do not match the batch of 256"):
        diagnose(model, batch(), targets=labels(7))
    with pytest.raises(TypeError, match="inputs must be a tensor"):
        diagnose(model, "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="loss was given without targets"):
        diagnose(model, batch(), loss="mse")
    with pytest.raises(ValueError, match="Did you mean 'mse'"):
        diagnose(model, batch(), targets=labels(), loss="mes")


def test_custom_loss_callable() -> None:
    model = mlp(1, 8, "relu", "he_normal", outputs=1)
    y = torch.randn(256, 1, generator=torch.Generator().manual_seed(3))
    d = diagnose(model, batch(), targets=y, loss=lambda out, t: F.l1_loss(out, t))
    assert d.loss is not None
    assert d.loss > 0
    assert d.layers[0].grad_weight_norm is not None
    assert diagnose(model, batch(), targets=y).loss_name == "mse"


def test_compare_diagnoses_side_by_side() -> None:
    model = models.build("mlp:32,32;act=tanh", input_shape=(DIM,), num_classes=10)
    before = [p.clone() for p in model.parameters()]
    cmp = compare_diagnoses(model, ["zeros", "auto", initlab.RandomNormal(stddev=2.0)], batch(), targets=labels())
    assert isinstance(cmp, Comparison)
    assert len(cmp.diagnoses) == 3
    assert cmp.labels[:2] == ("zeros", "auto")
    assert "symmetry" in cmp["zeros"].kinds
    assert not cmp["auto"].findings
    assert "saturation" in cmp.diagnoses[2].kinds
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    again = compare_diagnoses(
        lambda: models.build("mlp:32,32;act=tanh", input_shape=(DIM,), num_classes=10),
        {"auto": "auto"},
        batch(),
        targets=labels(),
    )
    assert again["auto"].layers == cmp["auto"].layers  # the same seed gives the same initialization
    record = json.loads(cmp.to_json())
    assert record["schemes"][:2] == ["zeros", "auto"]
    assert len(record["diagnoses"]) == 3
    text = str(cmp)
    assert "zeros" in text
    assert "symmetry" in text
    assert "auto" in text


def test_compare_typo_gives_the_closest_scheme() -> None:
    model = mlp(1, 8, "relu", "he_normal")
    with pytest.raises(ValueError, match="Did you mean 'he_normal'"):
        compare_diagnoses(model, ["he_normall"], batch())


def test_keras_mnist_on_real_mnist(mnist_env: Path) -> None:
    ds = initlab.data.load("mnist", split="train")
    x, y = ds.x[:256], ds.y[:256]
    model = models.build("keras-mnist", input_shape=ds.input_shape, num_classes=ds.num_classes)
    initlab.initialize(model, "auto", seed=0, data=x)
    d = diagnose(model, x, targets=y)
    assert [layer.units for layer in d.layers] == [256, 128, 10]
    assert d.jacobian is not None
    assert d.jacobian.inputs == 784
    assert d.jacobian.outputs == 10
    assert not d.findings, d.kinds
    zero = models.build("keras-mnist", input_shape=ds.input_shape, num_classes=ds.num_classes)
    initlab.initialize(zero, "zeros")
    assert "symmetry" in diagnose(zero, x, targets=y).kinds


# -- the report of a diagnosis --------------------------------------------------------------------------------
def evil_comparison() -> Comparison:
    model = mlp(3, 32, "tanh", "glorot_uniform")
    return compare_diagnoses(model, {EVIL: "glorot_uniform", "zeros": "zeros"}, batch(), targets=labels())


def test_diagnosis_report_writes_a_self_contained_page(tmp_path: Path) -> None:
    from initlab.report import build_diagnosis_report

    path = build_diagnosis_report(evil_comparison(), tmp_path / "r", title=f"mlp {EVIL}")
    assert path == tmp_path / "r" / "diagnosis.html"
    pngs = sorted(p.name for p in path.parent.glob("*.png"))
    assert pngs == [
        "activation_histograms.png",
        "depth_profile.png",
        "gradient_histograms.png",
        "jacobian_spectrum.png",
    ]
    page = path.read_text(encoding="utf-8")
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert {base64.b64decode(i) for i in images} == {(path.parent / n).read_bytes() for n in pngs}
    assert "<script" not in page.lower()
    assert not re.search(r'(src|href)="(?!data:)', page)
    # Labels are text, never markup, in the HTML and the Markdown.
    escaped = html.escape(EVIL, quote=True)
    assert EVIL not in page
    assert f"<h1>Diagnosis: mlp {escaped}</h1>" in page
    assert f'<td class="l">{escaped}</td>' in page
    md = (path.parent / "diagnosis.md").read_text(encoding="utf-8")
    assert EVIL not in md
    assert md.startswith("# Diagnosis: mlp &lt;script>")
    # The findings of the zero init are there, with their suggestion.
    assert "symmetry" in page
    assert "Suggestion:" in page
    assert not list(path.parent.glob(".*.tmp"))


def test_diagnosis_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    from _browser import assert_renders_cleanly
    from initlab.report import build_diagnosis_report

    d = diagnose(mlp(2, 32, "relu", "he_normal"), batch(), targets=labels(), label=f"he {EVIL}")
    for result, name in ((d, "one.html"), (evil_comparison(), "two.html")):
        path = build_diagnosis_report(result, tmp_path / name)
        shot = tmp_path / f"{name}.png"
        assert_renders_cleanly(path.resolve().as_uri(), shot, images=4)


def test_diagnosis_report_of_keras_mnist(mnist_env: Path, tmp_path: Path) -> None:
    from initlab.report import build_diagnosis_report

    ds = initlab.data.load("mnist", split="train")
    x, y = ds.x[:256], ds.y[:256]
    model = models.build("keras-mnist", input_shape=ds.input_shape, num_classes=ds.num_classes)
    initlab.initialize(model, "auto", seed=0, data=x)
    d = diagnose(model, x, targets=y, label="keras-mnist / auto on mnist")
    start = time.perf_counter()
    path = build_diagnosis_report(d, tmp_path)
    seconds = time.perf_counter() - start
    print(f"diagnosis report of keras-mnist on 256 MNIST images built in {seconds:.2f} s")  # measured, not asserted
    assert path.is_file()
    assert len(list(tmp_path.glob("*.png"))) == 4
    assert "keras-mnist / auto on mnist" in path.read_text(encoding="utf-8")


def test_diagnosis_report_rejects_other_objects(tmp_path: Path) -> None:
    from initlab.report import build_diagnosis_report

    with pytest.raises(TypeError, match="Diagnosis or a Comparison"):
        build_diagnosis_report({"layers": []}, tmp_path)  # type: ignore[arg-type]


# -- the command line ---------------------------------------------------------------------------------------------
def test_cli_diagnose_digits_zeros() -> None:
    result = runner.invoke(
        app, ["diagnose", "--dataset", "digits", "--model", "mlp:32,32", "--scheme", "zeros"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert "symmetry" in result.output
    assert "diagnosis of mlp:32,32 / zeros on digits" in result.output


def test_cli_diagnose_json() -> None:
    result = runner.invoke(
        app,
        [
            "diagnose",
            "--dataset",
            "digits",
            "--model",
            "mlp:32;act=tanh",
            "--scheme",
            "auto",
            "--batch",
            "64",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["batch"] == 64
    assert len(record["layers"]) == 2
    assert record["findings"] == []
    assert math.isfinite(record["grad_ratio"])


def test_cli_diagnose_side_by_side() -> None:
    result = runner.invoke(
        app,
        ["diagnose", "--dataset", "digits", "--model", "mlp:32", "--scheme", "he_normal,zeros"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "he_normal" in result.output
    assert "zeros" in result.output
    assert "symmetry" in result.output


def test_cli_diagnose_scheme_typo() -> None:
    result = runner.invoke(app, ["diagnose", "--dataset", "digits", "--model", "mlp:8", "--scheme", "glorot_unifrom"])
    assert result.exit_code == 2
    assert "Did you mean 'glorot_uniform'" in result.output


def test_cli_diagnose_defaults_on_mnist(mnist_env: Path) -> None:
    result = runner.invoke(app, ["diagnose", "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    assert record["label"] == "keras-mnist / auto on mnist"
    assert [layer["units"] for layer in record["layers"]] == [256, 128, 10]


def test_cli_diagnose_report(tmp_path: Path) -> None:
    out = tmp_path / "rep"
    args = ["diagnose", "--dataset", "digits", "--model", "mlp:32", "--scheme", "he_normal,zeros", "--batch", "64"]
    result = runner.invoke(app, [*args, "--report", "--out", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == str(out / "diagnosis.html")
    page = (out / "diagnosis.html").read_text(encoding="utf-8")
    assert "mlp:32 on digits, 2 schemes (seed 0)" in page
    # With --json the path goes to stderr, so stdout stays one JSON document.
    as_json = runner.invoke(app, [*args, "--json", "--report", "--out", str(tmp_path / "j.html")])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["schemes"] == ["he_normal", "zeros"]
    assert as_json.stderr.strip() == str(tmp_path / "j.html")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False, width=32), min_size=1, max_size=300),
    st.sampled_from([torch.float32, torch.float64]),
    st.integers(1, 64),
    st.integers(0, 3),
)
def test_histogram_counts_equal_torch_histc(values: list[float], dtype: torch.dtype, bins: int, decimals: int) -> None:
    """The histogram's counts are torch.histc's to the last count: also with ties on bin edges (values rounded to a
    few decimals), a single repeated value, and the maximum in the last bin."""
    x = torch.tensor(values, dtype=dtype).round(decimals=decimals)
    hist = histogram(x, bins=bins)
    assert hist is not None
    lo, hi = hist.edges[0], hist.edges[-1]
    expected = torch.histc(x, bins=bins, min=lo, max=hi).round().long().tolist()
    assert list(hist.counts) == expected
    assert hist.total == x.numel()
