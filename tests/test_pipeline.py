"""The study pipeline's parts on their own: overrides of a spec, the plan (where resume lives), the sink that applies
typed events to the Store, the shard wrapper's error handling, checkpoints, and the deprecated top-level names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import initlab
from initlab.store import EpochRecord, LayerStat, RunSpec, Store
from initlab.studies import Arm, Study, TrainSettings, build, checkpoints, plan
from initlab.studies.events import Diagnosed, EpochDone, ShardDone, ShardFailed, TestDone
from initlab.studies.shard import ShardRun, ShardTask, run_shard
from initlab.studies.sink import Progress, Sink


def tiny_study(**fields: object) -> Study:
    settings = {"name": "tiny", "dataset": "digits", "model": "mlp:8", "seeds": (0, 1)}
    arms = (Arm("he_normal", "he_normal"), Arm("zeros", "zeros"))
    return Study(arms=arms, train=TrainSettings(epochs=2, batch_size=64), **{**settings, **fields})  # type: ignore[arg-type]


# -- spec -------------------------------------------------------------------------------------------------------------
def test_overrides_replace_what_is_given_and_keep_the_rest() -> None:
    base = tiny_study()
    same = base.with_overrides(name=None, dataset=None, inits=None, seeds=None, train={"lr": None})
    assert same == base
    changed = base.with_overrides(inits="glorot_uniform, lsuv", seeds=3, model="mlp:4", train={"lr": 0.5})
    assert [(a.label, a.scheme) for a in changed.arms] == [("glorot_uniform", "glorot_uniform"), ("lsuv", "lsuv")]
    assert changed.seeds == (0, 1, 2)
    assert (changed.model, changed.train.lr, changed.train.batch_size) == ("mlp:4", 0.5, 64)
    assert base.with_overrides(seeds=[5, 7]).seeds == (5, 7)
    assert [a.label for a in base.with_overrides(inits="all").arms][:2] == ["zeros", "ones"]


def test_steps_without_epochs_replace_the_files_epochs() -> None:
    base = tiny_study().with_overrides(train={"epochs": 9})
    assert base.with_overrides(train={"steps": 5}).train.epochs == TrainSettings().epochs
    assert base.with_overrides(train={"steps": 5, "epochs": 4}).train.epochs == 4
    assert base.with_overrides(train={"steps": 5}).train.steps == 5


def test_overrides_are_validated() -> None:
    with pytest.raises(ValueError, match="seeds must be distinct"):
        tiny_study().with_overrides(seeds=[1, 1])
    with pytest.raises(ValueError, match="unknown training setting 'optimiser'"):
        tiny_study().with_overrides(train={"optimiser": "sgd"})


def test_the_default_study_is_the_articles_quick_form() -> None:
    study = Study.quick_article()
    assert [a.label for a in study.arms] == list(initlab.studies.ARTICLE_INITS)
    assert (study.seeds, study.train.epochs, study.model, study.dataset) == ((0, 1), 3, "keras-mnist", "mnist")


# -- plan: where resume lives -----------------------------------------------------------------------------------------
def epoch_row(run_id: str, epoch: int) -> EpochRecord:
    return EpochRecord(run_id, epoch, 1.0, 0.5, 1.0, 0.5, 0.1, [LayerStat("0.weight", 1.0, 0.1)])


def test_the_plan_starts_each_run_from_its_last_committed_epoch(tmp_path: Path) -> None:
    study = tiny_study()
    with Store.in_dir(tmp_path) as store:
        store.init_study(study.name, study.config(), meta={})
        first = plan.register(study, store, train_size=1000)
        assert [r.start_epoch for r in first.runs] == [0, 0, 0, 0]
        assert first.pending == first.runs
        assert (first.progress.total_epochs, first.progress.done_epochs) == (8, 0)
        store.record_epochs([epoch_row("he_normal/s0", 1), epoch_row("zeros/s0", 1)])
        store.record_epochs([epoch_row("he_normal/s1", 1)])
        store.record_epochs([epoch_row("he_normal/s1", 2)])
        store.record_test("he_normal/s1", {"test_loss": 1.0, "test_acc": 0.5}, wall_time_s=0.1)
        again = plan.register(study, store, train_size=1000)
        assert {r.run_id: r.start_epoch for r in again.pending} == {"he_normal/s0": 1, "zeros/s0": 1, "zeros/s1": 0}
        assert (again.progress.done_epochs, again.progress.finished_runs) == (4, 1)
        # The shards are cut over all runs, so the resumed populations are those of the first start: one
        # population (every run), split by where each run resumes.
        assert plan.shards(first.runs, first.pending) == [list(first.runs)]
        resumed = plan.shards(again.runs, again.pending)
        assert [[r.run_id for r in s] for s in resumed] == [["zeros/s1"], ["he_normal/s0", "zeros/s0"]]
        assert plan.unfinished(store, first.runs) == list(again.pending)


def test_a_shard_with_runs_at_different_epochs_is_split() -> None:
    runs = [ShardRun("a/s0", 0, 0, 2), ShardRun("b/s0", 1, 0, 1), ShardRun("c/s0", 2, 0, 2)]
    assert plan.shards(runs, runs) == [[runs[1]], [runs[0], runs[2]]]


def test_shards_depend_on_the_study_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = [ShardRun(f"a{i}/s{s}", i, s, 0) for s in range(3) for i in range(100)]
    monkeypatch.setattr(plan, "MAX_SHARD_RUNS", 128)
    cut = plan.shards(runs, runs)
    assert [len(s) for s in cut] == [100, 100, 100]  # 300 runs: three near-equal shards of at most 128, seed order
    assert [s[0].seed for s in cut] == [0, 1, 2]
    assert plan.shards(runs, runs[50:]) == [cut[0][50:], cut[1], cut[2]]


# -- sink -------------------------------------------------------------------------------------------------------------
@pytest.fixture
def sink(tmp_path: Path) -> Sink:
    store = Store.in_dir(tmp_path)
    study = tiny_study(seeds=(0,))
    store.init_study(study.name, study.config(), meta={})
    store.add_runs([RunSpec(f"{a.label}/s0", a.label, {"name": a.scheme}, 0) for a in study.arms])
    seen: list[Progress] = []
    out = Sink(store, tmp_path, Progress(total_epochs=4, total_runs=2), seen.append)
    out.add([ShardRun("he_normal/s0", 0, 0, 0), ShardRun("zeros/s0", 1, 0, 0)])
    return out


def test_the_sink_commits_epochs_then_prunes_older_checkpoints(sink: Sink) -> None:
    for epoch in (1, 2):
        checkpoints.save(sink.out_dir, "he_normal/s0", epoch, {"params": {"w": torch.ones(2)}})
    sink(EpochDone(0, 1, (epoch_row("he_normal/s0", 1), epoch_row("zeros/s0", 1)), diverged=("zeros/s0",)))
    assert checkpoints.path(sink.out_dir, "he_normal/s0", 1).exists()  # epoch 1 is the last committed one
    sink(EpochDone(0, 2, (epoch_row("he_normal/s0", 2),)))
    assert not checkpoints.path(sink.out_dir, "he_normal/s0", 1).exists()
    assert checkpoints.load(sink.out_dir, "he_normal/s0", 2)["epoch"] == 2
    sink(Diagnosed(0, "he_normal/s0", 2, {"layers": []}))
    sink(TestDone(0, "he_normal/s0", {"test_loss": 0.5, "test_acc": 0.9}, 0.1))
    assert not checkpoints.path(sink.out_dir, "he_normal/s0", 2).parent.exists()
    sink(ShardDone(0))
    status = {r.run_id: (r.status, r.last_epoch) for r in sink.store.runs()}
    assert status == {"he_normal/s0": ("finished", 2), "zeros/s0": ("diverged", 1)}
    assert sink.store.diagnostics("he_normal/s0") == [("he_normal/s0", 2, {"layers": []})]
    assert (sink.progress.done_epochs, sink.progress.finished_runs, sink.progress.diverged_runs) == (3, 1, 1)
    assert not sink.running


def test_a_failed_shard_marks_only_its_unfinished_runs(sink: Sink) -> None:
    sink(TestDone(0, "he_normal/s0", {"test_loss": 0.5, "test_acc": 0.9}, 0.1))
    sink(ShardFailed(0, "RuntimeError: out of memory"))
    runs = {r.run_id: r for r in sink.store.runs()}
    assert runs["he_normal/s0"].status == "finished"
    assert (runs["zeros/s0"].status, runs["zeros/s0"].message) == ("failed", "RuntimeError: out of memory")
    assert (sink.progress.failed_runs, sink.progress.message) == (1, "RuntimeError: out of memory")
    with pytest.raises(TypeError, match="unknown study event"):
        sink("epoch")  # type: ignore[arg-type]


# -- shard ------------------------------------------------------------------------------------------------------------
def test_run_shard_ends_with_exactly_one_done_or_failed(tmp_path: Path) -> None:
    study = tiny_study(seeds=(0,), diagnose_epochs=())
    events: list[object] = []
    run_shard(ShardTask(study, (ShardRun("he_normal/s0", 0, 0, 0),), tmp_path, 3, "cpu", 1), events.append)
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["EpochDone", "EpochDone", "TestDone", "ShardDone"]
    assert all(e.shard == 3 for e in events)  # type: ignore[attr-defined]
    events.clear()
    # A run that claims a committed epoch whose checkpoint is gone: the shard fails and says what to do.
    run_shard(ShardTask(study, (ShardRun("zeros/s0", 1, 0, 1),), tmp_path, 4, "cpu", 1), events.append)
    assert len(events) == 1
    assert isinstance(events[0], ShardFailed)
    assert "checkpoint" in events[0].message
    assert "FileNotFoundError" in events[0].message


def test_the_report_rebuilds_the_weights_a_run_started_from(tmp_path: Path) -> None:
    study = tiny_study(seeds=(0,), diagnose_epochs=())
    source = build.InitSource(study)
    train = build.load_split(study, "train")
    by_runner = build.build_model(study, train.input_shape, train.num_classes)
    build.initialize(by_runner, "lsuv", seed=5, sample=build.init_sample(train.x, 5))
    rebuilt = source.initial_model(Arm("lsuv", "lsuv"), 5)
    for a, b in zip(by_runner.parameters(), rebuilt.parameters(), strict=True):
        assert torch.equal(a, b)


def test_an_arm_typo_names_the_arm_and_the_closest_name() -> None:
    with pytest.raises(ValueError, match=r"arm 'x': .*Did you mean 'he_normal'"):
        build.check_arm(Arm("x", "he_normall"))
    with pytest.raises(TypeError, match="arm 'y'"):
        build.check_arm(Arm("y", 3))  # type: ignore[arg-type]


# -- the top-level package --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["Store", "Study", "Arm", "run_study", "summarize", "TrainSettings"])
def test_old_top_level_study_names_still_work_with_a_warning(name: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"initlab.studies.{name}"):
        value = getattr(initlab, name)
    assert value is getattr(initlab.studies, name)


def test_every_public_name_resolves_and_lsuv_is_still_served() -> None:
    for name in initlab.__all__:
        assert getattr(initlab, name) is not None, name
    assert initlab.LSUV is initlab.schemes.LSUV
    assert callable(initlab.lsuv)
    assert initlab.lsuv is initlab.schemes.lsuv
    assert [e.name for e in initlab.catalog()][:2] == ["Zeros", "Ones"]
    with pytest.raises(AttributeError, match="no attribute 'HeNormall'"):
        _ = initlab.HeNormall


def test_the_cli_answers_version_and_help_without_torch() -> None:
    code = (
        "import sys; from typer.testing import CliRunner; from initlab.cli import app; r = CliRunner();"
        "v = r.invoke(app, ['--version']); h = r.invoke(app, ['--help']);"
        "assert v.exit_code == h.exit_code == 0; assert 'initlab' in v.output and 'compare' in h.output;"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "False"
