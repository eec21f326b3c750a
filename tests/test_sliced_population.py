"""Convolutional populations trained as slices of models in parallel threads (``slices.SLICED_PATHS``).

A process uses parallel slices only when every thread allocates from one malloc arena, which needs
``keep_freed_memory`` before any second thread allocates: the checks run in fresh interpreters.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from initlab.training.slices import model_slices

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc arenas: Linux only")

_SETUP = """
import json, sys, torch
from initlab.malloc import keep_freed_memory, one_arena
assert keep_freed_memory()
torch.set_num_threads(2)
from initlab.models import build
from initlab.training import Batch, Population, TrainSettings, slices, stacked_conv
slices.SLICE_MIN_BYTES = 0  # the small test models too
"""

_EQUAL = (
    _SETUP
    + """
seen = []
real = slices.model_slices
slices.model_slices = lambda *a: seen.append(real(*a)) or seen[-1]

def rel(a, b):  # against 1e-3 where b is (near) zero, as a conv bias's gradient before a batch norm is
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm().clamp_min(1e-3))

report = {}
for spec, shape, groups, optimizer, rates in json.loads(sys.argv[1]):
    torch.manual_seed(0)
    models = [build(spec, input_shape=tuple(shape), num_classes=3) for _ in range(6)]
    settings = TrainSettings(optimizer=optimizer, lr=1e-2, batch_size=8)
    pops = [Population(models, settings), Population(models, settings)]
    for p in pops:
        if rates:
            p.set_lr(rates)
    assert all(torch.equal(pops[0].params[k], pops[1].params[k]) for k in pops[0].params)
    g = torch.Generator().manual_seed(1)
    lead = (groups,) if groups else ()
    batches = [Batch(torch.randn(*lead, 8, *shape, generator=g), torch.randint(0, 3, (*lead, 8), generator=g),
                     per_model=bool(groups)) for _ in range(3)]
    slices.SLICED_PATHS = ()
    whole, steps = pops[0].train_epoch(batches)
    slices.SLICED_PATHS = (stacked_conv,)
    seen.clear()
    sliced, _ = pops[1].train_epoch(batches)
    assert torch.get_num_threads() == 2
    a, b = pops
    diffs = [rel(b.params[k], a.params[k]) for k in a.params]
    diffs += [rel(b.buffers[k].float(), a.buffers[k].float()) for k in a.buffers]
    diffs += [rel(sliced.loss_sum, whole.loss_sum), rel(sliced.correct, whole.correct)]
    diffs += [rel(sliced.grad_sq[k], whole.grad_sq[k]) for k in whole.grad_sq]
    for i in range(6):
        sa, sb = a.run_state(i)["optim"], b.run_state(i)["optim"]
        diffs += [rel(sb[n][k], sa[n][k]) for n in sa for k in sa[n] if sa[n][k].is_floating_point()]
    report[spec + (" per-model batches" if groups else "") + (" rates" if rates else "")] = {
        "diff": max(diffs), "slices": seen[0] if seen else None, "calls": len(seen)}
print(json.dumps(report))
"""
)


def _run(script: str, *args: str) -> str:
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_slices_train_every_model_as_the_whole_population_does() -> None:
    # Adam-type optimizers take a bias before a batch norm (a gradient that is zero up to rounding) lr-sized steps in
    # the direction of that rounding, so batch-norm networks train with SGD here, or without those biases.
    cases = [
        ["cnn:4,8;head=16", [1, 8, 8], 0, "adam", None],  # one batch for all: slices of 3 models
        ["cnn:4;norm=batch;head=8", [1, 8, 8], 2, "sgd", None],  # a batch per group of 3 models: a group per slice
        ["resnet:4,8", [8, 8], 3, "sgd", None],  # 3 groups of 2 models over 2 threads: 1 and 2 groups
        ["cnn1d:4;norm=batch;bias=false", [2, 16], 0, "adamw", [0.01, 0.02, 0.01, 0.03, 0.01, 0.02]],  # per-model rates
    ]
    report = json.loads(_run(_EQUAL, json.dumps(cases)))
    slices = {
        "cnn:4,8;head=16": [[0, 3], [3, 6]],
        "cnn:4;norm=batch;head=8 per-model batches": [[0, 3], [3, 6]],
        "resnet:4,8 per-model batches": [[0, 4], [4, 6]],
        "cnn1d:4;norm=batch;bias=false rates": [[0, 3], [3, 6]],
    }
    assert set(report) == set(slices)
    for name, row in report.items():
        assert row["slices"] == slices[name], (name, row)
        assert row["calls"] == 3, (name, row)  # every step in slices
        # The same kernels on the same models, one intra-op thread instead of two: equal up to rounding (seen: 0
        # without batch norm, up to 1.1e-6 with it, whose reductions split over threads).
        assert row["diff"] < 1e-5, (name, row)


_ERROR = (
    _SETUP
    + """
