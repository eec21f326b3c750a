"""The study engine on a GPU: every fast path trains on CUDA as on the CPU, a study keeps its data on the device and
stores the numbers a CPU study stores (to float32 rounding), and bf16 stays close to float32. Skipped without CUDA;
run on a machine with a GPU by ``scripts/gpu_check.sh``."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import initlab.models
from initlab.store import Store
from initlab.studies import Arm, Study, run_study
from initlab.studies.shard import batches
from initlab.training import Batch, Population, TrainSettings

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (no GPU on this machine)"),
]

#: One architecture per fast path (and one the general vmap path takes), with the input shape it trains on.
NETS = {
    "mlp": ("mlp:32,32;dropout=0.1", (40,)),
    "cnn": ("cnn:8,8;head=16;norm=batch", (1, 8, 8)),
    "resnet": ("resnet:8,8;blocks=1", (1, 8, 8)),
    "resmlp": ("resmlp:16x2;norm=layer", (1, 8, 8)),
    "transformer": ("transformer:16x2;heads=2", (1, 8, 8)),
}


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


@pytest.mark.parametrize("name", list(NETS))
def test_each_fast_path_trains_on_cuda_as_on_cpu(name: str) -> None:
    spec, shape = NETS[name]
    models = []
    for seed in range(3):
        torch.manual_seed(seed)
        models.append(initlab.models.build(spec, input_shape=shape, num_classes=10))
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(16, *shape, generator=g) for _ in range(4)]
    ys = [torch.randint(0, 10, (16,), generator=g) for _ in range(4)]
    settings = TrainSettings(optimizer="adam", lr=1e-2)
    cpu, gpu = Population(models, settings), Population(models, settings, device="cuda")
    assert cpu.fast == gpu.fast
    for pop, device in ((cpu, "cpu"), (gpu, "cuda")):
        pop.train_epoch(Batch(x.to(device), y.to(device)) for x, y in zip(xs, ys, strict=True))
    for key, p in cpu.params.items():
        assert gpu.params[key].device.type == "cuda"
        assert _rel(gpu.params[key].detach().cpu(), p.detach()) < 1e-3, key


def test_batches_are_gathered_on_the_device() -> None:
    x, y = torch.randn(100, 3, device="cuda"), torch.arange(100, device="cuda")
    cpu = list(batches(x.cpu(), y.cpu(), [0, 0], 1, 32, torch.device("cpu")))
    gpu = list(batches(x, y, [0, 0], 1, 32, torch.device("cuda")))
    for a, b in zip(cpu, gpu, strict=True):
        assert b.x.device.type == "cuda"
        assert torch.equal(a.y, b.y.cpu())  # the same permutation on either device


def _study(precision: str = "float32") -> Study:
    return Study(
        name="cuda",
        dataset="mnist1d",
        model="mlp:64,64",
        arms=(Arm("he_normal", "he_normal"), Arm("orthogonal", "orthogonal")),
        seeds=(0, 1),
        train=TrainSettings(epochs=2, batch_size=64, precision=precision),
    )


def _accuracies(folder: Path) -> dict[str, float]:
    with Store.in_dir(folder, readonly=True) as store:
        return {r.run_id: r.test_metrics["test_acc"] for r in store.runs()}


def test_a_study_on_cuda_stores_what_a_cpu_study_stores(tmp_path: Path) -> None:
    cpu = _accuracies(run_study(_study(), tmp_path / "cpu"))
    gpu = _accuracies(run_study(_study(), tmp_path / "gpu", device="cuda"))
    assert cpu.keys() == gpu.keys()
    for run_id, acc in cpu.items():
        assert abs(gpu[run_id] - acc) <= 0.01, run_id


def test_bf16_on_cuda_stays_close_to_float32(tmp_path: Path) -> None:
    f32 = _accuracies(run_study(_study(), tmp_path / "f32", device="cuda"))
    bf16 = _accuracies(run_study(_study("bf16"), tmp_path / "bf16", device="cuda"))
    for run_id, acc in f32.items():
        assert abs(bf16[run_id] - acc) <= 0.03, run_id
