"""``yang2022-transfer``: the quick form's claims hold (muP's best learning rate transfers across widths, SP's drifts,
wider is better under muP) and its figure is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from initlab.reproduce import REGISTRY, Result, reproduce, yang2022_transfer


def test_yang2022_transfer_quick_claims_hold(tmp_path: Path) -> None:
    result = reproduce("yang2022-transfer", tmp_path, quick=True)
    assert result.passed, [c for c in result.claims if not c.passed]
    assert len(result.claims) == 3
    best = result.details["best_log2_lr"]
    widths = list(yang2022_transfer.QUICK.widths)
    assert list(best["sp"]) == widths
    assert list(best["mup"]) == widths
    # muP equals SP at the base width: the narrowest curves are the same.
    losses = result.details["final_train_loss"]
    assert losses["mup"][widths[0]] == pytest.approx(losses["sp"][widths[0]], rel=1e-4)
    figure = tmp_path / "yang2022_transfer.png"
    assert result.figures == [figure]
    assert figure.stat().st_size > 10_000
    assert (tmp_path / "summary.md").exists()


def test_yang2022_transfer_claims_can_fail() -> None:
    assert "yang2022-transfer" in REGISTRY
    form = yang2022_transfer.QUICK

    # Parabolas in log2(lr) whose minimum sits at grid index `at`, lowest loss `low`.
    def curve(at: int, low: float) -> list[float]:
        return [low + 0.1 * (i - at) ** 2 for i in range(len(form.log2_lrs))]

    # muP drifting like SP (2 steps), SP flat, and muP's widest worse: every claim fails.
    drifting = {w: curve(3 - k, 1.0 + 0.1 * k) for k, w in enumerate(form.widths)}
    flat = {w: curve(3, 1.0) for w in form.widths}
    result = Result("yang2022-transfer", "", "", quick=True)
    yang2022_transfer._check(result, form, {"sp": flat, "mup": drifting}, {"sp": [3, 3, 3], "mup": [3, 2, 1]})
    assert [c.passed for c in result.claims] == [False, False, False]
    # The helpers: a tie picks the first rate, the parabola's vertex lies between grid points.
    assert yang2022_transfer.best_index([1.0, 0.5, 0.5, 2.0]) == 1
    assert yang2022_transfer.vertex((-3, -2, -1), [2.0, 1.0, 1.5]) > -2
    assert yang2022_transfer.vertex((-3, -2, -1), [float("inf"), 1.0, 1.5]) == -2
