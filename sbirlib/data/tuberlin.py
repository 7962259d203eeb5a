"""TU-Berlin sketches (Eitz et al. 2012), TU-Berlin-Extended photos, and the small TU subset.

Layouts accepted, under ``root`` or one of its sub-folders ``tuberlin/``, ``TUBerlin/``,
``tuberlin_subset/``:

* official archive ``png/<class>/<id>.png`` (1111×1111), SAKE's ``png_ready/<class>/``,
  sem-pcyc / DASE ``sketches/<class>/`` (underscore names resolve through the alias table);
* the 40-class subset ``tu-train/<class>/<id>.png`` + ``tu-test/<class>/<id>.png`` (150×150;
  one file is 1111×1111, so images that differ from the layout's native size are resized);
* TU-Berlin-Ext photos ``ImageResized/<folder>/*.JPEG`` (raw archive, nine misspelled folders
  such as ``tromobone``), ``ImageResized_ready/<TU name>/``, ``images/<underscore name>/``.

Splits (sbirlib's decisions where the dataset has none; all seeded and documented):

* ``split_name=None``: the subset uses ``tu-test`` as test; the full set uses the same rule, the
  **10 lowest ids of each class** (``tuberlin/cat/low10@1``). Validation = ``round(0.1 * n)``
  of each class's remaining sketches (``default_rng(val_seed + c)`` for the class at sorted position
  ``c``), the rest is train.
* ``split_name="tuberlin_ext/zs/sake30"`` (or any shipped zero-shot split): train = seen minus
  val classes, val = val classes, test = unseen classes, all sketches/photos of those classes.
* ``split_name="tuberlin_ext/cat/dsh10@dase"`` (category level, DSH protocol): the 2,500 test
  queries of DASE's published ``TUBerlin_sketch.json``, read from ``<root>/splits/`` (the fetch
  script downloads it) or ``split_file=``; every other sketch is train/val.
* ``split_file=PATH``: a ``query_test.txt`` (one ``<class>/<file>`` per line) or DASE JSON.

Category-level photos (TU-Berlin-Ext, no zero-shot split) are the same in every split: the DSH
protocol trains on all photos and retrieves from all of them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sbirlib.data.base import SBIRImageDataset, load_image, verify_str_arg
from sbirlib.data.download import (
    download_root,
    fetch,
    image_to_tensor,
    locate_root,
    missing_dataset,
    scan_class_folders,
)
from sbirlib.data.names import TUBERLIN_EXT_PHOTO_FOLDERS, ClassNameResolver, name_key
from sbirlib.data.registry import register_dataset

__all__ = ["ClassFolderDataset", "TUBerlin", "TUBerlinExt", "carve_validation"]

SPLITS = ("train", "val", "test")
_TU_SUBDIRS = ("tuberlin", "TUBerlin", "tuberlin_subset", "tu-berlin", "TU-Berlin", "tuberlin_ext")
_TU_SKETCH_DIRS = ("png", "png_ready", "sketches", "sketch")
_TU_PHOTO_DIRS = ("ImageResized", "ImageResized_ready", "images", "photo", "photos")


class ClassFolderDataset(SBIRImageDataset):
    """An :class:`SBIRImageDataset` over image files, with optional resizing.

    ``image_size`` (int) resizes every image to a square of that side before the transform;
    ``native_size`` resizes only images whose size differs from it (layouts with a few odd
    files). Without a transform an item's image is a float tensor in [0, 1].
    """

    def __init__(self, *args: Any, image_size: int | None = None, native_size: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.image_size = image_size
        self.native_size = native_size

    def fingerprint(self) -> str:
        """SHA-256 over the relative paths and byte sizes of this split's files (cheap: no reads).

        Changes when files are added, removed, renamed or re-encoded; recorded in run records.
        """
        import hashlib

        digest = hashlib.sha256()
        root = Path(self.root) if self.root is not None else None
        for path, label in zip(self.samples, self.labels):
            p = Path(path)
            rel = p.relative_to(root) if root is not None and p.is_relative_to(root) else p
            size = p.stat().st_size if p.exists() else -1
            digest.update(f"{rel.as_posix()}\t{size}\t{label}\n".encode())
        return digest.hexdigest()

    def load_sample(self, sample: Any) -> Any:
        image = load_image(sample, "RGB" if self.modality == "photo" else "L")
        size = self.image_size or self.native_size
        if size is not None and image.size != (size, size):
            image = image.resize((size, size), Image.Resampling.BILINEAR)
        return image_to_tensor(image) if self.transform is None else image


def carve_validation(items: Sequence[Any], fraction: float, seed: int) -> tuple[list[Any], list[Any]]:
    """Split one class's items into (train, val): ``round(fraction * n)`` to val, ``default_rng(seed)``."""
    n_val = int(round(fraction * len(items)))
    if n_val == 0:
        return list(items), []
    perm = np.random.default_rng(seed).permutation(len(items))
    val_idx = set(perm[:n_val].tolist())
    return ([x for i, x in enumerate(items) if i not in val_idx], [x for i, x in enumerate(items) if i in val_idx])


