"""muP (initlab.mup): each parameter's role and multipliers, the output layer's initialization, per-parameter rates
in a population, and muP arms in a study."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from initlab import models, mup
from initlab.cli import app
from initlab.store import Store
from initlab.studies import Arm, Study, run_study
from initlab.training import Batch, Population, TrainSettings


def mlp(width: int, *, device: str | None = None) -> nn.Module:
    with torch.device(device or "cpu"):
        return models.build(f"mlp:{width},{width}", input_shape=(8, 8), num_classes=10)


def test_roles_and_multipliers_follow_the_table_of_tensor_programs_v() -> None:
    p = mup.Parametrization.mup(mlp(256), mlp(64, device="meta"))
    roles = {name: r.role for name, r in p.roles.items()}
    assert roles == {"1.weight": "input", "1.bias": "vector", "3.weight": "hidden", "3.bias": "vector",
                     "5.weight": "output", "5.bias": "fixed"}  # fmt: skip
    # Width 4x the base: Adam divides hidden and output rates by 4; SGD multiplies input and vector rates by 4.
    assert p.lr_multipliers("adam") == {"1.weight": 1, "1.bias": 1, "3.weight": 0.25, "3.bias": 1, "5.weight": 0.25,
                                        "5.bias": 1}  # fmt: skip
    assert p.lr_multipliers("sgd") == {"1.weight": 4, "1.bias": 4, "3.weight": 1, "3.bias": 4, "5.weight": 0.25,
                                       "5.bias": 1}  # fmt: skip
    assert p.lr_multipliers("rmsprop") == p.lr_multipliers("adamw") == p.lr_multipliers("adam")
    assert set(mup.Parametrization.standard(mlp(256)).lr_multipliers("sgd").values()) == {1.0}


def test_at_the_base_width_mup_is_the_standard_parametrization() -> None:
    model = mlp(64)
    p = mup.Parametrization.mup(model, mlp(64, device="meta"), output="scaled")
    assert set(p.lr_multipliers("adam").values()) == set(p.lr_multipliers("sgd").values()) == {1.0}
    before = copy.deepcopy(model.state_dict())
    p.rescale(model)
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name])


def test_the_output_layer_is_scaled_by_the_width_ratio_or_zeroed() -> None:
    torch.manual_seed(0)
    model = mlp(512)
    drawn = model[5].weight.detach().clone()
    mup.Parametrization.mup(model, mlp(32, device="meta"), output="scaled").rescale(model)
    torch.testing.assert_close(model[5].weight, drawn / math.sqrt(512 / 32))  # variance / m_in
    torch.testing.assert_close(model[3].weight.std(), torch.tensor(1 / math.sqrt(3 * 512)), rtol=0.05, atol=0)
    mup.Parametrization.mup(model, mlp(32, device="meta"), output="zero").rescale(model)
    assert not model[5].weight.any()
    assert model[5].bias.any()


class Encoder(nn.Module):
    """A model built elsewhere whose width is a parameter of its factory: an embedding, a conv and a readout."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(50, width)
        self.conv = nn.Conv1d(width, width, 3, padding=1)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, 4)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens).transpose(1, 2)
        h = torch.relu(self.conv(h)).transpose(1, 2)
        return self.head(self.norm(h).mean(dim=1))


def test_a_factory_model_gets_its_roles_from_the_shapes_at_two_widths() -> None:
    model, p = mup.from_factory(Encoder, 128, 32)
    assert isinstance(model, Encoder)
    assert model.conv.weight.device.type == "cpu"
    roles = {name: (r.role, r.m_in, r.m_out) for name, r in p.roles.items()}
    assert roles["embed.weight"] == ("input", 1.0, 4.0)  # (vocabulary, width): an input layer, not a readout
    assert roles["conv.weight"] == ("hidden", 4.0, 4.0)
    assert roles["norm.weight"] == roles["norm.bias"] == roles["conv.bias"] == ("vector", 1.0, 4.0)
    assert roles["head.weight"] == ("output", 4.0, 1.0)
    assert roles["head.bias"][0] == "fixed"


