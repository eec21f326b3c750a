"""The Study: dataset + model + training settings + arms (schemes) + seeds. A validated, serializable config.

A study is built from Python (``Study(...)``), from a TOML file (``Study.from_toml``) or from CLI flags; every field
is checked up front (:meth:`Study.validate`), so that a typo in an initializer name stops the study before any
training, with the closest match named.

TOML form::

    name = "mnist-inits"
    dataset = "mnist"                            # or a file: "houses.csv", with dataset_options = {target = "price"}
    model = "keras-mnist"                        # or an import path: "mypkg.nets:build"
    seeds = [0, 1]
    inits = ["glorot_uniform", "he_normal"]      # arms named after their scheme
    [arms.lsuv]                                  # or arms with a label and any scheme config
    scheme = "lsuv"
    [train]
    optimizer = "adam"
    lr = 1e-3
    epochs = 3
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

from initlab import models, mup
from initlab.checks import check_int, did_you_mean
from initlab.studies import sweep as axes
from initlab.studies.sweep import Point
from initlab.training.settings import TrainSettings

#: The twelve initializers the MNIST article compares (Dense network, Adam, 20 epochs), in its order.
ARTICLE_INITS: tuple[str, ...] = (
    "zeros",
    "ones",
    "orthogonal",
    "identity",
    "random_normal",
    "random_uniform",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
)

#: The article's network under its memorable name (see initlab.models).
ARTICLE_MODEL = "keras-mnist"


@dataclass(frozen=True)
class Arm:
    """One arm of a study: a label, a scheme (a name such as ``"he_normal"`` or ``"lsuv"``, or a config dict) and a
    parametrization (:mod:`initlab.mup`: ``None`` or ``"standard"``, ``"mup"``, or ``{"name": "mup", "base_width":
    64, "output": "zero"}``; muP's base width defaults to the study's smallest width)."""

    label: str
    scheme: str | dict[str, Any]
    parametrization: str | dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        # The parametrization only when one is given, so that other studies keep their configs (and folders).
        extra = {"parametrization": self.parametrization} if self.parametrization is not None else {}
        return {"label": self.label, "scheme": self.scheme, **extra}


@dataclass(frozen=True)
class RunDef:
    """One run of a study: its id, its configuration's label, its arm, its grid point (indices) and its seed."""

    run_id: str
    label: str
    arm_index: int
    point_index: int
    seed: int


