"""Training: settings and the population trainer."""

from initlab.training.population import Batch, EpochStats, Population
from initlab.training.settings import TrainSettings

__all__ = ["Batch", "EpochStats", "Population", "TrainSettings"]
