"""initlab.theory (mean-field signal propagation), the `critical` scheme and `initlab theory`.

The integrals are checked against closed forms and scipy.integrate; the whole theory against wide random networks
(width 2000, depth 30, weights drawn from seeded generators), with tolerances of about four standard deviations of
the finite-width estimate, measured over six seeds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from torch import nn
from typer.testing import CliRunner

import initlab
from initlab.cli import app
from initlab.schemes import Critical, resolve, uses_data
from initlab.theory import (
    ACTIVATION_NAMES,
    MeanField,
    correlation_map,
    critical_line,
    critical_weight_var,
    fixed_point_q,
    length_map,
    mean_field,
    nonlinearity,
)
from initlab.theory._gauss import expect, expect_pair

runner = CliRunner()


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: these tensors are small, and two threads spin-wait for each other when other processes
    share the cores (measured: 3-5x slower on a loaded 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- the integrals ---------------------------------------------------------------------------------------------------
def _quad(g, q: float) -> float:
    """E[g(√q z)] by adaptive quadrature over z, split at 0 and at the scales of φ's argument."""
    s = math.sqrt(q)
    points = sorted({0.0, *(sign * k / s for sign in (-1, 1) for k in (0.25, 1.0, 4.0, 16.0, 64.0) if k / s < 12)})
    value, _ = integrate.quad(
        lambda z: g(s * z) * math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi),
        -12.0,
        12.0,
        points=points,
        epsabs=0.0,
        epsrel=1e-13,
        limit=1000,
    )
    return value


@pytest.mark.parametrize("name", [n for n in ACTIVATION_NAMES if n not in ("identity", "swish")])
def test_one_dimensional_expectations_match_adaptive_quadrature(name: str) -> None:
    phi = nonlinearity(name)

    def scalar(fn):
        return lambda x: float(fn(torch.tensor([x], dtype=torch.float64))[0])

    f, df = scalar(phi.fn), scalar(phi.derivative)
    for q in (1e-6, 1e-2, 1.0, 37.0, 1e6):
        assert expect(lambda x: phi.fn(x).square(), q, phi.kinks) == pytest.approx(
            _quad(lambda x: f(x) ** 2, q), rel=1e-12
        )
        got = expect(lambda x: phi.derivative(x).square(), q, phi.kinks)
        assert got == pytest.approx(_quad(lambda x: df(x) ** 2, q), rel=1e-12)


def test_one_dimensional_closed_forms_relu_and_erf() -> None:
    relu, erf = nonlinearity("relu"), nonlinearity("erf")
    for q in (1e-20, 1e-6, 0.3, 7.0, 1e4, 1e10):
        assert expect(lambda x: relu.fn(x).square(), q, relu.kinks) == pytest.approx(q / 2, rel=1e-14)
        assert expect(lambda x: relu.derivative(x).square(), q, relu.kinks) == pytest.approx(0.5, rel=1e-14)
        # E[erf(√q z)²] = (2/π) asin(2q/(1+2q)), written with acos so that it keeps its digits near 1.
        exact = 1.0 - (2.0 / math.pi) * 2.0 * math.asin(math.sqrt(0.5 / (1.0 + 2.0 * q)))
        assert expect(lambda x: erf.fn(x).square(), q, ()) == pytest.approx(exact, rel=1e-13)
        assert expect(lambda x: erf.derivative(x).square(), q, ()) == pytest.approx(
            (4 / math.pi) / math.sqrt(1 + 4 * q), rel=1e-13
        )