@dataclass(frozen=True)
class Study:
    """What to train and compare. ``config()`` is what the Store records and what a resumed study must match."""

    arms: tuple[Arm, ...]
    name: str = "study"
    # A built-in data set's name, or the path of a data file (initlab.data.files), pinned by its content hash in
    # dataset_options["sha256"] when the study runs (initlab.studies.build.pinned).
    dataset: str = "mnist"
    # Extra arguments of initlab.data.load (n_samples, noise, ... for the toy sets; target, task, sha256 for a file).
    dataset_options: dict[str, Any] = field(default_factory=dict)
    # "standardize" (zero mean, unit variance from the training split), "minmax" or "none".
    normalize: str = "standardize"
    model: str = ARTICLE_MODEL
    seeds: tuple[int, ...] = (0, 1)
    train: TrainSettings = field(default_factory=TrainSettings)
    # Epochs after which every run is diagnosed (initlab.diagnose: per-layer signal, gradients, Jacobian) on a fixed
    # batch of training data, stored in the Store; 0 is the initialization. Empty to skip.
    diagnose_epochs: tuple[int, ...] = (0,)
    # Axes varied besides the arm and the seed, {axis: values} (initlab.studies.sweep): every arm runs at every
    # point of their grid. Empty: one point, the settings above.
    sweep: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.arms:
            raise ValueError("a study needs at least one arm (--inits).")
        labels = [a.label for a in self.arms]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"arm labels must be unique; repeated: {dupes}.")
        _check_distinct_labels(labels)
        if not self.seeds:
            raise ValueError("a study needs at least one seed.")
        for s in self.seeds:
            check_int("seed", s, minimum=0)
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {list(self.seeds)}.")
        for e in self.diagnose_epochs:
            check_int("diagnose_epochs", e, minimum=0)
        if self.normalize not in ("standardize", "minmax", "none"):
            raise ValueError(
                f"normalize={self.normalize!r} is not allowed; choose 'standardize', 'minmax' or 'none'."
                + did_you_mean(self.normalize, ("standardize", "minmax", "none"))
            )
        object.__setattr__(self, "sweep", axes.check_sweep(self.sweep, model=self.model, train=self.train))
        for arm in self.arms:
            self._check_parametrization(arm)
        runs = len(self.arms) * len(self.seeds) * math.prod(len(v) for v in self.sweep.values())
        if runs > MAX_RUNS:
            raise ValueError(f"the study has {runs:,} runs ({len(self.arms)} arms x {len(self.seeds)} seeds x "
                             f"{runs // len(self.arms) // len(self.seeds):,} grid points); initlab runs at most "
                             f"{MAX_RUNS:,} in one study. Use fewer seeds or fewer values per axis.")  # fmt: skip

    def _check_parametrization(self, arm: Arm) -> None:
        try:
            spec = mup.parse(arm.parametrization)
            if spec.kind == "mup":
                models.resize(self.model, width=self.base_width(arm))
        except ValueError as exc:
            raise ValueError(f"arm {arm.label!r}: {exc}") from None

    def base_width(self, arm: Arm) -> int:
        """The base width of ``arm``'s muP (where it equals the standard parametrization): the arm's own, else the
        smallest swept width, else the model's width."""
        spec = mup.parse(arm.parametrization)
        if spec.base_width is not None:
            return spec.base_width
        if "width" in self.sweep:
            return min(self.sweep["width"])
        widths = models.parse(self.model).widths
        if not widths:
            raise ValueError(f"muP needs hidden layers to scale, and model {self.model!r} has none.")
        return min(widths)

    # -- runs -----------------------------------------------------------------------------------------------------
    def points(self) -> list[Point]:
        """The grid points of the sweep, ``[()]`` without one."""
        return axes.points(self.sweep)

    def runs(self) -> list[RunDef]:
        """Every run, seeds outermost, then arms, then grid points: ``"he_normal/s0"``, ``"he_normal@lr=0.01/s0"``."""
        points = self.points()
        return [
            RunDef(f"{axes.label(arm.label, point)}/s{seed}", axes.label(arm.label, point), a, p, seed)
            for seed in self.seeds
            for a, arm in enumerate(self.arms)
            for p, point in enumerate(points)
        ]

    def run_ids(self) -> list[tuple[str, Arm, int]]:
        """``(run_id, arm, seed)`` for every run, in the order of :meth:`runs`."""
        return [(r.run_id, self.arms[r.arm_index], r.seed) for r in self.runs()]

    def labels(self) -> list[str]:
        """The label of every configuration (arm at a grid point), in the study's order."""
        return [axes.label(arm.label, point) for arm in self.arms for point in self.points()]

    def settings_for(self, point: Point) -> TrainSettings:
        """The training settings of the runs at ``point``."""
        return axes.settings_for(self.train, point)

    def model_for(self, point: Point) -> str:
        """The model spec of the runs at ``point``."""
        return axes.model_for(self.model, point)

    def population_key(self, point: Point) -> tuple[Any, ...]:
        """Runs whose points have equal keys train as one population (see :mod:`initlab.studies.sweep`)."""
        return axes.population_key(self.model, self.train, point)

    def population_indices(self) -> list[int]:
        """For each grid point, the index of its population: the order of first appearance of the points' keys."""
        keys = [self.population_key(point) for point in self.points()]
        index = {key: i for i, key in enumerate(dict.fromkeys(keys))}
        return [index[key] for key in keys]

    def run_columns(self) -> dict[str, dict[str, Any]]:
        """Per run id, its value of every sweep axis and its population's index (empty without a sweep): the
        columns an export adds so that its rows can be grouped by any axis."""
        if not self.sweep:
            return {}
        points, populations = self.points(), self.population_indices()
        return {
            r.run_id: {**dict(points[r.point_index]), "population": populations[r.point_index]} for r in self.runs()
        }

    # -- config ---------------------------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The exact, JSON-serializable config of the study."""
        return {
            "name": self.name,
            "dataset": self.dataset,
            "dataset_options": dict(self.dataset_options),
            "normalize": self.normalize,
            "model": self.model,
            "seeds": list(self.seeds),
            "arms": [a.to_dict() for a in self.arms],
            "train": self.train.to_dict(),
            "diagnose_epochs": list(self.diagnose_epochs),
            # Only when there is one, so that a study without a sweep keeps its config (and its folder's name).
            **({"sweep": {name: list(values) for name, values in self.sweep.items()}} if self.sweep else {}),
        }

    def fingerprint(self) -> str:
        """A short hash of :meth:`config`, used to name the default study folder."""
        text = json.dumps(self.config(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Study:
        """Rebuild a study from :meth:`config` (or a TOML table of the same form; see the module docstring)."""
        config = dict(config)
        known = {"name", "dataset", "dataset_options", "normalize", "model", "seeds", "arms", "inits", "train",
                 "diagnose_epochs", "sweep"}  # fmt: skip
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(
                f"unknown study field {unknown[0]!r}.{did_you_mean(unknown[0], known)} "
                f"Allowed: {', '.join(sorted(known))}."
            )
        _check_field_types(config)
        arms = list(arms_from_names(config.pop("inits", [])))
        raw_arms = config.pop("arms", [])
        if isinstance(raw_arms, Mapping):  # TOML tables: [arms.label] scheme = ...
            raw_arms = [{"label": k, **(v if isinstance(v, Mapping) else {"scheme": v})} for k, v in raw_arms.items()]
        for a in raw_arms:
            if not isinstance(a, Mapping):
                raise TypeError(f"each arm must be a table with a 'scheme' (and a 'label'), got {a!r}.")
            unknown_keys = sorted(set(a) - {"label", "scheme", "parametrization"})
            if unknown_keys:
                hint = did_you_mean(str(unknown_keys[0]), ("label", "scheme", "parametrization"))
                raise ValueError(f"unknown arm field {unknown_keys[0]!r}.{hint} An arm has a label, a scheme and "
                                 "optionally a parametrization.")  # fmt: skip
            if "scheme" not in a:
                raise ValueError(f"each arm needs a 'scheme' (and a 'label'), got {dict(a)!r}.")
            label = str(a.get("label") or _label(a["scheme"]))
            arms.append(Arm(label=label, scheme=a["scheme"], parametrization=a.get("parametrization")))
        train = config.pop("train", {})
        seeds = config.pop("seeds", (0, 1))
        if isinstance(seeds, int):
            seeds = tuple(_seed_range(seeds))
        return cls(
            arms=tuple(arms),
            train=train if isinstance(train, TrainSettings) else TrainSettings.from_dict(dict(train)),
            seeds=tuple(seeds),
            diagnose_epochs=tuple(config.pop("diagnose_epochs", (0,))),
            sweep=dict(config.pop("sweep", {})),
            **config,
        )

    def with_overrides(
        self,
        *,
        inits: str | Sequence[str] | None = None,
        seeds: int | Sequence[int] | None = None,
        train: Mapping[str, Any] | None = None,
        sweep: Mapping[str, Any] | None = None,
        parametrization: str | Sequence[str] | None = None,
        **fields: Any,
    ) -> Study:
        """A copy with the given settings replaced, as CLI flags override a study file; ``None`` leaves one as is.

        ``inits`` (names, comma-separated or a list; ``"all"`` for the article's twelve) replaces the arms; ``seeds``
        is a count (``0..N-1``) or a list; ``train`` updates the training settings, and ``steps`` without
        ``epochs`` trains for that many steps instead of the file's epochs. ``sweep`` sets axes (replacing the
        file's axes of the same names). ``parametrization`` (names, comma-separated or a list: ``"standard,mup"``)
        runs every arm under each (:mod:`initlab.mup`), labelled ``he_normal`` and ``he_normal+mup``. Other keywords
        are fields of the study (``name``, ``dataset``, ``model``, ...). The result is validated like any study.
        """
        config = self.config()
        config.update({k: v for k, v in fields.items() if v is not None})
        if inits is not None:
            config["arms"] = [a.to_dict() for a in arms_from_names(inits)]
        if seeds is not None:
            config["seeds"] = list(_seed_range(seeds)) if isinstance(seeds, int) else list(seeds)
        if parametrization is not None:
            config["arms"] = _parametrized(config["arms"], parametrization)
        given = {k: v for k, v in (train or {}).items() if v is not None}
        if given.get("steps") is not None and given.get("epochs") is None:
            config["train"].pop("epochs", None)
        config["train"].update(given)
        if sweep:
            config["sweep"] = {**config.get("sweep", {}), **sweep}
        return Study.from_config(config)

    @classmethod
    def quick_article(cls) -> Study:
        """The default study of ``initlab compare``: the MNIST article's network and twelve initializers, 2 seeds,
        3 epochs (the article trains 20; ``initlab reproduce keras-mnist`` runs it in full)."""
        return cls.from_config({"name": "compare", "inits": list(ARTICLE_INITS), "seeds": 2, "train": {"epochs": 3}})

    @classmethod
    def from_toml(cls, path: str | Path, *, inits: str | Sequence[str] | None = None) -> Study:
        """Read a study file (see the module docstring for its form); ``inits`` gives the arms of a file that names
        none (as ``--inits`` does with ``--config``)."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ValueError(f"study file {str(path)!r} does not exist.") from None
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"study file {str(path)!r} is not valid TOML: {exc}") from None
        if inits is not None and not data.get("arms") and not data.get("inits"):
            data["inits"] = [part.strip() for part in inits.split(",")] if isinstance(inits, str) else list(inits)
        return cls.from_config(data)


#: What each study field may be, in words, and the Python types that are that (bool is never an int here).
_FIELD_TYPES: dict[str, tuple[str, tuple[type, ...]]] = {
    "name": ("text", (str,)),
    "dataset": ("text (a data set name or a data file)", (str,)),
    "model": ("text (a model spec)", (str,)),
    "normalize": ("text", (str,)),
    "dataset_options": ("a table", (Mapping,)),
    "train": ("a table of training settings", (Mapping, TrainSettings)),
    "sweep": ("a table of axis = [values]", (Mapping,)),
    "seeds": ("a count or a list of integers", (int, list, tuple)),
    "inits": ("a list of scheme names or one comma-separated text", (str, list, tuple)),
    "arms": ("a list of arms or a table of [arms.LABEL]", (list, tuple, Mapping)),
    "diagnose_epochs": ("a list of integers", (list, tuple)),
}


def _type_name(value: object) -> str:
    return {str: "text", int: "integer", float: "number", bool: "boolean", list: "list", tuple: "list",
            dict: "table"}.get(type(value), type(value).__name__)  # fmt: skip


def _check_field_types(config: Mapping[str, Any]) -> None:
    """TypeError naming the study field whose value has the wrong type and the type it needs (a TOML ``name = 5``)."""
    for name, value in config.items():
        what, types = _FIELD_TYPES[name]
        if isinstance(value, bool) or not isinstance(value, types):
            raise TypeError(f"study field {name!r} must be {what}, got {value!r} ({_type_name(value)}).")
        if name in ("seeds", "diagnose_epochs") and isinstance(value, (list, tuple)):
            bad = [v for v in value if isinstance(v, bool) or not isinstance(v, int)]
            if bad:
                raise TypeError(f"study field {name!r} must be {what}, got {bad[0]!r} ({_type_name(bad[0])}) in it.")


#: The most runs one study may have (arms x seeds x grid points), checked before any run is listed.
MAX_RUNS = 100_000


def _seed_range(count: int) -> range:
    """Seeds 0..count-1 from a count, which must be a positive integer no larger than :data:`MAX_RUNS`."""
    check_int("seeds", count, minimum=1)
    if count > MAX_RUNS:
        raise ValueError(f"seeds={count:,} is more than a study can run ({MAX_RUNS:,} runs at most); use fewer.")
    return range(count)


def _normal_label(label: str) -> str:
    """A label with case, accents, spaces and punctuation normalized away: labels equal under it are too alike to
    tell apart in file names, on case-insensitive file systems or at a glance."""
    return re.sub(r"[\W_]+", "", unicodedata.normalize("NFKC", label).casefold())


def _check_distinct_labels(labels: Sequence[str]) -> None:
    """ValueError naming two labels that differ only in case, spaces or punctuation (``a b`` and ``a_b``)."""
    seen: dict[str, str] = {}
    for label in labels:
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"arm labels must be non-empty text, got {label!r}.")
        key = _normal_label(label)
        if key in seen:
            raise ValueError(f"arm labels {seen[key]!r} and {label!r} differ only in case, spaces or punctuation; "
                             "give them labels that differ in letters or digits.")  # fmt: skip
        seen[key] = label


def _label(scheme: str | Mapping[str, Any]) -> str:
    if isinstance(scheme, str):
        return scheme
    return str(scheme.get("class_name") or scheme.get("name") or "scheme")


def arms_from_names(names: str | Sequence[str]) -> list[Arm]:
    """Arms from a comma-separated list or a sequence of scheme names; ``"all"`` means the article's twelve."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    out: list[Arm] = []
    for n in names:
        out.extend(Arm(x, x) for x in (ARTICLE_INITS if n == "all" else (n,)))
    return out


def _parametrized(arms: Sequence[Mapping[str, Any]], names: str | Sequence[str]) -> list[dict[str, Any]]:
    """Every arm under each parametrization in ``names``: the standard one keeps the arm's label, another is added to
    it (``he_normal+mup``)."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not names:
        raise ValueError("parametrization needs at least one name: standard, mup or both (standard,mup).")
    out: list[dict[str, Any]] = []
    for name in names:
        kind = mup.parse(name).kind
        for arm in arms:
            if kind == "standard":
                out.append({"label": arm["label"], "scheme": arm["scheme"]})
            else:
                out.append({"label": f"{arm['label']}+{kind}", "scheme": arm["scheme"], "parametrization": kind})
    return out
