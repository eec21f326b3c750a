"""``initlab.compare``: the command line's main job in one call, for notebooks and scripts.

``initlab.compare(model=..., data=..., inits=[...], seeds=3, epochs=5)`` builds the same study as ``initlab compare``
with the same flags (:meth:`initlab.studies.Study.with_overrides` over the quick article study), runs it (or resumes
it: finished runs are never repeated) and returns a :class:`CompareResult`: the ranked table as rows, a pandas
DataFrame on request, and in Jupyter a rich display with the table and the learning curves.

``data`` is a built-in data set's name, a data file (``.npz``, ``.csv`` with ``target=``, ``.parquet``), or data in
memory: ``(x, y)`` arrays or tensors, a dict of arrays with Keras' names (``x_train``, ``y_train``, ``x_test``,
``y_test``) or ``x`` and ``y``, a ``torch.utils.data.Dataset`` (map-style, or iterable: read once, as a stream, in
batches of :data:`STREAM_BATCH`), or a ``(train_dataset, test_dataset)`` pair. Data in memory is written once into
the study folder as ``data.npz`` and from there is data from a file like any other (:mod:`initlab.data.files`): the
same split, normalization and content hash, so the same samples give the same numbers whichever form they came in.

``model`` is a spec (``"mlp:256,128"``), an import path (``"mypkg.nets:build"``), a factory ``f(input_shape,
num_classes) -> nn.Module``, an ``nn.Module`` class, or a built ``nn.Module``, deep-copied for every run
(:func:`initlab.factory.register`).
"""

from __future__ import annotations

import base64
import html
import io
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from initlab import factory
from initlab.data import files

if TYPE_CHECKING:
    import pandas as pd

    from initlab.studies import ArmSummary, Study
    from initlab.studies.verdict import Verdict

log = logging.getLogger(__name__)

#: Samples per batch when a torch Dataset is read into arrays.
STREAM_BATCH = 1024
#: The file a study folder keeps data given in memory in.
DATA_FILE = "data.npz"
DEFAULT_ROOT = Path("initlab-studies")

DataSource = str | os.PathLike[str] | tuple[Any, Any] | Mapping[str, Any] | torch.utils.data.Dataset
ModelSource = str | nn.Module | Callable[..., nn.Module]


def compare(
    model: ModelSource | None = None,
    data: DataSource | None = None,
    inits: str | Sequence[str] | None = None,
    *,
    seeds: int | Sequence[int] | None = None,
    epochs: int | None = None,
    steps: int | None = None,
    target: str | None = None,
    task: str | None = None,
    parametrization: str | Sequence[str] | None = None,
    sweep: Mapping[str, Sequence[Any]] | None = None,
    name: str | None = None,
    out: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    device: str = "cpu",
    report: bool = False,
    **train: Any,
) -> CompareResult:
    """Train ``model`` on ``data`` under every initialization in ``inits`` for ``seeds`` seeds; rank them.

    Args:
        model: see the module docstring (default: the MNIST article's network, ``keras-mnist``).
        data: see the module docstring (default: MNIST).
        inits: initializers or schemes, a list or comma-separated (default: the article's twelve; ``"all"`` too).
        seeds: a count (``0..N-1``) or a list of seeds (default 2).
        epochs, steps: how long each run trains (default 3 epochs); ``steps`` instead of epochs.
        target: the label column of a CSV or Parquet ``data`` file.
        task: ``"auto"`` (default), ``"classification"`` or ``"regression"`` for data you bring.
        parametrization: ``"standard"``, ``"mup"`` or both (every arm under each).
        sweep: axes to sweep, e.g. ``{"lr": [1e-3, 1e-2]}`` (:mod:`initlab.studies.sweep`).
        name: the study's name (default ``"compare"``).
        out: the study folder (default ``initlab-studies/NAME-HASH``); an existing one resumes.
        workers: worker processes (default one per core); a model given as a Python object trains in this process.
        device: ``"cpu"`` or ``"cuda[:N]"``.
        report: also build the HTML report in the folder.
        **train: training settings (``lr``, ``optimizer``, ``batch_size``, ``momentum``, ``loss``, ...).

    Raises:
        ValueError, TypeError, FileNotFoundError: bad input, with a message that says what to do; the data changed
            since the study in ``out`` started (:class:`initlab.data.files.DataChangedError`).
    """
    from initlab.studies import Study, build, run_study

    options = {k: v for k, v in {"target": target, "task": task}.items() if v is not None}
    in_memory = data is not None and not isinstance(data, (str, os.PathLike))
    arrays = _arrays(data) if in_memory else None
    dataset: str | None
    if arrays is not None:
        digest = files.arrays_digest(arrays)
        dataset, options["sha256"] = f"{DATA_FILE}", digest
    else:
        dataset = None if data is None else str(data)
    study = Study.quick_article().with_overrides(
        name=name,
        dataset=dataset,
        dataset_options=options or None,
        model=_model_name(model),
        inits=inits,
        seeds=seeds,
        train={"epochs": epochs, "steps": steps, **train},
        sweep=dict(sweep or {}),
        parametrization=parametrization,
    )
    folder = Path(out) if out is not None else DEFAULT_ROOT / f"{study.name}-{study.fingerprint()}"
    if arrays is not None:
        path = _write_data(folder, arrays, options["sha256"])
        study = study.with_overrides(dataset=str(path.resolve()))
    study = build.pinned(study)
    run_study(study, folder, workers=workers, device=device)
    if report:
        from initlab.report import build_report

        build_report(folder)
    return CompareResult.load(folder)


