"""Sweeps: axes besides the arm and the seed (scale, learning rate, width, depth, any training setting), their grid,
populations per architecture, resume after SIGKILL, and the compare command's comma-separated flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from initlab.cli import app
from initlab.models import resize
from initlab.store import Store
from initlab.studies import Arm, Study, TrainSettings, build, plan, run_study
from initlab.studies.shard import ShardRun
from initlab.studies.summary import best_per_arm, summarize
from test_studies import kill_after, run_script  # the SIGKILL-and-resume procedure of the studies tests

ARMS = (Arm("he_normal", "he_normal"), Arm("lecun_normal", "lecun_normal"))


def sweep_study(**fields: object) -> Study:
    settings = {"name": "sweep", "dataset": "digits", "model": "mlp:16", "seeds": (0, 1), "arms": ARMS}
    settings["train"] = TrainSettings(epochs=2, batch_size=64, optimizer="sgd", momentum=0.9)
    settings["sweep"] = {"scale": [0.5, 1.0, 2.0], "lr": [0.01, 0.03, 0.1]}
    return Study(**{**settings, **fields})  # type: ignore[arg-type]


# -- the grid ---------------------------------------------------------------------------------------------------------
def test_the_grid_labels_runs_and_keeps_a_plain_study_as_it_was() -> None:
    study = sweep_study()
    assert len(study.points()) == 9
    assert len(study.runs()) == 2 * 9 * 2
    assert study.runs()[0].run_id == "he_normal@lr=0.01,scale=0.5/s0"  # axes in alphabetical order
    assert study.labels()[:2] == ["he_normal@lr=0.01,scale=0.5", "he_normal@lr=0.01,scale=1"]
    assert study.settings_for(study.points()[3]).lr == 0.03
    assert Study.from_config(study.config()) == study
    plain = sweep_study(sweep={})
    assert "sweep" not in plain.config()  # a study without axes keeps its config, so its folder and resume
    assert [r.run_id for r in plain.runs()] == ["he_normal/s0", "lecun_normal/s0", "he_normal/s1", "lecun_normal/s1"]


def test_axes_are_checked_with_the_closest_name_and_the_bad_value() -> None:
    with pytest.raises(ValueError, match=r"unknown sweep axis 'sclae'\. Did you mean 'scale'"):
        sweep_study(sweep={"sclae": [1.0]})
    with pytest.raises(ValueError, match="sweep axis 'lr': lr must be > 0"):
        sweep_study(sweep={"lr": [0.1, 0.0]})
    with pytest.raises(ValueError, match=r"'scale'.*finite number >= 0"):
        sweep_study(sweep={"scale": [float("nan")]})
    with pytest.raises(ValueError, match="repeats a value"):
        sweep_study(sweep={"batch_size": [32, 32]})
    with pytest.raises(ValueError, match="equal hidden widths"):
        sweep_study(model="mlp:16,8", sweep={"depth": [2, 3]})
    with pytest.raises(ValueError, match="optimizer"):
        sweep_study(sweep={"optimizer": ["adam", "adamm"]})


def test_width_and_depth_resize_a_model_of_equal_widths() -> None:
    assert resize("mlp:64,64;act=tanh", width=8) == "mlp:8,8;act=tanh"
    assert resize("mlp:64,64;act=tanh", depth=3) == "mlp:64,64,64;act=tanh"
    assert resize("cnn:16,16;pool=none", width=4, depth=1) == "cnn:4;pool=none"
    study = sweep_study(model="mlp:16,16", sweep={"depth": [1, 4], "width": [8, 32]})
    assert [study.model_for(p) for p in study.points()] == ["mlp:8", "mlp:32", "mlp:8,8,8,8", "mlp:32,32,32,32"]
    assert list(study.sweep) == ["depth", "width"]


def test_populations_are_per_architecture_and_share_rates_and_scales() -> None:
    study = sweep_study(model="mlp:16,16", sweep={"depth": [1, 2], "lr": [0.01, 0.1], "scale": [1.0, 2.0]})
    all_runs = [ShardRun(r.run_id, r.arm_index, r.seed, 0, r.point_index) for r in study.runs()]
    shards = plan.shards(all_runs, all_runs, plan.population_of(study))
    assert len(shards) == 2  # one population per depth, with every rate and scale in it
    for shard in shards:
        depths = {study.model_for(study.points()[r.point_index]) for r in shard}
        assert len(depths) == 1
        assert len(shard) == 2 * 2 * 2 * 2  # arms x rates x scales x seeds
    assert plan.population_of(sweep_study(sweep={})) is None


def test_scale_multiplies_the_weights_the_scheme_drew() -> None:
    study = sweep_study(seeds=(0,))
    train = build.load_split(study, "train")
    one = build.build_model(study, train.input_shape, train.num_classes)
    two = build.build_model(study, train.input_shape, train.num_classes)
    build.initialize(one, "he_normal", seed=3, sample=None)
    build.initialize(two, "he_normal", seed=3, sample=None, scale=0.25)
    for (name, a), b in zip(one.named_parameters(), two.parameters(), strict=True):
        expected = a * 0.25 if a.dim() >= 2 else a
        assert torch.equal(b, expected), name


def test_the_report_rebuilds_each_configurations_initial_weights() -> None:
    study = sweep_study(model="mlp:16,16", sweep={"scale": [0.5, 1.0], "width": [4, 8]})
    source = build.InitSource(study)
    points = {dict(p)["scale"]: p for p in study.points() if dict(p)["width"] == 8}
    half, one = (source.initial_model(Arm("he_normal", "he_normal"), 0, points[c]) for c in (0.5, 1.0))
    assert half[1].weight.shape == (8, 64)  # the point's width
    for a, b in zip(half.parameters(), one.parameters(), strict=True):
        assert torch.equal(a, b * 0.5 if a.dim() >= 2 else b)


# -- training ---------------------------------------------------------------------------------------------------------
def stored_rows(folder: Path) -> tuple[list[tuple], dict[str, object]]:
    with Store.in_dir(folder, readonly=True) as store:
        epochs = sorted((e.run_id, e.epoch, e.train_loss, e.val_loss, e.val_acc) for e in store.epochs())
        tests = {r.run_id: (r.status, r.test_metrics) for r in store.runs()}
    return epochs, tests


def test_a_sweep_trains_one_population_per_architecture_and_each_run_as_if_alone(tmp_path: Path) -> None:
    study = sweep_study()
    run_study(study, tmp_path / "s", workers=2)
    with Store.in_dir(tmp_path / "s", readonly=True) as store:
        epochs = store.epochs()
        assert len(epochs) == 36 * 2
        assert {e.extra["population"] for e in epochs} == {0}  # one architecture, one population key
        rows = summarize(store)
        config = store.study().config
    assert len(rows) == 18  # every configuration ranked
    best = best_per_arm(config, rows)
    assert set(best) == {"he_normal", "lecun_normal"}
    assert all(row.arm.startswith(arm + "@") for arm, row in best.items())
    # One configuration on its own (a population of its two seeds) trains to the same numbers.
    alone = sweep_study(sweep={"scale": [2.0], "lr": [0.1]}, arms=ARMS[:1])
    run_study(alone, tmp_path / "alone", workers=1)
    swept, _ = stored_rows(tmp_path / "s")
    single, _ = stored_rows(tmp_path / "alone")
    by_id = {(r[0], r[1]): r for r in swept}
    for run_id, epoch, *values in single:
        other = by_id[(run_id, epoch)][2:]
        assert values == pytest.approx(other, rel=1e-4, abs=1e-5), run_id


SWEEP_SCRIPT = """
import sys
from initlab.studies import Arm, Study, TrainSettings, run_study
study = Study(name="kill", dataset="digits", model="mlp:64,64", seeds=(0, 1),
              arms=(Arm("he_normal", "he_normal"), Arm("lecun_normal", "lecun_normal")),
              train=TrainSettings(epochs=3, batch_size=16, optimizer="sgd", momentum=0.9),
              sweep={"scale": [0.5, 1.0, 2.0], "lr": [0.003, 0.01, 0.03]})
