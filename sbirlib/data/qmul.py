"""QMUL fine-grained SBIR datasets: Shoe-V1 / Chair-V1 / Handbag (V1) and Shoe-V2 / Chair-V2 (V2).

**V1, ``.mat`` release** (``yuqian1023/Deep_SBIR_tf``)::

    ROOT/<category>/<category>_sketch_db_{train,test}.mat   'data': uint8 (N, 256, 256), sketches
    ROOT/<category>/<category>_edge_db_{train,test}.mat     'data': uint8 (N, 256, 256), photo edge maps

Any category whose four files exist loads (``shoes``, ``chairs``, ``handbags``, ...). Sketch *i*
pairs with edge map *i* of the same split file. This release has no photos: ``modality="photo"``
raises and says to use ``modality="edge"``.

**V1, folder release** (the layout of ``xjq1998/DLI-Net``)::

    ROOT/<category>/photo/<id>.jpg|png   ROOT/<category>/sketch/<id>.png   [ROOT/<category>/edge/<id>.png]
    [ROOT/<category>/{photo,sketch}_{train,test}_name.txt]

Pairing is by ``<id>``. Without the name lists the split follows the published id ranges
(shoes 1-304 / 305-419, chairs 1-200 / 201-297); other categories need the lists.

**Validation split (sbirlib's decision: validation never touches the test set).** ``split="val"``
is carved from the *training* instances: ``round(val_fraction * N_train)`` instances (default 10%:
shoes 30 of 304, chairs 20 of 200, handbags 40 of 400) drawn with
``numpy.random.default_rng(val_seed)`` (``val_seed=0``). ``split="train"`` excludes them,
``split="test"`` is the published test set. ``val_fraction=0`` gives the full published training
set (then ``split="val"`` raises).

**V2** (Bhunia's vector form)::

    ROOT/<Name>/<Name>_Coordinate        pickle: {'/train/<photo_id>_<k>': float (n, 3) [x, y, pen_end]}
    ROOT/<Name>/photo/<photo_id>.png     (Name = ShoeV2 or ChairV2)

Sketches are rasterised on the fly (:mod:`sbirlib.data.vector`); the pickle is read with a
restricted unpickler. Photos are only needed for ``modality="photo"``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sbirlib.data.base import SBIRImageDataset, load_image, verify_str_arg
from sbirlib.data.download import (
    RESOURCES,
    download_root,
    fetch,
    file_sha256,
    image_to_tensor,
    locate_root,
    missing_dataset,
)
from sbirlib.data.registry import register_dataset

__all__ = ["QMULV1", "QMULV2", "v2_photo_id", "QMUL_V1_ID_RANGES", "qmul_v1_categories", "load_qmul_v1_triplets"]

SPLITS = ("train", "val", "test")
#: published id ranges of the folder release: category -> (train ids, test ids), 1-based inclusive
QMUL_V1_ID_RANGES: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {
    "shoes": ((1, 304), (305, 419)),
    "chairs": ((1, 200), (201, 297)),
}
_CATEGORY_ALIASES = {"shoe": "shoes", "chair": "chairs", "handbag": "handbags", "bag": "handbags",
                     "bags": "handbags", "shoe-v1": "shoes", "chair-v1": "chairs"}
_V1_SUBDIRS = ("qmul_v1", "qmul-v1", "QMUL_V1", "qmul")


def _canon_category(category: str) -> str:
    low = category.strip().lower()
    return _CATEGORY_ALIASES.get(low, low)


def _mat_files(folder: Path, category: str, split: str) -> dict[str, Path]:
    return {kind: folder / f"{category}_{kind}_db_{split}.mat" for kind in ("sketch", "edge")}


def _v1_layout(folder: Path, category: str) -> str | None:
    """'mat' / 'folder' / None for ``folder`` (the category folder)."""
    if all(p.is_file() for s in ("train", "test") for p in _mat_files(folder, category, s).values()):
        return "mat"
    if (folder / "sketch").is_dir() and ((folder / "photo").is_dir() or (folder / "edge").is_dir()):
        return "folder"
    return None


def qmul_v1_categories(root: str | os.PathLike | None = None) -> list[str]:
    """Categories with a complete V1 release under ``root`` (or ``$SBIR_DATA``)."""
    from sbirlib.utils import data_root

    base = Path(root) if root else data_root(None, required=False)
    if base is None or not base.is_dir():
        return []
    found = set()
    for sub in ("", *_V1_SUBDIRS):
        folder = base / sub if sub else base
        if not folder.is_dir():
            continue
        for child in folder.iterdir():
            if child.is_dir() and _v1_layout(child, child.name):
                found.add(child.name)
    return sorted(found)


def _load_mat_images(path: Path) -> np.ndarray:
    """The ``'data'`` array of a QMUL ``.mat`` file as C-contiguous uint8 ``(N, H, W)`` (read-only).

    Cached per (path, size, mtime) so that building the train/val/test and sketch/edge
    datasets of one category reads each file once.
    """
    st = path.stat()
    return _load_mat_cached(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _load_mat_cached(path_str: str, _size: int, _mtime: int) -> np.ndarray:
    from scipy.io import loadmat

    path = Path(path_str)

    try:
        mat = loadmat(path)
    except Exception as err:  # scipy raises ValueError/TypeError/OSError on corrupt files
        raise OSError(f"cannot read {path}: {err}. The file is corrupt or truncated; download it again.") from err
    if "data" not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise ValueError(f"{path}: expected a variable 'data' of shape (N, H, W); found {keys}")
    data = np.asarray(mat["data"])
    if data.ndim != 3:
        raise ValueError(f"{path}: expected 'data' of shape (N, H, W), got shape {data.shape}")
    if data.dtype != np.uint8:
        if data.size and (data.min() < 0 or data.max() > 255):
            raise ValueError(f"{path}: 'data' values outside 0..255 (dtype {data.dtype})")
        data = data.astype(np.uint8)
    data = np.ascontiguousarray(data)
    data.setflags(write=False)
    return data


def _val_indices(n_train: int, val_fraction: float, val_seed: int) -> np.ndarray:
    n_val = int(round(val_fraction * n_train))
    if n_val <= 0:
        return np.zeros(0, dtype=int)
    rng = np.random.default_rng(val_seed)
    return np.sort(rng.permutation(n_train)[:n_val])


def _read_list(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]


class QMULV1(SBIRImageDataset):
    """QMUL Shoe-V1 / Chair-V1 / Handbag (and any category laid out the same way).

    Args:
        root: folder holding ``<category>/`` (or a ``qmul_v1/`` folder that does); ``None``
            uses ``$SBIR_DATA``. The category folder itself is accepted too.
        split: ``"train"`` | ``"val"`` | ``"test"`` (val is carved from train, see module doc).
        modality: ``"sketch"`` | ``"edge"`` | ``"photo"`` (photo: folder release only).
        category: ``"shoes"``, ``"chairs"``, ``"handbags"`` or any folder name whose files exist.
        transform: applied to the PIL image (mode ``L``, or ``RGB`` for photos); ``None`` gives
            a float tensor in [0, 1] of shape ``[1, H, W]`` / ``[3, H, W]``.
        download: fetch the ``.mat`` release into ``root`` first (shoes, chairs, handbags).
        val_fraction, val_seed: size and seed of the validation carve-out.
        layout: ``"auto"`` | ``"mat"`` | ``"folder"``.

    Items carry ``label=0`` and ``instance`` = the 1-based product id (train *i* -> *i* + 1,
    test *i* -> N_train + 1 + *i*), so a sketch and its edge map/photo share ``instance``.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "train",
        modality: str = "sketch",
        transform: Callable[[Any], Any] | None = None,
        download: bool = False,
        *,
        category: str = "shoes",
        val_fraction: float = 0.1,
        val_seed: int = 0,
        layout: str = "auto",
    ) -> None:
        verify_str_arg(split, "split", SPLITS)
        verify_str_arg(modality, "modality", ("sketch", "photo", "edge"))
        verify_str_arg(layout, "layout", ("auto", "mat", "folder"))
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction={val_fraction} must be in [0, 1)")
        category = _canon_category(category)
        self.category = category
        self.val_fraction = float(val_fraction)
        self.val_seed = int(val_seed)
        expected = (
            f"{category}/{category}_{{sketch,edge}}_db_{{train,test}}.mat (the .mat release) or "
            f"{category}/{{sketch,photo}}/<id>.png (the folder release)"
        )
        extra = f"--category {category}"
        if download:
            root = download_root(root)
            group = f"qmul-v1/{category}"
            if group not in RESOURCES:
                raise ValueError(f"no download source known for QMUL V1 category {category!r}")
            fetch(group, root)

        def probe(folder: Path) -> bool:
            return (folder / category).is_dir() and _v1_layout(folder / category, category) is not None

        try:
            base = locate_root("qmul-v1", root, _V1_SUBDIRS, probe, expected, extra)
            folder = base / category
        except FileNotFoundError:
            # root may be the category folder itself
            if root not in (None, "") and Path(root).is_dir() and _v1_layout(Path(root), category):
                folder = Path(root)
            else:
                raise
        self.folder = folder
        found = _v1_layout(folder, category)
        if layout != "auto" and found != layout:
            raise missing_dataset("qmul-v1", folder.parent, f"the {layout} release: {expected}", extra)
        self.layout = found or layout
        if self.layout == "mat":
            samples, instances = self._index_mat(split, modality)
            self._arrays: np.ndarray | None = samples  # type: ignore[assignment]
            sample_list = list(range(len(samples)))
        else:
            self._arrays = None
            sample_list, instances = self._index_folder(split, modality)
        super().__init__(
            samples=sample_list,
            labels=[0] * len(sample_list),
            classes=[category],
            modality=modality,
            split=split,
            instances=instances,
            transform=transform,
            root=folder,
        )

    # -- indexing -------------------------------------------------------------------------
    def _index_mat(self, split: str, modality: str) -> tuple[np.ndarray, list[int]]:
        if modality == "photo":
            raise ValueError(
                f"QMUL V1 {self.category}: the .mat release under {self.folder} has no photos, only sketches "
                "and photo edge maps. Use modality='edge' for the gallery (sketch i pairs with edge map i), "
                "or point root= at the folder release (<category>/photo/<id>.jpg) for real photos."
            )
        src = "train" if split in ("train", "val") else "test"
        files = _mat_files(self.folder, self.category, src)
        sketches = _load_mat_images(files["sketch"])
        edges = _load_mat_images(files["edge"])
        if len(sketches) != len(edges):
            raise ValueError(
                f"QMUL V1 {self.category} {src}: {files['sketch'].name} holds {len(sketches)} sketches but "
                f"{files['edge'].name} holds {len(edges)} edge maps; the files must pair index by index"
            )
        data = sketches if modality == "sketch" else edges
        n_train = len(sketches) if src == "train" else len(_load_mat_images(_mat_files(self.folder, self.category, "train")["sketch"]))
        self.n_published_train = n_train
        if src == "test":
            idx = np.arange(len(data))
            ids = [n_train + 1 + int(i) for i in idx]
        else:
            val = _val_indices(len(data), self.val_fraction, self.val_seed)
            if split == "val":
                if len(val) == 0:
                    raise ValueError("split='val' is empty with val_fraction=0; use split='train' or val_fraction>0")
                idx = val
            else:
                idx = np.setdiff1d(np.arange(len(data)), val)
            ids = [int(i) + 1 for i in idx]
        self.source_files = [files["sketch"], files["edge"]]
        return data[idx], ids

    def _index_folder(self, split: str, modality: str) -> tuple[list[Path], list[int]]:
        sub = {"sketch": "sketch", "photo": "photo", "edge": "edge"}[modality]
        img_dir = self.folder / sub
        if not img_dir.is_dir():
            if modality == "edge":
                raise ValueError(
                    f"QMUL V1 {self.category}: no edge/ folder under {self.folder}; compute edge maps from the "
                    "photos with sbirlib.data.edges.edge_map (modality='photo' plus that transform)."
                )
            raise missing_dataset("qmul-v1", self.folder.parent, f"{self.category}/{sub}/<id>.png", f"--category {self.category}")
        files = {p.stem: p for p in sorted(img_dir.iterdir()) if p.suffix.lower() in (".png", ".jpg", ".jpeg")}
        if not files:
            raise ValueError(f"QMUL V1 {self.category}: {img_dir} is empty; expected <id>.png / <id>.jpg files")
        src = "train" if split in ("train", "val") else "test"
        kind = "sketch" if modality == "sketch" else "photo"
        lst = self.folder / f"{kind}_{src}_name.txt"
        if lst.is_file():
            stems = [Path(n).stem for n in _read_list(lst)]
        elif self.category in QMUL_V1_ID_RANGES:
            lo, hi = QMUL_V1_ID_RANGES[self.category][0 if src == "train" else 1]
            stems = [s for s in files if s.isdigit() and lo <= int(s) <= hi]
        else:
            raise FileNotFoundError(
                f"QMUL V1 {self.category}: missing split file {lst}; the folder release of a category other "
                f"than {', '.join(QMUL_V1_ID_RANGES)} needs {{photo,sketch}}_{{train,test}}_name.txt"
            )
        missing = [s for s in stems if s not in files]
        if missing:
            raise FileNotFoundError(f"QMUL V1 {self.category}: {len(missing)} listed files missing from {img_dir}, e.g. {missing[0]}")
        stems = sorted(stems, key=lambda s: (int(s) if s.isdigit() else 0, s))
        if not stems:
            raise ValueError(f"QMUL V1 {self.category}: no {src} images found in {img_dir}")
        ids = [int(s) if s.isdigit() else i + 1 for i, s in enumerate(stems)]
        if src == "train":
            val = set(_val_indices(len(stems), self.val_fraction, self.val_seed).tolist())
            if split == "val" and not val:
                raise ValueError("split='val' is empty with val_fraction=0; use split='train' or val_fraction>0")
            keep = [i for i in range(len(stems)) if (i in val) == (split == "val")]
            stems = [stems[i] for i in keep]
            ids = [ids[i] for i in keep]
        self.source_files = [img_dir]
        return [files[s] for s in stems], ids

    # -- items ----------------------------------------------------------------------------
    def load_sample(self, sample: Any) -> Any:
        if self._arrays is not None:
            image = Image.fromarray(np.array(self._arrays[int(sample)]))
        else:
            image = load_image(sample, "RGB" if self.modality == "photo" else "L")
        return image_to_tensor(image) if self.transform is None else image

    def fingerprint(self) -> str:
        """SHA-256 of the source files (``.mat`` release) — the dataset checksum a run record keeps."""
        import hashlib

        digest = hashlib.sha256()
        for path in self.source_files:
            if Path(path).is_file():
                digest.update(file_sha256(path).encode())
            else:
                digest.update(str(sorted(p.name for p in Path(path).iterdir())).encode())
        return digest.hexdigest()

    def extra_repr(self) -> str:
        lines = [f"Category: {self.category}", f"Layout: {self.layout}"]
        if self.split in ("train", "val"):
            lines.append(f"Validation: {self.val_fraction:g} of training instances (seed {self.val_seed})")
        return "\n".join(lines)


