"""Triplet ranking losses.

All functions take embeddings (rows) and return a scalar. ``distance`` is a kind understood by
:mod:`sbirlib.losses.distances` (``"euclidean"``, ``"sqeuclidean"``, ``"cosine"``).

* :func:`triplet_margin_loss` -- fixed triplets ``(a_i, p_i, n_i)``:
  ``mean_i max(0, m + d(a_i, p_i) - d(a_i, n_i))``. Triplet-SN uses squared Euclidean
  distances and ``m = 0.3`` (with the 1/B convention; the Caffe layer divides by 2B).
* :func:`in_batch_triplet_loss` -- every other positive in the batch is a negative, as in
  DLI-Net (its official code): ``l_ij = max(0, D_ii - D_ij + m)`` for ``j != i``, each
  anchor's hinge sum divided by its number of active triplets (``normalize="active"``) or by
  ``B - 1`` (``normalize="all"``). Accepts a precomputed distance matrix.
* :func:`batch_hard_triplet_loss` -- within one labelled set, the hardest positive and hardest
  negative of each anchor (Hermans et al. 2017).
* :func:`cross_domain_triplet_loss` -- batch-hard with anchors from one domain (sketches) and
  positives/negatives from the other (photos), optionally in both directions (FFMLN's DAT,
  (F4)-(F6) in chapter 07).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from sbirlib.losses.distances import paired_distance, pairwise_distance

__all__ = [
    "triplet_margin_loss",
    "in_batch_triplet_loss",
    "batch_hard_triplet_loss",
    "cross_domain_triplet_loss",
    "TripletLoss",
    "InBatchTripletLoss",
]


def _reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return values.mean() if values.numel() else values.sum()
    if reduction == "sum":
        return values.sum()
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def triplet_margin_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    margin: float = 0.3,
    distance: str = "sqeuclidean",
    reduction: str = "mean",
) -> torch.Tensor:
    """Hinge loss on fixed triplets: ``max(0, margin + d(a, p) - d(a, n))`` per row, then reduced."""
    d_pos = paired_distance(anchor, positive, distance)
    d_neg = paired_distance(anchor, negative, distance)
    return _reduce(torch.relu(margin + d_pos - d_neg), reduction)


def in_batch_triplet_loss(
    anchor: torch.Tensor | None = None,
    positive: torch.Tensor | None = None,
    *,
    dist: torch.Tensor | None = None,
    margin: float = 0.2,
    distance: str = "euclidean",
    normalize: str = "active",
) -> torch.Tensor:
    """In-batch all-negatives triplet loss (DLI-Net's batch triplet loss).

    Either give ``anchor`` and ``positive`` (``[B, D]``, row ``i`` of each is a matching pair and
    all other rows of ``positive`` are negatives for anchor ``i``) or a square distance matrix
    ``dist`` with ``dist[i, j] = D(anchor_i, positive_j)``.

    ``normalize="active"`` divides each anchor's hinge sum by its number of non-zero hinges
    (plus ``1e-16``, so an anchor with none contributes 0), as in DLI-Net's code;
    ``"all"`` divides by ``B - 1``. The result is the mean over anchors.
    """
    if dist is None:
        if anchor is None or positive is None:
            raise ValueError("give anchor and positive embeddings, or dist=")
        dist = pairwise_distance(anchor, positive, distance)
    if dist.dim() != 2 or dist.shape[0] != dist.shape[1]:
        raise ValueError(f"dist must be square [B, B], got {tuple(dist.shape)}")
    b = dist.shape[0]
    if b < 2:
        raise ValueError("in_batch_triplet_loss needs at least two pairs in the batch")
    off_diag = ~torch.eye(b, dtype=torch.bool, device=dist.device)
    hinge = torch.relu(dist.diagonal().unsqueeze(1) - dist + margin) * off_diag
    if normalize == "active":
        n_active = (hinge > 0).sum(dim=1).to(dist.dtype)
        per_anchor = hinge.sum(dim=1) / (n_active + 1e-16)
    elif normalize == "all":
        per_anchor = hinge.sum(dim=1) / (b - 1)
    else:
        raise ValueError(f"normalize must be 'active' or 'all', got {normalize!r}")
    return per_anchor.mean()


def _hardest(dist: torch.Tensor, same: torch.Tensor, valid_pos: torch.Tensor, margin: float,
             soft: bool) -> torch.Tensor:
    """Per-anchor batch-hard hinge; anchors lacking a positive or a negative are dropped."""
    neg_mask = ~same
    inf = torch.finfo(dist.dtype).max
    hardest_pos = dist.masked_fill(~valid_pos, -inf).max(dim=1).values
    hardest_neg = dist.masked_fill(~neg_mask, inf).min(dim=1).values
    keep = valid_pos.any(dim=1) & neg_mask.any(dim=1)
    gap = hardest_pos[keep] - hardest_neg[keep]
    per_anchor = torch.nn.functional.softplus(gap) if soft else torch.relu(margin + gap)
    return per_anchor


def batch_hard_triplet_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    margin: float = 0.3,
    distance: str = "euclidean",
    soft: bool = False,
) -> torch.Tensor:
    """Batch-hard triplet loss within one set of labelled embeddings.

    For each anchor: the farthest other sample of its label and the closest sample of another
    label; ``mean max(0, m + d_pos - d_neg)`` (``soft=True``: ``softplus(d_pos - d_neg)``).
    Anchors with no other same-label sample or no other-label sample are skipped; if none is
    left the loss is 0 (connected to the graph).
    """
    dist = pairwise_distance(embeddings, embeddings, distance)
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    not_self = ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    per_anchor = _hardest(dist, same, same & not_self, margin, soft)
    return per_anchor.mean() if per_anchor.numel() else dist.sum() * 0.0


def cross_domain_triplet_loss(
    query: torch.Tensor,
    query_labels: torch.Tensor,
    gallery: torch.Tensor,
    gallery_labels: torch.Tensor,
    margin: float = 0.3,
    distance: str = "euclidean",
    symmetric: bool = False,
    soft: bool = False,
) -> torch.Tensor:
    """Cross-domain batch-hard triplet loss: query anchors, gallery positives/negatives.

    ``L = mean_i max(0, m + max_{j: y_j = y_i} d(q_i, g_j) - min_{j: y_j != y_i} d(q_i, g_j))``.
    With ``symmetric=True`` it returns ``(L(q -> g) + L(g -> q)) / 2`` (FFMLN's DAT, F6).
    """
    dist = pairwise_distance(query, gallery, distance)
    same = query_labels.unsqueeze(1) == gallery_labels.unsqueeze(0)
    per_q = _hardest(dist, same, same, margin, soft)
    loss_q = per_q.mean() if per_q.numel() else dist.sum() * 0.0
    if not symmetric:
        return loss_q
    per_g = _hardest(dist.T, same.T, same.T, margin, soft)
    loss_g = per_g.mean() if per_g.numel() else dist.sum() * 0.0
    return 0.5 * (loss_q + loss_g)


class TripletLoss(nn.Module):
    """Module form of :func:`triplet_margin_loss` (``margin``, ``distance`` fixed at construction)."""

    def __init__(self, margin: float = 0.3, distance: str = "sqeuclidean") -> None:
        super().__init__()
        self.margin, self.distance = margin, distance

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        return triplet_margin_loss(anchor, positive, negative, self.margin, self.distance)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, distance={self.distance!r}"


class InBatchTripletLoss(nn.Module):
    """Module form of :func:`in_batch_triplet_loss`."""

    def __init__(self, margin: float = 0.2, distance: str = "euclidean", normalize: str = "active") -> None:
        super().__init__()
        self.margin, self.distance, self.normalize = margin, distance, normalize

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        return in_batch_triplet_loss(anchor, positive, margin=self.margin, distance=self.distance,
                                     normalize=self.normalize)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, distance={self.distance!r}, normalize={self.normalize!r}"
