"""ResNet-18/50 trunks with named taps, and narrow CPU-scale variants.

:class:`ResNetTrunk` keeps torchvision's attribute names (``conv1``, ``bn1``, ``relu``,
``maxpool``, ``layer1`` ... ``layer4``) so ImageNet weights load unchanged and forward hooks
such as ``model.layer3[5].bn3`` work as in the papers' code. It has no ``fc``: ``forward``
returns the globally average-pooled ``layer4`` vector and :meth:`ResNetTrunk.forward_taps`
returns the intermediate maps by name, stopping at the deepest one asked for::

    trunk = create_model("resnet18_narrow")
    taps = trunk.forward_taps(x, taps=("layer3",))   # {"layer3": [B, 128, H/16, W/16]}

``pretrained=True`` loads torchvision's ``IMAGENET1K_V1`` weights: first from the library's
weight cache ``sbirlib.utils.cache_dir("weights")``, then from torch.hub's cache, else by
downloading. If none works it raises :class:`PretrainedWeightsError` naming the file and where
to put it -- it never silently falls back to random weights. Narrow variants have no
ImageNet weights and refuse ``pretrained=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from sbirlib.models.registry import register_model

__all__ = [
    "ResNetTrunk",
    "PretrainedWeightsError",
    "resnet18",
    "resnet50",
    "resnet18_narrow",
    "resnet50_narrow",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "TAPS",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TAPS = ("stem", "layer1", "layer2", "layer3", "layer4")

_WEIGHTS = {  # torchvision IMAGENET1K_V1 files
    18: "https://download.pytorch.org/models/resnet18-f37072fd.pth",
    50: "https://download.pytorch.org/models/resnet50-0676ba61.pth",
}


class PretrainedWeightsError(RuntimeError):
    """ImageNet weights were requested but could not be obtained."""


class ResNetTrunk(nn.Module):
    """A ResNet without its classifier, exposing ``layer1``-``layer4`` outputs by name.

    Args:
        depth: 18 (BasicBlock, 2-2-2-2) or 50 (Bottleneck, 3-4-6-3).
        width: channels of ``layer1``'s blocks (64 = torchvision; 32 or 16 for CPU variants).
        in_chans: input channels (3; grey sketches are replicated to 3 by the data transform).
        pretrained: load torchvision's ImageNet weights (only for ``width=64`` and ``in_chans=3``).
    """

    def __init__(self, depth: int = 18, width: int = 64, in_chans: int = 3, pretrained: bool = False) -> None:
        super().__init__()
        if depth == 18:
            block, blocks = BasicBlock, (2, 2, 2, 2)
        elif depth == 50:
            block, blocks = Bottleneck, (3, 4, 6, 3)
        else:
            raise ValueError(f"depth must be 18 or 50, got {depth}")
        self.depth, self.width, self.in_chans = depth, width, in_chans
        self.inplanes = width
        self.conv1 = nn.Conv2d(in_chans, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, blocks[0], 1)
        self.layer2 = self._make_layer(block, width * 2, blocks[1], 2)
        self.layer3 = self._make_layer(block, width * 4, blocks[2], 2)
        self.layer4 = self._make_layer(block, width * 8, blocks[3], 2)
        self.channels = {
            "stem": width,
            **{f"layer{i + 1}": width * 2**i * block.expansion for i in range(4)},
        }
        self.num_features = self.channels["layer4"]
        self._init_weights()
        self.default_cfg: dict[str, Any] = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD}
        if pretrained:
            self.load_imagenet()

    def _make_layer(self, block: type[nn.Module], planes: int, n: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, n)]
        return nn.Sequential(*layers)

    def _init_weights(self) -> None:
        # the same scheme as torchvision's ResNet
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # -- weights -------------------------------------------------------------------
    def load_imagenet(self) -> ResNetTrunk:
        """Load torchvision's ImageNet weights (IMAGENET1K_V1); raise a clear error if impossible."""
        if self.width != 64 or self.in_chans != 3:
            raise PretrainedWeightsError(
                f"no ImageNet weights exist for a ResNet-{self.depth} of width {self.width} with "
                f"{self.in_chans} input channels; only the full-width 3-channel trunks "
                "(resnet18, resnet50) have them. Use pretrained=False."
            )
        state = _load_torchvision_state(self.depth)
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
        missing, unexpected = self.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise PretrainedWeightsError(
                f"ImageNet weights do not match ResNetTrunk({self.depth}): missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}"
            )
        return self

    # -- forward -------------------------------------------------------------------
    def forward_taps(self, x: torch.Tensor, taps: Sequence[str] = ("layer2", "layer3", "layer4")) -> dict[str, torch.Tensor]:
        """Feature maps named in ``taps`` (subset of ``stem, layer1..layer4``).

        Computation stops after the deepest requested tap, so ``taps=("layer3",)`` never runs
        ``layer4``.
        """
        unknown = [t for t in taps if t not in TAPS]
        if unknown:
            raise KeyError(f"unknown taps {unknown}; available: {', '.join(TAPS)}")
        last = max(TAPS.index(t) for t in taps)
        out: dict[str, torch.Tensor] = {}
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        if "stem" in taps:
            out["stem"] = x
        for i in range(1, last + 1):
            x = getattr(self, f"layer{i}")(x)
            if f"layer{i}" in taps:
                out[f"layer{i}"] = x
        return out

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The ``layer4`` map ``[B, num_features, H/32, W/32]``."""
        return self.forward_taps(x, ("layer4",))["layer4"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled ``layer4`` features ``[B, num_features]``."""
        return self.forward_features(x).mean(dim=(2, 3))

    def extra_repr(self) -> str:
        return f"depth={self.depth}, width={self.width}, in_chans={self.in_chans}, num_features={self.num_features}"


