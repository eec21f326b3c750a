"""``yang2022-transfer``: Yang, Hu, Babuschkin, Sidor, Liu, Farhi, Ryder, Pachocki, Chen & Gao (2022), "Tensor
Programs V: Tuning Large Neural Networks via Zero-Shot Hyperparameter Transfer", figure 1 and figure 3 (MLP): the
training loss against log2 of the learning rate for MLPs of increasing width. Under the standard parametrization (SP)
the best learning rate drifts as the network gets wider, and wide networks do worse at the rates that were best for
narrow ones; under the maximal-update parametrization (muP, :mod:`initlab.mup`) it stays put, and wider is better.

Setup. The paper trains MLPs on CIFAR-10, which initlab does not have; MNIST with an MLP is the usual CPU stand-in
(full form: the 50,000 ``train`` images of ``initlab.data.load("mnist", ...)``, standardized). Network: two ReLU
hidden layers of equal width (``mlp:W,W;act=relu``, 784 → W → W → 10), widths 64, 128, 256, 512, 1024 (the
smallest is muP's base width, where muP is SP), LeCun-normal weights (variance 1/fan_in: SP's own, and the fan-in
scheme muP starts from). Arms: ``sp`` (one rate for every parameter) and ``mup`` (initlab's muP for Adam: hidden and
output weights train at lr / m, m = width / 64, input weights and biases at lr; output weights drawn with variance
1/(fan_in·m), ``output="scaled"``, given explicitly since the package's default is "zero"). Both train with Adam at
the ten rates 2^-13 ... 2^-4, batch 128, one epoch (391 steps), seed 0; a width's runs (both arms, every rate) train
as one population. The metric, as in the paper, is the training loss at the end: the mean cross-entropy over the last
epoch's batches (here the only epoch), mean over seeds; a diverged run counts as an infinite loss. The best rate of
a width is the grid's argmin; the result also records the vertex of the parabola through it and its neighbours (the
"sub-grid" optimum, :func:`vertex`). It runs as an initlab study in ``OUT/study`` (resumable). Full run: 648 s on
the 2-core machine while another job shared it (the width-1024 population is most of it).

Design choices, from measured runs (seed 0; best rate = grid argmin):

- Adam, not SGD. With SGD on MNIST (400 steps of batch 64, widths 64/256/1024, rates 2^-8 ... 2^2) SP's best rate
  hardly moved (2^-3, 2^-2, 2^-2; at these widths the 784 inputs dominate the network's sensitivity) and muP's did
  the same. With Adam every weight moves by ~lr per coordinate, so under SP a hidden layer's output moves by
  ~lr·width and the best rate falls with width: 2^-8, 2^-9, 2^-10 in the same runs (muP: 2^-8, 2^-7, 2^-7). The
  paper's figure 1 is an Adam experiment too.
- ``output="scaled"``, not "zero" (the paper's §D.2 advice): on MNIST-1D (Adam, 4 epochs of batch 64, widths
  64/256/1024) both kept muP's best rate within one step (2^-7, 2^-6, 2^-6 for either), but zero output weights
  trained worse at every width (best losses 1.245/1.098/1.008 against 1.109/0.986/0.882), and "scaled" keeps muP
  equal to SP at the base width, so both panels of the figure share the narrowest curve.
- One epoch and one seed: what the time budget allows (a second epoch or seed doubles the 11 minutes). The claims'
  argmins are separated from their neighbours by 2-7% in loss, far more than run-to-run noise of a fixed seed.

Claims and thresholds (:data:`MUP_STEPS`, :data:`SP_DRIFT`, :data:`WIDER_TOLERANCE`), with the full form's values:

1. muP: every width's best rate within 1 grid step of the base width's. Measured 2^-8, 2^-8, 2^-8, 2^-7, 2^-7
   (sub-grid -7.94, -7.87, -7.56, -7.27, -7.36: at most 0.67 steps from the base). The one-step move sits between
   256 and 512 (at 512 and 1024, 2^-7 beats 2^-8 by 4% and 2%): a finite-width effect, largest near the base.
2. SP: the widest network's best rate at least 2 grid steps below the narrowest's. Measured 2^-8, 2^-8, 2^-9, 2^-9,
   2^-10, monotone (sub-grid -7.94, -8.31, -8.59, -9.25, -10.07: 2.12 steps). The drift is about half a step per
   doubling, slower than the paper's wider MLPs show, because the 784-wide input layer still matters at these widths.
   At 2^-8, width 64's best, SP's width-1024 loss is 0.258 against 0.198 at its own best; at 2^-5 it is 2.93.
3. muP, wider is better: each width's best loss at most 1.02 times the next narrower width's. Measured 0.2666,
   0.2367, 0.2284, 0.2150, 0.2140 (ratios 0.89, 0.96, 0.94, 0.995).

Not checked: in this short budget SP's wide networks, each at its own best rate, end lower than muP's (width 1024:
0.198 against 0.214), where the paper's longer runs favour muP.

The quick form (the test suite's, about 40-75 s here) trains on MNIST-1D (Greydanus & Kobak 2024: 3,600 signals of
length 40, so the input layer is small next to the hidden ones and SP's drift shows between narrow widths already):
widths 64, 256, 1024, the five rates 2^-10 ... 2^-6, two epochs of batch 32, seed 0, and checks the same three
claims. Measured: SP 2^-7, 2^-8, 2^-9 (drift 2); muP 2^-7, 2^-7, 2^-7; muP best losses 1.489, 1.355, 1.331.
"""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from initlab.reproduce._base import Result, pyplot, register, save_figure
from initlab.store import Store
from initlab.studies import Arm, Study, run_study
from initlab.training import TrainSettings


