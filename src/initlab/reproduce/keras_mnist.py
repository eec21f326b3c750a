"""``keras-mnist``: the seed documents' MNIST experiment, twelve Keras initializers on a Dense network.

``Flatten -> Dense(256, relu) -> Dropout(0.2) -> Dense(128, relu) -> Dropout(0.2) -> Dense(10, softmax)`` with the
same kernel initializer in all three Dense layers and zero biases, Adam with Keras' defaults (lr 1e-3, β 0.9/0.999,
ε 1e-7), sparse categorical cross-entropy, batch 128, 20 epochs, pixel intensities in [0, 1] as in the article;
3 seeds. It runs as an initlab study (populations, every epoch stored, resumable) in ``OUT/study``.

Claims: Zeros ends at the share of the most frequent class (all-zero weights never break symmetry, so the network
predicts one class: at best the most frequent one, 1,135 of the 10,000 test images); Ones ends far below the
variance-scaled initializers; the variance-scaled ones (Glorot, He, LeCun, normal and uniform) end within about one
point of each other. The quick form trains 2 epochs with one seed.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import initlab
from initlab.reproduce._base import Result, pyplot, register, save_figure, val_accuracy_curves
from initlab.store import Store
from initlab.studies import Arm, Study, run_study, summarize
from initlab.studies.spec import ARTICLE_INITS
from initlab.training import TrainSettings

VARIANCE_SCALED = ("glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform")
#: "far below": at least this many points under the worst variance-scaled initializer.
FAR_BELOW_POINTS = 20.0
#: "within about one point of each other".
ABOUT_ONE_POINT = 1.0
SOURCE = "the seed documents' Keras MNIST experiment (Dense 256-128-10, Adam, 20 epochs, twelve initializers)"


def study(quick: bool) -> Study:
    return Study(
        name="keras-mnist" + ("-quick" if quick else ""),
        dataset="mnist",
        normalize="none",
        model="keras-mnist",
        arms=tuple(Arm(name, name) for name in ARTICLE_INITS),
        seeds=(0,) if quick else (0, 1, 2),
        # Keras' Adam: epsilon 1e-7 (torch uses 1e-8).
        train=TrainSettings(optimizer="adam", lr=1e-3, eps=1e-7, batch_size=128, epochs=2 if quick else 20),
    )


@register("keras-mnist", "Twelve Keras initializers on the MNIST Dense network", SOURCE,
          "about 7 minutes (12 initializers x 3 seeds x 20 epochs); the quick form about 30 s",
          heading="Twelve initializers on MNIST (Keras article)")  # fmt: skip
def run(result: Result, out: Path) -> Result:
    folder = run_study(study(result.quick), out / "study")
    with Store.in_dir(folder, readonly=True) as store:
        rows = {r.arm: r for r in summarize(store)}
        epochs = store.epochs()
    test = initlab.data.load("mnist", split="test", normalize=None)
    counts = test.class_counts()
    majority = max(counts) / sum(counts)
    acc = {arm: r.test_acc.mean * 100 for arm, r in rows.items()}
    result.check("Zeros ends at the share of the most frequent class", f"{100 * majority:.2f}%",
                 f"{acc['zeros']:.2f}%", abs(acc["zeros"] - 100 * majority) < 0.05)  # fmt: skip
    worst_scaled = min(acc[a] for a in VARIANCE_SCALED)
    result.check("Ones ends far below the variance-scaled initializers",
                 f">= {FAR_BELOW_POINTS:.0f} points below {worst_scaled:.2f}%", f"{acc['ones']:.2f}%",
                 acc["ones"] <= worst_scaled - FAR_BELOW_POINTS)  # fmt: skip
    spread = max(acc[a] for a in VARIANCE_SCALED) - worst_scaled
    result.check("The variance-scaled initializers end within about one point of each other",
                 f"spread <= {ABOUT_ONE_POINT:.1f} points", f"{spread:.2f} points ({worst_scaled:.2f}-"
                 f"{worst_scaled + spread:.2f}%)", spread <= ABOUT_ONE_POINT)  # fmt: skip
    result.details = {"test_accuracy_percent": acc, "seeds": len(study(result.quick).seeds), "study": str(folder)}
    result.figures = [_figure(out, epochs, acc)]
    return result


def _figure(out: Path, epochs: list, acc: dict[str, float]) -> Path:
    """Validation accuracy against epoch, one line per initializer (mean over seeds), as the article plots."""
    plt = pyplot()
    curves = val_accuracy_curves(epochs)
    fig, ax = plt.subplots(figsize=(9, 5), layout="constrained")
    styles = ["-", "--", ":", "-."]
    for i, arm in enumerate(sorted(curves, key=lambda a: -acc.get(a, 0))):
        xs = sorted(curves[arm])
        ax.plot(xs, [statistics.fmean(curves[arm][x]) for x in xs], styles[i % 4], marker="os^vD<>ph*xP"[i % 12],
                color=plt.get_cmap("tab20")(i), label=f"{arm} ({acc.get(arm, float('nan')):.2f}% test)")  # fmt: skip
    ax.set(title="MNIST Dense network: validation accuracy by initializer", xlabel="epoch",
           ylabel="validation accuracy (%)")  # fmt: skip
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    return save_figure(fig, out / "keras_mnist.png")
