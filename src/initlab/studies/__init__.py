"""Studies: compare initializations by training many runs, store every epoch, resume after a kill.

The path of a study, one module a step: :mod:`~initlab.studies.spec` (the validated config; its sweep axes in
:mod:`~.sweep`), :mod:`~.build` (data,
model, each run's initialization), :mod:`~.plan` (what is left, where each run starts, the shards: resume),
:mod:`~.shard` (train one shard, reporting :mod:`~.events`), :mod:`~.checkpoints`, :mod:`~.sink` (events into the
Store), :mod:`~.executors` (local processes or Ray tasks) and :mod:`~.runner` (``run_study``, all of it in order).
The Store, the training settings and the summaries are served here too, so that one import gives a study's whole API.
"""

from initlab.store import Store
from initlab.studies.runner import check_study, run_study
from initlab.studies.sink import Progress
from initlab.studies.spec import ARTICLE_INITS, ARTICLE_MODEL, Arm, Study, arms_from_names
from initlab.studies.summary import ArmSummary, Stat, summarize
from initlab.training import TrainSettings

__all__ = [
    "ARTICLE_INITS",
    "ARTICLE_MODEL",
    "Arm",
    "ArmSummary",
    "Progress",
    "Stat",
    "Store",
    "Study",
    "TrainSettings",
    "arms_from_names",
    "check_study",
    "run_study",
    "summarize",
]
