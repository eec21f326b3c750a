"""Data and models you bring: .npz, CSV and Parquet files, arrays, tensors and torch datasets, factories and module
instances, from the command line and from ``initlab.compare``."""

from __future__ import annotations

import re
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import Dataset, IterableDataset, TensorDataset
from typer.testing import CliRunner

import initlab
from initlab import data
from initlab.cli import app
from initlab.data import files
from initlab.studies import Store

runner = CliRunner()


def _blobs(n: int = 240, features: int = 6, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A learnable classification set: the label is the argmax of a fixed linear map of Gaussian inputs."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    return x, (x @ rng.normal(size=(features, classes))).argmax(axis=1).astype(np.int64)


@pytest.fixture
def npz(tmp_path):
    x, y = _blobs()
    path = tmp_path / "my.npz"
    np.savez(path, x=x, y=y)
    return path


@pytest.fixture
def csv(tmp_path):
    x, y = _blobs()
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    frame["label"] = np.array(["cat", "dog", "eel"])[y]
    path = tmp_path / "my.csv"
    frame.to_csv(path, index=False)
    return path


def _invoke(args, cwd=None, monkeypatch=None):
    if cwd is not None:
        monkeypatch.chdir(cwd)
    return runner.invoke(app, [str(a) for a in args])


def _metrics(folder) -> dict[str, tuple[float, float]]:
    with Store.in_dir(folder, readonly=True) as store:
        return {r.run_id: (r.test_metrics["test_acc"], r.test_metrics["test_loss"]) for r in store.runs()}


# -- loading ---------------------------------------------------------------------------------------------------------
def test_one_set_is_split_stratified_70_10_20_with_the_seed(npz):
    train, val, test = (data.load(npz, split=s) for s in ("train", "val", "test"))
    # round(0.2 n_c) and round(0.1 n_c) per class: 20% and 10% of 240 to within one sample per class.
    assert len(train) + len(val) + len(test) == 240
    assert abs(len(test) - 48) <= 3
    assert abs(len(val) - 24) <= 3
    assert train.num_classes == 3
    assert train.input_shape == (6,)
    # Standardized with the training split's statistics only.
    assert torch.allclose(train.x.mean(0), torch.zeros(6), atol=1e-5)
    assert not torch.allclose(test.x.mean(0), torch.zeros(6), atol=1e-3)
    # Stratified: each class's share is the same in every split, to within one sample per class.
    for split in (val, test):
        share = np.bincount(split.y.numpy(), minlength=3) / len(split)
        assert np.allclose(share, np.bincount(train.y.numpy(), minlength=3) / len(train), atol=3 / len(split))
    other = data.load(npz, split="test", seed=1)
    assert not torch.equal(other.x, test.x)


def test_keras_names_keep_the_test_set_and_take_val_from_train(tmp_path):
    x, y = _blobs(300)
    path = tmp_path / "keras.npz"
    np.savez(path, x_train=x[:200], y_train=y[:200], x_test=x[200:], y_test=y[200:])
    test = data.load(path, split="test", normalize=None)
    assert torch.equal(test.x, torch.from_numpy(x[200:]))
    assert len(data.load(path, split="train")) + len(data.load(path, split="val")) == 200
    assert len(data.load(path, split="val")) == 20


def test_csv_parquet_and_npz_of_the_same_data_load_the_same_tensors(tmp_path, npz, csv):
    parquet = tmp_path / "my.parquet"
    pd.read_csv(csv).to_parquet(parquet)
    a, b, c = (
        data.load(npz, split="train"),
        data.load(csv, split="train", target="label"),
        data.load(parquet, split="train", target="label"),
    )
    assert torch.equal(a.x, b.x)
    assert torch.equal(a.x, c.x)
    assert torch.equal(a.y, b.y)
    assert torch.equal(a.y, c.y)


def test_the_content_hash_ignores_how_the_npz_was_written(tmp_path):
    x, y = _blobs()
    np.savez(tmp_path / "a.npz", x=x, y=y)
    np.savez_compressed(tmp_path / "b.npz", y=y, x=x)
    assert files.digest(tmp_path / "a.npz") == files.digest(tmp_path / "b.npz") == files.arrays_digest({"x": x, "y": y})
    y2 = y.copy()
    y2[0] = (y2[0] + 1) % 3
    np.savez(tmp_path / "c.npz", x=x, y=y2)
    assert files.digest(tmp_path / "c.npz") != files.digest(tmp_path / "a.npz")


def test_the_task_is_inferred_and_can_be_overridden(tmp_path):
    x, y = _blobs()
    np.savez(tmp_path / "float.npz", x=x, y=x[:, 0] * 2.5)
    np.savez(tmp_path / "whole.npz", x=x, y=y.astype(np.float64))
    assert data.load(tmp_path / "float.npz", split="train").num_classes is None
    assert data.load(tmp_path / "whole.npz", split="train").num_classes == 3
    forced = data.load(tmp_path / "whole.npz", split="train", task="regression")
    assert forced.num_classes is None
    assert forced.y.dtype == torch.float32


# -- bad input -------------------------------------------------------------------------------------------------------
def _save(tmp_path, name: str, **arrays) -> str:
    path = tmp_path / name
    np.savez(path, **arrays)
    return str(path)


def _table(tmp_path, frame: pd.DataFrame, name: str = "t.csv") -> str:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


X, Y = _blobs(60)
BAD_FILES = [
    ("lengths", lambda p: _save(p, "a.npz", x=X, y=Y[:50]), {}, "x has 60 samples but y has 50; they must match"),
    ("nan", lambda p: _save(p, "a.npz", x=np.where(np.arange(6) == 2, np.nan, X), y=Y), {},
     "x contains NaN or infinite values (first in sample 0)"),
    ("text x", lambda p: _save(p, "a.npz", x=np.array([["a"] * 3] * 60), y=Y), {},
     "x must hold numbers, got dtype <U1"),
    ("names", lambda p: _save(p, "a.npz", inputs=X, labels=Y), {},
     "initlab needs Keras' names x_train, y_train, x_test, y_test (missing: x_train, y_train, x_test, y_test) or one "
     "set as x and y"),
    ("one sample axis", lambda p: _save(p, "a.npz", x=X[:, 0], y=Y), {}, "x must have one row per sample and at least"),
    ("negative class", lambda p: _save(p, "a.npz", x=X, y=Y - 1), {}, "class labels must be 0 or more, got -1"),
    ("missing class", lambda p: _save(p, "a.npz", x_train=X, y_train=np.zeros(60, np.int64), x_test=X[:5],
                                      y_test=np.array([0, 0, 1, 0, 0])), {},
     "class 1 occurs in test but not in train; every class needs training samples"),
    ("suffix", lambda p: str(p / "data.h5"), {}, "does not exist"),
    ("folder", lambda p: str(p), {}, "is a folder, not a file"),
    ("no target", lambda p: _table(p, pd.DataFrame({"a": [1.0, 2.0], "label": [0, 1]})), {},
     "is a table: name its label column with --target"),
    ("typo target", lambda p: _table(p, pd.DataFrame({"a": [1.0, 2.0], "label": [0, 1]})), {"target": "lable"},
     "has no column 'lable'. Did you mean 'label'?"),
    ("text feature", lambda p: _table(p, pd.DataFrame({"a": ["x", "y"], "label": [0, 1]})), {"target": "label"},
     "feature column 'a' is not numeric"),
    ("target on npz", lambda p: _save(p, "a.npz", x=X, y=Y), {"target": "label"},
     "--target names a column of a CSV or Parquet table only"),
    ("regression text", lambda p: _table(p, pd.DataFrame({"a": [1.0, 2.0], "label": ["u", "v"]})),
     {"target": "label", "task": "regression"}, "regression needs numeric targets"),
    ("bad task", lambda p: _save(p, "a.npz", x=X, y=Y), {"task": "ranking"}, "task"),
    ("bad option", lambda p: _save(p, "a.npz", x=X, y=Y), {"targt": "x"}, "Did you mean 'target'?"),
    ("too few", lambda p: _save(p, "a.npz", x=X[:2], y=Y[:2]), {}, "too few samples to split"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "make", "options", "message"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_data_is_refused_with_a_message_that_names_it(tmp_path, case, make, options, message):
    path = make(tmp_path)
    if case == "suffix":
        (tmp_path / "data.h5").write_bytes(b"x")
        message = "initlab reads .npz, .csv and .parquet files, not '.h5'"
    with pytest.raises((ValueError, FileNotFoundError), match=re.escape(message)):
        data.load(path, split="train", **options)


def test_a_table_with_missing_labels_or_nan_features_is_refused(tmp_path):
    path = _table(tmp_path, pd.DataFrame({"a": [1.0, np.nan, 3.0], "label": [0, 1, 0]}))
    with pytest.raises(ValueError, match=re.escape("the features contains NaN or infinite values (first in sample 1)")):
        data.load(path, split="train", target="label")
    path = _table(tmp_path, pd.DataFrame({"a": [1.0, 2.0, 3.0], "label": ["u", None, "v"]}), "m.csv")
    with pytest.raises(ValueError, match="some labels are missing"):
        data.load(path, split="train", target="label")


CLI_BAD = [
    (["--data", "{npz}", "--dataset", "digits"], "give either --dataset NAME (a built-in data set) or --data FILE"),
    (["--target", "label"], "--target and --task go with --data FILE"),
    (["--data", "{missing}"], "does not exist; give the path of an .npz, .csv or .parquet file"),
    (["--data", "{csv}"], "is a table: name its label column with --target"),
    (["--data", "{csv}", "--target", "labl"], "has no column 'labl'. Did you mean 'label'?"),
    (["--data", "{regression}", "--loss", "bce"], "has regression targets: train with loss='mse'"),
]


@pytest.mark.parametrize(("args", "message"), CLI_BAD, ids=[str(i) for i in range(len(CLI_BAD))])
def test_bad_data_flags_exit_2_with_the_message(tmp_path, npz, csv, args, message):
    regression = _save(tmp_path, "r.npz", x=X, y=X[:, 0] * 1.5)
    names = {"npz": npz, "csv": csv, "missing": tmp_path / "nope.npz", "regression": regression}
    result = _invoke(["compare", *[a.format(**names) for a in args], "--model", "mlp:8", "--out", tmp_path / "s"])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


# -- studies from the command line -----------------------------------------------------------------------------------
def _compare(*args):
    return _invoke(["compare", *args, "--inits", "he_normal,glorot_uniform", "--seeds", "2", "--epochs", "2",
                    "--batch-size", "32", "--workers", "1"])  # fmt: skip


def test_compare_on_an_npz_runs_reports_and_refuses_a_resume_on_changed_data(tmp_path, npz):
    out = tmp_path / "study"
    result = _compare("--data", npz, "--model", "mlp:16", "--out", out)
    assert result.exit_code == 0, result.output
    assert (out / "report" / "report.html").is_file()
    first = _metrics(out)
    with Store.in_dir(out, readonly=True) as store:
        config = store.study().config
    assert config["dataset"] == str(npz.resolve())
    assert config["dataset_options"]["sha256"] == files.digest(npz)
    # Resuming a finished study changes nothing.
    assert _invoke(["compare", "--resume", out, "--no-report"]).exit_code == 0
    assert _metrics(out) == first
    # One value changed: a resume, and a rerun into the same folder, are refused, naming the file and both hashes.
    arrays = dict(np.load(npz))
    arrays["x"][3, 2] += 1.0
    np.savez(npz, **arrays)
    for args in (["compare", "--resume", out], ["compare", "--data", npz, "--model", "mlp:16", "--inits",
                                                "he_normal,glorot_uniform", "--seeds", "2", "--epochs", "2",
                                                "--batch-size", "32", "--out", out]):  # fmt: skip
        result = _invoke(args)
        text = " ".join(result.output.split())
        assert result.exit_code == 2, result.output
        assert f"data file '{npz.resolve()}' has changed since the study" in text
        assert files.digest(npz) in text
        assert config["dataset_options"]["sha256"] in text
    assert _metrics(out) == first  # nothing stored was touched


def test_compare_on_a_csv_with_a_factory_from_a_package_made_on_the_fly(tmp_path, csv, monkeypatch):
    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "nets.py").write_text(
        textwrap.dedent("""
        import math
        from torch import nn

        def build(input_shape, num_classes):
            return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), 12), nn.Tanh(),
                                 nn.Linear(12, num_classes))
    """)
    )
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "study"
    result = _compare("--data", "my.csv", "--target", "label", "--model", "mypkg.nets:build", "--out", out,
                      "--no-report")  # fmt: skip
    assert result.exit_code == 0, result.output
    with Store.in_dir(out, readonly=True) as store:
        config = store.study().config
        assert all(r.status == "finished" for r in store.runs())
    assert config["model"] == "mypkg.nets:build"
    assert config["dataset_options"]["target"] == "label"
    # The recorded study resumes from another folder: the data path is absolute.
    monkeypatch.chdir(package)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _invoke(["compare", "--resume", out, "--no-report"]).exit_code == 0


def test_regression_targets_train_with_mse_and_rank_by_test_loss(tmp_path):
    x, _ = _blobs(300)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(6)])
    frame["price"] = x @ np.arange(1.0, 7.0)
    path = _table(tmp_path, frame, "houses.csv")
    out = tmp_path / "study"
    result = _invoke(["compare", "--data", path, "--target", "price", "--model", "mlp:16", "--inits",
                      "he_normal,zeros", "--seeds", "2", "--epochs", "3", "--out", out, "--no-report",
                      "--workers", "1"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "ranked by test loss (regression)" in result.output
    res = initlab.CompareResult.load(out)
    assert res.config["train"]["loss"] == "mse"
    assert res.metric == "val_loss"
    losses = [r.test_loss.mean for r in res.rows]
    assert losses == sorted(losses)
    assert all(r.test_acc.n == 0 for r in res.rows)


# -- from Python -----------------------------------------------------------------------------------------------------
class _Samples(Dataset):
    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return torch.from_numpy(self.x[i]), int(self.y[i])


class _Stream(IterableDataset):
    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y

    def __iter__(self):
        yield from zip(self.x, self.y, strict=True)


def test_arrays_tensors_and_datasets_give_the_same_numbers(tmp_path):
    x, y = _blobs()
    forms = {
        "arrays": (x, y),
        "tensors": (torch.from_numpy(x), torch.from_numpy(y)),
        "tensor_dataset": TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        "custom": _Samples(x, y),
        "iterable": _Stream(x, y),
    }
    results = {}
    for name, form in forms.items():
        res = initlab.compare(model="mlp:16", data=form, inits=["he_normal", "glorot_uniform"], seeds=2, epochs=2,
                              out=tmp_path / name, workers=1, batch_size=32)  # fmt: skip
        results[name] = _metrics(res.folder)
        assert res.config["dataset_options"]["sha256"] == files.arrays_digest({"x": x, "y": y})
    assert all(r == results["arrays"] for r in results.values()), results
    assert len(set(results["arrays"].values())) > 1  # the runs differ: the comparison is not vacuous


def test_a_module_instance_is_deep_copied_per_run_and_left_as_it_was(tmp_path):
    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = torch.nn.Linear(6, 16), torch.nn.Linear(16, 3)

        def forward(self, x):
            return self.b(torch.relu(self.a(x)))

    net = Net()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    res = initlab.compare(model=net, data=_blobs(), inits="he_normal,zeros", seeds=2, epochs=2,
                          out=tmp_path / "s", workers=2)  # fmt: skip
    assert res.config["model"].startswith("object:Net-")
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    with Store.in_dir(res.folder, readonly=True) as store:
        assert {r.status for r in store.runs()} == {"finished"}
    # The same object resumes the same study; a worker process (or another session) cannot import it.
    again = initlab.compare(model=net, data=_blobs(), inits="he_normal,zeros", seeds=2, epochs=2, out=tmp_path / "s")
    assert _metrics(again.folder) == _metrics(res.folder)


def test_changed_arrays_into_the_same_folder_are_refused(tmp_path):
    x, y = _blobs()
    initlab.compare(model="mlp:8", data=(x, y), inits="he_normal", seeds=1, epochs=1, out=tmp_path / "s")
    x[0, 0] += 1
    with pytest.raises(files.DataChangedError, match=r"data\.npz' has changed since the study started: its sha256"):
        initlab.compare(model="mlp:8", data=(x, y), inits="he_normal", seeds=1, epochs=1, out=tmp_path / "s")


def test_the_result_has_rows_a_dataframe_and_a_rich_display(tmp_path):
    res = initlab.compare(model="mlp:16", data=_blobs(), inits=["he_normal", "zeros"], seeds=2, epochs=3,
                          out=tmp_path / "s", batch_size=32)  # fmt: skip
    assert [row["rank"] for row in res.table] == [1, 2]
    assert res.best == res.table[0]["arm"]
    frame = res.to_pandas()
    assert list(frame["arm"]) == [r.arm for r in res.rows]
    assert frame.loc[1, "test_acc"] == res.rows[0].test_acc.mean
    assert set(res.curves) == {"he_normal", "zeros"}
    assert [e for e, _ in res.curves["zeros"]] == [1, 2, 3]
    page = res._repr_html_()
    assert "<table>" in page
    assert "he_normal" in page
    assert 'src="data:image/png;base64,' in page
    assert "he_normal" in repr(res)
    assert "test acc %" in repr(res)


def test_bad_python_data_and_models_are_named(tmp_path):
    with pytest.raises(TypeError, match="data must be a data set's name, a file"):
        initlab.compare(model="mlp:8", data=42, out=tmp_path / "a")
    with pytest.raises(TypeError, match=re.escape("model must be a spec (e.g. 'mlp:256,128'), an import path")):
        initlab.compare(model=3.5, data=_blobs(), out=tmp_path / "b")
    with pytest.raises(ValueError, match=r"each sample must be a pair \(x, y\)"):
        initlab.compare(model="mlp:8", data=TensorDataset(torch.zeros(10, 3)), out=tmp_path / "c")
