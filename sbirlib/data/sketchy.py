"""Sketchy (Sangkloy et al. 2016), Sketchy-Extended photos (Liu et al. 2017) and Sketchy instance-level FG.

Layouts under ``root`` or ``sketchy/``, ``Sketchy/``::

    [rendered_256x256/ | 256x256/]sketch/tx_000000000000[_ready]/<class>/<stem>-<k>.png
    [rendered_256x256/ | 256x256/]photo/tx_000000000000[_ready]/<class>/<stem>.jpg
    extended_photo/<class>/*.jpg  (or EXTEND_image_sketchy[_ready]/)   -- Sketchy-Extended
    info/testset.txt, info/invalid-*.txt                               -- from info-06-04.7z
    sketch/<class>/*.png + photo/<class>/*.jpg                         -- Sketch_LVM's flat package

``rendering`` picks the ``tx_*`` folder (``tx_000000000000`` by default; DLI-Net uses
``tx_000100000000``; photos exist only for ``tx_000000000000`` / ``tx_000100000000``).
Class folders keep their on-disk names (``hot-air_balloon`` or ``hot_air_balloon``); names given
by the user resolve spelling-independently.

**Pairing** (FG): sketch ``<stem>-<k>.png`` <-> photo ``<stem>.jpg`` (split at the *last* ``-``).
``instance`` = index of ``(class, stem)`` in the sorted list of all photos of the dataset.

Splits:

* ``sketchy`` / ``sketchy-fg`` split by **photo** (a photo and all its sketches go together).
  Test = the official instance-level test set ``info/testset.txt`` (1,250 photos) when present;
  otherwise sbirlib's seeded substitute (10 photos per class, ``default_rng(1000 + c)``) and the
  ``repr`` says so. Validation = ``round(0.1 * n)`` of each class's remaining photos (seeded).
  ``drop_invalid=True`` removes the sketches listed in ``info/invalid-*.txt``.
* ``sketchy-fg-cc`` (cross-category FG, Pang et al. 2019): instance-level retrieval on classes never
  seen in training. The class lists of the papers are unpublished; sbirlib's decision is the
  published 104/21 split ``sketchy_ext/zs/yelamarthi21`` (train = seen minus val classes, val =
  10% of the seen classes, test = the 21 unseen classes, all photos of each class). Numbers on
  it are not comparable with the papers' own splits.
* ``sketchy-ext`` is category-level or zero-shot: ``split_name="sketchy_ext/zs/sake25"``,
  ``".../sempcyc25"``, ``".../yelamarthi21"`` select classes; ``split_name=None`` (default) is
  category-level with 50 seeded query sketches per class; ``"sketchy_ext/cat/dsh50@dase"`` uses
  DASE's published query list (``<root>/splits/sketchy_sketch.json``, or ``split_file=``). At
  category level every photo is in every split, as in the DSH protocol. Photos come from the extended folder,
  which already holds the 12,500 originals, so the gallery has no duplicates (the published
  SAKE-25 and Yelamarthi-21 lists name some photos twice).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sbirlib.data.base import verify_str_arg
from sbirlib.data.download import download_root, fetch, locate_root, missing_dataset, scan_class_folders
from sbirlib.data.names import ClassNameResolver, name_key
from sbirlib.data.registry import register_dataset
from sbirlib.data.tuberlin import ClassFolderDataset, carve_validation

__all__ = ["Sketchy", "SketchyFG", "SketchyExt", "sketch_photo_stem"]

SPLITS = ("train", "val", "test")
_SK_SUBDIRS = ("sketchy", "Sketchy", "sketchy_ext", "Sketchy-Extended")
_RENDER_PARENTS = ("rendered_256x256", "256x256", "")
_EXT_DIRS = ("extended_photo", "EXTEND_image_sketchy", "EXTEND_image_sketchy_ready")


def sketch_photo_stem(sketch_file: str | Path) -> str:
    """``n02691156_10151-3.png`` -> ``n02691156_10151`` (split at the last ``-``)."""
    stem = Path(sketch_file).stem
    head, sep, _k = stem.rpartition("-")
    return head if sep else stem


def _modality_dir(base: Path, kind: str, rendering: str) -> Path | None:
    """``.../<kind>/<rendering>[_ready]`` or the flat ``<kind>/`` of Sketch_LVM's package."""
    for parent in _RENDER_PARENTS:
        top = base / parent / kind if parent else base / kind
        for tx in (rendering, rendering + "_ready"):
            if (top / tx).is_dir():
                return top / tx
    flat = base / kind
    if flat.is_dir() and not any(p.name.startswith("tx_") for p in flat.iterdir()):
        return flat
    return None


