"""``xiao2018``: Xiao, Bahri, Sohl-Dickstein, Schoenholz and Pennington (2018), "Dynamical Isometry and a Mean Field
Theory of CNNs: How to Train 10,000-Layer Vanilla Convolutional Neural Networks" (ICML), figures 1 and 5: a very
deep plain convolutional tanh network (no residual connections, no normalization) at the critical point of
mean-field theory trains when its kernels are delta-orthogonal (zero except an orthogonal centre tap), and does not
train when they are Gaussian of the same variance: both propagate the signal's mean squared norm alike, but only the
delta-orthogonal network's input-output Jacobian is well conditioned (dynamical isometry); a Gaussian kernel also
spreads the signal over positions, so that the spatial structure decays with depth.

Setup: MNIST-1D (Greydanus & Kobak 2024; ``initlab.data.load("mnist1d", ...)``: the study engine trains on its 3,600
``train`` signals, validates on the 400 ``val`` signals and tests on the package's 1,000 test signals), standardized
inputs read as one-channel signals of length 40. Network: ``cnn1d:8,...,8;act=tanh;pool=none`` with :data:`DEPTH` =
400 convolutions of :data:`CHANNELS` = 8 channels, kernel 3, stride 1, zero "same" padding and no pooling (so every
layer keeps the length 40), tanh after each, then a linear 10-way head on the flattened 8 × 40 features. (The paper
trains to depth 10,000 with circular padding and a global-average-pooling head on a GPU; initlab's ``cnn1d`` has
zero padding only, and two CPU cores allow 400 layers.) Every weight has variance σ_w²/fan_in and every bias
N(0, σ_b²), with σ_b² = :data:`BIAS_VAR` = 1e-5 and σ_w² = σ_w²*(tanh, σ_b²) = 1.0395, the critical point (χ₁ = 1)
of :func:`initlab.theory.critical_weight_var`. The paper's figures use small bias variances on the critical line;
1e-5 gives q* = 0.020, where tanh is nearly linear and the delta-orthogonal Jacobian nearly orthogonal. Arms:

- Gaussian: every weight N(0, σ_w²/fan_in) (``VarianceScaling(σ_w², "fan_in", "untruncated_normal")``), fan_in =
  8 × 3 = 24 for a hidden convolution;
- delta-orthogonal: initlab's ``delta_orthogonal`` with gain σ_w (centre tap σ_w·Q, QᵀQ = I, other taps 0; the head
  orthogonal with the same gain, so that its entries too have variance σ_w²/fan_in).

Training: SGD as in the paper, momentum 0.9, learning rate :data:`LR` = 0.002 annealed per epoch by a cosine
(``schedule="cosine"``), batch :data:`BATCH` = 128, cross-entropy, :data:`FULL_EPOCHS` = 10 epochs, seeds
:data:`FULL_SEEDS` = 0, 1, 2. Quick form: the same at :data:`QUICK_DEPTH` = 200 layers for :data:`QUICK_EPOCHS` = 4
epochs (the cosine over those 4), seed 0. It runs as an initlab study in ``OUT/study`` (every epoch stored,
resumable).

How the settings were found (training losses are epoch means; "direct" runs are one model trained in a plain loop
on the same data, seed 0, a quicker probe than the study engine):

- depth 100, 16 channels, σ_b² = 1e-3 (q* = 0.107), SGD momentum 0.9, seed 0: at lr 0.1 delta-orthogonal's loss
  explodes in the first epoch, at 0.03 it rises again in the third, at 0.01 it falls for three epochs (2.25, 2.12,
  2.09) and rises in the fourth (2.28); at lr 0.003 or 0.001 (momentum 0.9) and at 0.01 without momentum it learns
  slowly and unstably, its validation accuracy peaking at 25-27%, while the Gaussian network starts to learn after
  5-8 epochs. σ_b² = 0.05: neither learns in 7 epochs;
- depth 200, 16 channels, σ_b² = 1e-3: at lr 0.01 (constant, study, seed 0) delta-orthogonal reaches 2.216 in
  epoch 2 and is back at 2.32 (chance) by epoch 4; direct, lr 0.005 with the cosine over 12 epochs, it falls
  steadily to 1.91 (validation 25%), but the Gaussian network leaves ln 10 in epoch 3 (2.20 by epoch 11);
- depth 400, 16 channels, σ_b² = 1e-3 (direct): the Gaussian network stays at ln 10, but delta-orthogonal's
  last-layer features lose their dependence on the input within the first few SGD steps (at lr 0.004 and 0.002)
  and it stays at ln 10 too: at q* = 0.107 tanh is nonlinear enough that at this depth the input-independent part
  dominates the features already at initialization. A smaller σ_b² (1e-5, q* = 0.020) keeps it learning;
- kernel 7 instead of 3 at depth 150 (the signal spreads over positions about six times faster; direct, σ_b² = 1e-5,
  lr 0.004): the Gaussian network trains at once (1.98 in epoch 3). Spreading over positions alone does not stop
  training when the head reads every position; the depth does;
- σ_b² = 1e-5, 16 channels: depth 200 (direct, lr 0.003): the Gaussian network leaves ln 10 in epoch 3 (2.205 at
  epoch 5); depth 400 (study, lr 0.002, stopped after 2 epochs at about 5 minutes an epoch on shared cores):
  delta-orthogonal 2.235 and 2.238, Gaussian 2.304 and 2.289;
- σ_b² = 1e-5, fewer channels (the Gaussian product of random matrices degrades with depth/width): 4 channels at
  depth 150: the Gaussian signal vanishes (mean square 1e-4 at the last layer), delta-orthogonal learns slowly
  (2.275 after 5 epochs); 8 channels at depth 200, lr 0.003, 10 epochs, seeds 0-1 (study, 123 s): delta-orthogonal
  20.4% and 16.1% test (final loss 2.033, 2.057), but Gaussian seed 0 starts to learn in epoch 4 (2.269, 13.8%);
- chosen: 8 channels at depth 400, lr 0.002, 10 epochs, seeds 0-2 (below).

Delta-orthogonal "trains" here as a near-linear network does, and slowly (the MNIST-1D paper reports 32% for
logistic regression; it reaches about 18% in 10 epochs); the claim is that it learns at all while the Gaussian
network of the same variance does not move from a uniform guess.

Claims (full form; chance is 10% on the ten balanced classes, ln 10 = 2.3026 the loss of a uniform guess):

1. delta-orthogonal trains: mean final test accuracy at least :data:`TRAINS` = 14%;
2. ... and every seed's last training loss at least :data:`LOSS_DROP` = 0.1 below ln 10;
3. Gaussian of the same variance does not: every seed's training loss within :data:`STALLED` = 0.02 of ln 10 in
   every epoch;
4. ... and every seed's final test accuracy within :data:`NEAR_CHANCE` = 3 points of chance.

Measured (full form, 2 cores, about 6 minutes: 346 s and 357 s in two runs, with the same values to the last
digit; seeds 0, 1, 2): delta-orthogonal test 17.9%, 18.6%, 17.1% (mean 17.87%), last training loss 2.152, 2.101,
2.155 (0.148-0.202 below ln 10), validation accuracy 15.5-18.3% at epoch 10; Gaussian test 10.4%, 10.2%, 8.9%,
training loss at most 0.0063 from ln 10 in any epoch (2.3025-2.3026 at epoch 10). The epochs took about 35 s each
for the six models together; on cores shared with other jobs an epoch took up to ten times longer.

The quick form checks the training loss of its last epoch instead: Gaussian's within :data:`QUICK_STALLED` = 0.01
of ln 10, delta-orthogonal's at least :data:`QUICK_LOSS_DROP` = 0.02 below it (measured: 2.3014 and 2.2618, i.e.
0.0012 from and 0.041 below ln 10; test 10.2% and 15.9%; 38 s).
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from initlab.reproduce._base import Result, pyplot, register, save_figure, val_accuracy_curves
from initlab.store import EpochRecord, Store
from initlab.studies import Arm, Study, run_study
from initlab.theory import critical_weight_var
from initlab.training import TrainSettings

ACTIVATION = "tanh"
#: σ_b²: small, as in the paper's experiments on the critical line; σ_w² follows from it (critical_weight_var).
BIAS_VAR = 1e-5
DEPTH = 400
CHANNELS = 8
LR = 0.002
BATCH = 128
FULL_EPOCHS = 10
FULL_SEEDS = (0, 1, 2)
#: The quick form: half the depth (the Gaussian network still stalls there for a few epochs), seed 0.
QUICK_DEPTH = 200
QUICK_EPOCHS = 4
CHANCE = 10.0  # percent: ten classes
CHANCE_LOSS = math.log(10)  # cross-entropy of a uniform guess over ten classes
#: Claim 1: delta-orthogonal's mean final test accuracy is at least this (percent) ...
TRAINS = 14.0
#: Claim 2: ... and every seed's last training loss at least this far below ln 10.
LOSS_DROP = 0.1
#: Claim 3: Gaussian's training loss within this of ln 10 in every epoch of every seed ...
STALLED = 0.02
#: Claim 4: ... and every seed's final test accuracy within this many points of chance.
NEAR_CHANCE = 3.0
#: Quick form: after its last epoch, delta-orthogonal's training loss at least this far below ln 10 ...
QUICK_LOSS_DROP = 0.02
#: ... and Gaussian's within this of ln 10.
QUICK_STALLED = 0.01
SOURCE = (
    "Xiao, Bahri, Sohl-Dickstein, Schoenholz & Pennington (2018), 'Dynamical Isometry and a Mean Field Theory of "
    "CNNs: How to Train 10,000-Layer Vanilla Convolutional Neural Networks', ICML, figures 1 and 5 (at the critical "
    "point, delta-orthogonal kernels train very deep plain tanh CNNs; Gaussian kernels of the same variance do not)"
)


def weight_var() -> float:
    """σ_w²: the critical weight variance of tanh at σ_b² = :data:`BIAS_VAR` (1.0395 at 1e-5)."""
    return critical_weight_var(ACTIVATION, BIAS_VAR)


def model(depth: int = DEPTH) -> str:
    """The plain CNN's spec: ``depth`` tanh convolutions of :data:`CHANNELS` channels, same padding, no pooling."""
    return f"cnn1d:{','.join([str(CHANNELS)] * depth)};act={ACTIVATION};pool=none"


