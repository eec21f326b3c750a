"""``isometry``: Pennington, Schoenholz and Ganguli (2017), "Resurrecting the sigmoid in deep learning through
dynamical isometry: theory and practice" (NeurIPS), figure 1 / section 5: at depth 32, the input-output Jacobian of a
critical tanh network with orthogonal weights has its singular values concentrated near 1, while Gaussian weights
(at the same critical point) and ReLU networks (He-initialized, critical too) spread them over orders of magnitude.

Setup: three plain MLPs of :data:`DEPTH` = 32 square weight layers of width :data:`WIDTH` (``initlab.models.build``
``mlp:W,...,W`` with 31 hidden layers and a ``W``-unit linear output, so J = W₃₂ D₃₁ W₃₁ ⋯ D₁ W₁), zero biases:

- ``tanh + orthogonal``: ``Orthogonal(gain=1.02)``, inputs x ~ N(0, 0.14²) per coordinate. With σ_b = 0 and
  σ_w = 1.02 the mean-field fixed point is q* ≈ 0.019 (pre-activation std ≈ 0.14, where the inputs start), and
  χ = σ_w² E[tanh'(h)²] ≈ 1: the paper's critical, small-q* regime (the σ_w ≈ 1 end of its critical line, where
  orthogonal tanh networks approach isometry).
- ``tanh + Gaussian``: ``VarianceScaling(1.02², "fan_in", "untruncated_normal")``, i.e. W ~ N(0, 1.02²/n): the same
  point of the critical line, with Gaussian instead of orthogonal weights.
- ``ReLU + He``: ``KaimingNormal(nonlinearity="relu")``, W ~ N(0, 2/n): the ReLU network's only critical point
  (σ_w² = 2, σ_b = 0), which cannot be made isometric.

The Jacobian of each sample is computed exactly by carrying ∂h/∂x through the forward pass (one matrix product per
layer; checked in the tests against :func:`initlab.diagnose`'s reverse-mode ``jacobian``), and its singular values
are pooled over the samples and seeds. Spread is measured as in :class:`initlab.diagnostics.JacobianStats`: the std
of log σ and the fraction of σ in the isometry band [0.5, 2] (:data:`initlab.diagnostics.ISOMETRY_BAND`).

Claims (thresholds :data:`ISOMETRIC_LOG_STD`, :data:`ISOMETRIC_WITHIN`, :data:`SPREAD_LOG_STD`, :data:`SPREAD_WITHIN`,
:data:`CRITICAL_MEAN_SQ`): both tanh networks are critical (mean σ² within a factor 2 of 1, so the difference is
the shape of the spectrum, not its scale); tanh + orthogonal is near-isometric (std of log σ ≤ 0.25 and ≥ 95% of σ
in [0.5, 2]); tanh + Gaussian and ReLU + He are not (std of log σ ≥ 0.6 and ≤ 70% in the band), and ReLU spreads more
than tanh + Gaussian (the paper's ordering). The quick form uses 8 samples and one seed; the full form 32 samples and
3 seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

import initlab
from initlab.diagnostics import ISOMETRY_BAND
from initlab.reproduce._base import Result, pyplot, register, save_figure

DEPTH = 32  # weight layers, the paper's figure 1 depth
WIDTH = 128  # the paper uses N = 1000; 128 keeps the full form to seconds on 2 cores
#: Critical gain for tanh with σ_b = 0 and small q*: the fixed point of q = σ_w² E[tanh(√q z)²] is
#: q* ≈ (1 - 1/σ_w²)/2 = 0.019 (std 0.14), where χ = σ_w² E[tanh'(h)²] ≈ σ_w² (1 - 2q*) = 1.
TANH_GAIN = 1.02
#: Inputs start at the fixed point: pre-activation std √q* ≈ 0.14 in every layer. (Gain 1.05 with input std 0.3,
#: q* = 0.047, is still critical but its spectrum spreads more at depth 32: std of log σ 0.6, 74% in [0.5, 2].)
INPUT_STD = 0.14
#: "Concentrated near 1": std of log σ at most this, and at least ISOMETRIC_WITHIN of σ in [0.5, 2].
ISOMETRIC_LOG_STD = 0.25
ISOMETRIC_WITHIN = 0.95
#: "Spread widely": std of log σ at least this (σ spans about e^{±2·0.6}, a factor 10 between the central 95%), and
#: at most SPREAD_WITHIN of σ in [0.5, 2].
SPREAD_LOG_STD = 0.6
SPREAD_WITHIN = 0.70
#: "Critical": the mean squared singular value (1/n · tr JJᵀ, which mean-field theory sets to χ^L = 1) of the two
#: tanh networks within this factor of 1. (ReLU + He is critical in expectation too, but at width 128 its ‖J‖ is
#: heavy-tailed across inputs, so its sample mean of σ² is reported, not checked.)
CRITICAL_MEAN_SQ = 2.0
#: The figure's lowest singular value: the Gaussian and ReLU spectra reach 1e-20 (numerically zero: products of 32
#: Gaussian matrices and ReLU masks are close to singular), so the fraction below is given in the legend instead.
FIGURE_FLOOR = 1e-4
SOURCE = (
    "Pennington, Schoenholz & Ganguli (2017), 'Resurrecting the sigmoid in deep learning through dynamical isometry: "
    "theory and practice', NeurIPS, figure 1 and section 5"
)


@dataclass(frozen=True)
class Net:
    """One of the three networks: its activation and initializer."""

    label: str
    activation: str
    initializer: initlab.Initializer


NETS = (
    Net("tanh + orthogonal", "tanh", initlab.Orthogonal(gain=TANH_GAIN)),
    Net("tanh + Gaussian", "tanh", initlab.VarianceScaling(TANH_GAIN**2, "fan_in", "untruncated_normal")),
    Net("ReLU + He", "relu", initlab.KaimingNormal(nonlinearity="relu")),
)


def build(net: Net, seed: int) -> nn.Module:
    """The 32-layer network of ``net``, initialized with ``seed`` (biases zero)."""
    spec = f"mlp:{','.join([str(WIDTH)] * (DEPTH - 1))};act={net.activation}"
    model = initlab.models.build(spec, input_shape=(WIDTH,), num_classes=WIDTH)
    initlab.initialize(model, net.initializer, seed=seed)
    return model


def inputs(samples: int, seed: int) -> torch.Tensor:
    """``samples`` Gaussian inputs of std :data:`INPUT_STD`, from their own generator."""
    gen = torch.Generator().manual_seed(seed)
    return INPUT_STD * torch.randn(samples, WIDTH, generator=gen)


@torch.no_grad()
def jacobians(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Each sample's input-output Jacobian, shape (samples, outputs, inputs), in float64.

    Forward-mode by hand: ∂h/∂x is carried through the ``Sequential`` (a Linear multiplies it by W, tanh and ReLU
    scale its rows by their derivatives), which for a square network costs one matrix product per layer and sample.
    """
    h = x.double()
    jac = torch.eye(h.shape[1], dtype=torch.float64).expand(h.shape[0], -1, -1)
    for module in model:
        if isinstance(module, nn.Flatten):
            continue
        if isinstance(module, nn.Linear):
            w = module.weight.double()
            h = h @ w.T + (module.bias.double() if module.bias is not None else 0.0)
            jac = w @ jac
        elif isinstance(module, nn.Tanh):
            h = torch.tanh(h)
            jac = (1 - h**2).unsqueeze(-1) * jac
        elif isinstance(module, nn.ReLU):
            jac = (h > 0).double().unsqueeze(-1) * jac
            h = torch.relu(h)
        else:
            raise TypeError(f"jacobians() handles Linear, Tanh and ReLU modules, got {type(module).__name__}.")
    return jac


