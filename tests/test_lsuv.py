"""LSUV (Mishkin & Matas, 2016): every layer's output variance reaches the target on the batch; the report shows the
variances and iterations; modes, global state and seeds; settings and errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from initlab.schemes import LSUV, LSUVWarning, initialize, lsuv


def _tanh_mlp(depth: int = 20, width: int = 64) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(32, width), nn.Tanh()]
    for _ in range(depth - 2):
        layers += [nn.Linear(width, width), nn.Tanh()]
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def _relu_cnn() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1, stride=2),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.Dropout(0.5),
        nn.Conv2d(32, 32, 3, padding=1, groups=4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


def _output_variances(model: nn.Module, data: torch.Tensor) -> dict[str, float]:
    """Each Linear/Conv layer's output variance on ``data`` (eval mode, as LSUV measures it)."""
    out: dict[str, float] = {}

    def record(name: str):
        def hook(module: nn.Module, args: object, output: torch.Tensor) -> None:
            out.setdefault(name, float(output.double().var(correction=0)))

        return hook

    hooks = [
        m.register_forward_hook(record(name))
        for name, m in model.named_modules()
        if isinstance(m, (nn.Linear, nn.Conv2d))
    ]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(data)
    model.train(was_training)
    for h in hooks:
        h.remove()
    return out


CASES = {
    "tanh_mlp_20": (_tanh_mlp, lambda g: torch.randn(256, 32, generator=g), 20),
    "relu_cnn": (_relu_cnn, lambda g: torch.randn(64, 3, 16, 16, generator=g), 4),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_layer_reaches_the_target_variance(case: str) -> None:
    build, make_data, n_layers = CASES[case]
    torch.manual_seed(0)
    model = build()
    data = make_data(torch.Generator().manual_seed(1))
    report = initialize(model, "lsuv", data=data, seed=3)
    variances = _output_variances(model, data)
    assert len(variances) == n_layers
    for name, var in variances.items():
        assert abs(var - 1.0) <= 0.1, f"{name}: variance {var}"
        entry = report[f"{name}.weight"]
        assert entry.var_after == pytest.approx(var, rel=1e-6)
        assert entry.var_before is not None
        assert entry.converged is True
        assert 0 <= entry.iterations <= 10
    # Deep tanh layers start well below the target after the orthonormal pre-initialization and need a rescaling.
    rescaled = [e for e in report if e.iterations]
    assert rescaled
    assert all(abs(e.var_before - 1.0) > 0.1 for e in rescaled)
    assert "var before → after" in str(report)


def test_a_tighter_tolerance_and_another_target() -> None:
    model = _tanh_mlp(depth=8)
    data = torch.randn(128, 32, generator=torch.Generator().manual_seed(0))
    report = lsuv(model, data, target=0.5, tol=0.01, seed=0)
    for name, var in _output_variances(model, data).items():
        assert abs(var - 0.5) <= 0.01, name
    assert report.scheme == {
        "class_name": "LSUV",
        "config": {"target": 0.5, "tol": 0.01, "max_iter": 10, "correct_mean": False, "pre_init": True},
    }


def test_pre_initialization_is_orthonormal_before_rescaling() -> None:
    model = _tanh_mlp(depth=4, width=32)
    report = initialize(model, "lsuv", data=torch.randn(64, 32, generator=torch.Generator().manual_seed(0)), seed=1)
    w = model[2].weight.detach().double()
    scale = float(w.norm(dim=1).mean())  # LSUV multiplied an orthogonal matrix by one number
    assert torch.allclose(w @ w.T / scale**2, torch.eye(32, dtype=torch.float64), atol=1e-5)
    assert report["2.weight"].init == {"class_name": "Orthogonal", "config": {"gain": 1.0}}
    assert torch.count_nonzero(model[2].bias) == 0


def test_correct_mean_centres_each_output_channel() -> None:
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 8))
    data = torch.randn(256, 16, generator=torch.Generator().manual_seed(0)) + 2.0  # inputs with a mean
    report = lsuv(model, data, correct_mean=True, seed=0)
    with torch.no_grad():
        h = model[2](model[1](model[0](data)))
    assert float(h.mean(0).abs().max()) <= 0.1
    assert abs(float(h.var(correction=0)) - 1.0) <= 0.1
    assert all(e.converged for e in report if e.iterations is not None)