run_study(study, sys.argv[1], workers=2)
"""


@pytest.mark.slow
def test_a_sweep_resumes_after_sigkill_with_identical_results(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    assert run_script(SWEEP_SCRIPT, reference).wait(timeout=300) == 0
    expected = stored_rows(reference)
    killed = tmp_path / "killed"
    partial = kill_after(SWEEP_SCRIPT, killed, epochs=36, pause=0.1)  # inside epoch 2 of every run
    assert 36 <= partial < 108
    assert run_script(SWEEP_SCRIPT, killed).wait(timeout=300) == 0
    assert stored_rows(killed) == expected


# -- the command line -------------------------------------------------------------------------------------------------
def test_compare_sweeps_comma_separated_flags(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    args = ["compare", "--dataset", "digits", "--model", "mlp:8,8", "--inits", "he_normal", "--seeds", "1"]
    args += ["--epochs", "1", "--lr", "0.01,0.1", "--scale", "0.5", "--depth", "1,2", "--optimizer", "sgd"]
    args += ["--workers", "1", "--out", str(out), "--no-report"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    with Store.in_dir(out, readonly=True) as store:
        config = store.study().config
        assert config["sweep"] == {"depth": [1, 2], "lr": [0.01, 0.1], "scale": [0.5]}
        assert config["train"]["optimizer"] == "sgd"
        assert len(store.runs()) == 4
    assert "best of he_normal: he_normal@" in result.output
    bad = CliRunner().invoke(app, [*args[:-3], "--lr", "0.01,fast", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2
    assert "--lr '0.01,fast': 'fast' is not a number" in bad.output


def test_a_study_file_sweeps_with_a_sweep_table(tmp_path: Path) -> None:
    path = tmp_path / "study.toml"
    path.write_text(
        'dataset = "digits"\nmodel = "mlp:16"\ninits = ["he_normal"]\n[train]\nepochs = 1\n'
        "[sweep]\nlr = [1e-3, 1e-2]\nscale = [0.5, 2.0]\n"
    )
    study = Study.from_toml(path)
    assert study.sweep == {"lr": (1e-3, 1e-2), "scale": (0.5, 2.0)}
    assert json.loads(json.dumps(study.config()))["sweep"] == {"lr": [1e-3, 1e-2], "scale": [0.5, 2.0]}
    flags = study.with_overrides(sweep={"lr": [0.1, 0.3]})
    assert flags.sweep == {"lr": (0.1, 0.3), "scale": (0.5, 2.0)}
