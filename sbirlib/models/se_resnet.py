"""SE-ResNe(X)t backbones whose channel-attention modules can see a domain bit.

Two trunks share one implementation (:class:`SEResNet`):

* :func:`se_resnext101_32x4d` -- SE-ResNeXt-101 (32x4d) in the layout of Cadene's
  ``pretrainedmodels`` / timm's ``legacy_seresnext101_32x4d`` (module names ``layer0.conv1``,
  ``layerX.Y.se_module.fc1`` ...), so ImageNet weights load by name and shape;
* :func:`se_resnet18_narrow` -- a CPU-scale ResNet-18 (BasicBlocks) with an SE module after
  the second BatchNorm of every block, optionally narrower than 64/128/256/512.

Every attention module is called as ``module(x, domain)`` where ``domain`` is a float tensor
of shape ``[B]`` (0 = sketch, 1 = photo) or ``None``. The plain :class:`SEModule` ignores it;
the domain-aware module of DASE (:mod:`sbirlib.models.dase`) concatenates it before the
excitation. Which module sits in which stage is chosen by an ``attention`` factory
``(channels, stage) -> nn.Module`` with ``stage`` in 1..4.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
import torch.nn as nn

from sbirlib.models.registry import register_model

__all__ = [
    "SEModule",
    "NoAttention",
    "SEResNeXtBottleneck",
    "SEBasicBlock",
    "SEResNet",
    "se_resnext101_32x4d",
    "se_resnet18_narrow",
    "timm_imagenet_state_dict",
    "load_matching_weights",
    "TIMM_WEIGHTS",
]

#: timm weights used for the full-size trunk (sbirlib's decision: timm's ``legacy_`` ImageNet
#: weights, which we take to be a port of the Cadene weights the official code loads -- not verified)
TIMM_WEIGHTS = "legacy_seresnext101_32x4d.in1k"

AttentionFactory = Callable[[int, int], nn.Module]


class SEModule(nn.Module):
    """Standard squeeze-and-excitation (Hu et al.): GAP, 1x1 conv, ReLU, 1x1 conv, sigmoid.

    ``forward(x, domain=None)`` accepts and ignores a domain vector so that it can stand
    wherever a domain-aware module can.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.channels, self.reduction = channels, reduction
        self.fc1 = nn.Conv2d(channels, channels // reduction, kernel_size=1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, kernel_size=1)

    def forward(self, x: torch.Tensor, domain: torch.Tensor | None = None) -> torch.Tensor:
        z = x.mean((2, 3), keepdim=True)
        g = torch.sigmoid(self.fc2(torch.relu(self.fc1(z))))
        return x * g

    def extra_repr(self) -> str:
        return f"channels={self.channels}, reduction={self.reduction}, squeeze=relu"


class NoAttention(nn.Module):
    """Identity with the attention-module signature (the "no SE" ablation)."""

    def forward(self, x: torch.Tensor, domain: torch.Tensor | None = None) -> torch.Tensor:
        return x


def plain_se(reduction: int = 16) -> AttentionFactory:
    """Factory giving a standard :class:`SEModule` in every stage."""
    return lambda channels, stage: SEModule(channels, reduction)


def no_attention() -> AttentionFactory:
    """Factory giving no channel attention at all."""
    return lambda channels, stage: NoAttention()


class SEResNeXtBottleneck(nn.Module):
    """ResNeXt bottleneck with channel attention before the residual addition (Cadene layout).

    1x1 conv -> BN -> ReLU -> 3x3 grouped conv (stride) -> BN -> ReLU -> 1x1 conv -> BN ->
    attention -> + shortcut -> ReLU.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int, attention: nn.Module,
                 downsample: nn.Module | None = None, groups: int = 32,
                 base_width: int = 4) -> None:
        super().__init__()
        width = math.floor(planes * base_width / 64) * groups
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=groups,
                               bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.se_module = attention
        self.downsample = downsample

    def forward(self, x: torch.Tensor, domain: torch.Tensor | None = None) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.se_module(self.bn3(self.conv3(out)), domain)
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class SEBasicBlock(nn.Module):
    """ResNet basic block with channel attention after the second BN (before the addition)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int, attention: nn.Module,
                 downsample: nn.Module | None = None, groups: int = 1,
                 base_width: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.se_module = attention
        self.downsample = downsample

    def forward(self, x: torch.Tensor, domain: torch.Tensor | None = None) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.se_module(self.bn2(self.conv2(out)), domain)
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(out + shortcut)


class SEResNet(nn.Module):
    """A four-stage SE-ResNe(X)t trunk that threads a domain vector through every block.

    Args:
        block: :class:`SEResNeXtBottleneck` or :class:`SEBasicBlock`.
        layers: blocks per stage, e.g. ``(3, 4, 23, 3)``.
        widths: ``planes`` per stage (output channels are ``planes * block.expansion``).
        attention: factory ``(channels, stage) -> module``; default plain SE (r = 16).
        groups, base_width: ResNeXt cardinality and width per group.
        stem_width: output channels of the 7x7/2 stem.

    ``forward(x, domain)`` returns the stage-4 feature map; ``out_channels`` is its depth.
    Module names follow Cadene/timm (``layer0.conv1``, ``layer1.0.se_module.fc1`` ...).
    """

    def __init__(self, block: type[nn.Module], layers: Sequence[int],
                 widths: Sequence[int] = (64, 128, 256, 512),
                 attention: AttentionFactory | None = None, groups: int = 1,
                 base_width: int = 64, stem_width: int = 64) -> None:
        super().__init__()
        attention = attention or plain_se()
        self.layer0 = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, stem_width, 7, stride=2, padding=3, bias=False)),
            ("bn1", nn.BatchNorm2d(stem_width)),
            ("relu1", nn.ReLU(inplace=True)),
        ]))
        # ceil_mode as in the Caffe-ported weights (64x112x112 -> 64x56x56)
        self.pool0 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        inplanes = stem_width
        for stage, (planes, n) in enumerate(zip(widths, layers), start=1):
            stride = 1 if stage == 1 else 2
            blocks = []
            for i in range(n):
                out = planes * block.expansion
                down = None
                if i == 0 and (stride != 1 or inplanes != out):
                    down = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride=stride, bias=False),
                                         nn.BatchNorm2d(out))
                blocks.append(block(inplanes, planes, stride if i == 0 else 1,
                                    attention(out, stage), down, groups=groups,
                                    base_width=base_width))
                inplanes = out
            self.add_module(f"layer{stage}", nn.ModuleList(blocks))
        self.out_channels = inplanes
        self._init_weights()

    def _init_weights(self) -> None:
        # Kaiming for the trunk; attention convs keep PyTorch's default (as the official
        # loader leaves the DASE fc2 layers)
        for name, m in self.named_modules():
            if isinstance(m, nn.Conv2d) and ".se_module" not in f".{name}":
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def stages(self) -> list[nn.ModuleList]:
        """The four stages ``[layer1, layer2, layer3, layer4]``."""
        return [self.layer1, self.layer2, self.layer3, self.layer4]

    def forward(self, x: torch.Tensor, domain: torch.Tensor | int | None = None) -> torch.Tensor:
        domain = _domain_vector(domain, x)
        x = self.pool0(self.layer0(x))
        for stage in self.stages:
            for blk in stage:
                x = blk(x, domain)
        return x


