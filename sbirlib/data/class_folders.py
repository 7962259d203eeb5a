"""Any folder of photos and sketches sorted by class, and the Sketchy subset.

Layout (Sketchy's own, and what a user with their own data would make)::

    <root>/photo/<class>/*.{jpg,png,...}
    <root>/sketch/<class>/*.{png,jpg,...}

Both modalities must have the same class folders, and every class at least one image of each.
Files that are not images (a ``README``, a ``.DS_Store``) are ignored and counted in
``ignored_files``. Class ids follow the sorted, spelling-independent class names
(:func:`sbirlib.data.names.name_key`), so sketch and photo labels always agree.

**Pairing.** Sketchy names a sketch of photo ``<stem>.jpg`` ``<stem>-<k>.png``. With
``pairing="auto"`` (default) instance ids are filled in when every sketch of the folder has its
photo there, ``"stem"`` requires it and ``"off"`` skips it. A photo's instance id is its position
in the sorted list of ``(class, stem)`` of all photos; a sketch gets the id of its photo.

**Splits.**

* Category level (``split_name=None`` or a shipped ``*/cat/*`` rule, e.g.
  ``"sketchy_subset/cat/q5v2"``): in every class, ``test_per_class`` sketches are held-out
  queries and ``val_per_class`` more are for validation, drawn with
  ``numpy.random.default_rng([seed, crc32(class key)])`` from the sorted file names, so a class's
  draw does not depend on the other classes. The rest of the sketches are for training. As in
  the DSH protocol that DASE and CSCAN evaluate with, **the photos are the same in every split**:
  the gallery searched at test time is every photo of every class, which are also the training
  photos. :attr:`split_info` says which rule and seed made the split; run records store it.
* Zero-shot (``split_name`` a shipped ``*/zs/*`` class split such as
  ``"sketchy_ext/zs/sake25"``): train = seen classes minus the validation classes, val = the
  validation classes, test = the unseen classes; all sketches and photos of each. Labels and
  ``classes`` always index every class of the folder, so labels of different splits never
  collide; ``split_info["classes"]`` counts the classes of this split.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sbirlib.data.base import verify_str_arg
from sbirlib.data.download import IMAGE_EXTENSIONS, locate_root
from sbirlib.data.names import ClassNameResolver, name_key
from sbirlib.data.registry import register_dataset
from sbirlib.data.sketchy import sketch_photo_stem
from sbirlib.data.tuberlin import ClassFolderDataset
from sbirlib.utils import DataNotFoundError

__all__ = ["ClassFolders", "SketchySubset", "FolderLayout", "scan_layout", "category_split", "check_sketchy_subset",
           "SKETCHY_SUBSET"]

SPLITS = ("train", "val", "test")
DOMAINS = ("photo", "sketch")
PAIRING = ("auto", "stem", "off")


class FolderLayout:
    """What :func:`scan_layout` found: ``files[domain][class]`` (sorted paths) and the ignored files."""

    def __init__(self, root: Path, files: dict[str, dict[str, list[Path]]], ignored: int) -> None:
        self.root, self.files, self.ignored = root, files, ignored
        self.classes = sorted(files["sketch"], key=name_key)

    def counts(self) -> dict[str, int]:
        return {d: sum(len(v) for v in self.files[d].values()) for d in DOMAINS}

    def __repr__(self) -> str:
        c = self.counts()
        return (f"FolderLayout({str(self.root)!r}, classes={len(self.classes)}, photos={c['photo']}, "
                f"sketches={c['sketch']}, ignored={self.ignored})")


def scan_layout(root: str | os.PathLike, dataset: str = "class-folders") -> FolderLayout:
    """Read ``root/photo/<class>/`` and ``root/sketch/<class>/``, checking the layout.

    Raises :class:`~sbirlib.utils.DataNotFoundError` when ``root`` or one of its two folders is
    missing, and ``ValueError`` (naming the path and the fix) for a class present in one domain
    only, a class folder without images, or a folder with no images at all.
    """
    root = Path(root).expanduser()
    expected = f"{root}/photo/<class>/<images> and {root}/sketch/<class>/<images>"
    if not root.is_dir():
        raise DataNotFoundError(f"{dataset}: {root} is not a folder; expected {expected}")
    for domain in DOMAINS:
        if not (root / domain).is_dir():
            raise DataNotFoundError(f"{dataset}: {root / domain} is missing; expected {expected}")
    exts = tuple(e.lower() for e in IMAGE_EXTENSIONS)
    files: dict[str, dict[str, list[Path]]] = {}
    ignored = 0
    for domain in DOMAINS:
        files[domain] = {}
        for cls in sorted(p for p in (root / domain).iterdir() if p.is_dir() and not p.name.startswith(".")):
            entries = [p for p in cls.iterdir() if p.is_file() and not p.name.startswith(".")]
            images = sorted(p for p in entries if p.suffix.lower() in exts)
            ignored += len(entries) - len(images)
            files[domain][cls.name] = images
    if not any(files[d] for d in DOMAINS):
        raise ValueError(f"{dataset}: {root} has no class folders; expected {expected}")
    for domain, other in (("photo", "sketch"), ("sketch", "photo")):
        for cls in sorted(set(files[domain]) - set(files[other])):
            raise ValueError(f"{dataset}: class {cls!r} has {root / domain / cls} but no {root / other / cls}; "
                             f"add {other} images of that class there, or remove {root / domain / cls}")
    for domain in DOMAINS:
        for cls, images in files[domain].items():
            if not images:
                raise ValueError(f"{dataset}: class folder {root / domain / cls} has no images "
                                 f"({', '.join(exts)}); add some or remove the class from both photo/ and sketch/")
    return FolderLayout(root, files, ignored)


def category_split(files: list[Path], cls: str, test: int, val: int, seed: int) -> dict[str, list[Path]]:
    """One class's sketches as ``{"train", "val", "test"}`` (the category rule of this module)."""
    if len(files) < test + val + 1:
        raise ValueError(f"class {cls!r} has {len(files)} sketches; the split holds out {test} test and {val} "
                         "validation sketches a class and needs at least one to train on "
                         "(lower test_per_class / val_per_class, or add sketches)")
    order = np.random.default_rng([seed, zlib.crc32(name_key(cls).encode())]).permutation(len(files))
    pick = [files[i] for i in order]
    held = {"test": pick[:test], "val": pick[test:test + val]}
    taken = set(held["test"]) | set(held["val"])
    return {"train": [f for f in files if f not in taken], **{k: sorted(v) for k, v in held.items()}}


