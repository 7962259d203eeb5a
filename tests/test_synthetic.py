"""The synthetic benchmark: determinism, layout, splits, pairing, in-memory == on-disk."""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sbirlib.data import build_dataset, list_datasets, synthetic
from sbirlib.data.synthetic import CLASS_NAMES, TEMPLATES, SyntheticSBIR

SMALL = dict(n_classes=6, n_instances=5, sketches_per_instance=2, progress=False)


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("synthetic")


def test_enough_classes_and_attributes():
    assert len(CLASS_NAMES) >= 30
    for t in TEMPLATES:
        assert len(t.attributes) >= 3, t
        assert all(k >= 2 for _, k in t.attributes), t


def test_every_class_renders_and_classes_differ():
    photos, sketches = [], []
    for label in range(len(TEMPLATES)):
        inst = synthetic.sample_instance(label, 0)
        photo = synthetic.render_photo(inst, 32)
        sketch, strokes = synthetic.render_sketch(inst, 0, 32)
        assert photo.shape == (32, 32, 3) and photo.dtype == np.uint8
        assert sketch.shape == (32, 32) and sketch.min() < 128 < sketch.max()  # some ink, mostly paper
        assert strokes.shape[1] == 3 and strokes[-1, 2] == 1 and set(np.unique(strokes[:, 2])) <= {0.0, 1.0}
        photos.append(photo)
        sketches.append(sketch)
    flat = np.stack(sketches).reshape(len(sketches), -1)
    assert len({row.tobytes() for row in flat}) == len(TEMPLATES)


def test_strokes_rasterise_to_the_sketch():
    inst = synthetic.sample_instance(3, 1)
    img, strokes = synthetic.render_sketch(inst, 1, 64)
    again = synthetic.strokes_to_image(strokes, 64, synthetic.sketch_strokes(inst, 1, 64)[1])
    np.testing.assert_array_equal(img, again)


def test_sketches_of_one_instance_differ_and_attributes_vary():
    inst = synthetic.sample_instance(0, 0)
    a, _ = synthetic.render_sketch(inst, 0, 64)
    b, _ = synthetic.render_sketch(inst, 1, 64)
    assert not np.array_equal(a, b)
    attrs = {synthetic.sample_instance(5, i).attributes for i in range(12)}
    assert len(attrs) > 1


def test_difficulty_zero_removes_jitter_and_clutter():
    inst = synthetic.sample_instance(2, 0)
    easy = synthetic.Difficulty(0, 0, 0)
    s0, _ = synthetic.render_sketch(inst, 0, 64, difficulty=easy)
    s1, _ = synthetic.render_sketch(inst, 1, 64, difficulty=easy)
    h0, _ = synthetic.render_sketch(inst, 0, 64)
    h1, _ = synthetic.render_sketch(inst, 1, 64)
    # no abstraction, no jitter: drawers differ only in pen width, so their ink overlaps
    # far more than that of two default-difficulty drawers
    def iou(a, b):
        a, b = a < 128, b < 128
        return (a & b).sum() / (a | b).sum()

    assert iou(s0, s1) > 0.5 > iou(h0, h1)
    with pytest.raises(ValueError):
        synthetic.Difficulty(jitter=-1)


@pytest.mark.parametrize("task", ["category", "zeroshot", "fg"])
def test_splits_are_disjoint_where_they_must_be(task):
    ds = {(s, m): SyntheticSBIR(task, s, m, in_memory=True, **SMALL)
          for s in ("train", "val", "test") for m in ("sketch", "photo")}
    sk = {s: set(ds[(s, "sketch")].relpaths) for s in ("train", "val", "test")}
    assert not sk["train"] & sk["test"] and not sk["val"] & sk["test"] and not sk["train"] & sk["val"]
    assert all(sk.values())
    if task == "zeroshot":
        cls = {s: set(ds[(s, "sketch")].labels) for s in ("train", "val", "test")}
        assert not cls["train"] & cls["test"] and not cls["val"] & cls["test"] and not cls["train"] & cls["val"]
        names = set(ds[("test", "sketch")].unseen_classes)
        assert names == {ds[("test", "sketch")].classes[c] for c in cls["test"]}
        assert set(ds[("val", "sketch")].val_classes) <= set(ds[("val", "sketch")].seen_classes)
    if task == "fg":
        for s in ("train", "val", "test"):
            # every sketch's photo is in the same split, exactly once
            ph = ds[(s, "photo")].instances
            assert len(set(ph)) == len(ph)
            assert set(ds[(s, "sketch")].instances) == set(ph)
        assert not set(ds[("train", "photo")].instances) & set(ds[("test", "photo")].instances)
    if task == "category":
        assert ds[("test", "photo")].relpaths == ds[("train", "photo")].relpaths  # DSH: shared gallery
        assert set(ds[("test", "sketch")].labels) == set(range(6))  # queries from every class


