"""The article's presets and the assignment's data, drawn exactly as the deeplearning.ai "Initialization"
assignment draws them (:mod:`initlab.reproduce.dlai_circles`), so that the playground reproduces its costs.

The presets fill every ``nn.Linear`` in module order with ``rng.randn(fan_out, fan_in) * s`` from one NumPy
legacy generator ``RandomState(seed)`` (the assignment calls ``np.random.seed(3)`` and then ``np.random.randn`` layer
by layer, which draws the same numbers), biases zero:

========== ========================================= =====================================================
preset     s                                         source
========== ========================================= =====================================================
zero       0 (no draw)                               ``initialize_parameters_zeros``
small      0.01                                      the course's "too small" (``randn * 0.01``)
appropriate sqrt(2 / n_prev) for ReLU-like layers,   ``initialize_parameters_he`` (He et al. 2015); the course's
           sqrt(1 / n_prev) otherwise                "Xavier" for tanh (LeCun's 1/fan_in)
large      10                                        ``initialize_parameters_random`` (``randn * 10``)
========== ========================================= =====================================================

With seed 3 and the layers [2, 10, 5, 1] these are the assignment's weights bit for bit (a test checks it).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

#: Activations for which "appropriate" is He's 2/n_prev (the rest get 1/n_prev).
RELU_LIKE = ("relu", "leaky_relu", "gelu")
#: The assignment's data: scikit-learn make_circles, 300 training and 100 test samples, noise 0.05, drawn after
#: np.random.seed(1) and np.random.seed(2) (the assignment's ``load_dataset``).
DLAI_TRAIN, DLAI_TEST, DLAI_NOISE = 300, 100, 0.05


def scale_of(kind: str, fan_in: int, act: str) -> float:
    """The factor ``s`` of ``randn * s`` for preset ``kind`` on a layer with ``fan_in`` inputs."""
    if kind == "small":
        return 0.01
    if kind == "large":
        return 10.0
    if kind == "appropriate":
        # np.sqrt(2 / n), written as the assignment writes it, so that the product rounds as it does there.
        return float(np.sqrt((2 if act in RELU_LIKE else 1) / fan_in))
    if kind == "zero":
        return 0.0
    raise ValueError(f"unknown preset {kind!r}; the presets are zero, small, appropriate and large.")


@torch.no_grad()
def apply_preset(model: nn.Module, kind: str, *, seed: int, act: str, scale: float = 1.0) -> None:
    """Fill every ``nn.Linear`` of ``model`` by preset ``kind`` (see the module docstring), then multiply the weights
    by ``scale``. The draws come from ``np.random.RandomState(seed)``, never from the global NumPy state."""
    rng = np.random.RandomState(seed)
    for module in model.modules():
        if not isinstance(module, nn.Linear):
            continue
        shape = tuple(module.weight.shape)
        values = np.zeros(shape) if kind == "zero" else rng.randn(*shape) * scale_of(kind, shape[1], act)
        if scale != 1.0:
            values = values * scale
        module.weight.copy_(torch.from_numpy(values))
        if module.bias is not None:
            module.bias.zero_()


def dlai_data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The assignment's circles, as float64 tensors (x (300, 2), y (300,), x_test (100, 2), y_test (100,)): the very
    arrays :mod:`initlab.reproduce.dlai_circles` trains on. NumPy's global random state is restored afterwards."""
    from sklearn.datasets import make_circles

    state = np.random.get_state()
    try:
        np.random.seed(1)
        x, y = make_circles(n_samples=DLAI_TRAIN, noise=DLAI_NOISE)
        np.random.seed(2)
        x_test, y_test = make_circles(n_samples=DLAI_TEST, noise=DLAI_NOISE)
    finally:
        np.random.set_state(state)
    return (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)), torch.from_numpy(y.astype(np.int64)),
            torch.from_numpy(np.ascontiguousarray(x_test, dtype=np.float64)),
            torch.from_numpy(y_test.astype(np.int64)))  # fmt: skip
