"""initlab.models: spec strings, ModelSpec and factories build plain Sequential models that fit the data."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

import initlab.data as data
from initlab import models
from initlab.models import SPEC_GRAMMAR, ModelSpec, build, parse

GRAMMAR = r"KIND\[:W1,W2,\.\.\.\]\[;KEY=VALUE\]"


@pytest.fixture(autouse=True)
def _private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INITLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))


@pytest.fixture(scope="module")
def small_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, data.Dataset]:
    """A batch of each cheap data set (MNIST comes from the `mnist_batch` fixture)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INITLAB_CACHE", str(tmp_path_factory.mktemp("cache")))
        return {
            "digits": data.load("digits", split="val"),
            "mnist1d": data.load("mnist1d", split="test"),
            "moons": data.load("moons", split="train", n_samples=16),
            "gaussian": data.load("gaussian", split="train", shape=(3, 12, 12), n_samples=8),
        }


@pytest.fixture(scope="module")
def mnist_batch(mnist_cache: Path) -> data.Dataset:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("INITLAB_CACHE", str(mnist_cache))
        mp.setenv("KERAS_HOME", str(mnist_cache / "no-keras"))
        return data.load("mnist", split="val")


def _check_forward(spec: object, ds: data.Dataset) -> nn.Module:
    model = build(spec, input_shape=ds.input_shape, num_classes=ds.num_classes)
    model.eval()
    with torch.no_grad():
        out = model(ds.x[:8])
    assert out.shape == (min(8, len(ds)), ds.num_classes)
    assert torch.isfinite(out).all()
    return model


MLP_SPECS = [
    "mlp",
    "mlp:64,32",
    "mlp:64,32;act=tanh;dropout=0.2;bias=false;norm=batch",
    "mlp:32;act=gelu;norm=layer",
    "mlp:16,16,16;act=selu",
    "mlp:16;act=leaky_relu",
    "mlp:16;act=sigmoid",
    "mlp:16;act=linear",
    "keras-mnist",
    "keras-mnist;act=tanh",
]
CNN_SPECS = [
    "cnn:8,16",
    "cnn:8;kernel=5;pool=avg;norm=layer;head=16;act=selu",
    "cnn:4,8;norm=batch;dropout=0.1;pool=none;stride=2",
]
CNN1D_SPECS = ["cnn1d:8,8", "cnn1d:8,8,8;kernel=5;stride=2;pool=none", "cnn1d:8;norm=batch;head=32,16"]


@pytest.mark.parametrize("spec", MLP_SPECS)
@pytest.mark.parametrize("name", ["digits", "mnist1d", "moons", "gaussian"])
def test_mlp_specs_fit_every_data_set(spec: str, name: str, small_sets: dict[str, data.Dataset]) -> None:
    _check_forward(spec, small_sets[name])


@pytest.mark.parametrize("spec", [*CNN_SPECS, "cnn:4,4,4"])
@pytest.mark.parametrize("name", ["digits", "gaussian"])
def test_cnn_specs_fit_image_data(spec: str, name: str, small_sets: dict[str, data.Dataset]) -> None:
    _check_forward(spec, small_sets[name])


@pytest.mark.parametrize("spec", CNN1D_SPECS)
def test_cnn1d_specs_fit_mnist1d(spec: str, small_sets: dict[str, data.Dataset]) -> None:
    model = _check_forward(spec, small_sets["mnist1d"])
    assert isinstance(model[0], nn.Unflatten)  # (40,) signals get a channel axis


@pytest.mark.parametrize("spec", [*MLP_SPECS, *CNN_SPECS])
def test_every_spec_fits_real_mnist(spec: str, mnist_batch: data.Dataset) -> None:
    _check_forward(spec, mnist_batch)