pop = Population([build("cnn:4,8;head=16", input_shape=(1, 8, 8), num_classes=3) for _ in range(4)], TrainSettings())
assert pop._parts(Batch(torch.randn(8, 1, 8, 8), torch.zeros(8, dtype=torch.long))) == 2
try:
    pop.train_epoch([Batch(torch.randn(8, 2, 8, 8), torch.zeros(8, dtype=torch.long))])  # two channels, not one
except RuntimeError as exc:
    print("error:", str(exc).splitlines()[0])
print("threads", torch.get_num_threads())
"""
)


def test_an_error_in_a_slice_reaches_the_caller_and_the_thread_count_comes_back() -> None:
    out = _run(_ERROR)
    assert "error:" in out
    assert "channels" in out
    assert out.strip().endswith("threads 2")


_LATE = """
import ctypes, threading, torch
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
worker = threading.Thread(target=lambda: libc.free(libc.malloc(1024)))  # a thread's first malloc: its own arena
worker.start()
worker.join()
from initlab.malloc import keep_freed_memory, one_arena
from initlab.models import build
from initlab.training import Batch, Population, TrainSettings, slices
slices.SLICE_MIN_BYTES = 0
torch.set_num_threads(2)
assert keep_freed_memory()
pop = Population([build("cnn:4,8;head=16", input_shape=(1, 8, 8), num_classes=3) for _ in range(4)], TrainSettings())
print(one_arena(), pop._parts(Batch(torch.randn(8, 1, 8, 8), torch.zeros(8, dtype=torch.long))))
"""


def test_a_population_trains_whole_where_threads_already_have_their_own_arenas() -> None:
    assert _run(_LATE).split() == ["False", "1"]


_SMALL = (
    _SETUP.replace("slices.SLICE_MIN_BYTES = 0", "")
    + """
def parts(spec, shape, batch):
    models = [build(spec, input_shape=shape, num_classes=10) for _ in range(4)]
    return Population(models, TrainSettings())._parts(Batch(torch.randn(batch, *shape), torch.zeros(batch).long()))
print(parts("cnn:16,32;head=64", (1, 28, 28), 128), parts("cnn1d:16,16;head=32", (1, 40), 128),
      parts("cnn:16,32;head=64;dropout=0.5", (1, 28, 28), 128), parts("mlp:64", (1, 28, 28), 128))
"""
)


def test_only_large_convolutional_steps_without_dropout_run_in_slices() -> None:
    # 6.4 MB of first-convolution output per MNIST batch of 128: slices; 328 KB on 40 positions, dropout (masks drawn
    # for the whole population) and the MLP path: whole.
    assert _run(_SMALL).split() == ["2", "1", "1", "1"]


@given(
    st.integers(1, 12).flatmap(
        lambda size: st.tuples(st.just(size), st.integers(1, 6), st.integers(1, 8))  # models per group, groups, parts
    )
)
def test_model_slices_cover_the_models_once_and_read_whole_batches(case: tuple[int, int, int]) -> None:
    size, groups, parts = case
    n = size * groups
    slices = model_slices(n, groups, parts)
    assert slices[0][0] == 0
    assert slices[-1][1] == n
    assert all(a < b for a, b in slices)
    assert all(b == c for (_, b), (c, _) in itertools.pairwise(slices))
    assert len(slices) <= parts
    for a, b in slices:  # within one group, or whole groups
        assert (a // size == (b - 1) // size) or (a % size == 0 and b % size == 0)
    assert len(slices) == min(parts, n) or groups < parts  # as many as asked while whole groups allow
