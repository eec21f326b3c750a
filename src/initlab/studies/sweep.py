"""Sweep axes: the settings a study varies besides the arm and the seed, and what each grid point means.

A study's ``sweep`` maps axis names to the values they take; the study runs every arm at every point of the grid
(the Cartesian product of the axes, in the order given) with every seed. The axes:

- ``scale``: the initialization scale c. After the arm's scheme has drawn a run's weights, every weight tensor (every
  parameter with two or more axes; biases and norm parameters are left as drawn) is multiplied by c, so a weight of
  variance v gets variance c²·v: with a fan-in scheme such as LeCun's, c² is the σ_w² of the mean-field theory
  (Poole et al. 2016; Schoenholz et al. 2017). c = 0 gives zero weights.
- ``width`` and ``depth``: the number of units (channels) of every hidden layer and the number of hidden layers, for
  model specs whose hidden layers are all the same width (:func:`initlab.models.resize`).
- any field of :class:`~initlab.training.TrainSettings`: ``lr``, ``optimizer``, ``batch_size``, ``momentum``,
  ``weight_decay``, ``epochs``, ...

Runs that share an architecture and every training setting except the learning rate train as one population: the
learning rate and the scale may differ from model to model within it (:data:`PER_MODEL_AXES`); any other axis makes
a population of its own (:func:`population_key`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from typing import Any

from initlab import models
from initlab.checks import did_you_mean
from initlab.training.settings import TrainSettings

#: A point of the grid: ``(axis, value)`` pairs in the order of the study's axes; ``()`` when nothing is swept.
Point = tuple[tuple[str, Any], ...]

#: Axes that change the architecture.
MODEL_AXES: tuple[str, ...] = ("width", "depth")
#: Training settings that can be swept: every field of TrainSettings.
TRAIN_AXES: tuple[str, ...] = tuple(f.name for f in fields(TrainSettings))
#: Every axis a study can vary.
AXES: tuple[str, ...] = ("scale", *MODEL_AXES, *TRAIN_AXES)
#: Axes whose values may differ between the models of one population.
PER_MODEL_AXES: tuple[str, ...] = ("scale", "lr")


def check_sweep(sweep: Mapping[str, Any], *, model: str, train: TrainSettings) -> dict[str, tuple[Any, ...]]:
    """``sweep`` validated and normalized: axes in alphabetical order (the order of the grid and of the labels,
    whatever order they were given in: a stored config's keys come back sorted), each a tuple of distinct values.
    ValueError names the axis or the value.

    A single value (not a list) is an axis of one value. Every value is checked by what uses it: training settings
    by :class:`TrainSettings`, width and depth by building the resized model spec, scale as a finite number >= 0.
    """
    if not isinstance(sweep, Mapping):
        raise TypeError(f"sweep must be a table of axis = [values], got {sweep!r}.")
    out: dict[str, tuple[Any, ...]] = {}
    for name, raw in sorted(sweep.items(), key=lambda item: str(item[0])):
        if name not in AXES:
            raise ValueError(
                f"unknown sweep axis {name!r}.{did_you_mean(str(name), AXES)} Axes: scale, width, depth, or a "
                "training setting (lr, optimizer, batch_size, momentum, ...)."
            )
        values = tuple(raw) if isinstance(raw, (list, tuple)) else (raw,)
        if not values:
            raise ValueError(f"sweep axis {name!r} has no values.")
        if len({_text(v) for v in values}) != len(values):
            raise ValueError(f"sweep axis {name!r} repeats a value: {list(values)}.")
        for value in values:
            _check_value(name, value, model=model, train=train)
        out[name] = values
    return out


def _check_value(name: str, value: Any, *, model: str, train: TrainSettings) -> None:
    if name == "scale":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"sweep axis 'scale': each value must be a finite number >= 0, got {value!r}.")
    elif name in MODEL_AXES:
        models.resize(model, **{name: value})
    else:
        try:
            replace(train, **{name: value})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"sweep axis {name!r}: {exc}") from None


def points(sweep: Mapping[str, Sequence[Any]]) -> list[Point]:
    """Every point of the grid, the first axis varying slowest; ``[()]`` without axes."""
    names = list(sweep)
    return [tuple(zip(names, combo, strict=True)) for combo in itertools.product(*(sweep[n] for n in names))]


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def label(arm: str, point: Point) -> str:
    """The label of an arm at a grid point: ``"he_normal@lr=0.003,scale=0.5"``; the arm's own without axes."""
    if not point:
        return arm
    return arm + "@" + ",".join(f"{name}={_text(value)}" for name, value in point)


def settings_for(train: TrainSettings, point: Point) -> TrainSettings:
    """The training settings at ``point``."""
    changes = {name: value for name, value in point if name in TRAIN_AXES}
    return replace(train, **changes) if changes else train


def model_for(model: str, point: Point) -> str:
    """The model spec at ``point`` (resized when width or depth is swept)."""
    shape = {name: value for name, value in point if name in MODEL_AXES}
    return models.resize(model, **shape) if shape else model


def scale_for(point: Point) -> float:
    """The initialization scale at ``point`` (1 when not swept)."""
    return float(dict(point).get("scale", 1.0))


def population_key(model: str, train: TrainSettings, point: Point) -> tuple[Any, ...]:
    """Runs with equal keys train as one population: the same architecture and the same settings but the rate."""
    settings = replace(settings_for(train, point), lr=train.lr)
    return (model_for(model, point), tuple(sorted(settings.to_dict().items(), key=lambda kv: kv[0])))
