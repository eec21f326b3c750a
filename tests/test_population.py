"""Population training equals training each run alone; dropout differs per model; runs can be dropped."""

from __future__ import annotations

import copy
import logging
from dataclasses import replace

import pytest
import scipy.stats
import torch
from torch import nn

from initlab.training import Batch, Population, TrainSettings, population, stacked

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD,
              "rmsprop": torch.optim.RMSprop}  # fmt: skip


def mlp(seed: int, dropout: float = 0.0) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Flatten(), nn.Linear(20, 32), nn.Tanh()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 5))


class Custom(nn.Module):
    """Not a Sequential of simple layers: takes the general vmap path."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.a = nn.Linear(20, 16)
        self.norm = nn.LayerNorm(16)
        self.b = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.norm(self.a(x.flatten(1)))))


def data(steps: int = 20, batch: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    return torch.randn(steps, batch, 4, 5, generator=g), torch.randint(0, 5, (steps, batch), generator=g)


def alone(model: nn.Module, settings: TrainSettings, x: torch.Tensor, y: torch.Tensor) -> nn.Module:
    """The reference: an ordinary PyTorch loop with torch's own optimizer."""
    model = copy.deepcopy(model)
    template = settings.make_optimizer([torch.zeros(1, requires_grad=True)])
    kwargs = {k: v for k, v in template.defaults.items() if k in
              ("lr", "momentum", "nesterov", "weight_decay", "betas", "eps", "alpha")}  # fmt: skip
    opt = OPTIMIZERS[settings.optimizer](model.parameters(), **kwargs)
    for xb, yb in zip(x, y, strict=True):
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()
    return model


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("make", [mlp, Custom], ids=["stacked-mlp", "vmap-general"])
@pytest.mark.parametrize(
    "settings",
    [TrainSettings(optimizer="adam", lr=1e-2), TrainSettings(optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True),
     TrainSettings(optimizer="adamw", lr=1e-2, weight_decay=0.1), TrainSettings(optimizer="rmsprop", lr=1e-3)],
    ids=lambda s: s.optimizer,
)  # fmt: skip
def test_population_equals_each_run_trained_alone(make, settings: TrainSettings) -> None:
    models = [make(seed) for seed in range(4)]
    x, y = data()
    pop = Population(models, settings)
    assert pop.fast == (make is mlp)
    _, steps = pop.train_epoch(Batch(xb, yb) for xb, yb in zip(x, y, strict=True))
    assert steps == 20
    for i, model in enumerate(models):
        ref = alone(model, settings, x, y)
        for name, p in ref.named_parameters():
            assert rel_err(pop.params[name][i].detach(), p.detach()) < 1e-4, (i, name)
        # The population moved each model away from where it started.
        assert not torch.allclose(pop.params["b.weight" if make is Custom else "5.weight"][i], model.state_dict()[
            "b.weight" if make is Custom else "5.weight"])  # fmt: skip


def test_per_model_batches_equal_alone() -> None:
    # Runs of different seeds see different batches: x is (N, B, ...).
    models = [mlp(s) for s in range(3)]
    settings = TrainSettings(optimizer="adam", lr=1e-2)
    xs, ys = zip(*(data(steps=10) for _ in range(3)), strict=True)
    xs = [x + i for i, x in enumerate(xs)]  # make the three streams differ
    pop = Population(models, settings)
    pop.train_epoch(Batch(torch.stack([x[t] for x in xs]), torch.stack([y[t] for y in ys]), per_model=True)
                    for t in range(10))  # fmt: skip
    for i, model in enumerate(models):
        ref = alone(model, settings, xs[i], ys[i])
        for name, p in ref.named_parameters():
            assert rel_err(pop.params[name][i].detach(), p.detach()) < 1e-4


