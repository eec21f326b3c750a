"""Studies: compare initializations by training many runs, store every epoch, resume after a kill."""

from initlab.studies.runner import Progress, run_study
from initlab.studies.spec import ARTICLE_INITS, ARTICLE_MODEL, Arm, Study, arms_from_names
from initlab.studies.summary import ArmSummary, Stat, summarize

__all__ = [
    "ARTICLE_INITS",
    "ARTICLE_MODEL",
    "Arm",
    "ArmSummary",
    "Progress",
    "Stat",
    "Study",
    "arms_from_names",
    "run_study",
    "summarize",
]
