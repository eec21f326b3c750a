"""Audit: is a model initialized the way you think? Every parameter measured and compared with a scheme.

``audit(model, scheme=None)`` lists every parameter with its role, shape, fans, mean, std, min and max; compares it
with the exact distribution the scheme (or, with no scheme, PyTorch's own defaults) would draw it from, by a χ² test
on its variance at a stated significance; and flags what is suspicious on its own: NaN or infinite values, all-zero
or constant weight matrices, duplicated rows or columns, a std far from every fan-based rule, residual output
projections not scaled for depth (Radford et al. 2019), tied weights and parameters no rule covers. The result, an
:class:`Audit`, prints as tables and writes JSON and a self-contained HTML page; ``initlab audit`` runs it from the
command line and exits non-zero on an error-level finding, so it can guard a training script or CI.

* :mod:`initlab.auditing._stats`: the measurements, the tests and their thresholds;
* :mod:`initlab.auditing._reference`: the expected distributions (torch's defaults, a scheme's rules);
* :mod:`initlab.auditing._residual`: residual output projections and depth scaling;
* :mod:`initlab.auditing._audit`: the checks and the severity of each finding;
* :mod:`initlab.auditing._result`, :mod:`initlab.auditing._html`: the result and its forms;
* :mod:`initlab.auditing._weights`: loading a state dict file into a model, with errors that name what does not fit.
"""

from initlab.auditing._audit import audit
from initlab.auditing._reference import FOREIGN_LAYOUTS, Expectation
from initlab.auditing._residual import RESIDUAL_OUTPUTS
from initlab.auditing._result import FINDING_KINDS, SEVERITIES, Audit, AuditFinding, ParameterAudit
from initlab.auditing._stats import THRESHOLDS
from initlab.auditing._weights import load_weights

__all__ = [
    "FINDING_KINDS",
    "FOREIGN_LAYOUTS",
    "RESIDUAL_OUTPUTS",
    "SEVERITIES",
    "THRESHOLDS",
    "Audit",
    "AuditFinding",
    "Expectation",
    "ParameterAudit",
    "audit",
    "load_weights",
]
