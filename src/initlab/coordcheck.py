"""The coordinate check: does every layer's activation keep its size as the network gets wider, while it trains?

Yang et al. (2022), "Tensor Programs V", appendix D.1, and the ``mup`` package's ``get_coord_data`` /
``plot_coord_data``: train the same architecture at several widths for a few steps, record the size of every
layer's output at each step, and plot it against width. Under a correct muP every curve is flat (each coordinate
stays Θ(1) at any width); under the standard parametrization (SP) the updates of the hidden and output layers grow
with width, so their curves climb, most steeply the output's (the logits blow up), which is why the best learning
rate of SP shrinks as the network widens.

Here, for each parametrization (standard and muP, :mod:`initlab.mup`), width and seed: the model is built, drawn by
the scheme with the seed, rescaled by the parametrization, and trained for ``steps`` steps on batches of the data set
drawn from the seed, by the optimizer over the parametrization's param groups. At initialization and after every
step, a forward pass on a fixed probe batch records, for every layer with a weight (Linear, Conv, Embedding: its
output, the pre-activation h), the mean absolute value of its coordinates, mean |h| (the ``mup`` package's "l1"),
and the mean absolute change since initialization, mean |h - h₀|.

**Pass or fail.** muP's defining property is that every layer's update changes its output by Θ(1) per coordinate at
any width (Yang & Hu 2021, "Feature Learning in Infinite-Width Neural Networks", desiderata 1-2). So a layer is
judged on its change: the slope b of a least-squares fit log mean |h - h₀| = a + b log n over the widths n, after
the last step, on the mean over seeds; it passes when |b| <= ``tolerance`` (:data:`TOLERANCE` = 0.2; a change that
grows like √n has b = 0.5, like n, b = 1). The change, not the value: muP's output layer starts small (variance
1/fan_in², or zero) and is meant to, and a value still dominated by its initialization would hide how the updates
scale. Measured on digits, ``mlp:W,W`` at widths 64 to 1024, 5 steps, 3 seeds, muP's default zero output layer:
with Adam (lr 0.01) muP's input, hidden and output layers at b = 0.003, 0.008 and -0.013, SP's at 0.088, 0.290 (fails)
and 0.390 (fails); with SGD (lr 0.1) muP's at -0.020, 0.002 and -0.048, SP's at -0.538 (its input layer's updates
shrink with width: fails), 0.168 and 0.491 (fails).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from initlab import data, models, mup, schemes
from initlab.checks import check_choice, check_int, check_positive
from initlab.seeding import derive_seed
from initlab.training.settings import OptimizerName, TrainSettings

#: The largest |slope| of log |h| against log width at which a layer passes.
TOLERANCE = 0.2
#: Default learning rates: large enough that SP's growth shows within a few steps.
DEFAULT_LR: dict[str, float] = {"adam": 1e-2, "adamw": 1e-2, "rmsprop": 1e-3, "sgd": 0.1}
PARAMETRIZATIONS: tuple[mup.Kind, ...] = ("standard", "mup")

ModelSource = str | Callable[[int], nn.Module]


@dataclass(frozen=True)
class LayerCheck:
    """One layer under one parametrization, means over seeds indexed [step][width] (step 0: initialization): its
    mean |h| and its mean |h - h₀|; the slope of the change against width after the last step; pass or fail."""

    layer: str
    role: str  # muP's role of the layer's weight: input, hidden or output (initlab.mup)
    scales: list[list[float]]
    changes: list[list[float]]
    slope: float
    passed: bool


@dataclass
class CoordCheck:
    """The result: for each parametrization ("standard", "mup"), one :class:`LayerCheck` per layer, in order."""

    model: str
    widths: list[int]
    steps: int
    optimizer: str
    lr: float
    seeds: int
    tolerance: float
    base_width: int
    layers: dict[str, list[LayerCheck]] = field(default_factory=dict)

    def passed(self, parametrization: str = "mup") -> bool:
        """Whether every layer of ``parametrization`` passed."""
        return all(layer.passed for layer in self.layers[parametrization])

    def failing(self, parametrization: str) -> list[str]:
        """The layers of ``parametrization`` that failed."""
        return [layer.layer for layer in self.layers[parametrization] if not layer.passed]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def figure(self, path: str | Path) -> Path:
        """Mean |h| (top) and mean |h - h₀| (bottom) after the last step against width, log-log, SP left and muP
        right, one line per layer; a failing layer is dashed."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, 2, figsize=(10, 7), squeeze=False, sharex=True)
        for col, kind in enumerate(PARAMETRIZATIONS):
            for row, what in enumerate(("mean |h|", "mean |h - h₀|")):
                ax = axes[row][col]
                for layer in self.layers[kind]:
                    values = (layer.scales if row == 0 else layer.changes)[-1]
                    verdict = "pass" if layer.passed else "FAIL"
                    name = f"{layer.layer} ({layer.role})"
                    label = f"{name}: slope {layer.slope:.2f}, {verdict}" if row == 1 else name
                    ax.plot(self.widths, values, "-" if layer.passed else "--", marker="o", markersize=3, label=label)
                name = "SP (standard)" if kind == "standard" else "muP"
                ax.set(xscale="log", yscale="log", title=f"{name}: {what} after step {self.steps}")
                ax.set_xticks(self.widths, [str(w) for w in self.widths])
                ax.minorticks_off()
                ax.legend(fontsize=7)
                if row == 1:
                    ax.set_xlabel("width")
        fig.suptitle(f"Coordinate check: {self.model}, {self.optimizer} lr={self.lr:g}, {self.steps} steps, mean of "
                     f"{self.seeds} seeds (pass: |slope| <= {self.tolerance:g})")  # fmt: skip
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=90, bbox_inches="tight")
        plt.close(fig)
        return out