def test_item_format_and_modalities():
    for modality, channels in (("sketch", 1), ("photo", 3), ("edge", 1)):
        ds = SyntheticSBIR("fg", "val", modality, in_memory=True, **SMALL)
        item = ds[0]
        assert set(item) == {"image", "label", "instance", "domain", "index"}
        assert item["image"].shape == (channels, 64, 64) and item["image"].dtype == torch.float32
        assert 0.0 <= float(item["image"].min()) <= float(item["image"].max()) <= 1.0
        assert item["domain"] == {"sketch": 0, "photo": 1, "edge": 2}[modality]
        assert ds.classes[item["label"]] in CLASS_NAMES
    assert "fg@1" in repr(ds) and "Number of images" in repr(ds)


def test_on_disk_equals_in_memory_and_layout(small_root):
    disk = SyntheticSBIR("fg", "test", "sketch", root=small_root, **SMALL)
    mem = SyntheticSBIR("fg", "test", "sketch", in_memory=True, **SMALL)
    assert len(disk) == len(mem)
    for i in range(len(disk)):
        torch.testing.assert_close(disk[i]["image"], mem[i]["image"], rtol=0, atol=0)
        np.testing.assert_array_equal(disk.strokes(i), mem.strokes(i))
    root = disk.root
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["counts"]["sketches"] == 6 * 5 * 2
    for rel in ("photo", "edge", "sketch", "strokes", "splits/fg@1", "splits/zeroshot@1", "splits/category@1"):
        assert (root / rel).is_dir(), rel
    assert (root / "photo" / CLASS_NAMES[0] / f"{CLASS_NAMES[0]}_0000.png").is_file()
    assert (root / "sketch" / CLASS_NAMES[0] / f"{CLASS_NAMES[0]}_0000-1.png").is_file()
    for rel, digest in manifest["sha256"].items():
        assert hashlib.sha256((root / rel).read_bytes()).hexdigest() == digest
    split = json.loads((root / "splits/fg@1/manifest.json").read_text())
    assert split["name"] == "synthetic/fg@1" and split["counts"]["test_sketch"] == len(disk)


def test_same_seed_gives_byte_identical_files(tmp_path):
    a = SyntheticSBIR("category", "train", "photo", root=tmp_path / "a", n_classes=4, n_instances=3,
                      sketches_per_instance=1, progress=False).root
    b = SyntheticSBIR("category", "train", "photo", root=tmp_path / "b", n_classes=4, n_instances=3,
                      sketches_per_instance=1, progress=False).root
    c = SyntheticSBIR("category", "train", "photo", root=tmp_path / "c", n_classes=4, n_instances=3,
                      sketches_per_instance=1, progress=False, seed=1).root
    assert a.name == b.name != c.name
    assert _tree_digest(a) == _tree_digest(b)
    assert _tree_digest(a) != _tree_digest(c)


def test_materialise_is_idempotent_and_rejects_foreign_folders(tmp_path):
    cfg = SyntheticSBIR("fg", "train", "photo", in_memory=True, n_classes=2, n_instances=3,
                        sketches_per_instance=1).config
    root = synthetic.materialise(cfg, tmp_path, progress=False)
    stamp = (root / "manifest.json").stat().st_mtime_ns
    assert synthetic.materialise(cfg, tmp_path, progress=False) == root
    assert (root / "manifest.json").stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left
    (root / "manifest.json").unlink()
    with pytest.raises(RuntimeError, match="no manifest.json"):
        synthetic.materialise(cfg, tmp_path, progress=False)


def _materialise_in_child(args):
    parent, cfg = args
    return str(synthetic.materialise(cfg, parent, progress=False))


def test_concurrent_materialisation_is_safe(tmp_path):
    cfg = SyntheticSBIR("fg", "train", "photo", in_memory=True, n_classes=2, n_instances=3,
                        sketches_per_instance=1).config
    with mp.get_context("spawn").Pool(2) as pool:
        roots = pool.map(_materialise_in_child, [(tmp_path, cfg)] * 2)
    assert len(set(roots)) == 1
    assert [p.name for p in tmp_path.iterdir()] == [Path(roots[0]).name]
    assert (Path(roots[0]) / "manifest.json").is_file()


