"""Run one recipe profile for several seeds and commit the result as one artefact.

Each seed goes through the recipe's ``run`` exactly as ``sbir train`` does (fresh output folder,
no cached weights), and its run record is kept whole. The artefact adds, per metric, the mean,
the sample standard deviation and the [min, max] range over the seeds, and -- for category-level
and zero-shot data -- the reference rows of :func:`sbirlib.evaluation.category_references` on
the same test split (a random ranking, blurred pixels, frozen ImageNet features)::

    SBIR_DATA=../shared/data python tools/record_seeds.py triplet-ce cpu-real --seeds 0 1 2 \\
        --out book/results/02_triplet_sn/cpu-real-sketchy.json

Record from a clean commit: the commit is in every run's provenance, and a ``-dirty`` one is refused
unless ``--allow-dirty`` (for trying the tool, never for a committed artefact).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def summarise(records: list[dict]) -> dict[str, dict[str, float]]:
    """``{metric: {"mean", "std", "min", "max", "n"}}`` over the records' flat metrics."""
    out = {}
    for name in records[0]["metrics"]:
        values = [r["metrics"][name] for r in records if r["metrics"].get(name) is not None]
        if not values:
            continue
        out[name] = {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                     "min": min(values), "max": max(values), "n": len(values)}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("method")
    p.add_argument("profile")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", required=True, help="the artefact, e.g. book/results/<chapter>/<name>.json")
    p.add_argument("--data-root", default=None)
    p.add_argument("--no-references", action="store_true", help="skip the reference rows")
    p.add_argument("--allow-dirty", action="store_true")
    args = p.parse_args(argv)

    from sbirlib import utils
    from sbirlib.evaluation import category_references
    from sbirlib.profiles import resolve_profile
    from sbirlib.recipes import common, get_recipe
    from sbirlib.results import save_json

    commit = utils.env_report("cpu", print_it=False)["commit"]
    if commit.endswith("-dirty") and not args.allow_dirty:
        print(f"record_seeds: the checkout is dirty ({commit}); commit first", file=sys.stderr)
        return 2
    recipe = get_recipe(args.method)
    t0 = time.perf_counter()
    records, data = [], None
    for seed in args.seeds:
        cfg = resolve_profile(recipe.PROFILES, args.profile, seed=seed)
        with tempfile.TemporaryDirectory() as tmp:
            res = recipe.run(cfg, output_dir=Path(tmp) / f"seed-{seed}", device="cpu", data_root=args.data_root,
                             checkpoint="train", progress=False)
        records.append(res.record)
        data = res.data  # the splits are the same for every seed: the references reuse the last run's
        test = {k: round(v, 4) for k, v in res.metrics.items() if k.startswith("test/")}
        print(f"seed {seed}: {test}", flush=True)
    artefact = {
        "chapter": records[0]["chapter"], "profile": args.profile, "method": args.method,
        "seeds": list(args.seeds), "summary": summarise(records), "runs": records,
        "command": "python tools/record_seeds.py " + shlex.join(sys.argv[1:] if argv is None else argv),
        "commit": commit, "wall_time_s": round(time.perf_counter() - t0, 1),
    }
    if not args.no_references:
        if data is None:
            data = common.load_category_data(cfg, args.data_root, size=int(cfg.load_size))
        artefact["references"] = category_references(data["test_sketch"], data["test_photo"],
                                                     tuple(cfg.metrics), seeds=args.seeds)
        artefact["references_split"] = {k: len(v) for k, v in data.items() if k.startswith("test_")}
    save_json(artefact, args.out)
    for name, row in artefact.get("references", {}).items():
        print(f"reference {name}: {{{', '.join(f'{k}: {v:.4f}' for k, v in row['metrics'].items())}}}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