def load_qmul_v1_triplets(root: str | os.PathLike | None = None, category: str = "shoes") -> list[list[tuple[int, int]]]:
    """The relative-similarity annotations ``<category>_train_triplets.mat`` (shoes only, V1).

    Returns one list per annotator (``One``, ``Two``, ``Three``) of rows; each row is a list
    of 45 ``(more_similar_id, less_similar_id)`` pairs of 1-based photo ids. Row order is
    *not* sketch order for training rows (see the data README); use it with care.
    """
    from scipy.io import loadmat

    category = _canon_category(category)
    name = f"{category}_train_triplets.mat"
    base = locate_root("qmul-v1", root, _V1_SUBDIRS, lambda f: (f / category / name).is_file(),
                       f"{category}/{name}", f"--category {category}")
    mat = loadmat(base / category / name, squeeze_me=True)
    out = []
    for key in ("One", "Two", "Three"):
        if key not in mat:
            raise ValueError(f"{base / category / name}: expected keys One, Two, Three; found {sorted(mat)}")
        rows = []
        for row in mat[key]:
            rows.append([(int(p[0]), int(p[1])) for p in row])
        out.append(rows)
    return out


# --------------------------------------------------------------------------------------
# V2: photo folders + vector-sketch pickles
# --------------------------------------------------------------------------------------
_V2_NAMES = {"shoes": "ShoeV2", "chairs": "ChairV2"}
_V2_SUBDIRS = ("qmul_v2", "qmul-v2", "QMUL_V2", "chairv2_vector", "shoev2_vector", "ShoeV2", "ChairV2")


