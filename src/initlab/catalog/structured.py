"""Structured initializers whose entries are not independent: Identity, Orthogonal, Dirac, Sparse."""

from __future__ import annotations

import math

import torch

from initlab.catalog._base import Distribution, Initializer
from initlab.checks import check_finite, check_int
from initlab.fans import Layout


class _Scaled(Initializer):
    """A structured pattern multiplied by ``gain``, any finite number (its one argument)."""

    _params = ("gain",)

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = check_finite("gain", gain)


class Identity(_Scaled):
    """The identity matrix times ``gain``: ``W = gain · I`` (rectangular allowed: ones on the main diagonal).

    Only for 2-D shapes. Source: ``keras.initializers.Identity`` (its ``gain`` argument); ``torch.nn.init.eye_``.
    """

    formula = "W = gain · I (2-D)"
    source = "keras.initializers.Identity; torch.nn.init.eye_"
    aliases = ("eye",)

    def _check_shape(self, shape: tuple[int, ...], layout: Layout) -> None:
        if len(shape) != 2:
            raise ValueError(f"Identity needs a 2-D shape, got {shape} (rank {len(shape)}).")

    def _fill(self, out: torch.Tensor, layout: Layout, generator: torch.Generator | None) -> None:
        out.zero_()
        out.diagonal().fill_(self.gain)

    def _distribution(self, shape: tuple[int, ...], layout: Layout) -> Distribution:
        n = shape[0] * shape[1]
        p = min(shape) / n  # share of entries on the diagonal
        mean = self.gain * p
        std = abs(self.gain) * math.sqrt(p * (1.0 - p))
        return Distribution("identity", mean, std, min(0.0, self.gain), max(0.0, self.gain), iid=False)


class Orthogonal(_Scaled):
    """A (semi-)orthogonal matrix times ``gain``.

    The tensor is viewed as a ``(rows, cols)`` matrix (:meth:`initlab.fans.Layout.matrix_shape`: torch layouts keep
    the first axis and flatten the rest, as ``torch.nn.init.orthogonal_``; the Keras layout flattens all axes but the
    last, as Keras). A ``max × min`` standard-normal matrix is QR-factorized, Q's columns are multiplied by the signs
    of R's diagonal so that Q is Haar-distributed (Mezzadri, 2007), and Q (transposed for wide shapes) is scaled by
    ``gain``. Then WᵀW = gain²·I for ``rows >= cols`` and WWᵀ = gain²·I otherwise.

    Needs rank >= 2. Source: Saxe et al. (2014); ``keras.initializers.Orthogonal``; ``torch.nn.init.orthogonal_``.
    """

    formula = "W = gain · Q, Q from QR of a Gaussian matrix, sign-corrected"
    source = "Saxe et al. 2014; keras.initializers.Orthogonal; torch.nn.init.orthogonal_"

    def _check_shape(self, shape: tuple[int, ...], layout: Layout) -> None:
        if len(shape) < 2:
            raise ValueError(f"Orthogonal needs a shape of rank >= 2, got {shape} (rank {len(shape)}).")

    def _fill(self, out: torch.Tensor, layout: Layout, generator: torch.Generator | None) -> None:
        rows, cols = layout.matrix_shape(tuple(out.shape))
        # Draw (rows, cols) then transpose, as torch.nn.init.orthogonal_ does, so that the same generator state gives
        # the same matrix as torch.
        flat = out.new_empty((rows, cols)).normal_(0.0, 1.0, generator=generator)
        if rows < cols:
            flat.t_()
        q, r = torch.linalg.qr(flat)
        q.mul_(torch.diagonal(r).sign())
        if rows < cols:
            q.t_()
        out.view_as(q).copy_(q)
        out.mul_(self.gain)

    def _distribution(self, shape: tuple[int, ...], layout: Layout) -> Distribution:
        rows, cols = layout.matrix_shape(shape)
        # Each unit-norm column (or row) of length max(rows, cols): E[w²] = gain² / max(rows, cols), mean 0.
        std = abs(self.gain) / math.sqrt(max(rows, cols))
        return Distribution("orthogonal", 0.0, std, -abs(self.gain), abs(self.gain), iid=False)


