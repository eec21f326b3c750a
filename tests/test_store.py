"""Tests of the Store: exact round trips (NaN, inf and -0.0 included), idempotent and conflicting writes, schema and
file checks, WAL, the study lock across processes, crash safety under SIGKILL, and the CSV/JSON exports."""

from __future__ import annotations

import csv
import itertools
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import initlab.store
from initlab.store import DB_FILENAME, EpochRecord, LayerStat, RunSpec, Store
from initlab.studies.lock import study_lock
from initlab.studies.machine import environment_meta

NAN, INF = float("nan"), float("inf")
CONFIG = {"dataset": "mnist", "epochs": 20, "lr": 1e-3, "arms": ["glorot_uniform", "he_normal"], "model": {"h": 256}}
META = {"initlab": "0.1.0", "torch": "2.13.0", "hostname": "box"}

# A child process imports initlab.store and initlab.studies.lock without initlab/__init__.py and
# initlab/studies/__init__.py (which import torch, ~2 s): stub packages whose __path__ are the source folders. The store
# itself only needs the standard library, initlab.checks and initlab.fileio; the lock only the standard library.
_CHILD_PRELUDE = """
import os, sys, types
for name, folder in (("initlab", sys.argv[1]), ("initlab.studies", os.path.join(sys.argv[1], "studies"))):
    pkg = types.ModuleType(name)
    pkg.__path__ = [folder]
    sys.modules[name] = pkg
from initlab.store import EpochRecord, LayerStat, RunSpec, Store
from initlab.studies.lock import study_lock
"""
_SRC = str(Path(initlab.store.__file__).parents[1])  # src/initlab (initlab.store is the package store/)


