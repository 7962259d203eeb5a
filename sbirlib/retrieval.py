"""Top-k search indexes for retrieval demos and large galleries.

Three interchangeable indexes with one interface (``add`` then ``search(query, k)``):

* :class:`ExactIndex` - brute force in torch (float embeddings; euclidean, sqeuclidean,
  cosine), chunked over queries, on any device;
* :class:`HammingIndex` - brute force on packed binary codes (XOR + popcount), the
  storage format of hashing methods (L/8 bytes per item);
* :class:`FaissIndex` - wraps the optional ``faiss-cpu`` package: ``"flat"`` (exact),
  ``"ivf"`` and ``"hnsw"`` (approximate) for galleries that outgrow brute force.

``search`` returns ``(distances [Q, k], indices [Q, k])`` as torch tensors on the CPU,
distances in sbirlib's units (euclidean, not squared, unless asked; Hamming as bit counts),
nearest first. :class:`ExactIndex` and :class:`HammingIndex` break ties by gallery index (the
same order as a stable sort, and as :mod:`sbirlib.evaluation`); faiss ``"flat"`` returns the
same distances but may order tied items differently, and ``"ivf"`` / ``"hnsw"`` are
approximate (``index.exact`` says which).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from sbirlib.evaluation.metrics import _as_tensor, pack_bits

__all__ = ["ExactIndex", "HammingIndex", "FaissIndex", "build_index", "topk_stable", "hamming_distances"]

_POPCOUNT = torch.tensor([bin(i).count("1") for i in range(256)], dtype=torch.uint8)


def topk_stable(d: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The ``k`` smallest entries of each row of ``d``, ties broken by column index.

    Equal to ``torch.sort(d, stable=True)[..., :k]`` without sorting whole rows.
    """
    n = d.shape[1]
    k = min(k, n)
    if k == n:
        vals, idx = torch.sort(d, dim=1, stable=True)
        return vals, idx
    kth = torch.topk(d, k, dim=1, largest=False, sorted=True).values[:, -1:]
    rows, cols = (d <= kth).nonzero(as_tuple=True)  # ordered by row, then column
    vals = d[rows, cols]
    order = torch.sort(vals, stable=True).indices
    order = order[torch.sort(rows[order], stable=True).indices]
    rows, cols, vals = rows[order], cols[order], vals[order]
    counts = torch.bincount(rows, minlength=d.shape[0])
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(rows.numel(), device=d.device) - starts[rows]
    keep = slot < k
    out_v = torch.empty(d.shape[0], k, dtype=d.dtype, device=d.device)
    out_i = torch.empty(d.shape[0], k, dtype=torch.int64, device=d.device)
    out_v[rows[keep], slot[keep]] = vals[keep]
    out_i[rows[keep], slot[keep]] = cols[keep]
    return out_v, out_i


def _popcount64(x: Tensor) -> Tensor:
    """Set bits of each int64 word (SWAR bit counting; wrap-around multiply is intended)."""
    x = x - ((x >> 1) & 0x5555555555555555)
    x = (x & 0x3333333333333333) + ((x >> 2) & 0x3333333333333333)
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0F
    return (x * 0x0101010101010101) >> 56


def hamming_distances(query_packed: Tensor, gallery_packed: Tensor) -> Tensor:
    """Bit counts of ``query XOR gallery`` for packed ``uint8`` codes: ``[Q, B] x [N, B] -> [Q, N]``.

    Codes whose byte count is a multiple of 8 are compared as 64-bit words.
    """
    nbytes = query_packed.shape[1]
    if nbytes % 8 == 0:
        q = query_packed.contiguous().view(torch.int64)
        g = gallery_packed.contiguous().view(torch.int64)
        if q.shape[1] == 1:
            return _popcount64(q ^ g.T).to(torch.int32)
        return _popcount64(q[:, None, :] ^ g[None, :, :]).sum(-1, dtype=torch.int32)
    table = _POPCOUNT.to(query_packed.device)
    x = query_packed[:, None, :] ^ gallery_packed[None, :, :]
    return table[x.long()].sum(-1, dtype=torch.int32)


class _Index:
    exact = True

    def __init__(self) -> None:
        self._chunks: list[Tensor] = []
        self._data: Tensor | None = None

    def _gallery(self) -> Tensor:
        if self._chunks:
            parts = ([self._data] if self._data is not None else []) + self._chunks
            self._data = torch.cat(parts)
            self._chunks = []
        if self._data is None:
            raise RuntimeError(f"{type(self).__name__} is empty: call add(...) first")
        return self._data

    def __len__(self) -> int:
        n = 0 if self._data is None else self._data.shape[0]
        return n + sum(c.shape[0] for c in self._chunks)