def test_restores_train_eval_modes_and_keeps_no_state() -> None:
    model = _relu_cnn()
    model.train()
    model[5].eval()  # a mixed model: one submodule in eval mode
    modes = [m.training for m in model.modules()]
    running_mean = model[3].running_mean.clone()
    data = torch.randn(16, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    rng = torch.get_rng_state()
    initialize(model, "lsuv", data=data, seed=0)
    assert [m.training for m in model.modules()] == modes
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.equal(model[3].running_mean, running_mean)  # the forward passes ran in eval mode
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_same_seed_gives_bitwise_identical_parameters() -> None:
    data = torch.randn(64, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    a, b, c = _relu_cnn(), _relu_cnn(), _relu_cnn()
    initialize(a, LSUV(), data=data, seed=8)
    initialize(b, LSUV(), data=data, seed=8)
    initialize(c, LSUV(), data=data, seed=9)
    for (name, x), y, z in zip(a.named_parameters(), b.parameters(), c.parameters(), strict=True):
        assert torch.equal(x, y), name
        if name.endswith("weight") and x.dim() > 1:
            assert not torch.equal(x, z), name


def test_without_pre_init_it_rescales_the_current_weights() -> None:
    model = nn.Sequential(nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 32))
    nn.init.normal_(model[2].weight, std=3.0, generator=torch.Generator().manual_seed(0))
    before = model[2].weight.detach().clone()
    data = torch.randn(128, 32, generator=torch.Generator().manual_seed(1))
    report = lsuv(model, data, pre_init=False)
    ratio = model[2].weight.detach() / before
    assert torch.allclose(ratio, ratio.flatten()[0].expand_as(ratio))  # one common factor
    assert report["2.weight"].converged


def test_a_layer_that_cannot_reach_the_target_warns_and_is_reported() -> None:
    # A large per-channel bias spread is variance that no weight scale can remove (correct_mean is off).
    model = nn.Sequential(nn.Linear(8, 16))
    with torch.no_grad():
        model[0].bias.copy_(torch.linspace(-5, 5, 16))
    data = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    with pytest.warns(LSUVWarning, match=r"LSUV: 0 \(Linear\) output variance .* is not within tol=0\.1"):
        report = lsuv(model, data, pre_init=False, max_iter=3)
    assert report["0.weight"].converged is False
    assert report["0.weight"].iterations == 3


def test_rnn_and_attention_are_pre_initialized_but_not_rescaled() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(20, 8, padding_idx=0)
            self.rnn = nn.GRU(8, 8, batch_first=True)
            self.head = nn.Linear(8, 4)

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            return self.head(self.rnn(self.emb(tokens))[0])

    model = Net()
    data = torch.randint(0, 20, (16, 5), generator=torch.Generator().manual_seed(0))
    report = initialize(model, "lsuv", data=data, seed=0)
    assert report["head.weight"].iterations is not None
    assert report["rnn.weight_hh_l0[z]"].iterations is None
    assert torch.count_nonzero(model.emb.weight[0]) == 0
    for block in model.rnn.weight_hh_l0.detach().split(8):
        assert torch.allclose(block @ block.T, torch.eye(8), atol=1e-5)


def test_settings_round_trip_and_validation() -> None:
    settings = LSUV(target=2.0, tol=0.05, max_iter=5, correct_mean=True)
    assert LSUV.from_dict(settings.to_dict()) == settings
    with pytest.raises(ValueError, match=r"tol must be >= 0, got -1"):
        LSUV(tol=-1)
    with pytest.raises(ValueError, match=r"max_iter must be >= 1, got 0"):
        LSUV(max_iter=0)
    with pytest.raises(ValueError, match=r"LSUV config has unknown keys \['tolerance'\].*Did you mean 'tol'"):
        LSUV.from_dict({"tolerance": 0.1})


def test_missing_data_and_a_model_without_layers() -> None:
    with pytest.raises(ValueError, match=r"the 'lsuv' scheme needs data"):
        initialize(_tanh_mlp(), LSUV())
    with pytest.raises(ValueError, match=r"LSUV found no Linear, Bilinear, Conv or ConvTranspose layer"):
        initialize(nn.Sequential(nn.LayerNorm(4)), "lsuv", data=torch.randn(2, 4))
