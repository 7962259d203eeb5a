"""DASE's hashing tester: binary codes learned from the class centres only (M12-M15).

After training, a spectrally normalised linear map h(x) = (W / sigma_max(W)) x + b from the
embedding to k bits is fitted on the K class centres so that their (almost) sign codes are
as decorrelated as possible:

    beta_i = h(c_i) / (sg|h(c_i)| + 1e-8)                  (M12, forward value ~ sign)
    L = 1 / (K (K - 1)) * sum_{i != j} beta_i . beta_j     (M13)

Codes: b(x) = 1[h((f(x) + f(flip x)) / 2) > 0] (M14), compared by Hamming distance (M15).
The map never sees a test image, so the codes are not transductive.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

__all__ = ["SpectralNormLinear", "centre_hash_loss", "fit_centre_hash", "binary_codes",
           "hamming_distance"]


class SpectralNormLinear(nn.Module):
    """Linear map with weight W / sigma_max(W); sigma estimated by power iteration.

    In training mode every call runs one power-iteration step on the (non-trainable) vectors
    ``u``, ``v`` before normalising; in eval mode the stored estimate is used unchanged.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        lin = nn.Linear(in_features, out_features)
        self.weight = nn.Parameter(lin.weight.detach().clone())
        self.bias = nn.Parameter(lin.bias.detach().clone())
        self.register_buffer("u", F.normalize(torch.randn(out_features), dim=0))
        self.register_buffer("v", F.normalize(torch.randn(in_features), dim=0))

    def sigma(self) -> torch.Tensor:
        """Current estimate u^T W v of the largest singular value."""
        if self.training:
            with torch.no_grad():
                self.v.copy_(F.normalize(self.weight.T @ self.u, dim=0, eps=1e-12))
                self.u.copy_(F.normalize(self.weight @ self.v, dim=0, eps=1e-12))
        return self.u @ self.weight @ self.v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight / self.sigma(), self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


def centre_hash_loss(h: torch.Tensor) -> torch.Tensor:
    """M12-M13 for the ``[K, k]`` projections ``h`` of the K centres."""
    beta = h / (h.abs().detach() + 1e-8)
    k = beta.shape[0]
    gram = beta @ beta.T
    return (gram.sum() - gram.diagonal().sum()) / (k * (k - 1))


def fit_centre_hash(centres: torch.Tensor, bits: int, *, steps: int = 10_000, lr: float = 1e-3,
                    seed: int = 0, progress: bool = False) -> tuple[SpectralNormLinear, list[float]]:
    """Fit the k-bit map on the class centres (Adam; lr reset to lr(1 - t/T) every 100 steps).

    Returns the map (in eval mode) and the loss every step.
    """
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    hasher = SpectralNormLinear(centres.shape[1], bits)
    torch.random.set_rng_state(gen_state)
    centres = centres.detach().float().cpu()
    opt = torch.optim.Adam(hasher.parameters(), lr=lr)
    losses = []
    hasher.train()
    with torch.enable_grad():  # callers often evaluate under no_grad
        for t in tqdm(range(steps), desc=f"hash {bits} bits", disable=not progress):
            if t % 100 == 0:
                for group in opt.param_groups:
                    group["lr"] = lr * (1 - t / steps)
            loss = centre_hash_loss(hasher(centres))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
    return hasher.eval(), losses


@torch.no_grad()
def binary_codes(hasher: nn.Module, features: torch.Tensor,
                 flipped: torch.Tensor | None = None) -> torch.Tensor:
    """M14: ``uint8`` codes in {0, 1} of the mean of the original and flipped features."""
    f = features if flipped is None else (features + flipped) / 2
    return (hasher(f.float()) > 0).to(torch.uint8)


def hamming_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """M15: ``[Na, Nb]`` count of differing bits between {0, 1} codes."""
    a, b = a.float(), b.float()
    return a @ (1 - b).T + (1 - a) @ b.T