def _stem_id(path: Path) -> tuple[int, str]:
    m = re.search(r"\d+", path.stem)
    return (int(m.group()) if m else 1 << 62, path.name)


def _sketch_layout(folder: Path) -> tuple[str, Path] | None:
    if (folder / "tu-train").is_dir() and (folder / "tu-test").is_dir():
        return "subset", folder
    for sub in _TU_SKETCH_DIRS:
        if (folder / sub).is_dir():
            return sub, folder / sub
    return None


def _photo_dir(folder: Path) -> Path | None:
    for sub in _TU_PHOTO_DIRS:
        if (folder / sub).is_dir():
            return folder / sub
    return None


class TUBerlin(ClassFolderDataset):
    """TU-Berlin sketches: 250 classes × 80 (or the 40-class ``tu-train``/``tu-test`` subset).

    Args:
        root: folder holding one of the layouts above (``None``: ``$SBIR_DATA``).
        split: ``"train"`` | ``"val"`` | ``"test"``.
        modality: ``"sketch"`` (TU-Berlin has no photos; use :class:`TUBerlinExt`).
        transform: applied to the PIL image; ``None`` gives a ``[1, H, W]`` float tensor.
        download: fetch the official PNG archive into ``root`` first.
        split_name: a shipped zero-shot split (``"tuberlin_ext/zs/sake30"``), the category-level
            ``"tuberlin_ext/cat/dsh10@dase"``, or ``None`` (10 lowest ids per class are test).
        split_file: the test queries: ``query_test.txt`` (``<class>/<file>`` per line, or its folder)
            or DASE's JSON.
        classes: restrict to these classes (any spelling); unknown names raise.
        val_fraction, val_seed: validation carve-out (per class, or of the seen classes).
        image_size: resize to this square size (``None``: native size).
    """

    dataset_name = "tuberlin"
    _has_photos = False

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "train",
        modality: str = "sketch",
        transform: Callable[[Any], Any] | None = None,
        download: bool = False,
        *,
        split_name: str | None = None,
        split_file: str | os.PathLike | None = None,
        classes: Iterable[str] | None = None,
        val_fraction: float = 0.1,
        val_seed: int = 0,
        image_size: int | None = None,
    ) -> None:
        verify_str_arg(split, "split", SPLITS)
        verify_str_arg(modality, "modality", ("sketch", "photo", "edge"))
        if modality == "edge":
            raise ValueError(f"{self.dataset_name} has no edge maps; use modality='photo' with "
                             "sbirlib.data.edges.edge_map as the transform")
        if modality == "photo" and not self._has_photos:
            raise ValueError("TU-Berlin has sketches only; photos come with TU-Berlin-Extended "
                             "(dataset 'tuberlin-ext', class TUBerlinExt)")
        self.split_name = split_name
        self.val_fraction, self.val_seed = float(val_fraction), int(val_seed)
        if download:
            root = download_root(root)
            for group in ("tuberlin", "tuberlin-ext") if self._has_photos else ("tuberlin",):
                fetch(group, root)
        expected = "png/<class>/<id>.png (official), sketches/<class>/, png_ready/<class>/ or tu-train/ + tu-test/"
        base = locate_root(self.dataset_name, root, _TU_SUBDIRS, lambda f: _sketch_layout(f) is not None, expected)
        layout, sketch_dir = _sketch_layout(base)  # type: ignore[misc]
        self.layout = layout
        self.base = base
        self._split_obj = None
        if split_name is not None:
            from sbirlib.data.splits import load_split

            self._split_obj = load_split(split_name)
            if self._split_obj.task not in ("zeroshot", "category"):
                raise ValueError(f"split_name={split_name!r} is a {self._split_obj.task} split; TU-Berlin takes "
                                 "zero-shot or category-level splits")
            if self._split_obj.task == "category":
                from sbirlib.data.splits import find_query_file

                split_file = find_query_file(self._split_obj, [base, base.parent], split_file)
                self._split_obj = None  # category level: every class, queries from the list

        sketches = self._index_sketches(layout, sketch_dir, split, classes, split_file)
        if modality == "sketch":
            files_by_class = sketches
        else:
            files_by_class = self._index_photos(sorted(sketches), split)
        class_names = sorted(files_by_class)
        samples, labels = [], []
        for label, name in enumerate(class_names):
            samples += files_by_class[name]
            labels += [label] * len(files_by_class[name])
        super().__init__(samples, labels, class_names, modality, split, transform=transform, root=base,
                         image_size=image_size, native_size=150 if layout == "subset" else None)

    # -- sketches ---------------------------------------------------------------------------
    def _index_sketches(self, layout: str, sketch_dir: Path, split: str, classes: Iterable[str] | None,
                        split_file: str | os.PathLike | None) -> dict[str, list[Path]]:
        wanted = list(classes) if classes is not None else None
        if self._split_obj is not None:
            part = self._split_obj.classes_for(split)
            if wanted is not None:
                keys = {name_key(c) for c in wanted}
                part = tuple(c for c in part if name_key(c) in keys)
            wanted = list(part)
        if layout == "subset":
            train = scan_class_folders(self.base / "tu-train", self.dataset_name, classes=None)
            test = scan_class_folders(self.base / "tu-test", self.dataset_name, classes=None)
            if sorted(train) != sorted(test):
                raise ValueError(f"{self.dataset_name}: tu-train/ and tu-test/ under {self.base} hold different classes")
            if wanted is not None:
                names = ClassNameResolver(train, where=str(self.base / "tu-train")).resolve_all(wanted)
                train = {c: train[c] for c in names}
                test = {c: test[c] for c in names}
            if self._split_obj is not None:  # zero-shot: every sketch of the split's classes
                return {c: sorted(train[c] + test[c], key=_stem_id) for c in train}
            if split == "test":
                return test
            return self._carve(train, split)
        everything = scan_class_folders(sketch_dir, self.dataset_name, classes=wanted)
        for files in everything.values():
            files.sort(key=_stem_id)
        if self._split_obj is not None:
            return everything
        if split_file is not None:
            listed = self._read_query_list(Path(split_file), sketch_dir)
            test = {c: [f for f in fs if f"{c}/{f.name}" in listed] for c, fs in everything.items()}
            rest = {c: [f for f in fs if f"{c}/{f.name}" not in listed] for c, fs in everything.items()}
        else:
            test = {c: fs[:10] for c, fs in everything.items()}
            rest = {c: fs[10:] for c, fs in everything.items()}
        # every class stays, even without a sample in this split, so that a class has the
        # same label in every split and modality (queries and gallery must agree)
        return test if split == "test" else self._carve(rest, split)

    def _read_query_list(self, folder: Path, sketch_dir: Path) -> set[str]:
        from sbirlib.data.splits import read_query_list

        path = folder / "query_test.txt" if (folder.is_dir() or not folder.suffix) else folder
        if not path.is_file():
            raise FileNotFoundError(f"{self.dataset_name}: split file {path} not found; expected a text file with "
                                    "one <class>/<file> per line, or DASE's TUBerlin_sketch.json")
        resolver = ClassNameResolver([p.name for p in sketch_dir.iterdir() if p.is_dir()], where=str(sketch_dir))
        return {f"{resolver.resolve(cls)}/{fname}" for cls, fname in read_query_list(path)}

    def _carve(self, files: dict[str, list[Path]], split: str) -> dict[str, list[Path]]:
        out = {}
        for i, (c, fs) in enumerate(sorted(files.items())):
            tr, va = carve_validation(fs, self.val_fraction, self.val_seed + i)
            out[c] = va if split == "val" else tr
        if split == "val" and not any(out.values()):
            raise ValueError("split='val' is empty (val_fraction=0)")
        return out

    # -- photos (TU-Berlin-Ext) ---------------------------------------------------------------
    def _index_photos(self, sketch_classes: list[str], split: str) -> dict[str, list[Path]]:
        photo_dir = _photo_dir(self.base)
        if photo_dir is None:
            raise missing_dataset("tuberlin-ext", self.base, "photos in ImageResized/<class>/ (or images/, "
                                  "ImageResized_ready/)")
        folders = sorted(p.name for p in photo_dir.iterdir() if p.is_dir())
        resolver = ClassNameResolver(folders, extra=TUBERLIN_EXT_PHOTO_FOLDERS, where=str(photo_dir))
        reverse = {}
        for sk in sketch_classes:
            # raw archive: 'mouse (animal)' lives in 'mouse'; try the explicit table first
            raw = next((k for k, v in TUBERLIN_EXT_PHOTO_FOLDERS.items() if v == sk and k in folders), None)
            reverse[sk] = raw or resolver.resolve(sk)
        found = scan_class_folders(photo_dir, "tuberlin-ext", classes=list(reverse.values()))
        return {sk: found[reverse[sk]] for sk in sketch_classes}

    def extra_repr(self) -> str:
        lines = [f"Layout: {self.layout}"]
        if self.split_name:
            lines.append(f"Split name: {self._split_obj.full_name if self._split_obj else self.split_name}")
        if self.split in ("train", "val"):
            lines.append(f"Validation: {self.val_fraction:g} (seed {self.val_seed})")
        return "\n".join(lines)


class TUBerlinExt(TUBerlin):
    """TU-Berlin sketches plus the ImageNet photos of TU-Berlin-Extended (``modality="photo"``)."""

    dataset_name = "tuberlin-ext"
    _has_photos = True


register_dataset(
    "tuberlin",
    "TU-Berlin sketches: 250 classes x 80 (or the 40-class tu-train/tu-test subset); sketches only",
)(TUBerlin)


register_dataset(
    "tuberlin-ext",
    "TU-Berlin-Extended: TU-Berlin sketches + ~204k ImageNet photos; category-level (dsh10) or zero-shot (sake30, sempcyc30)",
)(TUBerlinExt)