def _child(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", _CHILD_PRELUDE + code, _SRC, *args]


def same_float(a: float | None, b: float | None) -> bool:
    """Exact equality that also tells NaN (equal to NaN) and -0.0 (not equal to 0.0)."""
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def same_epoch(a: EpochRecord, b: EpochRecord) -> bool:
    floats = ("train_loss", "train_acc", "val_loss", "val_acc", "wall_time_s")
    return (
        (a.run_id, a.epoch) == (b.run_id, b.epoch)
        and all(same_float(getattr(a, k), getattr(b, k)) for k in floats)
        and len(a.layers) == len(b.layers)
        and all(
            x.name == y.name and same_float(x.weight_norm, y.weight_norm) and same_float(x.grad_norm, y.grad_norm)
            for x, y in zip(a.layers, b.layers, strict=True)
        )
        and a.extra.keys() == b.extra.keys()
        and all(same_float(a.extra[k], b.extra[k]) for k in a.extra)
    )


def epoch_rec(run_id: str, epoch: int, loss: float = 0.5, *, wall: float = 1.25, n_layers: int = 2) -> EpochRecord:
    layers = [LayerStat(f"fc{j}", weight_norm=1.0 / (j + epoch), grad_norm=0.1 * j) for j in range(n_layers)]
    return EpochRecord(run_id, epoch, loss, 0.9, loss * 1.1, 0.875, wall, layers=layers, extra={"lr": 1e-3})


SPECS = [
    RunSpec("glorot_uniform/s0", "glorot_uniform", {"name": "glorot_uniform", "gain": 1.0}, 0),
    RunSpec("glorot_uniform/s1", "glorot_uniform", {"name": "glorot_uniform", "gain": 1.0}, 1),
    RunSpec("he_normal/s0", "he_normal", {"name": "he_normal"}, 0),
]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store.in_dir(tmp_path / "study") as s:
        s.init_study("demo", CONFIG, meta=META)
        s.add_runs(SPECS)
        yield s


# -- round trips ---------------------------------------------------------------------------------------------------
def test_round_trip_survives_reopening(tmp_path: Path) -> None:
    study_dir = tmp_path / "study"
    rows = [epoch_rec(s.run_id, e, loss=1.0 / (e + i)) for e in (1, 2) for i, s in enumerate(SPECS)]
    with Store.in_dir(study_dir) as s:
        s.init_study("demo", CONFIG, meta=META)
        s.add_runs(SPECS)
        s.mark_study(started=True)
        for e in (1, 2):
            s.record_epochs([r for r in rows if r.epoch == e])
        s.record_test("he_normal/s0", {"loss": 0.1 + 0.2, "acc": 0.9731}, wall_time_s=12.5)
        s.set_status("glorot_uniform/s1", "diverged", message="loss is NaN", diverged_epoch=2)
        s.bump_attempts("glorot_uniform/s0")
        s.mark_study(finished=True)
    assert (study_dir / DB_FILENAME).is_file()

    with Store.in_dir(study_dir, readonly=True) as s:
        study = s.study()
        assert study.name == "demo"
        assert study.config == CONFIG
        assert study.meta == META
        assert study.created_at.endswith("+00:00")
        assert study.started_at is not None
        assert study.finished_at is not None
        assert study.duration_s is not None
        assert study.duration_s >= 0

        runs = {r.run_id: r for r in s.runs()}
        assert [r.run_id for r in s.runs()] == [spec.run_id for spec in SPECS]  # the order they were added
        for spec in SPECS:
            r = runs[spec.run_id]
            assert (r.arm, r.scheme, r.seed, r.last_epoch) == (spec.arm, spec.scheme, spec.seed, 2)
        assert runs["he_normal/s0"].status == "finished"
        assert runs["he_normal/s0"].test_metrics == {"loss": 0.1 + 0.2, "acc": 0.9731}  # exact, not 0.3
        assert runs["he_normal/s0"].wall_time_s == 12.5
        assert runs["glorot_uniform/s0"].status == "running"
        assert runs["glorot_uniform/s0"].attempts == 1
        assert runs["glorot_uniform/s0"].test_metrics is None
        assert (runs["glorot_uniform/s1"].status, runs["glorot_uniform/s1"].diverged_epoch) == ("diverged", 2)
        assert runs["glorot_uniform/s1"].message == "loss is NaN"

        stored = s.epochs()
        expected = sorted(rows, key=lambda r: ([x.run_id for x in SPECS].index(r.run_id), r.epoch))
        assert len(stored) == len(expected)
        assert all(same_epoch(a, b) for a, b in zip(stored, expected, strict=True))
        assert [e.epoch for e in s.epochs("he_normal/s0")] == [1, 2]
        assert stored[0] == expected[0]  # plain dataclass equality holds for finite values

        stats = s.layer_stats("he_normal/s0", layer="fc1")
        assert [(rid, ep, st.name) for rid, ep, st in stats] == [("he_normal/s0", 1, "fc1"), ("he_normal/s0", 2, "fc1")]


SPECIAL = [NAN, INF, -INF, -0.0, 0.0, 5e-324, 1.7976931348623157e308, 0.1 + 0.2, -1e-300]


@pytest.mark.parametrize("value", SPECIAL, ids=repr)
def test_special_floats_round_trip_everywhere(store: Store, value: float) -> None:
    rid = "glorot_uniform/s0"
    rec = EpochRecord(
        rid, 1, value, value, value, value, 0.5,
        layers=[LayerStat("fc", value, value), LayerStat("out", value, None)], extra={"x": value},
    )  # fmt: skip
    store.record_epochs([rec])
    store.record_test(rid, {"loss": value}, wall_time_s=1.0)
    store.record_diagnostics(rid, 0, {"mean": value})
    (back,) = store.epochs(rid)
    assert same_epoch(back, rec)
    assert back.layers[1].grad_norm is None
    assert same_float(store.run(rid).test_metrics["loss"], value)
    assert same_float(store.diagnostics(rid)[0][2]["mean"], value)


def test_nan_is_null_in_sql_and_named_in_special(store: Store) -> None:
    store.record_epochs([EpochRecord("he_normal/s0", 1, NAN, 0.1, INF, None, 0.5)])
    row = store.conn.execute("SELECT train_loss, val_loss, val_acc, special FROM epochs").fetchone()
    assert row[0] is None
    assert row[1] == INF
    assert row[2] is None
    assert json.loads(row[3]) == {"train_loss": "nan"}  # val_acc is None (missing), so it has no entry
    (back,) = store.epochs()
    assert math.isnan(back.train_loss)
    assert back.val_loss == INF
    assert back.val_acc is None


_counter = itertools.count(1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    metrics=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=4, max_size=4),
    norms=st.lists(st.tuples(st.floats(), st.floats() | st.none()), max_size=3),
    extra=st.dictionaries(st.text(min_size=1, max_size=5), st.floats(), max_size=3),
)
def test_property_any_float_round_trips(store: Store, metrics, norms, extra) -> None:
    epoch = next(_counter)  # one store for all examples: a fresh epoch each time
    layers = [LayerStat(f"l{i}", w, g) for i, (w, g) in enumerate(norms)]
    rec = EpochRecord("he_normal/s0", epoch, *metrics, 0.25, layers=layers, extra=extra)
    store.record_epochs([rec])
    back = next(e for e in store.epochs("he_normal/s0") if e.epoch == epoch)
    assert same_epoch(back, rec)
    store.record_epochs([rec])  # identical again: a no-op, whatever the values
    assert sum(e.epoch == epoch for e in store.epochs("he_normal/s0")) == 1


