"""The playground's state: one validated, serializable :class:`Setup`, read from and written to a URL query string.

Everything the page shows follows from a Setup, and the page keeps it in its URL, so a link reproduces a setup. The
server reads every value it receives here: numbers are checked against the ranges below, names against the allowed
ones (with the closest match, :func:`initlab.checks.did_you_mean`), and the work one update can ask for is bounded
(:data:`MAX_UPDATE_MACS`). A bad value is not fatal: :func:`parse_setup` keeps the previous value of that field (the
default on a fresh page) and returns a message for each one it rejected, which the page shows.

Query keys (every one optional)::

    data=circles|moons|spiral|xor|gaussians|mnist|dlai-circles   n=400  noise=0.1  split=0.5
    widths=10,5 (or depth=2&width=10)  act=relu  opt=sgd|momentum|adam  lr=0.01  batch=0 (full batch)
    arm=NAME[;std=S][;scale=C]  (repeated, 1 to 4)  seed=3  speed=5  layer=1  net=weights|gradients

An arm's NAME is a catalog initializer (``he_normal``, ``zeros``, ``orthogonal``, ...), a model-wide scheme (``auto``,
``lsuv``, ``keras``, ``torch``, ``critical``) or one of the article's presets (:data:`PRESETS`); ``std`` is the
standard deviation of ``random_normal`` and ``truncated_normal``; ``scale`` multiplies every weight matrix after
the initialization (as ``initlab compare --scale`` does).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal, get_args
from urllib.parse import parse_qs, urlencode

from initlab.checks import check_choice, did_you_mean

DataName = Literal["circles", "moons", "spiral", "xor", "gaussians", "mnist", "dlai-circles"]
OptimizerName = Literal["sgd", "momentum", "adam"]
NetworkView = Literal["weights", "gradients"]
ActivationName = Literal["relu", "tanh", "sigmoid", "leaky_relu", "selu", "gelu", "linear"]

DATA_NAMES: tuple[DataName, ...] = get_args(DataName)
#: The 2-D sets, trained in float64 (the assignment reproduction compares costs to 1e-9) and drawn as a plane.
PLANE_DATA: tuple[str, ...] = ("circles", "moons", "spiral", "xor", "gaussians", "dlai-circles")
OPTIMIZERS: tuple[OptimizerName, ...] = get_args(OptimizerName)
ACTIVATIONS: tuple[ActivationName, ...] = get_args(ActivationName)
NETWORK_VIEWS: tuple[NetworkView, ...] = get_args(NetworkView)
#: The article's presets (the deeplearning.ai notes "Initializing neural networks" and its course assignment): all
#: zeros, too small (N(0, 0.01²)), appropriate (He for ReLU-like activations, sqrt(1/n_prev) otherwise) and too large
#: (N(0, 10²)), drawn as the assignment draws them (:mod:`initlab.playground.presets`).
PRESETS: tuple[str, ...] = ("article:zero", "article:small", "article:appropriate", "article:large")
#: Momentum of the "momentum" optimizer: SGD with the classical heavy-ball coefficient most courses use.
MOMENTUM = 0.9

MAX_ARMS = 4
MAX_DEPTH = 50
MAX_WIDTH = 512
SAMPLES = (10, 2000)  # total samples (train + test) of a generated set or of the MNIST subset
NOISE = (0.0, 2.0)
SPLIT = (0.1, 0.9)  # the training fraction
LR = (1e-6, 10.0)
SEED = (0, 2**31 - 1)
SPEED = (1, 200)  # optimizer steps per update
STD = (1e-8, 100.0)
SCALE = (0.0, 100.0)
#: Longest query string read; a longer one is refused before it is parsed.
MAX_QUERY = 4096
#: The most multiply-adds one update may cost, all arms together: one optimizer step (counted as 3 passes over its
#: batch: forward, backward to the inputs and to the weights) plus the views (train and test sets and the
#: decision-boundary grid, one forward pass each). 3e9 float64 multiply-adds take about 0.1 s on two cores; a
#: 50 x 512 network is refused, a 50 x 64 or 2 x 512 one is fine.
MAX_UPDATE_MACS = 3e9
#: Side of the decision-boundary grid (cells), and the smallest it shrinks to for a large network.
GRID = 40
MIN_GRID = 16


class SetupError(ValueError):
    """One rejected value: ``key`` is the query key it came from."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Arm:
    """One initialization: ``name`` (initializer, scheme or preset), the normal's ``std`` where it has one, and a
    ``scale`` that multiplies every weight matrix afterwards."""

    name: str
    std: float | None = None
    scale: float = 1.0

    def __str__(self) -> str:
        text = self.name
        if self.std is not None:
            text += f";std={_num(self.std)}"
        if self.scale != 1.0:
            text += f";scale={_num(self.scale)}"
        return text

    @property
    def label(self) -> str:
        """A short name for the page: ``random_normal σ=0.01 ×10``."""
        text = self.name.removeprefix("article:") + (" (article)" if self.name in PRESETS else "")
        if self.std is not None:
            text += f" σ={_num(self.std)}"
        if self.scale != 1.0:
            text += f" ×{_num(self.scale)}"
        return text

    @property
    def preset(self) -> str | None:
        """The preset's kind (``zero``, ``small``, ``appropriate``, ``large``), or None for a catalog arm."""
        return self.name.removeprefix("article:") if self.name in PRESETS else None

    def scheme(self) -> Any:
        """The spec :func:`initlab.schemes.resolve` reads (not for presets)."""
        if self.std is None:
            return self.name
        import initlab

        cls = type(initlab.get(self.name)).__name__
        return {"class_name": cls, "config": {"stddev": self.std}}