def test_shapes_that_cannot_come_from_a_width_are_refused() -> None:
    conv = nn.Conv1d(8, 8, 3)
    with pytest.raises(ValueError, match="only the first two dimensions"):
        mup.classify(conv, nn.Conv1d(8, 8, 5))
    with pytest.raises(ValueError, match="not in the base model"):
        mup.classify(mlp(64), nn.Sequential(nn.Linear(2, 2)))


def test_parametrization_configs_are_checked_with_a_suggestion() -> None:
    assert mup.parse(None) == mup.parse("standard") == mup.ParametrizationSpec()
    spec = mup.parse({"name": "mup", "base_width": 64, "output": "scaled"})
    assert spec == mup.ParametrizationSpec("mup", 64, "scaled")
    assert mup.parse(spec.to_config()) == spec
    assert mup.parse("mup").to_config() == "mup"
    with pytest.raises(ValueError, match="'mup'"):
        mup.parse("mpu")
    with pytest.raises(ValueError, match="base_widht"):
        mup.parse({"name": "mup", "base_widht": 64})
    with pytest.raises(ValueError, match=r"positive|>= 1"):
        mup.parse({"name": "mup", "base_width": 0})
    with pytest.raises(ValueError, match="standard parametrization takes no"):
        mup.parse({"name": "standard", "base_width": 8})


@pytest.mark.parametrize(
    "settings",
    [TrainSettings(optimizer="adam", weight_decay=1e-3),
     TrainSettings(optimizer="sgd", momentum=0.9, weight_decay=1e-3),
     TrainSettings(optimizer="adamw", weight_decay=0.1)],
    ids=lambda s: s.optimizer,
)  # fmt: skip
def test_a_population_with_per_parameter_rates_equals_each_model_trained_alone(settings: TrainSettings) -> None:
    # Two muP models and two standard ones at four learning rates, in one population, against each model trained
    # alone by torch's own optimizer over the parametrization's param groups.
    torch.manual_seed(0)
    base = mlp(16, device="meta")
    nets = [mlp(64) for _ in range(4)]
    params = [mup.Parametrization.mup(nets[0], base, output="scaled"), mup.Parametrization.mup(nets[1], base),
              mup.Parametrization.standard(nets[2]), mup.Parametrization.standard(nets[3])]  # fmt: skip
    for net, p in zip(nets, params, strict=True):
        p.rescale(net)
    rates = [0.01, 0.03, 0.01, 0.003] if settings.optimizer == "sgd" else [1e-3, 3e-3, 1e-3, 3e-4]
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(12, 16, 8, 8, generator=g), torch.randint(0, 10, (12, 16), generator=g)
    pop = Population(nets, settings)
    pop.set_lr(rates, multipliers=[p.lr_multipliers(settings.optimizer) for p in params])
    assert pop.lrs == rates
    assert pop.multipliers[2] is None
    assert pop.multipliers[0] is not None
    pop.train_epoch(Batch(x[t], y[t]) for t in range(12))
    cls = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "adamw": torch.optim.AdamW}[settings.optimizer]
    extra = {"momentum": settings.momentum} if settings.optimizer == "sgd" else {}
    for i, (net, p) in enumerate(zip(nets, params, strict=True)):
        opt = cls(p.param_groups(net, lr=rates[i], weight_decay=settings.weight_decay, optimizer=settings.optimizer),
                  **extra)  # fmt: skip
        for t in range(12):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[t]), y[t]).backward()
            opt.step()
        for name, q in net.named_parameters():
            err = float((pop.params[name][i].detach() - q.detach()).norm() / q.detach().norm().clamp_min(1e-12))
            assert err < 1e-4, (i, name, err)