@pytest.mark.parametrize("q", [1e-4, 1.0, 50.0])
def test_two_dimensional_expectations_match_the_arc_cosine_and_arcsine_kernels(q: float) -> None:
    relu, erf = nonlinearity("relu"), nonlinearity("erf")
    for delta in (1e-3, 0.1, 0.5, 1.0, 1.5, 1.999):
        c = 1.0 - delta
        theta = math.acos(c)
        kernel = q * (math.sqrt(1 - c * c) + (math.pi - theta) * c) / (2 * math.pi)  # Cho & Saul (2009)
        assert expect_pair(lambda a, b: relu.fn(a) * relu.fn(b), q, delta, (0.0,)) == pytest.approx(kernel, rel=1e-11)
        step = (math.pi - theta) / (2 * math.pi)
        assert expect_pair(lambda a, b: (a > 0).double() * (b > 0).double(), q, delta, (0.0,)) == pytest.approx(
            step, abs=1e-14
        )
        arcsine = (2 / math.pi) * math.asin(2 * q * c / (1 + 2 * q))  # Williams (1997)
        assert expect_pair(lambda a, b: erf.fn(a) * erf.fn(b), q, delta) == pytest.approx(arcsine, abs=1e-14)
        # 1 − C in the form the fixed-point search uses: E[(φ(u₁) − φ(u₂))²]/2 = E[φ²] − E[φ(u₁)φ(u₂)].
        gap = q * (math.pi * delta + theta * c - math.sqrt(1 - c * c)) / (2 * math.pi)
        spread = expect_pair(lambda a, b: (relu.fn(a) - relu.fn(b)).square() / 2, q, delta, (0.0,))
        assert spread == pytest.approx(gap, rel=1e-10)


def test_two_dimensional_tanh_matches_dblquad() -> None:
    tanh = nonlinearity("tanh")
    density = lambda z: math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)  # noqa: E731
    for q, c in [(1.0, 0.4468), (0.2, 0.9), (3.0, -0.5)]:
        s, r = math.sqrt(1 - c * c), math.sqrt(q)
        reference, _ = integrate.dblquad(
            lambda z2, z1, r=r, c=c, s=s: (
                math.tanh(r * z1) * math.tanh(r * (c * z1 + s * z2)) * density(z1) * density(z2)
            ),
            -12,
            12,
            -12,
            12,
            epsabs=1e-15,
            epsrel=1e-13,
        )
        assert expect_pair(lambda a, b: tanh.fn(a) * tanh.fn(b), q, 1 - c) == pytest.approx(reference, abs=1e-13)


# -- fixed points, χ₁, depth scales, the critical line -------------------------------------------------------------
def test_closed_form_critical_points() -> None:
    assert critical_weight_var("relu", 0.0) == pytest.approx(2.0, abs=1e-10)
    assert critical_weight_var("relu", 0.3) == pytest.approx(2.0, abs=1e-10)  # ReLU's line is vertical
    assert critical_weight_var("leaky_relu", 0.0, param=0.2) == pytest.approx(2 / 1.04, abs=1e-10)
    assert critical_weight_var("linear", 0.0) == pytest.approx(1.0, abs=1e-10)
    assert critical_weight_var("linear", 0.2) == pytest.approx(1.0, abs=1e-10)
    assert critical_weight_var("tanh", 0.0) == pytest.approx(1.0, abs=1e-6)
    # Moving up the line: tanh's critical σ_w² grows with σ_b².
    line = critical_line("tanh", [0.0, 0.05, 0.2])
    assert [b for _, b in line] == [0.0, 0.05, 0.2]
    assert line[0][0] < line[1][0] < line[2][0]


def test_closed_form_fixed_points() -> None:
    # ReLU: q* = σ_b² / (1 − σ_w²/2); the identity: σ_b² / (1 − σ_w²).
    assert fixed_point_q("relu", 1.5, 0.1) == pytest.approx(0.4, rel=1e-12)
    assert fixed_point_q("linear", 0.5, 0.3) == pytest.approx(0.6, rel=1e-12)
    assert fixed_point_q("tanh", 0.8, 0.0) == 0.0  # the signal dies out
    assert fixed_point_q("relu", 3.0, 0.1) == math.inf  # and here it grows without bound


@settings(max_examples=20, deadline=None)
@given(
    name=st.sampled_from(["tanh", "erf", "sigmoid", "gelu", "selu", "softplus"]),
    weight_var=st.floats(0.2, 4.0),
    bias_var=st.floats(0.01, 1.0),
)
def test_q_star_is_a_fixed_point_of_the_length_map(name: str, weight_var: float, bias_var: float) -> None:
    q = fixed_point_q(name, weight_var, bias_var)
    if math.isinf(q):  # only an unbounded activation whose χ₁ reaches 1 may diverge
        assert name in ("gelu", "selu", "softplus")
        assert mean_field(name, weight_var, bias_var).chi_1 >= 1.0 - 1e-6
    else:
        assert length_map(name, q, weight_var, bias_var) == pytest.approx(q, rel=1e-11)


