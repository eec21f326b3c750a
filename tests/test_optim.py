"""initlab's eager optimizers: torch's own arithmetic and state, without importing torch._dynamo."""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap

import pytest
import torch

from initlab.training import TrainSettings, optim

CASES = {
    "adam-fused": (optim.Adam, torch.optim.Adam, {"lr": 1e-2, "weight_decay": 0.01, "fused": True}),
    "adam-foreach": (optim.Adam, torch.optim.Adam, {"lr": 1e-2, "amsgrad": True, "foreach": True}),
    "adamw-fused": (optim.AdamW, torch.optim.AdamW, {"lr": 1e-2, "weight_decay": 0.1, "fused": True}),
    "sgd-nesterov": (optim.SGD, torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "foreach": True}),
    "sgd-plain": (optim.SGD, torch.optim.SGD, {"lr": 0.1, "weight_decay": 1e-3}),
    "rmsprop": (optim.RMSprop, torch.optim.RMSprop, {"lr": 1e-3, "momentum": 0.5, "foreach": True}),
}


def _train(
    opt_cls: type[torch.optim.Optimizer], options: dict[str, object], steps: int = 5, device: str = "cpu"
) -> tuple:
    """Two param groups (the second with its own lr), a few steps with zero_grad, and the state dict."""
    g = torch.Generator().manual_seed(0)
    a = torch.nn.Parameter(torch.randn(4, 3, generator=g).to(device))
    b = torch.nn.Parameter(torch.randn(3, generator=g).to(device))
    x = torch.randn(8, 4, generator=g).to(device)
    opt = opt_cls([a], **options)
    opt.add_param_group({"params": [b], "lr": 0.5 * float(options["lr"])})  # type: ignore[arg-type]
    for _ in range(steps):
        opt.zero_grad()
        torch.tanh(x @ a + b).square().mean().backward()
        opt.step()
    return a.detach().clone(), b.detach().clone(), opt.state_dict()


_CUDA = pytest.param(
    "cuda",
    marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (no GPU here)")],
)


@pytest.mark.parametrize("device", ["cpu", _CUDA])
@pytest.mark.parametrize("case", list(CASES))
def test_eager_optimizers_step_exactly_as_torch(case: str, device: str) -> None:
    ours, theirs, options = CASES[case]
    a1, b1, s1 = _train(ours, options, device=device)
    a2, b2, s2 = _train(theirs, options, device=device)
    assert torch.equal(a1, a2)
    assert torch.equal(b1, b2)
    assert s1["param_groups"] == s2["param_groups"]
    assert s1["state"].keys() == s2["state"].keys()
    for k, state in s1["state"].items():
        assert state.keys() == s2["state"][k].keys()
        for key, v in state.items():
            assert torch.equal(v, s2["state"][k][key]), (k, key)


@pytest.mark.parametrize("case", ["adam-fused", "sgd-nesterov", "rmsprop"])
def test_state_dicts_move_between_torch_and_eager(case: str) -> None:
    """A state dict written by torch's class loads into ours and the next steps agree, and the other way round."""
    ours, theirs, options = CASES[case]
    for first, second in ((theirs, ours), (ours, theirs)):
        p = torch.nn.Parameter(torch.linspace(-1, 1, 6))
        opt = first([p], **options)
        for _ in range(3):
            opt.zero_grad()
            (p**3).sum().backward()
            opt.step()
        q = torch.nn.Parameter(p.detach().clone())
        other = second([q], **options)
        other.load_state_dict(copy.deepcopy(opt.state_dict()))
        for o, t in ((opt, p), (other, q)):
            o.zero_grad()
            (t**3).sum().backward()
            o.step()
        assert torch.equal(p, q)


def test_step_hooks_and_closure_still_run() -> None:
    p = torch.nn.Parameter(torch.ones(3))
    opt = optim.SGD([p], lr=0.1)
    seen: list[str] = []
    opt.register_step_pre_hook(lambda *_: seen.append("pre"))
    opt.register_step_post_hook(lambda *_: seen.append("post"))

    def closure() -> float:
        opt.zero_grad()
        loss = (p**2).sum()
        loss.backward()
        return float(loss.detach())

    assert opt.step(closure) == 3.0
    assert seen == ["pre", "post"]
    assert torch.allclose(p, torch.full((3,), 0.8))
    assert torch.is_grad_enabled()  # the update ran under no_grad (an in-place update of a leaf would raise) and
    # the grad mode is back as it was


def test_differentiable_is_refused_with_a_pointer() -> None:
    p = torch.nn.Parameter(torch.ones(2))
    opt = optim.Adam([p], differentiable=True)
    (p**2).sum().backward()
    with pytest.raises(ValueError, match=r"torch\.optim"):
        opt.step()


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "rmsprop"])
def test_settings_give_the_eager_class(name: str) -> None:
    opt = TrainSettings(optimizer=name).make_optimizer([torch.nn.Parameter(torch.zeros(2))])
    assert optim.is_eager(opt)
    assert isinstance(opt, torch.optim.Optimizer)


def test_training_a_population_never_imports_dynamo() -> None:
    """What the optimizers are for: a whole population's training, checkpointing and restoring leaves torch._dynamo
    unimported (it costs about 2 s of start-up), for every optimizer."""
    script = textwrap.dedent(
        """
        import sys
        import torch
        from initlab import models
        from initlab.training import Batch, Population, TrainSettings
        for name in ("sgd", "adam", "adamw", "rmsprop"):
            nets = [models.build("mlp:8", input_shape=(5,), num_classes=3) for _ in range(3)]
            settings = TrainSettings(optimizer=name, momentum=0.9 if name in ("sgd", "rmsprop") else 0.0)
            pop = Population(nets, settings)
            x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
            pop.train_epoch([Batch(x, y)] * 2)
            pop.set_lr([1e-3, 2e-3, 3e-3])
            pop.train_epoch([Batch(x, y)])
            pop.load_run_states([pop.run_state(i) for i in range(3)])
            pop.evaluate(x, y)
        print("torch._dynamo" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
