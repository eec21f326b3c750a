"""One page's training: the arms of a :class:`~initlab.playground.setup.Setup` as one population, and its views.

The arms are copies of one MLP (:mod:`initlab.models`), each initialized by its scheme (``schemes.resolve(name)
.apply(model, seed=..., data=...)``) or preset (:mod:`initlab.playground.presets`) from the setup's one seed, then
trained together by :class:`initlab.training.Population` on the same batches in the same order, so their
differences come from the initialization alone.

Precision. Small networks on the 2-D sets (at most :data:`FLOAT64_PARAMETERS` parameters per arm) train in float64,
as the deeplearning.ai assignment does (its costs are compared to 1e-9), on the population's general ``vmap`` path
with the loss kept in float64 (:class:`_Population`); there float64 costs nothing noticeable. Larger networks and
MNIST train in float32 on the population's stacked fast path, several times faster.

A *frame* is what the page draws after an update, for every arm: the train and test cost (mean cross-entropy; binary
sets use one logit and the binary cross-entropy, like the assignment's sigmoid output) and accuracy; the decision
boundary, P(class 1) or the winning class and its probability over a grid of the plane; each layer's weights or last
gradient for the network drawing (its first :data:`MAX_DRAWN_UNITS` units); histograms of one layer's activations on
the training set and of its weight gradient; the pre-activation std and the weight-gradient norm ‖∂L/∂W_l‖ of every
layer (depth profiles); and, at most every :data:`FINDINGS_EVERY_S` seconds, the findings of
:func:`initlab.diagnose` on :data:`DIAGNOSE_SAMPLES` training samples. Arrays travel as base64 (float32 or uint8).
"""

from __future__ import annotations

import base64
import functools
import itertools
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from initlab.playground.presets import apply_preset, dlai_data
from initlab.playground.setup import GRID, MIN_GRID, MOMENTUM, Setup
from initlab.seeding import derive_seed
from initlab.training import Batch, Population, TrainSettings

log = logging.getLogger(__name__)

#: Findings are recomputed at most this often (a diagnosis costs 10-70 ms per arm for a small network, ten to a
#: hundred steps), and never more than :data:`FINDINGS_SHARE` of the time: a diagnosis that took t seconds is
#: repeated after t / FINDINGS_SHARE seconds at the earliest (a deep network's).
FINDINGS_EVERY_S = 1.0
FINDINGS_SHARE = 0.1
#: Networks up to this many parameters per arm train in float64 on the 2-D sets (the assignment's has 91).
FLOAT64_PARAMETERS = 10_000
#: Multiply-adds the decision-boundary grid may cost per update, all arms; the grid's side shrinks to fit.
GRID_MACS = 1e8
#: Units per layer drawn in the network view (a 512-wide layer would be 262,144 lines).
MAX_DRAWN_UNITS = 12
HIST_BINS = 24
#: Training samples a diagnosis and a data-dependent scheme (LSUV, auto) see.
DIAGNOSE_SAMPLES = 256


def b64(array: np.ndarray | torch.Tensor, dtype: type = np.float32) -> str:
    """``array`` as base64 of its little-endian ``dtype`` bytes (the page reads it as a typed array)."""
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()).decode()


def finite(values: Sequence[float]) -> list[float | None]:
    """JSON has no NaN or infinity: a diverged arm's value travels as null."""
    return [float(v) if math.isfinite(v) else None for v in values]


@dataclass(frozen=True)
class Data:
    """The training and test sets of a setup, and the plane drawn (None for MNIST)."""

    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    plane: tuple[float, float, float, float] | None  # x0, x1, y0, y1


@functools.lru_cache(maxsize=1)
def _mnist() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from initlab import data

    train, test = data.load("mnist", split="train"), data.load("mnist", split="test")
    return train.x, train.y, test.x, test.y


def _plane(*xs: torch.Tensor) -> tuple[float, float, float, float]:
    """A square around the points with a 15% margin."""
    allx = torch.cat(xs)
    lo, hi = allx.min(0).values, allx.max(0).values
    centre, half = (lo + hi) / 2, float((hi - lo).max()) / 2 * 1.15 + 1e-6
    return (float(centre[0]) - half, float(centre[0]) + half, float(centre[1]) - half, float(centre[1]) + half)


