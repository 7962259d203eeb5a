"""Distances between embeddings, shared by the losses and the chapters.

``paired_distance(a, b)`` compares row ``i`` of ``a`` with row ``i`` of ``b`` (a vector of
length ``B``); ``pairwise_distance(a, b)`` compares every row of ``a`` with every row of ``b``
(an ``[A, B]`` matrix). ``kind`` is one of

* ``"euclidean"``   -- ``||a - b||_2`` (the triplet + CE baseline, DLI-Net, FFMLN);
* ``"sqeuclidean"`` -- ``||a - b||_2^2`` (Triplet-SN);
* ``"cosine"``      -- ``1 - cos(a, b)``.

The Euclidean distance is computed with a small floor inside the square root so that the
gradient stays finite when two embeddings coincide.
"""

from __future__ import annotations

import torch

__all__ = ["DISTANCES", "paired_distance", "pairwise_distance"]

DISTANCES = ("euclidean", "sqeuclidean", "cosine")
_EPS = 1e-12


def _check(kind: str) -> None:
    if kind not in DISTANCES:
        raise ValueError(f"distance kind {kind!r} is not known; use one of {', '.join(DISTANCES)}")


def paired_distance(a: torch.Tensor, b: torch.Tensor, kind: str = "euclidean") -> torch.Tensor:
    """Distance between corresponding rows of ``a`` and ``b`` (both ``[B, D]``) -> ``[B]``."""
    _check(kind)
    if a.shape != b.shape:
        raise ValueError(f"paired_distance needs equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    if kind == "cosine":
        return 1.0 - torch.nn.functional.cosine_similarity(a, b, dim=1, eps=1e-8)
    sq = (a - b).pow(2).sum(dim=1)
    return sq if kind == "sqeuclidean" else sq.clamp_min(_EPS).sqrt()


def pairwise_distance(a: torch.Tensor, b: torch.Tensor, kind: str = "euclidean") -> torch.Tensor:
    """All distances between rows of ``a`` (``[A, D]``) and rows of ``b`` (``[B, D]``) -> ``[A, B]``."""
    _check(kind)
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"pairwise_distance needs [A, D] and [B, D], got {tuple(a.shape)} and {tuple(b.shape)}")
    if kind == "cosine":
        an = torch.nn.functional.normalize(a, dim=1, eps=1e-8)
        bn = torch.nn.functional.normalize(b, dim=1, eps=1e-8)
        return 1.0 - an @ bn.T
    # the expanded form is fast; clamp away the tiny negatives rounding produces
    sq = (a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1).unsqueeze(0) - 2.0 * a @ b.T).clamp_min(0.0)
    return sq if kind == "sqeuclidean" else sq.clamp_min(_EPS).sqrt()
