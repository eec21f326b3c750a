"""Where a study's shards run. Each executor is one module with one entry point, ``drive(plan, sink, ...)``:

- ``local``: worker processes on this machine (or this process, with one worker);
- ``ray``: tasks on a Ray cluster (the optional extra ``initlab[ray]``; only that module imports Ray).

Both cut the same shards (:func:`initlab.studies.plan.shards`), run them with
:func:`initlab.studies.shard.run_shard`, and hand every event to the driver's
:class:`~initlab.studies.sink.Sink`, the Store's only writer.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Literal

from initlab.checks import check_choice

Executor = Literal["local", "ray"]
#: The executors a study can run on.
EXECUTORS: tuple[Executor, ...] = ("local", "ray")


def load(executor: str, address: str | None = None) -> ModuleType:
    """The module of ``executor`` after checking the options; ImportError naming the extra when Ray is missing."""
    name = check_choice("executor", executor, EXECUTORS)
    if address is not None and name != "ray":
        raise ValueError(f"address={address!r} only goes with executor='ray'.")
    return importlib.import_module(f"initlab.studies.executors.{name}")
