"""``glorot2010``: Glorot and Bengio (2010), "Understanding the difficulty of training deep feedforward neural
networks" (AISTATS), section 4.2.1 and figures 6-7: with the "standard" initialization the activations shrink and the
back-propagated gradients vanish toward the input of a deep tanh network, while the weight gradients keep a similar
size across layers; the "normalized" initialization keeps both much flatter.

Setup: MNIST (the paper's figures use its Shapeset-3x2 data, which initlab does not ship; it reports the same
behaviour on MNIST), pixels standardized with the training split's statistics; a batch of :data:`BATCH` training
images from a seeded permutation. Network: five tanh hidden layers of 1,000 units and a 10-unit linear output
(``mlp:1000,1000,1000,1000,1000;act=tanh``), zero biases, cross-entropy loss. Initializations:

- standard: W ~ U[-1/√n, 1/√n], n = fan-in; as initlab's general mechanism, ``VarianceScaling(1/3, "fan_in",
  "uniform")`` (limit √(3 · scale / n) = 1/√n), so n · Var(W) = 1/3 and the signal shrinks by √(1/3) per layer;
- normalized: W ~ U[-√6/√(n_in + n_out), +√6/√(n_in + n_out)], ``GlorotUniform``, so n · Var(W) = 1 between the
  1000-unit layers.

Everything is measured at initialization by :func:`initlab.diagnose` on the hidden layers (1-5): the std of each
layer's tanh output (the paper's figure 6), the std of ∂loss/∂(layer output), the back-propagated gradient (figure 7
plots it with respect to the pre-activation; the two differ by tanh' ≈ 1 in this unsaturated regime), and the std of
∂loss/∂W. Claims, as ratios of layer 5 to layer 1 (or the spread over layers) with the thresholds below: standard
init's activation std falls (layer 5 / layer 1 ≤ :data:`FALLS`) and its back-propagated gradient shrinks toward the
input (layer 1 / layer 5 ≤ :data:`FALLS`), while its weight gradients stay of similar size (max / min over layers ≤
:data:`SIMILAR`); normalized init keeps the activations and back-propagated gradients flat (ratios within a factor
:data:`FLAT` of 1). The quick form uses one seed; the full form :data:`FULL_SEEDS` seeds (model and batch), claims on
the mean ratio. Not reproduced: the paper's measurements during training (its figures 3-5, 8-11).
"""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path

import torch
from torch import nn

import initlab
from initlab.reproduce._base import Result, pyplot, register, save_figure

WIDTHS = (1000,) * 5
SPEC = f"mlp:{','.join(map(str, WIDTHS))};act=tanh"
BATCH = 256
FULL_SEEDS = (0, 1, 2, 3, 4)
INITS: dict[str, initlab.Initializer] = {
    # U[-1/√n, 1/√n]: variance 1/(3n), VarianceScaling's uniform limit √(3 · scale / n) with scale 1/3.
    "standard": initlab.VarianceScaling(1 / 3, "fan_in", "uniform"),
    "normalized": initlab.GlorotUniform(),
}
#: "Falls layer by layer": layer 5 / layer 1 at most this. Linear theory gives (1/3)^(4/2) = 0.11 for standard init.
FALLS = 0.3
#: "Similar size across layers": max / min of the weight-gradient std over the five hidden layers at most this.
SIMILAR = 2.0
#: "Much flatter": layer 5 / layer 1 within a factor FLAT of 1 for normalized init.
FLAT = 1.5
SOURCE = (
    "Glorot & Bengio (2010), 'Understanding the difficulty of training deep feedforward neural networks', AISTATS, "
    "section 4.2.1, figures 6-7"
)


