"""Slices of a population's models that train in parallel threads, one intra-op thread each (see
:class:`initlab.training.population.Population`)."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any

import torch

from initlab.training import stacked_conv

#: The fast paths whose populations run on the CPU as slices of consecutive models in parallel threads, one intra-op
#: thread each (see :func:`model_slices`), where torch has more than one intra-op thread. A convolution's kernels on
#: a chunk of one or two small models scale poorly over threads: 12 ``cnn:16,32;head=64`` MNIST models with two
#: threads took 173.7 ms per training step (median of 10 alternating runs of 20 steps) as one population and 155.6
#: ms as two slices of six models in two threads (AMD EPYC, 2 cores), with bit-identical parameters after 40 steps.
#: The MLP path's matrix products scale well over threads and stay whole.
SLICED_PATHS: tuple[ModuleType, ...] = (stacked_conv,)
#: ... for models whose first convolution's output takes at least this per batch: 1 MiB. Measured with 12 models
#: in two slices against one population, medians of alternating pairs of runs (AMD EPYC, 2 cores, two threads,
#: batch 128): ``cnn:16,32;head=64`` on MNIST (6.4 MB) 1.08x, with batch norm 1.10x, ``resnet:16,32`` 1.29x, but
#: ``cnn1d:16,16;head=32`` on 40 positions (328 KB), whose steps take about a millisecond, 0.91x.
SLICE_MIN_BYTES = 1 << 20


def model_slices(n: int, groups: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` (or fewer) contiguous, near-equal slices ``(a, b)`` of ``n`` models that share one batch per group of
    ``n / groups`` consecutive models: whole groups per slice where there are at least ``parts`` groups, otherwise
    each group cut into ``parts // groups`` pieces, so that every slice reads one batch per group it covers."""
    size = n // groups
    if groups >= parts:
        bounds = [round(j * groups / parts) * size for j in range(parts + 1)]
    else:
        pieces = min(size, parts // groups)
        bounds = [g * size + round(j * size / pieces) for g in range(groups) for j in range(pieces)] + [n]
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


@contextlib.contextmanager
def one_thread_each(parts: int) -> Iterator[Callable[[Callable[[int], Any], int], list[Any]]]:
    """``run(fn, count)``: ``[fn(0), ..., fn(count - 1)]``, each call in its own thread (this one and up to ``parts -
    1`` others, ``count <= parts``), with one intra-op thread for the whole block; torch's thread count is restored on
    exit. Grad mode is per thread: each call takes this thread's."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    grad = torch.is_grad_enabled()

    def call(fn: Callable[[int], Any], i: int) -> Any:
        torch.set_num_threads(1)
        with torch.set_grad_enabled(grad):
            return fn(i)

    try:
        with ThreadPoolExecutor(parts - 1, thread_name_prefix="initlab-slice") as pool:

            def run(fn: Callable[[int], Any], count: int) -> list[Any]:
                futures = [pool.submit(call, fn, i) for i in range(1, count)]
                return [fn(0), *(f.result() for f in futures)]

            yield run
    finally:
        torch.set_num_threads(threads)
