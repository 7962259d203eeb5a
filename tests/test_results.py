import json

import pytest

from sbirlib import results


def _record(**metrics):
    prov = {"profile": "smoke", "seed": 0}
    return results.run_record("99_x", metrics, prov)


def test_save_json_is_atomic_and_roundtrips(tmp_path):
    path = results.save_json({"a": 1}, tmp_path / "sub" / "m.json")
    assert json.loads(path.read_text()) == {"a": 1}
    assert not list(path.parent.glob(".*tmp"))


def test_load_json_names_malformed_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        results.load_json(bad)


def test_provenance_records_profile_seed_commit():
    prov = results.provenance(profile="smoke", seed=3, device="cpu", wall_time_s=1.234)
    assert prov["profile"] == "smoke" and prov["seed"] == 3 and prov["wall_time_s"] == 1.23
    assert "commit" in prov and "date" in prov and "torch" in prov


def test_compare_to_reference_tolerance_and_floors():
    ref = _record(**{"test/acc@1": 0.50, "test/acc@10": 0.90})
    ref["check"] = {"tolerance": 0.05, "floors": {"test/acc@1": 0.3}}
    assert results.compare_to_reference(_record(**{"test/acc@1": 0.52, "test/acc@10": 0.88}), ref) == []
    fails = results.compare_to_reference(_record(**{"test/acc@1": 0.20, "test/acc@10": 0.90}), ref)
    assert len(fails) == 2 and any("floor" in f for f in fails)
    assert results.compare_to_reference(_record(**{"test/acc@1": 0.5}), ref) == [
        "test/acc@10: missing from the run (reference 0.9000)"
    ]


def test_output_dir_for(monkeypatch, tmp_path):
    assert results.output_dir_for("c", tmp_path / "x") == tmp_path / "x"
    monkeypatch.setenv("SBIR_RUN_DIR", str(tmp_path / "runs"))
    assert results.output_dir_for("c") == tmp_path / "runs" / "c"
    monkeypatch.delenv("SBIR_RUN_DIR")
    monkeypatch.setenv("SBIR_CACHE", str(tmp_path / "cache"))
    assert results.output_dir_for("c").parent == tmp_path / "cache" / "runs"
