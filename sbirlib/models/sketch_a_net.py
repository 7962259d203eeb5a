"""Sketch-a-Net: the line-drawing CNN of the fine-grained SBIR papers (Triplet-SN, DSSA).

Two variants share one class, :class:`SketchANet`:

* ``variant="full"`` -- the network of "Sketch Me That Shoe" (the authors' Caffe/TF code):
  1x225x225 input, conv1 64@15x15/3, conv2 128@5x5, conv3-5 256@3x3, pool5 256x7x7,
  fc6 12,544 -> 512 (ReLU), fc7 512 -> 256, L2 normalisation. No batch norm, no dropout
  in the embedding path.
* ``variant="narrow"`` -- sbirlib's CPU-scale "SAN-narrow": half the widths, conv1/conv2
  re-shaped so that pool5 is still a 7x7 grid at 128 px (``cpu-real``) or 64 px (``smoke``).

The embedding path is ``features`` (conv1 ... pool5, an :class:`torch.nn.Sequential` with
named layers, so ``model.features.conv5`` can be hooked) -> ``fc6`` -> ReLU -> ``fc7`` ->
L2 normalisation. ``forward`` returns the unit-norm embedding. An optional classification
head (``num_classes``) is used for TU-Berlin pre-training only (sbirlib's pre-training head):
``classify(x)`` applies dropout 0.5 after fc6 and after fc7's ReLU, then a linear layer.

Inputs are grey images (black strokes on white). :func:`normalize_sketch` maps a [0, 1]
tensor to ``(255 x - 250.42) / 255`` (the official mean pixel, scaled by 1/255) so that
background is about 0 and strokes are negative.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from sbirlib.models.registry import register_model

__all__ = [
    "SketchANet",
    "sketch_a_net",
    "sketch_a_net_narrow",
    "normalize_sketch",
    "SKETCH_MEAN",
    "kaiming_init_",
]

#: the official mean pixel of the QMUL/Sketch-a-Net code, on the 0-255 grey scale
SKETCH_MEAN = 250.42


def normalize_sketch(x: torch.Tensor) -> torch.Tensor:
    """Map grey images in [0, 1] to the Sketch-a-Net input scale ``(255 x - 250.42) / 255``."""
    return x - SKETCH_MEAN / 255.0


def kaiming_init_(module: nn.Module) -> nn.Module:
    """Kaiming-normal (fan-in, ReLU gain) weights and zero biases for every conv/linear layer.

    This is the initialisation of the library's pre-training recipe
    (:mod:`sbirlib.recipes.pretrain`): with PyTorch's default initialisation and SGD the project
    saw no learning at all.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def _conv_stack(variant: str, in_channels: int, input_size: int) -> tuple[nn.Sequential, int]:
    """conv1 ... pool5 for a variant; returns the stack and its channel count at pool5."""
    if variant == "full":
        if input_size != 225:
            raise ValueError(f"the full Sketch-a-Net expects 225 px inputs, got input_size={input_size}")
        widths = (64, 128, 256)
        conv1 = nn.Conv2d(in_channels, 64, kernel_size=15, stride=3, padding=0)
        conv2 = nn.Conv2d(64, 128, kernel_size=5, stride=1, padding=0)
    elif variant == "narrow":
        widths = (32, 64, 128)
        if input_size == 128:
            conv1 = nn.Conv2d(in_channels, 32, kernel_size=7, stride=2, padding=3)
        elif input_size == 64:
            conv1 = nn.Conv2d(in_channels, 32, kernel_size=5, stride=1, padding=2)
        else:
            raise ValueError(
                f"the narrow Sketch-a-Net is defined for input_size 128 or 64, got {input_size}"
            )
        conv2 = nn.Conv2d(32, 64, kernel_size=5, stride=1, padding=2)
    else:
        raise ValueError(f"variant must be 'full' or 'narrow', got {variant!r}")
    c1, c2, c3 = widths
    layers = OrderedDict(
        conv1=conv1, relu1=nn.ReLU(inplace=True), pool1=nn.MaxPool2d(3, 2),
        conv2=conv2, relu2=nn.ReLU(inplace=True), pool2=nn.MaxPool2d(3, 2),
        conv3=nn.Conv2d(c2, c3, 3, padding=1), relu3=nn.ReLU(inplace=True),
        conv4=nn.Conv2d(c3, c3, 3, padding=1), relu4=nn.ReLU(inplace=True),
        conv5=nn.Conv2d(c3, c3, 3, padding=1), relu5=nn.ReLU(inplace=True),
        pool5=nn.MaxPool2d(3, 2),
    )
    del c1
    return nn.Sequential(layers), c3