def test_numpy_like_numbers_are_accepted_and_bad_values_rejected(store: Store) -> None:
    np = pytest.importorskip("numpy")
    store.record_epochs([EpochRecord("he_normal/s0", 1, np.float32(0.5), 1, np.float64(0.25), 0.5, 2)])
    (back,) = store.epochs()
    assert (back.train_loss, back.train_acc, back.val_loss) == (0.5, 1.0, 0.25)
    assert isinstance(back.train_acc, float)
    with pytest.raises(TypeError, match=r"train_loss of run 'he_normal/s0' epoch 2 must be a real number"):
        store.record_epochs([EpochRecord("he_normal/s0", 2, "0.5", 1.0, 0.1, 0.1, 1.0)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="train_acc"):
        store.record_epochs([EpochRecord("he_normal/s0", 2, 0.5, True, 0.1, 0.1, 1.0)])
    with pytest.raises(ValueError, match="epoch of run 'he_normal/s0' must be >= 1"):
        store.record_epochs([EpochRecord("he_normal/s0", 0, 0.5, 0.5, 0.5, 0.5, 1.0)])
    with pytest.raises(ValueError, match=r"wall_time_s .* must be finite"):
        store.record_epochs([epoch_rec("he_normal/s0", 2, wall=NAN)])
    with pytest.raises(ValueError, match="layer 'fc' appears twice"):
        store.record_epochs([EpochRecord("he_normal/s0", 2, 0.5, 0.5, 0.5, 0.5, 1.0, [LayerStat("fc", 1, 1)] * 2)])
    assert [e.epoch for e in store.epochs()] == [1]


# -- idempotence and conflicts -------------------------------------------------------------------------------------
def test_identical_epoch_is_a_no_op_even_with_another_wall_time(store: Store) -> None:
    rid = "glorot_uniform/s0"
    store.record_epochs([epoch_rec(rid, 1, loss=NAN)])
    store.set_status(rid, "diverged", diverged_epoch=1)
    store.record_epochs([epoch_rec(rid, 1, loss=NAN, wall=99.0)])  # a resumed study replays the epoch
    (back,) = store.epochs(rid)
    assert back.wall_time_s == 1.25  # the first write is kept
    assert store.run(rid).status == "diverged"  # a replay does not touch the status
    assert store.conn.execute("SELECT count(*) FROM layer_stats").fetchone()[0] == 2


def test_duplicate_epoch_with_other_values_raises_and_stores_nothing_of_the_batch(store: Store) -> None:
    a, b = "glorot_uniform/s0", "he_normal/s0"
    store.record_epochs([epoch_rec(a, 1, loss=0.5)])
    with pytest.raises(ValueError, match=r"run 'glorot_uniform/s0' epoch 1 is already stored with different values"):
        store.record_epochs([epoch_rec(b, 1), epoch_rec(a, 1, loss=0.25)])
    assert [(e.run_id, e.epoch, e.train_loss) for e in store.epochs()] == [(a, 1, 0.5)]
    assert store.run(b).last_epoch == 0
    assert store.run(b).status == "pending"

    changed_layer = epoch_rec(a, 1, loss=0.5)
    changed_layer = EpochRecord(**{**changed_layer.__dict__, "layers": [LayerStat("fc0", 7.0, 0.0)]})
    with pytest.raises(ValueError, match="already stored"):
        store.record_epochs([changed_layer])
    with pytest.raises(ValueError, match="already stored"):
        store.record_epochs([EpochRecord(**{**epoch_rec(a, 1, loss=0.5).__dict__, "extra": {"lr": 1.0}})])


def test_duplicate_epoch_within_one_batch(store: Store) -> None:
    rid = "he_normal/s0"
    store.record_epochs([epoch_rec(rid, 1), epoch_rec(rid, 1)])  # identical twice: stored once
    assert len(store.epochs(rid)) == 1
    with pytest.raises(ValueError, match="already stored"):
        store.record_epochs([epoch_rec(rid, 2, loss=0.1), epoch_rec(rid, 2, loss=0.2)])
    assert len(store.epochs(rid)) == 1


def test_epochs_update_progress_and_status(store: Store) -> None:
    rid = "he_normal/s0"
    assert store.run(rid).status == "pending"
    assert store.run(rid).last_epoch == 0
    store.record_epochs([epoch_rec(rid, 1)])
    assert (store.run(rid).status, store.run(rid).last_epoch) == ("running", 1)
    store.set_status(rid, "failed", message="out of memory")
    store.bump_attempts(rid)
    store.record_epochs([epoch_rec(rid, 2)])  # the retry goes on
    run = store.run(rid)
    assert (run.status, run.last_epoch, run.attempts) == ("running", 2, 1)
    store.record_test(rid, {"acc": 0.5}, wall_time_s=3.0)
    assert store.run(rid).status == "finished"


def test_unknown_run_and_bad_status_messages(store: Store) -> None:
    with pytest.raises(ValueError, match=r"unknown run 'he_normal/s9'.*add_runs.*Did you mean"):
        store.record_epochs([epoch_rec("he_normal/s9", 1)])
    with pytest.raises(ValueError, match="Did you mean 'finished'"):
        store.set_status("he_normal/s0", "finshed")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="only goes with status='diverged'"):
        store.set_status("he_normal/s0", "failed", diverged_epoch=3)
    with pytest.raises(ValueError, match="unknown run"):
        store.bump_attempts("nope")
    with pytest.raises(ValueError, match="unknown run"):
        store.epochs("nope")


