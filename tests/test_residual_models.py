"""Residual model specs (resmlp, resnet, transformer): grammar, shapes, sizes, declared structure, schemes, training."""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from torch import nn

import initlab
from initlab import data, models, nets
from initlab.models import SPEC_GRAMMAR, ResMLPSpec, ResNetSpec, TransformerSpec, build, parse
from initlab.studies import Arm, Store, Study, run_study
from initlab.training.population import Batch, Population
from initlab.training.settings import TrainSettings

GRAMMAR = r"KIND\[:W1,W2,\.\.\.\]\[;KEY=VALUE\]"


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------------------------ spec grammar
@pytest.mark.parametrize(
    ("text", "spec", "canonical"),
    [
        ("resmlp", ResMLPSpec(), "resmlp:64x4"),
        ("resmlp:64x8;norm=ln", ResMLPSpec(64, 8, norm="layer"), "resmlp:64x8;norm=layer"),
        (" RESMLP : 32 X 2 ; act=Tanh;dropout=0.1", ResMLPSpec(32, 2, act="tanh", dropout=0.1), None),
        ("resnet", ResNetSpec(), "resnet:16,32,64"),
        ("resnet:16,32,64;blocks=3;norm=bn", ResNetSpec((16, 32, 64), 3), "resnet:16,32,64;blocks=3"),
        ("resnet:8,16;norm=none;act=gelu", ResNetSpec((8, 16), act="gelu", norm="none"), None),
        ("transformer", TransformerSpec(), "transformer:64x2"),
        (
            "transformer:64x4;heads=4;ln=post;task=lm;patch=7",
            TransformerSpec(64, 4, ln="post", task="lm", patch=7),
            "transformer:64x4;ln=post;task=lm;patch=7",
        ),
        (
            "transformer:32x1;heads=2;ffn=2;vocab=50;bias=false",
            TransformerSpec(32, 1, 2, ffn=2, vocab=50, bias=False),
            None,
        ),
    ],
)
def test_specs_parse_and_round_trip(text: str, spec: object, canonical: str | None) -> None:
    parsed = parse(text)
    assert parsed == spec
    assert parse(str(parsed)) == parsed
    assert models.spec_from_config(parsed.get_config()) == parsed
    assert models.describe(text) == str(parsed)
    assert models.describe(parsed.get_config()) == str(parsed)
    assert models.is_spec(text)
    if canonical is not None:
        assert str(parsed) == canonical


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("resmlp:64", r"resmlp:64 is not WIDTHxDEPTH; write the width and depth in the kind: resmlp:64x8"),
        ("resmlp:64x0", r"depth must be a positive integer, got 0"),
        ("resmlp:", r"nothing after 'resmlp:'"),
        ("resmlp:64x8;norm=layr", r"norm='layr' is not one of none\|batch\|layer.*Did you mean 'layer'"),
        ("resmlp:64x8;actt=relu", r"resmlp has no option 'actt'; its options are act, norm, dropout, bias.*'act'"),
        ("resmlp:64x8;blocks=3", r"no option 'blocks'.*Write the width and depth in the kind: resmlp:64x8"),
        ("resmlp;dropout=1", r"dropout must be a number in \[0, 1\), got 1.0"),
        ("resnet:16,32;depth=3", r"resnet has no option 'depth'.*Did you mean 'blocks'"),
        ("resnet:16,32;norm=grup", r"norm='grup' is not one of none\|batch\|layer"),
        ("resnet:16,32;blocks=0", r"blocks must be a positive integer, got 0"),
        ("resnet;dropout=0.1", r"resnet has no option 'dropout'; its options are blocks, act, norm"),
        ("resnet:16,,32", r"empty entry"),
        ("transformer:64x4;heads=5", r"heads=5 does not divide the width 64; use one of \[1, 2, 4, 8, 16\]"),
        ("transformer:64x4;n_heads=4", r"transformer has no option 'n_heads'.*Did you mean 'heads'"),
        ("transformer:64x4;norm=pre", r"no option 'norm'.*Did you mean 'ln'"),
        ("transformer;layers=4", r"no option 'layers'.*transformer:64x4 \(width 64, 4 layers\)"),
        ("transformer;ln=middle", r"ln='middle' is not one of pre\|post\|none"),
        ("transformer;task=clasify", r"task='clasify' is not one of classify\|lm.*Did you mean 'classify'"),
        ("transformer;patch=0", r"patch must be a positive integer, got 0"),
        ("transformr:64x2", r"unknown kind 'transformr'.*Did you mean 'transformer'"),
    ],
)
def test_bad_options_name_the_option_and_the_closest_match(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match) as info:
        parse(spec)
    message = str(info.value)
    assert SPEC_GRAMMAR in message
    assert f"bad model spec {spec!r}" in message
    with pytest.raises(ValueError, match=GRAMMAR):
        build(spec, input_shape=(1, 8, 8), num_classes=10)


