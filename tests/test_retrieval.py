"""sbirlib.retrieval: the indexes return what exact search (a stable full sort) returns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sbirlib.evaluation import pack_bits, pairwise_distances
from sbirlib.retrieval import ExactIndex, FaissIndex, HammingIndex, build_index, hamming_distances, topk_stable


def stable_topk(d, k):
    vals, idx = torch.sort(d, dim=1, stable=True)
    return vals[:, :k], idx[:, :k]


def test_topk_stable_breaks_ties_by_index():
    d = torch.randint(0, 4, (9, 60)).float()
    for k in (1, 5, 20, 60, 100):
        v, i = topk_stable(d, k)
        rv, ri = stable_topk(d, k)
        assert torch.equal(i, ri) and torch.equal(v, rv)


@pytest.mark.parametrize("distance", ["euclidean", "sqeuclidean", "cosine"])
def test_exact_index_equals_full_sort(distance):
    g = torch.randn(300, 8, generator=torch.Generator().manual_seed(0))
    q = torch.randn(13, 8, generator=torch.Generator().manual_seed(1))
    index = ExactIndex(distance, chunk_size=4).add(g[:100]).add(g[100:].numpy())
    assert len(index) == 300 and "size=300" in repr(index)
    v, i = index.search(q, 7)
    rv, ri = stable_topk(pairwise_distances(q, g, distance), 7)
    assert torch.equal(i, ri)
    assert torch.allclose(v, rv, atol=1e-5)


def test_exact_index_ties_follow_gallery_order():
    g = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    v, i = ExactIndex().add(g).search(torch.tensor([[1.0, 0.0]]), 3)
    assert i.tolist() == [[0, 2, 1]]


def test_hamming_index_packed_and_unpacked():
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 2, (500, 64))
    q = rng.integers(0, 2, (6, 64))
    ref = pairwise_distances(q, codes, "hamming")
    assert torch.equal(hamming_distances(pack_bits(q), pack_bits(codes)).float(), ref)
    for index in (HammingIndex(chunk_size=4).add(codes), HammingIndex().add(pack_bits(codes))):
        v, i = index.search(q, 10)
        rv, ri = stable_topk(ref, 10)
        assert torch.equal(i, ri) and torch.equal(v.float(), rv)
    assert "bits=64" in repr(index)
    # the 64-bit-word popcount and the byte-table path agree (24-bit codes use the table)
    short = rng.integers(0, 2, (50, 24))
    assert torch.equal(hamming_distances(pack_bits(short[:3]), pack_bits(short)).float(),
                       pairwise_distances(short[:3], short, "hamming"))
    many = rng.integers(0, 2, (40, 128))
    for nq in (1, 4):
        assert torch.equal(hamming_distances(pack_bits(many[:nq]), pack_bits(many)).float(),
                           pairwise_distances(many[:nq], many, "hamming"))


def test_empty_index_and_unknown_kind_fail_clearly():
    with pytest.raises(RuntimeError, match="add"):
        ExactIndex().search(torch.zeros(1, 2), 1)
    with pytest.raises(ValueError, match="unknown index kind"):
        build_index("annoy")


def test_faiss_flat_is_exact():
    pytest.importorskip("faiss")
    g = torch.randn(400, 16, generator=torch.Generator().manual_seed(2))
    q = torch.randn(9, 16, generator=torch.Generator().manual_seed(3))
    for distance in ("euclidean", "cosine"):
        ev, ei = ExactIndex(distance).add(g).search(q, 10)
        fv, fi = build_index("faiss", distance).add(g).search(q, 10)
        assert torch.equal(fi, ei)
        assert torch.allclose(fv, ev, atol=1e-4)
    codes = torch.randint(0, 2, (300, 32), generator=torch.Generator().manual_seed(4))
    qc = codes[:5] ^ (torch.rand(5, 32, generator=torch.Generator().manual_seed(5)) < 0.1).long()
    hv, _ = HammingIndex().add(codes).search(qc, 8)
    fv, _ = FaissIndex("hamming").add(codes).search(qc, 8)
    assert torch.equal(fv, hv.float())  # same distances; tie order may differ


def test_faiss_ivf_recall_is_high():
    pytest.importorskip("faiss")
    g = torch.randn(2000, 8, generator=torch.Generator().manual_seed(6))
    q = g[:20] + 0.01
    index = FaissIndex("euclidean", "ivf", nlist=16, nprobe=16)
    assert not index.exact
    _, i = index.add(g).search(q, 1)
    assert (i[:, 0] == torch.arange(20)).float().mean() == 1.0
