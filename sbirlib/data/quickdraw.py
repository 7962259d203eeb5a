"""QuickDraw-Extended (Dey et al. 2019) and Google's Quick, Draw! ``numpy_bitmap`` subset.

**QuickDraw-Extended**, under ``root`` or ``quickdraw_ext/``::

    QuickDraw_sketches_final/<class>/<key_id>.png   (or sketches/<class>/, QuickDraw_sketches/<class>/)
    QuickDraw_images_final/<class>/image_<n>.jpg    (or images/<class>/, EXTEND_image_quickdraw/<class>/)

It is a zero-shot benchmark: ``split_name`` defaults to ``"quickdraw_ext/zs/d2s30"`` (train =
seen minus validation classes, val = 10% of the seen classes, test = the 30 unseen classes).
Class folders mix spaces, underscores and a hyphen; names resolve spelling-independently, so
doodle2search's ``palm_tree`` finds ``palm tree/``.

**Quick, Draw! bitmaps** (the 28×28 ``numpy_bitmap`` release; ``quickdraw_subset/`` in the small
data)::

    quickdraw-train/<class>.npy   uint8 (N, 784)     quickdraw-test/<class>.npy
    or a flat folder of full_numpy_bitmap_<class>.npy (then test = the first 10 rows of each class)

Polarity is white-on-black in the files; items are inverted to sbirlib's dark strokes on white
(``invert=True``). Validation = ``round(0.1 * n)`` training rows per class (seeded).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sbirlib.data.base import SBIRImageDataset, verify_str_arg
from sbirlib.data.download import download_root, fetch, image_to_tensor, locate_root, scan_class_folders
from sbirlib.data.names import ClassNameResolver, name_key
from sbirlib.data.registry import register_dataset
from sbirlib.data.tuberlin import ClassFolderDataset, carve_validation

__all__ = ["QuickDrawExt", "QuickDrawBitmap"]

SPLITS = ("train", "val", "test")
_QD_SKETCH_DIRS = ("QuickDraw_sketches_final", "sketches", "QuickDraw_sketches", "sketch")
_QD_PHOTO_DIRS = ("QuickDraw_images_final", "images", "EXTEND_image_quickdraw", "photo")


def _first_dir(folder: Path, names: Iterable[str]) -> Path | None:
    for n in names:
        if (folder / n).is_dir():
            return folder / n
    return None


class QuickDrawExt(ClassFolderDataset):
    """QuickDraw-Extended sketches (``modality="sketch"``) or Flickr photos (``"photo"``).

    Args mirror :class:`sbirlib.data.tuberlin.TUBerlin`; ``split_name`` is a shipped zero-shot
    split (default ``"quickdraw_ext/zs/d2s30"``) or ``None`` for a category-level split of every
    class (per class, seeded: 10% test, then 10% of the rest val).
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "train",
        modality: str = "sketch",
        transform: Callable[[Any], Any] | None = None,
        download: bool = False,
        *,
        split_name: str | None = "quickdraw_ext/zs/d2s30",
        classes: Iterable[str] | None = None,
        val_fraction: float = 0.1,
        val_seed: int = 0,
        image_size: int | None = None,
    ) -> None:
        verify_str_arg(split, "split", SPLITS)
        verify_str_arg(modality, "modality", ("sketch", "photo"))
        if download:
            root = download_root(root)
            fetch("quickdraw-ext", root)
        want = _QD_PHOTO_DIRS if modality == "photo" else _QD_SKETCH_DIRS
        expected = f"{want[0]}/<class>/ (or {', '.join(w + '/' for w in want[1:])})"
        base = locate_root("quickdraw-ext", root, ("quickdraw_ext", "QuickDraw", "quickdraw-ext"),
                           lambda f: _first_dir(f, want) is not None, expected)
        folder = _first_dir(base, want)
        assert folder is not None
        self.layout = folder.name
        self.split_name = split_name
        wanted = list(classes) if classes is not None else None
        if split_name is not None:
            from sbirlib.data.splits import load_split

            sp = load_split(split_name)
            part = sp.classes_for(split)
            if wanted is not None:
                keys = {name_key(c) for c in wanted}
                part = tuple(c for c in part if name_key(c) in keys)
            files = scan_class_folders(folder, "quickdraw-ext", classes=part)
        else:
            files = scan_class_folders(folder, "quickdraw-ext", classes=wanted)
            out = {}
            for i, (c, fs) in enumerate(sorted(files.items())):
                rest, test = carve_validation(fs, 0.1, 10_000 + i)
                train, val = carve_validation(rest, val_fraction, val_seed + i)
                out[c] = {"train": train, "val": val, "test": test}[split]
            files = {c: fs for c, fs in out.items() if fs}
        names = sorted(files)
        samples, labels = [], []
        for label, c in enumerate(names):
            samples += files[c]
            labels += [label] * len(files[c])
        super().__init__(samples, labels, names, modality, split, transform=transform, root=folder,
                         image_size=image_size)

    def extra_repr(self) -> str:
        return f"Layout: {self.layout}\nSplit name: {self.split_name}"


