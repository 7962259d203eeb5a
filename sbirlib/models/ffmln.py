"""FFMLN: Feature Fusion and Metric Learning Network for zero-shot SBIR (Zhao et al., Entropy 2023).

Only the paper's abstract, outline and result tables are known, so everything below is the
library's reconstruction (chapter 07 (FFMLN), whose equation labels (F1)-(F8) are used here):

* one ResNet trunk shared by sketches and photos (ResNet-50 for ``full``, ResNet-18 for the
  CPU profiles);
* **AMFF** (Attention Map Feature Fusion): for stage l in {3, 4}, a 1x1 conv + sigmoid on the
  *residual-branch* output R_l of the stage's last block (before the identity is added) gives a
  map A_l (F1); the stage output X_l is averaged with A_l as weights, v_l = GAP(X_l * A_l) (F2);
  [v_3 ; v_4] is projected to d dimensions, z, and L2-normalised, e (F3);
* a linear classifier on z over the seen classes (F7).

The attention is a side branch used for pooling only: layer4 still receives the plain X_3.
Attention convs start at zero, so every map is 0.5 at step 0 ("no attention yet").
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.models.resnet import BasicBlock, Bottleneck

from sbirlib.models.registry import register_model
from sbirlib.models.resnet import ResNetTrunk

__all__ = ["AMFF", "FFMLN", "ffmln_resnet50", "ffmln_resnet18"]


def _block_with_residual(block: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Run a torchvision block; return its output and its residual branch R (before ``+ identity``).

    R is the output of ``bn3`` (Bottleneck) or ``bn2`` (BasicBlock): sbirlib's reading of
    "processing the residuals".
    """
    identity = x if block.downsample is None else block.downsample(x)
    out = block.relu(block.bn1(block.conv1(x)))
    if isinstance(block, Bottleneck):
        out = block.relu(block.bn2(block.conv2(out)))
        residual = block.bn3(block.conv3(out))
    elif isinstance(block, BasicBlock):
        residual = block.bn2(block.conv2(out))
    else:
        raise TypeError(f"expected a torchvision BasicBlock or Bottleneck, got {type(block).__name__}")
    return block.relu(residual + identity), residual


class AMFF(nn.Module):
    """Attention Map Feature Fusion over the stages ``stages`` of a :class:`ResNetTrunk`.

    Args:
        trunk: the shared backbone.
        dim: embedding size d (512 headline, 64 for the short-code rows).
        stages: which stages get an attention map (``("layer3", "layer4")``; ablation: layer4 only).
        map_source: ``"residual"`` (R_l, the default reading of "processing the residuals") or
            ``"output"`` (X_l; the map-source ablation).
        attention: ``True`` for learned maps; ``False`` for plain global average pooling of the
            same stages (the "AMFF off" ablation).
    """

    def __init__(self, trunk: ResNetTrunk, dim: int = 512, stages: tuple[str, ...] = ("layer3", "layer4"),
                 map_source: str = "residual", attention: bool = True) -> None:
        super().__init__()
        if map_source not in ("residual", "output"):
            raise ValueError(f"map_source must be 'residual' or 'output', got {map_source!r}")
        self.trunk, self.stages, self.map_source, self.attention = trunk, tuple(stages), map_source, attention
        self.att = nn.ModuleDict()
        for stage in self.stages:
            conv = nn.Conv2d(trunk.channels[stage], 1, kernel_size=1, bias=True)
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)
            self.att[stage] = conv
        self.proj = nn.Linear(sum(trunk.channels[s] for s in self.stages), dim)

    def _stage_outputs(self, x: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """``{stage: (X_l, R_l)}`` for the attended stages, running the trunk once.

        The last block of an attended stage is evaluated step by step so that its residual
        branch R_l can be read before ``+ identity`` (no forward hooks: they would not survive
        a deep copy of the model).
        """
        trunk = self.trunk
        x = trunk.maxpool(trunk.relu(trunk.bn1(trunk.conv1(x))))
        last = max(int(s[-1]) for s in self.stages)
        out = {}
        for i in range(1, last + 1):
            name = f"layer{i}"
            blocks = getattr(trunk, name)
            if name not in self.stages:
                x = blocks(x)
                continue
            for block in blocks[:-1]:
                x = block(x)
            x, residual = _block_with_residual(blocks[-1], x)
            out[name] = (x, residual)
        return out

    def forward(self, x: torch.Tensor, return_maps: bool = False):
        """Return ``z`` (pre-normalisation, ``[B, d]``), plus ``{stage: A_l}`` if ``return_maps``."""
        stages = self._stage_outputs(x)
        pooled, maps = [], {}
        for stage in self.stages:
            feat, residual = stages[stage]
            if self.attention:
                source = residual if self.map_source == "residual" else feat
                a = torch.sigmoid(self.att[stage](source))          # (F1) [B, 1, H, W]
                maps[stage] = a
                pooled.append((feat * a).mean(dim=(2, 3)))          # (F2)
            else:
                pooled.append(feat.mean(dim=(2, 3)))
        z = self.proj(torch.cat(pooled, dim=1))                     # (F3)
        return (z, maps) if return_maps else z


class FFMLN(nn.Module):
    """The reconstructed FFMLN: shared trunk + AMFF + L2-normalised embedding + seen-class classifier.

    ``forward(x)`` returns ``{"embedding": e, "z": z, "logits": W_c z + b_c}``; :meth:`embed`
    returns just the unit-norm embedding used for retrieval.
    """

    def __init__(self, trunk: ResNetTrunk, num_classes: int, dim: int = 512, **amff: Any) -> None:
        super().__init__()
        self.amff = AMFF(trunk, dim=dim, **amff)
        self.classifier = nn.Linear(dim, num_classes)
        self.dim, self.num_classes = dim, num_classes

    @property
    def trunk(self) -> ResNetTrunk:
        return self.amff.trunk

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.amff(x)
        return {"embedding": F.normalize(z, dim=1, eps=1e-12), "z": z, "logits": self.classifier(z)}

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.amff(x), dim=1, eps=1e-12)

    def attention_maps(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The maps A_l for a batch (``[B, 1, H_l, W_l]`` each), for plots."""
        return self.amff(x, return_maps=True)[1]

    def new_parameters(self) -> list[nn.Parameter]:
        """Attention convs, projection and classifier (the higher learning rate of the recipe)."""
        return [*self.amff.att.parameters(), *self.amff.proj.parameters(), *self.classifier.parameters()]

    def backbone_parameters(self) -> list[nn.Parameter]:
        return list(self.trunk.parameters())

    def extra_repr(self) -> str:
        return (f"dim={self.dim}, num_classes={self.num_classes}, stages={self.amff.stages}, "
                f"map_source={self.amff.map_source!r}, attention={self.amff.attention}")


@register_model
def ffmln_resnet50(num_classes: int = 100, dim: int = 512, pretrained: bool = False, **amff: Any) -> FFMLN:
    """FFMLN on an ImageNet ResNet-50 (the ``full`` recipe: ``pretrained=True``)."""
    return FFMLN(ResNetTrunk(depth=50, pretrained=pretrained), num_classes, dim, **amff)


@register_model
def ffmln_resnet18(num_classes: int = 24, dim: int = 128, pretrained: bool = False, **amff: Any) -> FFMLN:
    """The CPU-scale FFMLN: ResNet-18 trunk, 768 -> d projection."""
    return FFMLN(ResNetTrunk(depth=18, pretrained=pretrained), num_classes, dim, **amff)