@dataclass(frozen=True)
class Form:
    """One form of the experiment: data, widths, the learning-rate grid (as powers of 2) and the training budget."""

    dataset: str
    widths: tuple[int, ...]
    log2_lrs: tuple[int, ...]
    batch_size: int
    epochs: int
    seeds: tuple[int, ...]

    @property
    def lrs(self) -> tuple[float, ...]:
        return tuple(2.0**k for k in self.log2_lrs)


FULL = Form("mnist", (64, 128, 256, 512, 1024), tuple(range(-13, -3)), 128, 1, (0,))
QUICK = Form("mnist1d", (64, 256, 1024), tuple(range(-10, -5)), 32, 2, (0,))
DEPTH = 2
SCHEME = "lecun_normal"
#: muP with the output layer drawn and scaled (variance / m_in), not zeroed: see the module docstring.
ARMS = (Arm("sp", SCHEME), Arm("mup", SCHEME, parametrization={"name": "mup", "output": "scaled"}))
#: Claim 1: muP's best rate at every width within this many grid steps of the base width's.
MUP_STEPS = 1
#: Claim 2: SP's best rate at the widest width at least this many grid steps below the narrowest's.
SP_DRIFT = 2
#: Claim 3: muP's best loss may exceed the next narrower width's by at most this fraction.
WIDER_TOLERANCE = 0.02
SOURCE = (
    "Yang, Hu, Babuschkin, Sidor, Liu, Farhi, Ryder, Pachocki, Chen & Gao (2022), 'Tensor Programs V: Tuning Large "
    "Neural Networks via Zero-Shot Hyperparameter Transfer', figures 1 and 3 (MLP; CIFAR-10 there, MNIST here)"
)

#: Per arm, per width: the final training loss (mean over seeds) at each rate of the grid, inf where a run diverged.
Curves = dict[str, dict[int, list[float]]]


def study(form: Form, quick: bool) -> Study:
    """The study of ``form``: both arms at every (width, rate) of the grid."""
    base = form.widths[0]
    return Study(
        name="yang2022-transfer" + ("-quick" if quick else ""),
        dataset=form.dataset,
        model=f"mlp:{','.join([str(base)] * DEPTH)};act=relu",
        arms=ARMS,
        seeds=form.seeds,
        train=TrainSettings(optimizer="adam", lr=form.lrs[0], batch_size=form.batch_size, epochs=form.epochs),
        diagnose_epochs=(),
        sweep={"width": list(form.widths), "lr": list(form.lrs)},
    )


