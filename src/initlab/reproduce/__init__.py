"""Published experiments about initialization, reproduced and checked: ``initlab reproduce NAME``."""

from initlab.reproduce import dlai_circles as _dlai_circles  # noqa: F401  (registers)
from initlab.reproduce import keras_mnist as _keras_mnist  # noqa: F401
from initlab.reproduce import saxe2014 as _saxe2014  # noqa: F401
from initlab.reproduce._base import REGISTRY, Claim, Reproduction, Result, reproduce

__all__ = ["REGISTRY", "Claim", "Reproduction", "Result", "reproduce"]
