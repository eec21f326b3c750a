"""Kills at random moments, many times over: a study survives each one and ends with the numbers of a study that was
never interrupted, bit for bit. The moments are drawn from a seeded generator, so a failure can be replayed."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from initlab.store import Store
from initlab.studies import Arm, Study, TrainSettings, run_study
from test_studies import epochs_done, stored

#: Kills that must land on a live study (the test keeps going until it has made this many).
KILLS = 20
#: Two populations (two widths) in two worker processes, four epochs, diagnoses at 0 and 2: every phase of a study
#: (start, training, checkpointing, commits, diagnoses, test evaluation, finishing) takes long enough to be hit.
STUDY = Study(
    name="kills",
    dataset="digits",
    model="mlp:32,32",
    arms=(Arm("he", "he_normal"), Arm("lecun", "lecun_normal")),
    seeds=(0, 1),
    train=TrainSettings(epochs=4, batch_size=32),
    diagnose_epochs=(0, 2),
    sweep={"width": [16, 32]},
)
#: The same study in a process of its own: its config comes as JSON in argv[2].
SCRIPT = """
import json, sys
from initlab.studies import Study, run_study
if __name__ == "__main__":
    run_study(Study.from_config(json.loads(sys.argv[2])), sys.argv[1], workers=2)
"""


def test_twenty_random_kills_change_nothing(tmp_path: Path) -> None:
    reference = tmp_path / "reference"
    run_study(STUDY, reference, workers=2)
    total = len(stored(reference)[0])
    folder = tmp_path / "killed"
    config = json.dumps(STUDY.config())
    rng = random.Random(20261130)
    kills = starts = 0
    while kills < KILLS and starts < 4 * KILLS:
        starts += 1
        # A moment: after a random number of committed run-epochs (0 = during start-up), plus a random delay.
        after, delay = rng.randint(0, total), rng.uniform(0.0, 0.8)
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(folder), config], start_new_session=True)
        deadline = time.time() + 120
        while epochs_done(folder) < after and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills == KILLS, f"only {kills} of {starts} starts were killed before they finished"
    run_study(STUDY, folder, workers=2)
    assert stored(folder) == stored(reference)
    with Store.in_dir(folder, readonly=True) as store:
        assert store.study().finished_at is not None
