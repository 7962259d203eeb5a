"""MEMS / EMS losses and the centre-learned hashing of DASE (spec dase_mems.md M5-M15)."""

from __future__ import annotations

import math

import pytest
import torch

from sbirlib.losses import mems
from sbirlib.models import dase_hashing


def naive_mems(features, labels, centres, m):
    total = 0.0
    for f, y in zip(features.tolist(), labels.tolist()):
        d = [sum((a - b) ** 2 for a, b in zip(f, c)) for c in centres.tolist()]
        logits = [-(m * m * dj if j == y else dj) for j, dj in enumerate(d)]
        top = max(logits)
        lse = top + math.log(sum(math.exp(v - top) for v in logits))
        total += lse - logits[y]
    return total / len(labels)


def test_mems_hand_computed():
    loss_fn = mems.MEMSLoss(2, 1, margin=2.0, anneal_steps=0)
    with torch.no_grad():
        loss_fn.centres.copy_(torch.tensor([[0.0], [3.0]]))
    f, y = torch.tensor([[1.0]]), torch.tensor([0])
    # d = (1, 4); the margin turns d_y = 1 into 4, so both logits are -4: loss = log 2
    torch.testing.assert_close(loss_fn(f, y), torch.tensor(math.log(2.0)))
    # with m = 1: logits (-1, -4) -> log(1 + e^-3)
    torch.testing.assert_close(loss_fn.logits(f, y, margin=1.0), torch.tensor([[-1.0, -4.0]]))


@pytest.mark.parametrize("m", [1.0, 2.0, 4.0])
def test_mems_matches_naive_loop(m):
    torch.manual_seed(0)
    loss_fn = mems.MEMSLoss(7, 5, margin=m, anneal_steps=0)
    f, y = torch.randn(11, 5) * 0.7, torch.randint(0, 7, (11,))
    want = naive_mems(f, y, loss_fn.centres.detach(), m)
    torch.testing.assert_close(loss_fn(f, y).double(), torch.tensor(want, dtype=torch.float64),
                               rtol=1e-5, atol=1e-5)


def test_margin_schedule_and_step_counter():
    assert mems.margin_schedule(0, 4.0, 100) == 1.0
    assert mems.margin_schedule(50, 4.0, 100) == 2.5
    assert mems.margin_schedule(100, 4.0, 100) == 4.0
    assert mems.margin_schedule(10_000, 4.0, 100) == 4.0
    assert mems.margin_schedule(0, 4.0, 0) == 4.0
    loss_fn = mems.MEMSLoss(3, 2, margin=4.0, anneal_steps=4)
    f, y = torch.randn(5, 2), torch.randint(0, 3, (5,))
    seen = []
    for _ in range(6):
        seen.append(loss_fn.current_margin)
        loss_fn(f, y)
    assert seen == [1.0, 1.75, 2.5, 3.25, 4.0, 4.0]
    loss_fn.eval()
    loss_fn(f, y)
    assert int(loss_fn.step) == 6  # evaluation calls do not advance the schedule
    assert "step" in loss_fn.state_dict()


def test_margin_is_multiplicative_euclidean():
    # the true class wins iff m * ||f - c_y|| < ||f - c_j||
    loss_fn = mems.MEMSLoss(2, 2, margin=3.0, anneal_steps=0)
    with torch.no_grad():
        loss_fn.centres.copy_(torch.tensor([[0.0, 0.0], [4.0, 0.0]]))
    y = torch.tensor([0])
    for x, wins in [(0.9, True), (1.1, False)]:  # boundary at ||f|| = ||f - c1|| / 3 -> x = 1
        logits = loss_fn.logits(torch.tensor([[x, 0.0]]), y)
        assert bool(logits.argmax(1) == 0) is wins


def test_centres_unit_norm_and_gradients():
    torch.manual_seed(0)
    loss_fn = mems.MEMSLoss(250, 512)
    torch.testing.assert_close(loss_fn.centres.norm(dim=1), torch.ones(250))
    f = torch.randn(44, 512, requires_grad=True)
    loss = loss_fn(f, torch.randint(0, 250, (44,)))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(f.grad).all()
    assert torch.isfinite(loss_fn.centres.grad).all() and loss_fn.centres.grad.abs().sum() > 0
    assert "margin=4.0" in repr(loss_fn)


def test_ems_matches_naive():
    torch.manual_seed(1)
    loss_fn = mems.EMSLoss(4, 3, margin=2.0)
    f, y = torch.randn(6, 3), torch.randint(0, 4, (6,))
    c = loss_fn.centres.detach()
    want = 0.0
    for fi, yi in zip(f, y):
        logits = -(fi - c).norm(dim=1)
        logits[yi] = logits[yi] * 2.0
        want += float(torch.logsumexp(logits, 0) - logits[yi])
    torch.testing.assert_close(float(loss_fn(f, y).detach()), want / 6, rtol=1e-5, atol=1e-6)


def test_centre_hash_loss_matches_loop():
    torch.manual_seed(0)
    h = torch.randn(5, 8)
    beta = torch.sign(h)
    want = sum(float(beta[i] @ beta[j]) for i in range(5) for j in range(5) if i != j) / 20
    torch.testing.assert_close(float(dase_hashing.centre_hash_loss(h)), want, rtol=1e-6,
                               atol=1e-6)
    # gradient of beta is the gradient of h scaled by 1 / |h|
    h.requires_grad_(True)
    beta = h / (h.abs().detach() + 1e-8)
    (beta.sum()).backward()
    torch.testing.assert_close(h.grad, 1 / (h.detach().abs() + 1e-8))


def test_spectral_norm_estimates_sigma_max():
    torch.manual_seed(0)
    lin = dase_hashing.SpectralNormLinear(16, 8)
    for _ in range(50):
        lin(torch.zeros(1, 16))
    want = torch.linalg.matrix_norm(lin.weight.detach(), ord=2)
    torch.testing.assert_close(lin.sigma().detach(), want, rtol=1e-4, atol=1e-5)


def test_fit_centre_hash_spreads_codes_and_hamming():
    torch.manual_seed(0)
    centres = torch.nn.functional.normalize(torch.randn(12, 32), dim=1)
    hasher, losses = dase_hashing.fit_centre_hash(centres, 16, steps=300, seed=0)
    assert losses[-1] < losses[0]
    codes = dase_hashing.binary_codes(hasher, centres)
    assert codes.dtype == torch.uint8 and set(codes.unique().tolist()) <= {0, 1}
    assert len({tuple(c) for c in codes.tolist()}) == 12  # every centre gets its own code
    dist = dase_hashing.hamming_distance(codes, codes)
    naive = torch.tensor([[float((a != b).sum()) for b in codes] for a in codes])
    torch.testing.assert_close(dist, naive)
    # flip averaging: the code of (f + f') / 2
    f2 = centres.flip(1)
    torch.testing.assert_close(dase_hashing.binary_codes(hasher, centres, f2),
                               dase_hashing.binary_codes(hasher, (centres + f2) / 2))
