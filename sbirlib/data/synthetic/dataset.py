"""The synthetic SBIR benchmark as torch datasets, materialised on disk like a real dataset.

A *world* is every instance of a set of classes (photo, edge map of the photo, several sketches
with their strokes). It is written once, atomically, to ``cache_dir("synthetic", <hash>)`` in a
Sketchy-like layout::

    synthetic-<hash>/
        manifest.json                     # config, counts, per-file SHA-256 (written last)
        instances.json                    # class, attributes and proportions of every instance
        photo/<class>/<class>_<iii>.png   # RGB photos
        edge/<class>/<class>_<iii>.png    # edge maps of the photos (sbirlib.data.edges)
        sketch/<class>/<class>_<iii>-<k>.png
        strokes/<class>.npz               # key "<class>_<iii>-<k>": float32 [N, 3] (x, y, pen_lift)
        splits/<task>@<version>/          # train/val/test file lists, class lists, manifest.json

Tasks only differ in their split files, so the category-level and zero-shot benchmarks share one
world. :class:`SyntheticSBIR` reads the split lists and the image files back exactly as a real
loader would; ``in_memory=True`` renders the same pixels without touching the disk.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from sbirlib.data.base import SBIRImageDataset, verify_str_arg
from sbirlib.data.edges import edge_map
from sbirlib.data.synthetic.render import Difficulty, render_photo, render_sketch, sample_instance
from sbirlib.data.synthetic.shapes import CLASS_NAMES

__all__ = [
    "GENERATOR_VERSION",
    "SPLIT_VERSION",
    "TASKS",
    "SyntheticConfig",
    "SyntheticSBIR",
    "materialise",
    "split_name",
    "chance_levels",
]

GENERATOR_VERSION = 3  # bump when the pixels change: a new cache folder, never a silent edit
SPLIT_VERSION = 1  # bump when a split rule changes: a new split name ``synthetic/<task>@<v>``
TASKS = ("category", "zeroshot", "fg")
SPLITS = ("train", "val", "test")
EDGE_SIGMA = 1.0  # edge_map smoothing used for the synthetic photos (64-128 px)

# defaults per task: (instances per class, sketches per instance)
_TASK_DEFAULTS = {"category": (10, 2), "zeroshot": (10, 2), "fg": (12, 2)}
_FG_SINGLE_CLASS_INSTANCES = 48
_HOLDOUT = {"test": 0.25, "val": 0.15}  # fractions held out per class (category sketches, fg instances)
_ZS_UNSEEN, _ZS_VAL = 0.2, 0.15  # zero-shot: fraction of classes unseen, of seen classes for val


@dataclass(frozen=True)
class SyntheticConfig:
    """Everything that determines the pixels of a synthetic world (hashed into its folder name)."""

    classes: tuple[str, ...]
    n_instances: int
    sketches_per_instance: int
    image_size: int = 64
    seed: int = 0
    difficulty: Difficulty = field(default_factory=Difficulty)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["classes"] = list(self.classes)
        d["generator_version"] = GENERATOR_VERSION
        d["edge_sigma"] = EDGE_SIGMA
        return d

    @property
    def key(self) -> str:
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def split_name(task: str, category: str | None = None) -> str:
    """The stable, versioned name of a synthetic split, e.g. ``synthetic/fg@1``."""
    verify_str_arg(task, "task", TASKS)
    suffix = f"-{category}" if category else ""
    return f"synthetic/{task}{suffix}@{SPLIT_VERSION}"


# -- file names ----------------------------------------------------------------------------------
def _photo_rel(cls: str, i: int, modality: str = "photo") -> str:
    return f"{modality}/{cls}/{cls}_{i:04d}.png"


def _sketch_rel(cls: str, i: int, k: int) -> str:
    return f"sketch/{cls}/{cls}_{i:04d}-{k}.png"


def _png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


# -- generation ----------------------------------------------------------------------------------
def _render_world(cfg: SyntheticConfig, progress: bool = True):
    """Yield ``(class, i, photo, edge, [(sketch, strokes), ...], instance)`` for every instance."""
    from tqdm.auto import tqdm

    diff = cfg.difficulty
    for cls in tqdm(cfg.classes, desc="synthetic: rendering", disable=not progress, leave=False):
        label = CLASS_NAMES.index(cls)
        for i in range(cfg.n_instances):
            inst = sample_instance(label, i, cfg.seed)
            photo = render_photo(inst, cfg.image_size, cfg.seed, diff)
            edge = (edge_map(photo, sigma=EDGE_SIGMA)[0].numpy() * 255).astype(np.uint8)
            sketches = [render_sketch(inst, k, cfg.image_size, cfg.seed, diff)
                        for k in range(cfg.sketches_per_instance)]
            yield cls, i, photo, edge, sketches, inst


def _split_lists(cfg: SyntheticConfig, task: str) -> dict[str, Any]:
    """The split of ``task`` over the world ``cfg``: file lists and class lists (deterministic).

    Class and sample choices use a fixed split seed (not ``cfg.seed``), so a split name means
    the same classes and the same held-out items whatever seed drew the pixels.
    """
    classes = list(cfg.classes)
    n, spi = cfg.n_instances, cfg.sketches_per_instance
    photos = {c: [_photo_rel(c, i) for i in range(n)] for c in classes}
    sketches = {c: [_sketch_rel(c, i, k) for i in range(n) for k in range(spi)] for c in classes}
    out: dict[str, Any] = {"name": split_name(task, classes[0] if task == "fg" and len(classes) == 1 else None)}
    lists = {f"{s}_{m}": [] for s in SPLITS for m in ("sketch", "photo")}

    def holdout(m: int, c: str, salt: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([SPLIT_VERSION, salt, CLASS_NAMES.index(c)])
        perm = rng.permutation(m)
        n_test = max(1, int(round(_HOLDOUT["test"] * m)))
        n_val = max(1, int(round(_HOLDOUT["val"] * m)))
        if n_test + n_val >= m:
            raise ValueError(f"class {c!r} has {m} items, too few to hold out {n_test} test and {n_val} val")
        return {"test": np.sort(perm[:n_test]), "val": np.sort(perm[n_test:n_test + n_val]),
                "train": np.sort(perm[n_test + n_val:])}

    if task == "category":
        # DSH protocol: held-out query sketches per class; every photo is gallery and training data
        for c in classes:
            for s, idx in holdout(n * spi, c, 1).items():
                lists[f"{s}_sketch"] += [sketches[c][j] for j in idx]
            for s in SPLITS:
                lists[f"{s}_photo"] += photos[c]
        out.update(seen=classes, unseen=[], val_classes=[])
    elif task == "zeroshot":
        rng = np.random.default_rng([SPLIT_VERSION, 2, len(classes)])
        perm = [classes[j] for j in rng.permutation(len(classes))]
        n_unseen = max(1, int(round(_ZS_UNSEEN * len(classes))))
        n_val = max(1, int(round(_ZS_VAL * (len(classes) - n_unseen))))
        if n_unseen + n_val >= len(classes):
            raise ValueError(f"zero-shot needs more classes than {len(classes)}")
        unseen, val_cls = sorted(perm[:n_unseen]), sorted(perm[n_unseen:n_unseen + n_val])
        train_cls = sorted(perm[n_unseen + n_val:])
        for s, group in (("train", train_cls), ("val", val_cls), ("test", unseen)):
            for c in group:
                lists[f"{s}_sketch"] += sketches[c]
                lists[f"{s}_photo"] += photos[c]
        out.update(seen=sorted(train_cls + val_cls), unseen=unseen, val_classes=val_cls)
    elif task == "fg":
        # split by instance: each instance (its photo and all its sketches) is in one split
        for c in classes:
            for s, idx in holdout(n, c, 3).items():
                lists[f"{s}_photo"] += [photos[c][j] for j in idx]
                lists[f"{s}_sketch"] += [_sketch_rel(c, int(j), k) for j in idx for k in range(spi)]
        out.update(seen=classes, unseen=[], val_classes=[])
    else:  # pragma: no cover - verified by the caller
        raise ValueError(task)
    out["lists"] = lists
    return out


def _write_split(root: Path, task: str, cfg: SyntheticConfig) -> None:
    sp = _split_lists(cfg, task)
    folder = root / "splits" / f"{task}@{SPLIT_VERSION}"
    folder.mkdir(parents=True, exist_ok=True)
    files = dict(sp["lists"])
    files["query_test"] = sp["lists"]["test_sketch"]
    files["gallery_test"] = sp["lists"]["test_photo"]
    files["seen"], files["unseen"], files["val"] = sp["seen"], sp["unseen"], sp["val_classes"]
    digests = {}
    for name, lines in files.items():
        data = "".join(f"{x}\n" for x in lines).encode()
        (folder / f"{name}.txt").write_bytes(data)
        digests[f"{name}.txt"] = hashlib.sha256(data).hexdigest()
    manifest = {
        "name": sp["name"],
        "task": task,
        "origin": "generated by sbirlib.data.synthetic (deterministic, split seed fixed per version)",
        "class_name_convention": "lower-case, underscore",
        "counts": {name: len(lines) for name, lines in files.items()},
        "gallery_duplicates": False,
        "validation": {"category": "held-out training sketches of every class",
                       "zeroshot": "classes carved from the seen classes",
                       "fg": "held-out instances of every class"}[task],
        "gallery": {"category": "all photos (also training data), as in the DSH protocol",
                    "zeroshot": "all photos of the unseen classes",
                    "fg": "the test photos (one per test instance)"}[task],
        "metrics": {"category": "map@all, p@100", "zeroshot": "map@all, p@100",
                    "fg": "acc@1, acc@10"}[task],
        "sha256": digests,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def materialise(cfg: SyntheticConfig, parent: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """Write the world ``cfg`` (images, strokes, all task splits) once; return its folder.

    Idempotent: an existing complete folder is reused. The world is rendered into a temporary
    sibling folder and moved into place with one atomic ``rename``, so concurrent processes
    never see (or corrupt) a half-written benchmark; the loser of a race discards its copy.
    """
    parent = Path(parent) if parent is not None else _cache_parent()
    root = parent / f"synthetic-{cfg.key}"
    if (root / "manifest.json").is_file():
        return root
    if root.exists() and any(root.iterdir()):
        raise RuntimeError(
            f"{root} exists but has no manifest.json (an interrupted or foreign folder); "
            "delete it and the benchmark will be generated again"
        )
    parent.mkdir(parents=True, exist_ok=True)
    tmp = parent / f".synthetic-{cfg.key}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        _write_world(tmp, cfg, progress)
        try:
            if root.exists():  # an empty folder left by someone: rename cannot replace it
                root.rmdir()
            os.rename(tmp, root)
        except OSError:
            if not (root / "manifest.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def _write_world(tmp: Path, cfg: SyntheticConfig, progress: bool) -> None:
    digests: dict[str, str] = {}
    instances = []
    strokes_by_class: dict[str, dict[str, np.ndarray]] = {}

    def put(rel: str, data: bytes) -> None:
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        digests[rel] = hashlib.sha256(data).hexdigest()

    for cls, i, photo, edge, sketches, inst in _render_world(cfg, progress):
        put(_photo_rel(cls, i), _png_bytes(photo))
        put(_photo_rel(cls, i, "edge"), _png_bytes(edge))
        for k, (img, strokes) in enumerate(sketches):
            put(_sketch_rel(cls, i, k), _png_bytes(img))
            strokes_by_class.setdefault(cls, {})[f"{cls}_{i:04d}-{k}"] = strokes
        instances.append({"class": cls, "index": i, "attributes": inst.attribute_dict(),
                          "proportions": [round(float(x), 6) for x in inst.u]})
    for cls, arrays in strokes_by_class.items():
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        put(f"strokes/{cls}.npz", buf.getvalue())
    put("instances.json", (json.dumps(instances, indent=0, sort_keys=True) + "\n").encode())
    for task in TASKS:
        if task == "zeroshot" and len(cfg.classes) < 4:
            continue
        _write_split(tmp, task, cfg)
    manifest = {
        "name": "sbirlib synthetic SBIR benchmark",
        "config": cfg.to_dict(),
        "key": cfg.key,
        "counts": {"classes": len(cfg.classes), "instances": len(instances),
                   "photos": len(instances), "sketches": len(instances) * cfg.sketches_per_instance},
        "layout": "photo/<class>/<class>_<iii>.png, edge/<class>/<class>_<iii>.png, "
                  "sketch/<class>/<class>_<iii>-<k>.png, strokes/<class>.npz, splits/<task>@<v>/",
        "splits": sorted(p.name for p in (tmp / "splits").iterdir()),
        "sha256": dict(sorted(digests.items())),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def _cache_parent() -> Path:
    from sbirlib.utils import cache_dir

    return cache_dir("synthetic")


# -- the dataset ---------------------------------------------------------------------------------
def _resolve_config(task: str, image_size: int, seed: int, category: str | None, n_classes: int | None,
                    n_instances: int | None, sketches_per_instance: int | None,
                    difficulty: Difficulty) -> SyntheticConfig:
    if category is not None:
        if task != "fg":
            raise ValueError(f"category={category!r} only applies to task='fg' (single-category "
                             f"fine-grained retrieval); task={task!r} uses all classes")
        if category not in CLASS_NAMES:
            raise ValueError(f"unknown synthetic category {category!r}; known: {', '.join(CLASS_NAMES)}")
        classes: tuple[str, ...] = (category,)
    else:
        n_all = len(CLASS_NAMES)
        n_classes = n_all if n_classes is None else int(n_classes)
        if not 1 <= n_classes <= n_all:
            raise ValueError(f"n_classes={n_classes} must lie in [1, {n_all}]")
        classes = CLASS_NAMES[:n_classes]
    default_n, default_k = _TASK_DEFAULTS[task]
    if category is not None:
        default_n = _FG_SINGLE_CLASS_INSTANCES
    n_instances = default_n if n_instances is None else int(n_instances)
    k = default_k if sketches_per_instance is None else int(sketches_per_instance)
    if n_instances < 3 or k < 1:
        raise ValueError(f"need n_instances >= 3 and sketches_per_instance >= 1, got {n_instances}, {k}")
    if image_size < 16:
        raise ValueError(f"image_size={image_size} is too small (>= 16)")
    return SyntheticConfig(tuple(classes), n_instances, k, int(image_size), int(seed), difficulty)


class SyntheticSBIR(SBIRImageDataset):
    """One split and modality of the synthetic SBIR benchmark (``sbirlib/data/synthetic``).

    Args:
        task: ``"category"`` (DSH-style held-out query sketches, all photos as gallery),
            ``"zeroshot"`` (disjoint seen / unseen classes, validation classes carved from seen)
            or ``"fg"`` (instance-level: train/val/test split by instance).
        split: ``"train"``, ``"val"`` or ``"test"`` (test sketches are the queries, test photos
            the gallery).
        modality: ``"sketch"``, ``"photo"`` or ``"edge"`` (edge maps of the photos).
        image_size: side length in pixels (64 default; 128, 224, 256 work too).
        root: parent folder for the materialised benchmark (default: the sbirlib cache,
            ``$SBIR_CACHE/synthetic``). Never your real-data folder.
        seed: seed of the generator (pixels); splits are fixed per split version.
        transform: applied to the PIL image; without one, items are float tensors in [0, 1]
            (``[1, H, W]`` for sketch/edge, ``[3, H, W]`` for photos).
        category: ``task="fg"`` only: restrict to one class (QMUL-style single-category FG);
            ``None`` keeps every class (the cross-category variant).
        n_classes, n_instances, sketches_per_instance: size knobs (``None`` = task default).
        in_memory: render into memory instead of reading files (unit tests; same pixels).
        jitter, abstraction, clutter: difficulty knobs (see :class:`Difficulty`).
        download: accepted for torchvision compatibility; the data are always generated.
        progress: show a progress bar while generating.
    """

    def __init__(
        self,
        task: str = "category",
        split: str = "train",
        modality: str = "sketch",
        image_size: int = 64,
        root: str | os.PathLike | None = None,
        seed: int = 0,
        transform: Callable[[Any], Any] | None = None,
        *,
        category: str | None = None,
        n_classes: int | None = None,
        n_instances: int | None = None,
        sketches_per_instance: int | None = None,
        in_memory: bool = False,
        download: bool = False,
        progress: bool = True,
        jitter: float = 1.0,
        abstraction: float = 1.0,
        clutter: float = 1.0,
    ) -> None:
        verify_str_arg(task, "task", TASKS)
        verify_str_arg(split, "split", SPLITS)
        verify_str_arg(modality, "modality", ("sketch", "photo", "edge"))
        self.task = task
        self.config = _resolve_config(task, image_size, seed, category, n_classes, n_instances,
                                      sketches_per_instance, Difficulty(jitter, abstraction, clutter))
        self.split_name = split_name(task, category)
        self.in_memory = bool(in_memory)
        if task == "zeroshot" and len(self.config.classes) < 4:
            raise ValueError("task='zeroshot' needs n_classes >= 4")
        lists = _split_lists(self.config, task)
        self.seen_classes, self.unseen_classes = list(lists["seen"]), list(lists["unseen"])
        self.val_classes = list(lists["val_classes"])
        rels = lists["lists"][f"{split}_{'sketch' if modality == 'sketch' else 'photo'}"]
        if modality == "edge":
            rels = [r.replace("photo/", "edge/", 1) for r in rels]
        classes = list(self.config.classes)
        folder = None
        if self.in_memory:
            self._arrays = self._render_subset(rels)
            samples: list[Any] = list(range(len(rels)))
        else:
            if root is not None:
                real = _real_data_root()
                if real is not None and Path(root).resolve() == real.resolve():
                    warnings.warn(f"root={root} is the real-data folder (SBIR_DATA); the synthetic "
                                  "benchmark is written to the sbirlib cache instead", stacklevel=2)
                    root = None
            folder = materialise(self.config, root, progress=progress)
            listed = (folder / "splits" / f"{task}@{SPLIT_VERSION}" /
                      f"{split}_{'sketch' if modality == 'sketch' else 'photo'}.txt")
            if not listed.is_file():
                raise FileNotFoundError(f"split file {listed} is missing; delete {folder} to regenerate")
            on_disk = listed.read_text().split()
            expect = [r.replace("edge/", "photo/", 1) for r in rels]
            if on_disk != expect:
                raise RuntimeError(f"split file {listed} does not match split {self.split_name}; "
                                   f"delete {folder} to regenerate")
            samples = [folder / r for r in rels]
        self.relpaths = rels
        labels, instances, drawers = [], [], []
        for r in rels:
            stem = r.rsplit("/", 1)[1][:-4]
            cls, rest = stem.rsplit("_", 1)
            idx, _, k = rest.partition("-")
            labels.append(classes.index(cls))
            instances.append(classes.index(cls) * self.config.n_instances + int(idx))
            drawers.append(int(k) if k else -1)
        self.drawers = drawers
        super().__init__(samples, labels, classes, modality, split, instances, transform, folder)

    def _render_subset(self, rels: Sequence[str]) -> list[np.ndarray]:
        cfg, cache = self.config, {}
        out = []
        for r in rels:
            kind, cls, fname = r.split("/")
            idx, _, k = fname[:-4].rsplit("_", 1)[1].partition("-")
            i = int(idx)
            if (cls, i) not in cache:
                cache[(cls, i)] = sample_instance(CLASS_NAMES.index(cls), i, cfg.seed)
            inst = cache[(cls, i)]
            if kind == "sketch":
                out.append(render_sketch(inst, int(k), cfg.image_size, cfg.seed, cfg.difficulty)[0])
            else:
                photo = render_photo(inst, cfg.image_size, cfg.seed, cfg.difficulty)
                if kind == "edge":
                    photo = (edge_map(photo, sigma=EDGE_SIGMA)[0].numpy() * 255).astype(np.uint8)
                out.append(photo)
        return out

    # -- loading -----------------------------------------------------------------------------
    def load_sample(self, sample: Any):
        if self.in_memory:
            arr = self._arrays[sample]
            if self.transform is not None:
                return Image.fromarray(arr)
            return _to_tensor(arr)
        img = super().load_sample(sample)
        if self.transform is not None:
            return img
        return _to_tensor(np.asarray(img))

    def strokes(self, index: int) -> np.ndarray:
        """The ``(x, y, pen_lift)`` strokes (float32 ``[N, 3]``, pixel units) of sketch ``index``."""
        if self.modality != "sketch":
            raise ValueError("strokes() exists only for modality='sketch'")
        rel = self.relpaths[index]
        cls, fname = rel.split("/")[1:]
        if self.in_memory or self.root is None:
            inst = sample_instance(CLASS_NAMES.index(cls), self.instances[index] % self.config.n_instances,
                                   self.config.seed)
            from sbirlib.data.synthetic.render import sketch_strokes

            return sketch_strokes(inst, self.drawers[index], self.config.image_size, self.config.seed,
                                  self.config.difficulty)[0]
        with np.load(self.root / "strokes" / f"{cls}.npz", allow_pickle=False) as z:
            return z[fname[:-4]]

    def instance_attributes(self, index: int) -> dict[str, Any]:
        """Class name, discrete attributes and continuous proportions of item ``index``."""
        cls = self.classes[self.labels[index]]
        i = self.instances[index] % self.config.n_instances
        inst = sample_instance(CLASS_NAMES.index(cls), i, self.config.seed)
        return {"class": cls, "instance": i, "attributes": inst.attribute_dict(),
                "proportions": [float(x) for x in inst.u]}

    def extra_repr(self) -> str:
        c = self.config
        d = c.difficulty
        return (f"Task: {self.task} ({self.split_name})\n"
                f"Classes in split: {len(set(self.labels))} of {len(self.classes)}\n"
                f"Image size: {c.image_size}, seed: {c.seed}, instances/class: {c.n_instances}, "
                f"sketches/instance: {c.sketches_per_instance}\n"
                f"Difficulty: jitter={d.jitter}, abstraction={d.abstraction}, clutter={d.clutter}"
                + ("\nIn memory" if self.in_memory else ""))


def _to_tensor(arr: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.array(arr, dtype=np.float32)).div_(255.0)
    return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1).contiguous()


def _real_data_root() -> Path | None:
    from sbirlib.utils import data_root

    try:
        return data_root(required=False)
    except Exception:  # pragma: no cover - a broken SBIR_DATA must not break synthetic data
        return None


def chance_levels(query_labels: Sequence[int], gallery_labels: Sequence[int],
                  query_instances: Sequence[int] | None = None,
                  gallery_instances: Sequence[int] | None = None) -> dict[str, float]:
    """Expected metrics of a random ranking for a query set against a gallery.

    Category level: ``map@all`` of a random ranking is (about) the positive rate, the fraction
    of the gallery sharing the query's class, averaged over queries; ``p@k`` likewise (its
    expectation is exactly the positive rate for k <= gallery size). Note that P@100 cannot
    exceed (photos per class) / 100: 0.1 on the default synthetic galleries.
    Instance level (instances given): ``acc@k = k / |gallery|`` for one true match per query.
    """
    ql, gl = np.asarray(query_labels), np.asarray(gallery_labels)
    counts = {c: int(n) for c, n in zip(*np.unique(gl, return_counts=True))}
    rate = float(np.mean([counts.get(int(c), 0) / len(gl) for c in ql]))
    out = {"map@all": rate, "p@10": rate, "p@100": rate}
    if query_instances is not None and gallery_instances is not None:
        g = len(gallery_instances)
        for k in (1, 5, 10):
            out[f"acc@{k}"] = min(1.0, k / g)
    return out