@settings(max_examples=12, deadline=None)
@given(bias_var=st.floats(0.0, 1.0))
def test_the_critical_weight_variance_has_chi_1_equal_to_one(bias_var: float) -> None:
    weight_var = critical_weight_var("tanh", bias_var)
    result = mean_field("tanh", weight_var, bias_var)
    assert result.chi_1 == pytest.approx(1.0, abs=1e-9)
    assert result.phase == "critical"
    assert result.xi_c == math.inf


SLOPE_POINTS = [("tanh", 1.0, 0.05), ("tanh", 2.5, 0.05), ("relu", 1.5, 0.1), ("erf", 2.0, 0.05), ("gelu", 2.0, 0.1)]


@pytest.mark.parametrize(("name", "weight_var", "bias_var"), SLOPE_POINTS)
def test_chi_1_is_the_slope_of_the_correlation_map_at_one(name: str, weight_var: float, bias_var: float) -> None:
    result = mean_field(name, weight_var, bias_var)
    delta = 1e-9
    slope = (1.0 - correlation_map(name, 1.0 - delta, weight_var, bias_var)) / delta
    assert slope == pytest.approx(result.chi_1, rel=2e-5)  # ReLU's map has a δ^{3/2} term: error ≈ 0.1·√δ


@pytest.mark.parametrize(("name", "weight_var"), [("tanh", 2.5), ("erf", 3.0)])
def test_c_star_is_a_stable_fixed_point_approached_at_the_rate_chi_c(name: str, weight_var: float) -> None:
    result = mean_field(name, weight_var, 0.05)
    assert result.phase == "chaotic"
    assert result.c_star < 1.0
    assert correlation_map(name, result.c_star, weight_var, 0.05) == pytest.approx(result.c_star, abs=1e-12)
    # The iterated map's ratio (c^{l+1} − c*)/(c^l − c*) near c* is χ_c = e^{−1/ξ_c}.
    c = result.c_star + 1e-4
    ratio = (correlation_map(name, c, weight_var, 0.05) - result.c_star) / (c - result.c_star)
    assert ratio == pytest.approx(result.chi_c, abs=3e-4)
    assert result.xi_c == pytest.approx(-1.0 / math.log(result.chi_c))


def test_phases_and_limits() -> None:
    ordered, chaotic = mean_field("tanh", 1.0, 0.05), mean_field("tanh", 2.5, 0.05)
    assert (ordered.phase, ordered.c_star, ordered.chi_c) == ("ordered", 1.0, ordered.chi_1)
    assert chaotic.phase == "chaotic"
    assert 0.0 < chaotic.c_star < 1.0
    assert chaotic.chi_c < 1.0
    assert mean_field("tanh", 2.0, 0.0).c_star == pytest.approx(0.0, abs=1e-9)  # odd φ, no bias: c* = 0
    critical = mean_field("relu", 2.0, 0.0)
    assert (critical.phase, critical.xi_c, critical.xi_q) == ("critical", math.inf, math.inf)
    dying = mean_field("tanh", 0.5, 0.0)  # q* = 0: the limits as q → 0
    assert (dying.q_star, dying.chi_1, dying.c_star) == (0.0, pytest.approx(0.5), 1.0)
    exploding = mean_field("relu", 3.0, 0.1)
    assert (exploding.q_star, exploding.chi_1, exploding.phase) == (math.inf, pytest.approx(1.5), "chaotic")
    as_dict = ordered.to_dict()
    assert set(as_dict) == {f.name for f in MeanField.__dataclass_fields__.values()}
    assert as_dict["phase"] == "ordered"


def test_bad_activations_and_arguments_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"Did you mean 'tanh'"):
        mean_field("tahn", 1.0)
    with pytest.raises(ValueError, match=r"param is only used by 'leaky_relu'"):
        nonlinearity("tanh", 0.1)
    with pytest.raises(ValueError, match=r"weight_var must be > 0"):
        mean_field("tanh", -1.0)
    with pytest.raises(ValueError, match=r"c must be a correlation in \[-1, 1\]"):
        correlation_map("tanh", 1.5, 1.0)
    with pytest.raises(TypeError, match=r"cannot be evaluated on a float64 tensor"):
        nonlinearity(math.tanh)


