"""``saxe2014``: learning time against depth in deep linear networks (Saxe, McClelland & Ganguli, 2014, "Exact
solutions to the nonlinear dynamics of learning in deep linear neural networks").

Setup: a teacher linear map ``y = A x`` with ``A ~ N(0, 1/d)`` of size d×d (d = 32), 256 inputs ``x ~ N(0, I)``;
students are products of ``depth`` square linear layers (no biases, no nonlinearity), trained by full-batch gradient
descent on the mean squared error ``½‖W_D⋯W_1 x − y‖²`` with learning rate 0.02, in float64. The learning time is the
number of steps until the loss first falls to 5% of its initial value (capped at ``MAX_STEPS``). Two
initializations: scaled Gaussian ``N(0, 1/d)`` (initlab ``VarianceScaling(1, "fan_in", "untruncated_normal")``),
which preserves the norm only on average so that the product's singular values spread out with depth, and random
orthogonal (initlab ``Orthogonal``), whose product stays an isometry at any depth.

Claims: under scaled Gaussian init the learning time grows with depth (the deepest network needs at least
``GROWTH`` times the steps of depth 1); under orthogonal init it does not (at most ``FLAT`` times).
"""

from __future__ import annotations

import statistics
from pathlib import Path

import torch

import initlab
from initlab.reproduce._base import Result, pyplot, register, save_figure
from initlab.seeding import derive_seed

WIDTH = 32
SAMPLES = 256
LEARNING_RATE = 0.02
CRITERION = 0.05  # loss at or below 5% of its initial value
MAX_STEPS = 5000
GROWTH = 4.0  # "grows with depth": deepest / depth-1 learning time under scaled Gaussian init
FLAT = 1.5  # "does not grow": deepest / depth-1 learning time under orthogonal init
SOURCE = "Saxe, McClelland & Ganguli (2014), Exact solutions to the nonlinear dynamics of learning in deep linear nets"
INITS = {
    "scaled Gaussian": initlab.VarianceScaling(1.0, "fan_in", "untruncated_normal"),
    "orthogonal": initlab.Orthogonal(),
}


def learning_time(depth: int, init: initlab.Initializer, seed: int, max_steps: int = MAX_STEPS) -> int:
    """Steps of full-batch gradient descent until the loss reaches ``CRITERION`` of its start (``max_steps`` if not)."""
    g = torch.Generator().manual_seed(derive_seed(seed, "teacher"))
    teacher = torch.randn(WIDTH, WIDTH, generator=g, dtype=torch.float64) / WIDTH**0.5
    x = torch.randn(SAMPLES, WIDTH, generator=g, dtype=torch.float64)
    y = x @ teacher.T
    weights = [init((WIDTH, WIDTH), seed=derive_seed(seed, "layer", i), dtype=torch.float64).requires_grad_()
               for i in range(depth)]  # fmt: skip
    start = None
    for step in range(max_steps):
        h = x
        for w in weights:
            h = h @ w.T
        loss = 0.5 * (h - y).pow(2).sum(dim=1).mean()
        value = float(loss.detach())
        if start is None:
            start = value
        if value <= CRITERION * start:
            return step
        grads = torch.autograd.grad(loss, weights)
        with torch.no_grad():
            for w, grad in zip(weights, grads, strict=True):
                w -= LEARNING_RATE * grad
    return max_steps


@register("saxe2014", "Learning time against depth in deep linear networks", SOURCE,
          "about 2 minutes (depths 1-32, 3 seeds); the quick form about 10 s",
          heading="Deep linear networks: learning time against depth")  # fmt: skip
def run(result: Result, out: Path) -> Result:
    depths = (1, 4, 12) if result.quick else (1, 2, 4, 8, 16, 32)
    seeds = (0,) if result.quick else (0, 1, 2)
    max_steps = 3000 if result.quick else MAX_STEPS
    with torch.random.fork_rng():
        torch.set_num_threads(1)
        times = {name: {d: [learning_time(d, init, s, max_steps) for s in seeds] for d in depths}
                 for name, init in INITS.items()}  # fmt: skip
    mean = {name: {d: statistics.fmean(v) for d, v in by_depth.items()} for name, by_depth in times.items()}
    deepest = depths[-1]
    gauss = mean["scaled Gaussian"][deepest] / mean["scaled Gaussian"][1]
    orth = mean["orthogonal"][deepest] / mean["orthogonal"][1]
    capped = " (capped)" if mean["scaled Gaussian"][deepest] >= max_steps else ""
    result.check(f"scaled Gaussian: learning time grows with depth (depth {deepest} vs 1)", f">= {GROWTH:g}x",
                 f"{gauss:.1f}x ({mean['scaled Gaussian'][1]:.0f} -> {mean['scaled Gaussian'][deepest]:.0f} steps"
                 f"{capped})", gauss >= GROWTH)  # fmt: skip
    result.check(f"orthogonal: learning time does not grow with depth (depth {deepest} vs 1)", f"<= {FLAT:g}x",
                 f"{orth:.2f}x ({mean['orthogonal'][1]:.0f} -> {mean['orthogonal'][deepest]:.0f} steps)",
                 orth <= FLAT)  # fmt: skip
    result.details = {"steps": {n: {str(d): v for d, v in t.items()} for n, t in times.items()}, "seeds": list(seeds)}
    result.figures = [_figure(out, mean, max_steps)]
    return result


def _figure(out: Path, mean: dict[str, dict[int, float]], max_steps: int) -> Path:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    for (name, by_depth), (style, marker) in zip(mean.items(), [("-", "o"), ("--", "s")], strict=True):
        ax.plot(list(by_depth), list(by_depth.values()), style, marker=marker, label=f"{name} init")
    ax.axhline(max_steps, color="gray", lw=0.8, ls=":", label=f"cap ({max_steps} steps)")
    ax.set(xscale="log", yscale="log", xlabel="depth (number of linear layers)",
           ylabel=f"steps to {CRITERION:.0%} of the initial loss",
           title="Deep linear networks: learning time")  # fmt: skip
    ax.set_xticks(list(next(iter(mean.values()))), labels=[str(d) for d in next(iter(mean.values()))])
    ax.legend()
    return save_figure(fig, out / "saxe2014.png")
