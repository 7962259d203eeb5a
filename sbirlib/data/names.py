"""Class-name aliases: one split file works on every packaging of a dataset.

The same class is spelled differently across releases (``hot-air_balloon`` / ``hot_air_balloon``,
``bottle opener`` / ``bottle_opener`` / ``bottleopener``, ``palm tree`` / ``palm_tree``) and the
TU-Berlin-Extended photo archive misspells nine folders (``chandeler``, ``tromobone``, ...).
sbirlib keeps the **on-disk folder name as the class id** and matches names through
:func:`name_key` (case-folded, with spaces, hyphens, underscores and parentheses removed) plus
the explicit alias table :data:`ALIASES`.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = [
    "ALIASES",
    "TUBERLIN_EXT_PHOTO_FOLDERS",
    "name_key",
    "display_name",
    "ClassNameResolver",
    "normalise_class_folders",
]

#: TU-Berlin-Ext photo folder -> TU-Berlin sketch class (the raw archive's nine irregular cases)
TUBERLIN_EXT_PHOTO_FOLDERS: dict[str, str] = {
    "chandeler": "chandelier",
    "diamod": "diamond",
    "griaffe": "giraffe",
    "spidar": "spider",
    "tromobone": "trombone",
    "mouse": "mouse (animal)",
    "pipe": "pipe (for smoking)",
    "spacesshuttle": "space shuttle",
    "wristwatching": "wrist-watch",
}

#: extra spellings (by key) that are the same class; applied on top of :func:`name_key`
ALIASES: dict[str, str] = {
    "chandeler": "chandelier",
    "diamod": "diamond",
    "griaffe": "giraffe",
    "spidar": "spider",
    "tromobone": "trombone",
    "spacesshuttle": "spaceshuttle",
    "wristwatching": "wristwatch",
}

_STRIP = re.compile(r"[\s\-_()]+")


def name_key(name: str) -> str:
    """The spelling-independent key of a class name: ``"Bear (animal)"`` -> ``"bearanimal"``."""
    key = _STRIP.sub("", name.strip().casefold())
    return ALIASES.get(key, key)


def display_name(name: str) -> str:
    """A human-readable label: ``"car_(sedan)"`` -> ``"car (sedan)"``, ``"hot-air_balloon"`` -> ``"hot-air balloon"``."""
    return re.sub(r"\s+", " ", name.replace("_", " ")).strip()


class ClassNameResolver:
    """Map any spelling of a class name to the folder name a dataset uses on disk.

    >>> r = ClassNameResolver(["hot-air_balloon", "car_(sedan)"])
    >>> r.resolve("hot_air_balloon"), r.resolve("car (sedan)")
    ('hot-air_balloon', 'car_(sedan)')
    """

    def __init__(self, names: Iterable[str], extra: Mapping[str, str] | None = None, where: str = "") -> None:
        self.names = sorted(set(names))
        self.where = where
        self._by_key: dict[str, str] = {}
        clashes = []
        for name in self.names:
            key = name_key(name)
            if key in self._by_key and self._by_key[key] != name:
                clashes.append((self._by_key[key], name))
            self._by_key[key] = name
        if clashes:
            raise ValueError(
                f"class folders {clashes[0][0]!r} and {clashes[0][1]!r}{' in ' + where if where else ''} are the "
                "same class spelled twice; keep one of them"
            )
        for alias, target in (extra or {}).items():
            if name_key(target) in self._by_key:
                self._by_key.setdefault(name_key(alias), self._by_key[name_key(target)])

    def __contains__(self, name: str) -> bool:
        return name_key(name) in self._by_key

    def resolve(self, name: str) -> str:
        """The on-disk name of ``name``; ``KeyError`` naming the nearest known names otherwise."""
        key = name_key(name)
        if key in self._by_key:
            return self._by_key[key]
        near = difflib.get_close_matches(key, list(self._by_key), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(self._by_key[k]) for k in near)}?" if near else ""
        place = f" in {self.where}" if self.where else ""
        raise KeyError(f"unknown class {name!r}: no folder{place} matches it (spelling-independent){hint}")

    def resolve_all(self, names: Iterable[str]) -> list[str]:
        """Resolve every name, reporting *all* unknown ones at once."""
        out, bad, hints = [], [], []
        for n in names:
            try:
                out.append(self.resolve(n))
            except KeyError:
                bad.append(n)
                near = difflib.get_close_matches(name_key(n), list(self._by_key), n=1, cutoff=0.6)
                if near and len(hints) < 3:
                    hints.append(f"{n!r} -> {self._by_key[near[0]]!r}?")
        if bad:
            place = f" under {self.where}" if self.where else ""
            near = f" Nearest names: {'; '.join(hints)}." if hints else ""
            raise KeyError(
                f"{len(bad)} listed class(es) have no folder{place}: {', '.join(map(repr, bad[:10]))}"
                f"{' ...' if len(bad) > 10 else ''}.{near} Check the dataset layout (see data_scripts/README.md)."
            )
        return out

    def __repr__(self) -> str:
        return f"ClassNameResolver({len(self.names)} classes{', ' + self.where if self.where else ''})"


def normalise_class_folders(
    parent: str | os.PathLike,
    canonical: Iterable[str],
    *,
    aliases: Mapping[str, str] | None = None,
    dry_run: bool = False,
) -> dict[str, str]:
    """Rename class folders under ``parent`` to the ``canonical`` spelling of the same class.

    Used by the download scripts after extraction (e.g. TU-Berlin-Ext ``tromobone`` ->
    ``trombone``). ``aliases`` maps exact raw folder names to canonical names first (e.g.
    ``mouse`` -> ``mouse (animal)``). Folders that match no canonical name are left alone; a
    rename never overwrites an existing folder. Returns ``{old: new}``.
    """
    parent = Path(parent)
    by_key = {name_key(c): c for c in canonical}
    renames = {}
    for child in sorted(p for p in parent.iterdir() if p.is_dir()):
        if aliases and child.name in aliases:
            target = aliases[child.name]
        else:
            target = by_key.get(name_key(child.name))
        if target is None or target == child.name or (parent / target).exists():
            continue
        renames[child.name] = target
        if not dry_run:
            os.replace(child, parent / target)
    return renames
