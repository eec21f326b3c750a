"""Studies: population runs stored per epoch, divergence, resume after SIGKILL, validation, the compare command."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from initlab.cli import app
from initlab.store import Store
from initlab.studies import Arm, Study, run_study, summarize
from initlab.training import TrainSettings

runner = CliRunner()


def small_study(**train: object) -> Study:
    settings = {"epochs": 3, "batch_size": 64, "lr": 1e-2, **train}
    return Study(
        name="digits-small",
        dataset="digits",
        model="mlp:32;act=tanh",
        arms=(Arm("glorot_uniform", "glorot_uniform"), Arm("he_normal", "he_normal"), Arm("zeros", "zeros")),
        seeds=(0, 1),
        train=TrainSettings(**settings),  # type: ignore[arg-type]
    )


def stored(folder: Path) -> tuple[list[tuple], dict[str, dict]]:
    with Store.in_dir(folder, readonly=True) as store:
        epochs = sorted((e.run_id, e.epoch, e.train_loss, e.train_acc, e.val_loss, e.val_acc) for e in store.epochs())
        runs = {
            r.run_id: {"status": r.status, "test": r.test_metrics, "last_epoch": r.last_epoch} for r in store.runs()
        }
        for run_id, epoch, payload in store.diagnostics():
            runs[run_id][f"diagnosis@{epoch}"] = payload
    return epochs, runs


def test_a_study_stores_every_epoch_and_ranks_arms(tmp_path: Path) -> None:
    study = small_study()
    run_study(study, tmp_path / "s", workers=1)
    epochs, runs = stored(tmp_path / "s")
    assert len(epochs) == 6 * 3  # 3 arms x 2 seeds x 3 epochs, each once
    assert all(r["status"] == "finished" and r["last_epoch"] == 3 for r in runs.values())
    with Store.in_dir(tmp_path / "s", readonly=True) as store:
        rows = summarize(store)
        assert store.study().config == study.config()
    assert [r.arm for r in rows][-1] == "zeros"  # all-zero weights never break symmetry
    assert rows[0].test_acc.mean > 0.85
    assert rows[0].test_acc.n == 2
    # Running it again repeats nothing.
    before = (tmp_path / "s" / "study.sqlite").stat().st_mtime_ns
    run_study(study, tmp_path / "s", workers=1)
    assert stored(tmp_path / "s")[0] == epochs
    assert before <= (tmp_path / "s" / "study.sqlite").stat().st_mtime_ns


def test_runs_are_diagnosed_at_initialization_and_at_chosen_epochs(tmp_path: Path) -> None:
    study = Study(
        name="diag",
        dataset="digits",
        model="mlp:16,16;act=tanh",
        seeds=(0,),
        diagnose_epochs=(0, 2),
        arms=(Arm("zeros", "zeros"), Arm("he", "he_normal")),
        train=TrainSettings(epochs=2),
    )
    run_study(study, tmp_path / "d", workers=1)
    with Store.in_dir(tmp_path / "d", readonly=True) as store:
        found = {(run_id, epoch): payload for run_id, epoch, payload in store.diagnostics()}
    assert set(found) == {("zeros/s0", 0), ("zeros/s0", 2), ("he/s0", 0), ("he/s0", 2)}
    # Zero weights: every hidden unit duplicates the others, which the diagnosis reports as a symmetry finding.
    assert "symmetry" in {f["kind"] for f in found[("zeros/s0", 0)]["findings"]}
    assert "symmetry" not in {f["kind"] for f in found[("he/s0", 0)]["findings"]}
    assert found[("he/s0", 0)]["layers"] != found[("he/s0", 2)]["layers"]  # training changed the network


def test_arms_within_a_seed_see_the_same_batches_and_seeds_differ(tmp_path: Path) -> None:
    # Two arms with the same scheme and seed are the same run: identical numbers (paired comparison).
    study = Study(
        name="paired",
        dataset="digits",
        model="mlp:16",
        seeds=(0, 1),
        arms=(Arm("a", "he_uniform"), Arm("b", "he_uniform")),
        train=TrainSettings(epochs=1),
    )
    run_study(study, tmp_path / "p", workers=1)
    _, runs = stored(tmp_path / "p")
    assert runs["a/s0"]["test"] == runs["b/s0"]["test"]
    assert runs["a/s0"]["test"] != runs["a/s1"]["test"]


def test_a_diverging_run_is_marked_while_the_others_finish(tmp_path: Path) -> None:
    study = Study(
        name="diverge",
        dataset="digits",
        model="mlp:32",
        arms=(Arm("huge", {"class_name": "RandomNormal", "config": {"stddev": 100.0}}), Arm("he", "he_normal")),
        seeds=(0,),
        train=TrainSettings(optimizer="sgd", lr=10.0, epochs=2),
    )
    run_study(study, tmp_path / "d", workers=1)
    _, runs = stored(tmp_path / "d")
    assert runs["huge/s0"]["status"] == "diverged"
    assert runs["he/s0"]["status"] == "finished"
    with Store.in_dir(tmp_path / "d", readonly=True) as store:
        rec = next(r for r in store.runs() if r.run_id == "huge/s0")
        assert rec.diverged_epoch == 1
        rows = summarize(store)
    assert next(r for r in rows if r.arm == "huge").diverged == 1


def test_unknown_initializer_stops_before_training(tmp_path: Path) -> None:
    study = Study(name="typo", dataset="digits", model="mlp:8", arms=(Arm("glorot_unifrom", "glorot_unifrom"),))
    with pytest.raises(ValueError, match="Did you mean 'glorot_uniform'"):
        run_study(study, tmp_path / "t", workers=1)
    assert not (tmp_path / "t" / "study.sqlite").exists()


def test_another_config_in_the_same_folder_is_refused(tmp_path: Path) -> None:
    run_study(small_study(epochs=1), tmp_path / "s", workers=1)
    with pytest.raises(ValueError, match="another study"):
        run_study(small_study(epochs=2), tmp_path / "s", workers=1)


def test_study_round_trips_through_toml(tmp_path: Path) -> None:
    path = tmp_path / "study.toml"
    path.write_text(
        'name = "t"\ndataset = "digits"\nmodel = "mlp:16"\nseeds = [3, 4]\ninits = ["he_normal", "lecun_uniform"]\n'
        '[arms.lsuv]\nscheme = "lsuv"\n[train]\noptimizer = "sgd"\nlr = 0.05\nmomentum = 0.9\nepochs = 2\n'
    )
    study = Study.from_toml(path)
    assert [a.label for a in study.arms] == ["he_normal", "lecun_uniform", "lsuv"]
    assert study.seeds == (3, 4)
    assert study.train.momentum == 0.9
    assert Study.from_config(study.config()) == study
    path.write_text('dataset = "digits"\ninits = ["he_normal"]\n[train]\noptimiser = "sgd"\n')
    with pytest.raises(ValueError, match=r"unknown training setting 'optimiser'\. Did you mean 'optimizer'"):
        Study.from_toml(path)


RESUME_SCRIPT = """
import sys
from initlab.studies import Arm, Study, run_study
from initlab.training import TrainSettings
study = Study(name="kill", dataset="mnist1d", model="mlp:256,256", seeds=(0, 1),
              arms=(Arm("glorot_uniform", "glorot_uniform"), Arm("he_normal", "he_normal")),
              train=TrainSettings(epochs=3, batch_size=8, lr=1e-3))
