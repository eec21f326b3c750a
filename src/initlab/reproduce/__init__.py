"""Published experiments about initialization, reproduced and checked: ``initlab reproduce NAME``."""

from initlab.reproduce import deepnet2022 as _deepnet2022  # noqa: F401  (registers)
from initlab.reproduce import dlai_circles as _dlai_circles  # noqa: F401
from initlab.reproduce import fixup2019 as _fixup2019  # noqa: F401
from initlab.reproduce import glorot2010 as _glorot2010  # noqa: F401
from initlab.reproduce import he2015_depth as _he2015_depth  # noqa: F401
from initlab.reproduce import isometry as _isometry  # noqa: F401
from initlab.reproduce import keras_mnist as _keras_mnist  # noqa: F401
from initlab.reproduce import saxe2014 as _saxe2014  # noqa: F401
from initlab.reproduce import schoenholz2017 as _schoenholz2017  # noqa: F401
from initlab.reproduce import xiao2018 as _xiao2018  # noqa: F401
from initlab.reproduce import yang2022_transfer as _yang2022_transfer  # noqa: F401
from initlab.reproduce._base import REGISTRY, Claim, Reproduction, Result, reproduce

__all__ = ["REGISTRY", "Claim", "Reproduction", "Result", "reproduce"]