def _domain_vector(domain: torch.Tensor | int | float | None,
                   x: torch.Tensor) -> torch.Tensor | None:
    """``None`` stays ``None``; an int or a ``[B]`` tensor becomes a float ``[B]`` tensor."""
    if domain is None:
        return None
    if not torch.is_tensor(domain):
        return torch.full((x.shape[0],), float(domain), device=x.device, dtype=x.dtype)
    domain = domain.to(device=x.device, dtype=x.dtype).reshape(-1)
    if domain.numel() == 1 and x.shape[0] != 1:
        domain = domain.expand(x.shape[0])
    if domain.shape[0] != x.shape[0]:
        raise ValueError(f"domain has {domain.shape[0]} entries for a batch of {x.shape[0]}")
    return domain


def timm_imagenet_state_dict(name: str = TIMM_WEIGHTS) -> dict[str, torch.Tensor]:
    """ImageNet weights of timm model ``name`` (downloaded or from the Hugging Face cache).

    Raises ``RuntimeError`` naming the model and the fixes when timm cannot get them (no
    network and no cache); never falls back to random weights.
    """
    try:
        import timm

        model = timm.create_model(name, pretrained=True)
    except Exception as err:  # timm raises various network/hub errors
        raise RuntimeError(
            f"could not load the ImageNet weights {name!r} through timm ({type(err).__name__}: "
            f"{err}). Connect to the network once (timm caches them under $HF_HOME), or copy "
            "the Hugging Face cache from a machine that has them, or build the model with "
            "pretrained=False to train from random initialisation on purpose."
        ) from err
    return model.state_dict()