def _v2_folder(folder: Path, name: str) -> Path | None:
    """The folder holding ``<name>_Coordinate`` or DLI-Net's ``trainA/ trainB/ testA/ testB/``
    (``folder`` itself or ``folder/<name>``)."""
    for cand in (folder, folder / name):
        if (cand / f"{name}_Coordinate").is_file():
            return cand
        if all((cand / d).is_dir() for d in ("trainA", "trainB", "testA", "testB")):
            return cand
    return None


def v2_photo_id(key: str) -> str:
    """Photo id of a V2 sketch key: ``'/test/CHABRA003GRY-UK_v1_PearlGrey_2'`` -> ``'CHABRA003GRY-UK_v1_PearlGrey'``.

    The **last** ``_<k>`` is removed (ids themselves contain ``_`` and ``-``; ``k`` can have
    several digits, and in Bhunia's ChairV2 pickle three keys end in an alphanumeric suffix such
    as ``sdich070-laque-rouge_A1YX741QQSMKPS``, which the same rule handles).
    """
    stem = key.rstrip("/").rsplit("/", 1)[-1]
    head, sep, tail = stem.rpartition("_")
    if not sep or not head or not tail:
        raise ValueError(f"sketch key {key!r} does not end in _<k>")
    return head


def _raster_sketch(path: Path) -> Image.Image:
    """A DLI-Net-layout sketch PNG as dark strokes on white.

    Those PNGs keep the strokes in the **alpha channel** (DLI-Net's loader reads it); a PNG with
    alpha becomes ``255 - alpha``, one without is converted to grayscale as is.
    """
    img = load_image(path, "RGBA")
    with Image.open(path) as raw:
        has_alpha = "A" in raw.getbands() or "transparency" in raw.info
    if has_alpha:
        alpha = np.asarray(img.getchannel("A"))
        return Image.fromarray((255 - alpha).astype(np.uint8))
    return img.convert("L")