class SketchANet(nn.Module):
    """Sketch-a-Net embedding network with an optional pre-training classifier.

    Args:
        variant: ``"full"`` (225 px, the paper's widths) or ``"narrow"`` (CPU scale).
        input_size: 225 for ``full``; 128 or 64 for ``narrow``.
        in_channels: 1 for grey sketches / edge maps.
        hidden_dim: fc6 width (default 512 full, 256 narrow).
        embed_dim: fc7 width = embedding size (default 256 full, 128 narrow).
        num_classes: if given, adds the pre-training head ``fc7 -> ReLU -> Dropout -> C``.
        normalize: L2-normalise the embedding in :meth:`forward` (the Triplet-SN embedding).
        init: ``"kaiming"`` (the pre-training recipe's) or ``"default"`` (PyTorch's).
    """

    def __init__(
        self,
        variant: str = "full",
        input_size: int | None = None,
        in_channels: int = 1,
        hidden_dim: int | None = None,
        embed_dim: int | None = None,
        num_classes: int | None = None,
        normalize: bool = True,
        dropout: float = 0.5,
        init: str = "kaiming",
    ) -> None:
        super().__init__()
        if input_size is None:
            input_size = 225 if variant == "full" else 128
        self.variant = variant
        self.input_size = int(input_size)
        self.in_channels = in_channels
        self.features, channels = _conv_stack(variant, in_channels, self.input_size)
        self.feature_channels = channels
        self.feature_grid = 7
        hidden_dim = hidden_dim or (512 if variant == "full" else 256)
        embed_dim = embed_dim or (256 if variant == "full" else 128)
        self.embed_dim = embed_dim
        self.fc6 = nn.Linear(channels * 7 * 7, hidden_dim)
        self.fc7 = nn.Linear(hidden_dim, embed_dim)
        self.normalize = normalize
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes else None
        if init == "kaiming":
            kaiming_init_(self)
        elif init != "default":
            raise ValueError(f"init must be 'kaiming' or 'default', got {init!r}")
        self.default_cfg: dict[str, Any] = {
            "input_size": (in_channels, self.input_size, self.input_size),
            "mean": SKETCH_MEAN / 255.0,
            "std": 1.0,
        }

    # -- embedding path ------------------------------------------------------------
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """conv1 ... pool5: ``[B, C, 7, 7]``."""
        feats = self.features(x)
        if feats.shape[-1] != 7 or feats.shape[-2] != 7:
            raise ValueError(
                f"{type(self).__name__}({self.variant}) expects {self.input_size} px inputs "
                f"(pool5 must be 7x7); got an input of {tuple(x.shape[-2:])}"
            )
        return feats

    def embed_features(self, feats: torch.Tensor) -> torch.Tensor:
        """fc6 -> ReLU -> fc7 on a pool5 map (no normalisation)."""
        return self.fc7(F.relu(self.fc6(feats.flatten(1))))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The fc7 output before L2 normalisation."""
        return self.embed_features(self.forward_features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding e(x) (unit norm when ``normalize``)."""
        z = self.embed(x)
        return F.normalize(z, dim=1, eps=1e-12) if self.normalize else z

    # -- pre-training head ---------------------------------------------------------
    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits of the pre-training head (dropout after fc6 and fc7 in train mode)."""
        if self.head is None:
            raise RuntimeError("this SketchANet has no classification head; build it with num_classes=C")
        h = self.dropout(F.relu(self.fc6(self.forward_features(x).flatten(1))))
        return self.head(self.dropout(F.relu(self.fc7(h))))

    def freeze_convs(self, frozen: bool = True) -> SketchANet:
        """Freeze (or unfreeze) conv1-conv5, as in Triplet-SN where only fc6/fc7 train."""
        for p in self.features.parameters():
            p.requires_grad_(not frozen)
        return self

    def trunk_state_dict(self) -> dict[str, torch.Tensor]:
        """conv1-fc7 weights without the pre-training head (what pre-training hands on)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("head.")}

    def extra_repr(self) -> str:
        return (f"variant={self.variant!r}, input_size={self.input_size}, "
                f"embed_dim={self.embed_dim}, normalize={self.normalize}, "
                f"head={'none' if self.head is None else self.head.out_features}")


@register_model
def sketch_a_net(**kwargs: Any) -> SketchANet:
    """Sketch-a-Net as in Triplet-SN / DSSA: 225 px, 256-d L2-normalised embedding.

    ``pretrained=True`` is refused: the authors' ``sketchnet_init`` is not downloadable;
    use :mod:`sbirlib.recipes.pretrain` to pre-train on TU-Berlin.
    """
    _refuse_pretrained(kwargs, "sketch_a_net")
    return SketchANet(variant="full", **kwargs)


@register_model
def sketch_a_net_narrow(**kwargs: Any) -> SketchANet:
    """SAN-narrow, the CPU-scale Sketch-a-Net (128 px by default, or ``input_size=64``)."""
    _refuse_pretrained(kwargs, "sketch_a_net_narrow")
    return SketchANet(variant="narrow", **kwargs)


def _refuse_pretrained(kwargs: dict[str, Any], name: str) -> None:
    if kwargs.pop("pretrained", False):
        raise ValueError(
            f"{name}: there are no downloadable ImageNet/sketch weights for Sketch-a-Net "
            "(the authors' sketchnet_init is on Google Drive only). Pre-train it with "
            "sbirlib.recipes.pretrain.pretrained_sketch_a_net(...) and load that state dict."
        )
