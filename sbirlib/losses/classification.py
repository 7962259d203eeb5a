"""Cross-entropy classification heads (used beside a triplet loss, or for pre-training).

:class:`ClassifierHead` is a linear layer (optionally after dropout) from an embedding to ``C``
logits; :func:`classification_loss` is the mean cross-entropy. In the category-level baseline
(:mod:`sbirlib.recipes.triplet_ce`) the head sits on the un-normalised projection ``z`` and the
loss is averaged over the sketch, positive and negative of each triplet.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ["ClassifierHead", "classification_loss", "accuracy"]


class ClassifierHead(nn.Module):
    """``Dropout(p) -> Linear(in_features, num_classes)``."""

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(x))


def classification_loss(
    logits: torch.Tensor | list[torch.Tensor],
    labels: torch.Tensor | list[torch.Tensor],
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Mean cross-entropy. Lists of logits/labels are concatenated, so every sample weighs the same."""
    if isinstance(logits, (list, tuple)):
        logits = torch.cat(list(logits))
        labels = torch.cat(list(labels))
    return F.cross_entropy(logits, labels.long(), label_smoothing=label_smoothing)


@torch.no_grad()
def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy of ``logits`` against ``labels``."""
    return (logits.argmax(dim=1) == labels).float().mean().item()
