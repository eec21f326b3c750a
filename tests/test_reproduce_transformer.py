"""The transformer reproduction (``deepnet2022``, Wang et al. 2022) and the DeepNorm placement it needs
(``transformer:...;ln=deepnorm``): the quick form's claims hold, and DeepNorm computes ``LN(α·x + f(x))``."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import initlab
from initlab import models
from initlab.nets import StructureError
from initlab.reproduce import deepnet2022, reproduce


def test_deepnet2022_quick_claims_hold(tmp_path: Path) -> None:
    result = reproduce("deepnet2022", tmp_path, quick=True)
    assert result.passed, [c for c in result.claims if not c.passed]
    assert result.details["depth"] == deepnet2022.QUICK_DEPTH
    loss = result.details["final_train_loss"]
    # The claims separate the two: Post-LN at a uniform guess, DeepNorm far below it.
    assert loss["post-ln"] > loss["deepnorm"] + 0.5
    assert result.details["alpha"] == pytest.approx((2 * result.details["depth"]) ** 0.25)
    assert (tmp_path / "study" / "deepnorm" / "study.sqlite").exists()
    assert (tmp_path / "deepnet2022.png").stat().st_size > 10_000
    assert "PASS" in (tmp_path / "summary.md").read_text()


def test_deepnorm_block_up_weights_the_residual() -> None:
    spec = models.parse("transformer:16x8;heads=2;ln=deepnorm;task=lm")
    assert spec.ln == "deepnorm"
    assert str(spec) == "transformer:16x8;heads=2;ln=deepnorm;task=lm"
    model = models.build(spec, input_shape=(6,), num_classes=10)
    block = model.blocks[0]
    assert block.alpha == pytest.approx(16**0.25)  # (2N)^(1/4), N = 8 blocks
    x = torch.randn(3, 6, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        h = block.ln1(block.alpha * x + block.attn(x))
        expected = block.ln2(block.alpha * h + block.mlp(h))
        torch.testing.assert_close(block(x), expected)
        # ... which is not the Post-LN block's output: α changes the computation.
        post = block.ln1(x + block.attn(x))
        assert not torch.allclose(block(x), block.ln2(post + block.mlp(post)))


def test_deepnet_scheme_records_whether_alpha_is_applied() -> None:
    report = initlab.initialize(models.build("transformer:16x8;heads=2;ln=deepnorm", input_shape=(6,), num_classes=10),
                                "deepnet", seed=0)  # fmt: skip
    assert report.extra["alpha_applied"] is True
    assert report.extra["alpha"] == pytest.approx(16**0.25)
    assert report.extra["beta"] == pytest.approx(64**-0.25)
    post = initlab.initialize(models.build("transformer:16x8;heads=2;ln=post", input_shape=(6,), num_classes=10),
                              "deepnet", seed=0)  # fmt: skip
    assert post.extra["alpha_applied"] is False
    with pytest.raises(StructureError, match="ln=deepnorm"):
        initlab.initialize(models.build("transformer:16x8;heads=2;ln=pre", input_shape=(6,), num_classes=10), "deepnet")


def test_deepnorm_option_errors_name_the_choices() -> None:
    with pytest.raises(ValueError, match="pre\\|post\\|none\\|deepnorm"):
        models.parse("transformer:16x2;ln=deepnrom")
    with pytest.raises(ValueError, match="deepnorm blocks only"):
        initlab.nets.TransformerBlock(16, 2, ffn=4, act="gelu", ln="post", dropout=0.0, causal=False, bias=True,
                                      alpha=2.0)  # fmt: skip
    assert math.isclose(models.build("transformer:16x2;ln=post", input_shape=(4,), num_classes=5).blocks[0].alpha, 1.0)
