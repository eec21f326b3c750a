"""``initlab.audit`` and ``initlab audit``: the statistical test and its threshold, every finding on a model broken on
purpose, torch's default table, every scheme against its own audit, the bad inputs, JSON, and the HTML page in
headless Chromium."""

from __future__ import annotations

import json
import math
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from typer.testing import CliRunner, Result

import initlab
from _browser import Chromium, off_machine
from initlab import models
from initlab.auditing import FINDING_KINDS, THRESHOLDS, Audit, audit
from initlab.auditing._stats import (
    SIGNIFICANCE,
    Measurement,
    closest_rule,
    fan_rules,
    find_duplicates,
    measure,
    std_mismatch,
    variance_p_value,
)
from initlab.catalog import get
from initlab.cli import app
from initlab.fans import Fans

ENV = {"COLUMNS": "250"}
MLP = "mlp:64,64"
MLP_SHAPE = (784,)


def run(*args: str) -> Result:
    return CliRunner().invoke(app, ["audit", *args], env=ENV)


def said(result: Result) -> str:
    """The command's output as one line (the error console wraps long messages)."""
    return " ".join(result.output.split())


def mlp(seed: int = 0) -> nn.Sequential:
    """Flatten, Linear(784, 64), ReLU, Linear(64, 64), ReLU, Linear(64, 10) at torch's defaults."""
    torch.manual_seed(seed)
    return models.build(MLP, input_shape=MLP_SHAPE, num_classes=10)  # type: ignore[return-value]


def save(model: nn.Module, path: Path) -> Path:
    torch.save(model.state_dict(), path)
    return path


# -- the statistical test ----------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    fan_in=st.integers(4, 600),
    fan_out=st.integers(4, 300),
    seed=st.integers(0, 2**31 - 1),
    name=st.sampled_from(["he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "lecun_normal", "orthogonal"]),
)
def test_a_tensor_drawn_from_the_rule_passes_for_any_fans_and_seed(
    fan_in: int, fan_out: int, seed: int, name: str
) -> None:
    layer = nn.Linear(fan_in, fan_out)
    initlab.initialize(layer, name, seed=seed)
    result = audit(layer, name)
    assert result.findings == [], result.findings
    assert result["weight"].fan_in == fan_in
    assert result["weight"].fan_out == fan_out


@settings(max_examples=40, deadline=None)
@given(fan_in=st.integers(4, 600), fan_out=st.integers(4, 300), seed=st.integers(0, 2**31 - 1))
def test_torch_defaults_pass_their_own_audit_for_any_fans_and_seed(fan_in: int, fan_out: int, seed: int) -> None:
    torch.manual_seed(seed)
    result = audit(nn.Sequential(nn.Linear(fan_in, fan_out), nn.ReLU(), nn.Linear(fan_out, fan_in)))
    assert result.findings == []
    assert result["0.weight"].expected_std == pytest.approx(1.0 / math.sqrt(3.0 * fan_in))  # kaiming_uniform(a=√5)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1024, 20_000), factor=st.sampled_from([0.5, 0.7, 1.41, 2.0]), seed=st.integers(0, 2**31 - 1))
def test_a_std_off_by_more_than_the_threshold_is_caught(n: int, factor: float, seed: int) -> None:
    values = torch.randn(n, generator=torch.Generator().manual_seed(seed)) * 0.1 * factor
    assert std_mismatch(measure(values), 0.1, significance=SIGNIFICANCE, min_deviation=0.2)


def test_the_variance_test_is_chi_square_and_the_minimum_deviation_spares_huge_tensors() -> None:
    # n·s²/σ² ~ χ²(n−1): at s = σ the statistic sits at the median and p is near 1.
    m = Measurement(n=10_001, nonfinite=0, mean=0.0, std=1.0, min=-4.0, max=4.0, kurtosis=0.0)
    assert variance_p_value(m, 1.0) > 0.9
    # 5% off on four million values: overwhelming significance, yet below the 20% that counts.
    big = Measurement(n=4_000_000, nonfinite=0, mean=0.0, std=1.05, min=-5.0, max=5.0, kurtosis=0.0)
    assert variance_p_value(big, 1.0) < 1e-100
    assert not std_mismatch(big, 1.0, significance=SIGNIFICANCE, min_deviation=0.2)
    assert std_mismatch(big, 1.0, significance=SIGNIFICANCE, min_deviation=0.01)
    # Few values: even a large deviation is not significant.
    few = Measurement(n=5, nonfinite=0, mean=0.0, std=1.6, min=-2.0, max=2.0, kurtosis=0.0)
    assert not std_mismatch(few, 1.0, significance=SIGNIFICANCE, min_deviation=0.2)
    assert THRESHOLDS["significance"] == SIGNIFICANCE == 1e-6


def test_uniform_for_normal_is_a_shape_mismatch_not_a_std_mismatch() -> None:
    layer = nn.Linear(256, 256)
    initlab.initialize(layer, "he_uniform", seed=0)  # same variance as he_normal, other shape
    result = audit(layer, "he_normal")
    assert result.kinds() == {"family_mismatch"}
    assert result.findings[0].severity == "warning"
    assert "kurtosis" in result.findings[0].message


@settings(max_examples=30, deadline=None)
@given(rows=st.integers(2, 64), cols=st.integers(4, 64), seed=st.integers(0, 2**31 - 1))
def test_duplicates_are_never_found_in_a_draw_and_always_after_a_copy(rows: int, cols: int, seed: int) -> None:
    w = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed))
    assert find_duplicates(w, 0) is None
    assert find_duplicates(w, 1) is None
    w[rows - 1] = w[0]
    found = find_duplicates(w, 0)
    assert found is not None
    assert (found.first, found.second, found.copies) == (0, rows - 1, 1)


