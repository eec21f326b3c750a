"""Run checkpoints in a study folder: ``checkpoints/<run key>/epoch-NNNN.pt``, written atomically, pruned after commit.

A run's folder is keyed by a hash of its exact run id (:func:`run_key`), with a readable prefix, so two runs whose
ids differ only in characters a file name cannot hold never share a folder.

The order that makes a study survive a kill at any moment: a worker saves each run's checkpoint (parameters,
buffers, optimizer state) *before* it reports the epoch; the driver commits the epoch's metrics and only *then*
deletes the run's older checkpoints. So the checkpoint of every run's last committed epoch always exists.
"""

from __future__ import annotations

import hashlib
import io
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


def save(out_dir: Path, run_id: str, epoch: int, state: dict[str, Any]) -> str:
    """Write a run's state after ``epoch`` atomically (a reader sees the whole file or none); return the SHA-256 of
    the bytes written, which the Store records with the epoch."""
    buffer = io.BytesIO()
    torch.save({**state, "epoch": epoch}, buffer)
    data = buffer.getvalue()
    with atomic_writer(path(out_dir, run_id, epoch)) as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def problem(out_dir: Path, run_id: str, epoch: int, sha256: str | None) -> str | None:
    """What is wrong with the checkpoint of ``run_id`` after ``epoch``, or None when it is intact: missing, or its
    SHA-256 is not the recorded ``sha256``; without a recorded one, whether torch can read it."""
    file = path(out_dir, run_id, epoch)
    if not file.is_file():
        return f"its checkpoint {file} is missing"
    if sha256 is not None:
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        return (
            None
            if digest == sha256
            else f"its checkpoint {file} is damaged (SHA-256 {digest[:12]}..., recorded {sha256[:12]}...)"
        )
    try:
        torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file: truncated zip, garbage, wrong format
        return f"its checkpoint {file} cannot be read ({type(exc).__name__}: {exc})"
    return None


def load(out_dir: Path, run_id: str, epoch: int) -> dict[str, Any]:
    """The state a run saved after ``epoch`` (checked beforehand by :func:`problem`, when the plan was made); an
    error naming the file when it cannot be read."""
    file = path(out_dir, run_id, epoch)
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"run {run_id} finished epoch {epoch} but its checkpoint {file} is missing; "
            "run the study again: it continues that run from its last good state."
        ) from None
    except Exception as exc:
        raise ValueError(
            f"run {run_id}: its checkpoint {file} cannot be read ({type(exc).__name__}: {exc}); run the "
            "study again: it continues that run from its last good state."
        ) from None


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