def _ext_dir(base: Path) -> Path | None:
    for name in _EXT_DIRS:
        if (base / name).is_dir():
            return base / name
    return None


class _SketchyBase(ClassFolderDataset):
    dataset_name = "sketchy"

    def _locate(self, root: Any, rendering: str, need_photo_dir: bool) -> Path:
        def probe(f: Path) -> bool:
            return _modality_dir(f, "sketch", rendering) is not None

        expected = f"rendered_256x256/sketch/{rendering}/<class>/<stem>-<k>.png (from rendered_256x256.7z)"
        return locate_root(self.dataset_name, root, _SK_SUBDIRS, probe, expected)

    def _read_info_list(self, path: Path, resolver: ClassNameResolver) -> set[tuple[str, str]]:
        """``{(class, file stem)}`` from a list of ``[...]/<class>/<file>`` lines (other lines ignored)."""
        out = set()
        for line in path.read_text(errors="replace").splitlines():
            parts = [p for p in line.strip().replace("\\", "/").split("/") if p]
            if len(parts) >= 2 and parts[-2] in resolver:
                out.add((resolver.resolve(parts[-2]), Path(parts[-1]).stem))
        return out


class Sketchy(_SketchyBase):
    """Sketchy sketches or photos, split by photo (category-level use and FG pairing).

    Args:
        root: folder holding the layout above (``None``: ``$SBIR_DATA``).
        split: ``"train"`` | ``"val"`` | ``"test"``.
        modality: ``"sketch"`` | ``"photo"``.
        rendering: the ``tx_*`` folder (``"tx_000000000000"``).
        classes: restrict to these classes (any spelling; unknown names raise).
        test_list: ``"auto"`` (official ``info/testset.txt`` if present, else seeded), ``"official"``
            (must exist), ``"seeded"``.
        drop_invalid: drop sketches listed in ``info/invalid-*.txt`` (needs ``info/``).
        val_fraction, val_seed, image_size: as elsewhere.
    """

    dataset_name = "sketchy"

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "train",
        modality: str = "sketch",
        transform: Callable[[Any], Any] | None = None,
        download: bool = False,
        *,
        rendering: str = "tx_000000000000",
        classes: Iterable[str] | None = None,
        test_list: str = "auto",
        drop_invalid: bool = False,
        split_name: str | None = None,
        val_fraction: float = 0.1,
        val_seed: int = 0,
        image_size: int | None = None,
    ) -> None:
        verify_str_arg(split, "split", SPLITS)
        verify_str_arg(modality, "modality", ("sketch", "photo"))
        verify_str_arg(test_list, "test_list", ("auto", "official", "seeded"))
        self.split_name = split_name
        if split_name is not None:  # cross-category FG: whole classes per split
            from sbirlib.data.splits import load_split

            sp = load_split(split_name)
            if sp.task != "zeroshot":
                raise ValueError(f"split_name={split_name!r} is not a class split (task {sp.task!r})")
            part = sp.classes_for(split)
            if classes is not None:
                keys = {name_key(c) for c in classes}
                part = tuple(c for c in part if name_key(c) in keys)
            classes = list(part)
        if download:
            root = download_root(root)
            fetch("sketchy", root)
            fetch("sketchy-info", root)
        base = self._locate(root, rendering, True)
        sketch_dir = _modality_dir(base, "sketch", rendering)
        photo_render = rendering if rendering in ("tx_000000000000", "tx_000100000000") else "tx_000000000000"
        photo_dir = _modality_dir(base, "photo", photo_render)
        if photo_dir is None:
            raise missing_dataset(self.dataset_name, base, f"photos in rendered_256x256/photo/{photo_render}/<class>/")
        assert sketch_dir is not None
        self.rendering, self.base = rendering, base
        photos = scan_class_folders(photo_dir, self.dataset_name, classes=classes)
        names = sorted(photos)
        info = base / "info"
        testset = info / "testset.txt"
        if test_list == "official" and not testset.is_file():
            raise missing_dataset(self.dataset_name, base, "info/testset.txt (from info-06-04.7z)")
        use_official = test_list != "seeded" and testset.is_file()
        self.test_list = ("whole classes from " + split_name if split_name is not None else
                          "official info/testset.txt" if use_official else "seeded (10 photos per class)")
        photo_resolver = ClassNameResolver(names, where=str(photo_dir))
        official = self._read_info_list(testset, photo_resolver) if use_official else set()
        # all photos (every split) define the instance ids
        all_stems = sorted((c, p.stem) for c in names for p in photos[c])
        self.instance_of = {key: i for i, key in enumerate(all_stems)}
        chosen: dict[str, set[str]] = {}
        for ci, c in enumerate(names):
            stems = sorted(p.stem for p in photos[c])
            if split_name is not None:
                chosen[c] = set(stems)
                continue
            if use_official:
                test = [s for s in stems if (c, s) in official]
            else:
                _rest, test = carve_validation(stems, 10 / max(len(stems), 1), 1000 + ci)
            rest = [s for s in stems if s not in set(test)]
            train, val = carve_validation(rest, val_fraction, val_seed + ci)
            chosen[c] = set({"train": train, "val": val, "test": test}[split])
        if modality == "photo":
            files = {c: [p for p in photos[c] if p.stem in chosen[c]] for c in names}
        else:
            sk_resolver = ClassNameResolver([p.name for p in sketch_dir.iterdir() if p.is_dir()], where=str(sketch_dir))
            sk_names = {c: sk_resolver.resolve(c) for c in names}
            sketches = scan_class_folders(sketch_dir, self.dataset_name, classes=list(sk_names.values()))
            invalid: set[tuple[str, str]] = set()
            if drop_invalid:
                lists = sorted(info.glob("invalid-*.txt"))
                if not lists:
                    raise missing_dataset(self.dataset_name, base, "info/invalid-*.txt (from info-06-04.7z)")
                for lst in lists:
                    invalid |= self._read_info_list(lst, sk_resolver)
            files = {}
            for c in names:
                files[c] = [p for p in sketches[sk_names[c]]
                            if sketch_photo_stem(p) in chosen[c] and (sk_names[c], p.stem) not in invalid]
        files = {c: fs for c, fs in files.items() if fs}
        samples, labels, instances = [], [], []
        for c in names:
            for p in files.get(c, []):
                stem = p.stem if modality == "photo" else sketch_photo_stem(p)
                samples.append(p)
                labels.append(names.index(c))
                instances.append(self.instance_of.get((c, stem), -1))
        super().__init__(samples, labels, names, modality, split, instances=instances, transform=transform,
                         root=base, image_size=image_size)

    def extra_repr(self) -> str:
        return f"Rendering: {self.rendering}\nTest photos: {self.test_list}"


