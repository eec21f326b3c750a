"""Studies that cannot mix up runs, exit codes that say what happened, and error messages printed literally."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from initlab.cli import app
from initlab.studies import Arm, Store, Study, TrainSettings, checkpoints, run_study

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


def _interrupted_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Study, Path]:
    """A two-run study whose second epoch fails, leaving epoch 1 committed with both runs' checkpoints."""
    from initlab.training import Population

    study = Study(arms=(Arm("a", "he_normal"), Arm("b", "glorot_uniform")), dataset="digits", model="mlp:8",
                  seeds=(0,), train=TrainSettings(epochs=3, batch_size=64), diagnose_epochs=())  # fmt: skip
    real = Population.train_epoch
    calls = []

    def failing(self: Population, *args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("interrupted")
        return real(self, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(Population, "train_epoch", failing)
        folder = run_study(study, tmp_path / "s", workers=1)
    with Store.in_dir(folder, readonly=True) as store:
        assert [(r.status, r.last_epoch) for r in store.runs()] == [("failed", 1), ("failed", 1)]
    return study, folder


@pytest.mark.parametrize("damage", ["truncate", "garble", "delete"])
def test_a_damaged_checkpoint_rolls_back_that_run_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    study, folder = _interrupted_study(tmp_path, monkeypatch)
    file = checkpoints.path(folder, "a/s0", 1)
    data = file.read_bytes()
    if damage == "truncate":
        file.write_bytes(data[: len(data) // 2])
    elif damage == "garble":
        file.write_bytes(data[:100] + bytes(b ^ 0xFF for b in data[100:200]) + data[200:])
    else:
        file.unlink()
    with Store.in_dir(folder, readonly=True) as store:
        kept = store.epochs("b/s0")[0]
    with caplog.at_level("WARNING", logger="initlab.studies.plan"):
        run_study(study, folder, workers=1)
    with Store.in_dir(folder, readonly=True) as store:
        runs = {r.run_id: r for r in store.runs()}
        assert {r.status for r in runs.values()} == {"finished"}
        assert [e.epoch for e in store.epochs("a/s0")] == [1, 2, 3]
        # The healthy run was not touched: its first epoch is the one stored before (wall time included).
        assert store.epochs("b/s0")[0] == kept
        assert "continues from epoch 0" in (runs["a/s0"].message or "")
    assert str(file) in caplog.text
    assert ("missing" if damage == "delete" else "damaged") in caplog.text


def _finished_study(folder: Path) -> Study:
    study = Study(arms=(Arm("a", "he_normal"), Arm("b", "glorot_uniform")), dataset="digits", model="mlp:8",
                  seeds=(0,), train=TrainSettings(epochs=2, batch_size=64), diagnose_epochs=(0, 1))  # fmt: skip
    run_study(study, folder, workers=1)
    return study


def _damage_page(db: Path, table: str) -> None:
    """Overwrite the root page of ``table`` with garbage, as a failing disk or a stray write would."""
    import sqlite3

    with sqlite3.connect(db) as conn:
        page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with db.open("r+b") as f:
        f.seek((page - 1) * size)
        f.write(b"\xde\xad" * (size // 2))


def test_a_damaged_database_is_refused_for_writing_and_salvaged_by_the_doctor(tmp_path: Path) -> None:
    from initlab.store import DamagedStoreError

    folder = tmp_path / "s"
    study = _finished_study(folder)
    with Store.in_dir(folder, readonly=True) as store:
        reference = store.epochs()
    _damage_page(folder / "study.sqlite", "epochs")
    # Before, the study was resumed without a word and report and export crashed with sqlite3 tracebacks.
    with pytest.raises(DamagedStoreError, match="initlab doctor"):
        run_study(study, folder, workers=1)
    for command in (["export", str(folder)], ["report", str(folder)]):
        ran = runner.invoke(app, command)
        assert ran.exit_code == 2, ran.output
        assert "is damaged" in ran.output
        assert "Traceback" not in ran.output
    checked = runner.invoke(app, ["doctor", str(folder)], env={"COLUMNS": "200"})
    assert checked.exit_code == 1
    assert "DAMAGED" in checked.output
    assert "a/s0: its epochs cannot be read" in checked.output
    new = tmp_path / "new"
    salvaged = runner.invoke(app, ["doctor", str(folder), "--salvage", str(new)], env={"COLUMNS": "200"})
    assert f"initlab compare --resume {new}" in salvaged.output
    run_study(study, new, workers=1)  # what was lost is trained again, with the same seeds
    with Store.in_dir(new, readonly=True) as store:
        assert {r.status for r in store.runs()} == {"finished"}
        assert [(e.run_id, e.epoch, e.train_loss, e.val_loss) for e in store.epochs()] == [
            (e.run_id, e.epoch, e.train_loss, e.val_loss) for e in reference
        ]
    assert runner.invoke(app, ["doctor", str(new)]).exit_code == 0


def test_the_doctor_copies_intact_runs_and_their_checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from initlab.studies import doctor

    study, folder = _interrupted_study(tmp_path, monkeypatch)
    found = doctor.examine(folder)
    assert found.healthy, found.lines()
    new = tmp_path / "copy"
    doctor.salvage(folder, new)
    with Store.in_dir(new, readonly=True) as store:
        assert [(r.run_id, r.last_epoch) for r in store.runs()] == [("a/s0", 1), ("b/s0", 1)]
        assert store.checkpoint_checksum("a/s0", 1) is not None
    assert checkpoints.path(new, "a/s0", 1).read_bytes() == checkpoints.path(folder, "a/s0", 1).read_bytes()
    with pytest.raises(ValueError, match="already holds a study"):
        doctor.salvage(folder, new)
    run_study(study, new, workers=1)
    with Store.in_dir(new, readonly=True) as store:
        assert [e.epoch for e in store.epochs("b/s0")] == [1, 2, 3]


def _stored(folder: Path) -> tuple[list, list]:
    with Store.in_dir(folder, readonly=True) as store:
        rows = [(e.run_id, e.epoch, e.train_loss, e.train_acc, e.val_loss, e.val_acc, e.layers,
                 e.extra.get("population")) for e in store.epochs()]  # fmt: skip
        return rows, [(r.run_id, r.status, r.test_metrics) for r in store.runs()]


def test_any_worker_count_stores_the_same_numbers(tmp_path: Path) -> None:
    # Two populations (one per depth) of 2 arms x 2 rates x 2 seeds: one worker trains both in this process with
    # every core's threads, two or three workers in processes with a thread each.
    study = Study(arms=(Arm("a", "he_normal"), Arm("b", "lecun_normal")), dataset="digits", model="mlp:16",
                  seeds=(0, 1), train=TrainSettings(epochs=2, batch_size=64), diagnose_epochs=(),
                  sweep={"depth": [1, 2], "lr": [1e-3, 1e-2]})  # fmt: skip
    stored = [_stored(run_study(study, tmp_path / f"w{w}", workers=w)) for w in (1, 2, 3)]
    assert len(stored[0][0]) == 2 * 2 * 2 * 2 * 2
    assert stored[0] == stored[1] == stored[2]


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mount a small tmpfs (``mount(size)``), unmounted at the end; skipped where this machine forbids mounting."""
    import subprocess

    mounted: list[Path] = []

    def mount(size: str) -> Path:
        point = tmp_path / f"fs{len(mounted)}"
        point.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'not permitted'})")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_a_finished_study_opens_from_read_only_media(tmp_path: Path, tmpfs: Callable[[str], Path]) -> None:
    import shutil
    import subprocess

    media = tmpfs("8m")
    _finished_study(tmp_path / "s")
    shutil.copytree(tmp_path / "s", media / "s")
    for leftover in (media / "s").glob("study.sqlite-*"):  # as copied off a closed study: no WAL index
        leftover.unlink()
    subprocess.run(["mount", "-o", "remount,ro", str(media)], check=True)
    with Store.in_dir(media / "s", readonly=True) as store:
        assert len(store.epochs()) == 4
    exported = runner.invoke(app, ["export", str(media / "s"), "--out", str(tmp_path / "csv")])
    assert exported.exit_code == 0, exported.output
    assert (tmp_path / "csv" / "epochs.csv").exists()
    written = runner.invoke(app, ["export", str(media / "s")])  # into the read-only folder itself
    assert written.exit_code == 2
    assert "the file system is read-only" in written.output
    resumed = runner.invoke(app, ["compare", "--resume", str(media / "s")])
    assert resumed.exit_code == 2
    assert "read-only" in resumed.output
    assert "Traceback" not in resumed.output + written.output


def test_a_full_disk_is_named_in_one_line_and_leaves_nothing_half_written(tmpfs: Callable[[str], Path]) -> None:
    disk = tmpfs("96k")
    args = ["compare", *TINY, "--inits", "he_normal", "--model", "mlp:64,64", "--out", str(disk / "s")]
    ran = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert ran.exit_code in (2, 3), ran.output
    assert "disk is full" in " ".join(ran.output.split()) or "No space left" in ran.output
    assert "Traceback" not in ran.output
    assert not list(disk.rglob("*.tmp"))  # nothing half-written left behind


@pytest.mark.parametrize(
    ("error", "expected"),
    [(PermissionError(13, "Permission denied", "/data/s"), "cannot write /data/s: permission denied; choose a folder "
      "you can write (--out) or change its permissions."),
     (OSError(28, "No space left on device", "/data/s/x.pt"), "cannot write /data/s/x.pt: the disk is full"),
     (OSError(30, "Read-only file system", "/media/s/.lock"), "the file system is read-only"),
     (FileExistsError(17, "File exists", "/data/s"), "a file is in the way where a folder should be")],
    ids=["permission", "full", "read-only", "file-in-the-way"],
)  # fmt: skip
def test_operating_system_errors_are_one_line_with_the_fix(
    error: OSError, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Permission is not exercised on a real file system here: these tests run as root, whom permissions do not stop.
    from initlab.cli._app import os_failure

    exit_ = os_failure(error)
    assert exit_.exit_code == 2
    assert expected in " ".join(capsys.readouterr().err.split())
