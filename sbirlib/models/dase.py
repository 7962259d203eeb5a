"""DASE: the Domain-Aware Squeeze-and-Excitation network of Lu et al. (ACM MM 2021).

One network embeds sketches *and* photos. A domain bit ``d`` (0 = sketch, 1 = photo) enters
every SE module of stages 1-3: it is concatenated to the squeezed descriptor just before the
excitation layer, so the same weights re-weight channels differently per domain
(equations M1-M4 below, from the official code). Stage 4 has a plain SE module. As in
the official code, the squeeze activation is a sigmoid everywhere.

* :class:`DASEModule` -- the module (also the plain/CSE variants through its options);
* :class:`DASENet` -- trunk + ``GAP -> linear`` head, features not normalised;
* :func:`dase_seresnext101_32x4d` -- the paper's network (512-d); 
  :func:`dase_seresnet18_cpu` -- sbirlib's CPU-scale variant (128-d);
* :func:`embed_with_flips`, :func:`flip_min_distance` -- the flip test-time augmentation (M11).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn as nn

from sbirlib.models import se_resnet
from sbirlib.models.registry import register_model

__all__ = [
    "DASEModule",
    "DASENet",
    "dase_attention",
    "dase_seresnext101_32x4d",
    "dase_seresnet18_cpu",
    "embed_with_flips",
    "flip_min_distance",
    "squared_euclidean",
    "ATTENTION_VARIANTS",
]


class DASEModule(nn.Module):
    """Domain-aware squeeze-and-excitation.

    z = GAP(x); u = act(W1 z + b1); g = sigmoid(W2 [u; d] + b2); out = x * g   (M1-M4)

    Args:
        channels: C.
        reduction: r (hidden size C // r).
        domain_aware: concatenate the domain bit before fc2 (fc2 then has C//r + 1 inputs).
        squeeze_act: ``"sigmoid"`` (official DASE) or ``"relu"`` (standard SE / SAKE's CSE).

    ``forward(x, domain)`` takes ``domain`` as a float ``[B]`` tensor. Set ``record_gates``
    to keep the last gate (``[B, C]``, detached) in ``last_gate``.
    """

    def __init__(self, channels: int, reduction: int = 16, domain_aware: bool = True,
                 squeeze_act: str = "sigmoid") -> None:
        super().__init__()
        if squeeze_act not in ("sigmoid", "relu"):
            raise ValueError(f"squeeze_act must be 'sigmoid' or 'relu', got {squeeze_act!r}")
        self.channels, self.reduction = channels, reduction
        self.domain_aware, self.squeeze_act = domain_aware, squeeze_act
        hidden = channels // reduction
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1)
        self.fc2 = nn.Conv2d(hidden + int(domain_aware), channels, kernel_size=1)
        self.record_gates = False
        self.last_gate: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, domain: torch.Tensor | None = None) -> torch.Tensor:
        z = x.mean((2, 3), keepdim=True)                                  # M1
        u = self.fc1(z)
        u = torch.sigmoid(u) if self.squeeze_act == "sigmoid" else torch.relu(u)  # M2
        if self.domain_aware:
            if domain is None:
                raise ValueError("a domain-aware module needs the domain bit "
                                 "(0 = sketch, 1 = photo); call model(x, domain)")
            d = domain.to(dtype=u.dtype).reshape(-1, 1, 1, 1)
            u = torch.cat([u, d], dim=1)                                  # [u; d]
        g = torch.sigmoid(self.fc2(u))                                    # M3
        if self.record_gates:
            self.last_gate = g.detach().flatten(1)
        return x * g                                                      # M4

    def extra_repr(self) -> str:
        return (f"channels={self.channels}, reduction={self.reduction}, "
                f"domain_aware={self.domain_aware}, squeeze={self.squeeze_act}")


#: attention variants for the ablations: name -> (stages with a domain bit, squeeze, kind)
ATTENTION_VARIANTS = {
    "dase": ((1, 2, 3), "sigmoid", "se"),      # the paper: DASE in 1-3, plain SE in 4
    "dase-all": ((1, 2, 3, 4), "sigmoid", "se"),
    "se": ((), "sigmoid", "se"),                 # same module, no domain bit ("domain bit off")
    "se-relu": ((), "relu", "se"),               # standard SE of ImageNet models
    "cse": ((1, 2, 3, 4), "relu", "se"),         # SAKE's CSE: ReLU squeeze, bit everywhere
    "none": ((), "sigmoid", "none"),
}


def dase_attention(variant: str = "dase", reduction: int = 16
                   ) -> Callable[[int, int], nn.Module]:
    """Attention factory ``(channels, stage) -> module`` for a variant of ``ATTENTION_VARIANTS``."""
    if variant not in ATTENTION_VARIANTS:
        raise ValueError(f"unknown attention variant {variant!r}; "
                         f"choose from {', '.join(ATTENTION_VARIANTS)}")
    stages, act, kind = ATTENTION_VARIANTS[variant]
    if kind == "none":
        return lambda channels, stage: se_resnet.NoAttention()
    return lambda channels, stage: DASEModule(channels, reduction, stage in stages, act)


class DASENet(nn.Module):
    """A shared sketch/photo encoder: trunk(x, domain) -> GAP -> linear (with bias).

    The embedding is **not** normalised (MEMS works on raw squared Euclidean distances).
    ``forward(x, domain)`` takes ``domain`` as an int (whole batch) or a ``[B]`` tensor.
    """

    def __init__(self, trunk: se_resnet.SEResNet, embed_dim: int = 512,
                 attention: str = "dase") -> None:
        super().__init__()
        self.trunk = trunk
        self.head = nn.Linear(trunk.out_channels, embed_dim)
        self.embed_dim, self.attention = embed_dim, attention

    def forward(self, x: torch.Tensor, domain: torch.Tensor | int) -> torch.Tensor:
        fmap = self.trunk(x, domain)
        return self.head(fmap.mean((2, 3)))

    def attention_modules(self) -> list[tuple[str, DASEModule]]:
        """``(name, module)`` of every (DA)SE module, in depth order."""
        return [(n, m) for n, m in self.named_modules() if isinstance(m, DASEModule)]

    @torch.no_grad()
    def gate_means(self, x: torch.Tensor, domain: torch.Tensor | int) -> dict[str, torch.Tensor]:
        """Mean gate per channel (over the batch) of every (DA)SE module for input ``x``."""
        mods = self.attention_modules()
        for _, m in mods:
            m.record_gates = True
        try:
            self(x, domain)
            return {n: m.last_gate.mean(0) for n, m in mods}
        finally:
            for _, m in mods:
                m.record_gates, m.last_gate = False, None

    def extra_repr(self) -> str:
        return f"attention={self.attention!r}, embed_dim={self.embed_dim}"


@register_model
def dase_seresnext101_32x4d(pretrained: bool = False, embed_dim: int = 512,
                            attention: str = "dase", reduction: int = 16) -> DASENet:
    """The paper's network: SE-ResNeXt-101 (32x4d) with DASE in stages 1-3, 512-d head.

    ``pretrained=True`` loads timm's ``legacy_seresnext101_32x4d.in1k`` by name and shape, so
    the 30 domain-aware fc2 layers and the head keep their default initialisation, as the
    official loader leaves them. Input: 3x224x224 in [0, 1], no mean/std normalisation.
    """
    trunk = se_resnet.se_resnext101_32x4d(pretrained=pretrained,
                                          attention=dase_attention(attention, reduction))
    model = DASENet(trunk, embed_dim, attention)
    model.pretrained_report = trunk.pretrained_report
    return model


@register_model
def dase_seresnet18_cpu(pretrained: bool = False, embed_dim: int = 128, width: int = 64,
                        attention: str = "dase", reduction: int = 16) -> DASENet:
    """CPU-scale DASE: SE-ResNet-18, DASE in stages 1-3, ``embed_dim`` head.

    ``width`` sets the stage widths ``width * (1, 2, 4, 8)`` (64 = ResNet-18); the SE hidden
    sizes are those widths divided by ``reduction``.
    """
    trunk = se_resnet.se_resnet18_narrow(pretrained=pretrained, width=width,
                                         attention=dase_attention(attention, reduction))
    return DASENet(trunk, embed_dim, attention)


def squared_euclidean(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``[Na, Nb]`` matrix of squared Euclidean distances (clamped at 0)."""
    a, b = a.double(), b.double()
    d = (a * a).sum(1, keepdim=True) - 2 * a @ b.T + (b * b).sum(1)
    return d.clamp_min(0)


def flip_min_distance(query: Sequence[torch.Tensor], gallery: Sequence[torch.Tensor],
                      reduce: str = "min") -> torch.Tensor:
    """Flip TTA distance (M11): ``min_{a,b} ||s^(a) - p^(b)||^2`` over the feature versions.

    ``query`` and ``gallery`` are sequences of ``[N, D]`` features (original, flipped, ...).
    ``reduce="mean"`` averages the combinations instead (an ablation).
    """
    ds = torch.stack([squared_euclidean(q, g) for q in query for g in gallery])
    if reduce == "min":
        return ds.min(0).values
    if reduce == "mean":
        return ds.mean(0)
    raise ValueError(f"reduce must be 'min' or 'mean', got {reduce!r}")


@torch.no_grad()
def embed_with_flips(model: nn.Module, images: Iterable, domain: int, *,
                     device: torch.device | str = "cpu",
                     flip: bool = True) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Embed a loader (or list) of batches with and without horizontal flip.

    ``images`` yields dict batches (``"image"``, ``"label"``) or ``(image, label)`` tuples.
    Returns ``(features, flipped_features or None, labels)`` on the CPU.
    """
    model.eval()
    feats, flipped, labels = [], [], []
    for batch in images:
        x, y = (batch["image"], batch["label"]) if isinstance(batch, dict) else batch
        x = x.to(device)
        feats.append(model(x, domain).float().cpu())
        if flip:
            flipped.append(model(torch.flip(x, dims=[3]), domain).float().cpu())
        labels.append(torch.as_tensor(y).cpu())
    return (torch.cat(feats), torch.cat(flipped) if flip else None, torch.cat(labels))