def _with_biases(base: dict[str, Any]) -> dict[str, Any]:
    """A rule-based scheme: biases N(0, σ_b²), everything else ``base``."""
    bias = {"class_name": "RandomNormal", "config": {"mean": 0.0, "stddev": math.sqrt(BIAS_VAR)}}
    return {"rules": [{"init": bias, "role": "bias", "label": f"biases N(0, {BIAS_VAR:g})"}], "base": base}


def schemes() -> dict[str, dict[str, Any]]:
    """The two arms' schemes, by label: the same weight variance σ_w²/fan_in and biases N(0, σ_b²)."""
    variance, gain = weight_var(), math.sqrt(weight_var())
    gaussian = {"class_name": "VarianceScaling",
                "config": {"scale": variance, "mode": "fan_in", "distribution": "untruncated_normal"}}  # fmt: skip
    orthogonal = {"class_name": "Orthogonal", "config": {"gain": gain}}
    return {
        "gaussian": _with_biases(gaussian),
        "delta-orthogonal": {"class_name": "DeltaOrthogonal",
                             "config": {"gain": gain, "base": _with_biases(orthogonal)}},
    }  # fmt: skip


def study(quick: bool) -> Study:
    return Study(
        name="xiao2018" + ("-quick" if quick else ""),
        dataset="mnist1d",
        model=model(QUICK_DEPTH if quick else DEPTH),
        arms=tuple(Arm(label, scheme) for label, scheme in schemes().items()),
        seeds=(0,) if quick else FULL_SEEDS,
        train=TrainSettings(optimizer="sgd", lr=LR, momentum=0.9, batch_size=BATCH, schedule="cosine",
                            epochs=QUICK_EPOCHS if quick else FULL_EPOCHS),
        diagnose_epochs=(),
    )  # fmt: skip


