"""Studies on Ray: the same numbers as the local executor, a killed worker retried from its checkpoints, no Ray."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import initlab.studies.executors
from initlab.cli import app
from initlab.store import Store
from initlab.studies import Arm, Progress, Study, run_study
from initlab.training import TrainSettings

try:
    import ray
except ImportError:  # the optional extra is not installed: only the "without Ray" tests run
    ray = None

from test_studies import stored  # what a study stored, compared the same way for both executors

needs_ray = pytest.mark.skipif(ray is None, reason='Ray is not installed (pip install "initlab[ray]")')


def digits_study(epochs: int, batch_size: int, sweep: dict | None = None) -> Study:
    return Study(
        name="digits-ray",
        dataset="digits",
        model="mlp:64;act=tanh",
        arms=(Arm("glorot_uniform", "glorot_uniform"), Arm("he_normal", "he_normal")),
        seeds=(0, 1),
        train=TrainSettings(epochs=epochs, batch_size=batch_size, lr=1e-2),
        sweep=sweep or {},
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """A local Ray instance with two CPUs, shared by this module's tests."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@needs_ray
def test_ray_executor_stores_the_same_numbers_as_the_local_one(tmp_path: Path, cluster: None) -> None:
    study = digits_study(epochs=2, batch_size=64)
    run_study(study, tmp_path / "local", workers=2)
    seen: list[Progress] = []
    run_study(study, tmp_path / "ray", workers=2, executor="ray", on_progress=seen.append)
    expected = stored(tmp_path / "local")
    assert len(expected[0]) == 4 * 2
    assert stored(tmp_path / "ray") == expected
    assert seen[-1].done_epochs == seen[-1].total_epochs == 8
    assert seen[-1].finished_runs == 4
    with Store.in_dir(tmp_path / "ray", readonly=True) as store:
        assert store.study().finished_at is not None
        assert all(r.attempts == 0 for r in store.runs())
    # Running it again (on either executor) repeats nothing.
    run_study(study, tmp_path / "ray", workers=2, executor="ray")
    assert stored(tmp_path / "ray") == expected


def slow_study() -> Study:
    """Small batches, so that an epoch takes long enough (about 1 s) to stop a study in its middle; two widths, so
    that it has two populations (two shards: width 32, then width 64)."""
    return digits_study(epochs=4, batch_size=8, sweep={"width": [32, 64]})


@pytest.fixture(scope="module")
def slow_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[tuple], dict[str, dict]]:
    """``slow_study`` trained without interruption by the local executor with two workers."""
    folder = tmp_path_factory.mktemp("reference") / "local"
    run_study(slow_study(), folder, workers=2)
    return stored(folder)


def kill_shard_0(folder: Path, caplog: pytest.LogCaptureFixture, killed: list[int]) -> Callable[[Progress], None]:
    """A progress callback that SIGKILLs the worker of shard 0 (the runs of width 32) once its epoch 1 is committed."""
    caplog.set_level(logging.INFO, logger="initlab.studies.sink")  # the driver logs where each task runs

    def on_progress(progress: Progress) -> None:
        if killed or not (folder / "study.sqlite").exists():
            return
        with Store.in_dir(folder, readonly=True) as store:
            if store.run("glorot_uniform@width=32/s0").last_epoch < 1:
                return
        pid = next(r.pid for r in caplog.records if getattr(r, "shard", None) == 0)
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    return on_progress


@needs_ray
def test_a_killed_worker_is_retried_from_its_checkpoint(
    tmp_path: Path, cluster: None, slow_reference: tuple, caplog: pytest.LogCaptureFixture
) -> None:
    study, expected = slow_study(), slow_reference
    folder = tmp_path / "ray"
    killed: list[int] = []
    run_study(study, folder, workers=2, executor="ray", on_progress=kill_shard_0(folder, caplog, killed))
    assert killed, "the study finished before its worker could be killed"
    epochs, runs = stored(folder)
    assert len(epochs) == len(set(epochs)) == 8 * 4  # every epoch of every run, each once
    assert (epochs, runs) == expected
    with Store.in_dir(folder, readonly=True) as store:
        attempts = {r.run_id: r.attempts for r in store.runs()}
    assert attempts == {f"{arm}@width={w}/s{s}": int(w == 32) for arm in ("glorot_uniform", "he_normal")
                        for w in (32, 64) for s in (0, 1)}  # fmt: skip
    assert any("retry 1 of 3" in r.getMessage() for r in caplog.records)


