"""HOLEF distance and loss (specs/papers/dssa.md D6-D9) against naive loops and hand values."""

import torch
import pytest

from sbirlib.losses import holef


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_closed_form_matches_double_sum():
    g = _gen(1)
    d = 12
    s, p = torch.randn(5, d, generator=g), torch.randn(7, d, generator=g)
    W = torch.randn(d, d, generator=g)  # arbitrary, not symmetric
    fast = holef.holef_distance(s, p, W)
    naive = torch.stack([torch.stack([holef.holef_naive(s[a], p[b], W) for b in range(7)]) for a in range(5)])
    torch.testing.assert_close(fast, naive, rtol=1e-5, atol=1e-4)
    paired = holef.holef_paired_distance(s[:5], p[:5], W)
    torch.testing.assert_close(paired, torch.diagonal(naive[:, :5]), rtol=1e-5, atol=1e-4)


def test_naive_double_sum_by_hand():
    # s = (1, 0), p = (0, 2): (s_i - p_j)^2 = [[1, 1], [0, 4]]; W = [[1, 2], [3, 4]] -> 1 + 2 + 0 + 16
    s, p = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    W = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert holef.holef_naive(s, p, W).item() == pytest.approx(19.0)
    assert holef.holef_distance(s[None], p[None], W).item() == pytest.approx(19.0)


def test_identity_is_squared_euclidean_and_asymmetry():
    g = _gen(2)
    s, p = torch.randn(4, 6, generator=g), torch.randn(3, 6, generator=g)
    torch.testing.assert_close(holef.holef_distance(s, p, torch.eye(6)), torch.cdist(s, p) ** 2, rtol=1e-5, atol=1e-5)
    W = torch.randn(6, 6, generator=g)
    assert not torch.allclose(holef.holef_distance(s, p[:1].expand(4, 6).contiguous(), W)[:, 0],
                              holef.holef_distance(p[:1], s, W)[0])


def test_module_init_and_regularizer():
    dist = holef.HOLEFDistance(8, generator=_gen(0))
    delta = dist.W.detach() - torch.eye(8)
    assert 0.02 < delta.std().item() < 0.09  # I + 0.05 N(0,1)
    reg_naive = sum(abs(x) for x in delta.flatten().tolist()) + sum(x * x for x in delta.flatten().tolist()) ** 0.5
    assert dist.regularizer().item() == pytest.approx(reg_naive, rel=1e-5)
    again = holef.HOLEFDistance(8, generator=_gen(0))
    torch.testing.assert_close(dist.W, again.W)
    diag = holef.HOLEFDistance(8, diagonal=True, generator=_gen(0))
    assert diag.W.shape == (8, 8) and torch.count_nonzero(diag.W - torch.diag(torch.diagonal(diag.W))) == 0
    assert "dim=8" in repr(dist)


def test_loss_against_loop():
    g = _gen(3)
    loss_fn = holef.HOLEFLoss(6, margin=0.3, lam=5e-4, generator=g)
    a, pos, neg = (torch.nn.functional.normalize(torch.randn(5, 6, generator=g), dim=1) for _ in range(3))
    W = loss_fn.distance.W.detach()
    hinge = sum(max(0.0, 0.3 + holef.holef_naive(a[i], pos[i], W).item() - holef.holef_naive(a[i], neg[i], W).item())
                for i in range(5)) / 5
    delta = W - torch.eye(6)
    reg = delta.abs().sum().item() + delta.pow(2).sum().sqrt().item()
    parts = loss_fn.parts(a, pos, neg)
    assert parts["hinge"].item() == pytest.approx(hinge, rel=1e-5, abs=1e-6)
    assert parts["loss"].item() == pytest.approx(hinge + 5e-4 * reg, rel=1e-5, abs=1e-6)


def test_euclidean_triplet_loss_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    pos = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # d+ = 0, 2
    neg = torch.tensor([[0.0, 1.0], [0.0, 1.0]])  # d- = 2, 0
    # hinge: max(0, .3 + 0 - 2) = 0, max(0, .3 + 2 - 0) = 2.3 -> mean 1.15
    assert holef.squared_euclidean_triplet_loss(a, pos, neg, 0.3).item() == pytest.approx(1.15)


def test_gradients_finite_and_reach_w():
    g = _gen(4)
    loss_fn = holef.HOLEFLoss(16, generator=g)
    a, pos, neg = (torch.randn(8, 16, generator=g, requires_grad=True) for _ in range(3))
    loss_fn(a, pos, neg).backward()
    w = loss_fn.distance.weight.grad
    assert w is not None and torch.isfinite(w).all() and w.abs().sum() > 0
    assert torch.isfinite(a.grad).all()


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match="HOLEFDistance"):
        holef.holef_distance(torch.zeros(2, 4), torch.zeros(2, 5), torch.eye(4))
