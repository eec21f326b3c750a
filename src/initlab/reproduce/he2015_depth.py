"""``he2015-depth``: He, Zhang, Ren and Sun (2015), "Delving deep into rectifiers: surpassing human-level performance
on ImageNet classification" (ICCV), section 2.2 and figure 3: a very deep plain ReLU network initialized with the
Xavier scale std √(1/n) does not learn ("completely stalls"), while the same network with He's std √(2/n) converges;
LSUV (Mishkin & Matas 2016, "All you need is a good init") trains it too.

Setup: MNIST-1D (Greydanus & Kobak 2024; ``initlab.data.load("mnist1d", ...)``: the study engine trains on its 3,600
``train`` signals, validates on the 400 ``val`` signals and tests on the package's 1,000 test signals), standardized
inputs. Network: a plain MLP of :data:`DEPTH` = 50 ReLU hidden layers of :data:`WIDTH` = 128 units and a linear
10-way output (51 weight layers; the paper's deepest plain net has 30 convolutional layers), zero biases. Arms:

- Xavier: ``VarianceScaling(1.0, "fan_in", "untruncated_normal")``, std √(1/n): each ReLU layer halves the signal's
  second moment, so at the output it is 2^-50 ≈ 1e-15 of the input's and the gradients vanish as much;
- He: ``KaimingNormal(nonlinearity="relu")``, std √(2/n);
- LSUV: initlab's ``"lsuv"`` (orthogonal, then each layer rescaled to unit output variance on a training batch).

Training (chosen by a short search, lr ∈ {0.003, 0.01} at batch 64: 0.003 trains He and LSUV more steadily): SGD
with momentum 0.9, learning rate :data:`LR`, batch 64, cross-entropy, :data:`FULL_EPOCHS` epochs and seeds
:data:`FULL_SEEDS` (quick form: :data:`QUICK_EPOCHS` epochs, seed 0). SGD rather than Adam on purpose: Adam's
per-parameter normalization rescales even a 1e-15 gradient to a unit step and would hide the stall. It runs as an
initlab study in ``OUT/study`` (every epoch stored, resumable).

Claims (mean final test accuracy over seeds; chance is 10% on the ten balanced classes): Xavier within
:data:`NEAR_CHANCE` points of chance; He and LSUV at least :data:`FAR_ABOVE` points above chance. The quick form
(3 epochs) checks the training loss instead: after so few epochs He's test accuracy still swings by several points
from epoch to epoch and from one CPU's summation order to another's (17% to 22% seen), while the loss separates the
arms clearly: Xavier's stays at ln 10, the loss of a uniform guess, and He's and LSUV's fall at least
:data:`QUICK_LOSS_DROP` below it.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from initlab.reproduce._base import Result, pyplot, register, save_figure, val_accuracy_curves
from initlab.store import Store
from initlab.studies import Arm, Study, run_study, summarize
from initlab.training import TrainSettings

DEPTH = 50
WIDTH = 128
LR = 0.003
FULL_EPOCHS = 20
FULL_SEEDS = (0, 1, 2)
QUICK_EPOCHS = 3
CHANCE = 10.0  # percent: ten classes
CHANCE_LOSS = math.log(10)  # cross-entropy of a uniform guess over ten classes
#: "Stalls at chance": final test accuracy within this many points of 10%.
NEAR_CHANCE = 5.0
#: "Trains": final test accuracy at least this many points above chance (full form: 20 epochs) ...
FAR_ABOVE = 20.0
#: Quick form: after QUICK_EPOCHS epochs, the mean training loss of He and LSUV is at least this far below ln 10
#: (seen: 0.24 and 0.50 nats), and Xavier's within QUICK_STALLED of it (seen: 0.0001).
QUICK_LOSS_DROP = 0.1
QUICK_STALLED = 0.02
ARMS = (
    Arm("xavier", {"class_name": "VarianceScaling",
                   "config": {"scale": 1.0, "mode": "fan_in", "distribution": "untruncated_normal"}}),
    Arm("he", {"class_name": "KaimingNormal", "config": {"nonlinearity": "relu"}}),
    Arm("lsuv", "lsuv"),
)  # fmt: skip
SOURCE = (
    "He, Zhang, Ren & Sun (2015), 'Delving deep into rectifiers', ICCV, section 2.2 and figure 3 (a 30-layer plain "
    "net stalls with Xavier init, converges with He init); LSUV: Mishkin & Matas (2016)"
)


def study(quick: bool) -> Study:
    return Study(
        name="he2015-depth" + ("-quick" if quick else ""),
        dataset="mnist1d",
        model=f"mlp:{','.join([str(WIDTH)] * DEPTH)};act=relu",
        arms=ARMS,
        seeds=(0,) if quick else FULL_SEEDS,
        train=TrainSettings(optimizer="sgd", lr=LR, momentum=0.9, batch_size=64,
                            epochs=QUICK_EPOCHS if quick else FULL_EPOCHS),
    )  # fmt: skip


@register("he2015-depth", "Xavier vs He vs LSUV on a 50-layer plain ReLU network (MNIST-1D)", SOURCE,
          "about 1 minute (3 arms x 3 seeds x 20 epochs); the quick form about 15-30 s",
          heading="Depth and initialization: a 50-layer ReLU network (He et al. 2015)")  # fmt: skip
def run(result: Result, out: Path) -> Result:
    spec = study(result.quick)
    folder = run_study(spec, out / "study")
    with Store.in_dir(folder, readonly=True) as store:
        rows = {r.arm: r for r in summarize(store)}
        epochs = store.epochs()
    acc = {arm: r.test_acc.mean * 100 for arm, r in rows.items()}
    if result.quick:
        _check_losses(result, epochs, spec.train.epochs)
    else:
        result.check("Xavier (std √(1/n)) stalls at chance", f"within {NEAR_CHANCE:g} points of {CHANCE:g}%",
                     f"{acc['xavier']:.2f}%", abs(acc["xavier"] - CHANCE) <= NEAR_CHANCE)  # fmt: skip
        for arm, name in (("he", "He (std √(2/n))"), ("lsuv", "LSUV")):
            result.check(f"{name} trains", f">= {CHANCE + FAR_ABOVE:g}%", f"{acc[arm]:.2f}%",
                         acc[arm] >= CHANCE + FAR_ABOVE)  # fmt: skip
    result.details = {"test_accuracy_percent": acc, "seeds": list(spec.seeds), "epochs": spec.train.epochs,
                      "study": str(folder)}  # fmt: skip
    result.figures = [_figure(out, epochs, acc, len(spec.seeds))]
    return result


def _check_losses(result: Result, epochs: list, last: int) -> None:
    """The quick form's claims: the last epoch's training loss (mean over seeds) against ln 10."""
    final: dict[str, list[float]] = {}
    for e in epochs:
        if e.epoch == last:
            final.setdefault(e.run_id.rsplit("/", 1)[0], []).append(e.train_loss)
    loss = {arm: statistics.fmean(values) for arm, values in final.items()}
    stalled = abs(loss["xavier"] - CHANCE_LOSS) <= QUICK_STALLED
    result.check("Xavier (std √(1/n)) stalls: its training loss stays at ln 10",
                 f"within {QUICK_STALLED:g} of {CHANCE_LOSS:.4f}", f"{loss['xavier']:.4f}", stalled)  # fmt: skip
    for arm, name in (("he", "He (std √(2/n))"), ("lsuv", "LSUV")):
        result.check(f"{name} trains: its training loss falls below ln 10", f"<= {CHANCE_LOSS - QUICK_LOSS_DROP:.4f}",
                     f"{loss[arm]:.4f}", loss[arm] <= CHANCE_LOSS - QUICK_LOSS_DROP)  # fmt: skip


def _figure(out: Path, epochs: list, acc: dict[str, float], seeds: int) -> Path:
    """Validation accuracy against epoch per arm, mean over seeds with the range as a band."""
    plt = pyplot()
    curves = val_accuracy_curves(epochs)
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    for (arm, by_epoch), style in zip(curves.items(), ("o:", "s-", "^--"), strict=False):
        xs = sorted(by_epoch)
        line = ax.plot(xs, [statistics.fmean(by_epoch[x]) for x in xs], style,
                       label=f"{arm} ({acc.get(arm, float('nan')):.1f}% test)")  # fmt: skip
        ax.fill_between(xs, [min(by_epoch[x]) for x in xs], [max(by_epoch[x]) for x in xs], alpha=0.2,
                        color=line[0].get_color())  # fmt: skip
    ax.axhline(CHANCE, color="0.5", linewidth=1, label="chance (10%)")
    ax.set(title=f"{DEPTH}-layer plain ReLU MLP on MNIST-1D: validation accuracy (mean and range of {seeds} "
                 "seed(s), CPU)", xlabel="epoch", ylabel="validation accuracy (%)")  # fmt: skip
    ax.legend()
    return save_figure(fig, out / "he2015_depth.png")
