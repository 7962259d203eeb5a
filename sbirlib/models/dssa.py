"""DSSA: Deep Spatial-Semantic Attention for fine-grained SBIR (Song et al., ICCV 2017).

DSSA keeps the Triplet-SN network (one Sketch-a-Net shared by sketches and photo edge maps)
and changes three things (equation labels as in chapter 03 (DSSA)):

1. :class:`SpatialAttention` -- two 1x1 convolutions on the pool5 map give one logit per
   position, a softmax over the 7x7 grid turns them into a mask ``a`` (D1, D2), applied
   residually: ``f_att = f * (1 + a)`` (D3).
2. :class:`CoarseFineFusion` -- the coarse half is fc6 -> fc7 of the attended map, the fine
   half the attended map sum-pooled; each half is L2-normalised and the two are concatenated,
   coarse first (D4, D5).
3. The HOLEF distance, which lives in :mod:`sbirlib.losses.holef`.

:class:`DSSA` wires a Sketch-a-Net trunk (conv1-pool5), the attention and the fusion.
The registered constructors ``dssa`` (paper size, 225 px, 512-d) and ``dssa_narrow``
(SAN-narrow, 64/128 px, 256-d) build it around :mod:`sbirlib.models.sketch_a_net`.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from sbirlib.losses import holef as holef_mod
from sbirlib.models.registry import register_model

__all__ = ["SpatialAttention", "CoarseFineFusion", "DSSA", "dssa_from_sketch_a_net", "dssa", "dssa_narrow", "l2n"]

AttentionMode = Literal["softmax", "sigmoid", "none"]


def l2n(v: torch.Tensor) -> torch.Tensor:
    """``N(v) = v / max(||v||_2, 1e-12)`` along the last dimension."""
    return F.normalize(v, p=2.0, dim=-1, eps=1e-12)


class SpatialAttention(nn.Module):
    """Spatial attention over a conv map ``f [B, C, H, W]`` (D1-D3).

    ``o = a2(ReLU(a1(f)))`` with 1x1 convolutions ``C -> C -> 1``; ``a = softmax(o)`` over the
    ``H*W`` positions (``mode="softmax"``, the default) or ``a = sigmoid(o)`` (``"sigmoid"``,
    an ablation). With ``residual=True`` the output is ``f + f * a``, else ``f * a``.
    ``forward`` returns ``(f_att, a)`` with ``a`` of shape ``[B, 1, H, W]``.
    Weights are Kaiming-normal, biases zero (sbirlib's choice, as in TC-Net).
    """

    def __init__(self, channels: int, mode: AttentionMode = "softmax", residual: bool = True) -> None:
        super().__init__()
        if mode not in ("softmax", "sigmoid"):
            raise ValueError(f"attention mode must be 'softmax' or 'sigmoid', got {mode!r}")
        self.channels, self.mode, self.residual = int(channels), mode, bool(residual)
        self.a1 = nn.Conv2d(channels, channels, kernel_size=1)
        self.a2 = nn.Conv2d(channels, 1, kernel_size=1)
        for conv in (self.a1, self.a2):
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)

    def logits(self, f: torch.Tensor) -> torch.Tensor:
        """The attention logits ``o [B, 1, H, W]`` (D1)."""
        return self.a2(F.relu(self.a1(f)))

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        o = self.logits(f)
        if self.mode == "softmax":
            b, _, h, w = o.shape
            a = torch.softmax(o.flatten(1), dim=1).view(b, 1, h, w)  # (D2)
        else:
            a = torch.sigmoid(o)
        f_att = f * (1.0 + a) if self.residual else f * a  # (D3)
        return f_att, a

    def extra_repr(self) -> str:
        return f"channels={self.channels}, mode={self.mode!r}, residual={self.residual}"


class CoarseFineFusion(nn.Module):
    """Shortcut fusion (D4, D5): ``e = [N(fc7(ReLU(fc6(vec(f))))) ; N(sum_xy f)]``.

    ``fc6`` and ``fc7`` are the (pre-trained) Sketch-a-Net layers. With ``fine=False`` only the
    coarse half is returned (the Triplet-SN embedding).
    """

    def __init__(self, fc6: nn.Linear, fc7: nn.Linear, fine: bool = True) -> None:
        super().__init__()
        self.fc6, self.fc7, self.fine = fc6, fc7, bool(fine)

    def coarse(self, f: torch.Tensor) -> torch.Tensor:
        """``g_coarse``: unit-norm, ``fc7.out_features`` wide."""
        return l2n(self.fc7(F.relu(self.fc6(f.flatten(1)))))

    def fine_branch(self, f: torch.Tensor) -> torch.Tensor:
        """``g_fine``: the map sum-pooled over positions, unit-norm, ``C`` wide."""
        return l2n(f.sum(dim=(2, 3)))

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        g_coarse = self.coarse(f)
        if not self.fine:
            return g_coarse
        return torch.cat([g_coarse, self.fine_branch(f)], dim=1)

    def extra_repr(self) -> str:
        return f"fine={self.fine}"


class DSSA(nn.Module):
    """The DSSA embedding network: trunk (conv1-pool5) -> attention -> coarse+fine fusion.

    Args:
        trunk: maps ``[B, 1, S, S]`` to the pool5 map ``[B, C, 7, 7]``.
        fc6, fc7: the Sketch-a-Net fully connected layers (``C*49 -> hidden -> dim``).
        channels: ``C``.
        attention: ``"softmax"`` (the paper), ``"sigmoid"`` or ``"none"`` (no attention).
        residual: ``f + f*a`` (the paper) or ``f*a``.
        fine: append the fine (sum-pooled) half to the embedding.
        holef: carry a learnable HOLEF distance ``D_W`` (``self.distance``, W = I + 0.05 N(0,1)
            drawn from ``generator``) used by the loss and at test time; ``False`` means
            squared Euclidean distance.
        holef_diagonal: learn only the diagonal of ``W`` (an ablation).

    ``forward(x)`` returns the embedding ``e`` (``[B, 2*dim]`` with the fine half, else
    ``[B, dim]``); :meth:`forward_features` also returns the pool5 map, the attention mask and
    both halves (for plots). One network embeds sketches and photo edge maps alike.
    """

    def __init__(
        self, trunk: nn.Module, fc6: nn.Linear, fc7: nn.Linear, channels: int, *,
        attention: AttentionMode = "softmax", residual: bool = True, fine: bool = True,
        holef: bool = True, holef_diagonal: bool = False, generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if attention not in ("softmax", "sigmoid", "none"):
            raise ValueError(f"attention must be 'softmax', 'sigmoid' or 'none', got {attention!r}")
        self.trunk = trunk
        self.attention = None if attention == "none" else SpatialAttention(channels, attention, residual)
        self.fusion = CoarseFineFusion(fc6, fc7, fine=fine)
        self.channels = int(channels)
        self.embed_dim = fc7.out_features + (self.channels if fine else 0)
        self.distance = (
            holef_mod.HOLEFDistance(self.embed_dim, diagonal=holef_diagonal, generator=generator) if holef else None
        )

    def pairwise_distance(self, sketch_emb: torch.Tensor, photo_emb: torch.Tensor) -> torch.Tensor:
        """The model's retrieval distance ``[Ns, Np]``: HOLEF ``D_W`` (D7) or squared Euclidean."""
        if self.distance is not None:
            return self.distance(sketch_emb, photo_emb)
        return torch.cdist(sketch_emb, photo_emb).pow(2)

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"pool5", "attention", "f_att", "coarse", "fine"?, "emb"}`` for a batch ``x``."""
        f = self.trunk(x)
        if self.attention is None:
            f_att = f
            a = torch.full_like(f[:, :1], 1.0 / (f.shape[2] * f.shape[3]))
        else:
            f_att, a = self.attention(f)
        out = {"pool5": f, "attention": a, "f_att": f_att, "coarse": self.fusion.coarse(f_att)}
        if self.fusion.fine:
            out["fine"] = self.fusion.fine_branch(f_att)
            out["emb"] = torch.cat([out["coarse"], out["fine"]], dim=1)
        else:
            out["emb"] = out["coarse"]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.trunk(x)
        if self.attention is not None:
            f, _ = self.attention(f)
        return self.fusion(f)

    def trainable_parameters(self, train_conv5: bool = True) -> list[nn.Parameter]:
        """The parameters DSSA fine-tunes: conv5 (the trunk's last conv), attention, fc6, fc7.

        conv1-conv4 stay frozen (as in the official code); ``train_conv5=False`` also freezes conv5
        (the Triplet-SN setting). Sets ``requires_grad`` accordingly and returns the list.
        The HOLEF matrix is not included: it has its own optimiser (``self.distance``).
        """
        for p in self.trunk.parameters():
            p.requires_grad_(False)
        params: list[nn.Parameter] = []
        if train_conv5:
            convs = [m for m in self.trunk.modules() if isinstance(m, nn.Conv2d)]
            if not convs:
                raise ValueError("the trunk has no Conv2d layer to call conv5")
            params += list(convs[-1].parameters())
        if self.attention is not None:
            params += list(self.attention.parameters())
        params += list(self.fusion.parameters())
        for p in params:
            p.requires_grad_(True)
        return params

    def extra_repr(self) -> str:
        return f"channels={self.channels}, embed_dim={self.embed_dim}, holef={self.distance is not None}"


def dssa_from_sketch_a_net(backbone: nn.Module, **kwargs) -> DSSA:
    """Wrap a (pre-trained) :class:`~sbirlib.models.sketch_a_net.SketchANet` into DSSA.

    The DSSA shares the backbone's modules: ``features`` becomes the trunk and ``fc6``/``fc7``
    the coarse branch; the pre-training head is dropped. ``kwargs`` go to :class:`DSSA`.
    """
    for name in ("features", "fc6", "fc7", "feature_channels"):
        if not hasattr(backbone, name):
            raise TypeError(f"dssa_from_sketch_a_net needs a SketchANet (missing {name!r}), got {type(backbone).__name__}")
    return DSSA(backbone.features, backbone.fc6, backbone.fc7, backbone.feature_channels, **kwargs)


def _build(variant: str, input_size: int | None, backbone_state: dict | None, **kwargs) -> DSSA:
    from sbirlib.models import sketch_a_net

    if kwargs.pop("pretrained", False):
        raise ValueError(
            "dssa: there are no downloadable DSSA/Sketch-a-Net weights. Pre-train Sketch-a-Net with "
            "sbirlib.recipes.pretrain and pass its state dict as backbone_state=..."
        )
    backbone = sketch_a_net.SketchANet(variant=variant, input_size=input_size)
    if backbone_state is not None:
        state = {k: v for k, v in backbone_state.items() if not k.startswith("head.")}
        missing, unexpected = backbone.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(
                f"backbone_state does not fit SketchANet({variant}): missing {missing}, unexpected {unexpected}"
            )
    return dssa_from_sketch_a_net(backbone, **kwargs)


@register_model
def dssa(input_size: int | None = None, backbone_state: dict | None = None, **kwargs) -> DSSA:
    """DSSA at the paper's size: Sketch-a-Net on 225 px, 256x7x7 pool5, 512-d embedding.

    ``backbone_state`` is a Sketch-a-Net state dict (from TU-Berlin pre-training); the
    attention layers are always freshly initialised. Other keywords go to :class:`DSSA`
    (``attention``, ``residual``, ``fine``).
    """
    return _build("full", input_size, backbone_state, **kwargs)


@register_model
def dssa_narrow(input_size: int | None = None, backbone_state: dict | None = None, **kwargs) -> DSSA:
    """CPU-scale DSSA on SAN-narrow: 128 or 64 px, 128x7x7 pool5, 256-d embedding."""
    return _build("narrow", input_size, backbone_state, **kwargs)