@register("yang2022-transfer", "muP vs SP: learning-rate transfer across MLP widths (MNIST, Adam)", SOURCE,
          "about 11 minutes (5 widths x 10 rates x 2 arms, one MNIST epoch); the quick form about 40-75 s",
          heading="Zero-shot learning-rate transfer across width: SP vs muP (Yang et al. 2022)")  # fmt: skip
def run(result: Result, out: Path) -> Result:
    form = QUICK if result.quick else FULL
    spec = study(form, result.quick)
    folder = run_study(spec, out / "study")
    curves = final_losses(spec, folder)
    best = {arm: [best_index(curves[arm][w]) for w in form.widths] for arm in curves}
    _check(result, form, curves, best)
    result.details = {**_details(form, curves, best), "study": str(folder)}
    result.figures = [_figure(out, form, curves, best)]
    return result


def _details(form: Form, curves: Curves, best: dict[str, list[int]]) -> dict[str, Any]:
    """What the result records: the best rate of every arm and width (on the grid and interpolated) and the losses."""
    return {
        "dataset": form.dataset,
        "widths": list(form.widths),
        "log2_lrs": list(form.log2_lrs),
        "best_log2_lr": {
            arm: {w: form.log2_lrs[i] for w, i in zip(form.widths, idx, strict=True)} for arm, idx in best.items()
        },
        "best_log2_lr_interpolated": {
            arm: {w: round(vertex(form.log2_lrs, by_width[w]), 3) for w in form.widths}
            for arm, by_width in curves.items()
        },
        "best_loss": {arm: {w: min(by_width[w]) for w in form.widths} for arm, by_width in curves.items()},
        "final_train_loss": curves,
        "seeds": list(form.seeds),
        "epochs": form.epochs,
    }


def final_losses(spec: Study, folder: Path) -> Curves:
    """Per arm and width, the last epoch's training loss at each rate (mean over seeds; inf when any seed's run
    diverged or did not finish)."""
    with Store.in_dir(folder, readonly=True) as store:
        status = {r.run_id: r.status for r in store.runs()}
        last = {e.run_id: e.train_loss for e in store.epochs()}  # epochs come in order: the last one wins
    points = spec.points()
    values: dict[tuple[str, int, float], list[float]] = {}
    for r in spec.runs():
        point = dict(points[r.point_index])
        loss = last.get(r.run_id, math.inf) if status.get(r.run_id) == "finished" else math.inf
        values.setdefault((spec.arms[r.arm_index].label, point["width"], point["lr"]), []).append(loss)
    lrs, widths = spec.sweep["lr"], spec.sweep["width"]
    return {arm.label: {w: [_mean(values[(arm.label, w, lr)]) for lr in lrs] for w in widths} for arm in spec.arms}


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if all(math.isfinite(v) for v in values) else math.inf


def best_index(losses: list[float]) -> int:
    """The grid index of the lowest loss (the first on a tie)."""
    return min(range(len(losses)), key=lambda i: losses[i])


def vertex(log2_lrs: tuple[int, ...], losses: list[float]) -> float:
    """The best rate between grid points, as log2: the vertex of the parabola through the best point and its two
    neighbours (the grid's best when it lies on the grid's edge or a neighbour diverged)."""
    i = best_index(losses)
    if i in (0, len(losses) - 1) or not all(math.isfinite(v) for v in losses[i - 1 : i + 2]):
        return float(log2_lrs[i])
    left, mid, right = losses[i - 1 : i + 2]
    curvature = left - 2 * mid + right
    offset = 0.5 * (left - right) / curvature if curvature > 0 else 0.0
    return log2_lrs[i] + offset * (log2_lrs[i + 1] - log2_lrs[i])