def test_add_runs_is_idempotent_and_rejects_conflicts(store: Store) -> None:
    store.add_runs(SPECS)  # a resumed study registers its runs again
    assert len(store.runs()) == len(SPECS)
    other = RunSpec("he_normal/s0", "he_normal", {"name": "he_normal", "mode": "fan_out"}, 0)
    new = RunSpec("lecun/s0", "lecun", {}, 0)
    with pytest.raises(ValueError, match=r"run 'he_normal/s0' is stored as .* another study"):
        store.add_runs([new, other])
    assert [r.run_id for r in store.runs()] == [s.run_id for s in SPECS]  # the batch is all or nothing
    with pytest.raises(TypeError, match="seed of run 'x' must be an integer"):
        store.add_runs([RunSpec("x", "a", {}, 1.5)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="scheme of run 'x' must be JSON-serializable"):
        store.add_runs([RunSpec("x", "a", {"f": object()}, 1)])


def test_init_study_same_config_is_a_no_op_other_config_raises(store: Store) -> None:
    created = store.study().created_at
    store.init_study("demo", dict(reversed(list(CONFIG.items()))), meta={"hostname": "other"})  # key order is moot
    assert store.study().created_at == created
    assert store.study().meta == META  # the first meta is kept
    changed = {**CONFIG, "epochs": 5, "model": {"h": 128}}
    with pytest.raises(ValueError, match="holds another study") as info:
        store.init_study("demo", changed, meta=META)
    message = str(info.value)
    assert "epochs: 20 -> 5" in message
    assert "model.h: 256 -> 128" in message
    assert "new --out folder" in message
    assert "same settings" in message
    assert store.study().config == CONFIG


def test_study_before_init_and_mark_study(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as s:
        with pytest.raises(ValueError, match="holds no study yet"):
            s.study()
        with pytest.raises(ValueError, match="init_study"):
            s.mark_study(started=True)
        s.init_study("x", {}, meta={})
        s.mark_study(started=True)
        first_start = s.study().started_at
        s.mark_study(finished=True)
        assert s.study().duration_s is not None
        s.mark_study(started=True)  # resumed: the first start is kept, the finish mark cleared
        assert s.study().started_at == first_start
        assert s.study().finished_at is None
        assert s.study().duration_s is None
        with pytest.raises(ValueError, match="started=True or finished=True"):
            s.mark_study()


def test_diagnostics_round_trip_and_conflicts(store: Store) -> None:
    payload = {"layers": [{"name": "fc0", "act_std": 0.5, "dead": 0.0}], "note": "ok"}
    store.record_diagnostics("he_normal/s0", 0, payload)
    store.record_diagnostics("he_normal/s0", 0, payload)  # identical: no-op
    store.record_diagnostics("glorot_uniform/s0", 3, {"x": 1})
    with pytest.raises(ValueError, match="already stored with a different payload"):
        store.record_diagnostics("he_normal/s0", 0, {"note": "changed"})
    assert store.diagnostics() == [("glorot_uniform/s0", 3, {"x": 1}), ("he_normal/s0", 0, payload)]
    assert store.diagnostics("he_normal/s0") == [("he_normal/s0", 0, payload)]


# -- files, schema, modes ------------------------------------------------------------------------------------------
def test_wal_mode_and_pragmas(store: Store) -> None:
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 10_000
    raw = sqlite3.connect(store.path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent in the file
    raw.close()


@pytest.mark.parametrize(
    ("version", "match"),
    [(2, r"newer initlab \(store schema 2.*Upgrade initlab"), (0, r"store schema 0.*initlab version that wrote it")],
)
def test_schema_version_mismatch_raises(tmp_path: Path, version: int, match: str) -> None:
    path = tmp_path / DB_FILENAME
    Store(path).close()
    raw = sqlite3.connect(path)
    with raw:
        raw.execute("UPDATE schema_version SET version = ?", (version,))
    raw.close()
    for readonly in (False, True):
        with pytest.raises(ValueError, match=match):
            Store(path, readonly=readonly)


def test_garbage_and_foreign_files_raise(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database, just text" * 100)
    for readonly in (False, True):
        with pytest.raises(ValueError, match="is not a readable initlab study database"):
            Store(garbage, readonly=readonly)
    assert garbage.read_bytes().startswith(b"this is not")  # untouched
    foreign = tmp_path / "foreign.sqlite"
    raw = sqlite3.connect(foreign)
    raw.execute("CREATE TABLE users (id INTEGER)")
    raw.commit()
    raw.close()
    with pytest.raises(ValueError, match=r"not an initlab study store.*\['users'\]"):
        Store(foreign)


def test_readonly_mode(tmp_path: Path, store: Store) -> None:
    with pytest.raises(FileNotFoundError, match="no study database"):
        Store.in_dir(tmp_path / "missing", readonly=True)
    store.record_epochs([epoch_rec("he_normal/s0", 1)])
    with Store(store.path, readonly=True) as reader:
        assert len(reader.epochs()) == 1
        store.record_epochs([epoch_rec("he_normal/s0", 2)])  # the writer is not blocked by the open reader
        assert len(reader.epochs()) == 2
        with pytest.raises(PermissionError, match="read-only"):
            reader.bump_attempts("he_normal/s0")


def test_closed_store_raises(tmp_path: Path) -> None:
    s = Store(tmp_path / "x.sqlite")
    s.close()
    s.close()  # idempotent
    with pytest.raises(ValueError, match="is closed"):
        s.runs()


# -- study lock ----------------------------------------------------------------------------------------------------
_LOCK_CHILD = """
try:
    with study_lock(sys.argv[2]):
        print("acquired")
except RuntimeError as exc:
    print("refused:", exc)
"""


def test_study_lock_keeps_a_second_process_out(tmp_path: Path) -> None:
    study_dir = tmp_path / "study"
    with study_lock(study_dir) as lock_file:
        assert lock_file.read_text().strip() == str(os.getpid())
        out = subprocess.run(_child(_LOCK_CHILD, str(study_dir)), capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("refused:")
        assert f"already being run by another process (pid {os.getpid()})" in out.stdout
        assert "another --out" in out.stdout
        with pytest.raises(RuntimeError, match="already being run"), study_lock(study_dir):
            pass  # the same process through another file descriptor is refused as well
    out = subprocess.run(_child(_LOCK_CHILD, str(study_dir)), capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "acquired", out.stderr


# -- crash safety --------------------------------------------------------------------------------------------------
N_RUNS, N_LAYERS = 4, 6
_WRITER_CHILD = f"""
store = Store.in_dir(sys.argv[2])
runs = [RunSpec(f"arm/s{{i}}", "arm", {{"lr": 0.1}}, i) for i in range({N_RUNS})]
store.add_runs(runs)
epoch = max(r.last_epoch for r in store.runs())
print("ready", flush=True)
while True:
    epoch += 1
    store.record_epochs([
        EpochRecord(r.run_id, epoch, 1.0 / epoch, 0.5, float("nan"), r.seed + 0.0, 0.01,
                    layers=[LayerStat(f"layer{{j}}", epoch + j / 8, None) for j in range({N_LAYERS})])
        for r in runs
    ])
"""


def test_sigkill_during_writes_leaves_complete_epochs(tmp_path: Path) -> None:
    study_dir = tmp_path / "study"
    for delay in (0.05, 0.15, 0.3, 0.1):
        proc = subprocess.Popen(
            _child(_WRITER_CHILD, str(study_dir)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
            time.sleep(delay)
            assert proc.poll() is None, proc.stderr.read()  # still writing when killed
            proc.kill()  # SIGKILL: no cleanup, no rollback by the writer
        finally:
            proc.kill()
            proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL

    raw = sqlite3.connect(study_dir / DB_FILENAME)
    assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
    counts = raw.execute(
        "SELECT e.run_id, e.epoch, count(s.layer) FROM epochs e LEFT JOIN layer_stats s "
        "ON s.run_id = e.run_id AND s.epoch = e.epoch GROUP BY e.run_id, e.epoch"
    ).fetchall()
    raw.close()
    assert counts, "the writer stored nothing before it was killed"
    assert all(n == N_LAYERS for _, _, n in counts)  # every stored epoch has all its layer rows

    with Store.in_dir(study_dir, readonly=True) as s:
        epochs = s.epochs()
        last = max(e.epoch for e in epochs)
        assert last >= 2
        # One population epoch is one transaction: every run has exactly epochs 1..last, each complete.
        for run in s.runs():
            mine = [e for e in epochs if e.run_id == run.run_id]
            assert [e.epoch for e in mine] == list(range(1, last + 1))
            assert run.last_epoch == last
            assert all(e.train_loss == 1.0 / e.epoch and math.isnan(e.val_loss) for e in mine)
            assert all([st.weight_norm for st in e.layers] == [e.epoch + j / 8 for j in range(N_LAYERS)] for e in mine)


# -- export --------------------------------------------------------------------------------------------------------
def test_export_csv(store: Store, tmp_path: Path) -> None:
    store.record_epochs([epoch_rec("he_normal/s0", 1, loss=0.1 + 0.2), epoch_rec("glorot_uniform/s0", 1, loss=NAN)])
    store.record_epochs([EpochRecord("he_normal/s0", 2, -INF, 0.5, None, None, 1.0, extra={"grad_scale": 2.0})])
    store.record_test("he_normal/s0", {"acc": 0.97, "loss": 0.08}, wall_time_s=4.5)
    paths = store.export_csv(tmp_path / "csv")
    assert [p.name for p in paths] == ["runs.csv", "epochs.csv", "layers.csv"]

    def read(name: str) -> list[dict[str, str]]:
        with open(tmp_path / "csv" / name, newline="") as f:
            return list(csv.DictReader(f))

    runs = read("runs.csv")
    assert [r["run_id"] for r in runs] == [s.run_id for s in SPECS]
    he = runs[2]
    assert (he["status"], he["test_acc"], he["test_loss"], he["wall_time_s"]) == ("finished", "0.97", "0.08", "4.5")
    assert json.loads(he["scheme"]) == {"name": "he_normal"}
    assert runs[0]["test_acc"] == ""
    assert runs[0]["diverged_epoch"] == ""
    assert list(runs[0])[-1] == "scheme"

    epochs = read("epochs.csv")
    assert [(e["run_id"], e["epoch"]) for e in epochs] == [("glorot_uniform/s0", "1"), ("he_normal/s0", "1"),
                                                           ("he_normal/s0", "2")]  # fmt: skip
    assert epochs[0]["train_loss"] == "nan"
    assert epochs[0]["arm"] == "glorot_uniform"
    assert epochs[0]["seed"] == "0"
    assert float(epochs[1]["train_loss"]) == 0.1 + 0.2  # exact
    assert epochs[2]["train_loss"] == "-inf"
    assert epochs[2]["val_loss"] == ""
    assert epochs[2]["extra_grad_scale"] == "2.0"
    assert epochs[1]["extra_lr"] == "0.001"

    layers = read("layers.csv")
    assert len(layers) == 4
    assert layers[0] == {
        "run_id": "glorot_uniform/s0", "arm": "glorot_uniform", "seed": "0", "epoch": "1", "layer": "fc0",
        "weight_norm": "1.0", "grad_norm": "0.0",
    }  # fmt: skip


def test_export_json(store: Store, tmp_path: Path) -> None:
    store.record_epochs([epoch_rec("he_normal/s0", 1, loss=NAN)])
    store.record_test("he_normal/s0", {"loss": INF}, wall_time_s=1.0)
    store.record_diagnostics("he_normal/s0", 0, {"a": 1})
    path = store.export_json(tmp_path / "out" / "study.json")
    text = path.read_text()
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON token {c}"))
    assert doc["schema_version"] == Store.SCHEMA_VERSION
    assert doc["study"]["name"] == "demo"
    assert doc["study"]["config"] == CONFIG
    assert [r["run_id"] for r in doc["runs"]] == [s.run_id for s in SPECS]
    assert doc["runs"][2]["test_metrics"] == {"loss": "Infinity"}
    (epoch,) = doc["epochs"]
    assert epoch["train_loss"] == "NaN"
    assert epoch["val_loss"] == "NaN"
    assert epoch["val_acc"] == 0.875
    assert epoch["layers"] == [
        {"name": "fc0", "weight_norm": 1.0, "grad_norm": 0.0},
        {"name": "fc1", "weight_norm": 0.5, "grad_norm": 0.1},
    ]
    assert doc["diagnostics"] == [{"run_id": "he_normal/s0", "epoch": 0, "payload": {"a": 1}}]


def test_environment_meta_is_json_and_complete() -> None:
    meta = environment_meta(device="cpu")
    assert {"initlab", "torch", "python", "machine", "cpu", "hostname", "device"} <= set(meta)
    assert meta["device"] == "cpu"
    json.dumps(meta, allow_nan=False)
