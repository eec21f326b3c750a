"""Residual structure detected from the traced computation (initlab.nets.detect): it agrees with what initlab's own
networks declare, finds the blocks of models built elsewhere (Hugging Face ResNet and GPT-2 from configs, offline;
torchvision and timm where they import), and finds nothing where there is no residual addition."""

from __future__ import annotations

from collections import OrderedDict
from types import ModuleType
from typing import Any

import pytest
import torch
from torch import nn

from initlab import nets
from initlab.models import build


def _summary(s: nets.Structure) -> dict[str, Any]:
    """Everything a structure says except how it was found."""
    record = s.to_dict()
    del record["source"]
    return record


@pytest.fixture(scope="module")
def transformers() -> ModuleType:
    return pytest.importorskip("transformers")


# ------------------------------------------------------------------------------------------------ initlab's own specs
@pytest.mark.parametrize(
    ("spec", "input_shape", "example"),
    [
        ("resmlp:32x3", (1, 8, 8), torch.randn(2, 1, 8, 8)),
        ("resmlp:32x2;norm=batch", (1, 8, 8), torch.randn(2, 1, 8, 8)),
        ("resnet:8,16;blocks=1", (1, 8, 8), torch.randn(2, 1, 8, 8)),
        ("resnet:4,8;blocks=2;norm=none", (1, 8, 8), torch.randn(2, 1, 8, 8)),
        ("transformer:32x2;heads=2;ln=pre", (7,), torch.randint(0, 10, (2, 7))),
        ("transformer:32x2;heads=2;ln=post", (7,), torch.randint(0, 10, (2, 7))),
        ("transformer:32x1;heads=2;task=lm", (7,), torch.randint(0, 10, (2, 7))),
        ("transformer:32x1;heads=2;patch=4", (1, 8, 8), torch.randn(2, 1, 8, 8)),
    ],
)
def test_detection_agrees_with_the_declared_structure(
    spec: str, input_shape: tuple[int, ...], example: torch.Tensor
) -> None:
    model = build(spec, input_shape=input_shape, num_classes=10)
    declared = nets.structure(model)
    detected = nets.detect(model, example)
    assert (declared.source, detected.source) == ("declared", "detected")
    # Same blocks, and per branch the same module, last layer, norm after it, gate and projection shortcut; the same
    # embeddings, norms and head.
    assert _summary(detected) == _summary(declared)
    assert detected.output_projections == declared.output_projections
    assert len(detected.blocks) > 0


def test_detection_leaves_the_model_as_it_was() -> None:
    model = build("resnet:4,8;blocks=1", input_shape=(1, 8, 8), num_classes=10).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    nets.detect(model, torch.randn(4, 1, 8, 8))
    assert model.training
    assert all(m.training for m in model.modules())
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # batch-norm running statistics included


