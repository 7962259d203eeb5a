"""Triplet losses and distances against naive Python loops."""

from __future__ import annotations

import math

import pytest
import torch

from sbirlib.losses import classification, distances, miners, triplet


def _d(a, b, kind):
    if kind == "cosine":
        return 1 - float(a @ b) / (float(a.norm()) * float(b.norm()))
    sq = float(((a - b) ** 2).sum())
    return sq if kind == "sqeuclidean" else math.sqrt(sq)


@pytest.fixture
def emb():
    g = torch.Generator().manual_seed(0)
    return torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)


@pytest.mark.parametrize("kind", distances.DISTANCES)
def test_distances_match_loop(emb, kind):
    a, b, _ = emb
    pw = distances.pairwise_distance(a, b, kind)
    for i in range(6):
        assert distances.paired_distance(a, b, kind)[i].item() == pytest.approx(_d(a[i], b[i], kind), rel=1e-5)
        for j in range(6):
            assert pw[i, j].item() == pytest.approx(_d(a[i], b[j], kind), rel=1e-4, abs=1e-5)


def test_distance_errors_and_finite_gradient():
    with pytest.raises(ValueError, match="not known"):
        distances.pairwise_distance(torch.ones(2, 2), torch.ones(2, 2), "manhattan")
    x = torch.ones(2, 3, requires_grad=True)
    distances.pairwise_distance(x, x.detach(), "euclidean").sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("kind,margin", [("sqeuclidean", 0.3), ("euclidean", 0.2)])
def test_fixed_triplet_matches_loop(emb, kind, margin):
    a, p, n = emb
    expected = sum(max(0.0, margin + _d(a[i], p[i], kind) - _d(a[i], n[i], kind)) for i in range(6)) / 6
    got = triplet.triplet_margin_loss(a, p, n, margin=margin, distance=kind)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert triplet.TripletLoss(margin, kind)(a, p, n).item() == pytest.approx(expected, rel=1e-5)
    assert triplet.triplet_margin_loss(a, p, n, margin, kind, reduction="none").shape == (6,)


def test_fixed_triplet_zero_when_negatives_far():
    a = torch.zeros(3, 2)
    assert triplet.triplet_margin_loss(a, a, a + 10, margin=0.3).item() == 0.0
    assert triplet.triplet_margin_loss(a, a + 10, a, margin=0.3).item() > 0


@pytest.mark.parametrize("normalize", ["active", "all"])
def test_in_batch_matches_loop(emb, normalize):
    a, p, _ = emb
    m = 0.5
    total = 0.0
    for i in range(6):
        hinges = [max(0.0, _d(a[i], p[i], "euclidean") - _d(a[i], p[j], "euclidean") + m)
                  for j in range(6) if j != i]
        denom = sum(h > 0 for h in hinges) + 1e-16 if normalize == "active" else 5
        total += sum(hinges) / denom
    got = triplet.in_batch_triplet_loss(a, p, margin=m, normalize=normalize)
    assert got.item() == pytest.approx(total / 6, rel=1e-5)
    dist = distances.pairwise_distance(a, p, "euclidean")
    assert triplet.in_batch_triplet_loss(dist=dist, margin=m, normalize=normalize).item() == pytest.approx(total / 6, rel=1e-5)


def test_in_batch_anchor_without_active_triplets_contributes_zero():
    dist = torch.tensor([[0.0, 5.0], [5.0, 0.0]])
    assert triplet.in_batch_triplet_loss(dist=dist, margin=0.2).item() == 0.0
    with pytest.raises(ValueError):
        triplet.in_batch_triplet_loss(dist=torch.zeros(2, 3))


def test_batch_hard_matches_loop(emb):
    x = torch.cat(emb[:2])
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1, 1, 3, 2, 2])
    m = 0.3
    vals = []
    for i in range(len(x)):
        pos = [_d(x[i], x[j], "euclidean") for j in range(len(x)) if labels[j] == labels[i] and j != i]
        neg = [_d(x[i], x[j], "euclidean") for j in range(len(x)) if labels[j] != labels[i]]
        if pos and neg:
            vals.append(max(0.0, m + max(pos) - min(neg)))
    got = triplet.batch_hard_triplet_loss(x, labels, margin=m)
    assert got.item() == pytest.approx(sum(vals) / len(vals), rel=1e-4)


def test_cross_domain_matches_loop(emb):
    q, g, _ = emb
    ql = torch.tensor([0, 1, 2, 0, 1, 5])
    gl = torch.tensor([0, 0, 1, 2, 2, 1])
    m = 0.3

    def one_way(xs, xl, ys, yl):
        vals = []
        for i in range(len(xs)):
            pos = [_d(xs[i], ys[j], "euclidean") for j in range(len(ys)) if yl[j] == xl[i]]
            neg = [_d(xs[i], ys[j], "euclidean") for j in range(len(ys)) if yl[j] != xl[i]]
            if pos and neg:
                vals.append(max(0.0, m + max(pos) - min(neg)))
        return sum(vals) / len(vals)

    fwd = one_way(q, ql, g, gl)
    assert triplet.cross_domain_triplet_loss(q, ql, g, gl, margin=m).item() == pytest.approx(fwd, rel=1e-4)
    both = 0.5 * (fwd + one_way(g, gl, q, ql))
    got = triplet.cross_domain_triplet_loss(q, ql, g, gl, margin=m, symmetric=True)
    assert got.item() == pytest.approx(both, rel=1e-4)


def test_batch_hard_without_valid_anchor_is_zero_with_grad():
    x = torch.randn(3, 4, requires_grad=True)
    loss = triplet.batch_hard_triplet_loss(x, torch.tensor([0, 1, 2]))
    loss.backward()
    assert loss.item() == 0.0


def test_miner_agrees_with_batch_hard(emb):
    x = torch.cat(emb[:2])
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1, 1, 3, 2, 2])
    dist = distances.pairwise_distance(x, x)
    a, p, n = miners.hardest_triplets(dist, labels[:, None] == labels[None], exclude_self=True)
    loss = torch.relu(0.3 + dist[a, p] - dist[a, n]).mean()
    assert loss.item() == pytest.approx(triplet.batch_hard_triplet_loss(x, labels, 0.3).item(), rel=1e-5)


def test_classification_loss_and_head():
    head = classification.ClassifierHead(5, 3, dropout=0.1)
    logits = head(torch.randn(4, 5))
    labels = torch.tensor([0, 1, 2, 0])
    ref = -torch.log_softmax(logits, 1)[torch.arange(4), labels].mean()
    assert classification.classification_loss(logits, labels).item() == pytest.approx(ref.item(), rel=1e-5)
    both = classification.classification_loss([logits[:2], logits[2:]], [labels[:2], labels[2:]])
    assert both.item() == pytest.approx(ref.item(), rel=1e-5)
    assert classification.accuracy(torch.eye(3), torch.tensor([0, 1, 0])) == pytest.approx(2 / 3)
