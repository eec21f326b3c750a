"""``deepnet2022``: Wang, Ma, Dong, Huang, Zhang and Wei (2022), "DeepNet: Scaling Transformers to 1,000 Layers"
(arXiv:2203.00555), §3-4 and figures 1 and 3: a deep Post-LN transformer trained without learning-rate warm-up does
not train (the paper: Post-LN "fails to converge" or diverges at depth), while DeepNorm, the same network with the
residual up-weighted, ``x_{l+1} = LN(α·x_l + G(x_l))``, α = (2N)^(1/4), and the branch weights initialized with
Xavier normal of gain β = (8N)^(-1/4) (value, output and MLP weights; N blocks), trains at once and stably.

Setup. Task: ``copy`` (:mod:`initlab.data.sequences`; ``s_1..s_8 SEP t_1..t_{k-1}`` -> ``t_k``, ten symbols,
:data:`FULL_SAMPLES` sequences per split), next-token prediction with a causal decoder read at the last position: a
target is one of the ten symbols, so a model that has not found the copy rule is at best a uniform guess over them,
loss ln 10 and accuracy 10%. Network: ``transformer:32x24;heads=4;task=lm`` (:data:`WIDTH` = 32, :data:`DEPTH` = 24
blocks, MLP 4 × 32, GELU, learned positions; 0.30M parameters), in two placements of the norm, each a study of one
arm:

- ``post-ln``: ``ln=post``, ``x = LN(x + G(x))`` (Vaswani et al. 2017), every weight Xavier normal (the paper's
  baseline: the standard initialization of a Post-LN transformer);
- ``deepnorm``: ``ln=deepnorm``, ``x = LN(α·x + G(x))`` with α = 48^(1/4) = 2.63, initialized by initlab's
  ``deepnet`` scheme (β = 192^(-1/4) = 0.27).

Both train with Adam (lr :data:`LR` = 1e-3, β = (0.9, 0.999), constant rate, no warm-up, no gradient clipping),
batch 64, :data:`FULL_EPOCHS` epochs of 31 steps, seeds :data:`FULL_SEEDS` (the seed draws the weights and the batch
order; the data are fixed). Each placement runs as an initlab study in ``OUT/study/post-ln`` and
``OUT/study/deepnorm`` (every epoch stored, resumable).

Choices, from a short search (plain training loop, 5,000 sequences per split, 78 steps an epoch, Adam 1e-3 without
warm-up, seed 0 unless said):

- Depth 24, not 12: at 12 blocks (copy of length 4) Post-LN sat at chance for two epochs and then learnt (97%
  validation accuracy at epoch 3), a delay rather than a failure; at 24 blocks it stayed at chance for all of six
  epochs (468 steps; training loss 2.309 and 2.313 in seeds 0 and 1, ln 10 = 2.303; validation accuracy 10%),
  while DeepNorm reached 100% validation accuracy within two epochs (training loss 1.304, then 0.014).
- Width 32, copy, small splits: what runs on a 2-core CPU. The network is bound by per-operation overhead, so its
  cost grows with depth × steps, and evaluating a split costs about a third of training on it; hence 2,000
  sequences per split. The depth, not the width, is what the paper varies.

Claims (mean over seeds; chance is 10%): after :data:`FULL_EPOCHS` epochs, Post-LN's final test accuracy is within
:data:`NEAR_CHANCE` points of chance, and DeepNorm's at least :data:`DEEPNORM_ACCURACY` percent; DeepNorm reaches
:data:`DEEPNORM_ACCURACY` percent validation accuracy within :data:`DEEPNORM_EPOCHS` epochs in every seed.

The quick form (the test suite's) is the same experiment, smaller: :data:`QUICK_DEPTH` = 12 blocks, copy of length
:data:`QUICK_LENGTH` = 4, :data:`QUICK_SAMPLES` sequences per split, :data:`QUICK_EPOCHS` epochs of 10 steps, seed 0.
At 50 steps Post-LN at depth 12 is still on its plateau (above: it leaves it after about 150 steps), so the quick
form checks the early-training form of the claim on the last epoch's training loss: Post-LN's at least ln 10 -
:data:`QUICK_STALLED`, DeepNorm's at most ln 10 - :data:`QUICK_LOSS_DROP`.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from initlab.reproduce._base import Result, pyplot, register, save_figure, val_accuracy_curves
from initlab.store import EpochRecord, Store
from initlab.studies import Arm, Study, run_study, summarize
from initlab.training import TrainSettings

WIDTH = 32
DEPTH = 24
HEADS = 4
LR = 1e-3
BATCH = 64
TASK = "copy"
LENGTH = 8  # copy's sequence length (the loader's default): inputs of 16 tokens
#: Sequences per split (train, val, test): evaluating 24 blocks costs as much as training, so the splits are small.
FULL_SAMPLES = 2000
FULL_EPOCHS = 6  # of 31 steps: 186 steps
FULL_SEEDS = (0, 1, 2)
#: The quick form: depth 12, copy of length 4 (inputs of 8 tokens), 640 sequences per split (10 steps an epoch),
#: QUICK_EPOCHS epochs, seed 0: a quarter of the full form's cost per step.
QUICK_DEPTH = 12
QUICK_LENGTH = 4
QUICK_SAMPLES = 640
QUICK_EPOCHS = 5
CHANCE = 10.0  # percent: the target is one of ten symbols
CHANCE_LOSS = math.log(10)  # cross-entropy of a uniform guess over the ten symbols
#: "Post-LN does not train": final test accuracy within this many points of chance.
NEAR_CHANCE = 5.0
#: "DeepNorm trains": final test accuracy at least this (percent), and validation accuracy at least this within
#: DEEPNORM_EPOCHS epochs in every seed.
DEEPNORM_ACCURACY = 95.0
DEEPNORM_EPOCHS = 4
#: Quick form: Post-LN's mean training loss over QUICK_STEPS steps is at least ln 10 - QUICK_STALLED, and
#: DeepNorm's at most ln 10 - QUICK_LOSS_DROP.
QUICK_STALLED = 0.05
QUICK_LOSS_DROP = 0.5
#: The two placements of the norm: (study label, ``ln=``, initialization, legend text).
PLACEMENTS = (
    ("post-ln", "post", "xavier_normal", "Post-LN, Xavier normal"),
    ("deepnorm", "deepnorm", "deepnet", "DeepNorm (α residual, β init)"),
)
SOURCE = (
    "Wang, Ma, Dong, Huang, Zhang & Wei (2022), 'DeepNet: Scaling Transformers to 1,000 Layers', arXiv:2203.00555, "
    "§3-4 and figures 1 and 3 (deep Post-LN fails to train without warm-up; DeepNorm trains stably)"
)


def model_spec(ln: str, depth: int) -> str:
    return f"transformer:{WIDTH}x{depth};heads={HEADS};ln={ln};task=lm"


def study(label: str, quick: bool) -> Study:
    """The study of one placement of the norm (``label`` in :data:`PLACEMENTS`)."""
    _, ln, scheme, _ = next(p for p in PLACEMENTS if p[0] == label)
    return Study(
        name=f"deepnet2022-{label}" + ("-quick" if quick else ""),
        dataset=TASK,
        dataset_options={"length": QUICK_LENGTH if quick else LENGTH, "symbols": 10,
                         "n_samples": QUICK_SAMPLES if quick else FULL_SAMPLES},
        model=model_spec(ln, QUICK_DEPTH if quick else DEPTH),
        arms=(Arm(label, scheme),),
        seeds=(0,) if quick else FULL_SEEDS,
        train=TrainSettings(optimizer="adam", lr=LR, batch_size=BATCH, epochs=QUICK_EPOCHS if quick else FULL_EPOCHS),
        diagnose_epochs=(),
    )  # fmt: skip


@register("deepnet2022", "Post-LN vs DeepNorm on a 24-layer transformer without warm-up (copy task)", SOURCE,
          "about 3 minutes (2 placements x 3 seeds x 6 epochs of 31 steps); the quick form about 16 s",
          heading="DeepNorm trains a deep Post-LN transformer without warm-up (Wang et al. 2022)")  # fmt: skip
def run(result: Result, out: Path) -> Result:
    epochs: list[EpochRecord] = []
    acc: dict[str, float] = {}
    folders: dict[str, str] = {}
    for label, *_ in PLACEMENTS:
        spec = study(label, result.quick)
        folder = run_study(spec, out / "study" / label)
        with Store.in_dir(folder, readonly=True) as store:
            acc.update({r.arm: r.test_acc.mean * 100 for r in summarize(store)})
            epochs += store.epochs()
        folders[label] = str(folder)
    loss = _final_losses(epochs)
    if result.quick:
        result.check("Post-LN (Xavier) stalls: its training loss stays at ln 10",
                     f">= {CHANCE_LOSS - QUICK_STALLED:.4f}", f"{loss['post-ln']:.4f}",
                     loss["post-ln"] >= CHANCE_LOSS - QUICK_STALLED)  # fmt: skip
        result.check("DeepNorm trains: its training loss falls below ln 10",
                     f"<= {CHANCE_LOSS - QUICK_LOSS_DROP:.4f}", f"{loss['deepnorm']:.4f}",
                     loss["deepnorm"] <= CHANCE_LOSS - QUICK_LOSS_DROP)  # fmt: skip
    else:
        result.check(f"Post-LN (Xavier) at depth {DEPTH} does not train without warm-up",
                     f"test accuracy within {NEAR_CHANCE:g} points of {CHANCE:g}%", f"{acc['post-ln']:.2f}%",
                     abs(acc["post-ln"] - CHANCE) <= NEAR_CHANCE)  # fmt: skip
        result.check(f"DeepNorm at depth {DEPTH} trains", f">= {DEEPNORM_ACCURACY:g}% test accuracy",
                     f"{acc['deepnorm']:.2f}%", acc["deepnorm"] >= DEEPNORM_ACCURACY)  # fmt: skip
        first = _first_epoch_at(epochs, "deepnorm", DEEPNORM_ACCURACY / 100)
        worst = max(first.values(), default=math.inf)
        result.check("DeepNorm trains at once", f"{DEEPNORM_ACCURACY:g}% validation accuracy by epoch "
                     f"{DEEPNORM_EPOCHS} in every seed", f"by epoch {worst:g} (per seed: {first})",
                     worst <= DEEPNORM_EPOCHS)  # fmt: skip
    seeds = (0,) if result.quick else FULL_SEEDS
    depth = QUICK_DEPTH if result.quick else DEPTH
    result.details = {"test_accuracy_percent": acc, "final_train_loss": loss, "seeds": list(seeds), "depth": depth,
                      "alpha": (2 * depth) ** 0.25, "beta": (8 * depth) ** -0.25, "studies": folders}  # fmt: skip
    result.figures = [_figure(out, epochs, acc, len(seeds), result.quick)]
    return result


def _final_losses(epochs: list[EpochRecord]) -> dict[str, float]:
    """Each arm's training loss of its last epoch, mean over seeds (a diverged run's NaN or inf counts as inf)."""
    last: dict[str, dict[str, EpochRecord]] = {}
    for e in epochs:
        arm, run = e.run_id.rsplit("/", 1)[0], e.run_id
        if run not in last.setdefault(arm, {}) or e.epoch > last[arm][run].epoch:
            last[arm][run] = e
    return {arm: statistics.fmean(e.train_loss if math.isfinite(e.train_loss) else math.inf for e in runs.values())
            for arm, runs in last.items()}  # fmt: skip


def _first_epoch_at(epochs: list[EpochRecord], arm: str, target: float) -> dict[str, float]:
    """For each run of ``arm``, the first epoch whose validation accuracy reaches ``target`` (inf: never)."""
    first: dict[str, float] = {}
    for e in sorted(epochs, key=lambda e: e.epoch):
        if e.run_id.rsplit("/", 1)[0] != arm:
            continue
        first.setdefault(e.run_id, math.inf)
        if e.val_acc is not None and e.val_acc >= target and first[e.run_id] == math.inf:
            first[e.run_id] = float(e.epoch)
    return first


def _figure(out: Path, epochs: list[EpochRecord], acc: dict[str, float], seeds: int, quick: bool) -> Path:
    """Training loss and validation accuracy against epoch per placement, mean over seeds with the range as a band."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    losses: dict[str, dict[int, list[float]]] = {}
    for e in epochs:
        losses.setdefault(e.run_id.rsplit("/", 1)[0], {}).setdefault(e.epoch, []).append(e.train_loss)
    names = {label: text for label, _, _, text in PLACEMENTS}
    for ax, curves, unit in ((left, losses, ""), (right, val_accuracy_curves(epochs), "%")):
        for (arm, by_epoch), style in zip(curves.items(), ("o:", "s-"), strict=False):
            xs = sorted(by_epoch)
            label = names.get(arm, arm) + (f" ({acc.get(arm, math.nan):.1f}% test)" if unit else "")
            line = ax.plot(xs, [statistics.fmean(by_epoch[x]) for x in xs], style, label=label)
            ax.fill_between(xs, [min(by_epoch[x]) for x in xs], [max(by_epoch[x]) for x in xs], alpha=0.2,
                            color=line[0].get_color())  # fmt: skip
    left.axhline(CHANCE_LOSS, color="0.5", linewidth=1, label="ln 10 (uniform over the symbols)")
    right.axhline(CHANCE, color="0.5", linewidth=1, label="chance (10%)")
    budget = f"{QUICK_EPOCHS} epochs of 10 steps" if quick else f"{FULL_EPOCHS} epochs of 31 steps"
    left.set(title="training loss (epoch mean)", xlabel="epoch", ylabel="cross-entropy")
    right.set(title="validation accuracy", xlabel="epoch", ylabel="accuracy (%)")
    fig.suptitle(f"{QUICK_DEPTH if quick else DEPTH}-block transformer (width {WIDTH}) on copy, Adam {LR:g} without "
                 f"warm-up, {budget}: mean and range of {seeds} seed(s), CPU")  # fmt: skip
    left.legend()
    right.legend()
    return save_figure(fig, out / "deepnet2022.png")