class QMULV2(SBIRImageDataset):
    """QMUL Shoe-V2 / Chair-V2: vector form (strokes rasterised on the fly) or DLI-Net's raster layout.

    Args:
        root: folder holding ``<Name>_Coordinate`` (``Name`` = ``ShoeV2`` | ``ChairV2``), directly
            or in ``<Name>/``, ``qmul_v2/`` or ``chairv2_vector/``; photos in ``photo/<id>.png``
            next to the pickle (only needed for ``modality="photo"``). Alternatively DLI-Net's
            ``trainA/`` (sketches ``<id>_<k>.png``, strokes in the alpha channel), ``trainB/``
            (photos ``<id>.png``), ``testA/``, ``testB/``.
        split: ``"train"`` | ``"val"`` | ``"test"``; val = ``round(val_fraction * train photos)``
            photo ids with all their sketches (sorted ids, ``default_rng(val_seed).permutation``).
        category: ``"shoes"`` | ``"chairs"``.
        image_size: raster size of the sketches (and photos), default 256 (the drawing canvas).
        line_width: stroke width in pixels at 256 (3 ~ the reference 1-px line dilated once).

    ``instance`` is the position of the photo id in the sorted list of all photo ids, so a
    sketch and its photo share it; ``label`` is 0. The key of each sketch is in ``.keys``.
    """

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        split: str = "train",
        modality: str = "sketch",
        transform: Callable[[Any], Any] | None = None,
        download: bool = False,
        *,
        category: str = "chairs",
        val_fraction: float = 0.1,
        val_seed: int = 0,
        image_size: int = 256,
        line_width: int = 3,
    ) -> None:
        from sbirlib.data.vector import load_stroke_pickle

        verify_str_arg(split, "split", SPLITS)
        verify_str_arg(modality, "modality", ("sketch", "photo", "edge"))
        category = _canon_category(category)
        verify_str_arg(category, "category", tuple(_V2_NAMES))
        if modality == "edge":
            raise ValueError("QMUL V2 has no edge maps; use modality='photo' with sbirlib.data.edges.edge_map")
        name = _V2_NAMES[category]
        self.category, self.variant_name = category, name
        self.val_fraction, self.val_seed = float(val_fraction), int(val_seed)
        self.image_size, self.line_width = int(image_size), int(line_width)
        extra = f"--category {category}"
        if download:
            root = download_root(root)
            group = f"qmul-v2/{category}"
            if group not in RESOURCES:
                raise ValueError(f"no download source known for QMUL V2 {category}; see data_scripts/README.md")
            fetch(group, root)
        base = locate_root("qmul-v2", root, _V2_SUBDIRS, lambda f: _v2_folder(f, name) is not None,
                           f"{name}_Coordinate (vector sketches) [+ photo/<id>.png]", extra)
        folder = _v2_folder(base, name)
        assert folder is not None
        self.folder = folder
        self.pickle_path = folder / f"{name}_Coordinate"
        by_split: dict[str, dict[str, list[str]]] = {"train": {}, "test": {}}
        photo_files: dict[str, Path] = {}
        if self.pickle_path.is_file():
            self.layout = "vector"
            strokes = load_stroke_pickle(self.pickle_path)
            for key in sorted(strokes):
                part = key.strip("/").split("/", 1)[0]
                if part not in by_split:
                    raise ValueError(f"{self.pickle_path}: key {key!r} starts with neither /train/ nor /test/")
                by_split[part].setdefault(v2_photo_id(key), []).append(key)
        else:  # DLI-Net raster layout: sketches <id>_<k>.png in trainA/testA, photos <id>.png in trainB/testB
            self.layout = "raster"
            strokes = {}
            for part, (sk_dir, ph_dir) in {"train": ("trainA", "trainB"), "test": ("testA", "testB")}.items():
                sk_files = sorted(p for p in (folder / sk_dir).iterdir() if p.suffix.lower() == ".png")
                if not sk_files:
                    raise ValueError(f"QMUL V2 {name}: {folder / sk_dir} is empty; expected <photo_id>_<k>.png sketches")
                for p in sk_files:
                    by_split[part].setdefault(v2_photo_id(p.stem), []).append(str(p))
                for p in (folder / ph_dir).iterdir():
                    if p.suffix.lower() in (".png", ".jpg", ".jpeg"):
                        photo_files[p.stem] = p
        all_ids = sorted(set(by_split["train"]) | set(by_split["test"]))
        overlap = set(by_split["train"]) & set(by_split["test"])
        if overlap:
            raise ValueError(f"{self.pickle_path}: {len(overlap)} photo ids in both train and test, e.g. {sorted(overlap)[0]}")
        self.photo_index = {pid: i for i, pid in enumerate(all_ids)}
        src = "test" if split == "test" else "train"
        ids = sorted(by_split[src])
        if src == "train":
            val = set(_val_indices(len(ids), self.val_fraction, self.val_seed).tolist())
            if split == "val" and not val:
                raise ValueError("split='val' is empty with val_fraction=0; use split='train' or val_fraction>0")
            ids = [pid for i, pid in enumerate(ids) if (i in val) == (split == "val")]
        self.photo_ids = ids
        if modality == "sketch":
            self.keys = [k for pid in ids for k in by_split[src][pid]]
            self._strokes = {k: strokes[k] for k in self.keys} if self.layout == "vector" else {}
            samples: list[Any] = list(self.keys)
            instances = [self.photo_index[v2_photo_id(k)] for k in self.keys]
        else:
            photo_dir = folder / "photo"
            if self.layout == "raster":
                pass
            elif not photo_dir.is_dir():
                raise missing_dataset(
                    "qmul-v2", folder,
                    f"photos in {photo_dir}/<photo_id>.png (this copy has the vector sketches only; the photos "
                    "come from the SketchX download page)", extra)
            found = photo_files or {p.stem: p for p in photo_dir.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")}
            missing = [pid for pid in ids if pid not in found]
            if missing:
                raise FileNotFoundError(f"QMUL V2 {name}: {len(missing)} of {len(ids)} photos missing from "
                                        f"{photo_dir}, e.g. {missing[0]}.png")
            self.keys = []
            self._strokes = {}
            samples = [found[pid] for pid in ids]
            instances = [self.photo_index[pid] for pid in ids]
        super().__init__(samples, [0] * len(samples), [category], modality, split, instances=instances,
                         transform=transform, root=folder)

    def fingerprint(self) -> str:
        """SHA-256 of the stroke pickle plus this split's keys / photo ids (recorded in run records)."""
        import hashlib

        digest = hashlib.sha256(file_sha256(self.pickle_path).encode() if self.layout == "vector" else b"raster")
        digest.update("\n".join(map(str, self.samples if self.modality == "photo" else self.keys)).encode())
        return digest.hexdigest()

    def load_sample(self, sample: Any) -> Any:
        from sbirlib.data.vector import rasterize_strokes

        if self.modality == "sketch" and self.layout == "vector":
            image = rasterize_strokes(self._strokes[sample], self.image_size, line_width=self.line_width)
        elif self.modality == "sketch":
            image = _raster_sketch(Path(sample))
            if image.size != (self.image_size, self.image_size):
                image = image.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
        else:
            image = load_image(sample, "RGB")
            if image.size != (self.image_size, self.image_size):
                image = image.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
        return image_to_tensor(image) if self.transform is None else image

    def extra_repr(self) -> str:
        return "\n".join([f"Category: {self.category} ({self.variant_name}, {self.layout} sketches)",
                          f"Photos: {len(self.photo_ids)}", f"Raster: {self.image_size} px, line {self.line_width}"])


register_dataset(
    "qmul-v1",
    "QMUL Shoe-V1/Chair-V1/Handbag FG-SBIR: sketch i <-> photo edge map i (.mat); category=any folder with the files",
)(QMULV1)


register_dataset(
    "qmul-v2",
    "QMUL Shoe-V2/Chair-V2 FG-SBIR: photos + vector-sketch pickle rasterised on the fly (category=shoes|chairs)",
)(QMULV2)