@needs_ray
def test_without_retries_left_the_runs_fail_and_a_resume_completes_them(
    tmp_path: Path,
    cluster: None,
    slow_reference: tuple,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from initlab.studies.executors import ray as ray_executor

    monkeypatch.setattr(ray_executor, "MAX_RETRIES", 0)
    folder = tmp_path / "ray"
    killed: list[int] = []
    run_study(slow_study(), folder, workers=2, executor="ray", on_progress=kill_shard_0(folder, caplog, killed))
    assert killed
    with Store.in_dir(folder, readonly=True) as store:
        runs = {r.run_id: r for r in store.runs()}
        assert store.study().finished_at is None
    assert {rid for rid, r in runs.items() if r.status == "failed"} == {rid for rid in runs if "width=32" in rid}
    assert "retried 0 times" in (runs["he_normal@width=32/s0"].message or "")
    assert runs["he_normal@width=64/s1"].status == "finished"
    monkeypatch.undo()
    run_study(slow_study(), folder, workers=2, executor="ray")  # the resume continues from the checkpoints
    assert stored(folder) == slow_reference


@needs_ray
def test_an_interrupted_driver_resumes_without_losing_or_repeating_epochs(
    tmp_path: Path, cluster: None, slow_reference: tuple
) -> None:
    folder = tmp_path / "ray"

    def interrupt(progress: Progress) -> None:
        if progress.done_epochs >= 4:  # some epochs are committed, and the tasks are still training
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_study(slow_study(), folder, workers=2, executor="ray", on_progress=interrupt)
    partial = stored(folder)[0]
    assert 4 <= len(partial) < 16, len(partial)
    run_study(slow_study(), folder, workers=2, executor="ray")  # what `initlab compare --resume` does
    assert stored(folder) == slow_reference
    with Store.in_dir(folder, readonly=True) as store:
        assert all(r.attempts == 0 for r in store.runs())  # a resume is not a retry


@needs_ray
def test_compare_command_on_ray(tmp_path: Path, cluster: None) -> None:
    out = tmp_path / "cmp"
    args = ["compare", "--dataset", "digits", "--model", "mlp:16", "--inits", "he_normal,zeros", "--seeds", "1"]
    args += ["--epochs", "1", "--executor", "ray", "--out", str(out), "--no-report"]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    table = result.output.split("ranked by test accuracy")[1]
    assert table.index("he_normal") < table.index("zeros")


def test_without_ray_the_executor_stops_at_once_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail as if it were not installed
    monkeypatch.delitem(sys.modules, "initlab.studies.executors.ray", raising=False)
    monkeypatch.delattr(initlab.studies.executors, "ray", raising=False)
    with pytest.raises(ImportError, match=r'pip install "initlab\[ray\]"'):
        run_study(digits_study(epochs=1, batch_size=64), tmp_path / "s", executor="ray")
    assert not (tmp_path / "s").exists()
    args = ["compare", "--dataset", "digits", "--executor", "ray", "--out", str(tmp_path / "c")]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert 'pip install "initlab[ray]"' in result.output
    assert not (tmp_path / "c").exists()


def test_executor_and_address_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="executor"):
        run_study(digits_study(epochs=1, batch_size=64), tmp_path / "s", executor="dask")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="only goes with executor='ray'"):
        run_study(digits_study(epochs=1, batch_size=64), tmp_path / "s", address="auto")
    assert not (tmp_path / "s").exists()