@pytest.mark.parametrize("make", [mlp, Custom], ids=["stacked-mlp", "vmap-general"])
def test_grouped_batches_equal_alone(make) -> None:
    # Two seeds, two runs each: each pair of consecutive models shares its group's batch, x is (G, B, ...).
    models = [make(s) for s in range(4)]
    settings = TrainSettings(optimizer="adam", lr=1e-2)
    xs, ys = zip(*(data(steps=10) for _ in range(2)), strict=True)
    xs = [x + 3 * i for i, x in enumerate(xs)]
    pop = Population(models, settings)
    pop.train_epoch(Batch(torch.stack([x[t] for x in xs]), torch.stack([y[t] for y in ys]), per_model=True)
                    for t in range(10))  # fmt: skip
    for i, model in enumerate(models):
        ref = alone(model, settings, xs[i // 2], ys[i // 2])
        for name, p in ref.named_parameters():
            assert rel_err(pop.params[name][i].detach(), p.detach()) < 1e-4, (i, name)
    with pytest.raises(ValueError, match="3 batch groups do not divide a population of 4"):
        pop.losses(pop.forward(xs[0][:3, :2], train=False, per_model=True), ys[0][:3, :2], per_model=True)


def test_linear_layers_act_on_the_last_axis_of_shared_grouped_and_own_batches() -> None:
    # No Flatten: a (B, T, features) input, as for a per-position MLP; every form of batch gives each model's output.
    torch.manual_seed(0)
    nets = [nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3)) for _ in range(4)]
    pop = Population(nets, TrainSettings())
    assert pop.fast
    x = torch.randn(4, 6, 7, 5)
    expected = torch.stack([net(x[i]) for i, net in enumerate(nets)])
    torch.testing.assert_close(pop.forward(x, train=False, per_model=True), expected)
    grouped = pop.forward(x[[0, 2]], train=False, per_model=True)
    torch.testing.assert_close(grouped, torch.stack([net(x[i // 2 * 2]) for i, net in enumerate(nets)]))
    torch.testing.assert_close(pop.forward(x[0], train=False), torch.stack([net(x[0]) for net in nets]))


def test_input_dropout_draws_a_mask_per_model_from_a_shared_batch() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(20, 5))
    pop = Population([net, copy.deepcopy(net)], TrainSettings(optimizer="sgd", lr=0.1))
    assert pop.fast
    out = pop.forward(torch.ones(8, 4, 5), train=True)
    assert out.shape == (2, 8, 5)
    assert not torch.equal(out[0], out[1])
    torch.testing.assert_close(pop.forward(torch.ones(8, 4, 5), train=False)[0], net.eval()(torch.ones(8, 4, 5)))


def test_dropout_gives_each_model_its_own_masks() -> None:
    same = mlp(0, dropout=0.5)
    pop = Population([same, copy.deepcopy(same)], TrainSettings(optimizer="sgd", lr=0.1))
    x, y = data(steps=5)
    pop.train_epoch(Batch(xb, yb) for xb, yb in zip(x, y, strict=True))
    w = pop.params["1.weight"].detach()
    assert not torch.allclose(w[0], w[1])
    # Without dropout the two identical models stay identical.
    pop = Population([mlp(0), mlp(0)], TrainSettings(optimizer="sgd", lr=0.1))
    pop.train_epoch(Batch(xb, yb) for xb, yb in zip(x, y, strict=True))
    assert torch.equal(pop.params["1.weight"][0], pop.params["1.weight"][1])


def test_dropout_masks_follow_the_seed() -> None:
    same = mlp(0, dropout=0.5)
    x, y = data(steps=5)
    trained = []
    for seed in (7, 7, 8):
        pop = Population([same, copy.deepcopy(same)], TrainSettings(optimizer="sgd", lr=0.1), seed=seed)
        pop.train_epoch(Batch(xb, yb) for xb, yb in zip(x, y, strict=True))
        trained.append(pop.params["1.weight"].detach())
    assert torch.equal(trained[0], trained[1])
    assert not torch.allclose(trained[0], trained[2])
    # reseed restarts the masks: a population reseeded with 7 repeats the first epoch of the one built with 7.
    pop = Population([same, copy.deepcopy(same)], TrainSettings(optimizer="sgd", lr=0.1), seed=8)
    pop.reseed(7)
    pop.train_epoch(Batch(xb, yb) for xb, yb in zip(x, y, strict=True))
    assert torch.equal(pop.params["1.weight"].detach(), trained[0])


def test_mask_source_draws_uniforms_in_the_layout_it_is_given() -> None:
    h = torch.empty(64, 12, 256).transpose(0, 1)  # (N, B, out) seen from a (B, N, out) buffer, as on the fast path
    u = stacked.MaskSource(3).uniform_like(h)
    assert (u.shape, u.stride(), u.dtype) == (h.shape, h.stride(), torch.float32)
    assert torch.equal(u, stacked.MaskSource(3).uniform_like(h))
    assert not torch.equal(u, stacked.MaskSource(4).uniform_like(h))
    assert float(u.min()) >= 0.0
    assert float(u.max()) < 1.0
    assert scipy.stats.kstest(u.flatten().numpy(), "uniform").pvalue > 1e-4
    # Inverted dropout keeps a share 1 - p of the units (within 5 binomial standard deviations), scaled by 1/(1 - p).
    out = stacked._dropout(torch.ones(12, 64, 256), 0.2, stacked.MaskSource(0))
    n = out.numel()
    kept = int((out != 0).sum())
    assert abs(kept - 0.8 * n) < 5 * (n * 0.2 * 0.8) ** 0.5
    assert torch.allclose(out[out != 0], torch.tensor(1.25))


def test_keep_drops_runs_and_keeps_optimizer_state() -> None:
    models = [mlp(s) for s in range(3)]
    settings = TrainSettings(optimizer="adam", lr=1e-2)
    x, y = data(steps=10)
    full = Population(models, settings)
    full.train_epoch(Batch(x[t], y[t]) for t in range(10))
    part = Population(models, settings)
    part.train_epoch(Batch(x[t], y[t]) for t in range(5))
    part.keep([0, 2])
    part.train_epoch(Batch(x[t], y[t]) for t in range(5, 10))
    for name, p in part.params.items():
        torch.testing.assert_close(p.detach(), full.params[name].detach()[[0, 2]], rtol=1e-5, atol=1e-6)


def test_run_state_round_trip() -> None:
    models = [mlp(s) for s in range(2)]
    settings = TrainSettings(optimizer="adam", lr=1e-2)
    x, y = data(steps=10)
    a = Population(models, settings)
    a.train_epoch(Batch(x[t], y[t]) for t in range(5))
    states = [a.run_state(i) for i in range(2)]
    b = Population(models, settings)
    b.load_run_states(states)
    for pop in (a, b):
        pop.train_epoch(Batch(x[t], y[t]) for t in range(5, 10))
    for name in a.params:
        assert torch.equal(a.params[name], b.params[name])


def test_evaluate_and_diverged_model_does_not_affect_others() -> None:
    models = [mlp(s) for s in range(3)]
    with torch.no_grad():
        models[1][5].weight.mul_(1e38)  # this one blows up: its logits overflow
    settings = TrainSettings(optimizer="sgd", lr=10.0)
    x, y = data(steps=5)
    pop = Population(models, settings)
    stats, _ = pop.train_epoch(Batch(x[t], y[t]) for t in range(5))
    losses = stats.train_loss()
    assert not torch.isfinite(torch.tensor(losses[1]))
    ok = Population([models[0], models[2]], settings)
    ok.train_epoch(Batch(x[t], y[t]) for t in range(5))
    torch.testing.assert_close(pop.params["5.weight"][[0, 2]], ok.params["5.weight"])
    loss, acc = ok.evaluate(x.flatten(0, 1), y.flatten())
    assert len(loss) == 2
    assert all(0.0 <= a <= 1.0 for a in acc)


def test_architecture_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match="does not have the architecture of model 0"):
        Population([mlp(0), nn.Sequential(nn.Linear(20, 5))], TrainSettings())


@pytest.mark.parametrize("make", [mlp, Custom], ids=["stacked-mlp", "vmap-general"])
def test_bf16_mixed_precision_stays_close_to_float32(make) -> None:
    models = [make(seed) for seed in range(2)]
    x, y = data()
    result = {}
    for precision in ("float32", "bf16"):
        pop = Population(models, TrainSettings(optimizer="adam", lr=1e-2, precision=precision))
        pop.train_epoch(Batch(xb, yb) for xb, yb in zip(x, y, strict=True))
        result[precision] = pop.params
        assert all(p.dtype == torch.float32 for p in pop.params.values())  # float32 master weights
    for name, p32 in result["float32"].items():
        err = rel_err(result["bf16"][name].detach(), p32.detach())
        assert 0 < err < 0.1, (name, err)  # bf16 products: close to, but not the same as, float32


def test_bf16_on_a_cpu_without_bf16_instructions_warns_and_names_what_to_do(caplog) -> None:
    population._warn_slow_bf16.cache_clear()
    with caplog.at_level(logging.WARNING, logger="initlab.training.population"):
        Population([mlp(0)], TrainSettings(precision="float32"))
        assert not caplog.records
        Population([mlp(0)], TrainSettings(precision="bf16"))
        Population([mlp(1)], TrainSettings(precision="bf16"))  # warned once per process
    if population.cpu_has_bf16() is False:
        (record,) = caplog.records
        assert "no bf16 instructions" in record.getMessage()
        assert "--precision float32" in record.getMessage()
    else:  # a CPU with avx512_bf16 or amx_bf16 (or no /proc/cpuinfo): nothing to warn about
        assert not caplog.records


def test_cpu_flags_with_bf16_instructions_are_recognized() -> None:
    avx2 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
    sapphire = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
    assert not population.cpu_flags_have_bf16(avx2)
    assert population.cpu_flags_have_bf16(sapphire)
    assert not population.cpu_flags_have_bf16("model name\t: avx512_bf16 in a name, not a flag\n")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (no GPU on this machine)")
@pytest.mark.parametrize("make", [mlp, Custom], ids=["stacked-mlp", "vmap-general"])
def test_population_trains_on_cuda_like_on_cpu(make) -> None:
    models = [make(seed) for seed in range(3)]
    x, y = data()
    settings = TrainSettings(optimizer="adam", lr=1e-2)
    cpu = Population(models, settings)
    gpu = Population(models, settings, device="cuda")
    cpu.train_epoch(Batch(xb, yb) for xb, yb in zip(x, y, strict=True))
    gpu.train_epoch(Batch(xb.cuda(), yb.cuda()) for xb, yb in zip(x, y, strict=True))
    for name, p in cpu.params.items():
        assert gpu.params[name].device.type == "cuda"
        assert rel_err(gpu.params[name].detach().cpu(), p.detach()) < 1e-3


# -- learning rates per model ----------------------------------------------------------------------------------------
RATES = {"adam": [1e-3, 3e-3, 1e-2, 3e-2], "adamw": [1e-3, 3e-3, 1e-2, 3e-2], "sgd": [0.01, 0.03, 0.1, 0.3],
         "rmsprop": [1e-4, 3e-4, 1e-3, 3e-3]}  # fmt: skip


def train(pop: Population, x: torch.Tensor, y: torch.Tensor, steps: range | None = None) -> Population:
    pop.train_epoch(Batch(x[t], y[t]) for t in (steps if steps is not None else range(x.shape[0])))
    return pop


@pytest.mark.parametrize("make", [mlp, Custom], ids=["stacked-mlp", "vmap-general"])
@pytest.mark.parametrize(
    "settings",
    [TrainSettings(optimizer="adam"), TrainSettings(optimizer="sgd", momentum=0.9, nesterov=True),
     TrainSettings(optimizer="adamw", weight_decay=0.1), TrainSettings(optimizer="rmsprop")],
    ids=lambda s: s.optimizer,
)  # fmt: skip
def test_per_model_learning_rates_equal_each_run_trained_alone_at_its_rate(make, settings: TrainSettings) -> None:
    models = [make(seed) for seed in range(4)]
    rates = RATES[settings.optimizer]
    x, y = data()
    pop = Population(models, settings)
    pop.set_lr(rates)
    assert pop.lrs == rates
    train(pop, x, y)
    shared = train(Population(models, replace(settings, lr=rates[0])), x, y)
    for i, model in enumerate(models):
        ref = alone(model, replace(settings, lr=rates[i]), x, y)
        for name, p in ref.named_parameters():
            assert rel_err(pop.params[name][i].detach(), p.detach()) < 1e-4, (i, name)
            # The rates took effect: every model but the first moved unlike the same model at rates[0].
            if i > 0:
                assert rel_err(pop.params[name][i].detach(), shared.params[name][i].detach()) > 1e-3, (i, name)


@pytest.mark.parametrize("make", [mlp, Custom], ids=["stacked-mlp", "vmap-general"])
def test_a_run_trains_alike_alone_and_in_a_mixed_lr_population(make) -> None:
    # The same kernel steps a model in a mixed-lr population as in a population of one at its rate, and its state
    # has the same form, so a run's results and checkpoints do not depend on which population it trained in.
    models = [make(seed) for seed in range(3)]
    rates = [1e-3, 1e-2, 3e-2]
    x, y = data(steps=10)
    pop = Population(models, TrainSettings(optimizer="adam"))
    pop.set_lr(rates)
    train(pop, x, y)
    for i, model in enumerate(models):
        one = Population([model], TrainSettings(optimizer="adam", lr=rates[i]))
        train(one, x, y)
        mixed, single = pop.run_state(i), one.run_state(0)
        for part in ("params", "optim"):
            torch.testing.assert_close(mixed[part], single[part], rtol=1e-6, atol=1e-7)


def test_equal_rates_keep_the_stacked_optimizer_bit_for_bit() -> None:
    models = [mlp(seed) for seed in range(4)]
    x, y = data(steps=10)
    today = train(Population(models, TrainSettings(optimizer="adam", lr=1e-2)), x, y)
    as_float = Population(models, TrainSettings(optimizer="adam", lr=1e-3))
    as_float.set_lr(1e-2)
    as_list = Population(models, TrainSettings(optimizer="adam", lr=1e-3))
    as_list.set_lr([1e-2] * 4)
    for pop in (as_float, as_list):
        assert len(pop.optimizer.param_groups) == 1  # today's one optimizer over the stacked tensors
        assert pop.optimizer.param_groups[0]["params"] == list(pop.params.values())
        assert pop.lrs == [1e-2] * 4
        train(pop, x, y)
        for name, p in today.params.items():
            assert torch.equal(pop.params[name], p), name


def test_equal_rates_after_different_ones_return_to_the_stacked_optimizer_with_the_state() -> None:
    models = [mlp(seed) for seed in range(4)]
    settings = TrainSettings(optimizer="adam")
    x, y = data(steps=10)
    pop = Population(models, settings)
    pop.set_lr(RATES["adam"])
    train(pop, x, y, range(5))
    assert len(pop.optimizer.param_groups) == 4
    # The same epoch continued by a fresh population loaded from the checkpoints, on today's path.
    resumed = Population(models, settings)
    resumed.load_run_states([pop.run_state(i) for i in range(4)])
    for p in (pop, resumed):
        p.set_lr(2e-3)
        assert len(p.optimizer.param_groups) == 1
        train(p, x, y, range(5, 10))
    for name, p in resumed.params.items():
        assert torch.equal(pop.params[name], p), name
    assert pop.run_state(2)["optim"]["1.weight"]["step"] == 10


@pytest.mark.parametrize("load_first", [True, False], ids=["load-then-set_lr", "set_lr-then-load"])
def test_checkpoint_round_trip_in_a_mixed_lr_population(load_first: bool) -> None:
    models = [mlp(seed) for seed in range(3)]
    settings = TrainSettings(optimizer="adam")
    rates = [1e-3, 1e-2, 3e-2]
    x, y = data(steps=10)
    a = Population(models, settings)
    a.set_lr(rates)
    train(a, x, y, range(5))
    states = [a.run_state(i) for i in range(3)]
    # A checkpoint has the form of a shared-lr population's: the same keys and per-run shapes.
    plain = train(Population(models, settings), x, y, range(5)).run_state(0)
    assert {k: {n: t.shape for n, t in v.items()} for k, v in states[0]["optim"].items()} == {
        k: {n: t.shape for n, t in v.items()} for k, v in plain["optim"].items()
    }
    saved = copy.deepcopy(states)
    b = Population(models, settings)
    if load_first:
        b.load_run_states(states)
        b.set_lr(rates)
    else:
        b.set_lr(rates)
        b.load_run_states(states)
    for pop in (a, b):
        train(pop, x, y, range(5, 10))
    for name in a.params:
        assert torch.equal(a.params[name], b.params[name]), name
    # Loading copied the states: training b did not write into the checkpoints it came from.
    for state, before in zip(states, saved, strict=True):
        torch.testing.assert_close(state, before, rtol=0, atol=0)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_keep_after_set_lr_keeps_the_rates_of_the_runs_it_keeps(optimizer: str) -> None:
    models = [mlp(seed) for seed in range(4)]
    settings = TrainSettings(optimizer=optimizer, momentum=0.9 if optimizer == "sgd" else 0.0)
    rates = RATES[optimizer]
    x, y = data(steps=10)
    full = Population(models, settings)
    full.set_lr(rates)
    train(full, x, y)
    part = Population(models, settings)
    part.set_lr(rates)
    train(part, x, y, range(5))
    part.keep([0, 2, 3])
    assert part.lrs == [rates[0], rates[2], rates[3]]
    train(part, x, y, range(5, 10))
    for name, p in part.params.items():
        torch.testing.assert_close(p.detach(), full.params[name].detach()[[0, 2, 3]], rtol=1e-5, atol=1e-6)
    # Keeping runs of one rate returns to the stacked optimizer.
    part.keep([1])
    assert part.lrs == [rates[2]]
    assert len(part.optimizer.param_groups) == 1


def test_set_lr_rejects_bad_rates() -> None:
    pop = Population([mlp(0), mlp(1), mlp(2)], TrainSettings())
    with pytest.raises(ValueError, match="one rate per model: 3 for this population, got 2"):
        pop.set_lr([1e-3, 1e-2])
    with pytest.raises(ValueError, match=r"lr\[1\] must be > 0, got 0\.0"):
        pop.set_lr([1e-3, 0.0, 1e-2])
    with pytest.raises(ValueError, match=r"lr must be > 0, got -0\.1"):
        pop.set_lr(-0.1)
    with pytest.raises(ValueError, match=r"lr\[2\] must be finite"):
        pop.set_lr([1e-3, 1e-2, float("nan")])
    with pytest.raises(TypeError, match="lr must be a number or a sequence"):
        pop.set_lr("0.01")
    # A rejected call changes nothing; NumPy and torch rates are accepted.
    assert pop.lrs == [1e-3] * 3
    pop.set_lr(torch.tensor([1e-3, 2e-3, 4e-3], dtype=torch.float64))
    assert pop.lrs == [1e-3, 2e-3, 4e-3]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (no GPU on this machine)")
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_mixed_lr_population_on_cuda_trains_like_on_cpu_and_resumes_identically(optimizer: str) -> None:
    models = [mlp(seed) for seed in range(3)]
    settings = TrainSettings(optimizer=optimizer, momentum=0.9 if optimizer == "sgd" else 0.0)
    rates = RATES[optimizer][:3]
    x, y = data(steps=10)
    cpu = Population(models, settings)
    cpu.set_lr(rates)
    train(cpu, x, y)
    gpu = Population(models, settings, device="cuda")
    gpu.set_lr(rates)
    gpu.train_epoch(Batch(x[t].cuda(), y[t].cuda()) for t in range(5))
    resumed = Population(models, settings, device="cuda")
    resumed.load_run_states([gpu.run_state(i) for i in range(3)])
    resumed.set_lr(rates)
    for pop in (gpu, resumed):
        pop.train_epoch(Batch(x[t].cuda(), y[t].cuda()) for t in range(5, 10))
    for name, p in cpu.params.items():
        assert torch.equal(resumed.params[name], gpu.params[name]), name
        assert rel_err(gpu.params[name].detach().cpu(), p.detach()) < 1e-3, name
