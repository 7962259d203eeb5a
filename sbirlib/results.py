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
    "load_json",
    "provenance",
    "run_record",
    "write_run_record",
    "results_dir",
    "load_result",
    "compare_to_reference",
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


def compare_to_reference(
    run: Mapping[str, Any], reference: Mapping[str, Any]
) -> list[str]:
    """Regression check of a run record against a committed reference.

    The reference carries ``"check": {"tolerance": float, "floors": {metric: min}}``.
    Every metric named in the reference's ``metrics`` must be present in the run and within
    ``tolerance`` (absolute); every floor must be met. Returns the list of failures
    (empty when the run passes).
    """
    check = reference.get("check", {})
    tol = float(check.get("tolerance", 0.0))
    failures: list[str] = []
    got = run.get("metrics", {})
    for name, ref_value in reference.get("metrics", {}).items():
        if ref_value is None:
            continue
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
