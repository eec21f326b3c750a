"""Population training: many copies of one architecture trained together in one process.

The models' parameters are stacked along a new leading axis (one slice per run) and the forward pass is
``torch.func.vmap`` over ``torch.func.functional_call``, so each layer runs as one batched matrix product for the
whole population instead of one small product per model. The loss of the population is the sum of each model's
mean loss, so each slice receives exactly its own model's gradient; the optimizers used here (SGD, Adam, AdamW,
RMSprop) act elementwise, so one optimizer over the stacked tensors equals one optimizer per model. The result equals
training each run alone on the same batches (tests check it to 1e-4), at a fraction of the per-step overhead.

Two exceptions are handled: dropout draws different masks per model (``vmap(randomness="different")``), from a seed
the caller sets (:meth:`Population.reseed`), and a run whose loss becomes NaN or infinite is removed from the
population at the end of the epoch (:meth:`Population.keep`). Models may also train at different learning rates
(:meth:`Population.set_lr`), which needs one optimizer param group per model (see :class:`Population`).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn
from torch.func import functional_call, vmap

from initlab.checks import check_positive
from initlab.malloc import one_arena
from initlab.mup import group_options
from initlab.training import slices, stacked, stacked_conv, stacked_nets
from initlab.training.settings import TrainSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Batch:
    """One training batch: ``x`` (B, ...) and ``y`` (B, ...) shared by every model, or with ``per_model`` one batch per
    group of N/G consecutive models, (G, B, ...) each, G dividing N (runs of different seeds see different batch
    orders; G = N gives every model its own)."""

    x: torch.Tensor
    y: torch.Tensor
    per_model: bool = False


@dataclass
class EpochStats:
    """Per-model sums over one epoch, as tensors of shape (N,) (no host sync until read)."""

    loss_sum: torch.Tensor
    correct: torch.Tensor
    samples: int
    grad_sq: dict[str, torch.Tensor]
    grad_samples: int

    def train_loss(self) -> list[float]:
        return (self.loss_sum / max(1, self.samples)).tolist()

    def train_acc(self) -> list[float]:
        return (self.correct / max(1, self.samples)).tolist()

    def grad_norms(self) -> dict[str, list[float]]:
        """Root mean square, over the sampled steps, of each parameter's gradient norm, per model."""
        return {k: (v / max(1, self.grad_samples)).sqrt().tolist() for k, v in self.grad_sq.items()}


class StackedPath(Protocol):
    """A fast path: runs a population of one architecture as stacked tensor operations, without ``vmap``.

    ``forward`` returns the N models' outputs (N, B, ...) for a shared batch (B, ...) or, with ``per_model``, one
    batch per group of N/G consecutive models (G, B, ...); in training mode it updates the stacked ``buffers``
    (batch norm's running statistics) in place, as the modules would, and draws dropout masks from ``masks``.
    ``compute`` (bf16) is the dtype of the matrix products and convolutions; parameters stay float32."""

    def supports(self, model: nn.Module) -> bool: ...

    def forward(
        self,
        model: nn.Module,
        params: dict[str, torch.Tensor],
        buffers: dict[str, torch.Tensor],
        x: torch.Tensor,
        *,
        per_model: bool,
        train: bool,
        masks: stacked.MaskSource | None = None,
        compute: torch.dtype | None = None,
    ) -> torch.Tensor: ...


#: The fast paths, tried in order: stacked MLPs, convolutional networks (plain and residual), residual MLPs and
#: transformers. A model none of them supports trains on the general ``vmap`` path.
FAST_PATHS: tuple[StackedPath, ...] = (stacked, stacked_conv, stacked_nets)


def fast_path(model: nn.Module) -> StackedPath | None:
    """The first fast path that supports ``model``'s architecture, or None (the ``vmap`` path)."""
    return next((path for path in FAST_PATHS if path.supports(model)), None)


#: The x86 CPU flags (``/proc/cpuinfo``) of instructions that compute bf16 products natively; without them torch
#: converts every bf16 operand to float32 and back.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags_have_bf16(cpuinfo: str) -> bool:
    """Whether a ``/proc/cpuinfo`` text lists any of :data:`BF16_CPU_FLAGS` on a ``flags`` line."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags") and any(f in line.split() for f in BF16_CPU_FLAGS):
            return True
    return False


@functools.cache
def cpu_has_bf16() -> bool | None:
    """Whether this machine's CPU has native bf16 instructions: None where that cannot be read (not Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            return cpu_flags_have_bf16(f.read())
    except OSError:
        return None


