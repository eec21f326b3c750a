"""``run_study``: a study from its spec to stored epochs, resumable after a kill.

The path, one module a step: check the spec (:mod:`~initlab.studies.build`) and the executor
(:mod:`~initlab.studies.executors`); take the study folder's lock (:mod:`~initlab.studies.lock`); record the study
and its runs in the Store and plan what is left (:mod:`~initlab.studies.plan`, the one place resume is decided); let
the executor train the shards (:mod:`~initlab.studies.shard`) while the driver applies their events to the Store
(:mod:`~initlab.studies.sink`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from initlab.store import Store
from initlab.studies import build, executors, plan
from initlab.studies.executors import Executor
from initlab.studies.lock import study_lock
from initlab.studies.machine import environment_meta
from initlab.studies.sink import COMPLETE, Progress, Sink
from initlab.studies.spec import Study


def check_study(study: Study, *, executor: str = "local", address: str | None = None) -> None:
    """Everything :func:`run_study` checks before it touches the folder: the arms' schemes, the model spec, the
    executor and its address, and that the executor's extra is installed (ValueError, TypeError or ImportError)."""
    executors.load(executor, address)
    build.check(study)


def run_study(
    study: Study,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    device: str = "cpu",
    on_progress: Callable[[Progress], None] | None = None,
    executor: Executor = "local",
    address: str | None = None,
) -> Path:
    """Run (or resume) ``study`` in ``out_dir``; return the folder. Finished runs are never repeated.

    ``executor="local"`` trains the shards in worker processes on this machine; ``executor="ray"`` runs each shard
    as a task on the Ray cluster at ``address`` (``"auto"``, ``"ray://host:10001"``; None connects to the cluster
    this process already joined, or starts a local one) while this process stays the Store's only writer. Either
    executor resumes a study that the other started.
    """
    drive = executors.load(executor, address).drive
    study = build.pinned(study)
    build.check(study)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with study_lock(out), Store.in_dir(out) as store:
        if store.has_study():
            build.check_same_data(store.study().config, study)
        store.init_study(study.name, study.config(), meta=environment_meta(device=device))
        # Read once here and handed to every shard (shared memory for worker processes): a worker does not read,
        # decompress and normalize the data set again.
        splits = build.load_splits(study)
        study_plan = plan.register(study, store, len(splits[0]), out)
        if on_progress:
            on_progress(study_plan.progress)
        if not study_plan.pending:
            # Killed after the last run's test but before the study was marked finished: mark it now.
            if store.study().finished_at is None and all(r.status in COMPLETE for r in store.runs()):
                store.mark_study(finished=True)
            return out
        store.mark_study(started=True)
        sink = Sink(store, out, study_plan.progress, on_progress)
        where = {} if address is None else {"address": address}  # checked above: only the Ray executor takes one
        drive(study, study_plan, sink, out_dir=out, device=device, workers=workers, splits=splits, **where)
        if all(r.status in COMPLETE for r in store.runs()):
            store.mark_study(finished=True)
    return out
