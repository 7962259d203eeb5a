"""DLI-Net retrieval cost: scoring time per query against gallery size, with and without SI.

DLI-Net scores every (sketch, photo) pair with the Cross Interaction head
(``sbirlib.models.dlinet.pairwise_distance``), so retrieval time grows with
``#gallery × K_s × K_p × C``. Self Interaction (keep ratio k) keeps ``k·N`` locals on each side,
which should cut scoring by ``1/k²`` (4× for k = 0.5; spec ``papers/dlinet.md`` §5.3).

Only the scoring is timed (locals are random unit vectors of the paper's shape: N = 16×16 = 256
locals of C = 1024 at 256² input); the per-image embedding time is a separate, constant cost.
Usage::

    python benchmarks/dlinet_retrieval_time.py                     # CPU, paper shapes
    python benchmarks/dlinet_retrieval_time.py --device cuda --gallery 200 1250 5000
    python benchmarks/dlinet_retrieval_time.py --json out.json

Wall times on a shared machine are inflated by other load: report the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
import torch.nn.functional as F

from sbirlib.models import dlinet as dl
from sbirlib.utils import get_device


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def time_scoring(
    num_queries: int, gallery: int, k: int, channels: int, dev: torch.device,
    gallery_block: int = 32, query_block: int = 16, repeats: int = 3,
) -> float:
    """Best-of-``repeats`` seconds to score ``num_queries × gallery`` pairs of ``k`` locals each."""
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(num_queries, k, channels, generator=g), dim=-1).to(dev)
    p = F.normalize(torch.randn(gallery, k, channels, generator=g), dim=-1).to(dev)
    dl.pairwise_distance(q[:1], p[:gallery_block], device=dev)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        _sync(dev)
        t0 = time.perf_counter()
        dl.pairwise_distance(q, p, device=dev, gallery_block=gallery_block,
                             query_block=query_block)
        _sync(dev)
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--gallery", type=int, nargs="+", default=[32, 64, 128, 256])
    ap.add_argument("--queries", type=int, default=4)
    ap.add_argument("--locals", type=int, default=256, help="N = H·W before SI (256 at 256²)")
    ap.add_argument("--channels", type=int, default=1024)
    ap.add_argument("--keep", type=float, nargs="+", default=[1.0, 0.5])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    dev = get_device(args.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    print(f"device {dev} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'gallery':>8} {'k':>5} {'K':>5} {'ms/query':>10} {'GFLOP/s':>9} {'vs k=1':>7}")
    rows = []
    for gal in args.gallery:
        base = None
        for keep in args.keep:
            k = dl.num_kept(args.locals, keep)
            sec = time_scoring(args.queries, gal, k, args.channels, dev, repeats=args.repeats)
            per_q = sec / args.queries
            flops = 2.0 * args.queries * gal * k * k * args.channels / sec / 1e9
            base = per_q if base is None and keep == 1.0 else base
            speedup = base / per_q if base else float("nan")
            rows.append({"gallery": gal, "keep_ratio": keep, "K": k, "ms_per_query": 1e3 * per_q,
                         "gflops": flops, "speedup_vs_k1": speedup, "device": str(dev),
                         "device_name": name})
            print(f"{gal:>8} {keep:>5.2f} {k:>5} {1e3 * per_q:>10.2f} {flops:>9.1f} {speedup:>7.2f}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return rows


if __name__ == "__main__":
    main()
