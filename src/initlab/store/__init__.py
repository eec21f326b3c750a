"""The Store: the SQLite database of a study folder (``study.sqlite``) with its settings, runs and every epoch.

``Store`` (:mod:`~initlab.store.database`) reads and writes it, one transaction per call; the records it takes and
returns are in :mod:`~initlab.store.records`, the tables in :mod:`~initlab.store.schema`, the exact encoding of
floats and JSON in :mod:`~initlab.store.codec`, and the CSV/JSON exports in :mod:`~initlab.store.export`.
"""

from initlab.store.database import Store
from initlab.store.records import RUN_STATUSES, EpochRecord, LayerStat, RunRecord, RunSpec, RunStatus, StudyRecord
from initlab.store.schema import DB_FILENAME, DamagedStoreError

__all__ = [
    "DB_FILENAME",
    "RUN_STATUSES",
    "DamagedStoreError",
    "EpochRecord",
    "LayerStat",
    "RunRecord",
    "RunSpec",
    "RunStatus",
    "Store",
    "StudyRecord",
]