def train_losses(epochs: list[EpochRecord]) -> dict[str, list[list[float]]]:
    """Each arm's training loss per seed (run ids ``ARM/sSEED``, in order), epoch by epoch."""
    runs: dict[str, dict[int, float]] = {}
    for e in epochs:
        runs.setdefault(e.run_id, {})[e.epoch] = e.train_loss
    out: dict[str, list[list[float]]] = {}
    for run_id in sorted(runs):
        out.setdefault(run_id.rsplit("/", 1)[0], []).append([runs[run_id][k] for k in sorted(runs[run_id])])
    return out


def stalled_by(losses: list[list[float]]) -> float:
    """How far the training loss got from ln 10 (either way) in any epoch of any seed; ∞ for no epochs, or for a
    loss that is not finite (a diverged run is no stalled run)."""
    gaps = [abs(loss - CHANCE_LOSS) for seed in losses for loss in seed]
    return max(gaps) if gaps and all(math.isfinite(g) for g in gaps) else math.inf


def final_test_accuracy(store: Store) -> dict[str, list[float]]:
    """Each arm's final test accuracy in percent per seed (in run-id order); a run that did not finish counts as
    chance."""
    out: dict[str, list[float]] = {}
    for run in sorted(store.runs(), key=lambda r: r.run_id):
        done = run.status == "finished" and run.test_metrics
        out.setdefault(run.arm, []).append(100 * run.test_metrics["test_acc"] if done else CHANCE)
    return out


