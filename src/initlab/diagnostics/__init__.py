"""Diagnosing an initialization: per-layer statistics of a model on one batch, and findings in plain words.

``diagnose(model, inputs, targets=..., loss=...)`` returns a :class:`Diagnosis`: for each layer in call order the
output's mean and std, saturated and dead units and duplicate (symmetric) units, a histogram of its activations,
with targets the gradients' stds and a histogram of the back-propagated gradient; for the whole model the signal's
per-layer factor, the ratio of the first layer's gradient norm to the last's and the input-output Jacobian's
singular values (kept, for plotting the spectrum); and :class:`Finding` objects (symmetry, vanishing or exploding
signal, saturation, dead units, vanishing or exploding gradients), each with a severity, the layers, the figures and
a suggested scheme. ``compare_diagnoses`` puts several schemes side by side. The thresholds are the constants of
:mod:`initlab.diagnostics._findings` and :mod:`initlab.diagnostics._stats`, collected in :data:`THRESHOLDS`; the
Jacobian's limits are in :mod:`initlab.diagnostics.jacobian`. The forward pass is recorded by :mod:`initlab.tracing`,
as for the "auto" scheme; :mod:`initlab.diagnostics.format` writes the numbers of tables and reports.
"""

from initlab.diagnostics._diagnose import Comparison, Diagnosis, compare_diagnoses, diagnose
from initlab.diagnostics._findings import (
    DEAD_ERROR_FRACTION,
    DEAD_FRACTION,
    EXPLODING_GRADIENT_ERROR,
    EXPLODING_GRADIENT_RATIO,
    EXPLODING_SIGNAL_ERROR,
    EXPLODING_SIGNAL_RATIO,
    FINDING_KINDS,
    SATURATION_ERROR_FRACTION,
    SATURATION_FRACTION,
    SYMMETRY_ERROR_FRACTION,
    THRESHOLDS,
    VANISHING_GRADIENT_ERROR,
    VANISHING_GRADIENT_RATIO,
    VANISHING_SIGNAL_ERROR,
    VANISHING_SIGNAL_RATIO,
    Finding,
    FindingKind,
    Severity,
)
from initlab.diagnostics._stats import HISTOGRAM_BINS, SIGMOID_SATURATION, TANH_SATURATION, Histogram, LayerStats
from initlab.diagnostics.jacobian import (
    ISOMETRY_BAND,
    JACOBIAN_MAX_ENTRIES,
    JACOBIAN_MAX_SINGULAR_VALUES,
    JACOBIAN_SAMPLES,
    JacobianStats,
    jacobian_spectrum,
)

__all__ = [
    "DEAD_ERROR_FRACTION",
    "DEAD_FRACTION",
    "EXPLODING_GRADIENT_ERROR",
    "EXPLODING_GRADIENT_RATIO",
    "EXPLODING_SIGNAL_ERROR",
    "EXPLODING_SIGNAL_RATIO",
    "FINDING_KINDS",
    "HISTOGRAM_BINS",
    "ISOMETRY_BAND",
    "JACOBIAN_MAX_ENTRIES",
    "JACOBIAN_MAX_SINGULAR_VALUES",
    "JACOBIAN_SAMPLES",
    "SATURATION_ERROR_FRACTION",
    "SATURATION_FRACTION",
    "SIGMOID_SATURATION",
    "SYMMETRY_ERROR_FRACTION",
    "TANH_SATURATION",
    "THRESHOLDS",
    "VANISHING_GRADIENT_ERROR",
    "VANISHING_GRADIENT_RATIO",
    "VANISHING_SIGNAL_ERROR",
    "VANISHING_SIGNAL_RATIO",
    "Comparison",
    "Diagnosis",
    "Finding",
    "FindingKind",
    "Histogram",
    "JacobianStats",
    "LayerStats",
    "Severity",
    "compare_diagnoses",
    "diagnose",
    "jacobian_spectrum",
]
