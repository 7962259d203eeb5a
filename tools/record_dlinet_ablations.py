"""Record DLI-Net's ablations (spec ``papers/dlinet.md`` §8) as a results artefact.

Trains every variant of :data:`sbirlib.recipes.dlinet.ABLATIONS` (global vs local features,
SI keep ratio k in {0.25, 0.5, 0.75, 1.0}, position-wise SimpleMatch vs Cross Interaction,
1-norm vs 2-norm) with the profile's full budget and checkpoint selection, once per seed, and
writes the run record of :func:`sbirlib.recipes.dlinet.run_ablations` (rows per variant and
seed, provenance) to ``book/results/04_dlinet/ablations-<profile>.json``. The chapter reads it
and shows mean ± std over the seeds.

    python tools/record_dlinet_ablations.py                       # smoke, seeds 0 1 2
    python tools/record_dlinet_ablations.py --seeds 0 --out /tmp/abl.json

Under ``cpu-real`` (TU-Berlin pre-training + 7 variants x seeds on QMUL Shoe-V1) the runs take
far longer than the chapter's 10-minute budget; the recorded artefact is the smoke one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sbirlib import results  # noqa: E402
from sbirlib.profiles import resolve_profile  # noqa: E402
from sbirlib.recipes import dlinet as recipe  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--names", nargs="*", default=None, help="a subset of ABLATIONS (default: all)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data-root", default="")
    ap.add_argument("--out", type=Path, default=None,
                    help="default: book/results/04_dlinet/ablations-<profile>.json")
    args = ap.parse_args(argv)
    cfg = resolve_profile(recipe.PROFILES, args.profile)
    t0 = time.perf_counter()
    record = recipe.run_ablations(cfg, names=args.names, seeds=tuple(args.seeds), device=args.device,
                                  data_root=args.data_root or None, progress=False)
    record["note"] = (f"Written by tools/record_dlinet_ablations.py --profile {args.profile} --seeds "
                      f"{' '.join(map(str, args.seeds))}: every variant trained from scratch with the "
                      f"profile's full budget ({cfg['epochs']} epochs, checkpoint select="
                      f"{cfg['select']!r} on validation acc@1), test metrics of the selected epoch.")
    out = args.out or ROOT / "book" / "results" / recipe.CHAPTER / f"ablations-{args.profile}.json"
    results.save_json(record, out)
    for row in recipe.ablation_table(record):
        std = row["test/acc@1 (std)"]
        print(f"{row['ablation']:<40} acc@1 {row['test/acc@1']:.3f}"
              + (f" ± {std:.3f}" if std is not None else "")
              + f"  scoring {row['score_s']:.2f} s  seeds {row['seeds']}")
    print(f"wrote {out} ({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