def _shown(values: list[float], unit: str = "%") -> str:
    return ", ".join(f"{v:.2f}{unit}" if unit == "%" else f"{v:.4f}" for v in values)


@register("xiao2018", "Delta-orthogonal vs Gaussian kernels in a 400-layer plain tanh CNN at criticality (MNIST-1D)",
          SOURCE, "about 6 min (2 arms x 3 seeds x 10 epochs); the quick form about 40 s",
          heading="Dynamical isometry in CNNs: delta-orthogonal vs Gaussian kernels (Xiao et al. 2018)")  # fmt: skip
def run(result: Result, out: Path) -> Result:
    spec = study(result.quick)
    depth = QUICK_DEPTH if result.quick else DEPTH
    folder = run_study(spec, out / "study")
    with Store.in_dir(folder, readonly=True) as store:
        acc = final_test_accuracy(store)
        epochs = store.epochs()
    losses = train_losses(epochs)
    last = {arm: [seed[-1] for seed in per_seed] for arm, per_seed in losses.items()}
    if result.quick:
        _check_quick(result, last)
    else:
        delta, gauss = acc["delta-orthogonal"], acc["gaussian"]
        result.check("Delta-orthogonal kernels at the critical point train: test accuracy",
                     f">= {TRAINS:g}% (mean)", f"{statistics.fmean(delta):.2f}% ({_shown(delta)})",
                     statistics.fmean(delta) >= TRAINS)  # fmt: skip
        result.check("Delta-orthogonal kernels train: the training loss falls below ln 10",
                     f"every seed <= {CHANCE_LOSS - LOSS_DROP:.4f}", _shown(last["delta-orthogonal"], ""),
                     all(loss <= CHANCE_LOSS - LOSS_DROP for loss in last["delta-orthogonal"]))  # fmt: skip
        gap = stalled_by(losses["gaussian"])
        result.check("Gaussian kernels of the same variance do not train: the training loss stays at ln 10",
                     f"every epoch within {STALLED:g} of {CHANCE_LOSS:.4f}", f"at most {gap:.4f} away",
                     gap <= STALLED)  # fmt: skip
        result.check("Gaussian kernels do not train: test accuracy at chance",
                     f"every seed within {NEAR_CHANCE:g} points of {CHANCE:g}%", _shown(gauss),
                     all(abs(a - CHANCE) <= NEAR_CHANCE for a in gauss))  # fmt: skip
    result.details = {"test_accuracy_percent": acc, "train_loss": losses, "final_train_loss": last,
                      "weight_var": weight_var(), "bias_var": BIAS_VAR, "depth": depth, "seeds": list(spec.seeds),
                      "epochs": spec.train.epochs, "study": str(folder)}  # fmt: skip
    result.figures = [_figure(out, epochs, acc, len(spec.seeds), depth)]
    return result


