"""sbirlib.evaluation metrics against the worked examples and independent references.

References: scikit-learn's ``average_precision_score``, torchmetrics' retrieval metrics
(where they define the same quantity) and naive per-query Python loops written from the
formulas of shared/specs/evaluation.md.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from sbirlib.evaluation import (
    average_precision,
    fg_accuracy,
    pack_bits,
    pairwise_distances,
    parse_metric,
    retrieval_metrics,
    unpack_bits,
)

# ---------------------------------------------------------------- naive references


def naive_order(d):
    """Gallery indices sorted by distance, ties by index (stable), as a Python loop would."""
    return sorted(range(len(d)), key=lambda j: (d[j], j))


def naive_ap_sorted(rel_ranked):
    hits, total = 0, 0.0
    for i, r in enumerate(rel_ranked, start=1):
        if r:
            hits += 1
            total += hits / i
    n_rel = sum(rel_ranked)
    return total / n_rel if n_rel else math.nan


def naive_ap_voc(rel_ranked, r_norm):
    prec = []
    hits = 0
    for i, r in enumerate(rel_ranked, start=1):
        hits += r
        prec.append(hits / i)
    total = 0.0
    for i, r in enumerate(rel_ranked):
        if r:
            total += max(prec[i:])
    return total / r_norm if r_norm else math.nan


def naive_credit(rel_ranked, d_ranked, k, tie_aware):
    """Precision credited to each of the first k ranked items (tie-aware: at the end of its
    block of equal distances, the block cut at k)."""
    out = []
    for i in range(k):
        end = i
        if tie_aware:
            while end + 1 < k and d_ranked[end + 1] == d_ranked[i]:
                end += 1
        out.append(sum(rel_ranked[: end + 1]) / (end + 1))
    return out


def naive_mapk(rel_ranked, k, n_rel, norm, credit=None):
    top = rel_ranked[:k]
    r_k = sum(top)
    if n_rel == 0:
        return math.nan
    if norm == "voc_capped":
        return naive_ap_voc(top, min(k, n_rel))
    s, hits = 0.0, 0
    for i, r in enumerate(top, start=1):
        if r:
            hits += 1
            s += credit[i - 1] if credit is not None else hits / i
    if norm == "retrieved":
        return s / r_k if r_k else 0.0
    if norm == "k":
        return s / k
    return s / min(k, n_rel)


def naive_pk(rel_ranked, k, n_rel, denom):
    r_k = sum(rel_ranked[:k])
    if denom == "k":
        return r_k / k
    if n_rel == 0:
        return math.nan
    m = min(k, n_rel)
    if denom == "min_k_rel":
        return r_k / m
    return sum(rel_ranked[:m]) / m


def random_problem(seed, nq=12, ng=40, dim=3, levels=3, classes=4, kind="ties"):
    """``ties``: integer embeddings, many exactly tied distances; ``dups``: continuous
    embeddings with every gallery item listed twice (ties among equal items only);
    ``continuous``: no ties."""
    rng = np.random.default_rng(seed)
    ql, gl = rng.integers(0, classes, nq), rng.integers(0, classes, ng)
    if kind == "ties":
        q = rng.integers(0, levels, (nq, dim)).astype(np.float64)
        g = rng.integers(0, levels, (ng, dim)).astype(np.float64)
    else:
        q, g = rng.normal(size=(nq, dim)), rng.normal(size=(ng, dim))
    if kind == "dups":
        g, gl = np.r_[g, g[: ng // 2]], np.r_[gl, gl[: ng // 2]]
    return q, ql, g, gl


# ---------------------------------------------------------------- worked examples (evaluation.md §6)

E1_D = np.array([[0.0, 1, 2, 3, 4]])
E1_GL = np.array([1, 0, 0, 1, 1])


@pytest.mark.parametrize("ap,expected", [("standard", 0.7), ("sklearn", 0.7), ("sorted", 0.7), ("voc", 11 / 15)])
def test_e1_map_all(ap, expected):
    res = retrieval_metrics(E1_D, [1], None, E1_GL, metrics=["map@all"], ap=ap)
    assert res["map@all"] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("norm,k4,k3", [("voc_capped", 0.5, 1 / 3), ("retrieved", 0.75, 1.0),
                                        ("k", 0.375, 1 / 3), ("min_k_total", 0.5, 1 / 3)])
def test_e1_map_at_k(norm, k4, k3):
    res = retrieval_metrics(E1_D, [1], None, E1_GL, metrics=["map@4", "map@3"], norm=norm)
    assert res["map@4"] == pytest.approx(k4, abs=1e-12)
    assert res["map@3"] == pytest.approx(k3, abs=1e-12)


@pytest.mark.parametrize("denom,expected", [("k", 0.5), ("min_k_rel_prefix", 1 / 3), ("min_k_rel", 2 / 3)])
def test_e1_precision(denom, expected):
    res = retrieval_metrics(E1_D, [1], None, E1_GL, metrics=["p@4"], denom=denom)
    assert res["p@4"] == pytest.approx(expected, abs=1e-12)


def test_e2_map200_normalisations():
    d = np.arange(300.0)[None]
    gl = np.r_[np.zeros(150), np.ones(150)].astype(int)
    hits = sum(k / (150 + k) for k in range(1, 51))
    expected = {"voc_capped": 50 * 0.25 / 150, "retrieved": hits / 50, "k": hits / 200, "min_k_total": hits / 150}
    for norm, value in expected.items():
        res = retrieval_metrics(d, [1], None, gl, metrics=["map@200"], norm=norm)
        assert res["map@200"] == pytest.approx(value, abs=1e-12), norm
    assert expected["voc_capped"] == pytest.approx(0.0833, abs=1e-4)
    assert expected["retrieved"] == pytest.approx(0.1394, abs=1e-4)
    res = retrieval_metrics(d, [1], None, gl, metrics=["map@all"])
    assert res["map@all"] == pytest.approx(0.3085, abs=1e-4)
    assert retrieval_metrics(d, [1], None, gl, metrics=["map@all"], ap="voc")["map@all"] == pytest.approx(0.5)
    for denom, value in {"k": 0.25, "min_k_rel_prefix": 0.0, "min_k_rel": 1 / 3}.items():
        res = retrieval_metrics(d, [1], None, gl, metrics=["p@200"], denom=denom)
        assert res["p@200"] == pytest.approx(value, abs=1e-12)


def test_e3_e4_ties():
    assert average_precision([-0.9, -0.5, -0.5, -0.5], [0, 1, 1, 0]) == pytest.approx(0.5)
    assert average_precision([-0.9, -0.5, -0.5], [0, 1, 1]) == pytest.approx(2 / 3)
    assert average_precision(np.zeros(5), [1, 0, 0, 1, 1]) == pytest.approx(0.6)
    # sorted: ties in gallery order -> [0, 1, 1, 0] (best) and [0, 1, 1]
    assert average_precision([-0.9, -0.5, -0.5, -0.5], [0, 1, 1, 0], ap="sorted") == pytest.approx(7 / 12)
    assert average_precision([-0.9, -0.5, -0.5, -0.5], [0, 0, 1, 1], ap="sorted") == pytest.approx(5 / 12)
    assert average_precision([-0.9, -0.5, -0.5, -0.5], [0, 1, 1, 0], ap="voc") == pytest.approx(2 / 3)
    assert average_precision([-0.9, -0.5, -0.5, -0.5], [0, 0, 1, 1], ap="voc") == pytest.approx(0.5)


def test_e5_fg_tie_rules():
    d = np.array([[0.2, 0.5, 0.5, 0.9]])
    expect = {"pessimistic": (3, 0.0), "optimistic": (2, 1.0), "stable": (3, 0.0)}
    for ties, (rank, acc2) in expect.items():
        res = fg_accuracy(d, None, [2], ks=(2,), ties=ties)
        assert res.per_query["rank"][0] == rank
        assert res["acc@2"] == acc2


def test_e6_hamming_codes_and_packed():
    q = np.array([[1, 0, 1, 0]])
    g = np.array([[1, 0, 1, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 1]])
    assert pairwise_distances(q, g, "hamming").tolist() == [[0, 1, 1, 4]]
    for qq, gg in [(q, g), (pack_bits(q), pack_bits(g)), (q.astype(bool), g.astype(bool))]:
        res = retrieval_metrics(qq, [1], gg, [0, 1, 0, 1], metrics=["map@all"], distance="hamming")
        assert res["map@all"] == pytest.approx(5 / 12)
        res = retrieval_metrics(qq, [1], gg, [0, 1, 0, 1], metrics=["map@all"], distance="hamming", ap="sorted")
        assert res["map@all"] == pytest.approx(0.5)


def test_pack_unpack_roundtrip_matches_numpy():
    codes = np.random.default_rng(0).integers(0, 2, (5, 21)).astype(np.uint8)
    packed = pack_bits(codes)
    assert np.array_equal(packed.numpy(), np.packbits(codes, axis=1))
    assert np.array_equal(unpack_bits(packed, 21).numpy(), codes)


# ---------------------------------------------------------------- independent references on random data


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("kind", ["ties", "dups", "continuous"])
def test_standard_ap_equals_sklearn_with_ties(seed, kind):
    q, ql, g, gl = random_problem(seed, kind=kind)
    res = retrieval_metrics(q, ql, g, gl, metrics=["map@all"], distance="sqeuclidean")
    d = ((q[:, None] - g[None]) ** 2).sum(-1)
    has_ties = (d[:, None, :] == d[:, :, None]).sum() > d.size
    assert has_ties == (kind != "continuous")
    for i in range(len(q)):
        rel = gl == ql[i]
        if rel.any():
            assert res.per_query["map@all"][i] == pytest.approx(average_precision_score(rel, -d[i]), abs=1e-12)
        else:
            assert math.isnan(res.per_query["map@all"][i])


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("kind", ["ties", "dups", "continuous"])
def test_all_variants_equal_naive_loops(seed, kind):
    q, ql, g, gl = random_problem(seed + 10, nq=10, ng=30, kind=kind)
    d = np.sqrt(((q[:, None] - g[None]) ** 2).sum(-1))
    names = ["map@all", "map@5", "map@12", "map@100", "p@5", "p@12", "p@100"]
    for ap in ("standard", "sorted", "voc"):
        for norm, denom in zip(("voc_capped", "retrieved", "k", "min_k_total"),
                               ("k", "min_k_rel_prefix", "min_k_rel", "k")):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                res = retrieval_metrics(q, ql, g, gl, metrics=names, ap=ap, norm=norm, denom=denom)
            for i in range(len(q)):
                order = naive_order(list(d[i]))
                rel = [int(gl[j] == ql[i]) for j in order]
                n_rel = sum(rel)
                if ap == "voc":
                    ref = {"map@all": naive_ap_voc(rel, n_rel)}
                elif ap == "sorted":
                    ref = {"map@all": naive_ap_sorted(rel)}
                else:
                    ref = {"map@all": naive_mapk(rel, len(rel), n_rel, "min_k_total",
                                                 naive_credit(rel, d[i][order], len(rel), True))}
                for k in (5, 12, 100):
                    kk = min(k, len(rel))
                    credit = naive_credit(rel, d[i][order], kk, ap == "standard")
                    ref[f"map@{k}"] = naive_mapk(rel, kk, n_rel, norm, credit)
                    ref[f"p@{k}"] = naive_pk(rel, kk, n_rel, denom)
                for name in names:
                    got = res.per_query[name][i]
                    if math.isnan(ref[name]):
                        assert math.isnan(got), (ap, norm, denom, name)
                    else:
                        assert got == pytest.approx(ref[name], abs=1e-12), (ap, norm, denom, name)
            if kind == "continuous":
                assert res.info["chunks_tie_fallback"] == 0
            elif kind == "ties":
                assert res.info["chunks_tie_fallback"] > 0


@pytest.mark.parametrize("kind", ["ties", "dups"])
def test_retrieved_norm_equals_sklearn_on_the_top_k_with_ties(kind):
    q, ql, g, gl = random_problem(3, nq=15, ng=40, kind=kind)
    d = ((q[:, None] - g[None]) ** 2).sum(-1)
    res = retrieval_metrics(q, ql, g, gl, metrics=["map@10"], distance="sqeuclidean", norm="retrieved")
    for i in range(len(q)):
        order = naive_order(list(d[i]))[:10]
        rel = gl[order] == ql[i]
        if not (gl == ql[i]).any():
            continue
        ref = average_precision_score(rel, -d[i][order]) if rel.any() else 0.0
        assert res.per_query["map@10"][i] == pytest.approx(ref, abs=1e-12)


def test_torchmetrics_agrees_without_ties():
    tm = pytest.importorskip("torchmetrics.functional.retrieval")
    rng = np.random.default_rng(5)
    q, g = rng.normal(size=(8, 6)), rng.normal(size=(50, 6))
    ql, gl = rng.integers(0, 3, 8), rng.integers(0, 3, 50)
    ql[0] = gl[0]
    res = retrieval_metrics(q, ql, g, gl, metrics=["map@all", "map@10", "p@10"], norm="retrieved")
    d = torch.cdist(torch.tensor(q), torch.tensor(g))
    for i in range(len(q)):
        score, target = (100.0 - d[i]).float(), torch.tensor(gl == ql[i])
        if not target.any():
            continue
        assert res.per_query["map@all"][i] == pytest.approx(float(tm.retrieval_average_precision(score, target)), abs=1e-5)
        assert res.per_query["map@10"][i] == pytest.approx(
            float(tm.retrieval_average_precision(score, target, top_k=10)), abs=1e-5)
        assert res.per_query["p@10"][i] == pytest.approx(float(tm.retrieval_precision(score, target, top_k=10)), abs=1e-6)


# ---------------------------------------------------------------- inputs, chunking, averaging, R = 0


def test_numpy_torch_and_chunking_give_identical_values():
    rng = np.random.default_rng(1)
    q, g = rng.normal(size=(37, 16)).astype(np.float32), rng.normal(size=(91, 16)).astype(np.float32)
    ql, gl = rng.integers(0, 5, 37), rng.integers(0, 5, 91)
    names = ("map@all", "map@20", "p@10")
    base = retrieval_metrics(q, ql, g, gl, metrics=names, chunk_size=1000)
    for args, kw in [((torch.from_numpy(q), torch.from_numpy(ql), torch.from_numpy(g), torch.from_numpy(gl)), {}),
                     ((q, ql, g, gl), {"chunk_size": 1}), ((q, ql, g, gl), {"chunk_size": 7}),
                     ((q, ql, g, gl), {"max_memory_mb": 0.01})]:
        res = retrieval_metrics(*args, metrics=names, **kw)
        assert dict(res) == dict(base)
        for name in names:
            assert np.array_equal(res.per_query[name], base.per_query[name])
    acc = [fg_accuracy(q[:30], g[:30], np.arange(30), chunk_size=c).per_query["rank"] for c in (1, 4, 100)]
    assert np.array_equal(acc[0], acc[1]) and np.array_equal(acc[0], acc[2])


def test_precomputed_matrix_equals_embeddings():
    q, ql, g, gl = random_problem(7)
    res_emb = retrieval_metrics(q, ql, g, gl, metrics=["map@all", "p@5"], distance="euclidean")
    d = pairwise_distances(q, g, "euclidean")
    res_mat = retrieval_metrics(d, ql, None, gl, metrics=["map@all", "p@5"])
    res_mat2 = retrieval_metrics(d.numpy(), ql, gallery_labels=gl, metrics=["map@all", "p@5"], distance="precomputed")
    assert dict(res_emb) == dict(res_mat) == dict(res_mat2)


def test_class_averaging_and_missing_relevant():
    d = np.array([[0.0, 1, 2], [0, 1, 2], [0, 1, 2], [0, 1, 2]])
    ql = np.array([0, 0, 1, 9])           # class 9 has no photo
    gl = np.array([0, 1, 0])
    with pytest.warns(RuntimeWarning, match="1 of 4 queries"):
        res = retrieval_metrics(d, ql, None, gl, metrics=["map@all", "p@2"], average="query")
    ap0, ap1 = (1 + 2 / 3) / 2, 1 / 2
    assert res.info["queries_without_relevant"] == 1
    assert math.isnan(res.per_query["map@all"][3])
    assert res["map@all"] == pytest.approx((ap0 + ap0 + ap1) / 3)
    assert res["p@2"] == pytest.approx((0.5 + 0.5 + 0.5 + 0.0) / 4)   # denom "k" is defined for R = 0
    with pytest.warns(RuntimeWarning):
        res_c = retrieval_metrics(d, ql, None, gl, metrics=["map@all"], average="class")
    assert res_c["map@all"] == pytest.approx((ap0 + ap1) / 2)


def test_distances_cosine_and_euclidean():
    rng = np.random.default_rng(2)
    q, g = rng.normal(size=(4, 5)), rng.normal(size=(6, 5))
    ref = np.sqrt(((q[:, None] - g[None]) ** 2).sum(-1))
    assert np.allclose(pairwise_distances(q, g, "euclidean").numpy(), ref, atol=1e-10)
    assert np.allclose(pairwise_distances(q, g, "sqeuclidean").numpy(), ref**2, atol=1e-10)
    cos = (q @ g.T) / np.linalg.norm(q, axis=1)[:, None] / np.linalg.norm(g, axis=1)[None]
    assert np.allclose(pairwise_distances(q, g, "cosine").numpy(), 1 - cos, atol=1e-10)


def test_fg_accuracy_equals_naive_loop_and_precomputed():
    rng = np.random.default_rng(4)
    q = rng.integers(0, 3, (25, 2)).astype(float)
    g = rng.integers(0, 3, (20, 2)).astype(float)
    pos = rng.integers(0, 20, 25)
    d = np.sqrt(((q[:, None] - g[None]) ** 2).sum(-1))
    for ties in ("pessimistic", "optimistic", "stable"):
        res = fg_accuracy(q, g, pos, ks=(1, 3, 10), ties=ties)
        res_d = fg_accuracy(d, None, pos, ks=(1, 3, 10), ties=ties)
        ranks = []
        for i in range(len(q)):
            if ties == "pessimistic":
                ranks.append(sum(d[i, j] <= d[i, pos[i]] for j in range(20)))
            elif ties == "optimistic":
                ranks.append(1 + sum(d[i, j] < d[i, pos[i]] for j in range(20)))
            else:
                ranks.append(naive_order(list(d[i])).index(pos[i]) + 1)
        assert res.per_query["rank"].tolist() == ranks
        assert dict(res) == dict(res_d)
        for k in (1, 3, 10):
            assert res[f"acc@{k}"] == pytest.approx(np.mean(np.array(ranks) <= k))


def test_clear_errors():
    with pytest.raises(ValueError, match="unknown metric"):
        parse_metric("ndcg@10")
    with pytest.raises(ValueError, match="distance="):
        retrieval_metrics(np.ones((2, 2)), [0, 1], np.ones((2, 2)), [0, 1], distance="manhattan")
    with pytest.raises(ValueError, match="norm="):
        retrieval_metrics(np.ones((2, 2)), [0, 1], None, [0, 1], norm="bogus")
    with pytest.raises(ValueError, match="0/1 codes"):
        retrieval_metrics(np.full((2, 4), 0.5), [0, 1], np.ones((2, 4)), [0, 1], distance="hamming")
    with pytest.raises(ValueError, match="NaN"):
        retrieval_metrics(np.array([[np.nan, 1.0]]), [0], None, [0, 1])
    with pytest.raises(ValueError, match="positives"):
        fg_accuracy(np.ones((2, 3)), None, [0, 5])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    q, ql, g, gl = random_problem(8, nq=30, ng=60)
    cpu = retrieval_metrics(q, ql, g, gl, metrics=["map@all", "map@10", "p@10"])
    gpu = retrieval_metrics(torch.tensor(q).cuda(), torch.tensor(ql).cuda(), torch.tensor(g).cuda(),
                            torch.tensor(gl).cuda(), metrics=["map@all", "map@10", "p@10"])
    for k in cpu:
        assert gpu[k] == pytest.approx(cpu[k], abs=1e-12)
    a = fg_accuracy(q[:30], g[:30], np.arange(30))
    b = fg_accuracy(torch.tensor(q[:30]).cuda(), torch.tensor(g[:30]).cuda(), torch.arange(30).cuda())
    assert dict(a) == dict(b)
