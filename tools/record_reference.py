"""Record a chapter's smoke regression reference from several runs (seeds and thread counts).

A reference must hold on any machine and still catch breakage, so it is built from the spread
of legitimate variation rather than from one run: each chapter is executed (exactly as
``make book`` does, with ``tools/run_chapters.py``) for several seeds at one thread and for
the default seed at the most threads, every run from an empty cache so that it trains.
The reference's value of a metric is the mean over the runs and its tolerance a 99 %
prediction interval for one more run (``sbirlib.results.derive_tolerance``); the floors
are kept from the previous reference (or given with ``--floor``) and must be met by every
run. Afterwards each run is checked against the reference built from the *other* runs
(leave-one-out), which shows whether the tolerance would have admitted a run it had not
seen.

Record from a clean commit (the commit goes into every run's provenance):

    python tools/record_reference.py book/chapters/07_ffmln.ipynb --seeds 0 1 2 3 4 --threads 1 2 --jobs 2

or, from run records made earlier (``metrics.json`` files; the first gives the provenance):

    python tools/record_reference.py --records runs/s0-t2/07_ffmln/metrics.json runs/s1-t1/07_ffmln/metrics.json ...
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sbirlib.results import (  # noqa: E402
    compare_to_reference, load_json, reference_from_runs, save_json,
)


def plan(seeds: list[int], threads: list[int]) -> list[tuple[int, int]]:
    """(seed, threads) of every run: the first seed at the most threads, the others at the rest.

    The first entry is the run a user's ``make book`` makes (default seed, every core); its
    record gives the reference its provenance. The other seeds cycle over the smaller thread
    counts, so each run adds a seed and the runs span more than one thread count.
    """
    counts = sorted(set(threads))
    others = counts[:-1] or counts
    return [(seeds[0], counts[-1])] + [(s, others[i % len(others)]) for i, s in enumerate(seeds[1:])]


def execute(nb: Path, seed: int, threads: int, base: Path) -> Path:
    """Run one chapter with papermill at ``seed`` on ``threads`` threads; return its record path."""
    runs = base / f"s{seed}-t{threads}"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads),
               SBIR_CACHE=str(base / f"cache-s{seed}-t{threads}"))  # empty: every run trains
    # the smoke timeouts guard CI's budget at the default threads; a one-thread run on a busy
    # machine may take several times as long and is still a legitimate run
    cmd = [sys.executable, str(ROOT / "tools" / "run_chapters.py"), str(nb), "--no-check",
           "-p", f"seed={seed}", "--runs", str(runs), "--cell-timeout", "3600",
           "--chapter-timeout", "7200"]
    log = base / f"s{seed}-t{threads}.log"
    with log.open("w") as fh:
        proc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SystemExit(f"{nb.stem} seed {seed} threads {threads} failed; see {log}")
    return runs / nb.stem / "metrics.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", nargs="?", type=Path, help="the chapter to run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (one core each at 1 thread)")
    parser.add_argument("--records", type=Path, nargs="+", help="use these run records instead of running")
    parser.add_argument("--workdir", type=Path, default=None, help="where runs go (default: a scratch folder)")
    parser.add_argument("--floor", action="append", default=[], metavar="METRIC=VALUE")
    parser.add_argument("--note", default=None, help="the reference's note (default: keep the old one)")
    parser.add_argument("--dry-run", action="store_true", help="print the reference's check, write nothing")
    args = parser.parse_args(argv)

    if args.records:
        paths = args.records
    else:
        if args.notebook is None:
            parser.error("give a chapter notebook or --records")
        base = (args.workdir or Path(tempfile.mkdtemp(prefix="sbir-reference-"))).resolve()
        base.mkdir(parents=True, exist_ok=True)
        todo = plan(args.seeds, args.threads)
        # the multi-threaded runs alone (they use every core), then the one-thread runs in parallel
        first = [r for r in todo if r[1] > 1]
        rest = [r for r in todo if r[1] == 1]
        paths = [execute(args.notebook.resolve(), s, t, base) for s, t in first]
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            paths += list(pool.map(lambda r: execute(args.notebook.resolve(), *r, base), rest))
    records = [load_json(p) for p in paths]
    chapter = records[0]["chapter"]
    ref_path = ROOT / "book" / "results" / chapter / "smoke.json"
    old = load_json(ref_path) if ref_path.is_file() else {}
    metrics = list(old.get("metrics", {})) or sorted(records[0]["metrics"])
    floors = dict(old.get("check", {}).get("floors", {}))
    for item in args.floor:
        name, _, value = item.partition("=")
        floors[name] = float(value)
    note = args.note if args.note is not None else old.get("check", {}).get("note", "")
    command = "python tools/record_reference.py " + (
        f"{shlex.quote(str(args.notebook))} --seeds {' '.join(map(str, args.seeds))} "
        f"--threads {' '.join(map(str, args.threads))}" if not args.records
        else "--records " + " ".join("<" + "/".join(p.parts[-3:]) + ">" for p in paths))
    ref = reference_from_runs(records, metrics, floors, note=note, command=command)
    # sections of the old reference that this chapter's record no longer writes stay as they were
    ref = {**{k: v for k, v in old.items() if k not in ref}, **ref}
    print(f"{chapter}: {len(records)} runs "
          f"(seed, threads): {[(r['seed'], r['cpu_threads']) for r in ref['check']['runs']]}")
    print(f"{'metric':<44} {'mean':>8} {'min':>8} {'max':>8} {'tol':>7} {'floor':>7}")
    for m in metrics:
        values = [r["metrics"][m] for r in ref["check"]["runs"]]
        floor = floors.get(m)
        print(f"{m:<44} {ref['metrics'][m]:8.4f} {min(values):8.4f} {max(values):8.4f} "
              f"{ref['check']['tolerance'][m]:7.4f} {'' if floor is None else f'{floor:7.3f}'}")
    if len(records) > 2:
        for i, record in enumerate(records):
            others = [r for j, r in enumerate(records) if j != i]
            failures = compare_to_reference(record, reference_from_runs(others, metrics, floors))
            seed = record["provenance"].get("seed")
            print(f"leave-one-out seed {seed} threads {record['provenance'].get('cpu_threads')}: "
                  + ("passes" if not failures else "FAILS " + "; ".join(failures)))
    if not args.dry_run:
        save_json(ref, ref_path)
        print(f"wrote {ref_path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