#: Initializers whose config has a ``stddev`` (the normal's), by their canonical class name.
_HAS_STD = ("RandomNormal", "TruncatedNormal")


@dataclass(frozen=True)
class Setup:
    """Everything that defines what the page trains and shows (see the module docstring for the keys)."""

    data: DataName = "circles"
    n: int = 400  # samples in all; round(n * split) train, the rest test (ignored by dlai-circles: 300 + 100)
    noise: float = 0.1  # std of the generator's Gaussian noise
    split: float = 0.5
    widths: tuple[int, ...] = (10, 5)  # hidden layers, first to last (the assignment's [2, 10, 5, 1])
    act: ActivationName = "relu"
    opt: OptimizerName = "adam"
    lr: float = 0.01
    batch: int = 0  # 0: full batch (gradient descent proper); else the mini-batch size
    arms: tuple[Arm, ...] = field(default_factory=lambda: tuple(Arm(p) for p in PRESETS))
    seed: int = 3  # the assignment's initialization seed; one seed for every arm, the data and the batch order
    speed: int = 5  # optimizer steps per update (live: changing it does not reset)
    layer: int = 1  # the layer whose histograms are shown, 1-based (live)
    net: NetworkView = "weights"  # what the network drawing colours (live)

    #: Fields that change the view or the pace, not the training: a change keeps the session.
    LIVE = ("speed", "layer", "net")

    @property
    def depth(self) -> int:
        return len(self.widths)

    @property
    def n_train(self) -> int:
        return 300 if self.data == "dlai-circles" else max(2, round(self.n * self.split))

    @property
    def n_test(self) -> int:
        return 100 if self.data == "dlai-circles" else max(2, self.n - self.n_train)

    @property
    def model_spec(self) -> str:
        """The model as an initlab spec string (``mlp:10,5;act=tanh``)."""
        return "mlp:" + ",".join(map(str, self.widths)) + ("" if self.act == "relu" else f";act={self.act}")

    def to_query(self) -> str:
        """The canonical query string: every key, in a fixed order; :func:`parse_setup` reads it back equal."""
        pairs: list[tuple[str, str]] = [("data", self.data)]
        if self.data != "dlai-circles":
            pairs += [("n", str(self.n)), ("noise", _num(self.noise)), ("split", _num(self.split))]
        pairs += [("widths", ",".join(map(str, self.widths))), ("act", self.act), ("opt", self.opt),
                  ("lr", _num(self.lr)), ("batch", str(self.batch))]  # fmt: skip
        pairs += [("arm", str(a)) for a in self.arms]
        pairs += [("seed", str(self.seed)), ("speed", str(self.speed)), ("layer", str(self.layer)),
                  ("net", self.net)]  # fmt: skip
        return urlencode(pairs, safe=",:;*")

    def same_training(self, other: Setup) -> bool:
        """Whether ``other`` trains the same thing (it differs at most in the live fields)."""
        return all(getattr(self, f.name) == getattr(other, f.name) for f in fields(self) if f.name not in self.LIVE)

    def update_macs(self) -> float:
        """Multiply-adds of one update with one step, all arms (see :data:`MAX_UPDATE_MACS`)."""
        inputs = 784 if self.data == "mnist" else 2
        outputs = 10 if self.data == "mnist" else 3 if self.data in ("spiral", "gaussians") else 1
        sizes = (inputs, *self.widths, outputs)
        params = sum(a * b for a, b in itertools.pairwise(sizes))
        batch = self.batch or self.n_train
        grid = 0 if self.data == "mnist" else MIN_GRID**2
        return len(self.arms) * params * (3 * batch + self.n_train + self.n_test + grid)