class ClassFolders(ClassFolderDataset):
    """Photos and sketches in class folders: category-level or zero-shot SBIR on any such folder.

    Args:
        root: the folder holding ``photo/`` and ``sketch/``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        modality: ``"sketch"`` or ``"photo"``.
        transform: applied to each PIL image (without one, items are float tensors in [0, 1]).
        split_name: ``None`` (the category rule with ``test_per_class`` / ``val_per_class`` /
            ``seed``), a shipped category rule (``"sketchy_subset/cat/q5v2"``) or a shipped
            zero-shot class split (``"sketchy_ext/zs/sake25"``).
        pairing: ``"auto"``, ``"stem"`` or ``"off"`` (see the module docstring).
        image_size: resize every image to this square side before the transform.
    """

    dataset_name = "class-folders"

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "train",
        modality: str = "sketch",
        transform: Callable[[Any], Any] | None = None,
        *,
        split_name: str | None = None,
        test_per_class: int = 5,
        val_per_class: int = 2,
        seed: int = 0,
        pairing: str = "auto",
        image_size: int | None = None,
    ) -> None:
        verify_str_arg(split, "split", SPLITS)
        verify_str_arg(modality, "modality", DOMAINS)
        verify_str_arg(pairing, "pairing", PAIRING)
        layout = self._layout(root)
        self.layout = layout
        info: dict[str, Any] = {"dataset": self.dataset_name, "split_name": split_name}
        classes = layout.classes
        zero_shot = False
        if split_name is not None:
            from sbirlib.data.splits import load_split

            sp = load_split(split_name)
            info["split_name"] = sp.full_name
            if sp.task == "zeroshot":
                zero_shot = True
                resolver = ClassNameResolver(layout.classes, where=str(layout.root / "sketch"))
                missing = [c for c in sp.seen + sp.unseen if c not in resolver]
                if missing:
                    raise ValueError(f"{self.dataset_name}: split {sp.full_name} needs classes that "
                                     f"{layout.root} lacks: {', '.join(missing[:8])}"
                                     f"{' ...' if len(missing) > 8 else ''} ({len(missing)} in all)")
                classes = sorted((resolver.resolve(c) for c in sp.classes_for(split)), key=name_key)
            elif sp.task == "category" and "rule" in sp.manifest:
                params = sp.manifest["rule"]
                test_per_class, val_per_class = int(params["test_per_class"]), int(params["val_per_class"])
                seed = int(params["seed"])
            else:
                raise ValueError(f"{self.dataset_name}: split {sp.full_name} is a {sp.task} split this loader "
                                 "cannot apply; use a */zs/* class split or a */cat/* rule")
        if not zero_shot:
            info.update(rule="category", test_per_class=test_per_class, val_per_class=val_per_class, seed=seed,
                        gallery="every photo of every class, in every split (the training photos too)")
        instance_of = self._pairing(layout, pairing)
        samples, labels, instances = [], [], []
        # labels index every class of the folder, in every split: a zero-shot split's train and
        # test labels never collide (as in the synthetic benchmark and sbirlib's other loaders)
        label_of = {c: i for i, c in enumerate(layout.classes)}
        for cls in classes:
            label = label_of[cls]
            files = layout.files[modality][cls]
            if modality == "sketch" and not zero_shot:
                files = category_split(files, cls, test_per_class, val_per_class, seed)[split]
            samples += files
            labels += [label] * len(files)
            instances += [instance_of.get(f, -1) for f in files]
        info.update(classes=len(classes), images=len(samples), ignored_files=layout.ignored)
        self.split_info = info
        self.ignored_files = layout.ignored
        super().__init__(samples, labels, list(layout.classes), modality, split,
                         instances=instances if instance_of else None,
                         transform=transform, root=layout.root, image_size=image_size)

    def _layout(self, root: str | os.PathLike | None) -> FolderLayout:
        if root in (None, ""):
            raise DataNotFoundError(f"{self.dataset_name}: pass root= (or --data-root) the folder that holds "
                                    "photo/<class>/ and sketch/<class>/")
        return scan_layout(root, self.dataset_name)

    def _pairing(self, layout: FolderLayout, pairing: str) -> dict[Path, int]:
        if pairing == "off":
            return {}
        photos = sorted((name_key(c), f.stem, f) for c, fs in layout.files["photo"].items() for f in fs)
        ids = {(key, stem): i for i, (key, stem, _f) in enumerate(photos)}
        out = {f: i for i, (_k, _s, f) in enumerate(photos)}
        unpaired = []
        for cls, sketches in layout.files["sketch"].items():
            for f in sketches:
                i = ids.get((name_key(cls), sketch_photo_stem(f.name)))
                if i is None:
                    unpaired.append(f)
                else:
                    out[f] = i
        if unpaired:
            if pairing == "stem":
                raise ValueError(f"{self.dataset_name}: {len(unpaired)} sketches have no photo <stem>.* in their "
                                 f"class (first: {unpaired[0]}); name sketches <photo stem>-<k>, or use pairing='off'")
            return {}
        return out

    def extra_repr(self) -> str:
        rule = (f"category: {self.split_info['test_per_class']} test + {self.split_info['val_per_class']} val "
                f"sketches a class, seed {self.split_info['seed']}" if self.split_info.get("rule") == "category"
                else "zero-shot class split")
        lines = [f"Split name: {self.split_info['split_name'] or '(seeded rule)'} ({rule})"]
        if self.ignored_files:
            lines.append(f"Ignored non-image files: {self.ignored_files}")
        return "\n".join(lines)


