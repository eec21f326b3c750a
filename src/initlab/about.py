"""initlab's version, read from the installed package's metadata (no import of ``initlab`` itself, so that any
module can ask without an import cycle)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def installed_version() -> str:
    """The installed version of initlab, or ``"0.0.0+unknown"`` when running from a source tree not installed."""
    try:
        return version("initlab")
    except PackageNotFoundError:
        return "0.0.0+unknown"