def spectrum(net: Net, seeds: tuple[int, ...], samples: int) -> np.ndarray:
    """The singular values of the Jacobians of ``samples`` inputs per seed, pooled over the seeds."""
    values = []
    for seed in seeds:
        model = build(net, seed)
        values.append(torch.linalg.svdvals(jacobians(model, inputs(samples, 1000 + seed))).reshape(-1).numpy())
    return np.concatenate(values)


def spread(sv: np.ndarray) -> dict[str, float]:
    """Mean σ², std of log σ, fraction of σ in the isometry band, and the extremes."""
    low, high = ISOMETRY_BAND
    positive = sv[sv > 0]
    return {
        "mean_sq": float(np.mean(sv**2)),
        "log_std": float(np.std(np.log(positive))),
        "within": float(np.mean((sv >= low) & (sv <= high))),
        "min": float(sv.min()),
        "max": float(sv.max()),
    }


@register("isometry", "Jacobian singular values of 32-layer tanh (orthogonal, Gaussian) and ReLU networks", SOURCE,
          "about 5 s (3 networks x 3 seeds x 32 samples); the quick form about 1 s",
          heading="Dynamical isometry at depth 32 (Pennington et al. 2017)")  # fmt: skip
def run(result: Result, out: Path) -> Result:
    seeds = (0,) if result.quick else (0, 1, 2)
    samples = 8 if result.quick else 32
    spectra = {net.label: spectrum(net, seeds, samples) for net in NETS}
    stats = {label: spread(sv) for label, sv in spectra.items()}
    band = f"[{ISOMETRY_BAND[0]:g}, {ISOMETRY_BAND[1]:g}]"

    for label in ("tanh + orthogonal", "tanh + Gaussian"):
        s = stats[label]
        result.check(f"{label} is critical: mean σ² near 1", f"within a factor {CRITICAL_MEAN_SQ:g} of 1",
                     f"{s['mean_sq']:.3f}", 1 / CRITICAL_MEAN_SQ <= s["mean_sq"] <= CRITICAL_MEAN_SQ)  # fmt: skip
    iso = stats["tanh + orthogonal"]
    result.check("tanh + orthogonal: singular values concentrated near 1",
                 f"std of log σ <= {ISOMETRIC_LOG_STD}, >= {ISOMETRIC_WITHIN:.0%} in {band}",
                 f"std of log σ {iso['log_std']:.3f}, {iso['within']:.1%} in {band}",
                 iso["log_std"] <= ISOMETRIC_LOG_STD and iso["within"] >= ISOMETRIC_WITHIN)  # fmt: skip
    for label in ("tanh + Gaussian", "ReLU + He"):
        s = stats[label]
        result.check(f"{label}: singular values spread widely",
                     f"std of log σ >= {SPREAD_LOG_STD}, <= {SPREAD_WITHIN:.0%} in {band}",
                     f"std of log σ {s['log_std']:.3f}, {s['within']:.1%} in {band}",
                     s["log_std"] >= SPREAD_LOG_STD and s["within"] <= SPREAD_WITHIN)  # fmt: skip
    gauss, relu = stats["tanh + Gaussian"], stats["ReLU + He"]
    result.check("ReLU + He spreads more than tanh + Gaussian", "std of log σ: ReLU > tanh Gaussian",
                 f"{relu['log_std']:.3f} > {gauss['log_std']:.3f}", relu["log_std"] > gauss["log_std"])  # fmt: skip
    result.details = {"depth": DEPTH, "width": WIDTH, "seeds": list(seeds), "samples_per_seed": samples,
                      "input_std": INPUT_STD, "tanh_gain": TANH_GAIN, "stats": stats}  # fmt: skip
    result.figures = [_figure(out, spectra, stats, len(seeds), samples)]
    return result


