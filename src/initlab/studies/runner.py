"""``run_study``: a study from its spec to stored epochs, resumable after a kill.

The path, one module a step: check the spec (:mod:`~initlab.studies.build`) and the executor
(:mod:`~initlab.studies.executors`); take the study folder's lock (:mod:`~initlab.studies.lock`); record the study
and its runs in the Store and plan what is left (:mod:`~initlab.studies.plan`, the one place resume is decided); let
the executor train the shards (:mod:`~initlab.studies.shard`) while the driver applies their events to the Store
(:mod:`~initlab.studies.sink`).
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from initlab.store import Store
from initlab.studies import build, executors, plan
from initlab.studies.executors import Executor
from initlab.studies.lock import study_lock
from initlab.studies.machine import environment_meta
from initlab.studies.sink import COMPLETE, Progress, Sink
from initlab.studies.spec import Study

log = logging.getLogger(__name__)

#: What the first ``torch.optim`` call imports (``torch._dynamo``, to keep its methods out of compiled graphs): about
#: 1.7 s on a 2-core AMD EPYC, a tenth of a small study's whole command.
_OPTIMIZER_IMPORTS = ("torch._dynamo",)


def _import_quietly(name: str) -> None:
    try:
        importlib.import_module(name)
    except Exception:  # the main thread imports it again where it is needed, and reports the error there
        log.debug("background import of %s failed", name, exc_info=True)


def warm_imports() -> threading.Thread | None:
    """Import what the first optimizer will need in a background thread, so that it overlaps with reading the data
    and building, initializing and diagnosing the models; None when it is imported already."""
    missing = [m for m in _OPTIMIZER_IMPORTS if m not in sys.modules]
    if not missing:
        return None
    thread = threading.Thread(target=lambda: [_import_quietly(m) for m in missing], name="initlab-imports",
                              daemon=True)  # fmt: skip
    thread.start()
    return thread


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
    if executor == "local":  # a Ray driver trains nothing
        warm_imports()
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
