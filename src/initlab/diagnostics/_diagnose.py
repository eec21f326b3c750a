"""``diagnose``: per-layer statistics of a model on one batch, the whole-model figures, and the findings; and
``compare_diagnoses``: several schemes side by side for one model."""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from initlab.diagnostics._findings import THRESHOLDS, Finding, find, per_layer_factor, signal_chain
from initlab.diagnostics._stats import (
    LayerStats,
    LossFn,
    check_inputs,
    gradients,
    layer_stats,
    record,
    resolve_loss,
)
from initlab.diagnostics.format import fmt, pct
from initlab.diagnostics.jacobian import ISOMETRY_BAND, JacobianStats, jacobian_spectrum
from initlab.fileio import json_safe
from initlab.tracing import ModelInput, inspection

if TYPE_CHECKING:  # rich is imported when a table is drawn, so that importing initlab.diagnostics stays light
    from rich.console import RenderableType
    from rich.table import Table
    from rich.text import Text

logger = logging.getLogger("initlab.diagnostics")

_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow"}


@dataclass(frozen=True)
class Diagnosis:
    """Per-layer statistics of one model on one batch, the whole-model figures, and the findings.

    ``signal_ratio`` is the last layer's pre-activation std over the input's std and ``signal_factor`` the
    per-layer factor that compounds to it. With targets: ``grad_norm_ratio`` is ‖∂loss/∂W‖ of the first layer over
    the last's, ``grad_ratio`` the std of ∂loss/∂output at the first layer over that at the last (the
    backpropagated signal, which the gradient findings test) and ``grad_factor`` its per-layer factor. ``jacobian``
    is the input-output Jacobian's spectrum
    (``None`` when skipped, with the reason in ``notes``). ``seconds`` is the wall-clock time the diagnosis took.
    """

    layers: tuple[LayerStats, ...]
    findings: tuple[Finding, ...]
    batch: int
    input_std: float | None
    signal_ratio: float | None
    signal_factor: float | None
    loss_name: str | None
    loss: float | None
    grad_norm_ratio: float | None
    grad_ratio: float | None
    grad_factor: float | None
    jacobian: JacobianStats | None
    notes: tuple[str, ...]
    seconds: float
    label: str | None = None

    def finding(self, kind: str) -> Finding | None:
        """The finding of this kind, or ``None``."""
        return next((f for f in self.findings if f.kind == kind), None)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds of the findings, in order."""
        return tuple(f.kind for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record (non-finite numbers become ``None``), with the thresholds that produced the findings."""
        return {
            "label": self.label,
            "batch": self.batch,
            "input_std": json_safe(self.input_std),
            "signal_ratio": json_safe(self.signal_ratio),
            "signal_factor": json_safe(self.signal_factor),
            "loss_name": self.loss_name,
            "loss": json_safe(self.loss),
            "grad_norm_ratio": json_safe(self.grad_norm_ratio),
            "grad_ratio": json_safe(self.grad_ratio),
            "grad_factor": json_safe(self.grad_factor),
            "jacobian": self.jacobian.to_dict() if self.jacobian is not None else None,
            "layers": [layer.to_dict() for layer in self.layers],
            "findings": [f.to_dict() for f in self.findings],
            "notes": list(self.notes),
            "thresholds": dict(THRESHOLDS),
            "seconds": self.seconds,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def table(self) -> Table:
        """The per-layer statistics as a rich table."""
        from rich.markup import escape
        from rich.table import Table

        grads = any(layer.grad_weight_std is not None for layer in self.layers)
        title = "diagnosis" + (f" of {self.label}" if self.label else "") + f" on a batch of {self.batch}"
        table = Table(title=escape(title))
        columns = [
            ("#", "right"),
            ("layer", "left"),
            ("act", "left"),
            ("units", "right"),
            ("pre std", "right"),
            ("mean", "right"),
            ("std", "right"),
            ("sat %", "right"),
            ("dead %", "right"),
            ("dup", "right"),
        ]
        if grads:
            columns += [("∂out std", "right"), ("∂W std", "right")]
        for name, justify in columns:
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for layer in self.layers:
            row = [
                str(layer.index),
                escape(f"{layer.name} {layer.module_type}"),
                escape(layer.activation),
                str(layer.units),
                fmt(layer.pre_std),
                fmt(layer.mean),
                fmt(layer.std),
                pct(layer.saturated),
                pct(layer.dead),
                str(layer.duplicates) if layer.duplicates else "",
            ]
            if grads:
                row += [fmt(layer.grad_output_std), fmt(layer.grad_weight_std)]
            table.add_row(*row)
        return table

    def summary(self) -> Text:
        """The whole-model figures in one block of text."""
        from rich.text import Text

        lines = [
            f"signal: last/input std {fmt(self.signal_ratio)}, per-layer factor {fmt(self.signal_factor)}",
        ]
        if self.grad_norm_ratio is not None:
            lines.append(
                f"gradients ({self.loss_name} loss {fmt(self.loss)}): first/last layer std of ∂out "
                f"{fmt(self.grad_ratio)} (per-layer factor {fmt(self.grad_factor)}), "
                f"of ‖∂W‖ {fmt(self.grad_norm_ratio)}"
            )
        if self.jacobian is not None:
            j = self.jacobian
            low, high = ISOMETRY_BAND
            lines.append(
                f"Jacobian ({j.outputs}×{j.inputs}, {j.samples} samples): mean σ² {fmt(j.mean_sq)}, max σ "
                f"{fmt(j.max)}, {100 * j.within:.0f}% of σ in [{low:g}, {high:g}], std of log σ {fmt(j.log_std)}"
            )
        lines += list(self.notes)
        lines.append(f"({self.seconds:.2f} s)")
        return Text("\n".join(lines))

    def findings_renderable(self) -> RenderableType:
        """The findings as text: severity, message, suggestion."""
        from rich.console import Group
        from rich.text import Text

        if not self.findings:
            return Text("no findings: nothing looks wrong with this initialization on this batch.", style="green")
        parts: list[RenderableType] = []
        for f in self.findings:
            text = Text()
            text.append(f"{f.severity.upper()} ", style=_SEVERITY_STYLE[f.severity])
            text.append(f"[{f.kind}] ", style="bold")
            text.append(f.message)
            text.append("\n  → " + f.suggestion, style="cyan")
            parts.append(text)
        return Group(*parts)

    def __rich__(self) -> RenderableType:
        from rich.console import Group

        return Group(self.table(), self.summary(), self.findings_renderable())

    def __str__(self) -> str:
        from rich.console import Console

        console = Console(width=140, record=True, file=_NullFile(), color_system=None)
        console.print(self)
        return console.export_text()


class _NullFile:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def _first_over_last(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    if len(present) < 2:
        return None
    first, last = present[0], present[-1]
    return first / last if last > 0 else (math.inf if first > 0 else math.nan)


def _input_std(inputs: ModelInput) -> float | None:
    if isinstance(inputs, torch.Tensor) and inputs.is_floating_point() and inputs.numel() > 1:
        return float(inputs.detach().float().std(correction=0))
    return None


def diagnose(
    model: nn.Module,
    inputs: ModelInput,
    *,
    targets: torch.Tensor | None = None,
    loss: str | LossFn | None = None,
    jacobian: bool = True,
    label: str | None = None,
) -> Diagnosis:
    """Diagnose ``model``'s current initialization on one batch.

    One forward pass in eval mode (dropout off) records, for each layer in call order (see
    :mod:`initlab.diagnostics._stats` for what a layer and a unit are), the output's mean and std, the
    pre-activation's std, the fraction of saturated tanh/sigmoid outputs, the fraction of dead ReLU units and the
    number of duplicate units. With ``targets``, one backward pass adds the std of ∂loss/∂output and ∂loss/∂weight
    per layer and the ratio of the first layer's ‖∂loss/∂W‖ to the last's. With ``jacobian`` (default) and a single
    input tensor, the singular values of ∂f(x)/∂x over up to ``JACOBIAN_SAMPLES`` samples, when one sample's
    Jacobian has at most ``JACOBIAN_MAX_ENTRIES`` entries (:mod:`initlab.diagnostics.jacobian`). The findings
    follow the documented thresholds of :mod:`initlab.diagnostics._findings`.

    Args:
        model: any ``torch.nn.Module``; left as it was (modes, parameters, their ``.grad``, the random state).
        inputs: a batch of at least 2 samples: a tensor, a tuple/list of positional inputs or a dict of keyword
            inputs, of the dtype and shape the model takes.
        targets: labels (int64, for cross-entropy) or float targets, one per sample; ``None`` skips gradients.
        loss: ``"cross_entropy"``, ``"mse"``, ``"bce"`` or a callable ``(output, targets) -> scalar``; ``None``
            picks cross-entropy for integer targets and MSE for float targets.
        jacobian: compute the Jacobian spectrum when the model is small enough.
        label: a name for this diagnosis (the scheme, say), shown in the table and stored in ``to_dict()``.

    Raises:
        TypeError: ``model`` is not a module, or ``inputs`` have a form or dtype the model cannot take.
        ValueError: fewer than 2 samples, inputs of a shape the model cannot take (the message says what it
            expects), or targets that do not match the batch.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    start = time.perf_counter()
    batch = check_inputs(model, inputs)
    loss_name, loss_fn = _loss_for(loss, targets, batch)
    layers, loss_value, jac, notes = _measure(model, inputs, targets, loss_name, loss_fn, jacobian=jacobian)
    input_std = _input_std(inputs)
    figures = _model_figures(layers, input_std)
    findings = tuple(find(layers, input_std, figures["grad_ratio"]))
    for f in findings:
        logger.info("diagnose: %s %s in %s", f.severity, f.kind, ", ".join(f.layers))
    return Diagnosis(
        layers=layers,
        findings=findings,
        batch=batch,
        input_std=input_std,
        loss_name=loss_name,
        loss=loss_value,
        jacobian=jac,
        notes=tuple(notes),
        seconds=time.perf_counter() - start,
        label=label,
        **figures,
    )


def _loss_for(loss: str | LossFn | None, targets: torch.Tensor | None, batch: int) -> tuple[str | None, LossFn | None]:
    """The loss's name and function, after checking that ``targets`` fit the batch; ``(None, None)`` without
    targets."""
    if targets is None:
        if loss is not None:
            raise ValueError("loss was given without targets; pass targets= too (gradients need both).")
        return None, None
    if not isinstance(targets, torch.Tensor):
        raise TypeError(f"targets must be a tensor, got {type(targets).__name__}.")
    if targets.dim() == 0 or targets.shape[0] != batch:
        raise ValueError(
            f"targets of shape {tuple(targets.shape)} do not match the batch of {batch} inputs: give one target "
            "per sample along dimension 0."
        )
    return resolve_loss(loss, targets)


def _measure(
    model: nn.Module,
    inputs: ModelInput,
    targets: torch.Tensor | None,
    loss_name: str | None,
    loss_fn: LossFn | None,
    *,
    jacobian: bool,
) -> tuple[tuple[LayerStats, ...], float | None, JacobianStats | None, list[str]]:
    """One forward pass (and one backward pass with a loss), in eval mode with the model left as it was: each
    layer's statistics, the loss, the Jacobian spectrum, and notes on what was skipped."""
    notes: list[str] = []
    grads_by_layer: list[tuple[torch.Tensor | None, torch.Tensor | None]]
    loss_value: float | None = None
    jac: JacobianStats | None = None
    with inspection(model, grad=True):
        output, recorded = record(model, inputs)
        if loss_fn is not None and targets is not None:
            try:
                loss_value, grads_by_layer = gradients(output, recorded, targets, loss_fn)
            except (RuntimeError, IndexError) as err:
                raise ValueError(
                    f"the {loss_name} loss failed on the model's output of shape "
                    f"{tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__} and targets "
                    f"of shape {tuple(targets.shape)} and dtype {targets.dtype}: {err}"
                ) from err
        else:
            grads_by_layer = [(None, None)] * len(recorded)
        layers = tuple(
            layer_stats(i, layer, g_out, g_w)
            for i, (layer, (g_out, g_w)) in enumerate(zip(recorded, grads_by_layer, strict=True))
        )
        del recorded, grads_by_layer
        if jacobian:
            jac, note = jacobian_spectrum(model, inputs, output)
            if note:
                notes.append(note)
        del output
    if not layers:
        notes.append("no Linear, Bilinear, Conv or ConvTranspose layer was called by the forward pass.")
    return layers, loss_value, jac, notes


def _model_figures(layers: tuple[LayerStats, ...], input_std: float | None) -> dict[str, float | None]:
    """The whole-model figures of :class:`Diagnosis`: the signal's and the gradient's first/last ratios and their
    per-layer factors (see :func:`initlab.diagnostics._findings.per_layer_factor`)."""
    ref, ratios = signal_chain(layers, input_std)
    signal_ratio = ratios[-1] if layers and math.isfinite(ref) else None
    grad_ratio = _first_over_last([layer.grad_output_std for layer in layers])
    steps = sum(layer.grad_output_std is not None for layer in layers) - 1
    return {
        "signal_ratio": signal_ratio,
        "signal_factor": per_layer_factor(signal_ratio, len(layers)) if signal_ratio is not None else None,
        "grad_norm_ratio": _first_over_last([layer.grad_weight_norm for layer in layers]),
        "grad_ratio": grad_ratio,
        "grad_factor": per_layer_factor(grad_ratio, steps) if grad_ratio is not None else None,
    }


# -- several schemes side by side ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Comparison:
    """Diagnoses of one model under several schemes, in the order given."""

    diagnoses: tuple[Diagnosis, ...]
    seed: int

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(d.label or str(i) for i, d in enumerate(self.diagnoses))

    def __getitem__(self, label: str) -> Diagnosis:
        for d in self.diagnoses:
            if d.label == label:
                return d
        raise KeyError(f"no diagnosis labelled {label!r}; have {', '.join(map(repr, self.labels))}.")

    def to_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "schemes": list(self.labels), "diagnoses": [d.to_dict() for d in self.diagnoses]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def table(self) -> Table:
        """One row per scheme: the whole-model figures and the findings."""
        from rich.markup import escape
        from rich.table import Table
        from rich.text import Text

        table = Table(title=f"initializations compared (seed {self.seed})")
        for name, justify in [
            ("scheme", "left"),
            ("signal factor/layer", "right"),
            ("last/input std", "right"),
            ("∂out first/last", "right"),
            ("J mean σ²", "right"),
            ("σ in [0.5, 2]", "right"),
            ("max sat %", "right"),
            ("max dead %", "right"),
            ("dup units", "right"),
            ("findings", "left"),
        ]:
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for label, d in zip(self.labels, self.diagnoses, strict=True):
            sats = [layer.saturated for layer in d.layers if layer.saturated is not None]
            deads = [layer.dead for layer in d.layers if layer.dead is not None]
            findings = Text()
            for f in d.findings:
                findings.append(f"{f.kind} ", style=_SEVERITY_STYLE[f.severity])
            table.add_row(
                escape(label),
                fmt(d.signal_factor),
                fmt(d.signal_ratio),
                fmt(d.grad_ratio),
                fmt(d.jacobian.mean_sq) if d.jacobian else "-",
                f"{100 * d.jacobian.within:.0f}%" if d.jacobian else "-",
                pct(max(sats)) if sats else "-",
                pct(max(deads)) if deads else "-",
                str(sum(layer.duplicates for layer in d.layers)),
                findings if d.findings else Text("none", style="green"),
            )
        return table

    def layers_table(self) -> Table:
        """Each layer's pre-activation std under each scheme."""
        from rich.markup import escape
        from rich.table import Table

        table = Table(title="pre-activation std by layer")
        table.add_column("layer")
        for label in self.labels:
            table.add_column(escape(label), justify="right")
        rows = max((len(d.layers) for d in self.diagnoses), default=0)
        for i in range(rows):
            name = next(d.layers[i].name for d in self.diagnoses if i < len(d.layers))
            table.add_row(
                escape(name), *(fmt(d.layers[i].pre_std) if i < len(d.layers) else "-" for d in self.diagnoses)
            )
        return table

    def __rich__(self) -> RenderableType:
        from rich.console import Group

        return Group(self.layers_table(), self.table())

    def __str__(self) -> str:
        from rich.console import Console

        console = Console(width=160, record=True, file=_NullFile(), color_system=None)
        console.print(self)
        return console.export_text()


def _scheme_label(scheme: Any) -> str:
    if isinstance(scheme, str):
        return scheme
    name = getattr(scheme, "name", None)
    return name if isinstance(name, str) else repr(scheme)


def compare_diagnoses(
    model: nn.Module | Callable[[], nn.Module],
    schemes: Sequence[Any] | Mapping[str, Any],
    inputs: ModelInput,
    *,
    targets: torch.Tensor | None = None,
    loss: str | LossFn | None = None,
    seed: int = 0,
    jacobian: bool = True,
) -> Comparison:
    """Diagnose one model under each scheme: a fresh copy per scheme (``copy.deepcopy`` of a model, or a new call of
    a zero-argument factory), initialized with :func:`initlab.initialize` and the same ``seed``.

    ``schemes`` is a sequence of anything ``initialize`` takes (labelled by their name or ``repr``) or a mapping of
    label to scheme. ``inputs`` also serve as the data of data-dependent schemes ("auto", "lsuv"). The model given
    is not changed. A scheme name with a typo raises ``ValueError`` with the closest match.
    """
    from initlab.schemes import initialize

    items = list(schemes.items()) if isinstance(schemes, Mapping) else [(_scheme_label(s), s) for s in schemes]
    if not items:
        raise ValueError("schemes is empty: give at least one scheme, e.g. ['auto', 'glorot_uniform', 'zeros'].")
    if isinstance(model, nn.Module):

        def make() -> nn.Module:
            return copy.deepcopy(model)

    elif callable(model):

        def make() -> nn.Module:
            built = model()
            if not isinstance(built, nn.Module):
                raise TypeError(f"the model factory returned {type(built).__name__}, not a torch.nn.Module.")
            return built

    else:
        raise TypeError(f"model must be a torch.nn.Module or a zero-argument factory, got {type(model).__name__}.")
    diagnoses = []
    for label, scheme in items:
        copy_ = make()
        initialize(copy_, scheme, seed=seed, data=inputs)
        diagnoses.append(diagnose(copy_, inputs, targets=targets, loss=loss, jacobian=jacobian, label=label))
    return Comparison(tuple(diagnoses), seed)
