"""Evaluation speed at real test-set sizes: sbirlib's evaluator vs a per-query reference.

Not a test (nothing here is timed in CI). On random embeddings of the size of a real test
set (default: Sketchy-Extended SAKE-25, 15,229 queries x 17,101 gallery items, 512-d, 25
classes; shared/specs/evaluation.md section 7) it

1. runs ``sbirlib.evaluation.retrieval_metrics`` (mAP@all + P@100) from the embeddings;
2. runs a straightforward reference: the full distance matrix in NumPy, then per query
   ``argsort``, AP and P@100 in NumPy (vectorised within each query);
3. runs the reference as the SBIR codebases actually write it (the evaluation helpers of
   SAKE's ``utils.py``: ``scipy.spatial.distance.cdist``, then scikit-learn's
   ``average_precision_score`` once per query, spread over the cores with joblib). It is slow, so by default it is timed on a sample of queries and the time
   scaled to the whole query set (``--codebase-sample 0`` runs every query);
4. checks that they agree to 1e-6 and prints times, the speed ratios and peak memory
   (resident-set growth sampled every 2 ms), also for a run with a small memory budget;
5. prints per-query top-10 latency of the exact, Hamming (64-bit) and faiss indexes of
   ``sbirlib.retrieval`` at 100k and 1M gallery items.

Usage::

    python benchmarks/eval_speed.py                 # everything (about 5-10 min on 2 cores)
    python benchmarks/eval_speed.py --quick         # 2,000 x 3,000 and 10k/100k indexes
    python benchmarks/eval_speed.py --skip-index --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

PROTOCOLS = {  # queries, gallery, classes (evaluation.md section 7)
    "sake25": (15229, 17101, 25),
    "sempcyc25": (14421, 14626, 25),
    "tuberlin-sake30": (2400, 27989, 30),
    "quick": (2000, 3000, 25),
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--protocol", default="sake25", choices=sorted(PROTOCOLS))
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke check of the script")
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--threads", type=int, default=2, help="CPU threads for torch, BLAS and faiss")
    p.add_argument("--max-memory-mb", type=float, default=512.0, help="sbirlib's working-memory budget")
    p.add_argument("--short-memory-mb", type=float, default=64.0, help="budget of the memory-short run")
    p.add_argument("--skip-eval", action="store_true", help="only the index latencies")
    p.add_argument("--skip-reference", action="store_true")
    p.add_argument("--skip-index", action="store_true")
    p.add_argument("--codebase-sample", type=int, default=1000,
                   help="queries timed for the cdist + scikit-learn reference (0: all of them)")
    p.add_argument("--index-sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default="", help="also write the numbers to this file")
    return p.parse_args()


ARGS = parse_args()
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(ARGS.threads)

import numpy as np  # noqa: E402  (thread settings must come first)
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sbirlib.evaluation import retrieval_metrics  # noqa: E402
from sbirlib.retrieval import ExactIndex, FaissIndex, HammingIndex  # noqa: E402

torch.set_num_threads(ARGS.threads)


class PeakRSS:
    """Peak growth of the resident set size while the block runs (sampled every 2 ms)."""

    def __enter__(self) -> "PeakRSS":
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.base = self._rss()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        self.t0, self.c0 = time.perf_counter(), os.times()
        return self

    def _rss(self) -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * self.page

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.002)

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.t0
        c1 = os.times()
        self.cpu = (c1.user - self.c0.user) + (c1.system - self.c0.system)
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())
        self.peak_mb = (self.peak - self.base) / 2**20


def make_embeddings(nq: int, ng: int, dim: int, classes: int, seed: int):
    """L2-normalised embeddings around random class centres, so that mAP is not at chance."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, dim, generator=g)
    ql = torch.randint(0, classes, (nq,), generator=g)
    gl = torch.randint(0, classes, (ng,), generator=g)
    q = torch.nn.functional.normalize(0.25 * centres[ql] + torch.randn(nq, dim, generator=g), dim=1)
    gal = torch.nn.functional.normalize(0.25 * centres[gl] + torch.randn(ng, dim, generator=g), dim=1)
    return q, ql, gal, gl


