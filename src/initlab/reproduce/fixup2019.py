"""``fixup2019``: Zhang, Dauphin and Ma (2019), "Fixup Initialization: Residual Learning Without Normalization"
(ICLR), section 2 and tables 1-2: a deep residual network without normalization, initialized the standard way
(He et al. 2015), explodes at initialization and fails to train, because every block adds its branch's variance to
the residual stream; Fixup (the last layer of every branch and the classifier set to zero, the other branch layers
scaled by L^(-1/(2m-2))) trains the same network, without normalization, about as well as the network with batch
normalization.

Setup: MNIST-1D (Greydanus & Kobak 2024; ``initlab.data.load("mnist1d", ...)``: the study engine trains on its 3,600
``train`` signals, validates on the 400 ``val`` signals and tests on the package's 1,000 test signals), standardized
inputs. Network: ``resmlp:64x32`` (initlab's residual MLP, ``docs/residual.md``): an input layer, :data:`BLOCKS` = 32
residual blocks ``x + fc2(relu(fc1(norm(x))))`` of width :data:`WIDTH` = 64 (65 weight layers in series along the
branches; the paper's ResNet-110 has 54 blocks), a final norm and ReLU, and a linear 10-way head. Arms:

- He, no normalization (``norm=none``, ``he_normal``): every weight N(0, 2/fan_in), biases 0. Each block multiplies
  the stream's second moment by about 3 at initialization (the branch returns twice the variance that enters it),
  so the logits are ~3^16 ≈ 4e7 times the input's scale and the first SGD steps overflow;
- Fixup, no normalization (``norm=none``, initlab's ``fixup``): fc2 and the head 0, fc1 He × 32^(-1/2), the input
  layer He; every block is the identity at initialization. initlab's networks have no scalar multipliers and
  biases, the paper's architecture additions; Fixup's rescaling and zeros alone are reproduced here;
- He with batch normalization (``norm=batch``, ``he_normal``): the reference the paper compares Fixup with.

Training (SGD as in the paper, no warm-up): momentum 0.9, learning rate :data:`LR` = 0.1 (the paper's rate for
CIFAR-10 ResNets at batch 128), batch :data:`BATCH` = 128, cross-entropy, :data:`FULL_EPOCHS` epochs and seeds
:data:`FULL_SEEDS` (quick form: :data:`QUICK_EPOCHS` epochs, seed 0). The no-norm arms and the batch-norm arm are
two initlab studies (a study has one model) in ``OUT/study/no-norm`` and ``OUT/study/batch-norm``, every epoch
stored, resumable. A run diverges when an epoch's mean training loss is not finite or above 1e4 (the study engine's
``max_loss``); its test accuracy counts as chance.

Claims (full form; mean final test accuracy over seeds; chance is 10% on the ten balanced classes):

1. He without normalization fails: every seed diverged, or ended within :data:`NEAR_CHANCE` points of chance;
2. Fixup trains: at least :data:`FAR_ABOVE` points above chance;
3. Fixup comes close to batch norm: its accuracy at most :data:`CLOSE_TO_BN` points below the batch-norm network's.

The quick form (:data:`QUICK_EPOCHS` epochs, one seed) checks the training loss, which separates the arms after a
few epochs more reliably than a test accuracy still moving by points per epoch: He without normalization diverged;
Fixup's last training loss is at least :data:`QUICK_LOSS_DROP` below ln 10 (the loss of a uniform guess), and at
most :data:`QUICK_LOSS_GAP` above the batch-norm network's.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from initlab.reproduce._base import Result, pyplot, register, save_figure, val_accuracy_curves
from initlab.store import EpochRecord, Store
from initlab.studies import Arm, Study, run_study
from initlab.training import TrainSettings

WIDTH = 64
BLOCKS = 32
LR = 0.1
BATCH = 128
FULL_EPOCHS = 15
FULL_SEEDS = (0, 1, 2)
QUICK_EPOCHS = 2
CHANCE = 10.0  # percent: ten classes
CHANCE_LOSS = math.log(10)  # cross-entropy of a uniform guess over ten classes
#: Claim 1: "fails to train": every seed diverged, or its final test accuracy is within this many points of 10%.
NEAR_CHANCE = 5.0
#: Claim 2: Fixup's mean final test accuracy is at least this many points above chance ...
FAR_ABOVE = 30.0
#: Claim 3: ... and at most this many points below the batch-norm network's.
CLOSE_TO_BN = 5.0
#: Quick form: Fixup's last training loss at least this far below ln 10 (seen after 2 epochs, seeds 0-2: 1.56, 1.69,
#: 1.59, i.e. 0.61-0.75 below) ...
QUICK_LOSS_DROP = 0.5
#: ... and at most this far above the batch-norm network's (seen: 0.14, 0.23, 0.16 above).
QUICK_LOSS_GAP = 0.4
#: The study folders under OUT/study: the two arms without normalization, and the batch-norm reference.
PLAIN, NORMED = "no-norm", "batch-norm"
SOURCE = (
    "Zhang, Dauphin & Ma (2019), 'Fixup Initialization: Residual Learning Without Normalization', ICLR, section 2 "
    "and tables 1-2 (a deep ResNet without normalization diverges under standard init; Fixup trains it as well as "
    "with batch norm)"
)


def model(norm: str) -> str:
    """The residual MLP's spec with normalization ``norm`` (``none`` or ``batch``)."""
    return f"resmlp:{WIDTH}x{BLOCKS};norm={norm}"


