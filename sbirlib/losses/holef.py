"""HOLEF: the higher-order learnable energy function of DSSA (Song et al., ICCV 2017).

The HOLEF distance compares *every* sketch feature with *every* photo feature,

.. math::  D_W(s, p) = \\sum_{i,j} W_{ij} (s_i - p_j)^2          (D6)

with a learnable matrix ``W`` regularised towards the identity. With ``W = I`` only the
``i = j`` terms survive and ``D_I(s, p) = ||s - p||^2``. The library evaluates the
closed form (D7), two matrix products for a whole query x gallery matrix:

.. math::  D_W(s, p) = (s \\odot s)^T W 1 + 1^T W (p \\odot p) - 2 s^T W p      (D7)

``D_W`` is neither symmetric (unless ``W`` is) nor guaranteed non-negative: its first
argument is always the sketch, the second the photo.

The training loss (D8) is a triplet hinge on ``D_W`` plus the elastic regulariser
``lam * (||W - I||_1 + ||W - I||_F)`` (Frobenius norm not squared). The exact HOLEF form
follows a third-party implementation (TC-Net's ``HofelLoss``), not the paper's text; see
chapter 03 (DSSA), "Where we had to decide" (equation labels (D6)-(D9) are that chapter's).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "holef_distance",
    "holef_paired_distance",
    "holef_naive",
    "squared_euclidean_triplet_loss",
    "HOLEFDistance",
    "HOLEFLoss",
]


def holef_distance(sketch: torch.Tensor, photo: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """All-pairs HOLEF distance (D7): ``[Ns, D] x [Np, D] -> [Ns, Np]``.

    ``out[a, b] = sum_ij W[i, j] (sketch[a, i] - photo[b, j])**2``.
    """
    _check(sketch, photo, W)
    term_s = (sketch * sketch) @ W.sum(dim=1)  # [Ns]: (s.s)^T W 1
    term_p = (photo * photo) @ W.sum(dim=0)  # [Np]: 1^T W (p.p)
    cross = sketch @ W @ photo.T  # [Ns, Np]: s^T W p
    return term_s[:, None] + term_p[None, :] - 2.0 * cross


def holef_paired_distance(sketch: torch.Tensor, photo: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """Row-wise HOLEF distance (D7): ``[B, D] x [B, D] -> [B]`` with ``out[b] = D_W(s_b, p_b)``."""
    _check(sketch, photo, W)
    if sketch.shape != photo.shape:
        raise ValueError(f"paired distance needs equal shapes, got {tuple(sketch.shape)} and {tuple(photo.shape)}")
    term_s = (sketch * sketch) @ W.sum(dim=1)
    term_p = (photo * photo) @ W.sum(dim=0)
    cross = ((sketch @ W) * photo).sum(dim=1)
    return term_s + term_p - 2.0 * cross


def holef_naive(s: torch.Tensor, p: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """The literal double sum (D6) for one pair of vectors; slow, for tests and teaching."""
    diff = s[:, None] - p[None, :]  # diff[i, j] = s_i - p_j
    return (W * diff**2).sum()


def squared_euclidean_triplet_loss(
    anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, margin: float = 0.3
) -> torch.Tensor:
    """The official TF baseline loss (D9): mean of ``max(0, margin + ||a-p||^2 - ||a-n||^2)``."""
    d_pos = (anchor - positive).pow(2).sum(dim=1)
    d_neg = (anchor - negative).pow(2).sum(dim=1)
    return F.relu(margin + d_pos - d_neg).mean()


def _check(sketch: torch.Tensor, photo: torch.Tensor, W: torch.Tensor) -> None:
    if sketch.dim() != 2 or photo.dim() != 2:
        raise ValueError(
            f"HOLEF expects 2-d [N, D] embeddings, got {tuple(sketch.shape)} and {tuple(photo.shape)}"
        )
    d = W.shape[0]
    if sketch.shape[1] != d or photo.shape[1] != d:
        raise ValueError(
            f"embedding dim {sketch.shape[1]}/{photo.shape[1]} does not match W of size {tuple(W.shape)}; "
            "build HOLEFDistance(dim=<embedding dim of the model>)"
        )


class HOLEFDistance(nn.Module):
    """The learnable distance ``D_W`` with ``W`` initialised to ``I + init_std * N(0, 1)``.

    Args:
        dim: embedding dimension (``W`` is ``dim x dim``).
        init_std: standard deviation of the initial perturbation of the identity (0.05, as in TC-Net).
        diagonal: learn only the diagonal of ``W`` (a per-dimension weighting; an ablation).
        generator: seeded generator for the initial perturbation (default: torch's global RNG).

    Calling the module gives the all-pairs matrix ``[Ns, Np]``; :meth:`paired` the row-wise
    distances ``[B]``.
    """

    def __init__(
        self, dim: int, init_std: float = 0.05, diagonal: bool = False,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.dim = int(dim)
        self.diagonal = bool(diagonal)
        self.init_std = float(init_std)
        shape = (self.dim,) if diagonal else (self.dim, self.dim)
        noise = torch.randn(shape, generator=generator) * init_std
        base = torch.ones(self.dim) if diagonal else torch.eye(self.dim)
        self.weight = nn.Parameter(base + noise)

    @property
    def W(self) -> torch.Tensor:
        """The full ``dim x dim`` matrix (a diagonal matrix when ``diagonal=True``)."""
        return torch.diag(self.weight) if self.diagonal else self.weight

    def forward(self, sketch: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
        return holef_distance(sketch, photo, self.W)

    def paired(self, sketch: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
        """``D_W(sketch[b], photo[b])`` for every row ``b``."""
        return holef_paired_distance(sketch, photo, self.W)

    def regularizer(self) -> torch.Tensor:
        """The elastic penalty ``||W - I||_1 + ||W - I||_F`` (entry-wise L1; Frobenius not squared)."""
        delta = self.W - torch.eye(self.dim, device=self.weight.device, dtype=self.weight.dtype)
        return delta.abs().sum() + torch.linalg.norm(delta)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, diagonal={self.diagonal}, init_std={self.init_std}"


class HOLEFLoss(nn.Module):
    """Triplet hinge on ``D_W`` plus the elastic identity regulariser (D8).

    ``loss = mean_b max(0, margin + D_W(s_b, p+_b) - D_W(s_b, p-_b)) + lam (||W-I||_1 + ||W-I||_F)``

    The ``distance`` submodule owns ``W`` (pass an existing :class:`HOLEFDistance`, e.g. the
    one a DSSA model carries, to share it); give its parameters their own optimiser
    (Adam, lr 1e-4, betas (0.5, 0.999), as in TC-Net) and use it as the test distance.
    Calling the loss returns the total; :meth:`parts` also returns the hinge and the penalty.
    """

    def __init__(
        self, dim: int, margin: float = 0.3, lam: float = 5e-4, init_std: float = 0.05,
        diagonal: bool = False, generator: torch.Generator | None = None,
        distance: HOLEFDistance | None = None,
    ) -> None:
        super().__init__()
        self.margin = float(margin)
        self.lam = float(lam)
        if distance is not None and distance.dim != dim:
            raise ValueError(f"distance has dim {distance.dim}, the loss was built for dim {dim}")
        self.distance = distance if distance is not None else HOLEFDistance(
            dim, init_std=init_std, diagonal=diagonal, generator=generator)

    def parts(
        self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``{"loss", "hinge", "reg"}``: the total (D8) and its two terms."""
        d_pos = self.distance.paired(anchor, positive)
        d_neg = self.distance.paired(anchor, negative)
        hinge = F.relu(self.margin + d_pos - d_neg).mean()
        reg = self.distance.regularizer()
        return {"loss": hinge + self.lam * reg, "hinge": hinge, "reg": reg}

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        return self.parts(anchor, positive, negative)["loss"]

    def extra_repr(self) -> str:
        return f"margin={self.margin}, lam={self.lam}"