def test_keras_mnist_is_the_articles_network(mnist_batch: data.Dataset) -> None:
    model = build("keras-mnist", input_shape=mnist_batch.input_shape, num_classes=10)
    assert isinstance(model, nn.Sequential)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Flatten", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 256), (256, 128), (128, 10)]
    assert all(m.p == 0.2 for m in model if isinstance(m, nn.Dropout))
    assert sum(p.numel() for p in model.parameters()) == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10
    assert parse("keras-mnist") == parse("mlp:256,128;dropout=0.2")
    assert models.describe("keras-mnist") == "keras-mnist"
    assert models.describe("keras-mnist;act=tanh") == "mlp:256,128;act=tanh;dropout=0.2"


def test_layers_are_followed_by_their_activation_in_module_order() -> None:
    model = build("mlp:32,16;act=tanh;norm=batch;dropout=0.1", input_shape=(1, 8, 8), num_classes=10)
    kinds = [type(m).__name__ for m in model]
    assert kinds == [
        "Flatten",
        *("Linear", "BatchNorm1d", "Tanh", "Dropout"),
        *("Linear", "BatchNorm1d", "Tanh", "Dropout"),
        "Linear",
    ]
    cnn = build("cnn:4,8;act=selu;head=16", input_shape=(1, 28, 28), num_classes=10)
    kinds = [type(m).__name__ for m in cnn]
    assert kinds == [
        *("Conv2d", "SELU", "MaxPool2d"),
        *("Conv2d", "SELU", "MaxPool2d"),
        "Flatten",
        *("Linear", "SELU"),
        "Linear",
    ]
    assert cnn[-3].in_features == 8 * 7 * 7


@pytest.mark.parametrize(
    ("act", "module"),
    [
        ("relu", nn.ReLU),
        ("tanh", nn.Tanh),
        ("sigmoid", nn.Sigmoid),
        ("selu", nn.SELU),
        ("gelu", nn.GELU),
        ("leaky_relu", nn.LeakyReLU),
    ],
)
def test_activation_modules(act: str, module: type[nn.Module]) -> None:
    model = build(f"mlp:8;act={act}", input_shape=(4,), num_classes=2)
    assert isinstance(model[2], module)


def test_linear_activation_adds_no_module_and_bias_false_removes_every_bias() -> None:
    model = build("mlp:8,8;act=linear;bias=false", input_shape=(4,), num_classes=3)
    assert [type(m).__name__ for m in model] == ["Flatten", "Linear", "Linear", "Linear"]
    assert all(m.bias is None for m in model if isinstance(m, nn.Linear))
    conv = build("cnn:4;bias=false", input_shape=(1, 8, 8), num_classes=3)
    assert all(m.bias is None for m in conv if isinstance(m, (nn.Linear, nn.Conv2d)))


def test_python_specs_round_trip() -> None:
    spec = ModelSpec("cnn", (8, 16), act="gelu", kernel=5, pool="avg", head=(32,), dropout=0.1)
    assert parse(str(spec)) == spec
    assert ModelSpec.from_config(spec.get_config()) == spec
    assert str(spec) == "cnn:8,16;act=gelu;dropout=0.1;kernel=5;pool=avg;head=32"
    a = build(spec, input_shape=(1, 28, 28), num_classes=10)
    b = build(spec.get_config(), input_shape=(1, 28, 28), num_classes=10)
    assert [type(m) for m in a] == [type(m) for m in b]
    assert parse(" MLP : 256 , 128 ; ACT = Tanh ") == ModelSpec("mlp", (256, 128), act="tanh")


def test_factories_are_accepted_wherever_a_spec_is(small_sets: dict[str, data.Dataset]) -> None:
    calls = []

    def factory(input_shape: tuple[int, ...], num_classes: int | None) -> nn.Module:
        calls.append((input_shape, num_classes))
        return nn.Sequential(nn.Flatten(), nn.Linear(int(torch.tensor(input_shape).prod()), num_classes))

    _check_forward(factory, small_sets["digits"])
    assert calls == [((1, 8, 8), 10)]
    with pytest.raises(TypeError, match=r"returned int, not a torch.nn.Module"):
        build(lambda shape, classes: 3, input_shape=(2,), num_classes=2)
    with pytest.raises(TypeError, match=r"not a built Linear"):
        build(nn.Linear(2, 2), input_shape=(2,), num_classes=2)
    with pytest.raises(TypeError, match=r"a string, a ModelSpec"):
        build(42, input_shape=(2,), num_classes=2)


