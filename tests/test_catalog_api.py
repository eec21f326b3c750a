"""The Initializer interface, run over every catalog member: config round trip, seeds, fill_, numpy, errors."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import initlab
from initlab.catalog.registry import MEMBERS

# One instance of every member with non-default arguments, so the round trip is tested on real values.
NON_DEFAULT = {
    initlab.Constant: dict(value=0.25),
    initlab.RandomNormal: dict(mean=0.5, stddev=0.2),
    initlab.RandomUniform: dict(minval=-0.3, maxval=0.1),
    initlab.TruncatedNormal: dict(mean=-1.0, stddev=0.3),
    initlab.VarianceScaling: dict(scale=2.5, mode="fan_geo_avg", distribution="uniform"),
    initlab.Identity: dict(gain=3.0),
    initlab.Orthogonal: dict(gain=0.5),
    initlab.KaimingNormal: dict(a=0.1, mode="fan_out", nonlinearity="leaky_relu"),
    initlab.KaimingUniform: dict(a=0.0, mode="fan_in", nonlinearity="tanh"),
    initlab.XavierNormal: dict(gain=2.0),
    initlab.XavierUniform: dict(gain=0.7),
    initlab.Dirac: dict(groups=2),
    initlab.Sparse: dict(sparsity=0.3, std=0.02),
}
ALL = [cls(**NON_DEFAULT.get(cls, {})) for cls in MEMBERS]
# A shape each member accepts (Dirac needs a kernel, Identity and Sparse a matrix).
SHAPE_FOR = {initlab.Dirac: (8, 4, 3, 3)}


def shape_for(init: initlab.Initializer) -> tuple[int, ...]:
    return SHAPE_FOR.get(type(init), (16, 12))


@pytest.mark.parametrize("init", ALL, ids=repr)
def test_config_round_trips_exactly(init: initlab.Initializer) -> None:
    config = init.get_config()
    rebuilt = type(init).from_config(config)
    assert rebuilt == init
    assert rebuilt.get_config() == config
    assert initlab.get(initlab.serialize(init)) == init
    assert repr(init).startswith(type(init).__name__ + "(")
    for key, value in config.items():
        assert f"{key}={value!r}" in repr(init)
    # Same config, same values.
    shape = shape_for(init)
    assert torch.equal(init(shape, seed=3), rebuilt(shape, seed=3))


def test_identity_gain_survives_the_round_trip() -> None:
    config = initlab.Identity(gain=4.0).get_config()
    assert config == {"gain": 4.0}
    assert torch.equal(initlab.Identity.from_config(config)((2, 2)), 4.0 * torch.eye(2))


@pytest.mark.parametrize("init", ALL, ids=repr)
def test_int_seed_is_reproducible_and_unseeded_draws_are_fresh(init: initlab.Initializer) -> None:
    shape = shape_for(init)
    a, b = init(shape, seed=42), init(shape, seed=42)
    assert torch.equal(a, b)
    if type(init) in (initlab.Zeros, initlab.Ones, initlab.Constant, initlab.Identity, initlab.Dirac):
        return
    assert not torch.equal(init(shape, seed=42), init(shape, seed=43))
    assert not torch.equal(init(shape), init(shape))
    # An unseeded call draws from torch's default generator, so torch.manual_seed reproduces it.
    torch.manual_seed(0)
    first = init(shape)
    torch.manual_seed(0)
    assert torch.equal(first, init(shape))


@pytest.mark.parametrize("init", ALL, ids=repr)
def test_generator_is_honoured_and_advanced(init: initlab.Initializer) -> None:
    shape = shape_for(init)
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert torch.equal(init(shape, seed=g1), init(shape, seed=g2))
    if type(init) not in (initlab.Zeros, initlab.Ones, initlab.Constant, initlab.Identity, initlab.Dirac):
        state = g1.get_state()
        init(shape, seed=g1)
        assert not torch.equal(state, g1.get_state())


def test_same_seed_gives_the_same_values_in_another_process() -> None:
    code = "import initlab; print(initlab.HeNormal()((64, 32), seed=123).double().sum().item().hex())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == initlab.HeNormal()((64, 32), seed=123).double().sum().item().hex()


@pytest.mark.parametrize("init", ALL, ids=repr)
def test_fill_works_in_place_on_parameters_and_returns_them(init: initlab.Initializer) -> None:
    shape = shape_for(init)
    param = torch.nn.Parameter(torch.full(shape, float("nan")))
    out = init.fill_(param, seed=1)
    assert out is param
    assert param.requires_grad
    assert param.grad_fn is None
    assert torch.equal(param.detach(), init(shape, seed=1))


@pytest.mark.parametrize("init", ALL, ids=repr)
def test_numpy_in_and_out(init: initlab.Initializer) -> None:
    shape = shape_for(init)
    expected = init(shape, seed=5).numpy()
    arr = init.numpy(shape, seed=5)
    assert isinstance(arr, np.ndarray)
    assert arr.dtype == np.float32
    np.testing.assert_array_equal(arr, expected)
    buffer = np.zeros(shape, dtype=np.float32)
    assert init.fill_(buffer, seed=5) is buffer
    np.testing.assert_array_equal(buffer, expected)
    np.testing.assert_allclose(init.numpy(shape, seed=5, dtype=np.float64), init(shape, seed=5, dtype=torch.float64))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_the_float32_draw_rounded(dtype: torch.dtype) -> None:
    init = initlab.HeNormal()
    assert torch.equal(init((32, 16), seed=2, dtype=dtype), init((32, 16), seed=2).to(dtype))


def test_fill_non_contiguous_view() -> None:
    base = torch.zeros(16, 12)
    view = base.t()
    initlab.GlorotUniform().fill_(view, seed=4)
    assert torch.equal(view, initlab.GlorotUniform()((12, 16), seed=4))


def test_function_wrapper_takes_torch_functions_and_seeds_them() -> None:
    init = initlab.get(torch.nn.init.xavier_uniform_)
    assert isinstance(init, initlab.Function)
    expected = torch.nn.init.xavier_uniform_(torch.empty(8, 4), generator=torch.Generator().manual_seed(7))
    assert torch.equal(init((8, 4), seed=7), expected)
    assert initlab.get(initlab.serialize(init)) == init

    def no_generator(t: torch.Tensor) -> torch.Tensor:
        return t.normal_()

    state = torch.get_rng_state()
    wrapped = initlab.get(no_generator)
    assert torch.equal(wrapped((4, 4), seed=1), wrapped((4, 4), seed=1))
    assert torch.equal(state, torch.get_rng_state())  # the global generator was left alone


# -- the registry -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("GlorotUniform", initlab.GlorotUniform),
        ("glorot_uniform", initlab.GlorotUniform),
        ("glorot-normal", initlab.GlorotNormal),
        ("xavier_uniform", initlab.XavierUniform),
        ("xavier_normal", initlab.XavierNormal),
        ("kaiming_normal", initlab.KaimingNormal),
        ("kaiming_uniform", initlab.KaimingUniform),
        ("he_normal", initlab.HeNormal),
        ("lecun_uniform", initlab.LeCunUniform),
        ("LecunNormal", initlab.LeCunNormal),
        ("eye", initlab.Identity),
        ("identity", initlab.Identity),
        ("normal", initlab.RandomNormal),
        ("uniform", initlab.RandomUniform),
        ("truncated_normal", initlab.TruncatedNormal),
        ("zero", initlab.Zeros),
        ("zeros", initlab.Zeros),
        ("one", initlab.Ones),
        ("orthogonal", initlab.Orthogonal),
        ("variance_scaling", initlab.VarianceScaling),
        ("dirac", initlab.Dirac),
        ("sparse", initlab.Sparse),
    ],
)
def test_get_resolves_names_and_aliases(name: str, cls: type) -> None:
    assert type(initlab.get(name)) is cls


def test_get_accepts_objects_classes_and_keras_dicts() -> None:
    obj = initlab.Orthogonal(2.0)
    assert initlab.get(obj) is obj
    assert initlab.get(initlab.HeUniform) == initlab.HeUniform()
    keras_style = {"module": "keras.initializers", "class_name": "VarianceScaling",
                   "config": {"scale": 2.0, "mode": "fan_out", "distribution": "uniform", "seed": None},
                   "registered_name": None}  # fmt: skip
    assert initlab.get(keras_style) == initlab.VarianceScaling(2.0, "fan_out", "uniform")


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(ValueError, match=r"unknown initializer 'glorot_unifrom'\. Did you mean 'glorot_uniform'"):
        initlab.get("glorot_unifrom")
    with pytest.raises(ValueError, match="Did you mean 'he_normal'"):
        initlab.get("he_norml")


def test_bad_configs_are_refused_with_the_allowed_keys() -> None:
    with pytest.raises(ValueError, match=r"unknown keys \['stdev'\]; allowed keys: mean, stddev"):
        initlab.get({"class_name": "RandomNormal", "config": {"stdev": 1.0}})
    with pytest.raises(ValueError, match="needs 'class_name'"):
        initlab.get({"config": {}})
    with pytest.raises(ValueError, match=r"seed at call time"):
        initlab.RandomNormal.from_config({"seed": 3})
    with pytest.raises(TypeError, match="cannot interpret 42"):
        initlab.get(42)


def test_catalog_lists_every_member_with_a_formula() -> None:
    entries = initlab.catalog()
    assert [e.cls for e in entries] == list(MEMBERS)
    keras = {e.name for e in entries if e.family == "keras"}
    assert keras == {"RandomNormal", "RandomUniform", "TruncatedNormal", "Zeros", "Ones", "Constant",
                     "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform", "LeCunNormal", "LeCunUniform",
                     "Identity", "Orthogonal", "VarianceScaling"}  # fmt: skip
    for e in entries:
        assert e.formula
        assert e.source
        assert e.cls.__doc__


# -- invalid arguments ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: initlab.VarianceScaling(mode="fan_sum"), ValueError,
         r"mode='fan_sum' is not allowed; choose one of 'fan_in', 'fan_out', 'fan_avg', 'fan_geo_avg'"),
        (lambda: initlab.VarianceScaling(distribution="normal"), ValueError,
         r"distribution='normal' is not allowed.*Did you mean .*'untruncated_normal'"),
        (lambda: initlab.VarianceScaling(scale=0), ValueError, r"scale must be > 0, got 0"),
        (lambda: initlab.VarianceScaling(scale=-1.0), ValueError, r"scale must be > 0, got -1.0"),
        (lambda: initlab.RandomNormal(stddev=-0.1), ValueError, r"stddev must be >= 0, got -0.1"),
        (lambda: initlab.TruncatedNormal(stddev=-1), ValueError, r"stddev must be > 0, got -1"),
        (lambda: initlab.RandomUniform(minval=1.0, maxval=0.0), ValueError,
         r"minval must be <= maxval, got minval=1.0 > maxval=0.0"),
        (lambda: initlab.RandomNormal(mean=float("nan")), ValueError, r"mean must be finite"),
        (lambda: initlab.KaimingNormal(mode="fan_avg"), ValueError, r"mode='fan_avg' is not allowed"),
        (lambda: initlab.KaimingNormal(nonlinearity="relux"), ValueError, r"Did you mean 'relu'"),
        (lambda: initlab.Sparse(sparsity=1.5), ValueError, r"sparsity must be in \[0, 1\]"),
        (lambda: initlab.Dirac(groups=0), ValueError, r"groups must be >= 1"),
        (lambda: initlab.Identity()((2, 3, 4)), ValueError, r"Identity needs a 2-D shape, got \(2, 3, 4\)"),
        (lambda: initlab.Identity()((5,)), ValueError, r"Identity needs a 2-D shape"),
        (lambda: initlab.Orthogonal()((5,)), ValueError, r"Orthogonal needs a shape of rank >= 2, got \(5,\)"),
        (lambda: initlab.Dirac()((4, 4)), ValueError, r"Dirac needs a convolution kernel of rank 3, 4 or 5"),
        (lambda: initlab.Dirac(groups=3)((8, 4, 3)), ValueError, r"does not divide the 8 channels"),
        (lambda: initlab.HeNormal()((0, 3)), ValueError, r"dimension of size 0; every dimension must be >= 1"),
        (lambda: initlab.HeNormal()((4, -2)), ValueError, r"dimension of size -2"),
        (lambda: initlab.HeNormal()((4, 2), layout="torch_tranpose"), ValueError,
         r"layout='torch_tranpose' is not allowed.*Did you mean 'torch_transpose'"),
        (lambda: initlab.HeNormal()((4, 2), layout=3), TypeError, r"layout must be a Layout"),
        (lambda: initlab.HeNormal()((4, 2), seed="x"), TypeError, r"seed must be None, an int or a torch.Generator"),
        (lambda: initlab.HeNormal()((4, 2), dtype=torch.int64), TypeError, r"floating-point"),
        (lambda: initlab.HeNormal()((4.5, 2)), TypeError, r"non-integer dimension 4.5"),
    ],
)  # fmt: skip
def test_invalid_arguments_raise_clear_errors(make, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        make()


# -- properties -------------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(1, 9), min_size=0, max_size=4).map(tuple),
    scale=st.floats(0.01, 10.0),
    mode=st.sampled_from(["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]),
    distribution=st.sampled_from(["truncated_normal", "untruncated_normal", "uniform"]),
    layout=st.sampled_from(["torch", "torch_transpose", "keras"]),
)
def test_variance_scaling_has_variance_scale_over_fan(shape, scale, mode, distribution, layout) -> None:
    init = initlab.VarianceScaling(scale, mode, distribution)
    dist = init.distribution(shape, layout)
    n = initlab.compute_fans(shape, layout).get(mode)
    assert dist.std == pytest.approx(math.sqrt(scale / max(1.0, n)), rel=1e-9)
    values = init(shape, seed=0, layout=layout)
    assert values.shape == shape
    assert bool(torch.all((values >= dist.low) & (values <= dist.high)))
