"""Studies on residual networks and transformers run, resume after a kill with the numbers of an uninterrupted
study, and report, as MLP studies do."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from initlab.cli import app
from initlab.studies import Arm, Study, TrainSettings, run_study
from test_studies import epochs_done, stored

SCRIPT = """
import json, sys
from initlab.studies import Study, run_study
if __name__ == "__main__":
    run_study(Study.from_config(json.loads(sys.argv[2])), sys.argv[1], workers=1)
"""

# Batch-norm buffers and dropout masks (resmlp), convolutions (resnet), attention and gates (transformer).
SPECS = ["resmlp:16x3;norm=batch;dropout=0.1", "resnet:4,8;blocks=1", "transformer:16x1;heads=2;gate=channel"]


@pytest.mark.parametrize("spec", SPECS)
def test_a_residual_study_killed_after_its_first_epoch_resumes_to_the_same_numbers(tmp_path: Path, spec: str) -> None:
    depth_aware = Arm("fixup", "fixup") if "resnet" not in spec else Arm("zero_gamma", "zero_gamma")
    study = Study(name="residual", dataset="digits", model=spec, seeds=(0,), arms=(Arm("he", "he_normal"), depth_aware),
                  train=TrainSettings(epochs=3, batch_size=64), diagnose_epochs=(0, 2))  # fmt: skip
    reference = run_study(study, tmp_path / "reference", workers=1)
    folder = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(folder), json.dumps(study.config())],
                            start_new_session=True)  # fmt: skip
    deadline = time.time() + 180
    while epochs_done(folder) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert killed, "the study finished before it could be killed"
    assert epochs_done(folder) < epochs_done(reference)
    run_study(study, folder, workers=1)
    assert stored(folder) == stored(reference)


def test_compare_with_a_transformer_spec_runs_resumes_and_reports(tmp_path: Path) -> None:
    runner = CliRunner()
    config = tmp_path / "study.toml"
    config.write_text('name = "recall"\ndataset = "recall"\ndataset_options = {n_samples = 256, pairs = 4}\n')
    args = ["compare", "--config", str(config), "--model", "transformer:16x2;heads=2", "--inits",
            "gpt2,xavier_uniform", "--seeds", "1", "--epochs", "2", "--out", str(tmp_path / "s"),
            "--workers", "1"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s" / "report" / "report.html").is_file()
    before = stored(tmp_path / "s")
    again = runner.invoke(app, ["compare", "--resume", str(tmp_path / "s"), "--no-report"])
    assert again.exit_code == 0, again.output
    assert stored(tmp_path / "s") == before
