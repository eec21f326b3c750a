"""``initialize`` and ``audit`` on models built outside initlab: Hugging Face's GPT-2 and ResNet built from configs
(no download), and torchvision's and timm's ResNets where those import.

GPT-2 draws every matrix from N(0, initializer_range) and its residual output projections (``attn.c_proj`` and
``mlp.c_proj``) from N(0, initializer_range/√(2·n_layer)) (``GPT2PreTrainedModel._init_weights``; Radford et al.
2019, §2.3); its ``Conv1D`` stores weights ``(in, out)``; its ``lm_head`` is tied to the token embedding.
"""

from __future__ import annotations

import math
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import initlab
from initlab.auditing import audit
from initlab.catalog import HeNormal
from initlab.cli import app
from initlab.schemes import Rule, Scheme

transformers = pytest.importorskip("transformers")

CONV1D = "transformers.pytorch_utils:Conv1D"


def gpt2(n_layer: int = 4, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    config = transformers.GPT2Config(
        n_layer=n_layer, n_embd=64, n_head=4, vocab_size=100, n_positions=32, bos_token_id=0, eos_token_id=0
    )
    return transformers.GPT2LMHeadModel(config)


def hf_resnet(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    config = transformers.ResNetConfig(
        num_channels=3, embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], layer_type="basic", num_labels=10
    )
    return transformers.ResNetForImageClassification(config)


def c_projs(model: nn.Module) -> list[str]:
    return [
        f"transformer.h.{i}.{part}.c_proj.weight" for i in range(len(model.transformer.h)) for part in ("attn", "mlp")
    ]


@pytest.fixture(scope="module")
def fresh_gpt2() -> nn.Module:
    return gpt2()


# -- GPT-2 -------------------------------------------------------------------------------------------------------
def test_gpt2_residual_projections_are_recognised_as_scaled_for_depth(fresh_gpt2: nn.Module) -> None:
    result = audit(fresh_gpt2)
    assert result.errors == []
    assert result.warnings == []
    scaled = [f for f in result.findings if f.kind == "residual_scaled"]
    assert sorted(f.parameters[0] for f in scaled) == sorted(c_projs(fresh_gpt2))
    for f in scaled:
        assert f.severity == "info"
        assert "scaled for depth by 1/√8" in f.message
        assert f.figures["depth"] == 8
        assert f.figures["base_std"] == 0.02
        assert f.figures["factor"] == pytest.approx(1 / math.sqrt(8), rel=0.1)
    row = result["transformer.h.0.attn.c_proj.weight"]
    assert row.position == "residual"
    assert "1/√8" in (row.residual or "")


@pytest.mark.parametrize("n_layer", [1, 2, 6])
def test_the_depth_factor_follows_the_number_of_layers(n_layer: int) -> None:
    result = audit(gpt2(n_layer))
    scaled = [f for f in result.findings if f.kind == "residual_scaled"]
    assert len(scaled) == 2 * n_layer
    assert all(f.figures["depth"] == 2 * n_layer for f in scaled)
    assert all(f"1/√{2 * n_layer}" in f.message for f in scaled)
    assert result.ok


def test_gpt2_unscaled_residual_projections_are_flagged() -> None:
    model = gpt2()
    with torch.no_grad():
        for name in c_projs(model):
            model.get_parameter(name).normal_(0.0, 0.02)  # the base std, without GPT-2's 1/√(2·n_layer)
    result = audit(model)
    flagged = [f for f in result.findings if f.kind == "residual_not_scaled"]
    assert sorted(f.parameters[0] for f in flagged) == sorted(c_projs(model))
    assert all(f.severity == "warning" and "residual projection not scaled for depth" in f.message for f in flagged)
    assert all("1/√8 = 0.354" in f.message for f in flagged)
    assert result.exit_code() == 0
    assert result.exit_code(strict=True) == 1


def test_gpt2_conv1d_fans_are_read_in_out(fresh_gpt2: nn.Module) -> None:
    result = audit(fresh_gpt2)
    attn = result["transformer.h.0.attn.c_attn.weight"]  # Conv1D(nf=192, nx=64): weight (64, 192)
    assert (attn.shape, attn.fan_in, attn.fan_out) == ((64, 192), 64, 192)
    mlp_out = result["transformer.h.0.mlp.c_proj.weight"]  # Conv1D(nf=64, nx=256): weight (256, 64)
    assert (mlp_out.shape, mlp_out.fan_in, mlp_out.fan_out) == ((256, 64), 256, 64)


def test_a_conv1d_scheme_rule_is_checked_at_fan_in_shape_0() -> None:
    scheme = Scheme([Rule("he_normal", module=CONV1D, param="weight")], base="he_normal")
    model = gpt2()
    w = model.get_parameter("transformer.h.0.mlp.c_fc.weight")  # (in 64, out 256)
    HeNormal().fill_(w, seed=0, layout="keras")  # variance 2/64: the right fan-in
    right = audit(model, scheme)["transformer.h.0.mlp.c_fc.weight"]
    assert right.expected_std == pytest.approx(math.sqrt(2 / 64))
    assert right.severity is None
    HeNormal().fill_(w, seed=0, layout="torch")  # variance 2/256: shape[1] read as the fan-in
    wrong = audit(model, scheme).findings_for("transformer.h.0.mlp.c_fc.weight")
    assert [(f.kind, f.severity) for f in wrong] == [("std_mismatch", "error")]


def test_gpt2_lm_head_is_reported_as_tied_not_as_an_error(fresh_gpt2: nn.Module) -> None:
    result = audit(fresh_gpt2)
    tied = [f for f in result.findings if f.kind == "tied"]
    assert [(f.severity, f.parameters) for f in tied] == [("info", ("transformer.wte.weight", "lm_head.weight"))]
    assert result["transformer.wte.weight"].tied_to == ("lm_head.weight",)
    assert all(r.key != "lm_head.weight" for r in result.parameters)


def test_gpt2_embeddings_match_the_models_declared_std(fresh_gpt2: nn.Module) -> None:
    result = audit(fresh_gpt2)
    found = result.findings_for("transformer.wte.weight")
    assert ("std_mismatch", "info") in [(f.kind, f.severity) for f in found]
    assert any("config.initializer_range=0.02" in f.message for f in found)


def test_a_broken_gpt2_exits_non_zero() -> None:
    model = gpt2()
    with torch.no_grad():
        w = model.get_parameter("transformer.h.1.attn.c_attn.weight")  # (in, out): output units are columns
        w[:, 9] = w[:, 4]
        model.get_parameter("transformer.wpe.weight")[3, 3] = float("nan")
    result = audit(model)
    errors = {(f.kind, f.parameters[0]) for f in result.errors}
    assert errors == {
        ("duplicate_units", "transformer.h.1.attn.c_attn.weight"),
        ("non_finite", "transformer.wpe.weight"),
    }
    assert "output units (incoming weights) 4 and 9" in result.errors[0].message or any(
        "output units (incoming weights) 4 and 9" in f.message for f in result.errors
    )


def test_initialize_works_on_gpt2_and_passes_its_own_audit() -> None:
    model = gpt2()
    with warnings.catch_warnings():
        warnings.simplefilter("error", initlab.UncoveredParameterWarning)  # every parameter has a role
        report = initlab.initialize(model, "he_normal", seed=0)
    assert report["transformer.wte.weight"].std == pytest.approx(math.sqrt(2 / 64), rel=0.1)
    # Conv1D stores (in, out): He's fan-in is shape[0], 64 for c_fc and 256 for the MLP's c_proj.
    c_fc = model.get_parameter("transformer.h.0.mlp.c_fc.weight")
    c_proj = model.get_parameter("transformer.h.0.mlp.c_proj.weight")
    assert c_fc.shape == (64, 256)
    assert float(c_fc.std()) == pytest.approx(math.sqrt(2 / 64), rel=0.05)
    assert float(c_proj.std()) == pytest.approx(math.sqrt(2 / 256), rel=0.05)
    result = audit(model, "he_normal")
    assert result.ok, result.errors
    # He's std is not scaled for depth, and the audit says so of every residual projection.
    kinds = {f.kind for f in result.findings}
    assert kinds == {"tied", "residual_not_scaled"}, result.findings


def test_the_command_audits_gpt2_through_a_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "gpt2_factory.py").write_text(
        textwrap.dedent("""
        from transformers import GPT2Config, GPT2LMHeadModel

        def build(input_shape, num_classes):
            config = GPT2Config(n_layer=4, n_embd=64, n_head=4, vocab_size=100, n_positions=32, bos_token_id=0,
                                eos_token_id=0)
            return GPT2LMHeadModel(config)
    """)
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "gpt2_factory", raising=False)
    result = CliRunner().invoke(app, ["audit", "--model", "gpt2_factory:build"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "scaled for depth by 1/√8" in text
    assert "lm_head.weight is tied to transformer.wte.weight" in text
    weights = tmp_path / "unscaled.pt"
    model = gpt2()
    with torch.no_grad():
        for name in c_projs(model):
            model.get_parameter(name).normal_(0.0, 0.02)
    torch.save(model.state_dict(), weights)
    result = CliRunner().invoke(app, ["audit", "--model", "gpt2_factory:build", "--weights", str(weights),
                                      "--format", "json"])  # fmt: skip
    assert result.exit_code == 0
    assert '"residual_not_scaled"' in result.stdout


# -- Hugging Face ResNet -----------------------------------------------------------------------------------------
def test_hf_resnet_at_its_own_init_has_no_error() -> None:
    result = audit(hf_resnet())
    assert result.ok, result.errors
    # Its convolutions are kaiming_normal(mode="fan_out"): not torch's default, but a fan-based rule.
    assert result.warnings
    assert all(f.kind == "std_mismatch" and "near the fan-based rule" in f.message for f in result.warnings)


@pytest.mark.parametrize("scheme", ["he_normal", "keras", "auto"])
def test_initialize_works_on_hf_resnet_and_passes_its_own_audit(scheme: str) -> None:
    model = hf_resnet()
    initlab.initialize(model, scheme, seed=0)
    result = audit(model, scheme)
    assert result.findings == [], result.findings


def test_a_broken_hf_resnet_exits_non_zero() -> None:
    model = hf_resnet()
    with torch.no_grad():
        model.get_parameter("resnet.encoder.stages.0.layers.0.layer.1.convolution.weight").zero_()
    result = audit(model)
    assert [(f.kind, f.parameters[0]) for f in result.errors] == [
        ("all_zero", "resnet.encoder.stages.0.layers.0.layer.1.convolution.weight")
    ]
    assert result.exit_code() == 1


# -- torchvision and timm, where they import ---------------------------------------------------------------------
def _third_party_resnet(kind: str) -> Any:
    if kind == "torchvision":
        torchvision = pytest.importorskip("torchvision", exc_type=ImportError)
        return lambda: torchvision.models.resnet18(weights=None, num_classes=10)
    timm = pytest.importorskip("timm", exc_type=ImportError)
    return lambda: timm.create_model("resnet18", pretrained=False, num_classes=10)


@pytest.mark.parametrize("kind", ["torchvision", "timm"])
def test_third_party_resnets_initialize_and_audit(kind: str) -> None:
    build = _third_party_resnet(kind)
    torch.manual_seed(0)
    model = build()
    assert audit(model).ok  # kaiming_normal(fan_out) convolutions: warnings at most
    initlab.initialize(model, "he_normal", seed=0)
    assert audit(model, "he_normal").findings == []
    with torch.no_grad():
        model.fc.weight[1] = model.fc.weight[0]
    assert {f.kind for f in audit(model, "he_normal").errors} == {"duplicate_units"}