def _check_quick(result: Result, last: dict[str, list[float]]) -> None:
    """The quick form's claims, on the training loss of its last epoch against ln 10."""
    gauss, delta = last["gaussian"][0], last["delta-orthogonal"][0]
    result.check("Gaussian kernels do not train: the training loss stays at ln 10",
                 f"within {QUICK_STALLED:g} of {CHANCE_LOSS:.4f}", f"{gauss:.4f}",
                 abs(gauss - CHANCE_LOSS) <= QUICK_STALLED)  # fmt: skip
    result.check("Delta-orthogonal kernels train: the training loss falls below ln 10",
                 f"<= {CHANCE_LOSS - QUICK_LOSS_DROP:.4f}", f"{delta:.4f}",
                 delta <= CHANCE_LOSS - QUICK_LOSS_DROP)  # fmt: skip


def _figure(out: Path, epochs: list[EpochRecord], acc: dict[str, list[float]], seeds: int, depth: int) -> Path:
    """Training loss and validation accuracy against epoch per arm, mean over seeds with the range as a band."""
    plt = pyplot()
    losses: dict[str, dict[int, list[float]]] = {}
    for e in epochs:
        losses.setdefault(e.run_id.rsplit("/", 1)[0], {}).setdefault(e.epoch, []).append(e.train_loss)
    panels = (("training loss", losses, CHANCE_LOSS, "ln 10 (a uniform guess)"),
              ("validation accuracy (%)", val_accuracy_curves(epochs), CHANCE, "chance (10%)"))  # fmt: skip
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
    for ax, (ylabel, curves, level, level_label) in zip(axes, panels, strict=True):
        for (arm, by_epoch), style in zip(sorted(curves.items()), ("s-", "o:"), strict=False):
            xs = sorted(by_epoch)
            mean_acc = statistics.fmean(acc.get(arm, [math.nan]))
            line = ax.plot(xs, [statistics.fmean(by_epoch[x]) for x in xs], style,
                           label=f"{arm} ({mean_acc:.1f}% test)")  # fmt: skip
            ax.fill_between(xs, [min(by_epoch[x]) for x in xs], [max(by_epoch[x]) for x in xs], alpha=0.2,
                            color=line[0].get_color())  # fmt: skip
        ax.axhline(level, color="0.5", linewidth=1, label=level_label)
        ax.set(xlabel="epoch", ylabel=ylabel)
        ax.legend()
    fig.suptitle(f"{depth}-layer plain tanh CNN (σ_w² = {weight_var():.4f}, σ_b² = {BIAS_VAR:g}) on MNIST-1D, SGD "
                 f"lr {LR:g} cosine: mean and range of {seeds} seed(s), CPU")  # fmt: skip
    return save_figure(fig, out / "xiao2018.png")