def test_kinks_of_a_callable_are_found_and_make_its_integrals_exact() -> None:
    assert nonlinearity(nn.ReLU6()).kinks == (0.0, 6.0)
    assert nonlinearity(nn.Hardswish()).kinks == (-3.0, 3.0)
    assert nonlinearity(nn.GELU()).kinks == ()
    hardtanh = nonlinearity(nn.Hardtanh(-0.7, 0.7))
    assert hardtanh.kinks == pytest.approx((-0.7, 0.7), abs=1e-12)
    for q in (0.1, 1.0, 30.0):
        exact = math.erf(0.7 / math.sqrt(2 * q))  # E[φ'(√q z)²] = P(|√q z| < 0.7)
        assert expect(lambda x: hardtanh.derivative(x).square(), q, hardtanh.kinks) == pytest.approx(exact, rel=1e-13)
        missed = expect(lambda x: hardtanh.derivative(x).square(), q, ())  # a panel boundary misses the kink
        assert abs(missed / exact - 1) > 1e-3


def test_a_callable_equals_its_named_form() -> None:
    # nn.GELU's derivative comes from autograd; the name's is closed-form.
    assert critical_weight_var(nn.GELU(), 0.05) == pytest.approx(critical_weight_var("gelu", 0.05), rel=1e-10)
    numpy_tanh = nonlinearity(lambda x: np.tanh(x.numpy()))  # autograd cannot follow NumPy: a central difference
    assert mean_field(numpy_tanh, 1.0, 0.05).chi_1 == pytest.approx(mean_field("tanh", 1.0, 0.05).chi_1, rel=1e-8)


# -- the theory against wide random networks -----------------------------------------------------------------------
WIDTH, DEPTH, PAIRS = 2000, 30, 4


def _propagate(phi, weight_var: float, bias_var: float, c1: float, seed: int) -> tuple[list, list, list]:
    """q^l, c^l (mean over PAIRS input pairs) and ‖J v‖²/‖v‖² per layer of a random network whose first
    pre-activations have q¹ = 1 and correlation c¹."""
    gen = torch.Generator().manual_seed(seed)
    z1, z2 = torch.randn(PAIRS, WIDTH, generator=gen), torch.randn(PAIRS, WIDTH, generator=gen)
    h = torch.cat([z1, c1 * z1 + math.sqrt(1 - c1 * c1) * z2])
    v = torch.randn(2 * PAIRS, WIDTH, generator=gen)  # tangent vectors: J v grows by χ₁ per layer on average
    qs, cs, growth = [], [], []
    z = torch.empty(WIDTH, WIDTH)
    for layer in range(DEPTH):
        if layer:
            # W = √(σ_w²/N)·Z: the scale is applied to the products, not to the N² entries.
            torch.randn(WIDTH, WIDTH, generator=gen, out=z)
            b = torch.randn(WIDTH, generator=gen) * math.sqrt(bias_var)
            h64, scale = h.double(), math.sqrt(weight_var / WIDTH)
            products = torch.cat([phi.fn(h64).float(), phi.derivative(h64).float() * v]) @ z.T * scale
            h, v_next = products[: 2 * PAIRS] + b, products[2 * PAIRS :]
            growth.append(float(v_next.double().square().sum() / v.double().square().sum()))
            v = v_next / v_next.norm(dim=1, keepdim=True) * math.sqrt(WIDTH)
        hd = h.double()
        qs.append(float(hd.square().mean()))
        a, b_ = hd[:PAIRS], hd[PAIRS:]
        cs.append(float(((a * b_).sum(1) / (a.norm(dim=1) * b_.norm(dim=1))).mean()))
    return qs, cs, growth


