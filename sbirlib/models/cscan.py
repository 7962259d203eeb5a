"""CSCAN: the cross-domain spatial co-attention network of Yu & Zhang (LOP 59(22), 2022).

Three branches -- a sketch ``S``, a photo ``I`` and the photo's edge map ``E`` -- with

* a CBAM-style spatial self-attention mask ``M_S`` on the sketch's low-level features (C1, C2);
* one **shared** co-attention mask ``M_IE`` computed from the channel-concatenated photo and edge
  low-level features and applied to both (C3-C5);
* the high part of each encoder on the attended features (C6), photo and edge fused (C7);
* sigmoid hashing layers ``psi_S`` / ``psi_IE`` giving codes in ``(0, 1)^K`` (C8) and linear
  classifiers ``phi_S`` / ``phi_I`` on the codes (C9).

Equation labels (C1)-(C17) are those of chapter 06 (CSCAN); in the paper's public equation list
(C1)-(C5) are Eqs. 1-5 and (C7)-(C9) Eqs. 6-8. The paper's public material fixes the three
branches, the forms of (C1)/(C4), the shared mask of (C5), the hashing layers and the classifiers.
**Everything else is the library's reconstruction** (chapter 06, "Where we had to decide"):
ResNet encoders split after ``layer2``, the sketch and edge branches sharing one encoder, a 7x7
convolution on the [channel-mean; channel-max] maps for ``theta``, sum fusion,
``linear + sigmoid`` hashing.

The paper-scale model is :func:`cscan_resnet50` (224 px, K = 64); :func:`cscan_resnet18` is the
CPU-scale variant (64 px smoke runs, K = 32). Constructor switches implement the chapter's
ablations: attention on/off, separate masks instead of a shared one, no edge branch, shared
``theta``, the fusion operator, a separate edge encoder.

Inputs are float images in ``[0, 1]``: sketches and edge maps ``[B, 1|3, H, W]`` (grey is
replicated to three channels), photos ``[B, 3, H, W]``. The model applies the ImageNet mean/std
normalisation itself, so dataset tensors go in unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
from torch import Tensor

from sbirlib.models.registry import register_model
from sbirlib.models.resnet import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["SpatialAttention", "CSCAN", "channel_pool", "split_resnet", "cscan_resnet50", "cscan_resnet18"]

ATTENTION_MODES = ("co", "separate", "none")
FUSIONS = ("sum", "prod", "concat")


def channel_pool(feat: Tensor) -> Tensor:
    """``[F^Avg; F^Max]``: channel mean and channel max of ``[B, C, H, W]`` features, ``[B, 2, H, W]``."""
    return torch.cat([feat.mean(dim=1, keepdim=True), feat.amax(dim=1, keepdim=True)], dim=1)


class SpatialAttention(nn.Module):
    """``theta`` of (C1)/(C4): ``sigmoid(conv_kxk([F^Avg; F^Max]))``, a ``[B, 1, H, W]`` mask.

    This is CBAM's spatial attention (Woo et al., 2018); sbirlib infers it from the form of the
    paper's Eq. 1. The convolution is Kaiming-normal initialised with a zero bias (our choice).
    """

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"SpatialAttention: kernel_size must be odd, got {kernel_size}")
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=True)
        nn.init.kaiming_normal_(self.conv.weight, nonlinearity="relu")
        nn.init.zeros_(self.conv.bias)

    def forward(self, feat: Tensor) -> Tensor:
        return torch.sigmoid(self.conv(channel_pool(feat)))


def split_resnet(trunk: nn.Module) -> tuple[nn.Sequential, nn.Sequential]:
    """Split a torchvision-style ResNet into the low part (stem .. ``layer2``) and the high part
    (``layer3``, ``layer4``, global average pooling, flatten); the split point is sbirlib's."""
    missing = [n for n in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
               if not hasattr(trunk, n)]
    if missing:
        raise TypeError(f"split_resnet: {type(trunk).__name__} lacks {missing}; pass a ResNet trunk")
    low = nn.Sequential(trunk.conv1, trunk.bn1, trunk.relu, trunk.maxpool, trunk.layer1, trunk.layer2)
    high = nn.Sequential(trunk.layer3, trunk.layer4, nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    return low, high


class _Encoder(nn.Module):
    """A ResNet split into ``low`` (F_L, after layer2) and ``high`` (F_H, layer3 -> GAP)."""

    def __init__(self, trunk: nn.Module) -> None:
        super().__init__()
        self.low, self.high = split_resnet(trunk)


class CSCAN(nn.Module):
    """The three-branch hashing network (see the module docstring for the equations).

    Args:
        make_trunk: a zero-argument callable returning a fresh torchvision-style ResNet trunk
            (``conv1`` .. ``layer4``); it is called once per encoder.
        low_channels: channels of F_L (512 for ResNet-50, 128 for ResNet-18).
        feat_dim: dimension of F_H (2048 for ResNet-50, 512 for ResNet-18).
        code_bits: code length ``K``.
        num_classes: classes ``C`` of the classifiers ``phi``.
        sketch_attention: apply ``M_S`` to the sketch branch (ablation switch).
        photo_attention: ``"co"`` -- one mask from ``[F_L^I; F_L^E]`` for both (the paper);
            ``"separate"`` -- self-attention masks for ``I`` and ``E`` (ablation); ``"none"``.
        use_edge: keep the edge branch; ``False`` gives the two-branch ablation (photo code from
            ``F_H^I`` alone, ``M_IE`` computed from ``F_L^I`` only).
        shared_theta: one ``theta`` for the sketch and co-attention masks (ablation; the default
            is two different convolutions).
        fusion: ``"sum"`` (our reading of the lost operator), ``"prod"`` or ``"concat"``.
        shared_line_encoder: sketch and edge share one encoder (decision); ``False`` gives the
            edge map its own encoder (ablation).
        attn_kernel: kernel size of ``theta`` (7).
    """

    def __init__(
        self,
        make_trunk: Any,
        *,
        low_channels: int,
        feat_dim: int,
        code_bits: int = 64,
        num_classes: int = 125,
        sketch_attention: bool = True,
        photo_attention: str = "co",
        use_edge: bool = True,
        shared_theta: bool = False,
        fusion: str = "sum",
        shared_line_encoder: bool = True,
        attn_kernel: int = 7,
    ) -> None:
        super().__init__()
        if photo_attention not in ATTENTION_MODES:
            raise ValueError(f"photo_attention={photo_attention!r}; expected one of {ATTENTION_MODES}")
        if fusion not in FUSIONS:
            raise ValueError(f"fusion={fusion!r}; expected one of {FUSIONS}")
        if code_bits < 1 or num_classes < 2:
            raise ValueError(f"need code_bits >= 1 and num_classes >= 2, got {code_bits}, {num_classes}")
        self.low_channels = low_channels
        self.feat_dim = feat_dim
        self.code_bits = code_bits
        self.num_classes = num_classes
        self.sketch_attention = sketch_attention
        self.photo_attention = photo_attention
        self.use_edge = use_edge
        self.shared_theta = shared_theta
        self.fusion = fusion if use_edge else "none"
        self.shared_line_encoder = shared_line_encoder

        self.line_encoder = _Encoder(make_trunk())  # sketch (and edge, when shared)
        self.image_encoder = _Encoder(make_trunk())
        self.edge_encoder = _Encoder(make_trunk()) if (use_edge and not shared_line_encoder) else None

        self.theta_s = SpatialAttention(attn_kernel) if sketch_attention else None
        self.theta_ie: nn.Module | None = None
        self.theta_e: nn.Module | None = None
        if photo_attention == "co":
            self.theta_ie = (self.theta_s if (shared_theta and self.theta_s is not None)
                             else SpatialAttention(attn_kernel))
        elif photo_attention == "separate":
            self.theta_ie = SpatialAttention(attn_kernel)  # acts as theta_I
            self.theta_e = SpatialAttention(attn_kernel) if use_edge else None

        photo_dim = 2 * feat_dim if (use_edge and fusion == "concat") else feat_dim
        self.hash_sketch = nn.Linear(feat_dim, code_bits)  # psi_S
        self.hash_photo = nn.Linear(photo_dim, code_bits)  # psi_IE
        self.cls_sketch = nn.Linear(code_bits, num_classes)  # phi_S
        self.cls_photo = nn.Linear(code_bits, num_classes)  # phi_I
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    # -- helpers ---------------------------------------------------------------------
    def _prep(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"CSCAN expects images [B, 1|3, H, W] in [0, 1], got {tuple(x.shape)}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return (x - self.mean) / self.std

    @property
    def _edge_encoder(self) -> _Encoder:
        return self.edge_encoder if self.edge_encoder is not None else self.line_encoder

    # -- sketch path -----------------------------------------------------------------
    def sketch_features(self, sketch: Tensor) -> dict[str, Tensor | None]:
        """F_L^S, M_S (C1), F_L^S' (C2) and F_H^S (C6) of a sketch batch."""
        low = self.line_encoder.low(self._prep(sketch))
        mask = self.theta_s(low) if self.theta_s is not None else None
        att = low * mask if mask is not None else low
        return {"low": low, "mask": mask, "high": self.line_encoder.high(att)}

    def encode_sketch(self, sketch: Tensor) -> Tensor:
        """Continuous sketch code ``B_S' = sigmoid(psi_S(F_H^S))`` in ``(0, 1)^K`` (C8)."""
        return torch.sigmoid(self.hash_sketch(self.sketch_features(sketch)["high"]))

    # -- photo path ------------------------------------------------------------------
    def photo_features(self, photo: Tensor, edge: Tensor | None = None) -> dict[str, Tensor | None]:
        """Low features, masks (C3-C5), high features and the fused F_H^IE (C6, C7) of photos.

        Returns ``low_i``, ``low_e``, ``mask_i``, ``mask_e`` (the same tensor under co-attention),
        ``high_i``, ``high_e`` and ``fused``.
        """
        if self.use_edge and edge is None:
            raise ValueError("this CSCAN has an edge branch: pass the photo's edge map too")
        low_i = self.image_encoder.low(self._prep(photo))
        low_e = self._edge_encoder.low(self._prep(edge)) if self.use_edge else None
        mask_i = mask_e = None
        if self.photo_attention == "co":
            joint = torch.cat([low_i, low_e], dim=1) if self.use_edge else low_i  # (C3)
            mask_i = mask_e = self.theta_ie(joint)  # (C4)
        elif self.photo_attention == "separate":
            mask_i = self.theta_ie(low_i)
            mask_e = self.theta_e(low_e) if self.use_edge else None
        high_i = self.image_encoder.high(low_i * mask_i if mask_i is not None else low_i)  # (C5, C6)
        high_e = None
        if self.use_edge:
            high_e = self._edge_encoder.high(low_e * mask_e if mask_e is not None else low_e)
        if not self.use_edge:
            fused = high_i
        elif self.fusion == "sum":
            fused = high_i + high_e  # (C7)
        elif self.fusion == "prod":
            fused = high_i * high_e
        else:
            fused = torch.cat([high_i, high_e], dim=1)
        return {"low_i": low_i, "low_e": low_e, "mask_i": mask_i, "mask_e": mask_e,
                "high_i": high_i, "high_e": high_e, "fused": fused}

    def encode_photo(self, photo: Tensor, edge: Tensor | None = None) -> Tensor:
        """Continuous photo code ``B_I' = sigmoid(psi_IE(F_H^IE))`` in ``(0, 1)^K`` (C8)."""
        return torch.sigmoid(self.hash_photo(self.photo_features(photo, edge)["fused"]))

    # -- both ------------------------------------------------------------------------
    def forward(
        self, sketch: Tensor | None = None, photo: Tensor | None = None, edge: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Codes and class logits (C8, C9) of whichever inputs are given.

        Returns a dict with ``code_sketch`` / ``logits_sketch`` when ``sketch`` is given and
        ``code_photo`` / ``logits_photo`` when ``photo`` (and ``edge``) are.
        """
        out: dict[str, Tensor] = {}
        if sketch is not None:
            out["code_sketch"] = self.encode_sketch(sketch)
            out["logits_sketch"] = self.cls_sketch(out["code_sketch"])
        if photo is not None:
            out["code_photo"] = self.encode_photo(photo, edge)
            out["logits_photo"] = self.cls_photo(out["code_photo"])
        if not out:
            raise ValueError("CSCAN.forward needs a sketch, a photo (+ edge map), or both")
        return out

    @staticmethod
    def binary_codes(codes: Tensor) -> Tensor:
        """Binary codes ``f_q(B') = 1[B' >= 0.5]`` (C14) as a ``bool`` tensor.

        ``bool`` (not ``uint8``) because :mod:`sbirlib.evaluation` and
        :class:`sbirlib.retrieval.HammingIndex` read ``uint8`` as *packed* bits.
        """
        return codes.detach() >= 0.5

    def extra_repr(self) -> str:
        return (f"code_bits={self.code_bits}, num_classes={self.num_classes}, "
                f"sketch_attention={self.sketch_attention}, photo_attention={self.photo_attention!r}, "
                f"use_edge={self.use_edge}, shared_theta={self.shared_theta}, fusion={self.fusion!r}, "
                f"shared_line_encoder={self.shared_line_encoder}")


def _resnet_trunk_factory(arch: str, pretrained: bool):
    from sbirlib.models import resnet

    builder = getattr(resnet, arch)

    def make() -> nn.Module:
        return builder(pretrained=pretrained)

    return make


@register_model
def cscan_resnet50(num_classes: int = 125, code_bits: int = 64, pretrained: bool = False,
                   **options: Any) -> CSCAN:
    """Paper-scale CSCAN (as reconstructed): two ResNet-50 encoders, 224 px, K = 64 by default.

    ``pretrained=True`` starts both encoders from ImageNet (torchvision ``IMAGENET1K_V1``) and
    fails with a clear message where the weights are not cached. ``options`` are the
    :class:`CSCAN` ablation switches.
    """
    model = CSCAN(_resnet_trunk_factory("resnet50", pretrained), low_channels=512, feat_dim=2048,
                  code_bits=code_bits, num_classes=num_classes, **options)
    model.default_cfg = {"input_size": (3, 224, 224), "mean": IMAGENET_MEAN, "std": IMAGENET_STD}
    return model


@register_model
def cscan_resnet18(num_classes: int = 30, code_bits: int = 32, pretrained: bool = False,
                   **options: Any) -> CSCAN:
    """CPU-scale CSCAN: two ResNet-18 encoders, F_L = layer2 (128 ch), F_H 512-d, K = 32."""
    model = CSCAN(_resnet_trunk_factory("resnet18", pretrained), low_channels=128, feat_dim=512,
                  code_bits=code_bits, num_classes=num_classes, **options)
    model.default_cfg = {"input_size": (3, 64, 64), "mean": IMAGENET_MEAN, "std": IMAGENET_STD}
    return model
