"""The stacked path of residual MLPs and transformers equals the general vmap path and each model trained alone."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import initlab.models
from initlab.nets import ResidualMLP
from initlab.training import Batch, Population, TrainSettings, stacked_nets

N, B = 4, 6


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny shapes run fastest on one thread, and a second one only waits on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


#: (spec, one sample's input shape, classes): every norm, gate, ln placement, input kind and task; the sequence
#: lengths reach each attention form (T = 3: fused, short; T = 4 and 5: written out; T = 36: fused, long).
VARIANTS = {
    "resmlp": ("resmlp:8x2", (1, 4, 5), 5),
    "resmlp-batch-channel": ("resmlp:8x2;norm=batch;gate=channel", (20,), 5),
    "resmlp-layer-scalar-tanh": ("resmlp:8x2;norm=layer;gate=scalar;act=tanh", (20,), 5),
    "transformer-tokens-pre": ("transformer:8x2;heads=2", (5,), 7),
    "transformer-tokens-lm-post-channel": ("transformer:8x2;heads=2;task=lm;ln=post;gate=channel", (3,), 7),
    "transformer-tokens-lm-deepnorm-scalar": ("transformer:8x2;heads=2;task=lm;ln=deepnorm;gate=scalar", (5,), 7),
    "transformer-tokens-lm-pre": ("transformer:8x2;heads=2;task=lm", (5,), 7),
    "transformer-features-none": ("transformer:8x2;heads=2;ln=none", (5, 3), 4),
    "transformer-image-pre": ("transformer:8x2;heads=2;patch=2", (1, 12, 12), 4),
    "transformer-image2d-post": ("transformer:8x2;heads=2;patch=4;ln=post;bias=false", (8, 8), 4),
}


def build(name: str, seed: int, extra: str = "") -> nn.Module:
    """Variant ``name`` with seed ``seed``; gates, norms' affine parts and biases drawn away from their 1 and 0 so
    that every parameter shapes the output."""
    spec, shape, classes = VARIANTS[name]
    torch.manual_seed(seed)
    model = initlab.models.build(spec + extra, input_shape=shape, num_classes=classes)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() <= 1:
                p.add_(0.3 * torch.randn_like(p))
    return model


def inputs(name: str, lead: tuple[int, ...], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of inputs (*lead, ...) for variant ``name`` and its class labels (*lead,)."""
    spec, shape, classes = VARIANTS[name]
    g = torch.Generator().manual_seed(seed)
    if spec.startswith("transformer") and len(shape) == 1:
        x = torch.randint(0, classes, (*lead, *shape), generator=g)
    else:
        x = torch.randn(*lead, *shape, generator=g)
    return x, torch.randint(0, classes, lead, generator=g)


def populations(models: list[nn.Module], settings: TrainSettings) -> tuple[Population, Population]:
    """The same models on the stacked path and on the general vmap path."""
    fast = Population(models, settings)
    slow = Population(models, settings)
    slow.path, slow.fast = None, False
    assert fast.path is stacked_nets
    return fast, slow


def batch_of(name: str, kind: str, seed: int = 0) -> Batch:
    """A shared batch (B, ...) or one per group of models (G, B, ...): G = 1, 2 or N."""
    if kind == "shared":
        return Batch(*inputs(name, (B,), seed))
    groups = {"G=1": 1, "G=2": 2, "G=N": N}[kind]
    return Batch(*inputs(name, (groups, B), seed), per_model=True)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def degenerate(name: str, param: str) -> bool:
    """Whether the gradient of ``param`` is zero in exact arithmetic in variant ``name``: the key's bias (softmax
    ignores a shift of the scores) and the biases that only feed batch norms. In float32 it is rounding noise, which
    differs between the paths."""
    spec = VARIANTS[name][0]
    if spec.startswith("transformer"):
        return param.endswith("attn.k.bias")
    return "norm=batch" in spec and (param == "embed.bias" or param.endswith("fc2.bias"))


