"""The class-folder dataset and the Sketchy subset, on fake layouts built here and on $SBIR_DATA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sbirlib.data import class_folders as cf
from sbirlib.data.registry import build_dataset
from sbirlib.data.splits import class_list, load_split
from sbirlib.utils import DataNotFoundError


def _png(path: Path, value: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4, 3), value % 256, np.uint8)).save(path)


def make_layout(root: Path, classes, photos: int = 3, sketches_per_photo: int = 3) -> Path:
    """``photo/<c>/n<i>_<j>.jpg`` and ``sketch/<c>/n<i>_<j>-<k>.png`` (Sketchy's stem rule)."""
    for ci, c in enumerate(classes):
        for j in range(photos):
            _png(root / "photo" / c / f"n{ci:03d}_{j}.png", j)
            for k in range(1, sketches_per_photo + 1):
                _png(root / "sketch" / c / f"n{ci:03d}_{j}-{k}.png", 10 * j + k)
    return root


def test_category_split_is_disjoint_seeded_and_per_class_stable(tmp_path):
    root = make_layout(tmp_path / "d", ["cat", "dog", "car_(sedan)"])
    (root / "sketch" / "cat" / "README.txt").write_text("not an image")
    parts = {s: build_dataset("class-folders", root=root, split=s, test_per_class=2, val_per_class=1)
             for s in ("train", "val", "test")}
    assert [len(parts[s]) for s in ("train", "val", "test")] == [18, 3, 6]
    files = [set(map(str, parts[s].samples)) for s in parts]
    assert not (files[0] & files[1] or files[0] & files[2] or files[1] & files[2])
    assert sum(map(len, files)) == 27 and parts["test"].ignored_files == 1
    photos = [build_dataset("class-folders", root=root, split=s, modality="photo") for s in ("train", "test")]
    assert photos[0].samples == photos[1].samples and len(photos[0]) == 9  # the gallery = training photos
    assert parts["test"].classes == photos[0].classes
    # labels agree by class name between modalities
    by_name = {p.parent.name: lab for p, lab in zip(photos[0].samples, photos[0].labels)}
    assert all(by_name[p.parent.name] == lab for p, lab in zip(parts["test"].samples, parts["test"].labels))
    # sketches are paired with their photos by stem
    inst = {p.stem: i for p, i in zip(photos[0].samples, photos[0].instances)}
    assert all(inst[p.stem.rsplit("-", 1)[0]] == i for p, i in zip(parts["test"].samples, parts["test"].instances))
    # another seed, another draw; a class's draw does not depend on the other classes
    other = build_dataset("class-folders", root=root, split="test", test_per_class=2, val_per_class=1, seed=1)
    assert set(other.samples) != set(parts["test"].samples)
    make_layout(tmp_path / "d2", ["cat", "dog", "car_(sedan)", "zebra"])
    grown = build_dataset("class-folders", root=tmp_path / "d2", split="test", test_per_class=2, val_per_class=1)
    name = lambda ds, c: sorted(p.name for p in ds.samples if p.parent.name == c)  # noqa: E731
    assert name(grown, "dog") == name(parts["test"], "dog")
    assert parts["test"].split_info["seed"] == 0 and "gallery" in parts["test"].split_info
    assert "seed 0" in repr(parts["test"]) and "Ignored non-image files: 1" in repr(parts["test"])


def test_pairing_modes(tmp_path):
    root = make_layout(tmp_path / "d", ["a", "b"], photos=2, sketches_per_photo=4)
    _png(root / "sketch" / "a" / "free_drawing.png")
    ds = build_dataset("class-folders", root=root, split="train", test_per_class=1, val_per_class=1)
    assert set(ds.instances) == {-1}  # auto: one sketch has no photo, so no pairing
    with pytest.raises(ValueError, match="free_drawing.png.*pairing='off'"):
        build_dataset("class-folders", root=root, pairing="stem", test_per_class=1, val_per_class=1)


def test_zero_shot_class_split_on_a_sketchy_named_folder(tmp_path):
    root = make_layout(tmp_path / "d", class_list("sketchy"), photos=1, sketches_per_photo=1)
    sp = load_split("sketchy_ext/zs/sake25")
    test = build_dataset("class-folders", root=root, split="test", split_name="sketchy_ext/zs/sake25")
    train = build_dataset("class-folders", root=root, split="train", split_name="sketchy_ext/zs/sake25")
    assert len(set(test.labels)) == 25 and len(set(train.labels)) == len(sp.train)
    assert not set(test.labels) & set(train.labels)  # labels index the folder's classes: no collisions
    assert {test.classes[y] for y in test.labels} == set(sp.unseen) and test.split_info["classes"] == 25
    assert test.split_info["split_name"] == "sketchy_ext/zs/sake25@1" and "rule" not in test.split_info
    gallery = build_dataset("class-folders", root=root, split="test", modality="photo",
                            split_name="sketchy_ext/zs/sake25")
    assert set(gallery.labels) == set(test.labels) and len(gallery) == 25
    import shutil

    shutil.rmtree(root / "photo" / sp.unseen[0])
    shutil.rmtree(root / "sketch" / sp.unseen[0])
    with pytest.raises(ValueError, match=f"lacks: {sp.unseen[0]}"):
        build_dataset("class-folders", root=root, split="test", split_name="sketchy_ext/zs/sake25")


def test_bad_layouts_name_the_path_and_the_fix(tmp_path):
    with pytest.raises(DataNotFoundError, match="pass root="):
        build_dataset("class-folders")
    with pytest.raises(DataNotFoundError, match="is not a folder"):
        build_dataset("class-folders", root=tmp_path / "nope")
    (tmp_path / "e" / "photo").mkdir(parents=True)
    with pytest.raises(DataNotFoundError, match=r"e/sketch is missing"):
        build_dataset("class-folders", root=tmp_path / "e")
    (tmp_path / "e" / "sketch").mkdir()
    with pytest.raises(ValueError, match="no class folders"):
        build_dataset("class-folders", root=tmp_path / "e")
    root = make_layout(tmp_path / "d", ["a", "b"])
    _png(root / "photo" / "c" / "x.png")
    with pytest.raises(ValueError, match=r"'c' has .*photo/c but no .*sketch/c; add sketch images"):
        build_dataset("class-folders", root=root)
    (root / "sketch" / "c").mkdir()
    (root / "sketch" / "c" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"sketch/c has no images"):
        build_dataset("class-folders", root=root)
    _png(root / "sketch" / "c" / "y.png")
    with pytest.raises(ValueError, match="class 'c' has 1 sketches.*lower test_per_class"):
        build_dataset("class-folders", root=root)
    (root / "sketch" / "a" / "n000_0-1.png").write_bytes(b"not a png")
    ds = build_dataset("class-folders", root=root, split="train", test_per_class=0, val_per_class=0)
    broken = [str(p) for p in ds.samples].index(str(root / "sketch" / "a" / "n000_0-1.png"))
    with pytest.raises(OSError, match="n000_0-1.png"):
        ds[broken]


def test_sketchy_subset_integrity_names_what_differs(tmp_path):
    root = make_layout(tmp_path / "sketchy_subset", class_list("sketchy")[:124], photos=25, sketches_per_photo=1)
    with pytest.raises(ValueError, match=r"missing classes: zebra.*class-folders"):
        build_dataset("sketchy-subset", root=tmp_path)
    make_layout(root, ["zebra"], photos=25, sketches_per_photo=1)
    (root / "photo" / "zebra" / "n000_0.png").unlink()
    with pytest.raises(ValueError, match=r"1 photo folders without 25 images: photo/zebra \(24\)"):
        build_dataset("sketchy-subset", root=tmp_path)
    _png(root / "photo" / "zebra" / "n000_0.png")
    with pytest.raises(ValueError, match="content differs"):
        build_dataset("sketchy-subset", root=tmp_path)
    ds = build_dataset("sketchy-subset", root=tmp_path, split="val", verify=False)
    assert len(ds) == 250 and ds.split_info["split_name"] == "sketchy_subset/cat/q5v2@1"


def test_the_real_sketchy_subset(sketchy_subset_root):
    """The published folder: counts, digest and the split sizes its manifest states."""
    sizes = load_split("sketchy_subset/cat/q5v2").manifest["expected_sizes"]
    got = {f"{s}_sketches": len(build_dataset("sketchy-subset", root=sketchy_subset_root, split=s))
           for s in ("train", "val", "test")}
    got["photos"] = len(build_dataset("sketchy-subset", root=sketchy_subset_root, modality="photo"))
    assert got == sizes
    zs = build_dataset("sketchy-subset", root=sketchy_subset_root, split="test",
                       split_name="sketchy_ext/zs/yelamarthi21")
    assert len(set(zs.labels)) == 21 and len(zs) == 21 * 25
    assert any(i >= 0 for i in zs.instances)  # Sketchy's stem rule pairs every sketch


def test_sketchy_subset_not_found_says_where_it_comes_from(tmp_path, monkeypatch):
    monkeypatch.delenv("SBIR_DATA", raising=False)
    with pytest.raises(DataNotFoundError, match=r"SBIR_DATA unset.*data_scripts/README.md"):
        build_dataset("sketchy-subset")
    with pytest.raises(DataNotFoundError, match=rf"not found under {tmp_path}.*sketchy_subset/photo"):
        build_dataset("sketchy-subset", root=tmp_path)