# The published subset: 125 classes x 25 photos + 25 sketches, and the SHA-256 of its manifest
# (lines "<sha256>  sketchy_subset/<domain>/<class>/<file>", sorted by path, newline-terminated).
SKETCHY_SUBSET = {
    "classes": 125,
    "per_class": 25,
    "manifest_sha256": "34d3358a73188fe49c6a0bb86d1e27521901f1ef60ef3e52add96bd5c957961e",
}
_VERIFIED: dict[tuple[str, int, int], str] = {}


def manifest_digest(layout: FolderLayout, prefix: str = "sketchy_subset") -> str:
    """SHA-256 of the manifest of ``layout`` (see :data:`SKETCHY_SUBSET`); memoised per folder state."""
    paths = [f for d in DOMAINS for fs in layout.files[d].values() for f in fs]
    state = (str(layout.root), len(paths), sum(p.stat().st_size + p.stat().st_mtime_ns for p in paths))
    if state not in _VERIFIED:
        lines = []
        for p in paths:
            rel = f"{prefix}/{p.relative_to(layout.root).as_posix()}"
            lines.append((rel, f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {rel}\n"))
        _VERIFIED[state] = hashlib.sha256("".join(line for _r, line in sorted(lines)).encode()).hexdigest()
    return _VERIFIED[state]


class SketchySubset(ClassFolders):
    """The Sketchy subset: all 125 Sketchy classes, 25 photos + 25 sketches each, 128x128.

    Found at ``root`` or ``$SBIR_DATA``, or their ``sketchy_subset/`` sub-folder; checked against
    the published counts and manifest digest (``verify=False`` skips the digest). The default
    split is the category rule ``sketchy_subset/cat/q5v2`` (5 test + 2 validation query sketches a
    class, seed 0); zero-shot splits are the Sketchy-Ext class lists restricted to this folder
    (``split_name="sketchy_ext/zs/sake25"`` or ``".../yelamarthi21"``). Galleries hold 25 photos a
    class instead of Sketchy-Ext's ~580, so its mAP values are not comparable with published ones.
    """

    dataset_name = "sketchy-subset"

    def __init__(self, root: str | os.PathLike | None = None, split: str = "train", modality: str = "sketch",
                 transform: Callable[[Any], Any] | None = None, *,
                 split_name: str | None = "sketchy_subset/cat/q5v2", verify: bool = True,
                 **kwargs: Any) -> None:
        self._verify = verify
        super().__init__(root, split, modality, transform, split_name=split_name, **kwargs)

    def _layout(self, root: str | os.PathLike | None) -> FolderLayout:
        try:
            folder = locate_root(self.dataset_name, root, ("sketchy_subset",),
                                 lambda p: (p / "photo").is_dir() and (p / "sketch").is_dir(), "")
        except DataNotFoundError as err:  # no fetch script: say where the folder comes from instead
            where = f"under {root}" if root not in (None, "") else "(no root given and $SBIR_DATA unset)"
            raise DataNotFoundError(
                f"sketchy-subset: not found {where}; expected sketchy_subset/photo/<class>/*.jpg and "
                "sketchy_subset/sketch/<class>/*.png. Copy the folder there (its origin is in "
                "data_scripts/README.md) and pass root= or set SBIR_DATA to the folder that holds it") from err
        layout = scan_layout(folder, self.dataset_name)
        check_sketchy_subset(layout, digest=self._verify)
        return layout


def check_sketchy_subset(layout: FolderLayout, digest: bool = True) -> None:
    """Raise ``ValueError`` naming what differs between ``layout`` and the published subset."""
    from sbirlib.data.splits import class_list

    expected = {name_key(c): c for c in class_list("sketchy")}
    have = {name_key(c): c for c in layout.classes}
    problems = []
    missing = sorted(expected[k] for k in set(expected) - set(have))
    extra = sorted(have[k] for k in set(have) - set(expected))
    if missing:
        problems.append(f"missing classes: {', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}")
    if extra:
        problems.append(f"classes not in Sketchy: {', '.join(extra[:6])}{' ...' if len(extra) > 6 else ''}")
    n = SKETCHY_SUBSET["per_class"]
    for d in DOMAINS:
        off = [f"{d}/{c} ({len(fs)})" for c, fs in sorted(layout.files[d].items()) if len(fs) != n]
        if off:
            problems.append(f"{len(off)} {d} folders without {n} images: {', '.join(off[:4])}"
                            f"{' ...' if len(off) > 4 else ''}")
    if not problems and digest:
        got = manifest_digest(layout)
        if got != SKETCHY_SUBSET["manifest_sha256"]:
            problems.append(f"the counts match but a file's content differs (manifest SHA-256 {got[:12]}..., "
                            f"published {SKETCHY_SUBSET['manifest_sha256'][:12]}...)")
    if problems:
        raise ValueError(f"sketchy-subset: {layout.root} is not the published Sketchy subset: "
                         f"{'; '.join(problems)}. Copy the folder again, or load it as it is with "
                         "dataset 'class-folders' (root=that folder)")


register_dataset(
    "class-folders",
    "Any folder photo/<class>/* + sketch/<class>/*: category-level (seeded query sketches) or zero-shot splits",
)(ClassFolders)

register_dataset(
    "sketchy-subset",
    "Sketchy subset: 125 classes x (25 photos + 25 sketches), 128x128; category rule q5v2 or zero-shot class splits",
)(SketchySubset)
