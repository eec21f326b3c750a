"""What a study builds from its spec: the data splits, the model, and each run's initialized starting point.

The one place where a study meets data, model builders and schemes, used by the shard trainer and by the report
(which rebuilds the weights a run started from). A run's initialization depends only on its arm's scheme and its
seed: the scheme draws from ``seed``, and a scheme that looks at data gets the same 256 training samples, drawn from
``seed`` too.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from initlab import data, models, mup, schemes
from initlab.studies import sweep
from initlab.studies.spec import Arm, Study
from initlab.studies.sweep import Point

log = logging.getLogger(__name__)

#: A study's train, validation and test splits.
Splits = tuple[data.Dataset, data.Dataset, data.Dataset]

#: Training samples shown to a scheme that looks at data (LSUV, "auto"), drawn with the run's seed.
INIT_SAMPLES = 256


def load_split(study: Study, split: data.Split) -> data.Dataset:
    """One split of the study's data set, normalized with statistics from the training split."""
    normalize = None if study.normalize == "none" else study.normalize
    return data.load(study.dataset, split=split, normalize=normalize, **study.dataset_options)


def load_splits(study: Study) -> Splits:
    """Train, validation and test splits, normalized with statistics from the training split (the data set read
    once: :func:`initlab.data.load_splits`)."""
    normalize = None if study.normalize == "none" else study.normalize
    train, val, test = data.load_splits(study.dataset, normalize=normalize, **study.dataset_options)
    return train, val, test


def outputs(ds: data.Dataset) -> int:
    """The model's output units for ``ds``: its number of classes, or for regression the size of one target."""
    if ds.num_classes is not None:
        return ds.num_classes
    return math.prod(ds.y.shape[1:])


def build_model(study: Study, input_shape: tuple[int, ...], num_outputs: int, point: Point = ()) -> nn.Module:
    """The study's architecture at grid ``point`` for inputs of ``input_shape`` and ``num_outputs`` outputs (the
    classes, or a regression target's size; :func:`outputs`), not yet initialized."""
    return models.build(study.model_for(point), input_shape=tuple(input_shape), num_classes=num_outputs)


def init_sample(x: torch.Tensor, seed: int) -> torch.Tensor:
    """The training inputs a data-dependent scheme sees for the run with ``seed``."""
    return x[torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))[:INIT_SAMPLES]]


def parametrization(
    study: Study, arm: Arm, model: nn.Module, input_shape: tuple[int, ...], num_classes: int, point: Point = ()
) -> mup.Parametrization:
    """``arm``'s parametrization of ``model`` (the study's model at ``point``): muP relative to the same model at the
    arm's base width (:meth:`Study.base_width`; built on the meta device, so without memory or random draws), or
    the standard one."""
    spec = mup.parse(arm.parametrization)
    if spec.kind == "standard":
        return mup.Parametrization.standard(model)
    here = study.model_for(point)
    base_spec = models.resize(here, width=study.base_width(arm))
    wider_spec = models.resize(here, width=2 * max(models.parse(here).widths))
    with torch.device("meta"):
        base = models.build(base_spec, input_shape=tuple(input_shape), num_classes=num_classes)
        wider = models.build(wider_spec, input_shape=tuple(input_shape), num_classes=num_classes)
    return mup.Parametrization.mup(model, base, output=spec.output, wider=wider)


def initialize(
    model: nn.Module,
    scheme: str | Mapping[str, Any],
    *,
    seed: int,
    sample: torch.Tensor | None,
    scale: float = 1.0,
    parametrization: mup.Parametrization | None = None,
) -> None:
    """Apply an arm's scheme with the run's seed in place (``sample``: the inputs from :func:`init_sample`), then
    multiply every weight tensor (two or more axes) by ``scale``, the swept initialization scale, then rescale what
    the ``parametrization`` rescales (muP's output layer)."""
    schemes.resolve(scheme).apply(model, seed=seed, data=sample)
    if scale != 1.0:
        with torch.no_grad():
            for p in model.parameters():
                if p.dim() >= 2:
                    p.mul_(scale)
    if parametrization is not None:
        parametrization.rescale(model)


