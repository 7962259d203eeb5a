"""Regression references: tolerances derived from recorded spread, floors that catch no learning."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from sbirlib import results

ROOT = Path(__file__).resolve().parent.parent
REFERENCES = sorted((ROOT / "book" / "results").glob("*/smoke.json"))


def _record(seed: int, threads: int, **metrics: float) -> dict:
    return {"chapter": "toy", "profile": "smoke", "metrics": metrics,
            "provenance": {"seed": seed, "cpu_threads": threads, "commit": "abc"}}


def test_derive_tolerance_is_a_prediction_interval_at_least_the_recorded_spread():
    from scipy import stats

    values = [0.50, 0.52, 0.55, 0.51, 0.53]
    n, mean = len(values), sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    expected = stats.t.ppf(0.995, n - 1) * std * math.sqrt(1 + 1 / n)
    assert results.derive_tolerance(values) == round(expected, 4)
    # fewer runs, wider interval for the same spread
    assert results.derive_tolerance(values[:3]) > results.derive_tolerance(values[:3] * 2)
    assert results.derive_tolerance([0.3, 0.3, 0.3]) == results.MIN_TOLERANCE
    # never narrower than the farthest recorded run
    assert results.derive_tolerance([0.1, 0.9], coverage=0.01) == 0.4
    with pytest.raises(ValueError, match="two values"):
        results.derive_tolerance([0.5])


def test_reference_from_runs_and_compare():
    runs = [_record(0, 2, acc=0.50, loss=1.0), _record(1, 1, acc=0.55, loss=1.1),
            _record(2, 1, acc=0.52, loss=0.9)]
    ref = results.reference_from_runs(runs, ["acc", "loss"], {"acc": 0.3})
    assert ref["metrics"]["acc"] == pytest.approx(0.52333, abs=1e-4)
    assert [r["seed"] for r in ref["check"]["runs"]] == [0, 1, 2]
    assert ref["provenance"]["seed"] == 0  # the first record's provenance
    for run in runs:
        assert results.compare_to_reference(run, ref) == []
    far = _record(3, 2, acc=0.52 + ref["check"]["tolerance"]["acc"] + 0.02, loss=1.0)
    assert any(f.startswith("acc:") for f in results.compare_to_reference(far, ref))
    low = _record(4, 2, acc=0.2, loss=1.0)
    assert any("below the floor" in f for f in results.compare_to_reference(low, ref))
    with pytest.raises(ValueError, match="below a floor"):
        results.reference_from_runs(runs + [low], ["acc", "loss"], {"acc": 0.3})
    with pytest.raises(ValueError, match="at least two"):
        results.reference_from_runs(runs[:1], ["acc"], {})


def test_a_scalar_tolerance_still_reads():
    ref = {"metrics": {"acc": 0.5}, "check": {"tolerance": 0.05, "floors": {}}}
    assert results.compare_to_reference({"metrics": {"acc": 0.54}}, ref) == []
    assert results.compare_to_reference({"metrics": {"acc": 0.56}}, ref) != []


@pytest.mark.parametrize("path", REFERENCES, ids=lambda p: p.parent.name)
def test_committed_reference_is_derived_from_seeds_and_threads(path):
    ref = json.loads(path.read_text())
    check = ref["check"]
    runs = check["runs"]
    assert len(runs) >= 3, f"{path}: record at least three runs (tools/record_reference.py)"
    assert len({r["seed"] for r in runs}) >= 2, "several seeds"
    assert len({r["cpu_threads"] for r in runs}) >= 2, "more than one thread count"
    assert all(not str(r["commit"]).endswith("-dirty") for r in runs), "record from a clean commit"
    for m, mean in ref["metrics"].items():
        values = [r["metrics"][m] for r in runs]
        assert mean == pytest.approx(sum(values) / len(values), abs=1e-9), m
        assert check["tolerance"][m] == results.derive_tolerance(values, check["coverage"],
                                                                 check["min_tolerance"]), m
    for m, floor in check["floors"].items():
        assert m in ref["metrics"], f"floor on an unchecked metric {m}"
        assert floor <= min(r["metrics"][m] for r in runs), f"{m}: a recorded run is below its floor"
    for run in runs:
        assert results.compare_to_reference(run, ref) == []


def _restricted(ref: dict, metrics: dict) -> dict:
    """The part of a chapter's reference that a recipe run (a subset of the chapter) reports."""
    keep = [m for m in ref["metrics"] if m in metrics]
    return {"metrics": {m: ref["metrics"][m] for m in keep},
            "check": {"tolerance": {m: ref["check"]["tolerance"][m] for m in keep},
                      "floors": {m: f for m, f in ref["check"]["floors"].items() if m in keep}}}


@pytest.mark.slow
def test_dlinet_reference_admits_an_unseen_seed_and_rejects_a_model_that_does_not_learn(tmp_path):
    """The 04_dlinet chapter's main run is ``recipes.dlinet.run`` on the smoke profile."""
    from sbirlib.profiles import resolve_profile
    from sbirlib.recipes import dlinet

    ref = json.loads((ROOT / "book" / "results" / "04_dlinet" / "smoke.json").read_text())
    seen = {r["seed"] for r in ref["check"]["runs"]}
    seed = max(seen) + 1
    ok = dlinet.run(resolve_profile(dlinet.PROFILES, "smoke", seed=seed), device="cpu",
                    output_dir=tmp_path / "ok", checkpoint="train", progress=False, write=False)
    part = _restricted(ref, ok.metrics)
    assert "test/acc@1" in part["metrics"] and part["check"]["floors"], "nothing to compare"
    assert results.compare_to_reference(ok.record, part) == [], f"seed {seed} must pass"
    frozen = dlinet.run(resolve_profile(dlinet.PROFILES, "smoke", seed=seed, lr=0.0), device="cpu",
                        output_dir=tmp_path / "frozen", checkpoint="train", progress=False, write=False)
    failures = results.compare_to_reference(frozen.record, part)
    assert any(f.startswith(("test/acc@", "val/acc@")) for f in failures), failures