class QuickDrawBitmap(SBIRImageDataset):
    """28×28 Quick, Draw! bitmaps (``numpy_bitmap``) as sketches, e.g. ``$SBIR_DATA/quickdraw_subset``.

    ``image_size`` upsamples the 28×28 drawings (bilinear); ``invert`` turns them into dark
    strokes on white; ``max_per_class`` keeps the first rows of each class (the full Google files
    hold 100k+ drawings each). Sketches only: there are no photos.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "train",
        modality: str = "sketch",
        transform: Callable[[Any], Any] | None = None,
        download: bool = False,
        *,
        classes: Iterable[str] | None = None,
        val_fraction: float = 0.1,
        val_seed: int = 0,
        image_size: int | None = None,
        invert: bool = True,
        max_per_class: int | None = None,
    ) -> None:
        verify_str_arg(split, "split", SPLITS)
        if modality != "sketch":
            raise ValueError("Quick, Draw! bitmaps are sketches only (modality='sketch'); QuickDraw-Extended "
                             "('quickdraw-ext') has photos")
        if download:
            raise ValueError("download=True is not supported for the numpy_bitmap subset; see data_scripts/README.md")

        def probe(f: Path) -> bool:
            return (f / "quickdraw-train").is_dir() or any(f.glob("full_numpy_bitmap_*.npy"))

        base = locate_root("quickdraw-bitmap", root, ("quickdraw_subset", "quickdraw", "numpy_bitmap"), probe,
                           "quickdraw-train/<class>.npy + quickdraw-test/<class>.npy (or full_numpy_bitmap_<class>.npy)")
        self.invert, self.image_size = bool(invert), image_size
        if (base / "quickdraw-train").is_dir():
            self.layout = "subset"
            src = "quickdraw-test" if split == "test" else "quickdraw-train"
            files = {p.stem: p for p in sorted((base / src).glob("*.npy"))}
            if not (base / "quickdraw-test").is_dir():
                raise FileNotFoundError(f"quickdraw-bitmap: {base / 'quickdraw-test'} is missing (expected next to quickdraw-train/)")
        else:
            self.layout = "flat"
            files = {p.stem.removeprefix("full_numpy_bitmap_"): p for p in sorted(base.glob("full_numpy_bitmap_*.npy"))}
        if not files:
            raise ValueError(f"quickdraw-bitmap: no <class>.npy files under {base}")
        names = sorted(files)
        if classes is not None:
            names = sorted(ClassNameResolver(names, where=str(base)).resolve_all(classes))
        arrays, labels, rows = [], [], []
        for label, name in enumerate(names):
            arr = self._load(files[name])
            idx = list(range(len(arr) if max_per_class is None else min(len(arr), max_per_class)))
            if self.layout == "flat":
                idx = idx[10:] if split != "test" else idx[:10]
            if split != "test":
                train, val = carve_validation(idx, val_fraction, val_seed + label)
                idx = val if split == "val" else train
            arrays.append(np.asarray(arr[idx]))
            labels += [label] * len(idx)
            rows += idx
        self._files = [files[n] for n in names]
        self._data = np.concatenate(arrays) if arrays else np.zeros((0, 28, 28), np.uint8)
        self.rows = rows
        super().__init__(list(range(len(self._data))), labels, names, "sketch", split, transform=transform, root=base)

    @staticmethod
    def _load(path: Path) -> np.ndarray:
        try:
            arr = np.load(path, allow_pickle=False, mmap_mode="r")
        except (ValueError, OSError, EOFError) as err:
            raise OSError(f"cannot read {path}: {err}; the file is corrupt or truncated") from err
        if arr.ndim != 2 or arr.shape[1] != 784 or arr.dtype != np.uint8:
            raise ValueError(f"{path}: expected uint8 (N, 784) 28x28 bitmaps, got {arr.dtype} {arr.shape}")
        return arr.reshape(-1, 28, 28)

    def fingerprint(self) -> str:
        """SHA-256 of the selected drawings' bytes, labels and rows (recorded in run records)."""
        import hashlib

        digest = hashlib.sha256(np.ascontiguousarray(self._data).tobytes())
        digest.update(np.asarray(self.labels, dtype=np.int64).tobytes() + np.asarray(self.rows, dtype=np.int64).tobytes())
        return digest.hexdigest()

    def load_sample(self, sample: Any) -> Any:
        arr = self._data[int(sample)]
        image = Image.fromarray(255 - arr if self.invert else np.array(arr))
        if self.image_size:
            image = image.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
        return image_to_tensor(image) if self.transform is None else image

    def extra_repr(self) -> str:
        return f"Layout: {self.layout} (28x28 numpy_bitmap){', inverted' if self.invert else ''}"


register_dataset(
    "quickdraw-ext",
    "QuickDraw-Extended zero-shot SBIR: 110 classes of doodles + Flickr photos; split quickdraw_ext/zs/d2s30",
)(QuickDrawExt)


register_dataset(
    "quickdraw-bitmap",
    "Quick, Draw! 28x28 numpy_bitmap sketches (e.g. the 14-class small subset); sketches only",
)(QuickDrawBitmap)
