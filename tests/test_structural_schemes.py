"""Structural schemes (Fixup, SkipInit, ReZero, zero-γ, LayerScale, GPT-2, T-Fixup, DeepNet, small embeddings,
mimetic attention, delta-orthogonal, ZerO, the spectral condition, the forget-gate bias, chrono): each scheme's
defining property on a model it supports, the rule the report names for every parameter, the config round trip, a
study arm, and the errors on models that lack what a scheme needs."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import initlab
from initlab import models
from initlab.nets import BranchDecl, Declaration, StructureError
from initlab.schemes import (
    STRUCTURAL_SCHEME_NAMES,
    Chrono,
    DeltaOrthogonal,
    Fixup,
    LayerScale,
    Scheme,
    SpectralCondition,
    StructuralScheme,
    initialize,
    resolve,
    uses_data,
)
from initlab.schemes._matrices import hadamard, zero_matrix
from initlab.schemes._residual import layerscale_epsilon
from initlab.schemes.spec import STRUCTURAL_CLASS_NAMES
from initlab.seeding import derive_seed


def sample_std_tolerance(n: int, k: float = 5.0) -> float:
    """Relative tolerance for the std of ``n`` iid normal entries: ``k`` standard errors, sqrt(1/(2n)) each."""
    return k * math.sqrt(1.0 / (2.0 * n))


def build(spec: str, shape: tuple[int, ...] = (64,), classes: int = 10) -> nn.Module:
    torch.manual_seed(0)
    return models.build(spec, input_shape=shape, num_classes=classes)


def tokens(n: int = 4, length: int = 6, vocab: int = 12) -> torch.Tensor:
    return torch.randint(0, vocab, (n, length), generator=torch.Generator().manual_seed(1))


class GatedBlock(nn.Module):
    """``x + alpha · mlp(x)``: a residual block with a gate (a scalar, or one per channel)."""

    def __init__(self, width: int, *, per_channel: bool) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
        self.alpha = nn.Parameter(torch.full((width if per_channel else 1,), 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.alpha * self.mlp(x)

    def residual_branches(self) -> tuple[BranchDecl, ...]:
        return (BranchDecl(branch="mlp", last="mlp.2", gate="alpha"),)


class GatedNet(nn.Module):
    def __init__(self, depth: int = 3, *, per_channel: bool = False) -> None:
        super().__init__()
        self.embed = nn.Linear(8, 16)
        self.blocks = nn.Sequential(*(GatedBlock(16, per_channel=per_channel) for _ in range(depth)))
        self.head = nn.Linear(16, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.embed(x)))

    def declare_structure(self) -> Declaration:
        return Declaration(embeddings=("embed",), head="head")


# A model each scheme supports (gate schemes need declared gates; initlab's specs have none).
SUPPORTED = {
    "fixup": lambda: build("resmlp:32x4"),
    "skipinit": lambda: GatedNet(),
    "rezero": lambda: GatedNet(),
    "zero_gamma": lambda: build("resnet:8,16;blocks=2", (1, 8, 8)),
    "layerscale": lambda: GatedNet(per_channel=True),
    "gpt2": lambda: build("transformer:32x2;task=lm", (6,), 12),
    "t_fixup": lambda: build("transformer:32x2;ln=none", (6,), 12),
    "deepnet": lambda: build("transformer:32x2;ln=post", (6,), 12),
    "small_embedding": lambda: build("transformer:32x2", (6,), 12),
    "mimetic": lambda: build("transformer:32x2", (6,), 12),
    "delta_orthogonal": lambda: build("resnet:8,16;blocks=1", (1, 8, 8)),
    "zero_init": lambda: build("resmlp:32x3"),
    "spectral": lambda: build("mlp:64,32"),
    "forget_bias": lambda: nn.LSTM(5, 8, num_layers=2),
    "chrono": lambda: nn.LSTM(5, 8, num_layers=2),
}


# -- registration, configs, report ---------------------------------------------------------------------------------
def test_every_structural_scheme_is_registered_once_and_round_trips() -> None:
    assert set(SUPPORTED) == set(STRUCTURAL_SCHEME_NAMES)
    for name, class_name in zip(STRUCTURAL_SCHEME_NAMES, STRUCTURAL_CLASS_NAMES, strict=True):
        scheme = resolve(name)
        assert isinstance(scheme, StructuralScheme)
        assert (scheme.scheme_name, type(scheme).__name__) == (name, class_name)
        assert not scheme.needs_data
        config = scheme.to_dict()
        assert config["class_name"] == class_name
        assert resolve(config) == scheme
        assert resolve(f"  {name.upper()} ") == scheme
    assert not uses_data("fixup")
    assert uses_data(Fixup(base="auto").to_dict())


@pytest.mark.parametrize("name", STRUCTURAL_SCHEME_NAMES)
def test_the_report_names_the_rule_of_every_parameter(name: str) -> None:
    model = SUPPORTED[name]()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no parameter left uncovered
        report = initialize(model, name, seed=0)
    assert not report.uncovered
    assert {e.name for e in report} == {n for n, _ in model.named_parameters()}
    own = [e for e in report if e.rule.startswith(f"{name}: ")]
    assert own, "the scheme set nothing of its own"
    assert all(e.rule.startswith((f"{name}: ", f"{name} base: ")) for e in report)
    assert report.scheme == resolve(name).to_dict()
    json.dumps(report.to_dict())  # a study stores it
    for entry in report:  # the measured values are the final ones
        values = dict(model.named_parameters())[entry.name].detach()
        if entry.block is None:
            assert entry.std == pytest.approx(float(values.double().std(correction=0)), abs=1e-9)


@pytest.mark.parametrize("name", STRUCTURAL_SCHEME_NAMES)
def test_the_same_seed_gives_the_same_values(name: str) -> None:
    a, b, c = SUPPORTED[name](), SUPPORTED[name](), SUPPORTED[name]()
    initialize(a, name, seed=3)
    initialize(b, name, seed=3)
    initialize(c, name, seed=4)
    for (key, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), key
    initialize(SUPPORTED[name](), name, seed=torch.Generator().manual_seed(0))  # a generator is drawn from as given
    differs = any(not torch.equal(x, z) for x, z in zip(a.state_dict().values(), c.state_dict().values(), strict=True))
    assert differs is (name != "zero_init")  # ZerO draws nothing


# -- residual schemes ----------------------------------------------------------------------------------------------
def test_fixup_zeros_last_layers_and_head_and_scales_the_other_branch_layers() -> None:
    model = build("resmlp:32x4")
    report = initialize(model, "fixup", seed=0)
    factor = 4 ** (-1 / 2)  # L = 4 branches of m = 2 layers: L^(-1/(2m-2))
    for i, block in enumerate(model.blocks):
        assert not block.mlp.fc2.weight.any()
        assert not block.mlp.fc2.bias.any()
        name = f"blocks.{i}.mlp.fc1.weight"
        he = initlab.HeNormal()((32, 32), seed=derive_seed(0, name))
        torch.testing.assert_close(block.mlp.fc1.weight.detach(), he * factor)
        assert report[name].rule == "fixup: branch layer: base × L^(-1/(2m-2)) = 4^(-1/2) = 0.5"
        assert report[f"blocks.{i}.mlp.fc2.weight"].rule == "fixup: branch last layer → 0"
    assert not model.head.weight.any()
    assert report["head.weight"].rule == "fixup: classification layer → 0"
    assert report["embed.weight"].rule == "fixup base: weights → HeNormal()"
    h = torch.randn(5, 32)
    torch.testing.assert_close(model.blocks[0](h), h)  # every block starts as the identity
    # In a transformer an attention branch has depth 2 (value, output) and L counts both branches of each block.
    transformer = build("transformer:32x2", (6,), 12)
    initialize(transformer, "fixup", seed=0)
    xavier_free = initlab.HeNormal()((32, 32), seed=derive_seed(0, "blocks.0.attn.v.weight")) * 4 ** (-1 / 2)
    torch.testing.assert_close(transformer.blocks[0].attn.v.weight.detach(), xavier_free)


def test_fixup_sets_a_declared_branch_multiplier_to_one() -> None:
    model = GatedNet()
    report = initialize(model, "fixup", seed=0)
    assert all(float(b.alpha.detach()) == 1.0 for b in model.blocks)
    assert report["blocks.0.alpha"].rule == "fixup: branch multiplier → 1"


@pytest.mark.parametrize(("name", "per_channel"), [("skipinit", False), ("rezero", False), ("layerscale", True)])
def test_gate_schemes_start_every_block_at_the_identity_or_near_it(name: str, per_channel: bool) -> None:
    model = GatedNet(depth=4, per_channel=per_channel)
    report = initialize(model, name, seed=0)
    expected = 0.1 if name == "layerscale" else 0.0  # LayerScale's ε for up to 18 blocks (CaiT)
    for block in model.blocks:
        assert torch.equal(block.alpha.detach(), torch.full_like(block.alpha, expected))
    assert report["blocks.0.alpha"].rule.startswith(f"{name}: branch ")
    if name != "layerscale":
        x = torch.randn(7, 8)
        torch.testing.assert_close(model(x), model.head(model.embed(x)))
    assert (layerscale_epsilon(18), layerscale_epsilon(24), layerscale_epsilon(25)) == (0.1, 1e-5, 1e-6)
    assert float(LayerScale(epsilon=1e-3).apply(model, seed=0).extra["epsilon"]) == 1e-3


@pytest.mark.parametrize("name", ["skipinit", "rezero", "layerscale"])
def test_gate_schemes_say_what_an_ungated_model_lacks(name: str) -> None:
    with pytest.raises(StructureError, match=rf"{name} needs a gate on every residual branch.*BranchDecl"):
        initialize(build("resmlp:32x2"), name)


def test_zero_gamma_zeros_the_last_norm_of_each_branch_so_blocks_start_as_their_shortcut() -> None:
    model = build("resnet:8,16;blocks=2", (1, 8, 8))
    report = initialize(model, "zero_gamma", seed=0)
    blocks = [b for stage in model.stages for b in stage]
    for block in blocks:
        assert not block.branch.norm2.weight.any()
        assert torch.equal(block.branch.norm1.weight.detach(), torch.ones(block.branch.norm1.weight.shape))
    assert report["stages.0.0.branch.norm2.weight"].rule == "zero_gamma: last norm scale γ of the branch → 0"
    x = torch.randn(4, 8, 8, 8)
    torch.testing.assert_close(blocks[0](x), torch.relu(x))  # identity shortcut: act(0 + x)
    with pytest.raises(StructureError, match="zero_gamma needs a normalization after the last layer"):
        initialize(build("resmlp:32x2"), "zero_gamma")


def test_residual_schemes_need_residual_blocks() -> None:
    for name in ("fixup", "gpt2", "zero_gamma"):
        with pytest.raises(
            StructureError,
            match=rf"^{name} needs residual blocks; build a resmlp/resnet/transformer spec .*declare "
            r"residual_branches\(\) on your blocks",
        ):
            initialize(build("mlp:32"), name)


# -- transformer schemes -------------------------------------------------------------------------------------------
def test_gpt2_scales_the_residual_projections_by_one_over_sqrt_n() -> None:
    model = build("transformer:64x4;task=lm", (8,), 16)
    report = initialize(model, "gpt2", seed=0)
    n = 8  # two residual layers per block
    assert report.extra["residual_layers"] == n
    last = set(models.structure(model).output_projections)
    weights = {
        m: p.detach().flatten()
        for m, mod in model.named_modules()
        for pname, p in mod.named_parameters(recurse=False)
        if pname == "weight" and p.dim() == 2
    }
    projections = torch.cat([w for m, w in weights.items() if m in last])
    others = torch.cat([w for m, w in weights.items() if m not in last])
    assert len(last) == n
    for values, std in [(projections, 0.02 / math.sqrt(n)), (others, 0.02)]:
        measured = float(values.detach().double().std())
        assert measured == pytest.approx(std, rel=sample_std_tolerance(values.numel()))
    assert report["blocks.0.attn.out.weight"].rule.startswith("gpt2: residual output projection → N(0, (0.02/√N)²)")


@pytest.mark.parametrize(("task", "factor"), [("classify", 0.67 * 3**-0.25), ("lm", (9 * 3) ** -0.25)])
def test_t_fixup_scales_value_output_and_mlp_weights_and_the_embeddings(task: str, factor: float) -> None:
    model = build(f"transformer:32x3;ln=none;task={task}", (6,), 12)
    initialize(model, "t_fixup", seed=0)
    block = model.blocks[1]

    def xavier(name: str, shape: tuple[int, ...]) -> torch.Tensor:
        return initlab.XavierUniform()(shape, seed=derive_seed(0, name))

    for part in ("v", "out"):
        expected = xavier(f"blocks.1.attn.{part}.weight", (32, 32)) * factor
        torch.testing.assert_close(getattr(block.attn, part).weight.detach(), expected)
    torch.testing.assert_close(block.mlp.fc1.weight.detach(), xavier("blocks.1.mlp.fc1.weight", (128, 32)) * factor)
    torch.testing.assert_close(block.attn.q.weight.detach(), xavier("blocks.1.attn.q.weight", (32, 32)))
    embed = model.embed.weight.detach().double()
    std = 32**-0.5 * (9 * 3) ** -0.25
    assert float(embed.std()) == pytest.approx(std, rel=sample_std_tolerance(embed.numel()))
    with pytest.raises(StructureError, match=r"t_fixup is for transformers without layer normalization.*ln=none"):
        initialize(build("transformer:32x2", (6,), 12), "t_fixup")


def test_deepnet_gives_value_output_and_mlp_weights_xavier_gain_beta() -> None:
    model = build("transformer:32x3;ln=post", (6,), 12)
    report = initialize(model, "deepnet", seed=0)
    beta = (8 * 3) ** -0.25
    for name in ("blocks.2.attn.v.weight", "blocks.2.attn.out.weight", "blocks.2.mlp.fc2.weight"):
        param = model.get_parameter(name)
        expected = initlab.XavierNormal(beta)(tuple(param.shape), seed=derive_seed(0, name))
        torch.testing.assert_close(param.detach(), expected)
    q = model.get_parameter("blocks.2.attn.q.weight")
    torch.testing.assert_close(
        q.detach(), initlab.XavierNormal(1.0)((32, 32), seed=derive_seed(0, "blocks.2.attn.q.weight"))
    )
    assert report.extra["alpha"] == pytest.approx((2 * 3) ** 0.25)
    with pytest.raises(StructureError, match=r"deepnet is for post-LN transformers.*ln=post"):
        initialize(build("transformer:32x2;ln=pre", (6,), 12), "deepnet")


def test_small_embedding_draws_tiny_tables() -> None:
    model = build("transformer:32x2", (6,), 12)
    initialize(model, "small_embedding", seed=0)
    for table in (model.embed.weight.detach(), model.pos.weight.detach()):
        assert float(table.abs().max()) <= 1e-4
        assert float(table.abs().max()) > 0.9e-4
    assert float(model.blocks[0].attn.q.weight.detach().std()) == pytest.approx(0.02, rel=0.1)
    normal = build("transformer:32x2", (6,), 12)
    initialize(normal, {"class_name": "SmallEmbedding", "config": {"scale": 1e-3, "distribution": "normal"}}, seed=0)
    assert float(normal.embed.weight.detach().std()) == pytest.approx(1e-3, rel=0.1)
    with pytest.raises(ValueError, match="small_embedding initializes embedding tables"):
        initialize(build("mlp:32"), "small_embedding")


def test_mimetic_attention_products_are_noisy_identities() -> None:
    model = build("transformer:32x2;heads=1", (6,), 12)
    initialize(model, "mimetic", seed=0)
    off = ~torch.eye(32, dtype=torch.bool)
    for block in model.blocks:
        attn = block.attn
        qk = (attn.q.weight.T @ attn.k.weight).detach().double()  # scores x^T W_q^T W_k x'
        vo = (attn.out.weight @ attn.v.weight).detach().double()
        for product, alpha, beta in [(qk, 0.7, 0.7), (vo, 0.4, -0.4)]:
            assert float(product.diagonal().mean()) == pytest.approx(beta, abs=0.05)
            assert float(product[off].std()) == pytest.approx(alpha / math.sqrt(32), rel=sample_std_tolerance(992))
    # Several heads: each head's product is the best rank-8 approximation of 0.7 Z + 0.7 I, so it leans to the identity.
    heads = build("transformer:32x2;heads=4", (6,), 12)
    initialize(heads, "mimetic", seed=0)
    attn = heads.blocks[0].attn
    for h in range(4):
        rows = slice(8 * h, 8 * (h + 1))
        product = (attn.q.weight[rows].T @ attn.k.weight[rows]).detach()
        assert torch.linalg.matrix_rank(product) == 8
        assert float(product.trace()) > 0


def test_mimetic_works_on_torch_multihead_attention() -> None:
    layer = nn.TransformerEncoderLayer(32, 1, dim_feedforward=64, batch_first=True)
    report = initialize(layer, "mimetic", seed=0)
    w = layer.self_attn.in_proj_weight.detach()
    vo = layer.self_attn.out_proj.weight.detach() @ w[64:]
    assert float(vo.diagonal().mean()) == pytest.approx(-0.4, abs=0.05)
    assert float((w[:32].T @ w[32:64]).diagonal().mean()) == pytest.approx(0.7, abs=0.05)
    assert report["self_attn.in_proj_weight[v]"].rule.startswith("mimetic: attention v")
    with pytest.raises(ValueError, match="mimetic initializes self-attention layers"):
        initialize(build("mlp:32"), "mimetic")


# -- convolution and matrix schemes --------------------------------------------------------------------------------
@pytest.mark.parametrize("gain", [1.0, math.sqrt(2.0)])
def test_delta_orthogonal_kernels_are_an_orthogonal_centre_tap_and_preserve_norms(gain: float) -> None:
    conv = nn.Conv2d(8, 16, 3, padding=1, bias=False)
    report = initialize(nn.Sequential(conv), DeltaOrthogonal(gain=gain), seed=0)
    w = conv.weight.detach().double()
    centre = w[:, :, 1, 1]
    off = w.clone()
    off[:, :, 1, 1] = 0
    assert not off.any()
    torch.testing.assert_close(centre.T @ centre, gain**2 * torch.eye(8, dtype=torch.float64))
    x = torch.randn(3, 8, 6, 6)
    torch.testing.assert_close(conv(x).norm(dim=1), gain * x.norm(dim=1), rtol=1e-5, atol=1e-5)  # at every position
    assert report["0.weight"].rule.startswith("delta_orthogonal: conv kernel → delta-orthogonal")
    grouped = nn.Conv1d(8, 16, 5, groups=2)
    initialize(grouped, "delta_orthogonal", seed=0)
    for g in range(2):
        block = grouped.weight.detach()[8 * g : 8 * (g + 1), :, 2].double()
        torch.testing.assert_close(block.T @ block, torch.eye(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="delta_orthogonal initializes convolution kernels"):
        initialize(build("mlp:32"), "delta_orthogonal")


def test_zero_init_is_deterministic_and_a_resmlp_starts_as_a_partial_identity() -> None:
    a, b = build("resmlp:32x3"), build("resmlp:32x3")
    initialize(a, "zero_init", seed=0)
    initialize(b, "zero_init", seed=None)
    for (key, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y), key
    x = torch.randn(5, 64)
    # embed keeps the first 32 inputs, every block is the identity (its last layer 0), the head keeps 10 of them.
    torch.testing.assert_close(a(x), torch.relu(x[:, :10]))
    widening = nn.Linear(4, 16)
    initialize(widening, "zero_init")
    w = widening.weight.detach().double()
    torch.testing.assert_close(w.T @ w, torch.eye(4, dtype=torch.float64))  # a Hadamard transform: an isometry
    assert set(w.abs().flatten().tolist()) == {0.25}
    assert torch.equal(zero_matrix(3, 5), torch.eye(3, 5, dtype=torch.float64))
    h = hadamard(3)
    torch.testing.assert_close(h @ h.T, 8 * torch.eye(8, dtype=torch.float64))
    with pytest.raises(ValueError, match="zero_init is defined for Linear and Conv layers"):
        initialize(build("transformer:32x2", (6,), 12), "zero_init")


@pytest.mark.parametrize("distribution", ["orthogonal", "normal"])
def test_spectral_condition_sets_each_spectral_norm_to_sqrt_fan_out_over_fan_in(distribution: str) -> None:
    model = build("mlp:64,32", (20,))
    report = initialize(model, SpectralCondition(distribution=distribution), seed=0)
    layers = [m for m in model if isinstance(m, nn.Linear)]
    for layer in layers:
        out, fan_in = layer.weight.shape
        sigma = torch.linalg.matrix_norm(layer.weight.detach().double(), ord=2)
        assert float(sigma) == pytest.approx(math.sqrt(out / fan_in), rel=1e-5)
    singular = torch.linalg.svdvals(layers[1].weight.detach())
    assert (float(singular.min() / singular.max()) > 0.999) is (distribution == "orthogonal")
    assert report["1.weight"].gain == pytest.approx(math.sqrt(64 / 20))
    cnn = build("cnn:8,16", (1, 8, 8))
    initialize(cnn, "spectral", seed=0)
    kernel = cnn[0].weight.detach().double().reshape(8, -1)
    assert float(torch.linalg.matrix_norm(kernel, ord=2)) == pytest.approx(math.sqrt(8 / 9), rel=1e-5)


# -- recurrent schemes ---------------------------------------------------------------------------------------------
def test_forget_bias_is_one_and_every_other_bias_zero() -> None:
    for model in (nn.LSTM(5, 8, num_layers=2), nn.LSTMCell(5, 8)):
        report = initialize(model, "forget_bias", seed=0)
        for name, param in model.named_parameters():
            if name.startswith("bias"):
                expected = torch.zeros(32)
                if name.startswith("bias_ih"):
                    expected[8:16] = 1.0  # torch's gate order i, f, g, o
                assert torch.equal(param.detach(), expected), name
        ih = next(n for n, _ in model.named_parameters() if n.startswith("bias_ih"))
        assert report[f"{ih}[f]"].rule == "forget_bias: LSTM forget-gate bias = 1 (Jozefowicz et al. 2015)"
    with pytest.raises(ValueError, match="forget_bias sets the gate biases of LSTM layers"):
        initialize(nn.GRU(5, 8), "forget_bias")


def test_chrono_forget_biases_are_log_uniform_and_input_biases_their_negative() -> None:
    model = nn.LSTM(4, 512, num_layers=2)
    report = initialize(model, Chrono(t_max=50), seed=0)
    for layer in range(2):
        b_ih = getattr(model, f"bias_ih_l{layer}").detach().double()
        b_hh = getattr(model, f"bias_hh_l{layer}").detach()
        i, f, g, o = b_ih.chunk(4)
        assert float(f.min()) >= 0.0
        assert float(f.max()) <= math.log(49)
        torch.testing.assert_close(i, -f)
        assert not torch.cat([g, o]).any()
        assert not b_hh.any()
        u = f.exp()  # U(1, 49): mean 25, std 48/√12
        assert float(u.mean()) == pytest.approx(25.0, abs=5 * 48 / math.sqrt(12 * 512))
    assert report["bias_ih_l0[f]"].rule == "chrono: forget gate bias b_f → log U(1, 49)"
    assert report["bias_ih_l0[i]"].rule == "chrono: input gate bias b_i → −b_f"
    with pytest.raises(ValueError, match=r"t_max=2 must be > 2"):
        Chrono(t_max=2)


# -- studies and bad use -------------------------------------------------------------------------------------------
def test_a_structural_scheme_is_a_study_arm(tmp_path: Path) -> None:
    from initlab.store import Store
    from initlab.studies import Arm, Study, run_study
    from initlab.training import TrainSettings

    study = Study(
        name="fixup-arm",
        dataset="digits",
        model="resmlp:32x4",
        arms=(Arm("fixup", "fixup"),),
        seeds=(0,),
        train=TrainSettings(epochs=1, batch_size=64),
    )
    run_study(study, tmp_path / "s", workers=1)
    with Store.in_dir(tmp_path / "s", readonly=True) as store:
        runs = list(store.runs())
    assert [r.status for r in runs] == ["finished"]


def test_bad_use_gives_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown scheme 'fixpu'.*Did you mean .*'fixup'"):
        resolve("fixpu")
    with pytest.raises(ValueError, match=r"'fixup' is a procedure"):
        Scheme([], base="fixup")
    with pytest.raises(ValueError, match=r"Chrono config has unknown keys \['tmax'\].*Did you mean 't_max'"):
        resolve({"class_name": "Chrono", "config": {"tmax": 5}})
    with pytest.raises(ValueError, match=r"distribution='gauss' is not allowed.*'uniform', 'normal'"):
        resolve({"class_name": "SmallEmbedding", "config": {"distribution": "gauss"}})
    with pytest.raises(ValueError, match=r"fixup base='lsuv' is a procedure, not a list of rules"):
        Fixup(base="lsuv")
    with pytest.raises(ValueError, match=r"unknown scheme 'he_nromal'"):
        Fixup(base="he_nromal")
    with pytest.raises(ValueError, match="gain"):
        DeltaOrthogonal(gain=-1.0)


# -- gates built from specs ----------------------------------------------------------------------------------------
def test_skipinit_and_rezero_zero_the_gates_of_a_gated_resmlp_spec():
    for scheme in ("skipinit", "rezero"):
        model = initlab.models.build("resmlp:16x3;gate=scalar", input_shape=(8,), num_classes=5)
        gates = [b.gate for b in initlab.models.structure(model).branches]
        assert gates == [f"blocks.{i}.gate" for i in range(3)]
        initlab.initialize(model, scheme, seed=0)
        assert all(model.get_parameter(g).item() == 0.0 for g in gates)
        x = torch.randn(4, 8)
        with torch.no_grad():  # every block is the identity: the model is head(act(norm(embed(x))))
            expected = model.head(model.act(model.norm(model.embed(model.flatten(x)))))
            assert torch.allclose(model(x), expected)


def test_layerscale_sets_the_channel_gates_of_a_transformer_spec():
    model = initlab.models.build("transformer:16x2;heads=2;gate=channel", input_shape=(6,), num_classes=7)
    initlab.initialize(model, "layerscale", seed=0)
    gates = [b.gate for b in initlab.models.structure(model).branches]
    assert len(gates) == 4
    for g in gates:
        value = model.get_parameter(g)
        assert value.shape == (16,)
        assert torch.allclose(value, torch.full((16,), 0.1))


def test_a_bad_gate_option_names_the_choices():
    with pytest.raises(ValueError, match=r"gate='scaler' is not one of none\|scalar\|channel"):
        initlab.models.build("resmlp:16x3;gate=scaler", input_shape=(8,), num_classes=5)