def reference(q: np.ndarray, ql: np.ndarray, g: np.ndarray, gl: np.ndarray, k: int = 100):
    """Full distance matrix, then per query: argsort, AP (non-interpolated) and P@k in NumPy.

    Distances in float64, as SciPy's ``cdist`` gives the reference codebases.
    """
    t0 = time.perf_counter()
    q, g = q.astype(np.float64), g.astype(np.float64)
    d2 = (q * q).sum(1)[:, None] + (g * g).sum(1)[None, :] - 2.0 * (q @ g.T)
    dist = np.sqrt(np.maximum(d2, 0.0))
    t_matrix = time.perf_counter() - t0
    aps, precs = np.empty(len(q)), np.empty(len(q))
    for i in range(len(q)):
        order = np.argsort(dist[i], kind="stable")
        rel = gl[order] == ql[i]
        hits = np.flatnonzero(rel)
        aps[i] = (np.arange(1, len(hits) + 1) / (hits + 1)).mean() if len(hits) else np.nan
        precs[i] = rel[:k].mean()
    return aps, precs, t_matrix, dist


def codebase_reference(q: np.ndarray, ql: np.ndarray, g: np.ndarray, gl: np.ndarray, k: int = 100):
    """SciPy ``cdist``, then per query scikit-learn AP and an ``argsort`` for P@k, in joblib workers (SAKE style)."""
    from joblib import Parallel, delayed
    from scipy.spatial.distance import cdist
    from sklearn.metrics import average_precision_score

    def one(row: np.ndarray, rel: np.ndarray) -> tuple[float, float]:
        ap = average_precision_score(rel, -row) if rel.any() else np.nan
        return ap, rel[np.argsort(row, kind="stable")[:k]].mean()

    dist = cdist(q, g, metric="euclidean")
    res = Parallel(n_jobs=ARGS.threads)(delayed(one)(dist[i], gl == ql[i]) for i in range(len(q)))
    aps, precs = (np.array(v, dtype=np.float64) for v in zip(*res))
    return aps, precs


def index_latency(size: int, dim: int, seed: int, n_queries: int = 20) -> list[dict]:
    """Median single-query top-10 latency of each index at one gallery size."""
    rows = []
    g = torch.Generator().manual_seed(seed)
    # clustered like real embeddings (1,000 "classes"), so an IVF index has structure to use
    centres = torch.randn(1000, dim, generator=g)
    emb = torch.empty(size, dim)
    for a in range(0, size, 100_000):
        b = min(a + 100_000, size)
        lab = torch.randint(0, 1000, (b - a,), generator=g)
        emb[a:b] = torch.nn.functional.normalize(centres[lab] + torch.randn(b - a, dim, generator=g), dim=1)
    queries = emb[:n_queries] + 0.01 * torch.randn(n_queries, dim, generator=g)
    codes = torch.randint(0, 2, (size, 64), generator=g, dtype=torch.uint8)
    qcodes = codes[:n_queries] ^ (torch.rand(n_queries, 64, generator=g) < 0.1).to(torch.uint8)
    try:
        import faiss

        faiss.omp_set_num_threads(ARGS.threads)
        have_faiss = True
    except ImportError:
        have_faiss = False

    def timed(name: str, build, q, exact_ids=None, note=""):
        t0 = time.perf_counter()
        index = build()
        t_build = time.perf_counter() - t0
        index.search(q[:1], 10)  # warm-up
        lat = []
        ids = []
        for i in range(len(q)):
            t0 = time.perf_counter()
            _, idx = index.search(q[i:i + 1], 10)
            lat.append(time.perf_counter() - t0)
            ids.append(idx)
        ids = torch.cat(ids)
        recall = None
        if exact_ids is not None:
            recall = float(np.mean([len(set(a.tolist()) & set(b.tolist())) / 10 for a, b in zip(ids, exact_ids)]))
        row = {"index": name, "gallery": size, "build_s": round(t_build, 2),
               "latency_ms_median": round(1e3 * float(np.median(lat)), 2),
               "recall@10_vs_exact": recall, "note": note}
        rows.append(row)
        print(f"  {name:<22} gallery {size:>9,}  build {t_build:7.2f} s  top-10 latency "
              f"{row['latency_ms_median']:8.2f} ms/query" + (f"  recall@10 {recall:.3f}" if recall is not None else ""))
        return ids

    exact_ids = timed("exact (torch)", lambda: ExactIndex("euclidean").add(emb), queries)
    ham_ids = timed("hamming 64-bit (torch)", lambda: HammingIndex().add(codes), qcodes)
    if have_faiss:
        timed("faiss flat (exact)", lambda: FaissIndex("euclidean", "flat").add(emb), queries, exact_ids)
        nlist = max(16, int(np.sqrt(size)))
        timed(f"faiss ivf{nlist} nprobe16", lambda: FaissIndex("euclidean", "ivf", nlist=nlist, nprobe=16).add(emb),
              queries, exact_ids, note="approximate")
        timed("faiss binary flat 64b", lambda: FaissIndex("hamming", "flat").add(codes), qcodes)
    else:
        print("  faiss not installed: pip install faiss-cpu to include it")
    del ham_ids
    return rows