def _check(result: Result, form: Form, curves: Curves, best: dict[str, list[int]]) -> None:
    """The three claims (see the module docstring); the measured text adds the sub-grid optimum (:func:`vertex`)."""
    text = {arm: ", ".join(f"{w}: 2^{form.log2_lrs[i]}" for w, i in zip(form.widths, idx, strict=True))
            for arm, idx in best.items()}  # fmt: skip
    sub = {arm: [vertex(form.log2_lrs, curves[arm][w]) for w in form.widths] for arm in curves}
    moves = [abs(i - best["mup"][0]) for i in best["mup"]]
    sub_move = max(abs(v - sub["mup"][0]) for v in sub["mup"])
    result.check("muP: the best learning rate stays put across widths",
                 f"every width within {MUP_STEPS} grid step of the base width's", f"{text['mup']} (moves at most "
                 f"{max(moves)} step(s); sub-grid {sub_move:.2f})", max(moves) <= MUP_STEPS)  # fmt: skip
    drift = best["sp"][0] - best["sp"][-1]
    result.check("SP: the best learning rate drifts down as the width grows",
                 f"widest at least {SP_DRIFT} grid steps below the narrowest", f"{text['sp']} (drift {drift} "
                 f"step(s); sub-grid {sub['sp'][0] - sub['sp'][-1]:.2f})", drift >= SP_DRIFT)  # fmt: skip
    losses = [min(curves["mup"][w]) for w in form.widths]
    ratios = [b / a for a, b in itertools.pairwise(losses)]
    result.check("muP: wider is better (best training loss never worse with width)",
                 f"each width's best loss <= {1 + WIDER_TOLERANCE:g} x the narrower one's",
                 ", ".join(f"{w}: {v:.4f}" for w, v in zip(form.widths, losses, strict=True)),
                 all(r <= 1 + WIDER_TOLERANCE for r in ratios))  # fmt: skip


def _figure(out: Path, form: Form, curves: Curves, best: dict[str, list[int]]) -> Path:
    """Training loss against log2(lr), one line per width, SP and muP side by side; the best rate of each width
    marked with a star, the base width's as a dashed line (where SP and muP coincide); diverged runs left out."""
    plt = pyplot()
    finite = [v for arm in curves.values() for losses in arm.values() for v in losses if math.isfinite(v)] or [1.0]
    low, high = min(finite), min(max(finite), 4 * min(finite))  # the paper also clips the large losses
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True, layout="constrained")
    colors = plt.get_cmap("viridis")([i / max(1, len(form.widths) - 1) * 0.9 for i in range(len(form.widths))])
    for ax, (arm, title) in zip(axes, (("sp", "Standard parametrization (SP)"), ("mup", "muP")), strict=True):
        for w, color, i in zip(form.widths, colors, best[arm], strict=True):
            xs = [k for k, v in zip(form.log2_lrs, curves[arm][w], strict=True) if math.isfinite(v)]
            ys = [v for v in curves[arm][w] if math.isfinite(v)]
            ax.plot(xs, ys, "o-", color=color, markersize=3, label=f"width {w}")
            ax.plot(form.log2_lrs[i], curves[arm][w][i], "*", color=color, markersize=14, markeredgecolor="k")
        ax.axvline(form.log2_lrs[best["mup"][0]], color="0.5", linestyle="--", linewidth=1)
        ax.set(title=title, xlabel="log2 learning rate (Adam)", yscale="log", ylim=(low * 0.95, high * 1.05))
        ax.yaxis.set_major_formatter("{x:.2g}")
        ax.yaxis.set_minor_formatter("{x:.2g}")
        ax.grid(alpha=0.3)
    seeds = f"mean of {len(form.seeds)} seeds" if len(form.seeds) > 1 else f"seed {form.seeds[0]}"
    axes[0].set_ylabel(f"training loss, last epoch ({seeds}; log scale)")
    axes[1].legend(title="★ best rate", fontsize=8)
    fig.suptitle(f"2-hidden-layer ReLU MLP on {form.dataset}, {form.epochs} epoch(s): the best learning rate "
                 "drifts under SP and transfers under muP")  # fmt: skip
    return save_figure(fig, out / "yang2022_transfer.png")
