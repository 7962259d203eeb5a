"""Miners: which triplets a batch-hard loss picks, as index tuples (for inspection and plots).

``hardest_triplets(dist, same)`` returns ``(anchor, positive, negative)`` index tensors: for each
anchor that has both, the farthest positive and the closest negative in ``dist``. The losses in
:mod:`sbirlib.losses.triplet` compute the same selection internally.
"""

from __future__ import annotations

import torch

__all__ = ["hardest_triplets"]


@torch.no_grad()
def hardest_triplets(dist: torch.Tensor, same: torch.Tensor, exclude_self: bool = False
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Hardest positive / negative per row of ``dist`` where ``same[i, j]`` marks positives."""
    pos_mask = same.clone()
    if exclude_self:
        pos_mask &= ~torch.eye(dist.shape[0], dist.shape[1], dtype=torch.bool, device=dist.device)
    neg_mask = ~same
    keep = pos_mask.any(1) & neg_mask.any(1)
    pos = dist.masked_fill(~pos_mask, float("-inf")).argmax(1)
    neg = dist.masked_fill(~neg_mask, float("inf")).argmin(1)
    anchors = torch.nonzero(keep).flatten()
    return anchors, pos[anchors], neg[anchors]