def main() -> None:
    protocol = "quick" if ARGS.quick else ARGS.protocol
    nq, ng, classes = PROTOCOLS[protocol]
    index_sizes = [10_000, 100_000] if ARGS.quick else ARGS.index_sizes
    print(f"eval_speed: {protocol} = {nq:,} queries x {ng:,} gallery, {ARGS.dim}-d, {classes} classes; "
          f"{ARGS.threads} threads; torch {torch.__version__}, numpy {np.__version__}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"load average {os.getloadavg()[0]:.1f}")
    out: dict = {"protocol": protocol, "queries": nq, "gallery": ng, "dim": ARGS.dim, "classes": classes,
                 "threads": ARGS.threads, "torch": torch.__version__, "numpy": np.__version__,
                 "cpus_visible": os.cpu_count(), "load_average_start": os.getloadavg()[0]}
    if not ARGS.skip_eval:
        evaluate(nq, ng, classes, out)
    if not ARGS.skip_index:
        print("indexes: single-query top-10 search, median of 20 queries (512-d floats, 64-bit codes)")
        out["indexes"] = []
        for size in index_sizes:
            out["indexes"] += index_latency(size, ARGS.dim, ARGS.seed)
    out["load_average_end"] = os.getloadavg()[0]
    print(f"load average at the end: {out['load_average_end']:.1f}")
    if ARGS.json:
        Path(ARGS.json).write_text(json.dumps(out, indent=2, default=float) + "\n")


def evaluate(nq: int, ng: int, classes: int, out: dict) -> None:
    """sbirlib vs the per-query reference on one protocol's sizes."""
    q, ql, g, gl = make_embeddings(nq, ng, ARGS.dim, classes, ARGS.seed)
    metrics = ("map@all", "p@100")

    with PeakRSS() as m_ours:
        ours = retrieval_metrics(q, ql, g, gl, metrics=metrics, max_memory_mb=ARGS.max_memory_mb)
    print(f"sbirlib   mAP@all {ours['map@all']:.6f}  P@100 {ours['p@100']:.6f}  "
          f"wall {m_ours.wall:7.2f} s  cpu {m_ours.cpu:7.2f} s  peak +{m_ours.peak_mb:7.0f} MB "
          f"(chunk {ours.info['chunk_size']} queries, budget {ARGS.max_memory_mb:.0f} MB, "
          f"tie fallbacks {ours.info['chunks_tie_fallback']})")
    out["sbirlib"] = {"map@all": ours["map@all"], "p@100": ours["p@100"], "wall_s": m_ours.wall,
                      "cpu_s": m_ours.cpu, "peak_mb": m_ours.peak_mb, "chunk": ours.info["chunk_size"]}

    with PeakRSS() as m_short:
        short = retrieval_metrics(q, ql, g, gl, metrics=metrics, max_memory_mb=ARGS.short_memory_mb)
    same = all(np.array_equal(short.per_query[k], ours.per_query[k], equal_nan=True) for k in metrics)
    print(f"sbirlib   (budget {ARGS.short_memory_mb:.0f} MB) wall {m_short.wall:7.2f} s  cpu {m_short.cpu:7.2f} s  "
          f"peak +{m_short.peak_mb:7.0f} MB  chunk {short.info['chunk_size']}  identical per-query values: {same}")
    out["sbirlib_short_memory"] = {"budget_mb": ARGS.short_memory_mb, "wall_s": m_short.wall, "cpu_s": m_short.cpu,
                                   "peak_mb": m_short.peak_mb, "identical": same}
    dense_mb = nq * ng * 4 / 2**20
    print(f"(a dense float32 distance matrix alone is {dense_mb:,.0f} MB)")

    if not ARGS.skip_reference:
        qn, gn, qln, gln = q.numpy(), g.numpy(), ql.numpy(), gl.numpy()
        with PeakRSS() as m_ref:
            ref_ap, ref_p, t_matrix, dist = reference(qn, qln, gn, gln)
        ref_map, ref_p100 = float(np.nanmean(ref_ap)), float(np.mean(ref_p))
        print(f"reference mAP@all {ref_map:.6f}  P@100 {ref_p100:.6f}  wall {m_ref.wall:7.2f} s "
              f"(matrix {t_matrix:.2f} s, per-query loop {m_ref.wall - t_matrix:.2f} s)  cpu {m_ref.cpu:7.2f} s  "
              f"peak +{m_ref.peak_mb:7.0f} MB")
        with PeakRSS() as m_pre:
            pre = retrieval_metrics(dist, ql, None, gl, metrics=metrics, max_memory_mb=ARGS.max_memory_mb)
        diff_map = abs(ours["map@all"] - ref_map)
        diff_p = abs(ours["p@100"] - ref_p100)
        diff_q = float(np.nanmax(np.abs(ours.per_query["map@all"] - ref_ap)))
        diff_pre = max(abs(pre["map@all"] - ref_map), abs(pre["p@100"] - ref_p100),
                       float(np.nanmax(np.abs(pre.per_query["map@all"] - ref_ap))))
        agree = diff_map < 1e-6 and diff_p < 1e-6 and diff_pre < 1e-6
        print(f"agreement |d mAP| {diff_map:.1e}  |d P@100| {diff_p:.1e}  max per-query |d AP| {diff_q:.1e}  "
              f"(same matrix: {diff_pre:.1e})  -> {'OK' if agree else 'MISMATCH'} at 1e-6")
        print(f"speed     sbirlib {m_ours.wall:.2f} s vs reference {m_ref.wall:.2f} s: "
              f"{m_ref.wall / m_ours.wall:.1f}x overall (cpu {m_ref.cpu / max(m_ours.cpu, 1e-9):.1f}x); ranking stage "
              f"on the same matrix {m_pre.wall:.2f} s vs {m_ref.wall - t_matrix:.2f} s: "
              f"{(m_ref.wall - t_matrix) / m_pre.wall:.1f}x")
        out["reference"] = {"map@all": ref_map, "p@100": ref_p100, "wall_s": m_ref.wall, "matrix_s": t_matrix,
                            "cpu_s": m_ref.cpu, "peak_mb": m_ref.peak_mb}
        out["sbirlib_precomputed"] = {"wall_s": m_pre.wall, "cpu_s": m_pre.cpu, "peak_mb": m_pre.peak_mb}
        out["agreement"] = {"map": diff_map, "p@100": diff_p, "per_query_ap_max": diff_q,
                            "same_matrix_max": diff_pre, "ok_1e-6": agree}
        out["speedup"] = {"overall": m_ref.wall / m_ours.wall, "ranking_stage": (m_ref.wall - t_matrix) / m_pre.wall}
        del dist
        if not agree:
            print("WARNING: sbirlib and the reference disagree beyond 1e-6")
        codebase(qn, qln, gn, gln, ours, m_ours.wall, out)


def codebase(qn, qln, gn, gln, ours, ours_wall: float, out: dict) -> None:
    """Time the cdist + scikit-learn reference (on a query sample, scaled) and compare it with sbirlib."""
    n = len(qn) if ARGS.codebase_sample <= 0 else min(ARGS.codebase_sample, len(qn))
    pick = np.sort(np.random.default_rng(ARGS.seed).choice(len(qn), n, replace=False))
    with PeakRSS() as m_cb:
        cb_ap, cb_p = codebase_reference(qn[pick], qln[pick], gn, gln)
    scale = len(qn) / n
    est = m_cb.wall * scale
    diff = max(float(np.nanmax(np.abs(ours.per_query["map@all"][pick] - cb_ap))),
               float(np.max(np.abs(ours.per_query["p@100"][pick] - cb_p))))
    how = "measured" if n == len(qn) else f"timed on {n:,} queries, scaled x{scale:.2f}"
    print(f"codebase  cdist + sklearn per query: {est:7.2f} s ({how})  max per-query difference {diff:.1e} "
          f"-> {'OK' if diff < 1e-6 else 'MISMATCH'} at 1e-6")
    print(f"speed     sbirlib {ours_wall:.2f} s vs codebase-style reference {est:.2f} s: {est / ours_wall:.1f}x")
    out["codebase_reference"] = {"wall_s_whole_query_set": est, "queries_timed": n, "scaled": n != len(qn),
                                 "max_per_query_diff": diff, "speedup": est / ours_wall}


if __name__ == "__main__":
    main()