MONTE_CARLO = [
    # activation, σ_w², σ_b², c¹, tolerance on q (about 4 std of the width-2000 estimate; ReLU's q fluctuates most)
    pytest.param("tanh", 1.0, 0.05, 0.2, 0.05, id="tanh-ordered"),
    pytest.param("tanh", 4.0, 0.05, 0.5, 0.03, id="tanh-chaotic"),
    pytest.param("relu", 1.5, 0.1, 0.2, 0.12, id="relu-ordered"),
    pytest.param("erf", 3.0, 0.05, 0.5, 0.03, id="erf-chaotic"),
    pytest.param("hardtanh", 3.0, 0.05, 0.5, 0.03, id="callable-hardtanh-chaotic"),
]


@pytest.mark.parametrize(("name", "weight_var", "bias_var", "c1", "q_tol"), MONTE_CARLO)
def test_wide_random_networks_follow_the_theory(name, weight_var, bias_var, c1, q_tol) -> None:
    # Hardtanh is a torch module, not a name: autograd gives φ', and find_kinks its kinks at ±1.
    phi = nonlinearity(nn.Hardtanh()) if name == "hardtanh" else nonlinearity(name)
    theory = mean_field(phi, weight_var, bias_var)
    qs, cs, growth = _propagate(phi, weight_var, bias_var, c1, seed=0)
    # Over six seeds: q within ±1.2% (ReLU ±3.2%) of q*, χ₁ within ±0.6%, c within ±0.026 of c* (1 std).
    assert np.mean(qs[10:]) == pytest.approx(theory.q_star, rel=q_tol)
    assert np.mean(growth[10:]) == pytest.approx(theory.chi_1, rel=0.03)
    if theory.phase == "ordered":
        assert 1.0 - np.mean(cs[20:]) < 0.02
        # |c^l − c*| = 1 − c^l decays as e^{−l/ξ_c}: the fitted rate matches 1/ξ_c within 15% (seen: 7%).
        layers = np.arange(12, DEPTH)
        rate = -np.polyfit(layers, np.log(1.0 - np.array(cs[12:])), 1)[0]
        assert rate * theory.xi_c == pytest.approx(1.0, abs=0.15)
    else:
        assert theory.phase == "chaotic"
        assert abs(cs[0] - c1) < 0.05
        assert cs[0] - theory.c_star > 0.2  # it starts far from c*
        assert np.mean(cs[20:]) == pytest.approx(theory.c_star, abs=0.08)


# -- the critical scheme -------------------------------------------------------------------------------------------
def _mlp(act: type[nn.Module], width: int = 256, depth: int = 3) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), act()]
    return nn.Sequential(*layers, nn.Linear(width, 10))


@pytest.mark.parametrize(("act", "weight_var"), [(nn.Tanh, 1.0), (nn.ReLU, 2.0)])
def test_critical_scheme_weight_std(act: type[nn.Module], weight_var: float) -> None:
    model = _mlp(act)
    report = initlab.initialize(model, "critical", seed=0)
    for layer in model[:-1:2]:
        # 65,536 draws: the std of the sample std is 0.3%.
        assert float(layer.weight.detach().std()) == pytest.approx(math.sqrt(weight_var / 256), rel=0.015)
        assert torch.count_nonzero(layer.bias) == 0
    assert float(model[-1].weight.detach().std()) == pytest.approx(math.sqrt(1 / 256), rel=0.05)  # LeCun output layer
    assert "critical for" in report["0.weight"].rule
    assert report["0.weight"].gain == pytest.approx(math.sqrt(weight_var))
    assert report[f"{len(model) - 1}.weight"].rule.startswith("output layer: LeCun")
    assert report.scheme == {"class_name": "Critical", "config": {"bias_var": 0.0}}


def test_critical_scheme_with_bias_variance_and_its_config_form() -> None:
    model = _mlp(nn.Tanh)
    initlab.initialize(model, {"class_name": "Critical", "config": {"bias_var": 0.05}}, seed=0)
    expected = critical_weight_var("tanh", 0.05)  # 1.761
    assert float(model[0].weight.detach().var()) * 256 == pytest.approx(expected, rel=0.03)
    biases = torch.cat([model[i].bias.detach() for i in (0, 2, 4)])
    assert float(biases.var()) == pytest.approx(0.05, rel=0.15)  # 768 draws: the var's std is 5%
    assert torch.count_nonzero(model[-1].bias) == 0