def test_registered_names_and_bad_arguments():
    names = list_datasets()
    for name in ("synthetic-category", "synthetic-zeroshot", "synthetic-fg"):
        assert name in names
    ds = build_dataset("synthetic-fg", split="test", modality="photo", category="shoe", in_memory=True,
                       n_instances=8, progress=False)
    assert ds.classes == ["shoe"] and ds.split_name == "synthetic/fg-shoe@1"
    with pytest.raises(ValueError, match="category"):
        build_dataset("synthetic-category", category="shoe", in_memory=True)
    with pytest.raises(ValueError, match="unknown synthetic category"):
        SyntheticSBIR("fg", category="unicorn", in_memory=True)
    with pytest.raises(ValueError, match="split"):
        SyntheticSBIR("fg", split="dev", in_memory=True)
    with pytest.raises(ValueError, match="modality"):
        SyntheticSBIR("fg", modality="pair", in_memory=True)


def test_transform_receives_a_pil_image():
    seen = []

    def transform(img):
        seen.append(img.mode)
        return torch.zeros(1)

    ds = SyntheticSBIR("fg", "val", "photo", in_memory=True, transform=transform, **SMALL)
    assert ds[0]["image"].shape == (1,) and seen == ["RGB"]


def test_chance_levels():
    ch = synthetic.chance_levels([0, 1], [0, 0, 1, 1], [0, 1], [0, 1, 2, 3])
    assert ch["map@all"] == pytest.approx(0.5) and ch["acc@1"] == pytest.approx(0.25)


def test_preview_plots_render():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sbirlib.data.synthetic import preview

    fig = preview.plot_instances([("house", 0), ("cup", 1)], n_sketches=2, size=32)
    assert fig.axes[0].images[0].get_array().shape == (2 * 32 + 2, 4 * 32 + 3 * 2, 3)
    fig2 = preview.plot_classes(["house", "cup", "key"], ncols=2, size=32)
    assert fig2.axes[0].images[0].get_array().shape == (4 * 32 + 3 * 12, 2 * 32 + 12, 3)
    v = preview.instance_views("house", 0, n_sketches=1, size=32)
    assert set(v["attributes"]) == {"windows", "chimney", "door_position"}
    with pytest.raises(ValueError, match="unknown synthetic class"):
        preview.instance_views("unicorn", 0)
    plt.close("all")


def test_build_transform_on_synthetic_items():
    from sbirlib.data.transforms import IMAGENET_MEAN, build_transform

    tf = build_transform(32, channels=3, normalize=True)
    ds = SyntheticSBIR("fg", "val", "sketch", in_memory=True, transform=tf, **SMALL)
    x = ds[0]["image"]
    assert x.shape == (3, 32, 32)
    assert torch.isfinite(x).all()
    white = (1.0 - IMAGENET_MEAN[0]) / 0.229
    assert float(x[0].max()) == pytest.approx(white, abs=1e-4)  # paper stays white after normalising
    plain = build_transform()(Image.new("L", (8, 8), 255))
    assert plain.shape == (1, 8, 8) and float(plain.min()) == 1.0
    aug = build_transform(train=True, max_shift=0.1, max_rotation=10)
    torch.manual_seed(0)
    assert aug(Image.new("L", (16, 16), 255)).min() == 1.0  # white fill outside the image
    with pytest.raises(ValueError, match="3 channels"):
        build_transform(channels=1, normalize=True)


def test_browse_widget_draws_and_redraws(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import IPython.display
    import ipywidgets as widgets

    from sbirlib.data.synthetic import preview

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: shown.extend(objs))
    preview.browse(n_sketches=1, size=32)
    (bundle,) = shown  # the live widget's view and its kernel-free fallback
    box = widgets.widget._instances[bundle["application/vnd.jupyter.widget-view+json"]["model_id"]]
    assert 'class="sbir-frames"' in bundle["text/html"]
    image = box.children[-1]
    assert isinstance(image, widgets.Image) and image.value[:4] == b"\x89PNG"
    first = image.value
    box.children[0].children[1].value = 3  # the instance slider
    assert image.value[:4] == b"\x89PNG" and image.value != first