def studies(quick: bool) -> dict[str, Study]:
    """The two studies, by folder name: He and Fixup without normalization, He with batch normalization."""
    train = TrainSettings(optimizer="sgd", lr=LR, momentum=0.9, batch_size=BATCH,
                          epochs=QUICK_EPOCHS if quick else FULL_EPOCHS)  # fmt: skip
    seeds = (0,) if quick else FULL_SEEDS
    suffix = "-quick" if quick else ""
    return {
        PLAIN: Study(name="fixup2019-no-norm" + suffix, dataset="mnist1d", model=model("none"),
                     arms=(Arm("he", "he_normal"), Arm("fixup", "fixup")), seeds=seeds, train=train,
                     diagnose_epochs=()),
        NORMED: Study(name="fixup2019-batch-norm" + suffix, dataset="mnist1d", model=model("batch"),
                      arms=(Arm("he-bn", "he_normal"),), seeds=seeds, train=train, diagnose_epochs=()),
    }  # fmt: skip


def final_test_accuracy(store: Store) -> dict[str, list[float | None]]:
    """Each arm's final test accuracy in percent per seed; ``None`` for a run that diverged (or has no test)."""
    out: dict[str, list[float | None]] = {}
    for run in store.runs():
        done = run.status == "finished" and run.test_metrics
        out.setdefault(run.arm, []).append(100 * run.test_metrics["test_acc"] if done else None)
    return out


def final_train_loss(epochs: list[EpochRecord]) -> dict[str, list[float]]:
    """Each arm's training loss of its last stored epoch, per seed (NaN or ∞ for a run that diverged)."""
    last: dict[str, EpochRecord] = {}
    for e in epochs:
        if e.run_id not in last or e.epoch > last[e.run_id].epoch:
            last[e.run_id] = e
    out: dict[str, list[float]] = {}
    for run_id, e in sorted(last.items()):
        out.setdefault(run_id.rsplit("/", 1)[0], []).append(e.train_loss)
    return out


def failed(accuracies: list[float | None]) -> bool:
    """Claim 1's test: every seed diverged (``None``) or ended within :data:`NEAR_CHANCE` points of chance."""
    return bool(accuracies) and all(a is None or abs(a - CHANCE) <= NEAR_CHANCE for a in accuracies)


def mean_accuracy(accuracies: list[float | None]) -> float:
    """The mean over seeds, a diverged seed counting as chance."""
    return statistics.fmean(CHANCE if a is None else a for a in accuracies)


def _shown(accuracies: list[float | None]) -> str:
    return ", ".join("diverged" if a is None else f"{a:.1f}%" for a in accuracies)


@register("fixup2019", "He vs Fixup vs batch norm on a 32-block residual MLP without normalization (MNIST-1D)",
          SOURCE, "about 40 s (3 arms x 3 seeds x 15 epochs); the quick form about 15 s",
          heading="Fixup: a deep residual network without normalization (Zhang et al. 2019)")  # fmt: skip
