"""``dlai-circles``: the "Initialization" assignment of the deeplearning.ai Deep Learning Specialization (course 2,
week 1), which the seed documents' three-layer example follows.

Data: scikit-learn ``make_circles`` after ``np.random.seed(1)`` (300 training samples, noise 0.05) and
``np.random.seed(2)`` (100 test samples). Network [2, 10, 5, 1]: LINEAR-RELU-LINEAR-RELU-LINEAR-SIGMOID, the
cross-entropy cost ``(1/m) Σ nansum(-y log a - (1-y) log(1-a))``, full-batch gradient descent with learning rate 0.01
for 15,000 iterations in float64. Initializations, each after ``np.random.seed(3)``: zeros, ``randn * 10`` and He
(``randn * sqrt(2 / n_prev)``). Everything runs exactly as the assignment's ``init_utils`` does, in numpy, so that
the printed costs can be compared digit for digit; the caller's global numpy random state is restored afterwards.

Published values: the assignment notebook's printed output. The zeros and He runs are deterministic and must match to
a relative 1e-14, i.e. in every printed digit but the last one or two: copies of the notebook printed on other
machines differ from each other there (0.09917746546525937 and 0.09917746546525934 at iteration 12000 of the He run;
0.6931471805599453 and 0.6931471805599455 in the zeros run), as does this machine's BLAS. The ``randn * 10`` run
starts with saturated sigmoids (cost inf) and its trajectory amplifies the last-bit differences between BLAS
libraries: six published copies print six different costs at iteration 1000, from 0.6237287551108738 to
0.6250982793959966 (0.6244196071819332 here, with NumPy's OpenBLAS; torch's MKL in float64 under every
``MKL_CBWR`` branch and a naive summation order match no copy either). Its checks are therefore the infinite first
cost, the accuracies, the iteration-1000 cost inside the published copies' range, and the last printed cost within
a relative 1e-3 of the published ones.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

import initlab
from initlab.reproduce._base import Result, pyplot, register, save_figure

LAYERS = (2, 10, 5, 1)
ITERATIONS = 15_000
LEARNING_RATE = 0.01

# The assignment's printed output ("Cost after iteration i" every 1000 iterations, then the accuracies).
PUBLISHED_COSTS = {
    "zeros": [0.6931471805599453] * 15,
    "he": [0.8830537463419761, 0.6879825919728063, 0.6751286264523371, 0.6526117768893807, 0.6082958970572938,
           0.5304944491717495, 0.4138645817071794, 0.3117803464844441, 0.23696215330322562, 0.18597287209206836,
           0.1501555628037182, 0.12325079292273548, 0.09917746546525937, 0.0845705595402428, 0.07357895962677366],
}  # fmt: skip
PUBLISHED_ACCURACY = {"zeros": (0.5, 0.5), "random": (0.83, 0.86), "he": (0.9933333333333333, 0.96)}
#: The ``randn * 10`` run in published copies of the notebook: the range of the cost printed at iteration 1000 over six
#: copies, and the last printed cost (iteration 14000) of two.
PUBLISHED_RANDOM_1000 = (0.6237287551108738, 0.6250982793959966)
PUBLISHED_RANDOM_LAST = (0.38278397192120406, 0.38276694641706693)
#: Agreement required of the deterministic costs (see the module docstring for why not the 16th and 17th digit).
REL_TOL = 1e-14
SOURCE = "deeplearning.ai Deep Learning Specialization, course 2 week 1, 'Initialization' (make_circles)"


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import make_circles

    np.random.seed(1)
    train_x, train_y = make_circles(n_samples=300, noise=0.05)
    np.random.seed(2)
    test_x, test_y = make_circles(n_samples=100, noise=0.05)
    return train_x.T, train_y.reshape(1, -1), test_x.T, test_y.reshape(1, -1)


def _init(kind: str) -> dict[str, np.ndarray]:
    params: dict[str, np.ndarray] = {}
    if kind != "zeros":
        np.random.seed(3)
    for layer in range(1, len(LAYERS)):
        shape = (LAYERS[layer], LAYERS[layer - 1])
        if kind == "zeros":
            params[f"W{layer}"] = np.zeros(shape)
        elif kind == "random":
            params[f"W{layer}"] = np.random.randn(*shape) * 10
        else:
            params[f"W{layer}"] = np.random.randn(*shape) * np.sqrt(2 / LAYERS[layer - 1])
        params[f"b{layer}"] = np.zeros((LAYERS[layer], 1))
    return params


def _forward(x: np.ndarray, p: dict[str, np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    a, acts = x, [x]
    for layer in (1, 2, 3):
        z = np.dot(p[f"W{layer}"], a) + p[f"b{layer}"]
        a = 1 / (1 + np.exp(-z)) if layer == 3 else np.maximum(0, z)
        acts.append(a)
    return a, acts


def _cost(a3: np.ndarray, y: np.ndarray) -> float:
    logprobs = np.multiply(-np.log(a3), y) + np.multiply(-np.log(1 - a3), 1 - y)
    return float(1.0 / y.shape[1] * np.nansum(logprobs))


def _step(x: np.ndarray, y: np.ndarray, p: dict[str, np.ndarray], acts: list[np.ndarray]) -> None:
    m = x.shape[1]
    dz = 1.0 / m * (acts[3] - y)
    for layer in (3, 2, 1):
        dw = np.dot(dz, acts[layer - 1].T)
        db = np.sum(dz, axis=1, keepdims=True)
        if layer > 1:
            dz = np.multiply(np.dot(p[f"W{layer}"].T, dz), np.int64(acts[layer - 1] > 0))
        p[f"W{layer}"] = p[f"W{layer}"] - LEARNING_RATE * dw
        p[f"b{layer}"] = p[f"b{layer}"] - LEARNING_RATE * db


def train(kind: str) -> tuple[list[float], dict[str, np.ndarray], tuple[float, float], tuple[np.ndarray, ...]]:
    """Run the assignment's ``model(..., initialization=kind)``: the printed costs, parameters and accuracies."""
    state = np.random.get_state()
    try:
        train_x, train_y, test_x, test_y = _data()
        params = _init(kind)
    finally:
        np.random.set_state(state)
    costs = []
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        for i in range(ITERATIONS):
            a3, acts = _forward(train_x, params)
            cost = _cost(a3, train_y)
            _step(train_x, train_y, params, acts)
            if i % 1000 == 0:
                costs.append(cost)
        accuracy = tuple(float(np.mean((_forward(x, params)[0] > 0.5)[0, :] == y[0, :]))
                         for x, y in ((train_x, train_y), (test_x, test_y)))  # fmt: skip
    return costs, params, accuracy, (train_x, train_y)  # type: ignore[return-value]