def _load_torchvision_state(depth: int) -> dict[str, torch.Tensor]:
    from sbirlib.utils import cache_dir

    url = _WEIGHTS[depth]
    filename = url.rsplit("/", 1)[-1]
    candidates = [cache_dir("weights") / filename, Path(torch.hub.get_dir()) / "checkpoints" / filename]
    for path in candidates:
        if path.is_file():
            try:
                return torch.load(path, map_location="cpu", weights_only=True)
            except Exception as err:  # a truncated download
                raise PretrainedWeightsError(
                    f"cannot read ImageNet weights {path}: {err}. Delete the file and retry."
                ) from err
    try:
        return torch.hub.load_state_dict_from_url(
            url, model_dir=str(cache_dir("weights")), map_location="cpu", progress=False,
            check_hash=True, weights_only=True,
        )
    except Exception as err:
        raise PretrainedWeightsError(
            f"pretrained=True: could not obtain the ImageNet ResNet-{depth} weights "
            f"(torchvision IMAGENET1K_V1, {filename}): {type(err).__name__}: {err}. "
            f"Download {url} on a machine with network access and put it at "
            f"{candidates[0]} (the library's weight cache, $SBIR_CACHE/weights), "
            "or pass pretrained=False to train from random initialisation on purpose."
        ) from err


def _build(depth: int, width: int, pretrained: bool, name: str, **kwargs: Any) -> ResNetTrunk:
    if pretrained and width != 64:
        raise PretrainedWeightsError(
            f"{name} is a narrow CPU variant; no ImageNet weights exist for it. "
            f"Use pretrained=False, or the full-width resnet{depth}."
        )
    return ResNetTrunk(depth=depth, width=width, pretrained=pretrained, **kwargs)


@register_model
def resnet18(pretrained: bool = False, **kwargs: Any) -> ResNetTrunk:
    """ResNet-18 trunk (512-d pooled features); ``pretrained`` loads torchvision ImageNet weights."""
    return _build(18, 64, pretrained, "resnet18", **kwargs)


@register_model
def resnet50(pretrained: bool = False, **kwargs: Any) -> ResNetTrunk:
    """ResNet-50 trunk (2048-d pooled features); ``pretrained`` loads torchvision ImageNet weights."""
    return _build(50, 64, pretrained, "resnet50", **kwargs)


@register_model
def resnet18_narrow(pretrained: bool = False, width: int = 32, **kwargs: Any) -> ResNetTrunk:
    """CPU-scale ResNet-18 of half width (``layer4`` = 256 channels); random init only."""
    return _build(18, width, pretrained, "resnet18_narrow", **kwargs)


@register_model
def resnet50_narrow(pretrained: bool = False, width: int = 16, **kwargs: Any) -> ResNetTrunk:
    """CPU-scale ResNet-50 of quarter width (``layer4`` = 512 channels); random init only."""
    return _build(50, width, pretrained, "resnet50_narrow", **kwargs)
