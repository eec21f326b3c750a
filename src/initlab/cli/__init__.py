"""The ``initlab`` command line. Each command group lives in a module of its own and registers on ``app``."""

from __future__ import annotations

from initlab.cli import audit as _audit  # noqa: F401  (registers `audit`)
from initlab.cli import catalog as _catalog  # noqa: F401  (registers `list` and `show`)
from initlab.cli import compare as _compare  # noqa: F401  (registers `compare` and `export`)
from initlab.cli import coordcheck as _coordcheck  # noqa: F401  (registers `coordcheck`)
from initlab.cli import data as _data  # noqa: F401  (registers `data list` and `data prepare`)
from initlab.cli import diagnose as _diagnose  # noqa: F401  (registers `diagnose`)
from initlab.cli import doctor as _doctor  # noqa: F401  (registers `doctor`)
from initlab.cli import playground as _playground  # noqa: F401  (registers `playground`)
from initlab.cli import report as _report  # noqa: F401  (registers `report`)
from initlab.cli import reproduce as _reproduce  # noqa: F401  (registers `reproduce`)
from initlab.cli import theory as _theory  # noqa: F401  (registers `theory`)
from initlab.cli._app import app, main

__all__ = ["app", "main"]