def batch(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``BATCH`` MNIST training images and labels, chosen by a seeded permutation."""
    data = initlab.data.load("mnist", split="train", normalize=None)
    idx = torch.randperm(len(data.y), generator=torch.Generator().manual_seed(seed))[:BATCH]
    return data.x[idx], data.y[idx]


def build(init: str, seed: int) -> nn.Module:
    """The five-layer tanh network with ``INITS[init]`` and zero biases."""
    model = initlab.models.build(SPEC, input_shape=(1, 28, 28), num_classes=10)
    initlab.initialize(model, INITS[init], seed=seed)
    return model


def profile(init: str, seed: int) -> dict[str, list]:
    """Per hidden layer: activation std, back-propagated gradient std and weight-gradient std at initialization,
    and the diagnosis' histograms of activations and back-propagated gradients (``None`` where it has none)."""
    x, y = batch(seed)
    diagnosis = initlab.diagnose(build(init, seed), x, targets=y, jacobian=False)
    hidden = [layer for layer in diagnosis.layers if layer.activation_kind == "tanh"]
    return {
        "activation_std": [layer.std for layer in hidden],
        "backprop_std": [layer.grad_output_std or float("nan") for layer in hidden],
        "weight_grad_std": [layer.grad_weight_std or float("nan") for layer in hidden],
        # LayerStats.hist / grad_hist: initlab.diagnostics.Histogram (edges, counts), in newer diagnostics.
        "hists": [(getattr(layer, "hist", None), getattr(layer, "grad_hist", None)) for layer in hidden],
    }


def ratios(p: dict[str, list]) -> dict[str, float]:
    """The claims' ratios: activations layer 5 / 1, back-propagated gradients 1 / 5, weight gradients max / min."""
    return {
        "activation": p["activation_std"][-1] / p["activation_std"][0],
        "backprop": p["backprop_std"][0] / p["backprop_std"][-1],
        "weight_grad": max(p["weight_grad_std"]) / min(p["weight_grad_std"]),
    }


@register("glorot2010", "Activations and gradients of a 5-layer tanh network: standard vs normalized initialization",
          SOURCE, "about 40 s (2 initializations x 5 seeds, at initialization); the quick form about 5 s",
          heading="Standard vs normalized initialization (Glorot & Bengio 2010)")  # fmt: skip
def run(result: Result, out: Path) -> Result:
    seeds = (0,) if result.quick else FULL_SEEDS
    profiles = {init: [profile(init, s) for s in seeds] for init in INITS}
    mean = {init: {k: statistics.fmean(ratios(p)[k] for p in ps) for k in ("activation", "backprop", "weight_grad")}
            for init, ps in profiles.items()}  # fmt: skip
    std, norm = mean["standard"], mean["normalized"]
    result.check("standard: activation std falls layer by layer (layer 5 / layer 1)", f"<= {FALLS}",
                 f"{std['activation']:.3f}", std["activation"] <= FALLS)  # fmt: skip
    result.check("standard: back-propagated gradients shrink toward the input (layer 1 / layer 5)", f"<= {FALLS}",
                 f"{std['backprop']:.3f}", std["backprop"] <= FALLS)  # fmt: skip
    result.check("standard: weight gradients of similar size across layers (max / min)", f"<= {SIMILAR}",
                 f"{std['weight_grad']:.3f}", std["weight_grad"] <= SIMILAR)  # fmt: skip
    result.check("normalized: activation std flat (layer 5 / layer 1)", f"in [{1 / FLAT:.3f}, {FLAT}]",
                 f"{norm['activation']:.3f}", 1 / FLAT <= norm["activation"] <= FLAT)  # fmt: skip
    result.check("normalized: back-propagated gradients flat (layer 1 / layer 5)", f"in [{1 / FLAT:.3f}, {FLAT}]",
                 f"{norm['backprop']:.3f}", 1 / FLAT <= norm["backprop"] <= FLAT)  # fmt: skip
    result.details = {"seeds": list(seeds), "batch": BATCH, "mean_ratios": mean,
                      "profiles": {init: {k: v for k, v in ps[0].items() if k != "hists"}
                                   for init, ps in profiles.items()}}  # fmt: skip
    result.figures = _figures(out, profiles, seeds[0])
    return result


def _figures(out: Path, profiles: dict[str, list[dict[str, list]]], seed: int) -> list[Path]:
    """Per-layer stds (mean ± std over seeds) and, as the paper's figures 6-7, per-layer histograms of the
    activations and back-propagated gradients of one seed: the diagnosis' own histograms where it has them, else
    histograms of values recorded by forward hooks."""
    plt = pyplot()
    layers = range(1, len(WIDTHS) + 1)
    n = len(next(iter(profiles.values())))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), layout="constrained")
    titles = {"activation_std": "Activation std (tanh output)", "backprop_std": "Back-propagated gradient std",
              "weight_grad_std": "Weight-gradient std"}  # fmt: skip
    units = {"activation_std": "std (dimensionless)", "backprop_std": "std of ∂loss/∂output (nats per unit)",
             "weight_grad_std": "std of ∂loss/∂W (nats per unit)"}  # fmt: skip
    for ax, key in zip(axes, titles, strict=True):
        for init, style in (("standard", "o--"), ("normalized", "s-")):
            values = torch.tensor([p[key] for p in profiles[init]])
            spread = values.std(0, correction=1) if n > 1 else torch.zeros(len(WIDTHS))
            ax.errorbar(list(layers), values.mean(0), yerr=spread, fmt=style, capsize=3, label=f"{init} init")
        ax.set(title=f"{titles[key]} at initialization", xlabel="hidden layer", ylabel=units[key], yscale="log",
               xticks=list(layers))  # fmt: skip
        ax.legend()
    fig.suptitle(f"5 x 1000 tanh MLP on {BATCH} MNIST images, mean ± std over {n} seed(s), CPU")
    summary = save_figure(fig, out / "glorot2010_layers.png")

    fig, axes = plt.subplots(2, 2, figsize=(13, 7), layout="constrained")
    for col, init in enumerate(INITS):
        densities = _densities(profiles[init][0], init, seed)
        rows = (("Activation values", "tanh output (dimensionless)"),
                ("Back-propagated gradients", "∂loss/∂output (nats per unit)"))  # fmt: skip
        for row, (what, unit) in enumerate(rows):
            ax = axes[row, col]
            for i, (centres, density) in enumerate(densities[row], start=1):
                ax.plot(centres, density, label=f"layer {i}")
            ax.set(title=f"{what}, {init} init (seed {seed})", xlabel=unit, ylabel="density (per unit)",
                   yscale="log")  # fmt: skip
            ax.legend(fontsize=8)
    fig.suptitle("Per-layer histograms at initialization (Glorot & Bengio 2010, figures 6-7)")
    return [summary, save_figure(fig, out / "glorot2010_histograms.png")]


