"""Losses of CSCAN (Yu & Zhang, LOP 2022): triplet + intra-class, classification, quantisation.

The equation labels (C10)-(C16) are those of chapter 06 (CSCAN); (C10)-(C13) are Eqs. 9-12 of
the paper's public equation list. What comes from the paper and what is the library's
reconstruction:

* triplet + intra-class shape (C10-C12) and the cross-entropy on the classifier outputs (C13):
  the paper's public equation list;
* the quantisation loss and the total-loss form (C14-C16): equation fragments supplied with the
  project brief;
* **our decisions**: the triplet acts on the continuous codes with squared Euclidean distances and
  margin ``m = 1``; the two photo terms of (C13) and (C15) are averaged; ``alpha = 1``,
  ``beta = 0.1``; no gradient flows through the threshold ``f_q``; every per-sample term is
  averaged over the batch.

Codes are sigmoid outputs in ``(0, 1)^K``; the binariser :func:`binarize` thresholds them at 0.5.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "binarize",
    "origin_triplet_loss",
    "intra_class_loss",
    "cscan_triplet_loss",
    "classification_loss",
    "quantization_loss",
    "CSCANLoss",
]


def binarize(codes: Tensor, threshold: float = 0.5) -> Tensor:
    """f_q of (C14): 1 where ``codes >= threshold``, else 0, as a float tensor without gradient."""
    return (codes.detach() >= threshold).to(codes.dtype)


def _sq_dist(x: Tensor, y: Tensor) -> Tensor:
    """Row-wise squared Euclidean distance ``||x_i - y_i||^2`` of two ``[B, K]`` tensors."""
    return (x - y).pow(2).sum(dim=1)


def origin_triplet_loss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0) -> Tensor:
    """(C10): ``mean_i max(0, ||a_i - q+_i||^2 - ||a_i - q-_i||^2 + m)`` over the batch."""
    return F.relu(_sq_dist(anchor, positive) - _sq_dist(anchor, negative) + margin).mean()


def intra_class_loss(anchor: Tensor, positive: Tensor) -> Tensor:
    """(C11): ``mean_i ||a_i - q+_i||^2`` -- pulls a sketch code onto its same-class photo code."""
    return _sq_dist(anchor, positive).mean()


def cscan_triplet_loss(
    anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 1.0, intra: bool = True
) -> Tensor:
    """(C12): ``L_Triplet = L_OriginTri + L_Intra`` (``intra=False`` drops the intra term, an ablation)."""
    loss = origin_triplet_loss(anchor, positive, negative, margin)
    if intra:
        loss = loss + intra_class_loss(anchor, positive)
    return loss


def classification_loss(
    logits_sketch: Tensor, labels_sketch: Tensor,
    logits_pos: Tensor, labels_pos: Tensor,
    logits_neg: Tensor | None = None, labels_neg: Tensor | None = None,
) -> Tensor:
    """(C13): ``CE(C_S, y_S) + 1/2 [CE(C_I+, y+) + CE(C_I-, y-)]``, each CE averaged over the batch.

    Without a negative photo the photo term is ``CE(C_I+, y+)`` alone, i.e. the paper's
    ``CE(C_S, Y_S) + CE(C_I, Y_I)``.
    """
    loss_s = F.cross_entropy(logits_sketch, labels_sketch)
    loss_p = F.cross_entropy(logits_pos, labels_pos)
    if logits_neg is not None:
        if labels_neg is None:
            raise ValueError("classification_loss: logits_neg was given without labels_neg")
        loss_p = 0.5 * (loss_p + F.cross_entropy(logits_neg, labels_neg))
    return loss_s + loss_p


def _l1_to_binary(codes: Tensor) -> Tensor:
    """``mean_i ||x_i - f_q(x_i)||_1`` with ``f_q`` held constant."""
    return (codes - binarize(codes)).abs().sum(dim=1).mean()


def quantization_loss(anchor: Tensor, positive: Tensor, negative: Tensor | None = None) -> Tensor:
    """(C15): ``||a - f_q(a)||_1 + 1/2 [||q+ - f_q(q+)||_1 + ||q- - f_q(q-)||_1]``, batch-averaged.

    The gradient with respect to a code entry ``x`` is ``sign(x - f_q(x))``: every entry is pushed
    towards the nearer of 0 and 1. With ``K`` bits the per-sample value is at most ``K / 2`` per code.
    """
    loss = _l1_to_binary(anchor)
    photo = _l1_to_binary(positive)
    if negative is not None:
        photo = 0.5 * (photo + _l1_to_binary(negative))
    return loss + photo


class CSCANLoss(nn.Module):
    """(C16): ``L = L_Triplet + alpha * L_cls + beta * L_q``.

    Call it with the codes and logits of a triplet batch; it returns a dict with the total
    ``"loss"`` and every term (detached copies under ``"triplet"``, ``"intra"``, ``"cls"``,
    ``"quant"``) so that a trainer can log them.

    Args:
        margin: triplet margin ``m`` (decision: 1).
        alpha: weight of the classification loss (decision: 1; 0 switches it off).
        beta: weight of the quantisation loss (decision: 0.1; 0 switches it off).
        intra: keep the intra-class term of (C12) (ablation switch).
    """

    def __init__(self, margin: float = 1.0, alpha: float = 1.0, beta: float = 0.1, intra: bool = True) -> None:
        super().__init__()
        self.margin = float(margin)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.intra = bool(intra)

    def extra_repr(self) -> str:
        return f"margin={self.margin}, alpha={self.alpha}, beta={self.beta}, intra={self.intra}"

    def forward(
        self,
        code_sketch: Tensor, code_pos: Tensor, code_neg: Tensor,
        logits_sketch: Tensor, logits_pos: Tensor, logits_neg: Tensor,
        labels_sketch: Tensor, labels_pos: Tensor, labels_neg: Tensor,
    ) -> dict[str, Tensor]:
        tri = origin_triplet_loss(code_sketch, code_pos, code_neg, self.margin)
        intra = intra_class_loss(code_sketch, code_pos)
        cls = classification_loss(logits_sketch, labels_sketch, logits_pos, labels_pos, logits_neg, labels_neg)
        quant = quantization_loss(code_sketch, code_pos, code_neg)
        total = tri + (intra if self.intra else 0.0) + self.alpha * cls + self.beta * quant
        return {
            "loss": total,
            "triplet": tri.detach(),
            "intra": intra.detach(),
            "cls": cls.detach(),
            "quant": quant.detach(),
        }