def test_bad_python_specs_show_the_grammar() -> None:
    with pytest.raises(ValueError, match=rf"(?s)act='swish'.*{GRAMMAR}"):
        ResMLPSpec(act="swish")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=rf"(?s)channels must be positive integers, got -1.*{GRAMMAR}"):
        ResNetSpec((8, -1))
    with pytest.raises(ValueError, match=r"unknown TransformerSpec fields \['layers'\]"):
        TransformerSpec.from_config({"kind": "transformer", "layers": 2})
    with pytest.raises(ValueError, match=r"a resnet is a ResNetSpec, not a ModelSpec"):
        models.ModelSpec("resnet")  # type: ignore[arg-type]


def test_resize_changes_width_and_blocks() -> None:
    assert models.resize("resmlp:64x8;norm=ln", width=128) == "resmlp:128x8;norm=layer"
    assert models.resize("resmlp:64x8", depth=2) == "resmlp:64x2"
    assert models.resize("transformer:64x2;heads=4;task=lm", width=32, depth=6) == "transformer:32x6;task=lm"
    # ResNet: the first stage's width, the others in proportion; the depth is the blocks per stage.
    assert models.resize("resnet:16,32,64", width=32, depth=3) == "resnet:32,64,128;blocks=3"
    with pytest.raises(ValueError, match=r"cannot all be scaled by 9/16"):
        models.resize("resnet:16,24", width=9)
    with pytest.raises(ValueError, match=r"heads=4 does not divide the width 6"):
        models.resize("transformer:64x2", width=6)
    with pytest.raises(ValueError, match=r"depth must be a positive integer, got 0"):
        models.resize("resmlp:64x8", depth=0)
    assert parse("resmlp:64x3").widths == (64, 64, 64)
    assert parse("resnet:8,16").widths == (8, 16)


# -------------------------------------------------------------------------------------------------- shapes and sizes
@pytest.mark.parametrize(
    ("spec", "input_shape"),
    [
        ("resmlp:16x3", (1, 8, 8)),
        ("resmlp:16x2;norm=batch;dropout=0.1", (2,)),
        ("resmlp:16x2;norm=layer;act=tanh", (40,)),
        ("resnet:4,8", (1, 8, 8)),
        ("resnet:4,8,16;norm=layer", (1, 28, 28)),
        ("resnet:4;norm=none;blocks=1", (8, 8)),
        ("transformer:16x2;heads=2", (1, 8, 8)),
        ("transformer:16x1;patch=7;ln=post", (1, 28, 28)),
        ("transformer:16x1;patch=2", (8, 8)),
        ("transformer:16x1;ln=none", (12, 3)),
    ],
)
def test_float_inputs_give_one_logit_per_class(spec: str, input_shape: tuple[int, ...]) -> None:
    model = build(spec, input_shape=input_shape, num_classes=5)
    model.eval()
    out = model(torch.randn(4, *input_shape))
    assert out.shape == (4, 5)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("task", ["classify", "lm"])
def test_transformer_on_tokens(task: str) -> None:
    model = build(f"transformer:16x2;heads=4;task={task}", input_shape=(6,), num_classes=11)
    assert isinstance(model.embed, nn.Embedding)
    assert model.embed.num_embeddings == 11
    x = torch.randint(0, 11, (3, 6))
    assert model(x).shape == (3, 11)
    with pytest.raises(TypeError, match=r"embeds token ids \(int64 below 11\) and got torch.float32"):
        model(x.float())
    assert build("transformer:16x1;vocab=30", input_shape=(6,), num_classes=2).embed.num_embeddings == 30


