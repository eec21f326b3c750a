"""``fixup2019`` and ``xiao2018``: the quick forms' claims hold, their helpers compute what they say, and the claims
can fail."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from initlab import models
from initlab.reproduce import fixup2019, reproduce, xiao2018
from initlab.theory import critical_weight_var


def test_fixup2019_quick_claims_hold(tmp_path: Path) -> None:
    result = reproduce("fixup2019", tmp_path, quick=True)
    assert result.passed, [c for c in result.claims if not c.passed]
    assert len(result.claims) == 3
    details = result.details
    assert details["he_diverged"]
    assert details["test_accuracy_percent"]["he"] == [None]
    # Fixup trained far above chance; the loss falls well below ln 10 (2.30) for both trained arms.
    assert details["test_accuracy_percent"]["fixup"][0] >= 25
    assert max(details["final_train_loss"]["fixup"] + details["final_train_loss"]["he-bn"]) < 2.0
    assert (tmp_path / "study" / fixup2019.PLAIN / "study.sqlite").exists()
    assert (tmp_path / "fixup2019.png").stat().st_size > 10_000


def test_fixup2019_failure_test_counts_divergence_and_chance() -> None:
    assert fixup2019.failed([None, None])
    assert fixup2019.failed([None, 11.35, 9.8])
    assert not fixup2019.failed([None, 40.0])  # one seed trained: the claim fails
    assert not fixup2019.failed([])
    assert fixup2019.mean_accuracy([None, 70.0]) == pytest.approx(40.0)


def test_fixup2019_he_explodes_without_normalization_and_fixup_starts_as_identity() -> None:
    # The mechanism the reproduction rests on, at initialization: under He init every block roughly triples the
    # stream's second moment; under Fixup every block is the identity and the head outputs 0.
    import initlab

    x = torch.randn(256, 40, generator=torch.Generator().manual_seed(0))
    net = models.build(fixup2019.model("none"), input_shape=(40,), num_classes=10)
    initlab.initialize(net, "he_normal", seed=0)
    with torch.no_grad():
        assert net(x).std() > 1e6
    initlab.initialize(net, "fixup", seed=0)
    with torch.no_grad():
        assert torch.count_nonzero(net(x)) == 0


def test_xiao2018_quick_claims_hold(tmp_path: Path) -> None:
    result = reproduce("xiao2018", tmp_path, quick=True)
    assert result.passed, [c for c in result.claims if not c.passed]
    assert len(result.claims) == 2
    loss = result.details["final_train_loss"]
    assert loss["gaussian"][0] > loss["delta-orthogonal"][0] + xiao2018.QUICK_LOSS_DROP - xiao2018.QUICK_STALLED
    assert len(result.details["train_loss"]["gaussian"][0]) == xiao2018.QUICK_EPOCHS
    assert (tmp_path / "xiao2018.png").stat().st_size > 10_000


def test_xiao2018_stall_measure_counts_every_epoch_and_divergence() -> None:
    ln10 = xiao2018.CHANCE_LOSS
    assert xiao2018.stalled_by([[ln10 + 0.004, ln10 - 0.001], [ln10]]) == pytest.approx(0.004)
    # One epoch of one seed that learned is enough to leave the band; a diverged run is not a stalled one.
    assert xiao2018.stalled_by([[ln10, ln10], [ln10, ln10 - 0.3]]) == pytest.approx(0.3)
    assert xiao2018.stalled_by([[ln10, float("nan")]]) == float("inf")
    assert xiao2018.stalled_by([]) == float("inf")


def test_xiao2018_train_losses_group_runs_by_arm_in_epoch_order() -> None:
    from initlab.store import EpochRecord

    records = [EpochRecord(f"{arm}/s{seed}", epoch, 2.0 + seed + epoch / 10, 0.1, None, None, 1.0)
               for arm in ("gaussian", "delta-orthogonal") for seed in (1, 0) for epoch in (2, 1)]  # fmt: skip
    losses = xiao2018.train_losses(records)
    assert losses["gaussian"] == [[pytest.approx(2.1), pytest.approx(2.2)], [pytest.approx(3.1), pytest.approx(3.2)]]
    assert set(losses) == {"gaussian", "delta-orthogonal"}


def test_xiao2018_arms_share_the_critical_variance() -> None:
    # σ_w² is on tanh's critical line at σ_b² = 1e-5; both arms give every hidden weight variance σ_w²/fan_in.
    import initlab

    variance = xiao2018.weight_var()
    assert variance == critical_weight_var("tanh", xiao2018.BIAS_VAR)
    assert variance == pytest.approx(1.0395, abs=1e-3)
    net = models.build(xiao2018.model(depth=30), input_shape=(40,), num_classes=10)
    convs = [m for m in net if isinstance(m, torch.nn.Conv1d)]
    assert len(convs) == 30
    for label, scheme in xiao2018.schemes().items():
        initlab.initialize(net, scheme, seed=0)
        weights = torch.cat([c.weight.detach().flatten() for c in convs[1:]])
        fan_in = xiao2018.CHANNELS * 3
        assert weights.pow(2).mean().item() * fan_in == pytest.approx(variance, rel=0.05), label
        biases = torch.cat([c.bias.detach() for c in convs])
        assert biases.var().item() == pytest.approx(xiao2018.BIAS_VAR, rel=0.2), label
    # Delta-orthogonal: only the centre tap is non-zero, and it is σ_w times an orthogonal matrix.
    centre = convs[5].weight.detach()[:, :, 1]
    assert torch.count_nonzero(convs[5].weight.detach()[:, :, [0, 2]]) == 0
    torch.testing.assert_close(centre.T @ centre, variance * torch.eye(xiao2018.CHANNELS), atol=1e-5, rtol=0)


def test_xiao2018_network_is_plain_deep_and_keeps_its_length() -> None:
    # Same padding and no pooling: every convolution keeps the 40 positions, and nothing but convolutions and tanh
    # lies between the input and the head.
    net = models.build(xiao2018.model(depth=100), input_shape=(40,), num_classes=10)
    kinds = {type(m).__name__ for m in net}
    assert kinds == {"Unflatten", "Conv1d", "Tanh", "Flatten", "Linear"}
    assert sum(isinstance(m, torch.nn.Conv1d) for m in net) == 100
    head = net[-1]
    assert isinstance(head, torch.nn.Linear)
    assert head.in_features == xiao2018.CHANNELS * 40