def _model_name(model: ModelSource | None) -> str | None:
    if model is None or isinstance(model, str):
        return model
    if isinstance(model, nn.Module) or callable(model):
        return factory.register(model)
    raise TypeError(
        f"model must be a spec (e.g. 'mlp:256,128'), an import path ('package.module:factory'), a factory "
        f"(input_shape, num_classes) -> nn.Module, an nn.Module class or instance; got {type(model).__name__}."
    )


def _arrays(data: Any) -> dict[str, np.ndarray]:
    """Data in memory as the arrays of an ``.npz`` (see the module docstring)."""
    if isinstance(data, torch.utils.data.Dataset):
        x, y = _stream(data, "data")
        return {"x": x, "y": y}
    if isinstance(data, tuple) and len(data) == 2:
        first, second = data
        if isinstance(first, torch.utils.data.Dataset) and isinstance(second, torch.utils.data.Dataset):
            (xt, yt), (xs, ys) = _stream(first, "the training set"), _stream(second, "the test set")
            return {"x_train": xt, "y_train": yt, "x_test": xs, "y_test": ys}
        return {"x": _array(first, "x"), "y": _array(second, "y")}
    if isinstance(data, Mapping):
        return {str(k): _array(v, str(k)) for k, v in data.items()}
    raise TypeError(
        f"data must be a data set's name, a file (.npz, .csv, .parquet), (x, y) arrays or tensors, a dict of arrays "
        f"(x_train, y_train, x_test, y_test, or x and y), a torch Dataset or a (train, test) pair of them; got "
        f"{type(data).__name__}."
    )


def _array(value: Any, name: str) -> np.ndarray:
    """One array as initlab stores it: inputs float32, integer labels int64, float targets float32, text as text."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"data {name}: cannot be read as an array ({exc}).") from None
    if array.dtype.kind == "O":
        array = array.astype(str)
    if name.startswith("x"):
        if array.dtype.kind not in "iufb":
            raise ValueError(f"data {name} must hold numbers, got dtype {array.dtype}.")
        return array.astype(np.float32)
    if array.dtype.kind in "iub":
        return array.astype(np.int64)
    if array.dtype.kind == "f":
        return array.astype(np.float32)
    return array


def _stream(dataset: torch.utils.data.Dataset, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Read a torch Dataset of ``(x, y)`` samples into two arrays, batch by batch (an iterable one as a stream)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=STREAM_BATCH, shuffle=False)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for i, batch in enumerate(loader):
        if not isinstance(batch, (list, tuple)) or len(batch) != 2:
            raise ValueError(
                f"{what}: each sample must be a pair (x, y); sample batch {i} is a {type(batch).__name__}"
                + (f" of {len(batch)}" if isinstance(batch, (list, tuple)) else "")
                + "."
            )
        xs.append(_array(batch[0], "x"))
        ys.append(_array(batch[1], "y"))
    if not xs:
        raise ValueError(f"{what} is empty.")
    return np.concatenate(xs), np.concatenate(ys)


def _write_data(folder: Path, arrays: Mapping[str, np.ndarray], digest: str) -> Path:
    """Write ``arrays`` to ``folder/data.npz`` once; refuse when the folder's file holds other data."""
    from initlab.fileio import atomic_writer

    path = folder / DATA_FILE
    if path.exists():
        files.verify(path, digest)  # the same data: keep the file (a resume); other data: DataChangedError
        return path
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path) as f:
        np.savez(f, **arrays)
    return path