def test_fan_based_rules_and_the_closest_one() -> None:
    fans = Fans(100, 400)
    fit = closest_rule(math.sqrt(2.0 / 100), fan_rules(fans))
    assert fit is not None
    assert fit.rule.startswith("He √2/√fan_in")
    assert fit.ratio == pytest.approx(1.0)
    assert fit.fits
    far = closest_rule(1.0, fan_rules(fans))
    assert far is not None
    assert not far.fits
    depth = fan_rules(fans, declared=("N(0, 0.02)", 0.02), depth=4)
    assert ("declared N(0, 0.02), /√4 for depth", pytest.approx(0.01)) in depth


# -- healthy models pass -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "shape"),
    [(MLP, MLP_SHAPE), ("cnn:8,16;head=32", (1, 28, 28)), ("cnn:8,16;norm=batch", (1, 28, 28)),
     ("mlp:32,32;norm=layer;act=tanh", (20,)), ("cnn1d:8,8;norm=layer", (1, 40))],
)  # fmt: skip
def test_a_freshly_built_spec_model_passes(spec: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    result = audit(models.build(spec, input_shape=shape, num_classes=10))
    assert result.findings == [], result.findings
    assert result.exit_code() == 0
    assert result.exit_code(strict=True) == 0


def test_the_command_passes_a_healthy_spec_and_states_its_thresholds() -> None:
    result = run("--model", MLP, "--input-shape", "784")
    assert result.exit_code == 0, result.output
    assert "PASS" in said(result)
    assert "No findings." in said(result)
    for column in ("parameter", "role", "shape", "fans in→out", "784→64", "mean", "std", "min", "max"):
        assert column in said(result)
    assert "p < 1e-06" in said(result)
    assert "20%" in said(result)
    assert "χ²(n−1)" in said(result)
    cnn = run("--model", "cnn:8,16;head=32")  # the default input shape 1,28,28 and 10 classes
    assert cnn.exit_code == 0, cnn.output


def test_he_normal_passes_its_own_audit_from_python_and_from_a_weights_file(tmp_path: Path) -> None:
    model = mlp()
    initlab.initialize(model, "he_normal", seed=3)
    assert audit(model, "he_normal").findings == []
    weights = save(model, tmp_path / "he.pt")
    result = run("--model", MLP, "--input-shape", "784", "--weights", str(weights), "--scheme", "he_normal")
    assert result.exit_code == 0, result.output
    # Against torch's defaults the He weights are "not torch's default, but a fan-based rule": warnings, exit 0.
    against_torch = audit(model)
    assert against_torch.ok
    assert {f.kind for f in against_torch.warnings} == {"std_mismatch"}
    assert all("He √2/√fan_in" in f.message for f in against_torch.warnings)
    # Against another scheme the caller named, the same weights are an error.
    other = audit(model, "lecun_normal")
    assert not other.ok
    assert {f.kind for f in other.errors} == {"std_mismatch"}
    assert (
        run("--model", MLP, "--input-shape", "784", "--weights", str(weights), "--scheme", "glorot_uniform").exit_code
        == 1
    )


# -- models broken on purpose ------------------------------------------------------------------------------------
def _zero_hidden(m: nn.Sequential) -> str:
    m[3].weight.zero_()
    return "3.weight"


def _wrong_std(m: nn.Sequential) -> str:
    m[3].weight.normal_(0.0, 1.0)  # torch's default is U(±1/√64), std 0.072
    return "3.weight"


def _copied_row(m: nn.Sequential) -> str:
    m[1].weight[7] = m[1].weight[2]
    return "1.weight"


def _copied_column(m: nn.Sequential) -> str:
    m[3].weight[:, 5] = m[3].weight[:, 1]
    return "3.weight"


def _nan(m: nn.Sequential) -> str:
    m[1].weight[0, 0] = float("nan")
    return "1.weight"


def _inf(m: nn.Sequential) -> str:
    m[5].bias[3] = float("inf")
    return "5.bias"


def _constant_hidden(m: nn.Sequential) -> str:
    m[1].weight.fill_(0.01)
    return "1.weight"


BROKEN: dict[str, tuple[Callable[[nn.Sequential], str], str, str]] = {
    "zeroed hidden layer": (_zero_hidden, "all_zero", "error"),
    "wrong std": (_wrong_std, "std_mismatch", "error"),
    "copied row": (_copied_row, "duplicate_units", "error"),
    "copied column": (_copied_column, "duplicate_units", "error"),
    "NaN": (_nan, "non_finite", "error"),
    "infinity": (_inf, "non_finite", "error"),
    "constant hidden layer": (_constant_hidden, "constant", "error"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_each_break_is_flagged_and_the_command_exits_1(case: str, tmp_path: Path) -> None:
    breaker, kind, severity = BROKEN[case]
    model = mlp()
    with torch.no_grad():
        key = breaker(model)
    result = audit(model)
    assert [(f.kind, f.severity, f.parameters) for f in result.errors] == [(kind, severity, (key,))]
    assert result[key].severity == "error"
    assert result.exit_code() == 1
    cli = run("--model", MLP, "--input-shape", "784", "--weights", str(save(model, tmp_path / "w.pt")))
    assert cli.exit_code == 1, cli.output
    assert "FAIL" in said(cli)
    assert kind in said(cli)


def test_messages_name_what_is_wrong() -> None:
    model = mlp()
    with torch.no_grad():
        _copied_row(model)
        _wrong_std(model)
    messages = {f.kind: f.message for f in audit(model).findings}
    assert "output units (incoming weights) 2 and 7 are identical" in messages["duplicate_units"]
    assert "far from every fan-based rule" in messages["std_mismatch"]
    assert "ratio 13." in messages["std_mismatch"]


def test_a_zero_head_where_a_random_one_is_expected_is_an_error(tmp_path: Path) -> None:
    model = mlp()
    with torch.no_grad():
        model[5].weight.zero_()
    result = audit(model)
    assert not result.ok
    assert [(f.kind, f.parameters) for f in result.errors] == [("all_zero", ("5.weight",))]
    assert result["5.weight"].position == "head"
    assert "muP" in result.errors[0].message
    weights = save(model, tmp_path / "head.pt")
    assert run("--model", MLP, "--input-shape", "784", "--weights", str(weights)).exit_code == 1


def test_a_scheme_that_zeros_the_weights_is_still_an_error() -> None:
    model = mlp()
    initlab.initialize(model, "zeros")
    result = audit(model, "zeros")
    assert {(f.kind, f.parameters[0]) for f in result.errors} == {("all_zero", "1.weight"), ("all_zero", "3.weight")}
    assert all("as biases → Zeros()" not in f.message and "prescribes" in f.message for f in result.errors)


def test_constants_other_than_the_reference_are_value_mismatches() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(32, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 4))
    with torch.no_grad():
        model[1].weight.fill_(0.5)
    assert [(f.kind, f.severity) for f in audit(model).findings] == [("value_mismatch", "warning")]
    initlab.initialize(model, "he_normal", seed=0)
    with torch.no_grad():
        model[1].bias.normal_()
    found = audit(model, "he_normal").findings
    assert [(f.kind, f.severity, f.parameters) for f in found] == [("value_mismatch", "error", ("1.bias",))]
    assert "sets the constant 0" in found[0].message


# -- torch's defaults and every scheme ---------------------------------------------------------------------------
class Zoo(nn.Module):
    """One of every layer type with a torch default (forward only for the 'auto' scheme's trace)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 16, padding_idx=0)
        self.conv = nn.Conv2d(4, 8, 3, groups=2)
        self.deconv = nn.ConvTranspose2d(8, 6, 3, groups=2)
        self.bn = nn.BatchNorm2d(6)
        self.lstm = nn.LSTM(16, 24, batch_first=True)
        self.gru = nn.GRUCell(16, 12)
        self.attn = nn.MultiheadAttention(16, 4, add_bias_kv=True)
        self.kv_attn = nn.MultiheadAttention(16, 2, kdim=10, vdim=12)
        self.bilinear = nn.Bilinear(8, 6, 5)
        self.norm = nn.LayerNorm(16)
        self.prelu = nn.PReLU()
        self.fc = nn.Linear(24, 10)


def test_torch_defaults_are_exact_for_every_layer_type() -> None:
    for seed in range(3):
        torch.manual_seed(seed)
        result = audit(Zoo())
        assert result.findings == [], result.findings
    row = result["attn.in_proj_weight[q]"]
    assert row.expected_std == pytest.approx(math.sqrt(2.0 / (16 + 48)))  # Xavier over the packed (48, 16) matrix
    assert result["deconv.weight"].expected_std == pytest.approx(1.0 / math.sqrt(3 * 3 * 3 * 3))  # torch's fan_in
    assert result["emb.weight"].n == 49 * 16  # the padding row is left out
    assert result["attn.out_proj.bias"].expected_std == 0.0


def test_a_transformer_gets_xavier_everywhere() -> None:
    torch.manual_seed(0)
    model = nn.Transformer(16, 2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=32, batch_first=True)
    result = audit(model)
    assert result.findings == []
    assert "Transformer._reset_parameters" in (result["encoder.layers.0.linear1.weight"].expected or "")


@pytest.mark.parametrize("scheme", ["he_normal", "glorot_uniform", "lecun_uniform", "orthogonal", "keras", "auto",
                                    "torch", "variance_scaling"])  # fmt: skip
def test_every_scheme_passes_its_own_audit(scheme: str) -> None:
    model = Zoo()
    initlab.initialize(model, scheme, seed=1)
    result = audit(model, scheme)
    assert result.findings == [], result.findings


def test_a_scheme_config_and_object_are_accepted() -> None:
    model = mlp()
    init = get({"class_name": "RandomNormal", "config": {"stddev": 0.01}})
    initlab.initialize(model, init, seed=0)
    assert audit(model, init).findings == []
    assert audit(model, {"class_name": "RandomNormal", "config": {"stddev": 0.01}}).findings == []
    wrong = audit(model, {"class_name": "RandomNormal", "config": {"stddev": 0.05}})
    assert {f.kind for f in wrong.errors} == {"std_mismatch"}


# -- what is suspicious on its own -------------------------------------------------------------------------------
class Custom(nn.Module):
    def __init__(self, std: float) -> None:
        super().__init__()
        self.mix = nn.Parameter(torch.randn(64, 32) * std)
        self.gate = nn.Parameter(torch.ones(32))
        self.out = nn.Linear(32, 4)


def test_parameters_no_rule_covers_are_listed_and_judged_by_the_fan_rules() -> None:
    torch.manual_seed(0)
    sane = audit(Custom(1 / math.sqrt(32)))
    assert [(f.kind, f.severity, f.parameters) for f in sane.findings] == [("uncovered", "info", ("mix", "gate"))]
    torch.manual_seed(0)
    wild = audit(Custom(10.0))
    assert {(f.kind, f.severity) for f in wild.findings} == {("off_rule", "warning"), ("uncovered", "info")}
    torch.manual_seed(0)
    model = Custom(1 / math.sqrt(32))
    with pytest.warns(initlab.UncoveredParameterWarning):
        initlab.initialize(model, "he_normal", seed=0)
    named = audit(model, "he_normal")
    assert [(f.kind, f.severity) for f in named.findings] == [("uncovered", "warning")]
    assert "initialize would leave them as they are" in named.findings[0].message


def test_tied_weights_are_reported_once_as_info() -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(40, 16)
            self.body = nn.Linear(16, 16)
            self.head = nn.Linear(16, 40, bias=False)
            self.head.weight = self.emb.weight

    torch.manual_seed(0)
    result = audit(Tied())
    assert [(f.kind, f.severity, f.parameters) for f in result.findings] == [
        ("tied", "info", ("emb.weight", "head.weight"))
    ]
    assert result["emb.weight"].tied_to == ("head.weight",)
    assert len(result.parameters) == 3


def _pre_norm_encoder(layers: int, norm_first: bool = True) -> nn.TransformerEncoder:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 4, dim_feedforward=64, norm_first=norm_first)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


def test_residual_projections_of_a_pre_norm_torch_encoder() -> None:
    model = _pre_norm_encoder(3)
    plain = audit(model)
    not_scaled = [f for f in plain.findings if f.kind == "residual_not_scaled"]
    assert len(not_scaled) == 6
    assert all(f.severity == "warning" for f in not_scaled)
    assert {f.parameters[0].rsplit(".", 2)[-2] for f in not_scaled} == {"out_proj", "linear2"}
    assert plain.ok
    with torch.no_grad():
        for layer in model.layers:
            layer.self_attn.out_proj.weight.div_(math.sqrt(6))
            layer.linear2.weight.div_(math.sqrt(6))
    scaled = audit(model)
    kinds = {f.kind for f in scaled.findings}
    assert kinds == {"residual_scaled"}
    assert all("1/√6" in f.message for f in scaled.findings)
    assert scaled.findings[0].figures["depth"] == 6
    assert not any(f.kind.startswith("residual") for f in audit(_pre_norm_encoder(3, norm_first=False)).findings)


# -- bad input ---------------------------------------------------------------------------------------------------
def test_bad_models_say_what_is_wrong() -> None:
    spec = run("--model", "resnet18")
    assert spec.exit_code == 2
    assert "bad model spec 'resnet18': unknown kind" in said(spec)
    missing = run("--model", "no_such_pkg.nets:build")
    assert missing.exit_code == 2
    assert "cannot import 'no_such_pkg.nets'" in said(missing)
    attribute = run("--model", "json:no_such_factory")
    assert attribute.exit_code == 2
    assert "'json' has no attribute 'no_such_factory'" in said(attribute)
    shape = run("--model", MLP, "--input-shape", "28,x")
    assert shape.exit_code == 2
    assert "--input-shape '28,x' is not a shape" in said(shape)


def test_bad_weights_files_say_what_is_wrong(tmp_path: Path) -> None:
    base = ("--model", MLP, "--input-shape", "784", "--weights")
    absent = run(*base, str(tmp_path / "nothing.pt"))
    assert absent.exit_code == 2
    assert "nothing.pt: no such file" in said(absent)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"certainly not a torch file")
    result = run(*base, str(junk))
    assert result.exit_code == 2
    assert "is not a state dict saved with torch.save" in said(result)
    listed = tmp_path / "list.pt"
    torch.save([torch.zeros(3)], listed)
    result = run(*base, str(listed))
    assert result.exit_code == 2
    assert "holds a list that is not a state dict" in said(result)
    checkpoint = tmp_path / "ckpt.pt"
    torch.save({"model": mlp().state_dict(), "epoch": 3}, checkpoint)
    result = run(*base, str(checkpoint))
    assert result.exit_code == 2
    assert "['model']" in said(result)
    assert "save the model's own state dict" in said(result)
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(Custom, protocol=2))  # weights_only=True refuses to import a class
    result = run(*base, str(evil))
    assert result.exit_code == 2
    assert "is not a state dict saved with torch.save" in said(result)


def test_weights_that_do_not_fit_name_the_key_and_the_shape(tmp_path: Path) -> None:
    base = ("--model", MLP, "--input-shape", "784", "--weights")
    state = mlp().state_dict()
    del state["3.bias"]
    state["extra.weight"] = torch.zeros(2)
    result = run(*base, str(_save_state(state, tmp_path / "keys.pt")))
    assert result.exit_code == 2
    assert "missing key '3.bias'" in said(result)
    assert "unexpected key 'extra.weight'" in said(result)
    torch.manual_seed(0)
    wider = models.build("mlp:64,128", input_shape=MLP_SHAPE, num_classes=10).state_dict()
    result = run(*base, str(_save_state(wider, tmp_path / "shapes.pt")))
    assert result.exit_code == 2
    assert "'3.weight' has shape (128, 64) in the file but (64, 64) in the model" in said(result)


def _save_state(state: dict[str, torch.Tensor], path: Path) -> Path:
    torch.save(state, path)
    return path


def test_bad_schemes_formats_and_outputs_say_what_is_wrong(tmp_path: Path) -> None:
    scheme = run("--model", MLP, "--scheme", "he_normall")
    assert scheme.exit_code == 2
    assert "unknown scheme 'he_normall'" in said(scheme)
    assert "'he_normal'" in said(scheme)
    fmt = run("--model", MLP, "--format", "htm")
    assert fmt.exit_code == 2
    assert "--format='htm' is not allowed" in said(fmt)
    assert "Did you mean 'html'?" in said(fmt)
    out = run("--model", MLP, "--out", str(tmp_path / "a.txt"))
    assert out.exit_code == 2
    assert "--out is for --format json or html" in said(out)
    lsuv = run("--model", MLP, "--scheme", "lsuv")
    assert lsuv.exit_code == 2
    assert "'lsuv' scheme rescales each layer" in said(lsuv)
    critical = run("--model", MLP, "--scheme", "critical")
    assert critical.exit_code == 2
    assert "'critical' scheme is not supported" in said(critical)


def test_bad_library_arguments_raise() -> None:
    with pytest.raises(TypeError, match=r"audit takes a torch\.nn\.Module, got str"):
        audit("mlp:64")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"significance must be in \(0, 1\)"):
        audit(nn.Linear(2, 2), significance=1.5)
    with pytest.raises(ValueError, match="min_deviation must be >= 0"):
        audit(nn.Linear(2, 2), min_deviation=-0.1)
    with pytest.raises(KeyError, match="Did you mean 'weight'"):
        audit(nn.Linear(2, 2))["weigth"]


# -- JSON and HTML -----------------------------------------------------------------------------------------------
def test_json_is_strict_and_complete(tmp_path: Path) -> None:
    model = mlp()
    with torch.no_grad():
        _nan(model)
    weights = save(model, tmp_path / "nan.pt")
    result = run("--model", MLP, "--input-shape", "784", "--weights", str(weights), "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert data["counts"] == {"error": 1, "warning": 0, "info": 0}
    assert data["findings"][0]["kind"] == "non_finite"
    assert data["findings"][0]["parameters"] == ["1.weight"]
    assert data["thresholds"]["significance"] == 1e-6
    assert len(data["method"]) == 6
    rows = {r["key"]: r for r in data["parameters"]}
    assert rows["1.weight"]["nonfinite"] == 1
    assert rows["1.weight"]["shape"] == [64, 784]
    assert set(data["findings"][0]) == {"kind", "severity", "parameters", "message", "figures"}
    assert {f["kind"] for f in data["findings"]} <= set(FINDING_KINDS)
    out = tmp_path / "audit.json"
    written = run("--model", MLP, "--input-shape", "784", "--format", "json", "--out", str(out))
    assert written.exit_code == 0
    assert written.output.strip() == str(out)
    assert json.loads(out.read_text())["ok"] is True


def _broken_page(tmp_path: Path) -> Path:
    class Evil(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = mlp()
            self.add_module("<b>x</b>", nn.Linear(4, 4))

    torch.manual_seed(0)
    model = Evil()
    with torch.no_grad():
        _copied_row(model.body)
        model.body[5].weight.zero_()
    return audit(model).save_html(tmp_path / "audit.html", title="audit <script>alert(1)</script>")


def test_the_page_escapes_every_name(tmp_path: Path) -> None:
    page = _broken_page(tmp_path).read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert "<b>x" not in page
    assert "&lt;b&gt;x&lt;/b&gt;.weight" in page
    assert "audit &lt;script&gt;" in page
    assert "http://" not in page
    assert "https://" not in page
    assert "url(" not in page


def test_the_command_writes_the_page(tmp_path: Path) -> None:
    out = tmp_path / "page.html"
    result = run("--model", MLP, "--input-shape", "784", "--format", "html", "--out", str(out))
    assert result.exit_code == 0
    assert result.output.strip() == str(out)
    assert "No findings." in out.read_text(encoding="utf-8")


_VISIBLE = """Array.from(document.querySelectorAll('#findings li, #parameters tbody tr')).map(e => {
    const r = e.getBoundingClientRect(); const s = getComputedStyle(e);
    return {tag: e.tagName, text: e.innerText, shown: r.width > 0 && r.height > 0 && s.visibility === 'visible'
            && s.display !== 'none'}; })"""


def test_the_page_renders_in_headless_chromium_with_its_findings_visible(tmp_path: Path) -> None:
    import shutil
    import tempfile
    import time

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium)")
    page = _broken_page(tmp_path)
    with tempfile.TemporaryDirectory(prefix="initlab-chromium-") as profile:
        browser = Chromium(binary, Path(profile))
        try:
            target = browser.send("Target.createTarget", url="about:blank")["targetId"]
            session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                browser.send(f"{domain}.enable", session)
            browser.events.clear()
            browser.send("Page.navigate", session, url=page.resolve().as_uri())
            browser.wait_event("Page.loadEventFired")
            time.sleep(0.3)
            shown = browser.send("Runtime.evaluate", session, returnByValue=True, expression=_VISIBLE)["result"][
                "value"
            ]
            events = list(browser.events)
        finally:
            browser.close()
    errors = [e for e in events if e["method"] == "Runtime.exceptionThrown"]
    errors += [e for e in events if e["method"] == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"]
    errors += [e for e in events if e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] == "error"]
    assert errors == []
    assert (
        off_machine([e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]) == []
    )
    findings = [s for s in shown if s["tag"] == "LI"]
    rows = [s for s in shown if s["tag"] == "TR"]
    assert len(rows) == 8
    assert all(s["shown"] for s in shown)
    texts = " ".join(s["text"] for s in findings)
    assert "duplicate_units" in texts
    assert "all_zero" in texts
    assert "ERROR" in texts.upper()


def test_audit_prints_as_text_and_never_prints_itself(capsys: pytest.CaptureFixture[str]) -> None:
    result = audit(mlp())
    assert capsys.readouterr().out == ""
    text = str(result)
    assert isinstance(result, Audit)
    assert "PASS" in text
    assert "1.weight" in text
    assert "torch defaults (no scheme given)" in result.summary()
