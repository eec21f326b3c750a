"""The spectrum of a model's input-output Jacobian ∂f(x)/∂x at the initialization: how far it is from an isometry.

A network whose Jacobian has all its singular values near 1 (*dynamical isometry*) passes signals and gradients
through every layer unchanged in size; a spectrum spread over orders of magnitude amplifies some directions and
erases others, however good the per-layer variances look (Saxe et al. 2014; Pennington et al. 2017, "Resurrecting
the sigmoid in deep learning through dynamical isometry"). :func:`jacobian_spectrum` computes the singular values for
a few samples of a batch; :class:`JacobianStats` summarizes them and keeps them for plotting.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from initlab.fileio import json_safe
from initlab.tracing import ModelInput, first_tensor

#: The input-output Jacobian is computed for at most this many samples of the batch (its spectrum is averaged over
#: them): the singular values of a deep net's Jacobian vary little from input to input (Pennington et al. 2017).
JACOBIAN_SAMPLES = 8
#: ... and only when one sample's Jacobian has at most this many entries (outputs × inputs; 4 MiB in float32).
#: Reverse mode costs one backward pass per output, and the SVD O(min(m, n)² max(m, n)); above the limit the
#: spectrum is skipped with a note.
JACOBIAN_MAX_ENTRIES = 1 << 20
#: Singular values within [0.5, 2] count as "near 1" (dynamical isometry: Saxe et al. 2014, Pennington et al. 2017).
ISOMETRY_BAND = (0.5, 2.0)
#: At most this many singular values are kept in :class:`JacobianStats` (8 samples × 256 outputs); above it, evenly
#: spaced order statistics of the sorted values, which keep the spectrum's shape and both extremes.
JACOBIAN_MAX_SINGULAR_VALUES = 2048


@dataclass(frozen=True)
class JacobianStats:
    """The singular values of the input-output Jacobian ∂f(x)/∂x, pooled over ``samples`` inputs.

    ``mean_sq`` is the mean squared singular value (1/n · tr JJᵀ), ``max``/``min`` the extremes, ``within`` the
    fraction in :data:`ISOMETRY_BAND`, and ``log_std`` the std of their natural logarithms, a scale-free measure
    of spread (0 for an isometry). ``singular_values`` are the values themselves, in ascending order, for plotting
    the spectrum: all of them up to :data:`JACOBIAN_MAX_SINGULAR_VALUES`, evenly spaced order statistics above.
    """

    samples: int
    outputs: int
    inputs: int
    mean_sq: float
    max: float
    min: float
    within: float
    log_std: float
    singular_values: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record: non-finite numbers become ``None``, the singular values a list."""
        return json_safe(asdict(self))


def jacobian_spectrum(model: nn.Module, inputs: ModelInput, output: Any) -> tuple[JacobianStats | None, str | None]:
    """Singular values of ∂f(x)/∂x for up to :data:`JACOBIAN_SAMPLES` samples, or ``None`` and why not."""
    out = first_tensor(output)
    if not isinstance(inputs, torch.Tensor) or out is None or out.shape[:1] != inputs.shape[:1]:
        return None, "Jacobian skipped: it needs one input tensor and one output tensor with the same batch dimension."
    if not inputs.is_floating_point():
        return None, "Jacobian skipped: the inputs are not floating point (no derivative with respect to them)."
    n_in = math.prod(inputs.shape[1:])
    n_out = math.prod(out.shape[1:])
    if n_in * n_out > JACOBIAN_MAX_ENTRIES:
        return None, (
            f"Jacobian skipped: one sample's Jacobian has {n_out} × {n_in} = {n_out * n_in:,} entries, above the "
            f"limit of {JACOBIAN_MAX_ENTRIES:,} (JACOBIAN_MAX_ENTRIES)."
        )
    xs = inputs[:JACOBIAN_SAMPLES].detach().clone().requires_grad_(True)
    # Reverse mode, one backward pass per output over all the samples at once: row j of every sample's Jacobian is
    # ∂(Σ_i f(x_i)_j)/∂x, as samples do not interact in eval mode. (torch.func.jacrev would do the same, but its
    # first use imports torch._dynamo, which takes seconds.)
    ys = first_tensor(model(xs)).reshape(len(xs), -1)  # type: ignore[union-attr]
    if not ys.requires_grad:
        return None, "Jacobian skipped: the output does not depend differentiably on the inputs."
    rows = []
    for j in range(n_out):
        (g,) = torch.autograd.grad(ys[:, j].sum(), xs, retain_graph=j < n_out - 1, allow_unused=True)
        rows.append(torch.zeros_like(xs) if g is None else g)
    jac = torch.stack(rows, dim=1)  # (samples, outputs, *input shape)
    sv = torch.linalg.svdvals(jac.detach().reshape(len(xs), n_out, n_in).double()).reshape(-1)
    low, high = ISOMETRY_BAND
    positive = sv[sv > 0]
    return (
        JacobianStats(
            samples=len(xs),
            outputs=n_out,
            inputs=n_in,
            mean_sq=float((sv**2).mean()),
            max=float(sv.max()),
            min=float(sv.min()),
            within=float(((sv >= low) & (sv <= high)).double().mean()),
            log_std=float(positive.log().std(correction=0)) if positive.numel() > 1 else float("nan"),
            singular_values=_capped(sv),
        ),
        None,
    )


def _capped(sv: torch.Tensor, limit: int | None = None) -> tuple[float, ...]:
    """``sv`` sorted ascending; above ``limit`` values, that many evenly spaced order statistics (min and max kept)."""
    limit = JACOBIAN_MAX_SINGULAR_VALUES if limit is None else limit
    ordered = sv.detach().double().cpu()
    ordered = ordered[torch.isfinite(ordered)].sort().values  # JSON has no NaN or infinity
    if ordered.numel() > limit:
        ordered = ordered[torch.linspace(0, ordered.numel() - 1, limit).round().long()]
    return tuple(float(v) for v in ordered)