def _figure(out: Path, spectra: dict[str, np.ndarray], stats: dict[str, dict[str, float]], seeds: int,
            samples: int) -> Path:  # fmt: skip
    """Density of the singular values on a log axis, one curve per network (the paper's figure 1, bottom row)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    top = max(float(sv.max()) for sv in spectra.values())
    bins = np.logspace(math.log10(FIGURE_FLOOR), math.log10(top), 80)
    for (label, sv), color in zip(spectra.items(), ("tab:blue", "tab:orange", "tab:red"), strict=True):
        s = stats[label]
        below = float(np.mean(sv < FIGURE_FLOOR))
        ax.hist(sv[sv >= FIGURE_FLOOR], bins=bins, weights=np.full(int(np.sum(sv >= FIGURE_FLOOR)), 1 / len(sv)),
                histtype="step", linewidth=1.8, color=color,
                label=f"{label}: std log σ {s['log_std']:.2f}, {s['within']:.0%} in [0.5, 2], "
                      f"{below:.0%} below {FIGURE_FLOOR:g}")  # fmt: skip
    ax.axvspan(*ISOMETRY_BAND, color="0.9", zorder=0, label="isometry band [0.5, 2]")
    ax.set_xscale("log")
    ax.set(title=f"Input-output Jacobian singular values, depth {DEPTH}, width {WIDTH} "
                 f"({seeds} seed(s) x {samples} inputs, CPU)",
           xlabel="singular value σ (dimensionless, log scale)",
           ylabel="fraction of singular values per bin")  # fmt: skip
    ax.legend(fontsize=8)
    return save_figure(fig, out / "isometry.png")