def _num(value: float) -> str:
    """A number as short as it reads back equal (``0.01``, ``1e-05``, ``10``)."""
    return f"{value:g}" if float(f"{value:g}") == value else repr(value)


# ------------------------------------------------------------------------------------------------------ parsing
def _int(key: str, text: str, low: int, high: int, what: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise SetupError(key, f"{key}={text!r}: {what} must be a whole number in [{low}, {high}].") from None
    if not low <= value <= high:
        raise SetupError(key, f"{key}={value}: {what} must be in [{low}, {high}].")
    return value


def _float(key: str, text: str, bounds: tuple[float, float], what: str) -> float:
    low, high = bounds
    try:
        value = float(text.strip())
    except ValueError:
        raise SetupError(key, f"{key}={text!r}: {what} must be a number in [{_num(low)}, {_num(high)}].") from None
    if not (math.isfinite(value) and low <= value <= high):
        raise SetupError(key, f"{key}={text.strip()}: {what} must be in [{_num(low)}, {_num(high)}].")
    return value


def _choice(key: str, text: str, allowed: Sequence[str], what: str) -> Any:
    try:
        return check_choice(key, text.strip(), allowed)
    except ValueError as exc:
        raise SetupError(key, f"{what}: {exc}") from None


def _widths(text: str) -> tuple[int, ...]:
    parts = [p for p in text.replace(" ", "").split(",") if p]
    if not 1 <= len(parts) <= MAX_DEPTH:
        raise SetupError("widths", f"widths={text[:40]!r}: the network needs 1 to {MAX_DEPTH} hidden layers, "
                                   f"got {len(parts)}.")  # fmt: skip
    return tuple(_int("widths", p, 1, MAX_WIDTH, "every hidden width") for p in parts)


def parse_arm(text: str) -> Arm:
    """Read ``NAME[;std=S][;scale=C]``; ``SetupError`` names the closest known name for a typo."""
    from initlab.schemes import resolve
    from initlab.schemes.spec import scheme_name_choices

    name, *options = [t.strip() for t in text.split(";")]
    if not name:
        raise SetupError("arm", "arm: an empty initializer name; give one such as he_normal, zeros or auto.")
    values: dict[str, float] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or key not in ("std", "scale"):
            raise SetupError("arm", f"arm={text!r}: {option!r} is not an option; an arm takes std=S and scale=C."
                                    f"{did_you_mean(key, ['std', 'scale'])}")  # fmt: skip
        values[key] = _float("arm", value, STD if key == "std" else SCALE, f"{name}'s {key}")
    if name in PRESETS:
        if "std" in values:
            raise SetupError("arm", f"arm={text!r}: the article's presets have a fixed std; use scale=C instead.")
        return Arm(name, None, values.get("scale", 1.0))
    import initlab

    try:
        resolve(name)
    except (ValueError, TypeError):
        hint = did_you_mean(name, [*PRESETS, *scheme_name_choices()])
        raise SetupError("arm", f"unknown initializer or scheme {name!r}.{hint} Choose a catalog initializer "
                                "(initlab list), auto, lsuv, keras, torch, critical or an article preset "
                                f"({', '.join(PRESETS)}).") from None  # fmt: skip
    if "std" in values:
        cls = type(initlab.get(name)).__name__ if name not in ("auto", "lsuv", "keras", "torch", "critical") else ""
        if cls not in _HAS_STD:
            raise SetupError("arm", f"arm={text!r}: std applies to random_normal and truncated_normal only.")
    return Arm(name, values.get("std"), values.get("scale", 1.0))


def parse_setup(query: str | Mapping[str, Sequence[str]], base: Setup | None = None) -> tuple[Setup, list[str]]:
    """The Setup that ``query`` describes, on top of ``base`` (default: :class:`Setup`'s defaults), and a message
    for every value that was rejected (that field keeps ``base``'s value). Unknown keys are reported with the
    closest known one. The combination is checked last: a batch larger than the training set, or more work per
    update than :data:`MAX_UPDATE_MACS`, falls back to ``base``'s training fields as a whole."""
    base = base or Setup()
    if isinstance(query, str):
        if len(query) > MAX_QUERY:
            return base, [f"the setup is {len(query)} characters long; at most {MAX_QUERY} are read."]
        parsed = parse_qs(query.lstrip("?"), keep_blank_values=True)
    else:
        parsed = {k: list(v) for k, v in query.items()}
    errors: list[str] = []
    values: dict[str, Any] = {}
    known = ("data", "n", "noise", "split", "widths", "depth", "width", "act", "opt", "lr", "batch", "arm", "seed",
             "speed", "layer", "net")  # fmt: skip
    for key in parsed:
        if key not in known:
            errors.append(f"unknown setting {key!r} ignored.{did_you_mean(key, known)}")

    def one(key: str) -> str | None:
        items = parsed.get(key)
        return items[-1] if items else None

    readers: dict[str, Any] = {
        "data": lambda t: _choice("data", t, DATA_NAMES, "data set"),
        "n": lambda t: _int("n", t, *SAMPLES, "the number of samples"),
        "noise": lambda t: _float("noise", t, NOISE, "the noise"),
        "split": lambda t: _float("split", t, SPLIT, "the training fraction"),
        "widths": _widths,
        "act": lambda t: _choice("act", t, ACTIVATIONS, "activation"),
        "opt": lambda t: _choice("opt", t, OPTIMIZERS, "optimizer"),
        "lr": lambda t: _float("lr", t, LR, "the learning rate"),
        "batch": lambda t: _int("batch", t, 0, SAMPLES[1], "the batch size (0: full batch)"),
        "seed": lambda t: _int("seed", t, *SEED, "the seed"),
        "speed": lambda t: _int("speed", t, *SPEED, "steps per update"),
        "layer": lambda t: _int("layer", t, 1, MAX_DEPTH + 1, "the layer"),
        "net": lambda t: _choice("net", t, NETWORK_VIEWS, "network view"),
    }
    for key, read in readers.items():
        text = one(key)
        if text is None:
            continue
        try:
            values[key] = read(text)
        except SetupError as exc:
            errors.append(str(exc))
    if "widths" not in parsed and ("depth" in parsed or "width" in parsed):
        try:
            depth = _int("depth", one("depth") or str(base.depth), 1, MAX_DEPTH, "the number of hidden layers")
            width = _int("width", one("width") or str(max(base.widths)), 1, MAX_WIDTH, "the hidden width")
            values["widths"] = (width,) * depth
        except SetupError as exc:
            errors.append(str(exc))
    if "arm" in parsed:
        arms = []
        items = parsed["arm"]
        if len(items) > MAX_ARMS:
            errors.append(f"{len(items)} arms given; the playground trains at most {MAX_ARMS} side by side "
                          f"(the first {MAX_ARMS} are used).")  # fmt: skip
        for text in items[:MAX_ARMS]:
            try:
                arms.append(parse_arm(text))
            except SetupError as exc:
                errors.append(str(exc))
        if arms:
            values["arms"] = tuple(arms)
    setup = replace(base, **values)
    problem = _combination(setup)
    if problem:
        errors.append(problem)
        setup = replace(base, **{k: values[k] for k in Setup.LIVE if k in values})
    if setup.layer > setup.depth + 1:
        setup = replace(setup, layer=setup.depth + 1)
    return setup, errors


def _combination(setup: Setup) -> str | None:
    """What is wrong with the fields together, or None."""
    if setup.batch > setup.n_train:
        return (f"batch={setup.batch} is larger than the training set ({setup.n_train} samples); use 0 for full "
                "batch or a smaller batch.")  # fmt: skip
    macs = setup.update_macs()
    if macs > MAX_UPDATE_MACS:
        return (
            f"this setup asks for {macs:.2g} multiply-adds per update ({len(setup.arms)} arms of "
            f"{setup.model_spec} on {setup.n_train + setup.n_test} samples); the playground allows "
            f"{MAX_UPDATE_MACS:.0e}. Use fewer or narrower layers, fewer samples, a batch size or fewer arms."
        )
    return None
