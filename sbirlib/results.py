"""Run records and result artefacts.

Every number the book shows comes from a run record: the metrics plus the provenance
that produced them (profile, seed, commit, device, wall time, date). A chapter writes
its record to ``output_dir/metrics.json``; expensive runs are reviewed and committed as
``book/results/<chapter>/<profile>.json``, and the committed ``smoke.json`` doubles as the
regression reference that ``make test`` compares a fresh run against.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "save_json",
    "ablation_table",
    "seed_ordering",
    "load_json",
    "provenance",
    "run_record",
    "write_run_record",
    "results_dir",
    "load_result",
    "compare_to_reference",
    "derive_tolerance",
    "reference_from_runs",
    "output_dir_for",
]


def save_json(obj: Any, path: str | os.PathLike) -> Path:
    """Write JSON atomically (temp file + rename) so a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=2, sort_keys=False, default=_jsonable)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, naming the file in the error if it is malformed."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); delete or restore it") from err


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def provenance(
    *, profile: str, seed: int, device: str = "auto", wall_time_s: float | None = None,
    config: Mapping[str, Any] | None = None, dataset: str | None = None, **extra: Any,
) -> dict[str, Any]:
    """The facts that make a number reproducible: who ran what, where, when, on which commit."""
    from sbirlib.utils import env_report

    env = env_report(device, print_it=False)
    prov = {
        "profile": profile,
        "seed": seed,
        "dataset": dataset,
        "commit": env["commit"],
        "device": env["device"],
        "device_name": env["device_name"],
        "cpu_threads": env["cpu_threads"],
        "torch": env["torch"],
        "sbirlib": env["sbirlib"],
        "wall_time_s": None if wall_time_s is None else round(float(wall_time_s), 2),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if config is not None:
        prov["config"] = dict(config)
    prov.update(extra)
    return prov


def run_record(
    chapter: str, metrics: Mapping[str, float], prov: Mapping[str, Any], **sections: Any
) -> dict[str, Any]:
    """Assemble ``{"chapter", "profile", "metrics", "provenance", ...}``.

    ``metrics`` is flat: ``{"test/acc@1": 0.31, "val/acc@1": 0.28, "train/loss_first": ...}``;
    the regression check compares these names.
    """
    flat = {str(k): (None if v is None else float(v)) for k, v in metrics.items()}
    return {"chapter": chapter, "profile": prov.get("profile"), "metrics": flat,
            "provenance": dict(prov), **sections}


def write_run_record(output_dir: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Write ``record`` to ``output_dir/metrics.json`` (atomically) and return the path."""
    return save_json(dict(record), Path(output_dir) / "metrics.json")


def results_dir() -> Path | None:
    """``book/results`` of the checkout sbirlib was imported from, or None outside a checkout."""
    here = Path(__file__).resolve().parent.parent / "book" / "results"
    return here if here.is_dir() else None


def load_result(chapter: str, profile: str) -> dict[str, Any] | None:
    """The committed artefact ``book/results/<chapter>/<profile>.json``, or None if not yet run.

    Returns None (and says why) when the checkout is not available, e.g. on Colab with a
    pip-installed sbirlib.
    """
    base = results_dir()
    if base is None:
        print("book/results is not available (sbirlib is not running from a checkout)")
        return None
    path = base / chapter / f"{profile}.json"
    return load_json(path) if path.is_file() else None


# ------------------------------------------------------------------ regression references
# A reference (``book/results/<chapter>/smoke.json``) is the run record of one recorded run
# (its provenance and sections, which the chapters read) whose ``metrics`` are the mean over
# several recorded runs, plus a ``check`` section: every recorded run (seed, threads, commit,
# metrics), the tolerance of each metric derived from their spread, and floors. Legitimate
# variation -- another seed, another thread count, another CPU's floating point -- moves a
# smoke run about as far as another seed does, so the seed-and-thread spread is what the
# tolerance is made of (a prediction interval for one more run, derive_tolerance); the
# floors, well above chance, catch a model that stops learning.
COVERAGE = 0.99  # the share of legitimate runs a tolerance must admit
MIN_TOLERANCE = 0.01  # metrics live in [0, 1] (losses: a few units); 1 point is the resolution


def derive_tolerance(values: list[float], coverage: float = COVERAGE,
                     minimum: float = MIN_TOLERANCE) -> float:
    """The tolerance a metric gets from the values of its recorded runs.

    A ``coverage`` prediction interval for one more run around the mean of ``n`` recorded
    runs: ``t * s * sqrt(1 + 1/n)``, with ``s`` the sample standard deviation and ``t`` the
    two-sided Student quantile with ``n - 1`` degrees of freedom -- it widens when few runs
    were recorded (n = 3: 11.5 s; n = 5: 5.0 s at 99 %). At least the largest distance of a
    recorded run from the mean, so every recorded run passes, and at least ``minimum`` for
    metrics that did not move at all (a deterministic computation).
    """
    if len(values) < 2:
        raise ValueError("derive_tolerance needs at least two values to measure a spread")
    from scipy import stats

    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    t = float(stats.t.ppf(0.5 + coverage / 2, n - 1))
    widest = max(abs(v - mean) for v in values)
    return round(max(t * std * math.sqrt(1 + 1 / n), widest, minimum), 4)


def reference_from_runs(records: list[Mapping[str, Any]], metrics: list[str],
                        floors: Mapping[str, float], *, note: str = "", command: str = "",
                        coverage: float = COVERAGE, minimum: float = MIN_TOLERANCE) -> dict[str, Any]:
    """Build a regression reference from several run records of one chapter.

    ``records[0]`` supplies the provenance and the other sections (record it with the
    default seed and the machine's default threads); ``metrics`` names the checked metrics.
    Raises if a run lacks a checked metric or falls below a floor: a floor that a legitimate
    run misses is a wrong floor.
    """
    if len(records) < 2:
        raise ValueError("a reference needs at least two recorded runs to measure a spread")
    chapters = {r["chapter"] for r in records}
    if len(chapters) != 1:
        raise ValueError(f"records of different chapters: {sorted(chapters)}")
    runs, means, tolerance = [], {}, {}
    for r in records:
        missing = [m for m in metrics if r["metrics"].get(m) is None]
        if missing:
            raise ValueError(f"run with seed {r['provenance'].get('seed')} lacks {missing}")
        low = [f"{m}={r['metrics'][m]:.4f} < {f}" for m, f in floors.items() if r["metrics"][m] < f]
        if low:
            raise ValueError(f"run with seed {r['provenance'].get('seed')} is below a floor: {low}")
        p = r["provenance"]
        runs.append({"seed": p.get("seed"), "cpu_threads": p.get("cpu_threads"),
                     "commit": p.get("commit"), "device_name": p.get("device_name"),
                     "wall_time_s": p.get("wall_time_s"),
                     "metrics": {m: r["metrics"][m] for m in metrics}})
    for m in metrics:
        values = [float(run["metrics"][m]) for run in runs]
        means[m] = sum(values) / len(values)
        tolerance[m] = derive_tolerance(values, coverage, minimum)
    reference = {key: value for key, value in records[0].items() if key not in ("metrics", "check")}
    reference["metrics"] = means
    reference["check"] = {
        "rule": f"|run - mean| <= max(t * s * sqrt(1 + 1/n), largest |run - mean|, {minimum:g}): a "
                f"{coverage:.0%} prediction interval from the n recorded runs; every floor met",
        "coverage": coverage, "min_tolerance": minimum, "tolerance": tolerance, "floors": dict(floors),
        "runs": runs, "command": command, "note": note,
    }
    return reference


def compare_to_reference(
    run: Mapping[str, Any], reference: Mapping[str, Any]
) -> list[str]:
    """Regression check of a run record against a committed reference.

    The reference carries ``"check": {"tolerance": {metric: tol} | float, "floors":
    {metric: min}}``. Every metric named in the reference's ``metrics`` must be present in
    the run and within its tolerance (absolute) of the reference value; every floor must be
    met. Returns the list of failures (empty when the run passes).
    """
    check = reference.get("check", {})
    tolerances = check.get("tolerance", 0.0)
    failures: list[str] = []
    got = run.get("metrics", {})
    for name, ref_value in reference.get("metrics", {}).items():
        if ref_value is None:
            continue
        tol = float(tolerances.get(name, 0.0) if isinstance(tolerances, Mapping) else tolerances)
        value = got.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            failures.append(f"{name}: missing from the run (reference {ref_value:.4f})")
        elif abs(value - ref_value) > tol:
            failures.append(
                f"{name}: {value:.4f} differs from the reference {ref_value:.4f} by more than {tol}"
            )
    for name, floor in check.get("floors", {}).items():
        value = got.get(name)
        if value is None or not value >= floor:
            failures.append(f"{name}: {value} is below the floor {floor}")
    return failures


def output_dir_for(chapter: str, output_dir: str | os.PathLike = "") -> Path:
    """Where a chapter writes its run record.

    ``output_dir`` if given; else ``$SBIR_RUN_DIR/<chapter>`` (the papermill runner sets it,
    so the published build needs no injected parameters); else a fresh timestamped folder
    under ``$SBIR_CACHE/runs`` so that nothing depends on the working directory.
    """
    if output_dir not in ("", None):
        path = Path(output_dir)
    elif os.environ.get("SBIR_RUN_DIR"):
        path = Path(os.environ["SBIR_RUN_DIR"]) / chapter
    else:
        from sbirlib.utils import cache_dir

        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = cache_dir("runs") / f"{chapter}-{stamp}"
    path.mkdir(parents=True, exist_ok=True)
    return path


# ------------------------------------------------------------------ multi-seed ablation artefacts
# An ablation artefact is ``{"rows": [{"name", "seed", "metrics": {...}, ...}, ...], ...}``: one
# row per (variant, seed). A value is looked up in the row's ``metrics``, then its ``timing``,
# then the row itself (e.g. DLI-Net's ``score_s``).


def _row_value(row: Mapping[str, Any], key: str) -> float | None:
    for section in ("metrics", "timing"):
        if key in row.get(section, {}):
            return row[section][key]
    value = row.get(key)
    return value if isinstance(value, (int, float)) else None


def _seed_values(record: Mapping[str, Any], name: str, key: str) -> list[float]:
    return [v for r in record["rows"] if r["name"] == name and (v := _row_value(r, key)) is not None]


def ablation_table(record: Mapping[str, Any], metrics: tuple[str, ...],
                   names: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per ablation of a multi-seed artefact: mean and sample std of ``metrics`` over seeds.

    Each output row holds ``ablation``, ``seeds``, and per metric ``<m>`` (mean, ``None`` if no
    seed has it), ``<m> (std)`` (``None`` below two seeds) and ``<m> (n)`` (seeds averaged).
    ``names`` restricts and orders the rows (default: the artefact's order).
    """
    import numpy as np

    names = list(dict.fromkeys(r["name"] for r in record["rows"])) if names is None else names
    table = []
    for name in names:
        seeds = [r["seed"] for r in record["rows"] if r["name"] == name]
        if not seeds:
            continue
        row: dict[str, Any] = {"ablation": name, "seeds": seeds}
        for m in metrics:
            vals = np.array(_seed_values(record, name, m), dtype=float)
            row[m] = float(vals.mean()) if len(vals) else None
            row[m + " (std)"] = float(vals.std(ddof=1)) if len(vals) > 1 else None
            row[m + " (n)"] = len(vals)
        table.append(row)
    return table


def seed_ordering(record: Mapping[str, Any], a: str, b: str, metric: str) -> str:
    """How ablation ``a`` compares with ``b`` on ``metric`` across their recorded seeds.

    ``"higher"`` / ``"lower"`` only when every seed of ``a`` lies above (below) every seed of
    ``b`` -- the ranges do not overlap; ``"overlap"`` otherwise; ``"too few seeds"`` when either
    has fewer than two. A deliberately strict reading for three seeds: a chapter states an
    ordering only when the spread supports it.
    """
    va, vb = _seed_values(record, a, metric), _seed_values(record, b, metric)
    if len(va) < 2 or len(vb) < 2:
        return "too few seeds"
    if min(va) > max(vb):
        return "higher"
    if max(va) < min(vb):
        return "lower"
    return "overlap"