class ExactIndex(_Index):
    """Brute-force top-k search on float embeddings with torch.

    Args:
        distance: ``"euclidean"``, ``"sqeuclidean"`` or ``"cosine"``.
        device: where the gallery lives and distances are computed.
        chunk_size: queries per distance block (bounds memory to ``chunk_size x len(index)``).
    """

    def __init__(self, distance: str = "euclidean", device: str | torch.device = "cpu",
                 chunk_size: int = 256) -> None:
        super().__init__()
        if distance not in ("euclidean", "sqeuclidean", "cosine"):
            raise ValueError(f"ExactIndex supports euclidean, sqeuclidean and cosine, not {distance!r}")
        self.distance = distance
        self.device = torch.device(device)
        self.chunk_size = chunk_size
        self._g_sq: Tensor | None = None

    def add(self, emb: Any) -> "ExactIndex":
        """Append ``[N, D]`` embeddings (their ids continue from the current size)."""
        x = _as_tensor(emb, "emb").to(self.device)
        if not x.is_floating_point():
            x = x.float()
        if self.distance == "cosine":
            x = torch.nn.functional.normalize(x, dim=1)
        self._chunks.append(x)
        return self

    def _distances(self, q: Tensor, g: Tensor) -> Tensor:
        if self.distance == "cosine":
            return 1.0 - torch.nn.functional.normalize(q, dim=1) @ g.T
        if self._g_sq is None or self._g_sq.shape[1] != g.shape[0]:
            self._g_sq = (g * g).sum(1)[None, :]  # once, not per query
        d = (q * q).sum(1, keepdim=True) + self._g_sq - 2.0 * (q @ g.T)
        d.clamp_(min=0.0)
        return d.sqrt_() if self.distance == "euclidean" else d

    def search(self, query: Any, k: int = 10) -> tuple[Tensor, Tensor]:
        """``(distances, indices)`` of the ``k`` nearest gallery items per query, nearest first."""
        g = self._gallery()
        q = _as_tensor(query, "query").to(self.device, g.dtype)
        vals, idx = [], []
        for start in range(0, q.shape[0], self.chunk_size):
            d = self._distances(q[start:start + self.chunk_size], g)
            v, i = topk_stable(d, k)
            vals.append(v.cpu())
            idx.append(i.cpu())
        return torch.cat(vals), torch.cat(idx)

    def __repr__(self) -> str:
        dim = None if len(self) == 0 else self._gallery().shape[1]
        return f"ExactIndex(distance={self.distance!r}, size={len(self)}, dim={dim}, device={str(self.device)!r})"


class HammingIndex(_Index):
    """Brute-force Hamming search on packed binary codes (XOR + popcount), ties by index.

    ``add`` takes 0/1 codes ``[N, L]`` (packed for you) or already packed ``uint8`` bytes.
    """

    def __init__(self, device: str | torch.device = "cpu", chunk_size: int = 16) -> None:
        super().__init__()
        self.device = torch.device(device)
        self.chunk_size = chunk_size
        self.distance = "hamming"

    @staticmethod
    def _packed(codes: Any) -> Tensor:
        x = _as_tensor(codes, "codes")
        return x if x.dtype == torch.uint8 else pack_bits(x)

    def add(self, codes: Any) -> "HammingIndex":
        """Append codes (0/1 ``[N, L]`` or packed ``uint8 [N, L/8]``)."""
        self._chunks.append(self._packed(codes).to(self.device))
        return self

    def search(self, query: Any, k: int = 10) -> tuple[Tensor, Tensor]:
        """``(bit distances, indices)`` of the ``k`` nearest codes per query, ties by gallery index."""
        g = self._gallery()
        q = self._packed(query).to(self.device)
        if q.shape[1] != g.shape[1]:
            raise ValueError(f"query codes have {q.shape[1]} bytes, gallery codes {g.shape[1]}")
        vals, idx = [], []
        for start in range(0, q.shape[0], self.chunk_size):
            d = hamming_distances(q[start:start + self.chunk_size], g)
            v, i = topk_stable(d, k)
            vals.append(v.cpu())
            idx.append(i.cpu())
        return torch.cat(vals), torch.cat(idx)

    def __repr__(self) -> str:
        bits = None if len(self) == 0 else 8 * self._gallery().shape[1]
        return f"HammingIndex(size={len(self)}, bits={bits}, device={str(self.device)!r})"


def _import_faiss():
    try:
        import faiss
    except ImportError as err:
        raise ImportError(
            "FaissIndex needs the optional package faiss-cpu: pip install 'sbirlib[faiss]' "
            "(or pip install faiss-cpu); ExactIndex and HammingIndex work without it"
        ) from err
    return faiss