class SketchyFG(Sketchy):
    """Sketchy instance-level FG-SBIR: :class:`Sketchy` with the official test set required by default.

    Galleries differ across papers (all 1,250 test photos, or only the 10 of the query's class):
    evaluate both with ``instances``/``labels`` of this dataset and record which one was used.
    """

    dataset_name = "sketchy-fg"

    def __init__(self, *args: Any, test_list: str = "auto", **kwargs: Any) -> None:
        super().__init__(*args, test_list=test_list, **kwargs)
        if self.split_name is None and not self.test_list.startswith("official"):
            warnings.warn("Sketchy FG: info/testset.txt not found; using sbirlib's seeded test photos, which are "
                          "NOT the official instance-level test set (fetch info-06-04.7z)", stacklevel=2)


class SketchyExt(_SketchyBase):
    """Sketchy-Extended: Sketchy sketches + 73,002 photos, category-level or zero-shot."""

    dataset_name = "sketchy-ext"

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
        rendering: str = "tx_000000000000",
        classes: Iterable[str] | None = None,
        val_fraction: float = 0.1,
        val_seed: int = 0,
        image_size: int | None = None,
    ) -> None:
        verify_str_arg(split, "split", SPLITS)
        verify_str_arg(modality, "modality", ("sketch", "photo"))
        if download:
            root = download_root(root)
            fetch("sketchy", root)
            fetch("sketchy-ext", root)
        base = self._locate(root, rendering, False)
        sketch_dir = _modality_dir(base, "sketch", rendering)
        assert sketch_dir is not None
        ext = _ext_dir(base)
        if modality == "photo" and ext is None:
            raise missing_dataset(self.dataset_name, base, "extended_photo/<class>/*.jpg (or EXTEND_image_sketchy/)")
        self.split_name, self.rendering, self.base = split_name, rendering, base
        wanted = list(classes) if classes is not None else None
        sp = None
        if split_name is not None:
            from sbirlib.data.splits import find_query_file, load_split

            sp = load_split(split_name)
            if sp.task == "category":
                split_file = find_query_file(sp, [base, base.parent], split_file)
                sp = None
            elif sp.task != "zeroshot":
                raise ValueError(f"split_name={split_name!r} is a {sp.task} split; Sketchy-Ext takes zero-shot or "
                                 "category-level splits (use 'sketchy-fg' for instance-level)")
        zero_shot = sp is not None
        if sp is not None:
            part = sp.classes_for(split)
            if wanted is not None:
                keys = {name_key(c) for c in wanted}
                part = tuple(c for c in part if name_key(c) in keys)
            wanted = list(part)
        folder = ext if modality == "photo" else sketch_dir
        assert folder is not None
        files = scan_class_folders(folder, self.dataset_name, classes=wanted)
        if modality == "sketch" and not zero_shot:
            listed = self._query_list(Path(split_file), sketch_dir) if split_file is not None else None
            out = {}
            for ci, (c, fs) in enumerate(sorted(files.items())):
                if listed is not None:
                    test = [f for f in fs if (c, f.name) in listed]
                    rest = [f for f in fs if (c, f.name) not in listed]
                else:
                    rest, test = carve_validation(fs, 50 / max(len(fs), 1), 2000 + ci)
                train, val = carve_validation(rest, val_fraction, val_seed + ci)
                out[c] = {"train": train, "val": val, "test": test}[split]
            files = out  # a class without queries keeps its label (sketches and photos must agree)
        # class ids follow the canonical (key-sorted) names so sketch and photo labels agree
        names = sorted(files, key=name_key)
        samples, labels = [], []
        for label, c in enumerate(names):
            samples += files[c]
            labels += [label] * len(files[c])
        super().__init__(samples, labels, names, modality, split, transform=transform, root=base,
                         image_size=image_size)

    def _query_list(self, path: Path, sketch_dir: Path) -> set[tuple[str, str]]:
        from sbirlib.data.splits import read_query_list

        path = path / "query_test.txt" if (path.is_dir() or not path.suffix) else path
        if not path.is_file():
            raise FileNotFoundError(f"sketchy-ext: split file {path} not found; expected one <class>/<file> per line "
                                    "or DASE's sketchy_sketch.json")
        resolver = ClassNameResolver([p.name for p in sketch_dir.iterdir() if p.is_dir()], where=str(sketch_dir))
        return {(resolver.resolve(cls), fname) for cls, fname in read_query_list(path)}

    def extra_repr(self) -> str:
        return f"Rendering: {self.rendering}\nSplit name: {self.split_name}"


register_dataset(
    "sketchy-fg-cc",
    "Sketchy cross-category FG-SBIR: instance retrieval on unseen classes (104/21 split sketchy_ext/zs/yelamarthi21)",
    split_name="sketchy_ext/zs/yelamarthi21",
)(SketchyFG)


register_dataset(
    "sketchy",
    "Sketchy: 125 classes, 75,481 sketches of 12,500 photos; split by photo (official test set when present)",
)(Sketchy)


register_dataset(
    "sketchy-ext",
    "Sketchy-Extended: Sketchy sketches + 73,002 photos; category-level (dsh50) or zero-shot (sake25, sempcyc25, yelamarthi21)",
)(SketchyExt)


register_dataset(
    "sketchy-fg",
    "Sketchy instance-level FG-SBIR: sketch <stem>-<k> <-> photo <stem>; official 1,250-photo test set",
)(SketchyFG)