def pinned(study: Study) -> Study:
    """``study`` with its data file, if it has one, named by its absolute path and pinned by its content hash
    (``dataset_options["sha256"]``, :func:`initlab.data.files.digest`), so that the study records exactly which data
    it ran on and a resume on changed data is refused. A study on a built-in data set is returned as it is."""
    if not data.files.is_file(study.dataset):
        return study
    path = str(Path(study.dataset).expanduser().resolve())
    options = dict(study.dataset_options)
    options["sha256"] = data.files.verify(path, options.get("sha256"))
    pinned = study.with_overrides(dataset=path, dataset_options=options)
    if study.train.loss == "cross_entropy" and load_split(pinned, "train").num_classes is None:
        log.info("%s has regression targets: training with the mean squared error", path)
        return pinned.with_overrides(train={"loss": "mse"})
    return pinned


def check_same_data(recorded: Mapping[str, Any], study: Study) -> None:
    """:class:`~initlab.data.files.DataChangedError` when ``study`` names the data file of the ``recorded`` study
    config but a different content hash: the file changed since that study started."""
    old = (recorded.get("dataset_options") or {}).get("sha256")
    new = study.dataset_options.get("sha256")
    if recorded.get("dataset") == study.dataset and old and new and old != new:
        raise data.files.DataChangedError(
            f"data file {study.dataset!r} has changed since the study in this folder started: its sha256 is now "
            f"{new}, the study ran on {old}. Restore that file, or start a new study (another --out) on the new data."
        )


def check(study: Study) -> None:
    """Check the data set's name (or its file, its content hash and its labels), every arm's scheme and the model
    spec before anything trains; ValueError names the closest match."""
    if data.files.is_file(study.dataset):
        train = load_split(study, "train")
        shape, classes, sized = train.input_shape, outputs(train), True
        if train.num_classes is None and study.train.loss != "mse":
            raise ValueError(
                f"{study.dataset} has regression targets: train with loss='mse' (--loss mse), not "
                f"{study.train.loss!r}, or pass task='classification' (--task classification)."
            )
    else:
        meta = data.info(study.dataset)
        # The registry's shapes hold for a data set's default options only.
        shape, classes, sized = tuple(meta.input_shape), meta.num_classes, not study.dataset_options
    for arm in study.arms:
        check_arm(arm)
    models.check(study.model)
    # A spec's shapes are known without loading the data: build each architecture of the sweep to check its size.
    if models.is_spec(study.model) and sized and classes:
        with torch.device("meta"):  # without memory
            for spec in dict.fromkeys(study.model_for(point) for point in study.points()):
                models.build(spec, input_shape=shape, num_classes=classes)


def check_arm(arm: Arm) -> None:
    """Resolve ``arm``'s scheme, so that a typo stops the study with the arm's label in the message."""
    if not isinstance(arm.scheme, (str, Mapping)):
        raise TypeError(f"arm {arm.label!r}: a scheme must be a name or a config dict, got {arm.scheme!r}.")
    try:
        schemes.resolve(arm.scheme)
    except ValueError as exc:
        raise ValueError(f"arm {arm.label!r}: {exc}") from None


class InitSource:
    """Rebuilds the model a run started from, from the study alone (what a report shows next to the curves).

    The model is sized from the data set's registry entry when the study uses the default options, so that nothing
    is loaded for schemes that do not look at data; the training split is loaded once, when first needed.
    """

    def __init__(self, study: Study) -> None:
        self.study = study
        self._train: data.Dataset | None = None
        if study.dataset_options or data.files.is_file(study.dataset):  # the registry's shapes: default options only
            self.input_shape, self.num_classes = self.train().input_shape, outputs(self.train())
        else:
            meta = data.info(study.dataset)
            self.input_shape, self.num_classes = tuple(meta.input_shape), meta.num_classes

    def train(self) -> data.Dataset:
        """The study's training split, normalized as the study normalizes it."""
        if self._train is None:
            self._train = load_split(self.study, "train")
        return self._train

    def initial_model(self, arm: Arm, seed: int, point: Point = ()) -> nn.Module:
        """The study's model at grid ``point`` initialized by ``arm`` with ``seed`` (its scheme, the point's scale and
        its parametrization), exactly as the run with that seed and point started."""
        model = build_model(self.study, self.input_shape, self.num_classes, point)
        sample = init_sample(self.train().x, seed) if schemes.uses_data(arm.scheme) else None
        param = parametrization(self.study, arm, model, self.input_shape, self.num_classes, point)
        initialize(model, arm.scheme, seed=seed, sample=sample, scale=sweep.scale_for(point), parametrization=param)
        return model