def _same_digits(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=0.0)


@register("dlai-circles", "Zeros, large random and He initialization of a 3-layer ReLU network on make_circles", SOURCE,
          "about 10 s (the quick form is the full run)",
          heading="Initialization on make_circles (deeplearning.ai)")  # fmt: skip
def run(result: Result, out: Path) -> Result:
    runs = {kind: train(kind) for kind in ("zeros", "random", "he")}
    for kind, published in PUBLISHED_COSTS.items():
        measured = runs[kind][0]
        for i, (m, p) in enumerate(zip(measured, published, strict=True)):
            result.check(f"{kind}: cost after iteration {i * 1000}", repr(p), repr(m), _same_digits(m, p))
    random_costs = runs["random"][0]
    result.check("random (x10): cost after iteration 0", "inf", repr(random_costs[0]), math.isinf(random_costs[0]))
    low, high = PUBLISHED_RANDOM_1000
    result.check("random (x10): cost after iteration 1000, within the published copies' range",
                 f"[{low!r}, {high!r}]", repr(random_costs[1]), low <= random_costs[1] <= high)  # fmt: skip
    result.check("random (x10): cost after iteration 14000, within 1e-3 of the published copies",
                 " / ".join(map(repr, PUBLISHED_RANDOM_LAST)), repr(random_costs[-1]),
                 all(math.isclose(random_costs[-1], p, rel_tol=1e-3) for p in PUBLISHED_RANDOM_LAST))  # fmt: skip
    for kind, (train_acc, test_acc) in PUBLISHED_ACCURACY.items():
        got = runs[kind][2]
        result.check(f"{kind}: train accuracy", repr(train_acc), repr(got[0]), got[0] == train_acc)
        result.check(f"{kind}: test accuracy", repr(test_acc), repr(got[1]), got[1] == test_acc)
    # The He scale of the assignment is initlab's KaimingNormal for ReLU, on torch's (out, in) layout.
    std = initlab.KaimingNormal(nonlinearity="relu").distribution((10, 2)).std
    result.check("He scale sqrt(2/n_prev) equals initlab's KaimingNormal(relu) std for W1 (10x2)",
                 repr(math.sqrt(2 / 2)), repr(std), math.isclose(std, 1.0, rel_tol=1e-15))  # fmt: skip
    result.details = {k: {"costs": v[0], "accuracy": v[2]} for k, v in runs.items()}
    result.figures = _figures(out, runs)
    return result


def _figures(out: Path, runs: dict) -> list[Path]:
    """The assignment's figures: the cost curves and each model's decision boundary on the training set."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(17, 4), layout="constrained")
    styles = {"zeros": ("tab:gray", "--"), "random": ("tab:orange", ":"), "he": ("tab:blue", "-")}
    for kind, (costs, *_) in runs.items():
        color, ls = styles[kind]
        finite = [c if math.isfinite(c) else np.nan for c in costs]
        axes[0].plot(range(0, ITERATIONS, 1000), finite, ls, color=color, marker="o", label=f"{kind} init")
    axes[0].set(title="Cost during training", xlabel="iteration", ylabel="cross-entropy cost (nats)")
    axes[0].legend()
    grid = np.meshgrid(np.linspace(-1.5, 1.5, 300), np.linspace(-1.5, 1.5, 300))
    points = np.c_[grid[0].ravel(), grid[1].ravel()].T
    for ax, (kind, (_, params, acc, (x, y))) in zip(axes[1:], runs.items(), strict=True):
        with np.errstate(all="ignore"):
            z = (_forward(points, params)[0] > 0.5).reshape(grid[0].shape)
        ax.contourf(grid[0], grid[1], z, cmap="Spectral", alpha=0.6)
        ax.scatter(x[0], x[1], c=y[0], cmap="Spectral", s=10, edgecolors="k", linewidths=0.3)
        ax.set(title=f"{kind} init: train acc {acc[0]:.3f}", xlabel="x1", ylabel="x2", xlim=(-1.5, 1.5),
               ylim=(-1.5, 1.5))  # fmt: skip
    return [save_figure(fig, out / "dlai_circles.png")]