#: The variants with such a bias.
DEGENERATE_BIASES = {name for name, (spec, _, _) in VARIANTS.items()
                     if ("transformer" in spec or "norm=batch" in spec) and "bias=false" not in spec}  # fmt: skip


def assert_grads_equal(name: str, fast: Population, slow: Population) -> None:
    """Every gradient of ``fast`` equals ``slow``'s to 1e-5 relative; a :func:`degenerate` one to 1e-6 of the
    largest gradient."""
    scale = max(float(p.grad.norm()) for p in slow.params.values())
    for key, p in slow.params.items():
        grad = fast.params[key].grad
        assert grad.dtype == torch.float32
        if degenerate(name, key):
            assert float((grad - p.grad).norm()) < 1e-6 * scale, key
        else:
            assert rel_err(grad, p.grad) < 1e-5, key


@pytest.mark.parametrize("name", VARIANTS)
def test_supported_variants_take_the_stacked_path(name: str) -> None:
    models = [build(name, seed) for seed in range(2)]
    pop = Population(models, TrainSettings())
    assert pop.fast
    assert pop.path is stacked_nets


class GatedMLP(ResidualMLP):
    """A subclass: its forward may differ, so the stacked path must not assume it."""


@pytest.mark.parametrize(
    "change",
    ["subclass", "extra module", "batch norm in a transformer", "prelu", "cumulative batch norm", "padding idx",
     "padded patches"],
)  # fmt: skip
def test_unsupported_models_take_the_vmap_path(change: str) -> None:
    if change == "subclass":
        model: nn.Module = GatedMLP((20,), 5, width=8, depth=2)
    elif change == "extra module":
        model = build("resmlp", 0)
        model.extra = nn.Linear(8, 8)
    elif change == "batch norm in a transformer":
        model = build("transformer-tokens-pre", 0)
        model.blocks[0].ln1 = nn.BatchNorm1d(8)
    elif change == "prelu":
        model = build("resmlp", 0)
        model.blocks[1].mlp.act = nn.PReLU()
    elif change == "cumulative batch norm":
        model = build("resmlp-batch-channel", 0)
        model.norm.momentum = None
    elif change == "padding idx":
        model = build("transformer-tokens-pre", 0)
        model.embed.padding_idx = 0
    else:
        model = build("transformer-image-pre", 0)
        model.embed.padding = (1, 1)
    assert not stacked_nets.supports(model)
    if change == "subclass":
        assert not Population([model, copy.deepcopy(model)], TrainSettings()).fast
        assert not stacked_nets.supports(nn.Sequential(nn.Flatten(), nn.Linear(20, 5)))  # the MLP path's


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("kind", ["shared", "G=1", "G=2", "G=N"])
@pytest.mark.parametrize("name", VARIANTS)
def test_outputs_gradients_and_buffers_equal_the_vmap_path(name: str, kind: str, train: bool) -> None:
    fast, slow = populations([build(name, seed) for seed in range(N)], TrainSettings())
    batch = batch_of(name, kind)
    outs = []
    for pop in (fast, slow):
        out = pop.forward(batch.x, train=train, per_model=batch.per_model)
        pop.losses(out, batch.y, per_model=batch.per_model).sum().backward()
        outs.append(out.detach())
    assert outs[0].shape == (N, B, VARIANTS[name][2])
    assert rel_err(outs[0], outs[1]) < 1e-5
    assert_grads_equal(name, fast, slow)
    for key, buffer in slow.buffers.items():  # batch norm's running statistics moved alike (in training only)
        torch.testing.assert_close(fast.buffers[key], buffer, rtol=1e-5, atol=1e-7)
    if train and slow.buffers:
        assert int(fast.buffers["norm.num_batches_tracked"][0]) == 1


