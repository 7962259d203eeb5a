"""Named splits shipped as package data, and class-name aliases."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from sbirlib.data import splits as splits_mod
from sbirlib.data.names import ClassNameResolver, display_name, name_key, normalise_class_folders
from sbirlib.data.splits import class_list, list_splits, load_split

ROOT = Path(__file__).resolve().parents[1]

ZERO_SHOT = {
    "sketchy_ext/zs/sake25": ("sketchy", 25),
    "sketchy_ext/zs/sempcyc25": ("sketchy", 25),
    "sketchy_ext/zs/yelamarthi21": ("sketchy", 21),
    "tuberlin_ext/zs/sake30": ("tuberlin", 30),
    "tuberlin_ext/zs/sempcyc30": ("tuberlin", 30),
    "quickdraw_ext/zs/d2s30": ("quickdraw_ext", 30),
}


def test_class_lists():
    assert len(class_list("sketchy")) == 125 and "car_(sedan)" in class_list("sketchy")
    tu = class_list("tuberlin")
    assert len(tu) == 250 and list(tu) == sorted(tu)  # the class index rule (id - 1) // 80 needs sorted order
    assert tu.index("ant") == (241 - 1) // 80 and tu.index("wine-bottle") == (19681 - 1) // 80
    assert len(class_list("quickdraw_ext")) == 110
    with pytest.raises(KeyError, match="known"):
        class_list("imagenet")


@pytest.mark.parametrize("name", sorted(ZERO_SHOT))
def test_zero_shot_split_rules(name):
    dataset, n_unseen = ZERO_SHOT[name]
    s = load_split(name)
    every = set(class_list(dataset))
    assert len(s.unseen) == n_unseen == len(set(s.unseen))
    assert not set(s.seen) & set(s.unseen)
    assert set(s.seen) | set(s.unseen) == every
    assert set(s.val) <= set(s.seen) and len(s.val) == round(0.1 * len(s.seen))
    assert not set(s.train) & set(s.val) and set(s.train) | set(s.val) == set(s.seen)
    assert s.classes_for("test") == s.unseen
    for key, n in s.manifest["counts"].items():
        assert len({"unseen": s.unseen, "seen": s.seen, "val": s.val}.get(key, s.files.get(key, ()))) == n
    assert s.manifest["origin"] and s.manifest["metrics"]
    assert load_split(s.full_name) == s


def test_published_lists_are_the_spec_lists():
    sake25 = load_split("sketchy_ext/zs/sake25")
    assert sake25.unseen[:3] == ("cup", "swan", "harp") and "teddy_bear" in sake25.unseen  # file order kept
    sake30 = load_split("tuberlin_ext/zs/sake30")
    assert sake30.unseen[6] == "bottle opener" and "t-shirt" in sake30.unseen
    qd = load_split("quickdraw_ext/zs/d2s30")
    assert "palm tree" in qd.unseen and "fire_hydrant" in qd.unseen
    yel = load_split("sketchy_ext/zs/yelamarthi21")
    assert {"bat", "mouse", "window"} <= set(yel.unseen)
    # the recomputed SEM-PCYC lists (spec: sem-pcyc issue #22)
    sp = load_split("tuberlin_ext/zs/sempcyc30")
    assert sp.files["sempcyc_val"][:3] == ("duck", "snail", "purse") and "traffic light" in sp.files["sempcyc_test"]
    assert set(sp.files["sempcyc_val"]) | set(sp.files["sempcyc_test"]) == set(sp.unseen)
    assert "jack-o-lantern" in load_split("sketchy_ext/zs/sempcyc25").unseen


def _make_splits_module():
    spec = importlib.util.spec_from_file_location("make_splits", ROOT / "data_scripts" / "make_splits.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["make_splits"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_shipped_files_are_what_make_splits_generates():
    mod = _make_splits_module()
    assert mod.write(check=True) == 0  # also re-runs the SEM-PCYC recomputation asserts


def test_sempcyc_recomputation_depends_on_the_class_list():
    mod = _make_splits_module()
    val, test = mod.sempcyc_split(list(class_list("sketchy")), 100, 12)
    assert [name_key(c) for c in val] == [name_key(c) for c in mod.SEMPCYC25_VAL]
    shuffled = list(class_list("sketchy"))[::-1]  # unsorted input gives another split: order matters
    assert mod.sempcyc_split(shuffled, 100, 12)[0] != val


def test_qmul_v1_val_ids_match_the_loader():
    from sbirlib.data.qmul import _val_indices

    for cat, n in (("shoes", 304), ("chairs", 200), ("handbags", 400)):
        s = load_split(f"qmul_v1/fg/{cat}")
        assert [int(x) for x in s.val] == [int(i) + 1 for i in _val_indices(n, 0.1, 0)]


def test_tampered_list_is_detected(tmp_path, monkeypatch):
    shutil.copytree(splits_mod.SPLITS_DIR / "sketchy_ext", tmp_path / "sketchy_ext")
    monkeypatch.setattr(splits_mod, "SPLITS_DIR", tmp_path)
    path = tmp_path / "sketchy_ext" / "zs" / "sake25@1" / "unseen.txt"
    path.write_text(path.read_text().replace("cup", "mug"))
    with pytest.raises(ValueError, match="SHA-256"):
        splits_mod.load_split("sketchy_ext/zs/sake25")
    assert len(splits_mod.load_split("sketchy_ext/zs/sake25", verify=False).unseen) == 25


def test_unknown_split_and_listing():
    names = list_splits()
    assert "tuberlin_ext/cat/dsh10@dase" in names and "qmul_v2/fg/chairv2_bhunia@1" in names
    with pytest.raises(KeyError, match="shipped splits"):
        load_split("sketchy_ext/zs/sake26")
    with pytest.raises(ValueError, match="train"):
        load_split("sketchy_ext/zs/sake25").classes_for("validation")


# --------------------------------------------------------------------------------------
# names
# --------------------------------------------------------------------------------------
def test_name_keys_and_aliases():
    assert name_key("hot-air_balloon") == name_key("hot_air_balloon") == name_key("Hot air balloon")
    assert name_key("bottle opener") == name_key("bottle_opener") == name_key("bottleopener")
    assert name_key("tromobone") == name_key("trombone")
    assert name_key("table") != name_key("tablelamp")
    assert display_name("car_(sedan)") == "car (sedan)"


def test_resolver_and_errors():
    r = ClassNameResolver(["hot-air_balloon", "car_(sedan)", "palm tree"], where="/data/x")
    assert r.resolve("hot_air_balloon") == "hot-air_balloon" and r.resolve("palm_tree") == "palm tree"
    assert "car (sedan)" in r
    with pytest.raises(KeyError, match=r"unknown class 'hot air ballon'.*did you mean 'hot-air_balloon'"):
        r.resolve("hot air ballon")
    with pytest.raises(KeyError, match=r"2 listed class.*/data/x"):
        r.resolve_all(["cat", "dog", "palm_tree"])
    with pytest.raises(ValueError, match="same class spelled twice"):
        ClassNameResolver(["hot-air_balloon", "hot_air_balloon"])


def test_normalise_class_folders(tmp_path):
    for name in ("tromobone", "mouse", "alarmclock", "unrelated", "chair"):
        (tmp_path / name).mkdir()
    (tmp_path / "chair" / "keep.jpg").write_bytes(b"x")
    planned = normalise_class_folders(tmp_path, ["trombone", "mouse (animal)", "alarm clock", "chair"],
                                      aliases={"mouse": "mouse (animal)"}, dry_run=True)
    assert planned == {"tromobone": "trombone", "mouse": "mouse (animal)", "alarmclock": "alarm clock"}
    assert (tmp_path / "tromobone").is_dir()  # dry run changes nothing
    normalise_class_folders(tmp_path, ["trombone", "mouse (animal)", "alarm clock", "chair"],
                            aliases={"mouse": "mouse (animal)"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alarm clock", "chair", "mouse (animal)", "trombone",
                                                          "unrelated"]
    assert (tmp_path / "chair" / "keep.jpg").exists()


def test_val_carve_is_seeded():
    from sbirlib.data.tuberlin import carve_validation

    items = list(range(70))
    a = carve_validation(items, 0.1, 3)
    assert a == carve_validation(items, 0.1, 3) and len(a[1]) == 7
    assert a != carve_validation(items, 0.1, 4)
    assert sorted(a[0] + a[1]) == items
    assert np.isclose(len(carve_validation(items, 0.0, 0)[1]), 0)
