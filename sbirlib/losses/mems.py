"""MEMS: Multiplicative Euclidean Margin Softmax (Lu et al., ACM MM 2021), and SAKE's EMS.

Every class j has a learnable centre c_j. The logits are negative squared distances to the
centres and the true class's distance is multiplied by m_t^2 (M5-M8, as in the official code):

    L = -log exp(-m_t^2 d_y) / (exp(-m_t^2 d_y) + sum_{j != y} exp(-d_j)),  d_j = ||f - c_j||^2

so a correct decision needs ||f - c_y|| < ||f - c_j|| / m_t. The margin is annealed linearly
from 1 to m over ``anneal_steps`` training calls (M8).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["MEMSLoss", "EMSLoss", "margin_schedule", "squared_distances"]


def margin_schedule(step: int, margin: float, anneal_steps: int) -> float:
    """m_t = 1 + (m - 1) * clip(t / T_a, 0, 1)   (M8); ``anneal_steps <= 0`` gives m at once."""
    if anneal_steps <= 0:
        return float(margin)
    return 1.0 + (margin - 1.0) * min(max(step / anneal_steps, 0.0), 1.0)


def squared_distances(features: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """``[B, K]`` matrix of ||f_b - c_k||^2 (M5), computed by broadcasting (exact, not expanded)."""
    return (features.unsqueeze(1) - centres.unsqueeze(0)).pow(2).sum(-1)


class MEMSLoss(nn.Module):
    """MEMS with learnable class centres.

    Args:
        num_classes: K.
        dim: feature dimension (512 in the paper).
        margin: final m (paper: 4).
        anneal_steps: T_a (paper: 100,000); 0 disables annealing (m from the first step).

    ``forward(features, labels)`` returns the mean loss over the batch. In training mode every
    call advances the step counter ``step`` (a buffer, so checkpoints keep it) *after* using
    it: the first call uses m_0 = 1. Centres start as N(0, I) rows scaled to unit length.
    """

    def __init__(self, num_classes: int, dim: int, margin: float = 4.0,
                 anneal_steps: int = 100_000) -> None:
        super().__init__()
        if margin < 1:
            raise ValueError(f"the multiplicative margin must be >= 1, got {margin}")
        self.num_classes, self.dim = num_classes, dim
        self.margin, self.anneal_steps = float(margin), int(anneal_steps)
        self.centres = nn.Parameter(F.normalize(torch.randn(num_classes, dim), dim=1))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    @property
    def current_margin(self) -> float:
        """m_t at the current step."""
        return margin_schedule(int(self.step), self.margin, self.anneal_steps)

    def logits(self, features: torch.Tensor, labels: torch.Tensor | None = None,
               margin: float | None = None) -> torch.Tensor:
        """-d_j for every class, with the true class's d_y scaled by ``margin``^2 if labels given."""
        d = squared_distances(features, self.centres)
        if labels is not None:
            m = self.current_margin if margin is None else margin
            scale = torch.ones_like(d).scatter(1, labels.view(-1, 1), m * m)
            d = d * scale                                              # M6
        return -d

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        loss = F.cross_entropy(self.logits(features, labels), labels)  # M7, batch mean
        if self.training:
            self.step += 1
        return loss

    @torch.no_grad()
    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """Nearest-centre class of every feature."""
        return squared_distances(features, self.centres).argmin(1)

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, dim={self.dim}, margin={self.margin}, "
                f"anneal_steps={self.anneal_steps}, step={int(self.step)}")


class EMSLoss(nn.Module):
    """SAKE's EMS (M9-M10): logits -||f - c_j|| (not squared), true logit times m.

    Same decision rule as MEMS (m ||f - c_y|| < ||f - c_j||) but a different logit scale.
    Centres are N(0, 1), not normalised, as in SAKE. The margin is fixed (SAKE steps it by
    epoch; set ``margin`` from outside to reproduce that).
    """

    def __init__(self, num_classes: int, dim: int, margin: float = 4.0) -> None:
        super().__init__()
        self.num_classes, self.dim, self.margin = num_classes, dim, float(margin)
        self.centres = nn.Parameter(torch.randn(num_classes, dim))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logit = -squared_distances(features, self.centres).clamp_min(1e-12).sqrt()
        scale = torch.ones_like(logit).scatter(1, labels.view(-1, 1), self.margin)
        return F.cross_entropy(logit * scale, labels)

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, dim={self.dim}, margin={self.margin}"