def load_data(setup: Setup) -> Data:
    """The setup's data: the assignment's circles, a generated 2-D set (raw coordinates, float64), or a seeded MNIST
    subset (standardized, float32)."""
    from initlab import data

    if setup.data == "dlai-circles":
        x, y, xt, yt = dlai_data()
        return Data(x, y, xt, yt, 2, _plane(x, xt))
    if setup.data == "mnist":
        x, y, xt, yt = _mnist()
        g = torch.Generator().manual_seed(derive_seed(setup.seed, "playground", "mnist") % 2**63)
        train_idx = torch.randperm(x.shape[0], generator=g)[: setup.n_train]
        test_idx = torch.randperm(xt.shape[0], generator=g)[: setup.n_test]
        return Data(x[train_idx], y[train_idx], xt[test_idx], yt[test_idx], 10, None)
    split = {
        s: data.load(setup.data, split=s, n_samples=n, noise=setup.noise, seed=setup.seed, normalize=None)
        for s, n in (("train", setup.n_train), ("test", setup.n_test))
    }
    x, xt = split["train"].x.double(), split["test"].x.double()
    return Data(x, split["train"].y, xt, split["test"].y, int(split["train"].num_classes or 2), _plane(x, xt))


class Session:
    """The arms of ``setup`` trained together, from step 0; :meth:`advance` trains, :meth:`frame` reads the views.

    Not thread-safe: the server runs one call at a time per session.
    """

    def __init__(self, setup: Setup) -> None:
        from initlab import models

        self.setup = setup
        self.data = load_data(setup)
        sizes = [int(np.prod(self.data.x.shape[1:])), *setup.widths, self.data.num_classes]
        sizes[-1] = 1 if sizes[-1] == 2 else sizes[-1]
        params = sum(a * b for a, b in itertools.pairwise(sizes))
        small = setup.data != "mnist" and params <= FLOAT64_PARAMETERS
        self.dtype = torch.float64 if small else torch.float32
        self.layer_sizes = sizes
        side = int(math.sqrt(GRID_MACS / (len(setup.arms) * params)))
        self.grid_side = max(MIN_GRID, min(GRID, side))
        self.binary = self.data.num_classes == 2
        self.outputs = 1 if self.binary else self.data.num_classes
        self.loss = "bce" if self.binary else "cross_entropy"
        self.input_shape = tuple(self.data.x.shape[1:])
        self.spec = models.parse(setup.model_spec)
        self.x, self.x_test = self.data.x.to(self.dtype), self.data.x_test.to(self.dtype)
        self.y, self.y_test = self.data.y, self.data.y_test
        self.grid = self._grid() if self.data.plane else None
        self.reset()

    # -- building ---------------------------------------------------------------------------------------------------
    def _build(self) -> nn.Module:
        return self.spec.build(self.input_shape, self.outputs).to(self.dtype)

    def _grid(self) -> torch.Tensor:
        x0, x1, y0, y1 = self.data.plane  # type: ignore[misc]
        g = self.grid_side
        # Cell centres, row 0 at the top (y1) as the canvas draws them.
        xs = torch.linspace(x0, x1, 2 * g + 1, dtype=torch.float64)[1::2]
        ys = torch.linspace(y1, y0, 2 * g + 1, dtype=torch.float64)[1::2]
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        return torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1).to(self.dtype)

    def _initialized(self, arm_index: int) -> nn.Module:
        from initlab import schemes

        arm = self.setup.arms[arm_index]
        model = self._build()
        if arm.preset is not None:
            apply_preset(model, arm.preset, seed=self.setup.seed, act=self.setup.act, scale=arm.scale)
            return model
        sample = self.x[:DIAGNOSE_SAMPLES]
        schemes.resolve(arm.scheme()).apply(model, seed=self.setup.seed, data=sample)
        if arm.scale != 1.0:
            with torch.no_grad():
                for p in model.parameters():
                    if p.dim() >= 2:
                        p.mul_(arm.scale)
        return model

    def settings(self) -> TrainSettings:
        s = self.setup
        optimizer = "adam" if s.opt == "adam" else "sgd"
        momentum = MOMENTUM if s.opt == "momentum" else 0.0
        return TrainSettings(optimizer=optimizer, lr=s.lr, momentum=momentum, loss=self.loss,
                             batch_size=s.batch or s.n_train)  # fmt: skip

    def reset(self) -> None:
        """Re-initialize every arm from the seed and start again at step 0."""
        nets = [self._initialized(i) for i in range(len(self.setup.arms))]
        self.pop = Population(nets, self.settings(), seed=self.setup.seed)  # float64 models: float64 throughout
        self.step = 0
        self._epoch = 0
        self._order: list[torch.Tensor] = []
        self._probe = self._build()
        self._findings_due = -math.inf
        self._gradients_at_init()

    def _gradients_at_init(self) -> None:
        """The gradient of the first batch at the initial weights, so the views have one before the first step."""
        batch = self._batches(1)[0] if self.setup.batch else Batch(self.x, self.y)
        if self.setup.batch:
            self._order, self._epoch = [], 0  # that batch is drawn again by the first step
        out = self.pop.forward(batch.x, train=True)
        for p in self.pop.params.values():
            p.grad = None
        self.pop.losses(out, batch.y).sum().backward()

    def _batches(self, k: int) -> list[Batch]:
        """The next ``k`` batches: the whole training set, or shuffled mini-batches, one permutation per epoch from
        a seed derived from the setup's seed (every arm sees the same batches in the same order)."""
        if not self.setup.batch:
            return [Batch(self.x, self.y)] * k
        out = []
        while len(out) < k:
            if not self._order:
                g = torch.Generator().manual_seed(derive_seed(self.setup.seed, "batches", self._epoch) % 2**63)
                self._order = list(torch.randperm(self.x.shape[0], generator=g).split(self.setup.batch))
                self._epoch += 1
            idx = self._order.pop(0)
            out.append(Batch(self.x[idx], self.y[idx]))
        return out

    # -- training ---------------------------------------------------------------------------------------------------
    def advance(self, steps: int, budget_s: float = math.inf) -> int:
        """Train every arm ``steps`` steps, or fewer when ``budget_s`` seconds have passed (at least one); returns
        the steps taken."""
        start = time.perf_counter()
        done = 0
        while done < steps:
            self.pop.train_epoch(self._batches(1))
            done += 1
            self.step += 1
            if time.perf_counter() - start > budget_s:
                break
        return done

    # -- views ------------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def _trace(
        self, x: torch.Tensor, layer: int | None = None, *, stats: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor], Any]:
        """Every arm's outputs (N, B, out) on ``x``, each linear layer's pre-activation std per arm, and the
        activations after layer ``layer`` (1-based), (N, B, width), if asked."""
        h = x.flatten(1)
        stds: list[torch.Tensor] = []
        picked = None
        linear = 0
        for i, module in enumerate(self.pop.base):
            if isinstance(module, nn.Linear):
                w = self.pop.params[f"{i}.weight"].detach()
                h = torch.matmul(h, w.transpose(1, 2))
                bias = self.pop.params.get(f"{i}.bias")
                if bias is not None:
                    h = h + bias.detach().unsqueeze(1)
                linear += 1
                if stats:
                    stds.append(h.flatten(1).std(dim=1))
            elif isinstance(module, (nn.Flatten, nn.Dropout)):
                continue
            else:
                h = module(h)
            if linear == layer:
                picked = h
        return h, stds, picked

    def _cost(self, out: torch.Tensor, y: torch.Tensor) -> tuple[list[float | None], list[float | None]]:
        """Mean loss and accuracy per arm, in the outputs' dtype."""
        loss = self.pop.losses(out, y)
        correct = self.pop.correct(out, y)
        return finite(loss.tolist()), finite((correct.double() / y.shape[0]).tolist())

    def _boundary(self) -> list[dict[str, str]]:
        out, _, _ = self._trace(self.grid)  # type: ignore[arg-type]
        frames = []
        for arm_out in out:
            if self.binary:
                p = torch.sigmoid(arm_out[:, 0].double()).nan_to_num(0.5)
                frames.append({"p": b64((p * 255).round(), np.uint8)})
            else:
                probs = torch.softmax(arm_out.double(), dim=1).nan_to_num(0.0)
                conf, cls = probs.max(dim=1)
                frames.append({"cls": b64(cls, np.uint8), "p": b64((conf * 255).round(), np.uint8)})
        return frames

    @staticmethod
    def _histogram(values: torch.Tensor) -> dict[str, Any]:
        v = values.detach().double().flatten()
        v = v[torch.isfinite(v)]
        if v.numel() == 0:
            return {"lo": -1.0, "hi": 1.0, "counts": [0] * HIST_BINS}
        lo, hi = float(v.min()), float(v.max())
        if hi - lo <= 1e-12 * max(1.0, abs(lo)):
            lo, hi = lo - 0.5, hi + 0.5
        counts = torch.histc(v, bins=HIST_BINS, min=lo, max=hi)
        return {"lo": lo, "hi": hi, "counts": [int(c) for c in counts.tolist()]}

    def _weights(self) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """(weight, gradient) of each linear layer, stacked over the arms."""
        out = []
        for i, module in enumerate(self.pop.base):
            if isinstance(module, nn.Linear):
                p = self.pop.params[f"{i}.weight"]
                out.append((p.detach(), None if p.grad is None else p.grad.detach()))
        return out

    def frame(self, *, layer: int = 1, network: str = "weights", findings: bool | None = None) -> dict[str, Any]:
        """The views after the current step (see the module docstring). ``findings``: diagnose now (True), not
        (False), or when :data:`FINDINGS_EVERY_S` has passed since the last diagnosis (None)."""
        n = len(self.setup.arms)
        layer = max(1, min(layer, len(self.layer_sizes) - 1))
        out, stds, picked = self._trace(self.x, layer, stats=True)
        train_cost, train_acc = self._cost(out, self.y)
        test_out, _, _ = self._trace(self.x_test)
        test_cost, test_acc = self._cost(test_out, self.y_test)
        weights = self._weights()
        grad_norms = [
            torch.linalg.vector_norm(g.flatten(1), dim=1) if g is not None else torch.full((n,), float("nan"))
            for _, g in weights
        ]
        arms: list[dict[str, Any]] = []
        boundary = self._boundary() if self.grid is not None else [None] * n
        for i in range(n):
            g = weights[layer - 1][1]
            net = []
            for wl, gl in weights:
                shown = wl[i] if network == "weights" or gl is None else gl[i]
                block = shown[:MAX_DRAWN_UNITS, :MAX_DRAWN_UNITS]
                net.append({"rows": block.shape[0], "cols": block.shape[1], "v": b64(block.nan_to_num(0.0))})
            arms.append({
                "train_cost": train_cost[i], "test_cost": test_cost[i],
                "train_acc": train_acc[i], "test_acc": test_acc[i],
                "boundary": boundary[i],
                "network": net,
                "act_hist": self._histogram(picked[i]),
                "grad_hist": self._histogram(g[i]) if g is not None else None,
                "std": finite([float(s[i]) for s in stds]),
                "grad_norm": finite([float(s[i]) for s in grad_norms]),
            })  # fmt: skip
        now = time.monotonic()
        if findings or (findings is None and now >= self._findings_due):
            for arm, found in zip(arms, self.findings(), strict=True):
                arm["findings"] = found
            took = time.monotonic() - now
            self._findings_due = now + max(FINDINGS_EVERY_S, took / FINDINGS_SHARE)
        return {"type": "frame", "step": self.step, "layer": layer, "network": network, "arms": arms}

    def findings(self) -> list[list[dict[str, str]]]:
        """The findings of :func:`initlab.diagnose` for every arm, in plain words, on the first training samples."""
        from initlab.diagnostics import diagnose

        x = self.x[:DIAGNOSE_SAMPLES]
        y = self.y[:DIAGNOSE_SAMPLES]
        targets = y.to(self.dtype) if self.binary else y
        found = []
        for i in range(len(self.setup.arms)):
            model = self.pop.export(i, self._probe)
            try:
                diagnosis = diagnose(model, x, targets=targets, loss=self.loss, jacobian=False)
            except (ValueError, RuntimeError) as exc:  # a diverged arm (NaN weights) cannot always be diagnosed
                log.info("diagnose failed for arm %d: %s", i, exc)
                found.append([{"kind": "error", "severity": "error", "message": f"no diagnosis: {exc}",
                               "suggestion": ""}])  # fmt: skip
                continue
            found.append([{"kind": f.kind, "severity": f.severity, "message": f.message,
                           "suggestion": f.suggestion} for f in diagnosis.findings])  # fmt: skip
        return found

    def describe(self) -> dict[str, Any]:
        """What the page needs once per setup: the arms' labels, the points, the plane and the layer sizes."""
        d = self.data
        points = None
        if d.plane is not None:
            points = {"x": b64(d.x), "y": b64(d.y, np.uint8)}
            points |= {"x_test": b64(d.x_test), "y_test": b64(d.y_test, np.uint8)}
        return {
            "labels": [a.label for a in self.setup.arms],
            "classes": d.num_classes,
            "n_train": int(d.x.shape[0]),
            "n_test": int(d.x_test.shape[0]),
            "plane": d.plane,
            "grid": self.grid_side if d.plane is not None else None,
            "points": points,
            "layers": self.layer_sizes,
            "drawn_units": MAX_DRAWN_UNITS,
        }
