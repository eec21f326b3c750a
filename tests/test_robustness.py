"""Studies that cannot mix up runs, exit codes that say what happened, and error messages printed literally."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from initlab.cli import app
from initlab.studies import Arm, Study, checkpoints

runner = CliRunner()
TINY = ["--dataset", "digits", "--model", "mlp:8", "--seeds", "1", "--steps", "2", "--workers", "1", "--no-report"]


@pytest.mark.parametrize(("a", "b"), [("a b", "a_b"), ("He", "he"), ("x-1", "x.1"), ("ｈｅ", "he")])
def test_labels_that_differ_only_in_case_spaces_or_punctuation_are_refused(a: str, b: str) -> None:
    # Before, "a b" and "a_b" shared a checkpoint folder and a resumed arm could continue from the other's weights.
    with pytest.raises(ValueError, match="differ only in case, spaces or punctuation"):
        Study(arms=(Arm(a, "he_normal"), Arm(b, "glorot_uniform")), dataset="digits", model="mlp:8")


def test_checkpoint_folders_are_keyed_by_the_exact_run_id(tmp_path: Path) -> None:
    ids = ["a b/s0", "a_b/s0", "a/b/s0", "a_b_s0", "x" * 300 + "/s0"]
    folders = {checkpoints.path(tmp_path, run_id, 1).parent for run_id in ids}
    assert len(folders) == len(ids)
    assert all(f.parent == tmp_path / checkpoints.FOLDER for f in folders)  # no run id escapes the folder
    assert all(len(f.name) <= 57 for f in folders)
    assert checkpoints.path(tmp_path, "a b/s0", 3) == checkpoints.path(tmp_path, "a b/s0", 3)


def test_compare_exits_3_when_a_run_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from initlab.studies import shard

    def broken(task: shard.ShardTask, emit: object) -> None:
        raise OSError("the disk went away")

    monkeypatch.setattr(shard, "train_shard", broken)
    ran = runner.invoke(app, ["compare", *TINY, "--inits", "he_normal", "--out", str(tmp_path / "s")])
    assert ran.exit_code == 3, ran.output
    assert "1 run(s) failed" in ran.output
    assert "OSError: the disk went away" in ran.output


def test_a_divergence_is_a_result_unless_strict(tmp_path: Path) -> None:
    args = ["compare", *TINY, "--inits", "he_normal", "--optimizer", "sgd", "--lr", "1e6"]
    ran = runner.invoke(app, [*args, "--out", str(tmp_path / "a")])
    assert ran.exit_code == 0, ran.output
    assert "1/1" in ran.output  # the diverged column
    strict = runner.invoke(app, [*args, "--out", str(tmp_path / "b"), "--strict"])
    assert strict.exit_code == 4, strict.output
    assert "1 run(s) diverged (--strict)" in strict.output


@pytest.mark.parametrize("inits", ["[/x]", "[bold]he_normal", "he_normal[/]"])
def test_error_messages_quote_the_input_literally(inits: str) -> None:
    ran = runner.invoke(app, ["compare", "--dataset", "digits", "--inits", inits])
    assert ran.exit_code == 2
    assert f"unknown scheme {inits!r}" in " ".join(ran.output.split())