class _Gated(nn.Module):
    """``x + g · f(x)``: ReZero's scalar α (Bachlechner et al. 2020) or a per-channel layer scale (Touvron et al.
    2021, CaiT)."""

    def __init__(self, width: int, *, per_channel: bool) -> None:
        super().__init__()
        self.branch = nn.Sequential(
            OrderedDict(fc1=nn.Linear(width, width), act=nn.ReLU(), fc2=nn.Linear(width, width))
        )
        self.alpha = nn.Parameter(torch.full((width,) if per_channel else (), 0.1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.alpha * self.branch(x)

    def residual_branches(self) -> tuple[nets.BranchDecl, ...]:
        return (nets.BranchDecl(branch="branch", last="branch.fc2", gate="alpha"),)


@pytest.mark.parametrize("per_channel", [False, True])
def test_gates_are_detected(per_channel: bool) -> None:
    model = nn.Sequential(_Gated(4, per_channel=per_channel), _Gated(4, per_channel=per_channel))
    detected = nets.detect(model, torch.randn(3, 4))
    assert [b.gate for b in detected.branches] == ["0.alpha", "1.alpha"]
    assert _summary(detected) == _summary(nets.structure(model))


# ------------------------------------------------------------------------------------------ Hugging Face ResNet
@pytest.mark.parametrize(("layer_type", "convs"), [("basic", 2), ("bottleneck", 3)])
def test_hf_resnet_blocks_last_convs_norms_and_projections(
    transformers: ModuleType, layer_type: str, convs: int
) -> None:
    config = transformers.ResNetConfig(
        num_channels=3, embedding_size=8, hidden_sizes=[8, 16], depths=[2, 1], layer_type=layer_type, num_labels=10
    )
    torch.manual_seed(0)
    model = transformers.ResNetForImageClassification(config)
    s = nets.structure(model, example=torch.randn(2, 3, 32, 32))
    assert s.source == "detected"
    layers = [f"resnet.encoder.stages.{i}.layers.{j}" for i, depth in enumerate(config.depths) for j in range(depth)]
    assert [b.name for b in s.blocks] == layers  # one residual addition per layer, in forward order
    for layer, block in zip(layers, s.blocks, strict=True):
        (branch,) = block.branches
        assert block.type == type(model.get_submodule(layer)).__name__
        assert branch.name == f"{layer}.layer"
        assert branch.last == f"{layer}.layer.{convs - 1}.convolution"
        assert isinstance(model.get_submodule(branch.last), nn.Conv2d)
        assert branch.last_norm == f"{layer}.layer.{convs - 1}.normalization"  # zero-init-last-BN's target
        assert isinstance(model.get_submodule(branch.last_norm), nn.BatchNorm2d)
        projects = not isinstance(model.get_submodule(f"{layer}.shortcut"), nn.Identity)
        assert branch.shortcut == (f"{layer}.shortcut" if projects else None)
    # Where the width and the stride change (entering stage 2), and only there, the shortcut is a projection.
    assert [b.shortcut is not None for b in s.branches] == [False, False, True]
    assert s.embeddings == ("resnet.embedder.embedder.convolution",)
    assert s.head == "classifier.1"
    assert s.norms == tuple(n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d))


# ------------------------------------------------------------------------------------------ Hugging Face GPT-2
def _gpt2(transformers: ModuleType, cls: str = "GPT2LMHeadModel") -> nn.Module:
    config = transformers.GPT2Config(
        n_layer=2, n_embd=32, n_head=2, vocab_size=50, n_positions=16, bos_token_id=0, eos_token_id=0
    )
    torch.manual_seed(0)
    return getattr(transformers, cls)(config)


def test_hf_gpt2_residual_projections_embeddings_and_head(transformers: ModuleType) -> None:
    model = _gpt2(transformers)
    ids = torch.randint(0, 50, (2, 8))
    s = nets.detect(model, {"input_ids": ids})
    # 2·n_layer residual additions: no false positive from wte(ids) + wpe(positions), the attention mask or the
    # x + 0.044715·x³ inside GELU.
    assert [b.name for b in s.blocks] == ["transformer.h.0", "transformer.h.1"]
    assert {b.type for b in s.blocks} == {"GPT2Block"}
    assert s.output_projections == tuple(
        f"transformer.h.{i}.{part}.c_proj" for i in range(2) for part in ("attn", "mlp")
    )
    assert [b.name for b in s.branches] == [f"transformer.h.{i}.{part}" for i in range(2) for part in ("attn", "mlp")]
    assert all(b.last_norm is None and b.gate is None and b.shortcut is None for b in s.branches)
    assert s.embeddings == ("transformer.wte", "transformer.wpe")
    assert s.head == "lm_head"  # its weight is wte's (tied): attributed to the layer that uses it
    assert s.norms == (*(f"transformer.h.{i}.ln_{k}" for i in range(2) for k in (1, 2)), "transformer.ln_f")
    # a positional example works too, and the model is left as it was (traced in eval mode, put back in train mode)
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert _summary(nets.detect(model, ids)) == _summary(s)
    assert all(m.training for m in model.modules())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_a_backbone_without_head_has_no_head(transformers: ModuleType) -> None:
    s = nets.structure(_gpt2(transformers, "GPT2Model"), example=torch.randint(0, 50, (1, 8)))
    assert s.output_projections == ("h.0.attn.c_proj", "h.0.mlp.c_proj", "h.1.attn.c_proj", "h.1.mlp.c_proj")
    assert s.embeddings == ("wte", "wpe")
    assert s.head is None  # the last weight layer before the output is a residual branch's


def test_hf_vit_bert_and_llama(transformers: ModuleType) -> None:
    """Three more layouts: ViT adds a position-embedding parameter and concatenates a class token; BERT is post-LN
    and adds inside a submodule of the layer (BertSelfOutput); Llama's RMSNorm is a module of its own."""
    torch.manual_seed(0)
    small = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
    vit = transformers.ViTForImageClassification(
        transformers.ViTConfig(**small, image_size=16, patch_size=4, num_labels=3)
    )
    s = nets.detect(vit, torch.randn(2, 3, 16, 16))
    assert [b.name for b in s.blocks] == ["vit.layers.0", "vit.layers.1"]
    assert s.embeddings == ("vit.embeddings.patch_embeddings.projection", "vit.embeddings")
    assert s.head == "classifier"

    bert = transformers.BertForSequenceClassification(
        transformers.BertConfig(**small, vocab_size=50, max_position_embeddings=16)
    )
    ids = torch.randint(0, 50, (2, 8))
    s = nets.detect(bert, {"input_ids": ids, "attention_mask": torch.ones_like(ids)})
    layers = ["bert.encoder.layer.0", "bert.encoder.layer.1"]
    assert [(b.name, b.type) for b in s.blocks] == [(layer, "BertLayer") for layer in layers]
    assert s.output_projections == tuple(f"{x}.{p}.dense" for x in layers for p in ("attention.output", "output"))
    assert s.embeddings == tuple(f"bert.embeddings.{e}_embeddings" for e in ("word", "token_type", "position"))
    assert s.head == "classifier"

    llama = transformers.LlamaForCausalLM(
        transformers.LlamaConfig(**small, vocab_size=50, num_key_value_heads=2, max_position_embeddings=16)
    )
    s = nets.detect(llama, {"input_ids": ids, "use_cache": False})
    layers = ["model.layers.0", "model.layers.1"]
    assert s.output_projections == tuple(f"{x}.{p}" for x in layers for p in ("self_attn.o_proj", "mlp.down_proj"))
    rms = (*(f"{x}.{n}" for x in layers for n in ("input_layernorm", "post_attention_layernorm")), "model.norm")
    assert s.norms == rms  # found by what they compute (rsqrt of the mean square), not by type
    assert (s.embeddings, s.head) == (("model.embed_tokens",), "lm_head")


def test_torch_transformer_encoder_layers() -> None:
    layer = nn.TransformerEncoderLayer(16, 2, 32, batch_first=True, norm_first=True)
    model = nn.Sequential(
        nn.Linear(4, 16), nn.TransformerEncoder(layer, 2, enable_nested_tensor=False), nn.Linear(16, 3)
    )
    s = nets.detect(model, torch.randn(2, 5, 4))
    assert s.output_projections == tuple(
        f"1.layers.{i}.{p}" for i in range(2) for p in ("self_attn.out_proj", "linear2")
    )
    assert (s.embeddings, s.head) == (("0",), "2")


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc(torch.relu(x))


class _Nested(nn.Module):
    """A residual around two residual blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Sequential(_Residual(), _Residual())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.inner(x)


def test_a_residual_around_residual_blocks_is_a_block_of_its_own() -> None:
    s = nets.detect(nn.Sequential(nn.Linear(3, 4), _Nested(), nn.Linear(4, 2)), torch.randn(2, 3))
    assert [(b.name, [br.name for br in b.branches]) for b in s.blocks] == [
        ("1.inner.0", ["1.inner.0.fc"]),
        ("1.inner.1", ["1.inner.1.fc"]),
        ("1", ["1.inner"]),
    ]
    assert s.output_projections == ("1.inner.0.fc", "1.inner.1.fc", "1.inner.1.fc")
    assert (s.embeddings, s.head) == (("0",), "2")


# ------------------------------------------------------------------------------------------ no residual structure
class _TwoPaths(nn.Module):
    """Additions that are not residual: two inputs with no common ancestor, and two paths of one layer each."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c, self.d = (nn.Linear(4, 4) for _ in range(4))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.a(x) + self.b(y)
        return self.c(h) + self.d(h)


@pytest.mark.parametrize(
    ("model", "example", "head"),
    [
        (nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), torch.randn(2, 4), "2"),
        (_TwoPaths(), (torch.randn(2, 4), torch.randn(2, 4)), None),
    ],
)
def test_no_residual_addition_no_blocks(model: nn.Module, example: Any, head: str | None) -> None:
    s = nets.structure(model, example=example)
    assert s.source == "detected"
    assert s.blocks == ()
    assert s.embeddings == ()  # no residual stream to write into
    assert s.head == head


