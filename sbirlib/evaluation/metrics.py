"""Retrieval metrics as pure functions: mAP@all, mAP@K, P@K and fine-grained acc@K.

Every variant that SBIR codebases report under the same name is available behind an
explicit option:

* ``ap``: ``"standard"`` (alias ``"sklearn"``) is non-interpolated, **tie-aware** AP, the
  same number as scikit-learn's ``average_precision_score`` on the query's row;
  ``"sorted"`` is non-interpolated AP on one concrete ordering (ties broken by gallery
  index); ``"voc"`` is the VOC-interpolated AP of the SAKE / ZSE-SBIR lineage (also on the
  gallery-index tie order).
* ``norm`` (mAP@K): ``"voc_capped"``, ``"retrieved"``, ``"k"``, ``"min_k_total"``.
* ``denom`` (P@K): ``"k"``, ``"min_k_rel_prefix"``, ``"min_k_rel"``.
* ``average``: ``"query"`` (mean over queries, the default) or ``"class"`` (mean of the
  per-class means).
* ``ties`` (acc@K): ``"pessimistic"`` (default), ``"optimistic"``, ``"stable"``.

**Ranking rule.** The gallery is sorted by ascending distance with a *stable* sort, so
tied items keep their gallery order. Only ``ap="standard"`` looks through ties: every
relevant item of a block of tied distances is credited with the precision at the *end* of
the block (the block is cut at K for top-K metrics). The top-K cut itself takes tied
items in gallery order.

**Queries without relevant items** (R = 0) get NaN for every metric whose formula divides
by R (all AP variants, P@K with ``denom="min_k_rel_prefix"`` or ``"min_k_rel"``); they are
left out of the mean and counted in ``result.info["queries_without_relevant"]`` (with a
warning). P@K with ``denom="k"`` is well defined (0) for them and is averaged as usual.

Inputs may be NumPy arrays or torch tensors on any device; the work runs on the device of
the inputs, one chunk of queries at a time, so the full query x gallery distance matrix
never has to fit in memory.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "DISTANCES",
    "AP_VARIANTS",
    "MAPK_NORMS",
    "PK_DENOMS",
    "TIE_RULES",
    "MetricResult",
    "pairwise_distances",
    "pack_bits",
    "unpack_bits",
    "parse_metric",
    "average_precision",
    "retrieval_metrics",
    "fg_ranks",
    "fg_accuracy",
]

DISTANCES = ("euclidean", "sqeuclidean", "cosine", "hamming", "precomputed")
AP_VARIANTS = ("standard", "sorted", "voc")
_AP_ALIASES = {"standard": "standard", "sklearn": "standard", "sorted": "sorted", "voc": "voc"}
MAPK_NORMS = ("voc_capped", "retrieved", "k", "min_k_total")
PK_DENOMS = ("k", "min_k_rel_prefix", "min_k_rel")
TIE_RULES = ("pessimistic", "optimistic", "stable")

#: rough number of bytes of working memory per (query, gallery) pair in one chunk
_BYTES_PER_PAIR = 48


class MetricResult(dict):
    """A ``dict[str, float]`` of metrics that also carries how they were computed.

    ``info`` records the protocol (distance, AP variant, normalisations, tie rule,
    averaging, sizes, chunking, queries without relevant items); ``per_query`` maps each
    metric name to a NumPy array with one value per query (NaN where undefined).
    """

    def __init__(self, values: dict[str, float], info: dict[str, Any],
                 per_query: dict[str, np.ndarray]) -> None:
        super().__init__(values)
        self.info = info
        self.per_query = per_query

    def __repr__(self) -> str:
        vals = ", ".join(f"{k}={v:.4f}" for k, v in self.items())
        keys = ("distance", "ap", "ties", "average", "num_queries", "gallery_size")
        extra = ", ".join(f"{k}={self.info[k]!r}" for k in keys if k in self.info)
        return f"MetricResult({vals}; {extra})"


# --------------------------------------------------------------------------------------
# inputs and distances
# --------------------------------------------------------------------------------------
def _as_tensor(x: Any, name: str) -> Tensor:
    if isinstance(x, Tensor):
        return x.detach()
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x))
    try:
        return torch.as_tensor(np.asarray(x))
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a NumPy array or a torch tensor, got {type(x).__name__}") from err


def _as_labels(x: Any, name: str, n: int, device: torch.device) -> Tensor:
    t = _as_tensor(x, name).reshape(-1)
    if t.numel() != n:
        raise ValueError(f"{name} has {t.numel()} entries but there are {n} items")
    if t.is_floating_point():
        if not torch.equal(t, t.round()):
            raise ValueError(f"{name} must hold integer labels")
    return t.to(device=device, dtype=torch.int64)


def pack_bits(codes: Any) -> Tensor:
    """Pack {0,1} codes ``[N, L]`` into ``uint8`` bytes ``[N, ceil(L/8)]`` (big-endian, like ``np.packbits``)."""
    c = _as_tensor(codes, "codes")
    if c.dtype == torch.uint8 and c.numel() and int(c.max()) > 1:
        raise ValueError("codes look packed already (uint8 values above 1)")
    c = c.to(torch.uint8)
    if c.ndim != 2 or not bool(((c == 0) | (c == 1)).all()):
        raise ValueError("codes must be a 2-d array of 0/1 values")
    n, length = c.shape
    pad = (-length) % 8
    if pad:
        c = torch.cat([c, c.new_zeros(n, pad)], dim=1)
    weights = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8, device=c.device)
    return (c.reshape(n, -1, 8) * weights).sum(-1, dtype=torch.uint8)


def unpack_bits(packed: Tensor, length: int | None = None) -> Tensor:
    """Inverse of :func:`pack_bits`: ``uint8 [N, B]`` -> ``{0,1} uint8 [N, length or 8B]``."""
    shifts = torch.arange(7, -1, -1, device=packed.device, dtype=torch.uint8)
    bits = (packed.unsqueeze(-1) >> shifts) & 1
    bits = bits.reshape(packed.shape[0], -1)
    return bits if length is None else bits[:, :length]


def _binary_float(x: Tensor, name: str) -> Tensor:
    """Codes for Hamming distance as float {0,1}; ``uint8`` input is read as packed bits."""
    if x.dtype == torch.uint8:
        return unpack_bits(x).float()
    if x.dtype == torch.bool:
        return x.float()
    if not bool(((x == 0) | (x == 1)).all()):
        raise ValueError(
            f"distance='hamming' needs {name} as 0/1 codes (bool, int or float) or as packed "
            "bits (uint8, see sbirlib.evaluation.pack_bits); binarise the embeddings first"
        )
    return x.float()


def pairwise_distances(query: Any, gallery: Any, distance: str = "euclidean",
                       dtype: torch.dtype | None = None) -> Tensor:
    """Distances ``[Q, N]`` between the rows of ``query`` and ``gallery`` (lower = closer).

    ``euclidean``, ``sqeuclidean`` (via ``|q|^2 + |g|^2 - 2 q.g``, clamped at 0), ``cosine``
    (``1 - cos``) or ``hamming`` (number of differing bits; exact integers). Runs on the
    device of the inputs, in ``dtype`` (default: their floating dtype, float32 for integers).
    """
    q = _as_tensor(query, "query")
    g = _as_tensor(gallery, "gallery").to(q.device)
    if q.ndim != 2 or g.ndim != 2:
        raise ValueError(f"query and gallery must be 2-d [items, dim], got {tuple(q.shape)} and {tuple(g.shape)}")
    if distance == "hamming":
        qf, gf = _binary_float(q, "query"), _binary_float(g, "gallery")
        if qf.shape[1] != gf.shape[1]:
            raise ValueError(f"code lengths differ: {qf.shape[1]} vs {gf.shape[1]} bits")
        d = qf.sum(1, keepdim=True) + gf.sum(1)[None, :] - 2.0 * (qf @ gf.T)
        return d if dtype is None else d.to(dtype)
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"embedding sizes differ: query {q.shape[1]} vs gallery {g.shape[1]}")
    if dtype is None:
        dtype = torch.promote_types(q.dtype, g.dtype)
        if not dtype.is_floating_point:
            dtype = torch.float32
    q, g = q.to(dtype), g.to(dtype)
    if distance == "cosine":
        qn = torch.nn.functional.normalize(q, dim=1)
        gn = torch.nn.functional.normalize(g, dim=1)
        return 1.0 - qn @ gn.T
    if distance in ("euclidean", "sqeuclidean"):
        d2 = (q * q).sum(1, keepdim=True) + (g * g).sum(1)[None, :] - 2.0 * (q @ g.T)
        d2.clamp_(min=0.0)
        return d2.sqrt_() if distance == "euclidean" else d2
    raise ValueError(f"distance={distance!r} is not supported; choose one of {', '.join(DISTANCES)}")


class _DistanceSource:
    """Yields distance rows chunk by chunk, from embeddings or from a precomputed matrix.

    The gallery is converted, normalised and its squared norms computed once, not per chunk.
    """

    def __init__(self, query: Any, gallery: Any, distance: str, dtype: torch.dtype | None = None) -> None:
        if distance not in DISTANCES:
            raise ValueError(f"distance={distance!r} is not supported; choose one of {', '.join(DISTANCES)}")
        if gallery is None and distance != "precomputed":
            distance = "precomputed"
        self.distance = distance
        self.dtype = dtype
        q = _as_tensor(query, "query")
        self.device = q.device
        self._col_perm: Tensor | None = None
        if distance == "precomputed":
            if gallery is not None:
                raise ValueError("distance='precomputed' takes the [Q, N] distance matrix as query and gallery=None")
            if q.ndim != 2:
                raise ValueError(f"a precomputed distance matrix must be 2-d [queries, gallery], got {tuple(q.shape)}")
            self.query = q if q.is_floating_point() else q.float()
            self.gallery = None
            self.num_queries, self.gallery_size = q.shape
        else:
            g = _as_tensor(gallery, "gallery").to(self.device)
            if q.ndim != 2 or g.ndim != 2:
                raise ValueError(f"query and gallery must be 2-d [items, dim], got {tuple(q.shape)} and {tuple(g.shape)}")
            self.num_queries, self.gallery_size = q.shape[0], g.shape[0]
            if distance == "hamming":
                q, g = _binary_float(q, "query"), _binary_float(g, "gallery")
                if q.shape[1] != g.shape[1]:
                    raise ValueError(f"code lengths differ: {q.shape[1]} vs {g.shape[1]} bits")
                if dtype is not None:
                    q, g = q.to(dtype), g.to(dtype)
            else:
                if q.shape[1] != g.shape[1]:
                    raise ValueError(f"embedding sizes differ: query {q.shape[1]} vs gallery {g.shape[1]}")
                ct = dtype or torch.promote_types(q.dtype, g.dtype)
                if not ct.is_floating_point:
                    ct = torch.float32
                q, g = q.to(ct), g.to(ct)
                for name, t in (("query", q), ("gallery", g)):
                    if not bool(torch.isfinite(t).all()):
                        raise ValueError(f"the {name} embeddings contain NaN or inf values; check the model output")
                if distance == "cosine":
                    q = torch.nn.functional.normalize(q, dim=1)
                    g = torch.nn.functional.normalize(g, dim=1)
            self.query, self.gallery = q, g
            self._prepare()
        if self.gallery_size == 0:
            raise ValueError("the gallery is empty")

    def _prepare(self) -> None:
        g = self.gallery
        self._g_t = g.T.contiguous()
        self._g_sq = (g * g).sum(1)[None, :] if self.distance != "cosine" else None

    def permute_gallery(self, perm: Tensor) -> None:
        """Reorder the gallery columns once (``rows_at`` then returns permuted columns)."""
        if self.gallery is None:
            self._col_perm = perm
        else:
            self.gallery = self.gallery[perm]
            self._prepare()

    def _compute(self, q: Tensor) -> Tensor:
        prod = q @ self._g_t
        if self.distance == "cosine":
            return 1.0 - prod
        d = (q * q).sum(1, keepdim=True) + self._g_sq - 2.0 * prod
        if self.distance == "hamming":
            return d
        d.clamp_(min=0.0)
        return d.sqrt_() if self.distance == "euclidean" else d

    def _check(self, d: Tensor) -> Tensor:
        if torch.isnan(d).any():
            raise ValueError(f"the distance matrix holds {int(torch.isnan(d).sum())} NaN values; fix them first")
        return d

    def rows_at(self, idx: Tensor) -> Tensor:
        """Distance rows of the queries ``idx`` (gallery columns in permuted order, if set)."""
        idx = idx.to(self.device)
        if self.gallery is None:
            d = self.query[idx]
            return self._check(d if self._col_perm is None else d[:, self._col_perm])
        return self._compute(self.query[idx])

    def rows(self, start: int, stop: int) -> Tensor:
        """Distance rows of the queries ``start:stop``."""
        if self.gallery is None:
            return self._check(self.query[start:stop])
        return self._compute(self.query[start:stop])


def _chunk_size(chunk_size: int | None, num_queries: int, gallery_size: int, max_memory_mb: float) -> int:
    if chunk_size is not None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        return min(chunk_size, max(num_queries, 1))
    rows = int(max_memory_mb * 2**20 // (_BYTES_PER_PAIR * gallery_size))
    return max(1, min(rows, max(num_queries, 1)))


# --------------------------------------------------------------------------------------
# metric names
# --------------------------------------------------------------------------------------
_METRIC_RE = re.compile(r"^(map|p)@(all|\d+)$")


def parse_metric(name: str) -> tuple[str, int | None]:
    """``"map@all"`` -> ``("map", None)``, ``"map@200"`` -> ``("map", 200)``, ``"p@100"`` -> ``("p", 100)``."""
    m = _METRIC_RE.match(name.strip().lower())
    if not m or (m.group(1) == "p" and m.group(2) == "all") or m.group(2) == "0":
        raise ValueError(f"unknown metric {name!r}; use 'map@all', 'map@K' or 'p@K' with K >= 1")
    k = None if m.group(2) == "all" else int(m.group(2))
    return m.group(1), k


# --------------------------------------------------------------------------------------
# the ranking core (one chunk of queries)
# --------------------------------------------------------------------------------------
def _block_end(d_sorted: Tensor) -> Tensor | None:
    """For each sorted position, the last position of its block of equal distances (None: no ties)."""
    n = d_sorted.shape[1]
    same = d_sorted[:, 1:] == d_sorted[:, :-1]
    if not bool(same.any()):
        return None
    pos = torch.arange(n, device=d_sorted.device).expand_as(d_sorted)
    is_last = torch.ones_like(d_sorted, dtype=torch.bool)
    is_last[:, :-1] = ~same
    end = torch.where(is_last, pos, torch.full_like(pos, n))
    return torch.flip(torch.cummin(torch.flip(end, [1]), dim=1).values, [1])


def _chunk_metrics(d: Tensor, rel_fn, specs: list[tuple[str, str, int | None]], ap: str,
                   norm: str, denom: str) -> dict[str, Tensor]:
    """Per-query metric values for one chunk of distance rows."""
    n = d.shape[1]
    d_sorted, order = torch.sort(d, dim=1, stable=True)
    rel = rel_fn(order)  # bool [C, N] in rank order
    tp = torch.cumsum(rel, dim=1, dtype=torch.int32)
    big_r = tp[:, -1].to(torch.float64)
    no_rel = big_r == 0
    nan = torch.tensor(float("nan"), dtype=torch.float64, device=d.device)
    end = _block_end(d_sorted) if ap == "standard" else None
    pos = torch.arange(n, device=d.device)
    prec_order = tp.to(torch.float64) / (pos + 1)
    env = None
    relf = rel.to(torch.float64)

    def credited(cut: int) -> Tensor:
        """Precision credited to each position < cut under the tie rule of ``ap``."""
        if ap != "standard" or end is None:
            return prec_order[:, :cut]
        e = end[:, :cut].clamp(max=cut - 1)
        return tp.gather(1, e).to(torch.float64) / (e + 1)

    out: dict[str, Tensor] = {}
    for name, kind, k in specs:
        cut = n if k is None else min(k, n)
        if kind == "map" and k is None:
            if ap == "voc":
                if env is None:
                    env = torch.flip(torch.cummax(torch.flip(prec_order, [1]), dim=1).values, [1])
                val = (relf * env).sum(1) / big_r
            else:
                val = (relf * credited(n)).sum(1) / big_r
            out[name] = torch.where(no_rel, nan, val)
        elif kind == "map":
            top_rel = relf[:, :cut]
            r_k = tp[:, cut - 1].to(torch.float64)
            if norm == "voc_capped":
                env_k = torch.flip(torch.cummax(torch.flip(prec_order[:, :cut], [1]), dim=1).values, [1])
                val = (top_rel * env_k).sum(1) / torch.clamp(big_r, max=float(cut))
            else:
                s = (top_rel * credited(cut)).sum(1)
                if norm == "retrieved":
                    val = torch.where(r_k > 0, s / r_k.clamp(min=1), torch.zeros_like(s))
                elif norm == "k":
                    val = s / cut
                else:  # min_k_total
                    val = s / torch.clamp(big_r, max=float(cut))
            out[name] = torch.where(no_rel, nan, val)
        else:  # precision@K
            r_k = tp[:, cut - 1].to(torch.float64)
            if denom == "k":
                out[name] = r_k / cut
            elif denom == "min_k_rel":
                m = torch.clamp(big_r, max=float(cut))
                out[name] = torch.where(no_rel, nan, r_k / m.clamp(min=1))
            else:  # min_k_rel_prefix
                m = torch.clamp(big_r, max=float(cut)).to(torch.int64)
                idx = (m - 1).clamp(min=0)[:, None]
                val = tp.gather(1, idx).squeeze(1).to(torch.float64) / m.clamp(min=1)
                out[name] = torch.where(no_rel, nan, val)
    return out


def _workers(num_threads: int | None, device: torch.device) -> int:
    if device.type != "cpu":
        return 1
    n = torch.get_num_threads() if num_threads is None else int(num_threads)
    if n < 1:
        raise ValueError(f"num_threads must be >= 1, got {n}")
    return n


def _map_parallel(fn, jobs: list, workers: int):
    """``map(fn, jobs)`` in order; with several workers, in threads with torch single-threaded."""
    if workers <= 1 or len(jobs) <= 1:
        return [fn(job) for job in jobs]
    from concurrent.futures import ThreadPoolExecutor

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(fn, jobs))
    finally:
        torch.set_num_threads(previous)


def _sort_values(d: Tensor) -> Tensor:
    """Row-wise sorted values (NumPy's vectorised sort on CPU, which is much faster than torch's)."""
    if d.device.type == "cpu":
        return torch.from_numpy(np.sort(d.numpy(), axis=1))
    return torch.sort(d, dim=1).values


def _chunk_metrics_fast(d: Tensor, lo: int, hi: int, specs: list[tuple[str, str, int | None]],
                        ap: str, norm: str, denom: str) -> dict[str, Tensor] | None:
    """Per-query metrics for a chunk of queries of one class, without an argsort.

    Columns ``lo:hi`` of ``d`` are the relevant items. Only the *values* of each row are
    sorted; each relevant item's rank then comes from ``searchsorted``. Ties among relevant
    items only (e.g. duplicated photos) are handled exactly. Returns None when a relevant
    item ties with an irrelevant one and the metric depends on the order inside the block
    (the caller then uses the stable-sort path); tie-aware mAP@all never needs that.
    """
    c, n = d.shape
    r = hi - lo
    dev = d.device
    out: dict[str, Tensor] = {}
    if r == 0:
        for name, kind, k in specs:
            fill = 0.0 if (kind == "p" and denom == "k") else float("nan")
            out[name] = torch.full((c,), fill, dtype=torch.float64, device=dev)
        return out
    all_sorted = _sort_values(d)
    rel_sorted = torch.sort(d[:, lo:hi], dim=1).values
    n_lt = torch.searchsorted(all_sorted, rel_sorted)
    n_le = torch.searchsorted(all_sorted, rel_sorted, right=True)
    tp_lt = torch.searchsorted(rel_sorted, rel_sorted)
    tp_le = torch.searchsorted(rel_sorted, rel_sorted, right=True)
    # a relevant item tied with an irrelevant one: the order inside the block matters
    mixed = bool(((n_le - n_lt) != (tp_le - tp_lt)).any())
    only_standard_all = ap == "standard" and all(kind == "map" and k is None for _, kind, k in specs)
    if mixed and not only_standard_all:
        return None
    n_le, tp_le = n_le.to(torch.float64), tp_le.to(torch.float64)
    hits = torch.arange(1, r + 1, device=dev, dtype=torch.float64)
    # blocks are now all-relevant (or single items): the k-th hit sits at n_lt + (k - tp_lt)
    pos = n_lt.to(torch.float64) + hits - tp_lt.to(torch.float64)
    prec = hits / pos

    def credited(cut: int) -> Tensor:
        if ap != "standard":
            return prec
        end = n_le.clamp(max=float(cut))
        return (tp_le - (n_le - end)) / end

    env = None
    for name, kind, k in specs:
        if kind == "map" and k is None:
            if ap == "voc":
                env = torch.flip(torch.cummax(torch.flip(prec, [1]), dim=1).values, [1]) if env is None else env
                out[name] = env.mean(1)
            else:
                out[name] = (tp_le / n_le).mean(1) if ap == "standard" else prec.mean(1)
            continue
        cut = min(k, n)
        in_k = pos <= cut
        r_k = in_k.sum(1).to(torch.float64)
        m = float(min(cut, r))
        if kind == "map":
            if norm == "voc_capped":
                p_in = torch.where(in_k, prec, torch.zeros_like(prec))
                env_k = torch.flip(torch.cummax(torch.flip(p_in, [1]), dim=1).values, [1])
                out[name] = (env_k * in_k).sum(1) / m
            else:
                s = torch.where(in_k, credited(cut), torch.zeros_like(prec)).sum(1)
                if norm == "retrieved":
                    out[name] = torch.where(r_k > 0, s / r_k.clamp(min=1), torch.zeros_like(s))
                elif norm == "k":
                    out[name] = s / cut
                else:
                    out[name] = s / m
        elif denom == "k":
            out[name] = r_k / cut
        elif denom == "min_k_rel":
            out[name] = r_k / m
        else:
            out[name] = (pos <= m).sum(1).to(torch.float64) / m
    return out


def _aggregate(per_query: dict[str, np.ndarray], labels: np.ndarray | None, average: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for name, v in per_query.items():
        if average == "query":
            ok = ~np.isnan(v)
            values[name] = float(v[ok].mean()) if ok.any() else float("nan")
        else:
            means = []
            for c in np.unique(labels):
                vc = v[labels == c]
                vc = vc[~np.isnan(vc)]
                if vc.size:
                    means.append(vc.mean())
            values[name] = float(np.mean(means)) if means else float("nan")
    return values


def retrieval_metrics(
    query: Any,
    query_labels: Any,
    gallery: Any = None,
    gallery_labels: Any = None,
    metrics: Sequence[str] = ("map@all", "p@100"),
    distance: str = "euclidean",
    ap: str = "standard",
    *,
    norm: str | None = None,
    denom: str = "k",
    average: str = "query",
    chunk_size: int | None = None,
    max_memory_mb: float = 512.0,
    dtype: torch.dtype | None = torch.float64,
    num_threads: int | None = None,
    progress: bool = False,
    variant: str | None = None,
) -> MetricResult:
    """Category-level retrieval metrics: mAP@all, mAP@K and P@K, averaged over queries.

    Args:
        query: ``[Q, D]`` query embeddings, or the ``[Q, N]`` distance matrix when
            ``distance="precomputed"`` (or ``gallery`` is None); for scores where higher is
            closer pass their negation.
        query_labels: ``[Q]`` integer class of each query.
        gallery: ``[N, D]`` gallery embeddings (None with a precomputed matrix).
        gallery_labels: ``[N]`` integer class of each gallery item; relevant = same class.
        metrics: names ``"map@all"``, ``"map@K"``, ``"p@K"`` for any K >= 1 (K is capped at N).
        distance: ``"euclidean"``, ``"sqeuclidean"``, ``"cosine"``, ``"hamming"`` (0/1 codes or
            ``uint8`` packed bits) or ``"precomputed"``.
        ap: ``"standard"`` (alias ``"sklearn"``; tie-aware, non-interpolated),
            ``"sorted"`` (non-interpolated on the gallery-index tie order) or ``"voc"``
            (VOC-interpolated). ``variant=`` is accepted as an alias.
        norm: mAP@K normalisation (``"voc_capped"``, ``"retrieved"``, ``"k"``,
            ``"min_k_total"``); None means ``"voc_capped"`` for ``ap="voc"`` and
            ``"min_k_total"`` otherwise. Non-VOC norms with ``ap="voc"`` use order-based
            precision.
        denom: P@K denominator (``"k"``, ``"min_k_rel_prefix"``, ``"min_k_rel"``).
        average: ``"query"`` (mean over queries) or ``"class"`` (mean of class means).
        chunk_size: queries per chunk; None picks it from ``max_memory_mb``.
        max_memory_mb: working-memory budget per chunk when ``chunk_size`` is None.
        dtype: precision of the distances computed from embeddings (float64 by default,
            as SciPy's ``cdist`` in the reference codebases: float32 rounding would create
            spurious exact ties between items); None keeps the embeddings' dtype.
        num_threads: CPU chunks evaluated in parallel, each single-threaded (default
            ``torch.get_num_threads()``; torch's own threading is paused meanwhile, which
            keeps the many small tensor operations fast on a busy machine). GPU inputs use one.
        progress: show a ``tqdm`` progress bar over chunks.

    Returns:
        A :class:`MetricResult`: ``{"map@all": ..., "p@100": ...}`` plus ``.info`` and
        ``.per_query``.
    """
    if variant is not None:
        if ap not in ("standard", variant):
            raise ValueError(f"ap={ap!r} and variant={variant!r} disagree; pass only one of them")
        ap = variant
    if ap not in _AP_ALIASES:
        raise ValueError(f"ap={ap!r} is not supported; choose 'standard' (alias 'sklearn'), 'sorted' or 'voc'")
    ap = _AP_ALIASES[ap]
    if norm is None:
        norm = "voc_capped" if ap == "voc" else "min_k_total"
    if norm not in MAPK_NORMS:
        raise ValueError(f"norm={norm!r} is not supported; choose one of {', '.join(MAPK_NORMS)}")
    if denom not in PK_DENOMS:
        raise ValueError(f"denom={denom!r} is not supported; choose one of {', '.join(PK_DENOMS)}")
    if average not in ("query", "class"):
        raise ValueError(f"average={average!r} is not supported; choose 'query' or 'class'")
    if isinstance(metrics, str):
        metrics = (metrics,)
    specs = [(m.strip().lower(),) + parse_metric(m) for m in metrics]
    if not specs:
        raise ValueError("metrics is empty")

    src = _DistanceSource(query, gallery, distance, dtype)
    dev = src.device
    qlab = _as_labels(query_labels, "query_labels", src.num_queries, dev)
    if gallery_labels is None:
        raise ValueError("gallery_labels is required")
    glab = _as_labels(gallery_labels, "gallery_labels", src.gallery_size, dev)
    workers = _workers(num_threads, dev)
    step = _chunk_size(chunk_size, src.num_queries, src.gallery_size, max_memory_mb / workers)

    # Queries are processed class by class against a gallery permuted so that each class is
    # one contiguous block of columns; the relevant items of a chunk are then a slice.
    gperm = torch.sort(glab, stable=True).indices
    ginv = torch.empty_like(gperm)
    ginv[gperm] = torch.arange(src.gallery_size, device=dev)
    gclasses, gcounts = torch.unique_consecutive(glab[gperm], return_counts=True)
    gstart = torch.cumsum(gcounts, 0) - gcounts
    block = {int(c): (int(a), int(a + n)) for c, a, n in zip(gclasses.tolist(), gstart.tolist(), gcounts.tolist())}
    qperm = torch.sort(qlab, stable=True).indices
    qsorted = qlab[qperm]
    qclasses, qcounts = torch.unique_consecutive(qsorted, return_counts=True)
    jobs = []
    offset = 0
    for c, n in zip(qclasses.tolist(), qcounts.tolist()):
        for a in range(offset, offset + n, step):
            jobs.append((int(c), qperm[a:min(a + step, offset + n)]))
        offset += n
    src.permute_gallery(gperm)

    per_query_t = {name: torch.full((src.num_queries,), float("nan"), dtype=torch.float64) for name, _, _ in specs}
    counts = {"fast": 0, "tie_fallback": 0}

    def run(job: tuple[int, Tensor]) -> tuple[Tensor, dict[str, Tensor], bool]:
        c, qidx = job
        d = src.rows_at(qidx)
        lo, hi = block.get(c, (0, 0))
        vals = _chunk_metrics_fast(d, lo, hi, specs, ap, norm, denom)
        if vals is not None:
            return qidx, vals, True
        # ties between relevant and irrelevant items: rank on the original gallery order
        vals = _chunk_metrics(d[:, ginv], lambda order: glab[order] == c, specs, ap, norm, denom)
        return qidx, vals, False

    results = _map_parallel(run, jobs, workers)
    if progress:
        from tqdm.auto import tqdm

        results = tqdm(results, total=len(jobs), desc="evaluating", unit="chunk")
    for qidx, vals, fast in results:
        counts["fast" if fast else "tie_fallback"] += 1
        for name, v in vals.items():
            per_query_t[name][qidx.cpu()] = v.cpu().to(torch.float64)
    per_query = {name: v.numpy() for name, v in per_query_t.items()}
    qlab_np = qlab.cpu().numpy()
    has_rel = np.isin(qlab_np, glab.cpu().numpy())
    missing = int((~has_rel).sum())
    if missing:
        warnings.warn(
            f"{missing} of {src.num_queries} queries have no relevant item in the gallery; "
            "their AP is NaN and they are left out of the mean (see result.info)",
            RuntimeWarning, stacklevel=2,
        )
    values = _aggregate(per_query, qlab_np, average)
    info = {
        "distance": src.distance, "ap": ap, "norm": norm, "denom": denom, "average": average,
        "ties": "tie-aware (block end)" if ap == "standard" else "stable sort by gallery index",
        "num_queries": src.num_queries, "gallery_size": src.gallery_size,
        "queries_without_relevant": missing, "chunk_size": step,
        "chunks_fast": counts["fast"], "chunks_tie_fallback": counts["tie_fallback"], "threads": workers,
        "distance_dtype": str(dtype).replace("torch.", "") if src.gallery is not None else "as given",
        "chunk_memory_mb_estimate": round(step * src.gallery_size * _BYTES_PER_PAIR / 2**20, 1),
    }
    return MetricResult(values, info, per_query)


def average_precision(distances: Any, relevant: Any, ap: str = "standard") -> float:
    """AP of one query from its distance row ``[N]`` and boolean relevance ``[N]`` (NaN if none relevant)."""
    d = _as_tensor(distances, "distances").reshape(1, -1)
    r = _as_tensor(relevant, "relevant").reshape(1, -1).to(torch.bool).to(d.device)
    if d.shape != r.shape:
        raise ValueError("distances and relevant must have the same length")
    ap = _AP_ALIASES.get(ap, ap)
    if ap not in AP_VARIANTS:
        raise ValueError(f"ap={ap!r} is not supported; choose one of {', '.join(AP_VARIANTS)}")
    if not d.is_floating_point():
        d = d.double()
    out = _chunk_metrics(d, lambda order: r.gather(1, order), [("map@all", "map", None)], ap, "min_k_total", "k")
    return float(out["map@all"][0])


# --------------------------------------------------------------------------------------
# fine-grained acc@K
# --------------------------------------------------------------------------------------
def fg_ranks(query: Any, gallery: Any = None, positives: Any = None, distance: str = "euclidean",
             ties: str = "pessimistic", *, chunk_size: int | None = None,
             max_memory_mb: float = 512.0, dtype: torch.dtype | None = torch.float64) -> np.ndarray:
    """1-based rank of each query's true gallery item (``positives[i]``) under a tie rule.

    ``pessimistic``: #{g : d(q,g) <= d(q,p*)} (ties count against, p* included);
    ``optimistic``: 1 + #{g : d(q,g) < d(q,p*)}; ``stable``: position in a stable sort by
    gallery index.
    """
    if ties not in TIE_RULES:
        raise ValueError(f"ties={ties!r} is not supported; choose one of {', '.join(TIE_RULES)}")
    src = _DistanceSource(query, gallery, distance, dtype)
    if positives is None:
        raise ValueError("positives (the gallery index of each query's true item) is required")
    pos = _as_labels(positives, "positives", src.num_queries, src.device)
    if src.num_queries and (int(pos.min()) < 0 or int(pos.max()) >= src.gallery_size):
        raise ValueError(f"positives must be gallery indices in [0, {src.gallery_size - 1}]")
    step = _chunk_size(chunk_size, src.num_queries, src.gallery_size, max_memory_mb / 4)
    ranks = []
    gidx = torch.arange(src.gallery_size, device=src.device)
    for start in range(0, src.num_queries, step):
        stop = min(start + step, src.num_queries)
        d = src.rows(start, stop)
        p = pos[start:stop, None]
        dp = d.gather(1, p)
        less = (d < dp).sum(1)
        if ties == "pessimistic":
            r = (d <= dp).sum(1)
        elif ties == "optimistic":
            r = less + 1
        else:
            r = less + ((d == dp) & (gidx[None, :] < p)).sum(1) + 1
        ranks.append(r.cpu())
    return torch.cat(ranks).numpy() if ranks else np.zeros(0, dtype=np.int64)


def fg_accuracy(
    query: Any,
    gallery: Any = None,
    positives: Any = None,
    ks: Sequence[int] = (1, 5, 10),
    distance: str = "euclidean",
    ties: str = "pessimistic",
    *,
    chunk_size: int | None = None,
    max_memory_mb: float = 512.0,
    dtype: torch.dtype | None = torch.float64,
) -> MetricResult:
    """Fine-grained acc@K: the share of queries whose true item ranks in the top K.

    Args:
        query: ``[Q, D]`` sketch embeddings, or a ``[Q, N]`` distance matrix with
            ``gallery=None`` / ``distance="precomputed"``.
        gallery: ``[N, D]`` photo embeddings, each photo once (de-duplicate first).
        positives: ``[Q]`` gallery index of each query's true photo.
        ks: the K values; keys are ``"acc@K"``.
        distance: as in :func:`retrieval_metrics`.
        ties: ``"pessimistic"`` (default: every tied photo counts as ranked above the true
            one), ``"optimistic"`` or ``"stable"`` (gallery-index order).
        dtype: precision of distances computed from embeddings (float64 by default, so
            float32 rounding does not create ties); None keeps the embeddings' dtype.

    Returns:
        A :class:`MetricResult` ``{"acc@1": ..., ...}``; ``per_query["rank"]`` holds the
        1-based ranks and ``info`` the protocol.
    """
    ranks = fg_ranks(query, gallery, positives, distance, ties, chunk_size=chunk_size,
                     max_memory_mb=max_memory_mb, dtype=dtype)
    n = len(ranks)
    gallery_size = _gallery_size(query, gallery)
    values = {f"acc@{int(k)}": (float((ranks <= int(k)).mean()) if n else float("nan")) for k in ks}
    info = {
        "distance": "precomputed" if gallery is None else distance, "ties": ties,
        "num_queries": n, "gallery_size": gallery_size,
        "mean_rank": float(ranks.mean()) if n else math.nan,
        "median_rank": float(np.median(ranks)) if n else math.nan,
        "chance_acc@1": 1.0 / gallery_size,
    }
    return MetricResult(values, info, {"rank": ranks})


def _gallery_size(query: Any, gallery: Any) -> int:
    if gallery is None:
        return int(_as_tensor(query, "query").shape[1])
    return int(_as_tensor(gallery, "gallery").shape[0])