class Dirac(Initializer):
    """The identity convolution: a convolution with this kernel returns its input (where channels allow).

    For a torch kernel ``(out, in/groups, *k)`` every entry is 0 except ``W[g·out_g + d, d, k//2…] = 1`` for each
    group ``g`` and ``d < min(out_g, in/groups)``, with ``out_g = out / groups`` (``torch.nn.init.dirac_``). A
    ConvTranspose kernel ``(in, out/groups, *k)`` gets the same pattern with the axes read the other way; a Keras
    kernel ``(*k, in/groups, out)`` gets it on its own axes. Needs rank 3, 4 or 5.
    Source: ``torch.nn.init.dirac_``; Zagoruyko & Komodakis (2017), DiracNets.
    """

    formula = "W[g·out_g + d, d, center] = 1, else 0"
    source = "torch.nn.init.dirac_"
    _params = ("groups",)

    def __init__(self, groups: int = 1) -> None:
        self.groups = check_int("groups", groups, minimum=1)

    def _check_shape(self, shape: tuple[int, ...], layout: Layout) -> None:
        if len(shape) not in (3, 4, 5):
            raise ValueError(f"Dirac needs a convolution kernel of rank 3, 4 or 5, got {shape} (rank {len(shape)}).")
        if layout.kind == "axes":
            raise ValueError("Dirac supports the layouts 'torch', 'torch_transpose' and 'keras', not explicit axes.")
        grouped = shape[-1] if layout.kind == "keras" else shape[0]
        if grouped % self.groups:
            raise ValueError(f"Dirac groups={self.groups} does not divide the {grouped} channels of shape {shape}.")

    def _fill(self, out: torch.Tensor, layout: Layout, generator: torch.Generator | None) -> None:
        # Work on a torch-ordered view (grouped axis first, per-group axis second, kernel after).
        view = out.permute(out.dim() - 1, out.dim() - 2, *range(out.dim() - 2)) if layout.kind == "keras" else out
        view.zero_()
        per_group = view.shape[0] // self.groups
        d = torch.arange(min(per_group, view.shape[1]), device=out.device)
        g = torch.arange(self.groups, device=out.device)
        rows = (g[:, None] * per_group + d[None, :]).reshape(-1)
        cols = d.repeat(self.groups)
        center = tuple(k // 2 for k in view.shape[2:])
        view[(rows, cols, *center)] = 1.0

    def _distribution(self, shape: tuple[int, ...], layout: Layout) -> Distribution:
        grouped, per_group_axis = (shape[-1], shape[-2]) if layout.kind == "keras" else (shape[0], shape[1])
        ones = self.groups * min(grouped // self.groups, per_group_axis)
        p = ones / math.prod(shape)
        return Distribution("dirac", p, math.sqrt(p * (1.0 - p)), 0.0, 1.0, iid=False)


class Sparse(Initializer):
    """Sparse normal matrix: entries N(0, std²), then in every column a share ``sparsity`` of the rows set to 0.

    For a 2-D torch weight ``(out, in)``, each column (one input unit) gets exactly ``ceil(sparsity · out)`` zeros
    at rows chosen uniformly without replacement; for a Keras kernel ``(in, out)`` the same holds for each row.
    Source: Martens (2010), "Deep learning via Hessian-free optimization"; ``torch.nn.init.sparse_`` (same rule,
    vectorised here instead of a loop over columns).
    """

    formula = "N(0, std²), ceil(sparsity·rows) zeros per column"
    source = "Martens 2010; torch.nn.init.sparse_"
    _params = ("sparsity", "std")

    def __init__(self, sparsity: float = 0.1, std: float = 0.01) -> None:
        self.sparsity = check_finite("sparsity", sparsity)
        if not 0.0 <= self.sparsity <= 1.0:
            raise ValueError(f"sparsity must be in [0, 1], got {sparsity!r}.")
        self.std = check_finite("std", std)
        if self.std < 0:
            raise ValueError(f"std must be >= 0, got {std!r}.")

    def _check_shape(self, shape: tuple[int, ...], layout: Layout) -> None:
        if len(shape) != 2:
            raise ValueError(f"Sparse needs a 2-D shape, got {shape} (rank {len(shape)}).")

    def _fill(self, out: torch.Tensor, layout: Layout, generator: torch.Generator | None) -> None:
        mat = out.t() if layout.kind == "keras" else out  # (out, in) view: zeros go down each column
        rows, cols = mat.shape
        num_zeros = math.ceil(self.sparsity * rows)
        out.normal_(0.0, self.std, generator=generator)
        if num_zeros:
            scores = torch.rand((cols, rows), generator=generator, device=out.device)
            zero_rows = scores.argsort(dim=1)[:, :num_zeros]
            mat.t().scatter_(1, zero_rows, 0.0)

    def _distribution(self, shape: tuple[int, ...], layout: Layout) -> Distribution:
        rows = shape[1] if layout.kind == "keras" else shape[0]
        keep = 1.0 - math.ceil(self.sparsity * rows) / rows
        return Distribution("sparse", 0.0, self.std * math.sqrt(keep), -math.inf, math.inf, sigma=self.std, iid=False)
