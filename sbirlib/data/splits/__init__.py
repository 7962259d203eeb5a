"""Named, versioned splits shipped as package data.

Each split is a folder ``<dataset>/<task>/<name>@<version>/`` holding text lists
(``unseen.txt``, ``seen.txt``, ``val.txt`` and optional extras) and a ``manifest.json`` with
the origin, class-name convention, expected counts, SHA-256 of every list file, whether the
published gallery has duplicates, and the metric convention. Lists are never edited in place:
a changed list is a new version. ``data_scripts/make_splits.py`` regenerates the folders.

>>> from sbirlib.data.splits import load_split
>>> s = load_split("sketchy_ext/zs/sake25")
>>> len(s.unseen), len(s.seen), len(s.val)
(25, 100, 10)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Split", "load_split", "list_splits", "class_list", "read_query_list", "find_query_file", "SPLITS_DIR"]

SPLITS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Split:
    """A named split: class lists, optional file lists and the manifest."""

    name: str
    version: str
    dataset: str
    task: str
    unseen: tuple[str, ...] = ()
    seen: tuple[str, ...] = ()
    val: tuple[str, ...] = ()
    files: dict[str, tuple[str, ...]] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def train(self) -> tuple[str, ...]:
        """Seen classes minus the validation classes (what a zero-shot model trains on)."""
        held = set(self.val)
        return tuple(c for c in self.seen if c not in held)

    def classes_for(self, split: str) -> tuple[str, ...]:
        """Classes of ``"train"`` / ``"val"`` / ``"test"`` for a zero-shot split."""
        if split == "train":
            return self.train
        if split == "val":
            return self.val
        if split == "test":
            return self.unseen
        raise ValueError(f"split={split!r}; expected 'train', 'val' or 'test'")

    def __repr__(self) -> str:
        return (f"Split({self.full_name!r}, dataset={self.dataset!r}, task={self.task!r}, "
                f"seen={len(self.seen)}, val={len(self.val)}, unseen={len(self.unseen)}, "
                f"files={sorted(self.files)})")


def _read_lines(path: Path) -> tuple[str, ...]:
    return tuple(ln.rstrip("\n") for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip())


def class_list(dataset: str) -> tuple[str, ...]:
    """All class folder names of ``dataset`` (``"sketchy"``, ``"tuberlin"``, ``"quickdraw_ext"``)."""
    path = SPLITS_DIR / "_classes" / f"{dataset}.txt"
    if not path.is_file():
        known = sorted(p.stem for p in (SPLITS_DIR / "_classes").glob("*.txt"))
        raise KeyError(f"no class list for {dataset!r}; known: {', '.join(known)}")
    return _read_lines(path)


def list_splits() -> list[str]:
    """Every shipped split as ``name@version``."""
    out = []
    for manifest in sorted(SPLITS_DIR.rglob("manifest.json")):
        rel = manifest.parent.relative_to(SPLITS_DIR).as_posix()
        out.append(rel)
    return out


def _resolve(name: str) -> Path:
    if "@" in name:
        folder = SPLITS_DIR / name
        if (folder / "manifest.json").is_file():
            return folder
    else:
        parent = SPLITS_DIR / Path(name).parent
        stem = Path(name).name
        if parent.is_dir():
            versions = sorted(
                (p for p in parent.glob(f"{stem}@*") if (p / "manifest.json").is_file()),
                key=lambda p: (not p.name.split("@", 1)[1].isdigit(), _vkey(p.name.split("@", 1)[1])),
            )
            if versions:
                return versions[-1]
    raise KeyError(f"unknown split {name!r}; shipped splits: {', '.join(list_splits())}")


def _vkey(version: str) -> Any:
    return int(version) if version.isdigit() else version


def load_split(name: str, *, verify: bool = True) -> Split:
    """Load a shipped split by name (``"sketchy_ext/zs/sake25"`` = latest version, or ``"...@1"``).

    With ``verify`` the SHA-256 of every list file and the counts in the manifest are checked;
    a mismatch raises (the package data was edited or damaged).
    """
    folder = _resolve(name)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    lists: dict[str, tuple[str, ...]] = {}
    for fname, sha in manifest.get("sha256", {}).items():
        path = folder / fname
        if not path.is_file():
            raise FileNotFoundError(f"split {folder.name}: list file {path} named in its manifest is missing")
        if verify and hashlib.sha256(path.read_bytes()).hexdigest() != sha:
            raise ValueError(f"split {folder.name}: {fname} does not match the SHA-256 in its manifest")
        lists[fname.removesuffix(".txt")] = _read_lines(path)
    if verify:
        for key, expected in manifest.get("counts", {}).items():
            if key in lists and len(lists[key]) != expected:
                raise ValueError(f"split {folder.name}: {key}.txt has {len(lists[key])} lines, manifest says {expected}")
    rel = folder.relative_to(SPLITS_DIR).as_posix()
    base, version = rel.split("@", 1)
    return Split(
        name=base,
        version=version,
        dataset=manifest.get("dataset", base.split("/")[0]),
        task=manifest.get("task", base.split("/")[1] if "/" in base else ""),
        unseen=lists.pop("unseen", ()),
        seen=lists.pop("seen", ()),
        val=lists.pop("val", ()),
        files=lists,
        manifest=manifest,
    )


def read_query_list(path: str | Path) -> set[tuple[str, str]]:
    """``{(class folder, file name)}`` of the test queries in ``path``.

    Accepts a text file with one ``[...]/<class>/<file>`` per line, or DASE's JSON
    (``{"train": [[path, label], ...], "test": [[path, label], ...]}``; its ``"test"`` part).
    """
    path = Path(path)
    if path.suffix.lower() == ".json":
        try:
            rows = [r[0] for r in json.loads(path.read_text(encoding="utf-8"))["test"]]
        except (ValueError, KeyError, TypeError, IndexError) as err:
            raise ValueError(f"{path}: expected DASE's JSON with a 'test' list of [path, label] pairs ({err})") from err
    else:
        rows = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    out = set()
    for row in rows:
        parts = [p for p in row.replace("\\", "/").split("/") if p]
        if len(parts) < 2:
            raise ValueError(f"{path}: line {row!r} is not <class>/<file>")
        out.add((parts[-2], parts[-1]))
    return out


def find_query_file(split: Split, roots: list[Path], split_file: str | Path | None = None) -> Path:
    """The query list of a category-level split: ``split_file``, else the split's
    ``source_file`` looked up in ``<root>/splits/`` and ``<root>/`` for each root.

    Raises ``FileNotFoundError`` saying where it looked and how to get the file.
    """
    if split_file is not None:
        p = Path(split_file)
        p = p / "query_test.txt" if p.is_dir() else p
        if not p.is_file():
            raise FileNotFoundError(f"split file {p} not found; expected a text file with one <class>/<file> per "
                                    "line or DASE's *_sketch.json")
        return p
    name = split.manifest.get("source_file")
    if not name:
        raise FileNotFoundError(f"split {split.full_name} ships no query list and names no source file; "
                                "pass split_file=")
    looked = []
    for root in roots:
        for cand in (root / "splits" / name, root / name):
            looked.append(str(cand))
            if cand.is_file():
                return cand
    url = split.manifest.get("source_url", "")
    raise FileNotFoundError(
        f"split {split.full_name} needs its published query list {name} (looked in {', '.join(looked)}). "
        f"The dataset's fetch script downloads it into <root>/splits/ ({url}); or pass split_file=PATH."
    )