def _factory(model: ModelSource, input_shape: tuple[int, ...], num_classes: int) -> Callable[[int], nn.Module]:
    if isinstance(model, str):
        models.resize(model, width=1)  # a spec whose width can change, else ValueError now
        return lambda width: models.build(models.resize(model, width=width), input_shape=input_shape,
                                          num_classes=num_classes)  # fmt: skip
    if callable(model):
        return model
    raise TypeError(f"model must be a spec string with equal hidden widths or a factory width -> nn.Module, got "
                    f"{model!r}.")  # fmt: skip


def _weighted_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The modules owning a weight of two or more dimensions, in module order: the layers whose outputs are checked."""
    return [(name, m) for name, m in model.named_modules()
            if isinstance(getattr(m, "weight", None), torch.Tensor) and m.weight.dim() >= 2]  # fmt: skip


def _trace(
    model: nn.Module,
    param: mup.Parametrization,
    settings: TrainSettings,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    probe: torch.Tensor,
) -> dict[str, tuple[list[float], list[float]]]:
    """Train ``model`` one step per batch. For every layer, at initialization and after each step, on the fixed
    ``probe`` inputs: the mean |output| and the mean |output - output at initialization|."""
    layers = _weighted_layers(model)
    seen: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda _m, _i, out, name=name: seen.__setitem__(name, out.detach()))
             for name, m in layers]  # fmt: skip
    optimizer = settings.make_optimizer(
        param.param_groups(model, lr=settings.lr, weight_decay=settings.weight_decay, optimizer=settings.optimizer)
    )
    record: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name, _ in layers}
    first: dict[str, torch.Tensor] = {}
    try:
        for t in range(len(batches) + 1):
            if t > 0:
                x, y = batches[t - 1]
                optimizer.zero_grad()
                nn.functional.cross_entropy(model(x), y).backward()
                optimizer.step()
            with torch.no_grad():
                model(probe)
            for name, out in seen.items():
                first.setdefault(name, out)
                record[name][0].append(float(out.abs().mean()))
                record[name][1].append(float((out - first[name]).abs().mean()))
    finally:
        for h in hooks:
            h.remove()
    return record


def _slope(widths: Sequence[int], values: Sequence[float]) -> float:
    """Least-squares slope of log(values) against log(widths); inf when a value is not positive or finite."""
    if any(not math.isfinite(v) or v <= 0 for v in values):
        return math.inf
    xs, ys = [math.log(w) for w in widths], [math.log(v) for v in values]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)


def coord_check(
    model: ModelSource,
    widths: Sequence[int],
    *,
    dataset: str = "digits",
    steps: int = 5,
    optimizer: OptimizerName = "adam",
    lr: float | None = None,
    seeds: int = 3,
    batch_size: int = 64,
    scheme: str = "lecun_normal",
    base_width: int | None = None,
    output: mup.Output = "zero",
    tolerance: float = TOLERANCE,
) -> CoordCheck:
    """Run the coordinate check of ``model`` (a spec with equal hidden widths, such as ``"mlp:64,64"``, or a factory
    ``width -> nn.Module`` for inputs of ``dataset``) at ``widths`` under SP and muP (relative to ``base_width``,
    default the smallest width); see the module docstring."""
    widths = sorted({check_int("width", w, minimum=1) for w in widths})
    if len(widths) < 2:
        raise ValueError(f"the coordinate check needs at least two widths, got {widths}.")
    check_choice("optimizer", optimizer, tuple(DEFAULT_LR))
    check_int("steps", steps, minimum=1)
    check_int("seeds", seeds, minimum=1)
    check_positive("tolerance", tolerance)
    check_choice("output", output, mup.OUTPUTS)
    base = widths[0] if base_width is None else check_int("base_width", base_width, minimum=1)
    settings = TrainSettings(optimizer=optimizer, lr=DEFAULT_LR[optimizer] if lr is None else lr, batch_size=batch_size)
    schemes.resolve(scheme)
    train = data.load(dataset, split="train", normalize="standardize")
    factory = _factory(model, tuple(train.input_shape), train.num_classes or 1)
    traces: dict[str, dict[str, list[list[tuple[list[float], list[float]]]]]] = {k: {} for k in PARAMETRIZATIONS}
    roles: dict[str, str] = {}
    for seed in range(seeds):
        batches = _batches(train.x, train.y, seed, steps + 1, batch_size)
        probe = batches.pop()[0]
        for w, width in enumerate(widths):
            for kind in PARAMETRIZATIONS:
                torch.manual_seed(derive_seed(seed, "coordcheck", width))
                if kind == "mup":
                    net, param = mup.from_factory(factory, width, base, output=output)
                    roles.update({name.removesuffix(".weight"): r.role for name, r in param.roles.items()})
                else:
                    net = factory(width)
                    param = mup.Parametrization.standard(net)
                schemes.resolve(scheme).apply(net, seed=seed)
                param.rescale(net)
                for layer, trace in _trace(net, param, settings, batches, probe).items():
                    traces[kind].setdefault(layer, [[] for _ in widths])[w].append(trace)
    name = model if isinstance(model, str) else getattr(model, "__qualname__", repr(model))
    result = CoordCheck(name, widths, steps, optimizer, settings.lr, seeds, tolerance, base)
    for kind, by_layer in traces.items():
        result.layers[kind] = [
            _layer_check(layer, roles.get(layer, "fixed"), runs, widths, tolerance) for layer, runs in by_layer.items()
        ]
    return result


def _layer_check(
    layer: str, role: str, runs: list[list[tuple[list[float], list[float]]]], widths: Sequence[int], tolerance: float
) -> LayerCheck:
    """``runs[width][seed] = (values, changes)`` per step, as means over seeds [step][width], judged on the change
    after the last step."""

    def mean(part: int) -> list[list[float]]:
        steps = len(runs[0][0][part])
        return [[sum(r[part][t] for r in runs[w]) / len(runs[w]) for w in range(len(widths))] for t in range(steps)]

    scales, changes = mean(0), mean(1)
    slope = _slope(widths, changes[-1])
    return LayerCheck(layer, role, scales, changes, slope, abs(slope) <= tolerance)


def _batches(
    x: torch.Tensor, y: torch.Tensor, seed: int, steps: int, batch_size: int
) -> list[tuple[torch.Tensor, ...]]:
    """``steps`` training batches drawn without replacement from ``seed`` (the permutation repeats if it runs out)."""
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(derive_seed(seed, "coordcheck")))
    need = steps * batch_size
    order = order.repeat(math.ceil(need / order.numel()))[:need]
    return [(x[idx], y[idx]) for idx in order.split(batch_size)]