def _densities(p: dict[str, list], init: str, seed: int) -> tuple[list[tuple[list[float], list[float]]], ...]:
    """(bin centres, density) per hidden layer, for activations and for back-propagated gradients."""
    if all(h is not None for pair in p["hists"] for h in pair):
        return tuple([_density(pair[k].edges, pair[k].counts) for pair in p["hists"]] for k in (0, 1))
    acts, grads = _hooked(init, seed)
    out = []
    for values in (acts, grads):
        limit = max(float(v.abs().max()) for v in values)
        edges = torch.linspace(-limit, limit, 51)
        out.append([_density(edges.tolist(), torch.histc(v, bins=50, min=-limit, max=limit).tolist())
                    for v in values])  # fmt: skip
    return tuple(out)


def _density(edges: tuple[float, ...] | list[float], counts: tuple[int, ...] | list[float]) -> tuple[list, list]:
    total = sum(counts)
    bins = list(itertools.pairwise(edges))
    return [(a + b) / 2 for a, b in bins], [c / total / (b - a) for c, (a, b) in zip(counts, bins, strict=True)]


def _hooked(init: str, seed: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Each hidden layer's tanh outputs and ∂loss/∂output on the seed's batch, from hooks."""
    model = build(init, seed)
    x, y = batch(seed)
    outputs: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda _m, _a, o: outputs.append(o)) for m in model if isinstance(m, nn.Tanh)]
    try:
        loss = nn.functional.cross_entropy(model(x), y)
        for o in outputs:
            o.retain_grad()
        loss.backward()
    finally:
        for h in handles:
            h.remove()
    return [o.detach() for o in outputs], [o.grad.detach() for o in outputs if o.grad is not None]