@pytest.mark.parametrize(
    "constants",
    [{"FOLD_ROWS": 0}, {"SMALL_T": 0, "FUSED_ATTENTION_MIN_T": 10**6}, {"SMALL_T": 10**6}],
    ids=["fold-every-affine", "written-attention", "fused-attention"],
)
@pytest.mark.parametrize("name", [n for n in VARIANTS if n != "resmlp"])
def test_every_form_of_norm_and_attention_equals_the_vmap_path(name: str, constants: dict[str, int], monkeypatch):
    # The defaults choose between equivalent forms by size; each form on its own equals the vmap path.
    for key, value in constants.items():
        monkeypatch.setattr(stacked_nets, key, value)
    fast, slow = populations([build(name, seed) for seed in range(3)], TrainSettings())
    batch = batch_of(name, "shared")
    outs = [pop.forward(batch.x, train=True) for pop in (fast, slow)]
    for pop, out in zip((fast, slow), outs, strict=True):
        pop.losses(out, batch.y).sum().backward()
    assert rel_err(outs[0].detach(), outs[1].detach()) < 1e-5
    assert_grads_equal(name, fast, slow)


def train(pop: Population, batches: list[Batch]) -> None:
    """Optimizer steps on ``batches``, as :meth:`Population.train_epoch` takes them (which cannot sample the gradient
    norm of a scalar parameter, stacked as (N,): ``p.grad.flatten(1)``)."""
    for batch in batches:
        out = pop.forward(batch.x, train=True, per_model=batch.per_model)
        loss = pop.losses(out, batch.y, per_model=batch.per_model).sum()
        for p in pop.params.values():
            p.grad = None
        loss.backward()
        pop.optimizer.step()


def train_both(name: str, settings: TrainSettings, kind: str, extra: str = "") -> tuple[Population, Population]:
    fast, slow = populations([build(name, seed, extra) for seed in range(N)], settings)
    for pop in (fast, slow):
        train(pop, [batch_of(name, kind, seed=step) for step in range(3)])
    return fast, slow


@pytest.mark.parametrize("kind", ["shared", "G=2"])
@pytest.mark.parametrize(
    "settings",
    [TrainSettings(optimizer="adam", lr=1e-2), TrainSettings(optimizer="sgd", lr=0.05, momentum=0.9)],
    ids=lambda s: s.optimizer,
)
@pytest.mark.parametrize("name", VARIANTS)
def test_training_steps_equal_the_vmap_path(name: str, settings: TrainSettings, kind: str) -> None:
    # Adam's update g/√v moves a parameter whose gradient is rounding noise (see degenerate) by a step of the noise's
    # sign, different on either path; without biases no parameter has such a gradient.
    extra = ";bias=false" if settings.optimizer == "adam" and name in DEGENERATE_BIASES else ""
    fast, slow = train_both(name, settings, kind, extra)
    for key, p in slow.params.items():
        assert rel_err(fast.params[key].detach(), p.detach()) < 1e-5, key
    for key, buffer in slow.buffers.items():
        torch.testing.assert_close(fast.buffers[key], buffer, rtol=1e-5, atol=1e-6)


def alone(model: nn.Module, settings: TrainSettings, batches: list[Batch], i: int) -> nn.Module:
    """The reference: model ``i`` trained by a plain PyTorch loop with torch's optimizer, on its batches."""
    model = copy.deepcopy(model)
    if settings.optimizer == "adam":
        opt: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum)
    model.train()
    for batch in batches:
        group = i * batch.x.shape[0] // N  # model i's group: its batch
        x, y = (batch.x[group], batch.y[group]) if batch.per_model else (batch.x, batch.y)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model


@pytest.mark.parametrize(
    ("name", "settings", "kind", "extra"),
    [("resmlp-batch-channel", TrainSettings(optimizer="sgd", lr=0.05, momentum=0.9), "G=N", ""),
     ("resmlp-layer-scalar-tanh", TrainSettings(optimizer="adam", lr=1e-2), "shared", ""),
     ("transformer-tokens-lm-post-channel", TrainSettings(optimizer="adam", lr=1e-2), "G=2", ";bias=false"),
     ("transformer-image-pre", TrainSettings(optimizer="sgd", lr=0.05, momentum=0.9), "shared", "")],
)  # fmt: skip
def test_a_model_trained_in_a_population_equals_it_trained_alone(name, settings, kind, extra) -> None:
    models = [build(name, seed, extra) for seed in range(N)]
    batches = [batch_of(name, kind, seed=step) for step in range(3)]
    pop = Population(models, settings)
    assert pop.fast
    train(pop, batches)
    for i, model in enumerate(models):
        ref = alone(model, settings, batches, i)
        for key, p in ref.named_parameters():
            assert rel_err(pop.params[key][i].detach(), p.detach()) < 1e-5, (i, key)
        for key, buffer in ref.named_buffers():
            torch.testing.assert_close(pop.buffers[key][i], buffer, rtol=1e-5, atol=1e-6)
        # Training moved the model.
        assert rel_err(pop.params["head.weight"][i].detach(), model.head.weight.detach()) > 1e-3