class FaissIndex:
    """A faiss index behind sbirlib's interface (needs ``faiss-cpu``).

    Args:
        distance: ``"euclidean"``, ``"sqeuclidean"``, ``"cosine"`` or ``"hamming"``.
        kind: ``"flat"`` (exact brute force), ``"ivf"`` (inverted lists, approximate; trained
            on the first ``add``) or ``"hnsw"`` (graph, approximate; float distances only).
        nlist, nprobe: IVF lists and lists visited per query.
        hnsw_m, ef_search: HNSW graph degree and search breadth.
        seed: seed of the IVF k-means (and of its training sample).
        train_size: IVF training sample drawn from the first ``add`` (default ``64 * nlist``).
    """

    def __init__(self, distance: str = "euclidean", kind: str = "flat", *, nlist: int = 1024,
                 nprobe: int = 16, hnsw_m: int = 32, ef_search: int = 64, seed: int = 0,
                 train_size: int | None = None) -> None:
        if distance not in ("euclidean", "sqeuclidean", "cosine", "hamming"):
            raise ValueError(f"unsupported distance {distance!r}")
        if kind not in ("flat", "ivf", "hnsw"):
            raise ValueError(f"kind must be 'flat', 'ivf' or 'hnsw', not {kind!r}")
        if kind == "hnsw" and distance == "hamming":
            raise ValueError("kind='hnsw' is for float embeddings; use 'flat' or 'ivf' for binary codes")
        self.faiss = _import_faiss()
        self.distance, self.kind = distance, kind
        self.nlist, self.nprobe, self.hnsw_m, self.ef_search, self.seed = nlist, nprobe, hnsw_m, ef_search, seed
        self.train_size = train_size
        self.exact = kind == "flat"
        self.index = None

    def _train_sample(self, x: np.ndarray, nlist: int) -> np.ndarray:
        size = self.train_size or 64 * nlist
        if len(x) <= size:
            return x
        rows = np.random.default_rng(self.seed).choice(len(x), size, replace=False)
        return np.ascontiguousarray(x[np.sort(rows)])

    def _prepare(self, x: Any) -> np.ndarray:
        t = _as_tensor(x, "embeddings").cpu()
        if self.distance == "hamming":
            t = t if t.dtype == torch.uint8 else pack_bits(t)
            return np.ascontiguousarray(t.numpy())
        t = t.float()
        if self.distance == "cosine":
            t = torch.nn.functional.normalize(t, dim=1)
        return np.ascontiguousarray(t.numpy())

    def _build(self, x: np.ndarray) -> None:
        faiss = self.faiss
        if self.distance == "hamming":
            bits = x.shape[1] * 8
            if self.kind == "flat":
                self.index = faiss.IndexBinaryFlat(bits)
            else:
                quant = faiss.IndexBinaryFlat(bits)
                nlist = min(self.nlist, len(x))
                self.index = faiss.IndexBinaryIVF(quant, bits, nlist)
                self.index.train(self._train_sample(x, nlist))
                self.index.nprobe = self.nprobe
            return
        dim = x.shape[1]
        metric = faiss.METRIC_INNER_PRODUCT if self.distance == "cosine" else faiss.METRIC_L2
        if self.kind == "flat":
            self.index = faiss.IndexFlat(dim, metric)
        elif self.kind == "hnsw":
            self.index = faiss.IndexHNSWFlat(dim, self.hnsw_m, metric)
            self.index.hnsw.efSearch = self.ef_search
        else:
            quant = faiss.IndexFlat(dim, metric)
            nlist = min(self.nlist, len(x))
            self.index = faiss.IndexIVFFlat(quant, dim, nlist, metric)
            self.index.cp.seed = self.seed
            self.index.cp.niter = 10
            self.index.cp.max_points_per_centroid = 64
            self.index.train(self._train_sample(x, nlist))
            self.index.nprobe = self.nprobe

    def add(self, emb: Any) -> "FaissIndex":
        """Append embeddings (IVF indexes are trained on the first batch added)."""
        x = self._prepare(emb)
        if self.index is None:
            self._build(x)
        self.index.add(x)
        return self

    def search(self, query: Any, k: int = 10) -> tuple[Tensor, Tensor]:
        """``(distances, indices)`` in sbirlib's units, nearest first."""
        if self.index is None:
            raise RuntimeError("FaissIndex is empty: call add(...) first")
        d, i = self.index.search(self._prepare(query), min(k, self.index.ntotal))
        d = torch.from_numpy(np.asarray(d)).float()
        if self.distance == "euclidean":
            d = d.clamp(min=0).sqrt()
        elif self.distance == "cosine":
            d = 1.0 - d
        return d, torch.from_numpy(np.asarray(i)).long()

    def __len__(self) -> int:
        return 0 if self.index is None else int(self.index.ntotal)

    def __repr__(self) -> str:
        return f"FaissIndex(distance={self.distance!r}, kind={self.kind!r}, size={len(self)}, exact={self.exact})"


def build_index(kind: str = "exact", distance: str = "euclidean", **kwargs: Any):
    """``"exact"`` -> :class:`ExactIndex`, ``"hamming"`` -> :class:`HammingIndex`,
    ``"faiss"`` / ``"faiss-ivf"`` / ``"faiss-hnsw"`` -> :class:`FaissIndex`."""
    if kind == "exact":
        return ExactIndex(distance, **kwargs)
    if kind == "hamming":
        return HammingIndex(**kwargs)
    if kind in ("faiss", "faiss-flat", "faiss-ivf", "faiss-hnsw"):
        sub = "flat" if kind in ("faiss", "faiss-flat") else kind.split("-")[1]
        return FaissIndex(distance, sub, **kwargs)
    raise ValueError(f"unknown index kind {kind!r}; use 'exact', 'hamming', 'faiss', 'faiss-ivf' or 'faiss-hnsw'")