@dataclass(frozen=True)
class CompareResult:
    """A study's ranked table and learning curves, read from its folder.

    ``rows`` are the ranked configurations (:class:`initlab.studies.ArmSummary`), best first; ``curves`` maps each
    configuration to its mean validation accuracy per epoch over its seeds (validation loss for regression).
    """

    folder: Path
    config: Mapping[str, Any]
    rows: tuple[ArmSummary, ...]
    curves: Mapping[str, tuple[tuple[int, float], ...]]
    metric: str  # "val_acc" or "val_loss": what `curves` holds
    verdict: Verdict  # best, indistinguishable from it, failed and why (initlab.studies.verdict)

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> CompareResult:
        """The result of the study in ``folder``."""
        from initlab.studies import Store, summarize
        from initlab.studies.verdict import verdict

        with Store.in_dir(folder, readonly=True) as store:
            rows = tuple(summarize(store))
            found = verdict(store, rows)
            config = store.study().config
            arm_of = {r.run_id: r.arm for r in store.runs()}
            epochs = store.epochs()
        metric = "val_acc" if any(r.test_acc.n for r in rows) else "val_loss"
        sums: dict[str, dict[int, list[float]]] = {}
        for e in epochs:
            value = getattr(e, metric)
            if value is not None and math.isfinite(value):
                sums.setdefault(arm_of[e.run_id], {}).setdefault(e.epoch, []).append(value)
        curves = {
            arm: tuple((epoch, float(np.mean(v))) for epoch, v in sorted(by_epoch.items()))
            for arm, by_epoch in sums.items()
        }
        return cls(Path(folder), config, rows, curves, metric, found)

    def study(self) -> Study:
        """The study as recorded (what ``initlab compare --resume FOLDER`` continues)."""
        from initlab.studies import Study

        return Study.from_config(self.config)

    @property
    def table(self) -> list[dict[str, Any]]:
        """The ranked table as rows of plain values: rank, arm, runs, test accuracy and loss (mean, std, 95%
        half-width), epochs to the target accuracy, diverged and failed runs."""
        out = []
        for r in self.rows:
            out.append(
                {
                    "rank": r.rank,
                    "arm": r.arm,
                    "runs": r.runs,
                    "finished": r.finished,
                    "diverged": r.diverged,
                    "failed": r.failed,
                    "test_acc": r.test_acc.mean,
                    "test_acc_std": r.test_acc.std,
                    "test_acc_ci95": r.test_acc.ci95,
                    "test_loss": r.test_loss.mean,
                    "test_loss_std": r.test_loss.std,
                    "epochs_to_target": r.epochs_to_target.mean,
                    "reached_target": r.reached_target,
                }
            )
        return out

    @property
    def best(self) -> str:
        """The label of the best-ranked configuration."""
        return self.rows[0].arm

    def to_pandas(self) -> pd.DataFrame:
        """The ranked table as a pandas DataFrame indexed by rank."""
        import pandas as pd

        return pd.DataFrame(self.table).set_index("rank")

    def _text_rows(self) -> list[tuple[str, ...]]:
        acc = self.metric == "val_acc"
        rows = []
        for r in self.rows:
            accuracy = r.test_acc.text(100.0) if acc else "-"
            diverged = f"{r.diverged}/{r.runs}" if r.diverged else ""
            rows.append((str(r.rank), r.arm, accuracy, r.test_loss.text(digits=3), diverged))
        return rows

    _HEADER = ("#", "arm", "test acc %", "test loss", "diverged")

    def __repr__(self) -> str:
        rows = [self._HEADER, *self._text_rows()]
        widths = [max(len(row[i]) for row in rows) for i in range(len(self._HEADER))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
        return f"CompareResult({str(self.folder)!r})\n" + "\n".join([*lines, *self.verdict.sentences()])

    def _repr_html_(self) -> str:
        """Jupyter's display: the ranked table and a figure of the learning curves (an inline PNG)."""
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self._HEADER)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in self._text_rows()
        )
        title = html.escape(f"{self.config.get('name', 'study')} on {self.config.get('dataset')}")
        figure = self._curves_png()
        img = f'<img alt="learning curves" src="data:image/png;base64,{figure}"/>' if figure else ""
        said = "".join(f"<li>{html.escape(line)}</li>" for line in self.verdict.sentences())
        return (
            f'<div class="initlab-compare"><p><b>{title}</b>: {html.escape(str(self.folder))}</p>'
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table><ul>{said}</ul>{img}</div>"
        )

    def _curves_png(self) -> str:
        """The learning curves (mean over seeds per configuration) as a base64 PNG, or '' without epochs."""
        if not self.curves:
            return ""
        from matplotlib.figure import Figure  # a bare Figure: pyplot and the notebook's backend are left alone

        fig = Figure(figsize=(6.4, 3.6), dpi=100)
        ax = fig.add_subplot()
        for r in self.rows:
            points = self.curves.get(r.arm)
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=r.arm)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy" if self.metric == "val_acc" else "validation loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", ncol=2)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return base64.b64encode(buffer.getvalue()).decode()