# ------------------------------------------------------------------------------------------ errors
class _DataDependent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc(x) if x.sum() > 0 else x  # control flow on a value: torch.export cannot trace it


def test_an_untraceable_model_says_why_and_what_to_do() -> None:
    with pytest.raises(
        nets.StructureError,
        match=r"_DataDependent does not declare its residual structure, and tracing it to detect the structure failed "
        r"\(GuardOnDataDependentSymNode: .*residual_branches\(\) method.*docs/residual.md",
    ):
        nets.detect(_DataDependent(), torch.ones(2, 4))


def test_detection_needs_an_example_input() -> None:
    mlp = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(nets.StructureError, match=r"Sequential does not declare .*pass an example input: structure"):
        nets.structure(mlp)
    with pytest.raises(TypeError, match=r"data must be a tensor, a tuple or list"):
        nets.detect(mlp, "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"model must be a torch.nn.Module, got str"):
        nets.detect("resnet", torch.ones(1))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ torchvision and timm
def _third_party_resnet18(kind: str) -> nn.Module:
    if kind == "torchvision":
        torchvision = pytest.importorskip("torchvision", exc_type=ImportError)
        return torchvision.models.resnet18(weights=None, num_classes=10)
    timm = pytest.importorskip("timm", exc_type=ImportError)
    return timm.create_model("resnet18", pretrained=False, num_classes=10)


@pytest.mark.parametrize("kind", ["torchvision", "timm"])
def test_third_party_resnet18(kind: str) -> None:
    model = _third_party_resnet18(kind)
    s = nets.detect(model, torch.randn(1, 3, 32, 32))
    blocks = [f"layer{i}.{j}" for i in range(1, 5) for j in range(2)]
    assert [b.name for b in s.blocks] == blocks
    assert [b.last for b in s.branches] == [f"{b}.conv2" for b in blocks]
    assert [b.last_norm for b in s.branches] == [f"{b}.bn2" for b in blocks]
    assert [b.shortcut for b in s.branches] == [
        f"{b}.downsample" if b in {"layer2.0", "layer3.0", "layer4.0"} else None for b in blocks
    ]
    assert s.embeddings == ("conv1",)
    assert s.head == "fc"