def load_matching_weights(model: nn.Module, state_dict: dict[str, torch.Tensor],
                          prefix: str = "") -> dict[str, list[str]]:
    """Copy every tensor whose name (after ``prefix``) and shape match; skip the rest.

    This is the official DASE loader's rule. Returns ``{"loaded", "shape_mismatch",
    "missing"}`` name lists so the caller can report exactly what stayed random.
    """
    own = model.state_dict()
    report: dict[str, list[str]] = {"loaded": [], "shape_mismatch": [], "missing": []}
    new = {}
    for name, tensor in own.items():
        src = state_dict.get(prefix + name)
        if src is None:
            report["missing"].append(name)
        elif src.shape != tensor.shape:
            report["shape_mismatch"].append(name)
        else:
            new[name] = src
            report["loaded"].append(name)
    model.load_state_dict(new, strict=False)
    return report


@register_model
def se_resnext101_32x4d(pretrained: bool = False, attention: AttentionFactory | None = None,
                        **kwargs) -> SEResNet:
    """SE-ResNeXt-101 (32x4d) trunk, 2048x7x7 at 224 px; ImageNet weights through timm.

    With ``pretrained=True`` the weights ``legacy_seresnext101_32x4d.in1k`` are copied by name
    and shape (:func:`load_matching_weights`); tensors whose shape differs (the domain-aware
    fc2) keep their initialisation. The load report is kept in ``model.pretrained_report``.
    """
    model = SEResNet(SEResNeXtBottleneck, (3, 4, 23, 3), (64, 128, 256, 512), attention,
                     groups=32, base_width=4, **kwargs)
    model.pretrained_report = None
    if pretrained:
        model.pretrained_report = load_matching_weights(model, timm_imagenet_state_dict())
        model.pretrained_report["weights"] = [TIMM_WEIGHTS]
    return model


@register_model
def se_resnet18_narrow(pretrained: bool = False, width: int = 64,
                       attention: AttentionFactory | None = None, **kwargs) -> SEResNet:
    """CPU-scale SE-ResNet-18: BasicBlocks ``(2, 2, 2, 2)`` with widths ``width * (1, 2, 4, 8)``.

    ``width=64`` is ResNet-18's 64/128/256/512. Random (Kaiming) initialisation only: there are
    no ImageNet weights with SE modules at this size, so ``pretrained=True`` raises.
    """
    if pretrained:
        raise ValueError("se_resnet18_narrow has no ImageNet weights; use pretrained=False "
                         "(or se_resnext101_32x4d(pretrained=True) for the full-size trunk)")
    widths = tuple(width * f for f in (1, 2, 4, 8))
    return SEResNet(SEBasicBlock, (2, 2, 2, 2), widths, attention, stem_width=width, **kwargs)