def run(result: Result, out: Path) -> Result:
    specs = studies(result.quick)
    acc: dict[str, list[float | None]] = {}
    epochs: list[EpochRecord] = []
    folders = {}
    for name, spec in specs.items():
        folders[name] = run_study(spec, out / "study" / name)
        with Store.in_dir(folders[name], readonly=True) as store:
            acc.update(final_test_accuracy(store))
            epochs += store.epochs()
    loss = final_train_loss(epochs)
    he_diverged = all(a is None for a in acc["he"])
    if result.quick:
        _check_quick(result, acc, loss)
    else:
        fixup, bn = mean_accuracy(acc["fixup"]), mean_accuracy(acc["he-bn"])
        result.check("He init without normalization fails to train (diverges or stays at chance)",
                     f"every seed diverged or within {NEAR_CHANCE:g} points of {CHANCE:g}%", _shown(acc["he"]),
                     failed(acc["he"]))  # fmt: skip
        result.check("Fixup without normalization trains", f">= {CHANCE + FAR_ABOVE:g}%",
                     f"{fixup:.2f}% ({_shown(acc['fixup'])})", fixup >= CHANCE + FAR_ABOVE)  # fmt: skip
        result.check("Fixup comes close to the same network with batch norm",
                     f">= batch norm - {CLOSE_TO_BN:g} points", f"{fixup:.2f}% vs {bn:.2f}% "
                     f"({fixup - bn:+.2f} points)", fixup >= bn - CLOSE_TO_BN)  # fmt: skip
    result.details = {
        "test_accuracy_percent": acc,
        "final_train_loss": loss,
        "he_diverged": he_diverged,
        "seeds": list(specs[PLAIN].seeds),
        "epochs": specs[PLAIN].train.epochs,
        "studies": {name: str(folder) for name, folder in folders.items()},
    }
    result.figures = [_figure(out, epochs, acc, len(specs[PLAIN].seeds))]
    return result


def _check_quick(result: Result, acc: dict[str, list[float | None]], loss: dict[str, list[float]]) -> None:
    """The quick form's claims, on the last epoch's training loss (mean over seeds)."""
    fixup, bn = statistics.fmean(loss["fixup"]), statistics.fmean(loss["he-bn"])
    result.check("He init without normalization diverges", "every seed diverged", _shown(acc["he"]),
                 all(a is None for a in acc["he"]))  # fmt: skip
    result.check("Fixup without normalization trains: its training loss falls below ln 10",
                 f"<= {CHANCE_LOSS - QUICK_LOSS_DROP:.4f}", f"{fixup:.4f}",
                 fixup <= CHANCE_LOSS - QUICK_LOSS_DROP)  # fmt: skip
    result.check("Fixup's training loss comes close to the batch-norm network's", f"<= {bn:.4f} + {QUICK_LOSS_GAP:g}",
                 f"{fixup:.4f}", fixup <= bn + QUICK_LOSS_GAP)  # fmt: skip


def _figure(out: Path, epochs: list[EpochRecord], acc: dict[str, list[float | None]], seeds: int) -> Path:
    """Validation accuracy against epoch per arm, mean over seeds with the range as a band; a diverged arm is
    marked at chance where it stopped."""
    plt = pyplot()
    curves = val_accuracy_curves(epochs)
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    for (arm, by_epoch), style in zip(curves.items(), ("x:", "s-", "^--"), strict=False):
        xs = sorted(by_epoch)
        final = _shown(acc.get(arm, []))
        line = ax.plot(xs, [statistics.fmean(by_epoch[x]) for x in xs], style, label=f"{arm} (test: {final})")
        ax.fill_between(xs, [min(by_epoch[x]) for x in xs], [max(by_epoch[x]) for x in xs], alpha=0.2,
                        color=line[0].get_color())  # fmt: skip
    ax.axhline(CHANCE, color="0.5", linewidth=1, label="chance (10%)")
    ax.set(title=f"resmlp:{WIDTH}x{BLOCKS} on MNIST-1D, SGD lr {LR:g}: validation accuracy (mean and range of "
                 f"{seeds} seed(s), CPU)", xlabel="epoch", ylabel="validation accuracy (%)")  # fmt: skip
    ax.legend(fontsize=8)
    return save_figure(fig, out / "fixup2019.png")