@pytest.mark.parametrize("spec", ["resmlp:8x2;dropout=0.5", "transformer:8x2;heads=2;dropout=0.5"])
def test_dropout_gives_each_model_its_own_masks(spec: str) -> None:
    shape = (20,) if spec.startswith("resmlp") else (5, 3)
    torch.manual_seed(0)
    model = initlab.models.build(spec, input_shape=shape, num_classes=5)
    pop = Population([model, copy.deepcopy(model)], TrainSettings(optimizer="sgd", lr=0.1))
    assert pop.fast
    x = torch.randn(B, *shape)
    out = pop.forward(x, train=True)
    assert not torch.allclose(out[0], out[1])  # the same model, two masks
    evaluated = pop.forward(x, train=False)  # no dropout in eval mode: each is the model itself
    torch.testing.assert_close(evaluated[0], evaluated[1])
    torch.testing.assert_close(evaluated[0], model.eval()(x), rtol=1e-5, atol=1e-6)
    pop.train_epoch([Batch(x, torch.randint(0, 5, (B,)))] * 3)
    assert not torch.allclose(pop.params["head.weight"][0], pop.params["head.weight"][1])
    # The masks follow the seed: two populations of one seed draw the same ones.
    first, second = (Population([model, model], TrainSettings(), seed=3).forward(x, train=True) for _ in range(2))
    torch.testing.assert_close(first, second)


@pytest.mark.parametrize("name", ["resmlp-batch-channel", "transformer-tokens-lm-pre", "transformer-image-pre"])
def test_bf16_products_stay_close_to_float32_with_float32_parameters_and_gradients(name: str) -> None:
    models = [build(name, seed) for seed in range(2)]
    batch = batch_of(name, "shared")
    results = {}
    for precision in ("float32", "bf16"):
        pop = Population(models, TrainSettings(optimizer="adam", lr=1e-2, precision=precision))
        assert pop.fast
        out = pop.forward(batch.x, train=True)
        pop.losses(out, batch.y).sum().backward()
        assert out.dtype == torch.float32
        assert all(p.dtype == p.grad.dtype == torch.float32 for p in pop.params.values())
        results[precision] = out.detach(), {k: p.grad for k, p in pop.params.items()}
        pop.optimizer.step()
        assert all(p.dtype == torch.float32 for p in pop.params.values())
    (out32, grads32), (out16, grads16) = results["float32"], results["bf16"]
    assert 0 < rel_err(out16, out32) < 0.02  # the products ran in bf16: close to, not equal to, float32
    scale = max(float(g.norm()) for g in grads32.values())
    for key, g32 in grads32.items():
        err = float((grads16[key] - g32).norm()) / (scale if degenerate(name, key) else float(g32.norm()))
        assert err < 0.05, (key, err)


def test_bad_token_inputs_are_refused() -> None:
    pop = Population([build("transformer-tokens-pre", seed) for seed in range(2)], TrainSettings())
    with pytest.raises(IndexError, match=r"token ids must be in \[0, 7\)"):
        pop.forward(torch.full((B, 5), 7), train=False)
    with pytest.raises(TypeError, match="embeds token ids"):
        pop.forward(torch.zeros(B, 5), train=False)
    with pytest.raises(IndexError, match="has 5 positions"):
        pop.forward(torch.zeros(B, 6, dtype=torch.long), train=False)