run_study(study, sys.argv[1], workers=2)
"""


def run_script(script: str, folder: Path) -> subprocess.Popen:
    """Run ``script`` (a study on the folder ``sys.argv[1]``) in a new process group, so it can be killed whole."""
    return subprocess.Popen([sys.executable, "-c", script, str(folder)], start_new_session=True)


def epochs_done(folder: Path) -> int:
    try:
        with Store.in_dir(folder, readonly=True) as store:
            return len(store.epochs())
    except Exception:
        return 0


def kill_after(script: str, folder: Path, *, epochs: int, pause: float) -> int:
    """Start ``script``, SIGKILL the driver and its workers ``pause`` seconds after ``epochs`` run-epochs are
    committed (inside the next epoch), and return how many run-epochs the Store then holds."""
    proc = run_script(script, folder)
    deadline = time.time() + 240
    while epochs_done(folder) < epochs and time.time() < deadline:
        time.sleep(0.02)
    time.sleep(pause)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return epochs_done(folder)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_study(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    assert run_script(RESUME_SCRIPT, reference).wait(timeout=300) == 0
    expected = stored(reference)

    killed = tmp_path / "killed"
    # Epoch 1 of all four runs is committed, then 0.4 s into epoch 2 (an epoch takes about 1 s here).
    partial = kill_after(RESUME_SCRIPT, killed, epochs=4, pause=0.4)
    assert 4 <= partial < 12, partial
    assert run_script(RESUME_SCRIPT, killed).wait(timeout=300) == 0
    assert stored(killed) == expected  # same numbers, every epoch exactly once, all runs finished


def test_compare_command_runs_and_prints_the_ranked_table(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    args = [
        "compare",
        "--dataset",
        "digits",
        "--model",
        "mlp:32",
        "--inits",
        "he_normal,zeros",
        "--seeds",
        "2",
        "--epochs",
        "2",
        "--workers",
        "1",
        "--out",
        str(out),
    ]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "ranked by test accuracy" in result.output
    assert "he_normal" in result.output
    assert f"study folder: {out}" in result.output
    table = result.output.split("ranked by test accuracy")[1]
    assert table.index("he_normal") < table.index("zeros")
    again = runner.invoke(app, ["compare", "--resume", str(out)], env={"COLUMNS": "200"})
    assert again.exit_code == 0, again.output
    export = runner.invoke(app, ["export", str(out), "--format", "json"])
    assert export.exit_code == 0, export.output
    data = json.loads((out / "study.json").read_text())
    assert len(data["runs"]) == 4


def test_compare_typo_stops_before_training(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["compare", "--dataset", "digits", "--inits", "he_normal,glorot_unifrom", "--out", str(tmp_path / "x")],
        env={"COLUMNS": "300"},
    )
    assert result.exit_code == 2
    assert "Did you mean 'glorot_uniform'" in result.output
    assert not (tmp_path / "x" / "study.sqlite").exists()


def test_epochs_to_target_and_stats() -> None:
    from initlab.studies.summary import Stat, t975

    s = Stat.of([0.9, 0.92, 0.94])
    assert s.mean == pytest.approx(0.92)
    assert s.std == pytest.approx(0.02)
    assert s.ci95 == pytest.approx(4.303 * 0.02 / math.sqrt(3))
    assert t975(100) == 1.96
    assert Stat.of([]).text() == "-"