def test_multipliers_are_checked() -> None:
    pop = Population([mlp(16), mlp(16)], TrainSettings())
    with pytest.raises(ValueError, match=r"one .* per model"):
        pop.set_lr(1e-3, multipliers=[None])
    with pytest.raises(ValueError, match=r"'9.weight'"):
        pop.set_lr(1e-3, multipliers=[{"9.weight": 2.0}, None])
    with pytest.raises(ValueError, match=r"positive|> 0"):
        pop.set_lr(1e-3, multipliers=[{"1.weight": 0.0}, None])


def test_a_mup_arm_trains_like_the_standard_one_at_its_base_width_and_unlike_it_wider(tmp_path) -> None:
    study = Study(
        name="mup",
        dataset="digits",
        model="mlp:16,16",
        arms=(
            Arm("sp", "lecun_normal"),
            Arm("mup", "lecun_normal", parametrization={"name": "mup", "output": "scaled"}),
            Arm("mup0", "lecun_normal", parametrization="mup"),
        ),
        seeds=(0,),
        train=TrainSettings(optimizer="adam", lr=3e-3, epochs=1, batch_size=64),
        diagnose_epochs=(),
        sweep={"width": [16, 64]},
    )
    assert study.base_width(study.arms[1]) == 16
    assert Study.from_config(study.config()) == study
    with Store.in_dir(run_study(study, tmp_path / "s"), readonly=True) as store:
        loss = {e.run_id: e.train_loss for e in store.epochs()}
    assert loss["sp@width=16/s0"] == loss["mup@width=16/s0"]
    # The default zero readout is found at the base width too (against a wider model) and changes the run.
    assert loss["sp@width=16/s0"] != loss["mup0@width=16/s0"]
    assert abs(loss["sp@width=64/s0"] - loss["mup@width=64/s0"]) > 1e-4


def test_a_bad_parametrization_names_the_arm() -> None:
    with pytest.raises(ValueError, match=r"arm 'm'.*'mup'"):
        Study(arms=(Arm("m", "he_normal", parametrization="mupp"),), dataset="digits", model="mlp:16")
    with pytest.raises(ValueError, match=r"arm 'm'.*equal hidden widths"):
        Study(arms=(Arm("m", "he_normal", parametrization="mup"),), dataset="digits", model="mlp:16,8")
    with pytest.raises(ValueError, match="unknown arm field 'parametrisation'"):
        Study.from_config({"arms": [{"scheme": "he_normal", "parametrisation": "mup"}], "dataset": "digits"})


def test_toml_arms_and_the_compare_flag_give_parametrized_arms(tmp_path: Path) -> None:
    toml = tmp_path / "study.toml"
    toml.write_text(
        'dataset = "digits"\nmodel = "mlp:16,16"\n[arms.sp]\nscheme = "lecun_normal"\n'
        '[arms.mup]\nscheme = "lecun_normal"\nparametrization = {name = "mup", base_width = 8}\n'
    )
    study = Study.from_toml(toml)
    assert study.arms[1] == Arm("mup", "lecun_normal", {"name": "mup", "base_width": 8})
    assert study.base_width(study.arms[1]) == 8
    out = tmp_path / "run"
    args = ["compare", "--dataset", "digits", "--model", "mlp:16,16", "--inits", "lecun_normal,he_normal",
            "--parametrization", "standard,mup", "--width", "16,32", "--seeds", "1", "--steps", "3",
            "--workers", "1", "--no-report", "--out", str(out)]  # fmt: skip
    ran = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert ran.exit_code == 0, ran.output
    with Store.in_dir(out, readonly=True) as store:
        arms = store.study().config["arms"]
        runs = {e.run_id for e in store.epochs()}
    assert [a["label"] for a in arms] == ["lecun_normal", "he_normal", "lecun_normal+mup", "he_normal+mup"]
    assert arms[2]["parametrization"] == "mup"
    assert "parametrization" not in arms[0]
    assert "he_normal+mup@width=32/s0" in runs
    typo = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "x"), "--parametrization", "mpu"])
    assert typo.exit_code == 2
    assert "Did you mean 'mup'" in typo.output