def test_regression_gets_one_output() -> None:
    ds = data.load("gaussian", split="train", num_classes=None, n_samples=5, shape=(6,))
    model = build("mlp:8", input_shape=ds.input_shape, num_classes=ds.num_classes)
    assert model(ds.x).shape == (5, 1)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("mlp:abc", r"width 'abc' is not a positive integer"),
        ("mlp:256,-5", r"width must be a positive integer, got -5"),
        ("mlp:0", r"width must be a positive integer, got 0"),
        ("mlp:256,,3", r"empty entry"),
        ("mlp:", r"no widths after 'mlp:'"),
        ("mlp:256;act=relu6", r"act='relu6' is not one of .*Did you mean 'relu'"),
        ("mlp:256;act=tanhh", r"Did you mean 'tanh'"),
        ("mlp:256;activation=tanh", r"no option 'activation'.*Did you mean 'act'"),
        ("mlp:256;kernel=3", r"kernel applies to cnn and cnn1d only"),
        ("mlp:256;dropout=1.5", r"dropout must be in \[0, 1\)"),
        ("mlp:256;dropout=lots", r"dropout='lots' is not a number"),
        ("mlp:256;bias=maybe", r"bias='maybe' is not true or false"),
        ("mlp:256;norm=group", r"norm='group' is not one of none\|batch\|layer"),
        ("mlp:256;act", r"option 'act' is not KEY=VALUE"),
        ("mlp:256;act=tanh;act=relu", r"given twice"),
        ("cnn", r"cnn needs at least one conv width"),
        ("cnn:8;pool=min", r"pool='min' is not one of max\|avg\|none"),
        ("cnn:8;kernel=0", r"kernel must be a positive integer"),
        ("cnnn:8", r"unknown kind 'cnnn'.*Did you mean 'cnn'"),
        ("keras-mnist:256", r"fixed network"),
        ("", r"it is empty"),
    ],
)
def test_bad_specs_show_the_grammar(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        parse(spec)
    message = str(info.value)
    assert SPEC_GRAMMAR in message
    assert f"bad model spec {spec!r}" in message
    with pytest.raises(ValueError, match=GRAMMAR):
        build(spec, input_shape=(1, 28, 28), num_classes=10)


def test_bad_python_specs_show_the_grammar() -> None:
    with pytest.raises(ValueError, match=rf"(?s)act='swish'.*{GRAMMAR}"):
        ModelSpec("mlp", (8,), act="swish")
    with pytest.raises(ValueError, match=rf"(?s)widths must be positive integers, got -1.*{GRAMMAR}"):
        ModelSpec("mlp", (8, -1))
    with pytest.raises(ValueError, match=rf"(?s)unknown kind 'rnn'.*{GRAMMAR}"):
        ModelSpec("rnn")


def test_shapes_that_do_not_fit_are_explained() -> None:
    with pytest.raises(ValueError, match=r"shrinks to nothing after conv block 4 of 4"):
        build("cnn:4,4,4,4", input_shape=(1, 8, 8), num_classes=10)
    with pytest.raises(ValueError, match=r"cnn needs inputs shaped \(C, H, W\) or \(H, W\), got input_shape=\(2,\)"):
        build("cnn:4", input_shape=(2,), num_classes=2)
    with pytest.raises(ValueError, match=r"cnn1d needs inputs shaped \(C, L\) or \(L,\)"):
        build("cnn1d:4", input_shape=(1, 28, 28), num_classes=10)
    with pytest.raises(ValueError, match=r"num_classes must be a positive integer or None"):
        build("mlp", input_shape=(2,), num_classes=0)
    with pytest.raises(ValueError, match=r"dimension of size 0"):
        build("mlp", input_shape=(2, 0), num_classes=2)