def test_critical_scheme_uses_the_activation_itself_for_other_functions() -> None:
    report = initlab.initialize(nn.Sequential(nn.Linear(64, 64), nn.GELU(), nn.Linear(64, 4)), "critical", seed=0)
    # critical_weight_var("gelu") = 2.351715614..., from the closed-form derivative; nn.GELU's comes from autograd.
    assert report["0.weight"].gain ** 2 == pytest.approx(2.351715614, rel=1e-9)


def test_critical_init_keeps_deep_tanh_inputs_apart_better_than_an_ordered_one() -> None:
    width, depth = 256, 50
    gen = torch.Generator().manual_seed(1)
    base = torch.randn(width, generator=gen)
    x = torch.stack([base, 0.3 * base + math.sqrt(1 - 0.09) * torch.randn(width, generator=gen)])

    def last_correlation(model: nn.Sequential) -> float:
        with torch.no_grad():
            h = model[:-1](x)
        return float(torch.nn.functional.cosine_similarity(h[0], h[1], dim=0))

    critical, ordered = _mlp(nn.Tanh, width, depth), _mlp(nn.Tanh, width, depth)
    initlab.initialize(critical, Critical(bias_var=0.05), seed=0)
    with torch.no_grad():  # the ordered phase: σ_w² = 0.5, the same σ_b² = 0.05
        for layer in ordered[::2]:
            layer.weight.normal_(0.0, math.sqrt(0.5 / layer.in_features), generator=gen)
            layer.bias.normal_(0.0, math.sqrt(0.05), generator=gen)
    # Ordered: c^l → 1 within a few layers (ξ_c ≈ 1.2); critical: only polynomially.
    assert 1.0 - last_correlation(ordered) < 1e-4
    assert 1.0 - last_correlation(critical) > 0.02


def test_critical_scheme_is_reproducible_and_resolvable() -> None:
    a, b, c = _mlp(nn.Tanh, 32), _mlp(nn.Tanh, 32), _mlp(nn.Tanh, 32)
    report = initlab.initialize(a, "critical", seed=0)
    initlab.initialize(b, " Critical ", seed=0)
    initlab.initialize(c, "critical", seed=1)
    for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(p, q), name
    assert not torch.equal(a[0].weight, c[0].weight)
    assert all(entry.rule for entry in report)  # every layer's rule is reported
    assert resolve("critical") == Critical()
    assert resolve(Critical(0.1).to_dict()) == Critical(bias_var=0.1)
    assert uses_data("critical")
    assert not Critical().needs_data
    with pytest.raises(ValueError, match=r"Did you mean 'critical'"):
        resolve("critcal")
    with pytest.raises(ValueError, match=r"bias_var must be >= 0"):
        Critical(bias_var=-0.1)
    with pytest.raises(ValueError, match=r"unknown keys \['bias_vr'\].*Did you mean 'bias_var'"):
        resolve({"class_name": "Critical", "config": {"bias_vr": 0.1}})


# -- initlab theory --------------------------------------------------------------------------------------------------
def test_cli_prints_the_mean_field_table() -> None:
    result = runner.invoke(app, ["theory", "--act", "tanh", "--bias-var", "0.05", "--weight-var", "1.2"])
    assert result.exit_code == 0, result.output
    expected = mean_field("tanh", 1.2, 0.05)
    for text in (f"{expected.q_star:.6g}", f"{expected.chi_1:.6g}", f"{expected.xi_c:.6g}", "ordered"):
        assert text in result.output
    assert f"{critical_weight_var('tanh', 0.05):.6g}" in result.output


def test_cli_typo_suggests_the_closest_activation() -> None:
    result = runner.invoke(app, ["theory", "--act", "tahn"])
    assert result.exit_code == 2
    assert "Did you mean 'tanh'" in result.output
    result = runner.invoke(app, ["theory", "--act", "relu", "--weight-var", "-1"])
    assert result.exit_code == 2
    assert "weight_var must be > 0" in result.output


def test_cli_draws_the_phase_diagram(tmp_path) -> None:
    path = tmp_path / "phase.png"
    result = runner.invoke(app, ["theory", "--act", "relu", "--bias-var", "0.1", "--plot", str(path)])
    assert result.exit_code == 0, result.output
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