@functools.cache
def _warn_slow_bf16() -> None:
    """Once per process (a sweep builds many populations)."""
    log.warning(
        "bf16 on this CPU is slow: it has no bf16 instructions (%s in /proc/cpuinfo), so every bf16 matrix product is "
        "emulated (measured 0.3 GFLOP/s against 150 in float32 on an AVX2 AMD EPYC). Train in float32 here "
        "(--precision float32), or in bf16 on a GPU or a CPU with those instructions.",
        " or ".join(BF16_CPU_FLAGS),
    )


def _has_dropout(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.dropout._DropoutNd) for m in model.modules())


class Population:
    """N models of one architecture, stacked, with one optimizer; see the module docstring.

    ``models`` must share their architecture (same parameter names and shapes). They are copied; the originals are
    untouched. ``settings`` gives the optimizer, loss and precision; ``seed`` the dropout masks' (see :meth:`reseed`).

    **Learning rates per model** (:meth:`set_lr`). While every model has the same rate, the optimizer is the one
    over the stacked tensors, exactly as without ``set_lr`` (bit for bit). When the rates differ, the optimizer runs
    over per-model views instead: ``P.detach().unbind(0)`` of every stacked parameter, one param group per model
    holding that model's views with its own ``lr`` (one per distinct rate of its parameters, with per-parameter
    multipliers such as muP's), and before each step every view's ``.grad`` is bound to its
    slice of the stacked gradient (the views are leaves, as the optimizer requires, and write through to ``P``).
    Each model is then stepped by the very kernel and arithmetic that steps it in a population of one at its own
    rate (fused Adam/AdamW on the CPU and CUDA, foreach SGD and RMSprop), so a run's parameters and optimizer state
    do not depend on which population it trained in, and its state (:meth:`run_state`) has the same form either way.
    The other mechanism considered, one step at lr = 1 and then each model's update ``P_new - P_old`` scaled by its
    rate with foreach ops, would also hold for every optimizer here (each update is lr times an lr-free term) but
    rounds differently from a run trained alone and costs more: measured on the MNIST article network (12 models,
    one thread, AMD EPYC), the optimizer step took 2.8 ms over the stacked tensors, 3.4 ms over per-model views
    plus 0.08 ms to bind the gradients, and 9.3 ms (Adam) or 17.7 ms (SGD with momentum) stepped at lr = 1 and
    rescaled, against a whole training step of about 33 ms. ``benchmarks/bench_lr_population.py`` measures whole
    epochs: 12 different rates against one rate.
    """

    #: Gradient norms are sampled every this many steps (a full pass over every gradient each step costs ~3%).
    GRAD_SAMPLE_EVERY = 10

    def __init__(
        self,
        models: Sequence[nn.Module],
        settings: TrainSettings,
        *,
        device: torch.device | str = "cpu",
        seed: int = 0,
    ) -> None:
        if not models:
            raise ValueError("a population needs at least one model.")
        self.settings = settings
        self.device = torch.device(device)
        if settings.precision == "bf16" and self.device.type == "cpu" and cpu_has_bf16() is False:
            _warn_slow_bf16()
        names = [n for n, _ in models[0].named_parameters()]
        for i, m in enumerate(models[1:], 1):
            shapes0 = [(n, p.shape) for n, p in models[0].named_parameters()]
            if [(n, p.shape) for n, p in m.named_parameters()] != shapes0:
                raise ValueError(f"model {i} does not have the architecture of model 0; a population shares one.")
        # A stateless copy of the architecture to run functional_call on.
        self.base = copy.deepcopy(models[0]).to("meta")
        self.params: dict[str, torch.Tensor] = {
            n: torch.stack([dict(m.named_parameters())[n].detach() for m in models]).to(self.device).requires_grad_()
            for n in names
        }
        self.buffers: dict[str, torch.Tensor] = {
            n: torch.stack([dict(m.named_buffers())[n] for m in models]).to(self.device)
            for n, _ in models[0].named_buffers()
        }
        self.size = len(models)
        # Per-model views of every stacked parameter while the models' learning rates differ (see the class
        # docstring); None while they share one and the optimizer runs over the stacked tensors.
        self._views: dict[str, list[torch.Tensor]] | None = None
        self._start_optimizer([settings.lr] * self.size, [None] * self.size)
        self.dropout = _has_dropout(self.base)
        # The stacked fast path computes in float32; float64 models (exact reproductions) take the general path.
        float32 = all(p.dtype == torch.float32 for p in self.params.values())
        self.path = fast_path(self.base) if float32 else None
        self.fast = self.path is not None
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Draw the dropout masks from here on from ``seed``: an explicit :class:`~initlab.training.stacked.MaskSource`
        on the fast path; on the general path ``vmap`` draws from torch's default generator, which is seeded."""
        self.masks = stacked.MaskSource(seed, self.device)
        if self.dropout and not self.fast:
            torch.manual_seed(seed)

    # -- learning rates ------------------------------------------------------------------------------------------------
    @property
    def lrs(self) -> list[float]:
        """The base learning rate of every model, as last set (before any per-parameter multiplier)."""
        return list(self._rates)

    @property
    def multipliers(self) -> list[dict[str, float] | None]:
        """Every model's per-parameter learning-rate multipliers as last set; ``None``: all 1."""
        return [dict(m) if m is not None else None for m in self._mults]

    def set_lr(
        self, lr: float | Sequence[float], *, multipliers: Sequence[Mapping[str, float] | None] | None = None
    ) -> None:
        """Train every model at ``lr`` from the next step on, or model i at ``lr[i]`` (one rate per model, each finite
        and > 0). Called before each epoch (the schedule times each run's base rate). One rate for all, given as a
        number or as N equal ones, keeps the stacked optimizer; differing rates switch to per-model param groups,
        carrying the optimizer state over (see the class docstring).

        ``multipliers``: one ``{parameter name: factor}`` per model (or ``None`` for all 1; a name left out is 1),
        as a parametrization gives them (:meth:`initlab.mup.Parametrization.lr_multipliers`): parameter ``name`` of
        model i trains at ``lr[i] * multipliers[i][name]``, with weight decay coupled to the gradient divided by the
        factor (:func:`initlab.mup.group_options`). Kept until the next call that gives them."""
        if hasattr(lr, "tolist"):  # a NumPy or torch scalar or array
            lr = lr.tolist()
        if isinstance(lr, str) or not isinstance(lr, (Sequence, int, float)):
            raise TypeError(f"lr must be a number or a sequence of one per model, got {type(lr).__name__}.")
        if isinstance(lr, Sequence):
            if len(lr) != self.size:
                raise ValueError(f"lr must have one rate per model: {self.size} for this population, got {len(lr)}.")
            rates = [check_positive(f"lr[{i}]", v) for i, v in enumerate(lr)]
        else:
            rates = [check_positive("lr", lr)] * self.size
        mults = self._mults if multipliers is None else self._check_multipliers(multipliers)
        self._apply_rates(rates, mults)

    def _check_multipliers(self, multipliers: Sequence[Mapping[str, float] | None]) -> list[dict[str, float] | None]:
        if isinstance(multipliers, (str, Mapping)) or len(multipliers) != self.size:
            raise ValueError(f"multipliers must be a sequence of one {{name: factor}} (or None) per model: "
                             f"{self.size} for this population.")  # fmt: skip
        out: list[dict[str, float] | None] = []
        for i, m in enumerate(multipliers):
            if m is None:
                out.append(None)
                continue
            unknown = sorted(set(m) - set(self.params))
            if unknown:
                raise ValueError(f"multipliers[{i}] names {unknown[0]!r}, which is not a parameter of the models.")
            values = {name: check_positive(f"multipliers[{i}][{name!r}]", m.get(name, 1.0)) for name in self.params}
            out.append(None if all(v == 1.0 for v in values.values()) else values)
        return out

    def _group_layout(
        self, rates: Sequence[float], mults: Sequence[dict[str, float] | None]
    ) -> list[tuple[int | None, tuple[str, ...], dict[str, float]]]:
        """The optimizer's param groups for these rates: ``(model or None for the stacked tensors, parameter names,
        options)``, one group per distinct (lr, weight_decay) of a model, in parameter order."""
        optimizer, decay = self.settings.optimizer, self.settings.weight_decay
        rows = [
            {name: group_options(rate, decay, (m or {}).get(name, 1.0), optimizer) for name in self.params}
            for rate, m in zip(rates, mults, strict=True)
        ]
        shared = all(row == rows[0] for row in rows)
        layout: list[tuple[int | None, tuple[str, ...], dict[str, float]]] = []
        for i, row in enumerate(rows[:1] if shared else rows):
            by_options: dict[tuple[float, float], list[str]] = {}
            for name, options in row.items():
                by_options.setdefault((options["lr"], options["weight_decay"]), []).append(name)
            for (rate, wd), names in by_options.items():
                layout.append((None if shared else i, tuple(names), {"lr": rate, "weight_decay": wd}))
        return layout

    def _apply_rates(self, rates: Sequence[float], mults: Sequence[dict[str, float] | None]) -> None:
        """Set the rates and multipliers (checked), rebuilding the optimizer only when its groups change."""
        self._rates, self._mults = list(rates), list(mults)
        layout = self._group_layout(rates, mults)
        if [(i, names) for i, names, _ in layout] != self._layout_key:
            states = [self._optim_state(i) for i in range(self.size)]
            self._rebuild(layout)
            self._load_optim_states(states)
        for group, (_, _, options) in zip(self.optimizer.param_groups, layout, strict=True):
            group.update(options)

    def _start_optimizer(self, rates: Sequence[float], mults: Sequence[dict[str, float] | None]) -> None:
        """A fresh optimizer (no state) for these rates and multipliers."""
        self._rates, self._mults = list(rates), list(mults)
        layout = self._group_layout(rates, mults)
        self._rebuild(layout)
        for group, (_, _, options) in zip(self.optimizer.param_groups, layout, strict=True):
            group.update(options)

    def _rebuild(self, layout: Sequence[tuple[int | None, tuple[str, ...], dict[str, float]]]) -> None:
        """A new optimizer, without state, with the groups of ``layout`` over per-model views or the stacked tensors
        (the caller sets the groups' options and carries any state over)."""
        per_model = any(i is not None for i, _, _ in layout)
        self._views = {k: list(p.detach().unbind(0)) for k, p in self.params.items()} if per_model else None
        self._layout_key = [(i, names) for i, names, _ in layout]
        groups = [
            [self.params[n] if i is None else self._views[n][i] for n in names]  # type: ignore[index]
            for i, names, _ in layout
        ]
        self.optimizer = self.settings.make_optimizer(groups[0])
        for group in groups[1:]:
            self.optimizer.add_param_group({"params": group})

    def _step(self) -> None:
        """One optimizer step; with per-model groups, each view's ``.grad`` is its slice of the stacked gradient."""
        if self._views is None:
            self.optimizer.step()
            return
        for name, p in self.params.items():
            grads = p.grad.unbind(0) if p.grad is not None else [None] * self.size
            for view, grad in zip(self._views[name], grads, strict=True):
                view.grad = grad
        self.optimizer.step()
        for views in self._views.values():  # so the next backward pass does not keep this step's gradients alive
            for view in views:
                view.grad = None

    # -- forward ----------------------------------------------------------------------------------------------------
    def _call(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.base, (params, buffers), (x,))

    def forward(self, x: torch.Tensor, *, train: bool, per_model: bool = False) -> torch.Tensor:
        """Outputs of every model, shape (N, B, ...), for a shared batch ``x`` (B, ...) or, with ``per_model``, one
        batch per group of models (G, B, ...) (see :class:`Batch`)."""
        self.base.train(train)
        if self.path is not None:
            return self._stacked(self.params, self.buffers, x, train=train, per_model=per_model)
        with self._autocast():
            randomness = "different" if (train and self.dropout) else "error"
            if per_model:
                x = stacked.expand_groups(x, self.size)
            fn = vmap(self._call, in_dims=(0, 0, 0 if per_model else None), randomness=randomness)
            return fn(self.params, self.buffers, x)

    def _stacked(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], x: torch.Tensor, *,
                 train: bool, per_model: bool) -> torch.Tensor:  # fmt: skip
        """The fast path's forward pass of the models whose stacked ``params`` and ``buffers`` are given."""
        assert self.path is not None
        compute = torch.bfloat16 if self.settings.precision == "bf16" else None
        return self.path.forward(self.base, params, buffers, x, per_model=per_model, train=train, masks=self.masks,
                                 compute=compute)  # fmt: skip

    # -- slices of models in parallel threads (initlab.training.slices) ---------------------------------------------
    def _parts(self, batch: Batch) -> int:
        """How many slices of models run in parallel threads for batches like ``batch`` (see
        :mod:`initlab.training.slices`): one per intra-op thread on a path of ``SLICED_PATHS`` on the CPU, for models
        whose first convolution's output takes at least ``SLICE_MIN_BYTES`` per batch, without dropout (whose masks
        are drawn for the whole population at once), where every thread allocates from one malloc arena
        (:func:`initlab.malloc.one_arena`, which sets glibc's options for the process); otherwise 1, the whole."""
        threads = min(torch.get_num_threads(), self.size)
        if self.path not in slices.SLICED_PATHS or self.dropout or self.device.type != "cpu" or threads < 2:
            return 1
        if stacked_conv.batch_bytes(self.base, batch.x, per_model=batch.per_model) < slices.SLICE_MIN_BYTES:
            return 1
        return threads if one_arena() else 1

    def _sliced(self, parts: int) -> contextlib.AbstractContextManager[Callable | None]:
        """The map of :func:`~initlab.training.slices.one_thread_each` for ``parts`` slices, or None for one."""
        return slices.one_thread_each(parts) if parts > 1 else contextlib.nullcontext()

    def _slice(self, x: torch.Tensor, y: torch.Tensor, per_model: bool, a: int, b: int) -> tuple[torch.Tensor, ...]:
        """The batch of models a .. b-1: the shared one, or with ``per_model`` the groups that the slice covers."""
        if not per_model:
            return x, y
        size = self.size // x.shape[0]
        return x[a // size : (b - 1) // size + 1], y[a // size : (b - 1) // size + 1]

    def _grads(self, batch: Batch, run: Callable | None, parts: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Every model's loss on ``batch`` and its correct predictions, shapes (N,), detached; each parameter's
        ``.grad`` set to its gradient. With ``run``, slices of the models compute in parallel threads, each from its
        own leaves (views of the stacked parameters), whose gradients are then joined."""
        for p in self.params.values():  # zero_grad(set_to_none=True) without its profiler record per call
            p.grad = None
        if run is None:
            out = self.forward(batch.x, train=True, per_model=batch.per_model)
            losses = self.losses(out, batch.y, per_model=batch.per_model)
            losses.sum().backward()
            return losses.detach(), self.correct(out.detach(), batch.y, per_model=batch.per_model)
        groups = batch.x.shape[0] if batch.per_model else 1
        cut = slices.model_slices(self.size, groups, parts)
        leaves = [{k: p.detach()[a:b].requires_grad_() for k, p in self.params.items()} for a, b in cut]
        self.base.train(True)

        def part(i: int) -> tuple[torch.Tensor, torch.Tensor]:
            a, b = cut[i]
            x, y = self._slice(batch.x, batch.y, batch.per_model, a, b)
            buffers = {k: v[a:b] for k, v in self.buffers.items()}
            out = self._stacked(leaves[i], buffers, x, train=True, per_model=batch.per_model)
            losses = self.losses(out, y, per_model=batch.per_model)
            losses.sum().backward()
            return losses.detach(), self.correct(out.detach(), y, per_model=batch.per_model)

        results = run(part, len(cut))
        for k, p in self.params.items():
            grads = [leaf[k].grad for leaf in leaves]
            p.grad = None if any(g is None for g in grads) else torch.cat(grads)
        return torch.cat([r[0] for r in results]), torch.cat([r[1] for r in results])

    def _autocast(self) -> contextlib.AbstractContextManager[None]:
        if self.settings.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _targets(self, out: torch.Tensor, y: torch.Tensor, per_model: bool) -> torch.Tensor:
        """Targets broadcast to one row per model, (N, B, ...); class labels one-hot encoded for MSE."""
        yy = stacked.expand_groups(y if per_model else y.unsqueeze(0), out.shape[0])
        if self.settings.loss == "mse" and not yy.is_floating_point():
            yy = nn.functional.one_hot(yy, out.shape[-1])
        return yy

    def losses(self, out: torch.Tensor, y: torch.Tensor, *, per_model: bool = False) -> torch.Tensor:
        """Each model's mean loss over the batch, shape (N,); computed in float32, or float64 for float64 models."""
        out = out if out.dtype == torch.float64 else out.float()
        n, b = out.shape[0], out.shape[1]
        yy = self._targets(out, y, per_model)
        if self.settings.loss == "cross_entropy":
            per = nn.functional.cross_entropy(out.reshape(n * b, -1), yy.reshape(n * b), reduction="none")
            return per.view(n, b).mean(dim=1)
        target = yy.to(out.dtype).reshape(out.shape)
        if self.settings.loss == "bce":
            per = nn.functional.binary_cross_entropy_with_logits(out, target, reduction="none")
        else:
            per = nn.functional.mse_loss(out, target, reduction="none")
        return per.reshape(n, -1).mean(dim=1)

    @torch.no_grad()
    def correct(self, out: torch.Tensor, y: torch.Tensor, *, per_model: bool = False) -> torch.Tensor:
        """Correct predictions per model, shape (N,), as floats: the argmax for class labels (cross-entropy, or MSE on
        labels), the sign of each logit against a 0/1 target for BCE (averaged over a sample's outputs). For MSE on
        float targets (regression) accuracy is undefined and NaN is returned."""
        n, b = out.shape[0], out.shape[1]
        yy = stacked.expand_groups(y if per_model else y.unsqueeze(0), n)
        if self.settings.loss == "bce":
            hit = (out > 0) == (yy.reshape(out.shape) > 0.5)
            return hit.reshape(n, b, -1).float().mean(dim=-1).sum(dim=1)
        if yy.is_floating_point():
            return torch.full((n,), float("nan"), device=out.device)
        return (out.argmax(dim=-1) == yy).reshape(n, -1).float().sum(dim=1)

    # -- training ----------------------------------------------------------------------------------------------------
    def train_epoch(self, batches: Iterable[Batch], *, max_steps: int | None = None) -> tuple[EpochStats, int]:
        """Train on every batch (or the first ``max_steps``); return the epoch's stats and the steps taken."""
        n = self.size
        loss_sum = torch.zeros(n, device=self.device)
        correct = torch.zeros(n, device=self.device)
        grad_sq = {k: torch.zeros(n, device=self.device) for k in self.params}
        samples = steps = sampled = 0
        batches = iter(batches)
        first = next(batches, None)
        parts = 1 if first is None else self._parts(first)
        with self._sliced(parts) as run:
            for batch in itertools.chain([first] if first is not None else [], batches):
                if max_steps is not None and steps >= max_steps:
                    break
                per_model, hits = self._grads(batch, run, parts)
                if steps % self.GRAD_SAMPLE_EVERY == 0:
                    with torch.no_grad():
                        for k, p in self.params.items():
                            norms = torch.linalg.vector_norm(p.grad.reshape(self.size, -1), dim=1)
                            grad_sq[k] += norms.float().square()
                    sampled += 1
                self._step()
                b = batch.x.shape[1 if batch.per_model else 0]
                loss_sum += per_model * b
                correct += hits
                samples += b
                steps += 1
        return EpochStats(loss_sum, correct, samples, grad_sq, sampled), steps

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 2000) -> tuple[list[float], list[float]]:
        """Mean loss and accuracy of every model on (x, y), in eval mode (dropout off)."""
        n = self.size
        loss_sum = torch.zeros(n, device=self.device)
        correct = torch.zeros(n, device=self.device)
        for start in range(0, x.shape[0], batch_size):
            xb = x[start : start + batch_size].to(self.device)
            yb = y[start : start + batch_size].to(self.device)
            out = self.forward(xb, train=False)
            loss_sum += self.losses(out, yb) * xb.shape[0]
            correct += self.correct(out, yb)
        total = max(1, x.shape[0])
        return (loss_sum / total).tolist(), (correct / total).tolist()

    @torch.no_grad()
    def weight_norms(self) -> dict[str, list[float]]:
        """The Frobenius norm of every parameter, per model."""
        return {k: p.detach().reshape(self.size, -1).float().norm(dim=1).tolist() for k, p in self.params.items()}

    # -- membership and state ------------------------------------------------------------------------------------------
    def keep(self, indices: Sequence[int]) -> None:
        """Keep only the models at ``indices`` (e.g. drop diverged runs), with their optimizer state and rates."""
        indices = list(indices)
        rates = [self._rates[i] for i in indices]
        mults = [self._mults[i] for i in indices]
        states = [self.run_state(i) for i in indices]
        idx = torch.as_tensor(indices, dtype=torch.long, device=self.device)
        self.params = {k: p.detach()[idx].clone().requires_grad_() for k, p in self.params.items()}
        self.buffers = {k: b[idx].clone() for k, b in self.buffers.items()}
        self.size = len(indices)
        self._start_optimizer(rates, mults)
        if states:
            self.load_run_states(states)

    def run_state(self, i: int) -> dict[str, dict[str, torch.Tensor]]:
        """Model ``i``'s parameters, buffers and optimizer state, as CPU tensors (for a per-run checkpoint). The same
        form whether the population steps its models together or per model (different learning rates)."""
        optim = {
            name: {key: v.detach().cpu().clone() if torch.is_tensor(v) else torch.tensor(v) for key, v in state.items()}
            for name, state in self._optim_state(i).items()
        }
        return {
            "params": {k: p.detach()[i].cpu().clone() for k, p in self.params.items()},
            "buffers": {k: b[i].cpu().clone() for k, b in self.buffers.items()},
            "optim": optim,
        }

    def _optim_state(self, i: int) -> dict[str, dict[str, object]]:
        """Model ``i``'s optimizer state by parameter name: slices of the stacked state, or its views' own state."""
        out: dict[str, dict[str, object]] = {}
        for name, p in self.params.items():
            if self._views is not None:
                out[name] = dict(self.optimizer.state.get(self._views[name][i], {}))
                continue
            state = self.optimizer.state.get(p, {})
            # Per-model tensors have the parameter's stacked shape; scalars (Adam's step) are shared.
            out[name] = {k: v[i] if torch.is_tensor(v) and v.shape == p.shape else v for k, v in state.items()}
        return out

    def load_run_states(self, states: Sequence[dict[str, dict[str, torch.Tensor]]]) -> None:
        """Replace every model's parameters, buffers and optimizer state with ``states`` (one per model, in order)."""
        if len(states) != self.size:
            raise ValueError(f"got {len(states)} run states for a population of {self.size}.")
        with torch.no_grad():
            for k, p in self.params.items():
                p.copy_(torch.stack([s["params"][k] for s in states]).to(self.device))
            for k, b in self.buffers.items():
                b.copy_(torch.stack([s["buffers"][k] for s in states]).to(self.device))
        self._load_optim_states([s["optim"] for s in states])

    def _load_optim_states(self, optims: Sequence[dict[str, dict[str, object]]]) -> None:
        """Set the optimizer state from one state per model (as :meth:`_optim_state` gives), copying every tensor."""
        for name, p in self.params.items():
            keys = optims[0].get(name, {}) if optims else {}
            if not keys:
                continue
            if self._views is not None:
                for view, optim in zip(self._views[name], optims, strict=True):
                    self.optimizer.state[view] = {
                        key: self._state_tensor(key, torch.as_tensor(v)) for key, v in optim[name].items()
                    }
                continue
            new_state: dict[str, torch.Tensor] = {}
            for key, v0 in keys.items():
                v0 = torch.as_tensor(v0)
                if v0.dim() > 0:
                    new_state[key] = torch.stack([torch.as_tensor(o[name][key]) for o in optims]).to(self.device)
                else:
                    # Scalar state (Adam's step) is the same for all models trained in lockstep.
                    new_state[key] = self._state_tensor(key, v0)
            self.optimizer.state[p] = new_state

    def _state_tensor(self, key: str, v: torch.Tensor) -> torch.Tensor:
        """A copy of ``v`` (never the caller's tensor, which the optimizer would update in place) on the device its
        optimizer keeps it on: the population's, but an integer step stays on the CPU unless the optimizer is fused
        (whose kernel reads the step on the parameters' device)."""
        on_cpu = key == "step" and not v.is_floating_point() and not self._fused()
        return v.detach().to(torch.device("cpu") if on_cpu else self.device, copy=True)

    def _fused(self) -> bool:
        return any(g.get("fused") for g in self.optimizer.param_groups)

    def export(self, i: int, model: nn.Module) -> nn.Module:
        """Load model ``i``'s parameters and buffers into ``model`` (an instance of the architecture) and return it."""
        state = self.run_state(i)
        model.load_state_dict({**state["params"], **state["buffers"]}, strict=True)
        return model