def test_the_decoder_is_causal_and_the_encoder_is_not() -> None:
    """Changing the first token changes the decoder's last-position logits only through attention to the past;
    changing the last token of a prefix never changes what an earlier position sees: checked on the blocks' output."""
    torch.manual_seed(0)
    lm = build("transformer:16x2;task=lm", input_shape=(5,), num_classes=9).eval()
    x = torch.randint(0, 9, (1, 5))
    y = x.clone()
    y[0, -1] = (x[0, -1] + 1) % 9

    def hidden(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
        h = model.embed(tokens) + model.pos(torch.arange(tokens.shape[1]))
        for block in model.blocks:
            h = block(h)
        return h

    with torch.no_grad():
        assert torch.allclose(hidden(lm, x)[:, :-1], hidden(lm, y)[:, :-1])  # the past does not see the future
        enc = build("transformer:16x2", input_shape=(5,), num_classes=9).eval()
        assert not torch.allclose(hidden(enc, x)[:, :-1], hidden(enc, y)[:, :-1])


def test_shapes_that_do_not_fit_are_explained() -> None:
    with pytest.raises(ValueError, match=r"patch=3 does not divide the image size 8×8; use one of \[1, 2, 4, 8\]"):
        build("transformer:16x1;patch=3", input_shape=(1, 8, 8), num_classes=10)
    with pytest.raises(ValueError, match=r"task=lm predicts the next token and needs token inputs"):
        build("transformer:16x1;task=lm", input_shape=(1, 8, 8), num_classes=10)
    with pytest.raises(ValueError, match=r"patch applies to image inputs"):
        build("transformer:16x1;patch=2", input_shape=(6,), num_classes=10)
    with pytest.raises(ValueError, match=r"token inputs need the vocabulary size"):
        build("transformer:16x1", input_shape=(6,), num_classes=None)
    with pytest.raises(ValueError, match=r"resnet needs image inputs shaped \(C, H, W\) or \(H, W\)"):
        build("resnet:4", input_shape=(10,), num_classes=2)
    with pytest.raises(ValueError, match=r"at most 1,000,000,000"):
        build("resmlp:100000x100", input_shape=(10,), num_classes=2)


def test_auto_patch_gives_at_most_64_patches() -> None:
    assert nets.auto_patch(28, 28) == 4  # 7×7 = 49 patches
    assert nets.auto_patch(8, 8) == 1
    assert build("transformer:16x1", input_shape=(1, 28, 28), num_classes=10).pos.num_embeddings == 49


def test_parameter_counts_of_known_configurations() -> None:
    # resmlp:16x2 on 4 inputs, 3 classes: embed 4·16+16, two blocks of 2·(16·16+16), head 16·3+3.
    assert _count(build("resmlp:16x2", input_shape=(4,), num_classes=3)) == 80 + 2 * 544 + 51
    # ... with layer norms: 2·16 in each block and 2·16 before the head.
    assert _count(build("resmlp:16x2;norm=layer", input_shape=(4,), num_classes=3)) == 80 + 2 * 544 + 51 + 3 * 32
    # transformer:16x2;heads=2 on 5 tokens, 7 classes: token 7·16 + position 5·16 embeddings; per block two layer
    # norms (2·32), q, k, v, out (4·(16·16+16)), the MLP 16·64+64 + 64·16+16; the final layer norm; head 16·7+7.
    block = 2 * 32 + 4 * (256 + 16) + (1024 + 64) + (1024 + 16)
    expected = 7 * 16 + 5 * 16 + 2 * block + 32 + 16 * 7 + 7
    assert _count(build("transformer:16x2;heads=2", input_shape=(5,), num_classes=7)) == expected
    # resnet:4,8;blocks=1 on 8×8: bias-free convolutions before batch norms; the projection shortcut enters stage 2.
    stem = 1 * 4 * 9 + 8
    stage1 = 2 * (4 * 4 * 9) + 2 * 8
    stage2 = 4 * 8 * 9 + 8 * 8 * 9 + 2 * 16 + 4 * 8 + 16
    assert _count(build("resnet:4,8;blocks=1", input_shape=(1, 8, 8), num_classes=10)) == stem + stage1 + stage2 + 90
    # He et al. 2016, Table 6: ResNet-20 on CIFAR-10 (16,32,64 with 3 blocks a stage) has 0.27M parameters.
    assert round(_count(build("resnet:16,32,64;blocks=3", input_shape=(3, 32, 32), num_classes=10)), -4) == 270_000


# ---------------------------------------------------------------------------------------------- declared structure
def test_resmlp_declares_every_branch_and_its_last_layer() -> None:
    model = build("resmlp:64x8;norm=ln", input_shape=(1, 8, 8), num_classes=10)
    s = models.structure(model)
    assert s.source == "declared"
    assert len(s.blocks) == 8
    for i, block in enumerate(s.blocks):
        assert block.name == f"blocks.{i}"
        assert block.type == "ResidualMLPBlock"
        (branch,) = block.branches
        assert branch.last == f"blocks.{i}.mlp.fc2"
        last = model.get_submodule(branch.last)
        assert isinstance(last, nn.Linear)
        assert (last.in_features, last.out_features) == (64, 64)
    assert s.embeddings == ("embed",)
    assert s.head == "head"
    assert s.norms == (*(f"blocks.{i}.norm" for i in range(8)), "norm")
    assert len(s.output_projections) == 8


def test_transformer_declares_its_output_projections_and_embeddings() -> None:
    model = build("transformer:32x3;heads=4", input_shape=(7,), num_classes=13)
    s = models.structure(model)
    assert s.output_projections == tuple(
        name for i in range(3) for name in (f"blocks.{i}.attn.out", f"blocks.{i}.mlp.fc2")
    )
    assert [b.name for b in s.branches] == [name for i in range(3) for name in (f"blocks.{i}.attn", f"blocks.{i}.mlp")]
    assert s.embeddings == ("embed", "pos")
    assert isinstance(model.get_submodule("embed"), nn.Embedding)
    assert s.head == "head"
    assert len(s.norms) == 2 * 3 + 1  # ln1, ln2 per block and the final norm (pre-LN)
    assert len(models.structure(build("transformer:32x3;ln=post", input_shape=(7,), num_classes=13)).norms) == 6
    patches = models.structure(build("transformer:32x1;patch=4", input_shape=(1, 8, 8), num_classes=10))
    assert patches.embeddings == ("embed", "pos")
    assert s.to_dict()["blocks"][0]["branches"][0]["last"] == "blocks.0.attn.out"


def test_resnet_declares_last_norms_and_projection_shortcuts() -> None:
    model = build("resnet:4,8,16;blocks=2", input_shape=(1, 8, 8), num_classes=10)
    s = models.structure(model)
    assert len(s.blocks) == 6
    assert all(isinstance(model.get_submodule(b.last), nn.Conv2d) for b in s.branches)
    assert all(isinstance(model.get_submodule(b.last_norm), nn.BatchNorm2d) for b in s.branches)  # zero-init-last-BN
    assert [b.shortcut for b in s.branches] == [None, None, "stages.1.0.shortcut", None, "stages.2.0.shortcut", None]
    assert s.embeddings == ("stem.conv",)
    bare = models.structure(build("resnet:4,8;norm=none", input_shape=(1, 8, 8), num_classes=10))
    assert all(b.last_norm is None for b in bare.branches)
    assert bare.norms == ()


def test_undeclared_models_and_wrong_declarations_are_refused() -> None:
    with pytest.raises(nets.StructureError, match=r"Sequential does not declare its residual structure"):
        models.structure(build("mlp:8", input_shape=(2,), num_classes=2))

    class Bad(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.fc(x)

        def residual_branches(self) -> tuple[nets.BranchDecl, ...]:
            return (nets.BranchDecl(branch="fc", last="fc2"),)

    with pytest.raises(nets.StructureError, match=r"declares the last layer of a branch of block '' 'fc2'"):
        nets.structure(Bad())
    with pytest.raises(TypeError, match=r"must be a torch.nn.Module"):
        nets.structure("resmlp")  # type: ignore[arg-type]


def test_a_model_of_your_own_can_declare_its_structure() -> None:
    class Gated(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.branch = nn.Sequential(OrderedDict(fc1=nn.Linear(4, 4), act=nn.ReLU(), fc2=nn.Linear(4, 4)))
            self.alpha = nn.Parameter(torch.zeros(()))  # ReZero: x + α f(x), α = 0 at initialization

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.alpha * self.branch(x)

        def residual_branches(self) -> tuple[nets.BranchDecl, ...]:
            return (nets.BranchDecl(branch="branch", last="branch.fc2", gate="alpha"),)

    model = nn.Sequential(Gated(), Gated())
    s = nets.structure(model)
    assert [b.gate for b in s.branches] == ["0.alpha", "1.alpha"]
    assert s.output_projections == ("0.branch.fc2", "1.branch.fc2")
    assert s.embeddings == ()
    assert s.head is None


# ------------------------------------------------------------------------------------------------ schemes and training
@pytest.mark.parametrize(
    ("spec", "input_shape"),
    [("resmlp:32x2;norm=batch", (1, 8, 8)), ("resnet:4,8", (1, 8, 8)), ("transformer:64x2;heads=4", (5,))],
)
def test_schemes_cover_every_parameter(spec: str, input_shape: tuple[int, ...]) -> None:
    model = build(spec, input_shape=input_shape, num_classes=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error", initlab.UncoveredParameterWarning)
        report = initlab.initialize(model, "he_normal", seed=0)
    assert len(report.entries) == sum(1 for _ in model.parameters())


def test_attention_projections_get_the_fans_of_their_own_linear_layers() -> None:
    model = build("transformer:256x1;heads=4", input_shape=(5,), num_classes=10)
    initlab.initialize(model, "he_normal", seed=0)
    for name in ("q", "k", "v", "out"):
        weight = model.get_submodule(f"blocks.0.attn.{name}").weight
        assert weight.std().item() == pytest.approx(math.sqrt(2 / 256), rel=0.03)  # 65,536 draws: about 0.3% error


@pytest.mark.parametrize(
    ("spec", "input_shape"),
    [
        ("resnet:4,8;blocks=1", (1, 8, 8)),
        ("resmlp:16x2;norm=batch;dropout=0.2", (1, 8, 8)),
        ("transformer:16x2;heads=2;dropout=0.1;task=lm", (5,)),
    ],
)
@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "vmap"])
def test_a_population_of_residual_models_equals_the_models_alone(
    spec: str, input_shape: tuple[int, ...], fast: bool
) -> None:
    """Either path (the model's fast path, or the general vmap path forced): outputs in eval mode, and batch norm's
    running statistics kept per model."""
    torch.manual_seed(0)
    members = [build(spec, input_shape=input_shape, num_classes=10) for _ in range(3)]
    x = torch.randint(0, 10, (8, *input_shape)) if len(input_shape) == 1 else torch.randn(8, *input_shape)
    pop = Population(members, TrainSettings(optimizer="adam", lr=1e-3))
    assert pop.fast  # every residual spec has its fast path
    if not fast:
        pop.path, pop.fast = None, False
    with torch.no_grad():
        out = pop.forward(x, train=False)
        for i, m in enumerate(members):
            assert torch.allclose(out[i], m.eval()(x), atol=1e-5)
    stats, steps = pop.train_epoch([Batch(x, torch.randint(0, 10, (8,)))])
    assert steps == 1
    assert all(math.isfinite(v) for v in stats.train_loss())
    for name, buffer in pop.buffers.items():
        if name.endswith("running_mean"):
            assert not torch.equal(buffer[0], buffer[1])  # each model's statistics from its own activations


def test_a_transformer_learns_associative_recall() -> None:
    torch.manual_seed(0)
    train = data.load("recall", split="train", n_samples=512, pairs=2, keys=4, values=4)
    spec = "transformer:32x2;heads=2;task=lm"
    members = [build(spec, input_shape=train.input_shape, num_classes=train.num_classes) for _ in range(2)]
    for seed, m in enumerate(members):
        initlab.initialize(m, "glorot_uniform", seed=seed)
    pop = Population(members, TrainSettings(optimizer="adam", lr=3e-3))
    before, _ = pop.evaluate(train.x, train.y)
    for _ in range(8):
        order = torch.randperm(len(train))
        pop.train_epoch([Batch(train.x[order[i : i + 64]], train.y[order[i : i + 64]]) for i in range(0, 512, 64)])
    after, acc = pop.evaluate(train.x, train.y)
    assert all(a < 0.5 * b for a, b in zip(after, before, strict=True)), (before, after)
    assert min(acc) > 0.6  # chance is 1/4: one of the four values


# ---------------------------------------------------------------------------------------------- studies end to end
@pytest.mark.parametrize(
    ("dataset", "options", "model"),
    [
        ("modadd", {"p": 11}, "transformer:16x1;heads=2"),
        ("digits", {}, "resmlp:16x2;norm=layer"),
        ("digits", {}, "resnet:4,8;blocks=1"),
    ],
)
def test_a_study_runs_end_to_end(tmp_path: Path, dataset: str, options: dict, model: str) -> None:
    study = Study(
        arms=(Arm("he_normal", "he_normal"), Arm("lsuv", "lsuv")),
        dataset=dataset,
        dataset_options=options,
        model=model,
        seeds=(0,),
        train=TrainSettings(optimizer="adam", lr=3e-3, epochs=1, batch_size=64),
    )
    with Store.in_dir(run_study(study, tmp_path / "s", workers=1), readonly=True) as store:
        epochs = list(store.epochs())
    assert {e.run_id for e in epochs} == {"he_normal/s0", "lsuv/s0"}
    assert all(math.isfinite(e.train_loss) for e in epochs)
