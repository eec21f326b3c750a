"""Run checkpoints in a study folder: ``checkpoints/<run key>/epoch-NNNN.pt``, written atomically, pruned after commit.

A run's folder is keyed by a hash of its exact run id (:func:`run_key`), with a readable prefix, so two runs whose
ids differ only in characters a file name cannot hold never share a folder.

The order that makes a study survive a kill at any moment: a worker saves each run's checkpoint (parameters,
buffers, optimizer state) *before* it reports the epoch; the driver commits the epoch's metrics and only *then*
deletes the run's older checkpoints. So the checkpoint of every run's last committed epoch always exists.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from initlab.fileio import atomic_writer

FOLDER = "checkpoints"


def run_key(run_id: str) -> str:
    """The folder name of a run's checkpoints: the run id made safe (at most 40 characters) and the first 16 hex digits
    of the SHA-256 of the exact run id, which tell apart ids that are alike once made safe (``a b`` and ``a_b``)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id)[:40]
    return f"{safe}-{hashlib.sha256(run_id.encode()).hexdigest()[:16]}"


def path(out_dir: Path, run_id: str, epoch: int) -> Path:
    """Where the checkpoint of ``run_id`` after ``epoch`` lives."""
    return out_dir / FOLDER / run_key(run_id) / f"epoch-{epoch:04d}.pt"


def save(out_dir: Path, run_id: str, epoch: int, state: dict[str, Any]) -> None:
    """Write a run's state after ``epoch`` atomically (a reader sees the whole file or none)."""
    with atomic_writer(path(out_dir, run_id, epoch)) as f:
        torch.save({**state, "epoch": epoch}, f)


def load(out_dir: Path, run_id: str, epoch: int) -> dict[str, Any]:
    """The state a run saved after ``epoch``; a clear error when a committed epoch lost its checkpoint."""
    file = path(out_dir, run_id, epoch)
    if not file.exists():
        raise FileNotFoundError(
            f"run {run_id} finished epoch {epoch} but its checkpoint {file} is missing; delete the study folder to "
            "start over."
        )
    return torch.load(file, map_location="cpu", weights_only=True)


def prune(out_dir: Path, run_id: str, keep_epoch: int | None) -> None:
    """Delete a run's checkpoints older than ``keep_epoch`` (all of them if None: the run is complete)."""
    folder = path(out_dir, run_id, 0).parent
    if not folder.exists():
        return
    if keep_epoch is None:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for f in folder.glob("epoch-*.pt"):
        if int(f.stem.split("-")[1]) < keep_epoch:
            f.unlink(missing_ok=True)
