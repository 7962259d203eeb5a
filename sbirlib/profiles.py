"""Profiles: the named recipes (`smoke`, `cpu-real`, `full`) a chapter or the CLI can run.

A recipe module holds a ``PROFILES`` dict mapping profile name to a flat dict of settings.
:func:`resolve_profile` picks one, applies overrides and refuses anything it does not know,
so a typo in a papermill parameter or a CLI flag fails loudly instead of being ignored.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["Config", "resolve_profile", "PROFILE_NAMES"]

#: The profiles the book knows about, cheapest first.
PROFILE_NAMES = ("smoke", "cpu-real", "full")


class Config(dict):
    """A dict with attribute access (``cfg.lr``) that remembers which profile it came from."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(
                f"config of profile {self.get('profile')!r} has no key {key!r}; "
                f"known keys: {', '.join(sorted(self))}"
            ) from None

    def __setattr__(self, key: str, value: Any) -> None:
        if key not in self:
            raise AttributeError(f"cannot add unknown key {key!r} to a resolved config")
        self[key] = value

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self.items())
        return f"Config({body})"

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-friendly copy."""
        return copy.deepcopy(dict(self))


def resolve_profile(
    profiles: Mapping[str, Mapping[str, Any]], name: str, /, **overrides: Any
) -> Config:
    """Return the settings of profile ``name`` with ``overrides`` applied.

    Overrides whose value is ``None`` are ignored, so a parameters cell can pass
    ``max_epochs=None`` to mean "keep the profile's value". Unknown profile names
    and unknown keys raise ``ValueError`` / ``KeyError`` listing what is allowed.
    """
    if name not in profiles:
        raise ValueError(
            f"unknown profile {name!r}; this recipe has: {', '.join(profiles)}"
            + (
                " (a chapter without small real data has no 'cpu-real' profile)"
                if name == "cpu-real"
                else ""
            )
        )
    cfg = Config(copy.deepcopy(dict(profiles[name])))
    dict.__setitem__(cfg, "profile", name)
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in cfg:
            raise KeyError(
                f"unknown setting {key!r} for profile {name!r}; known: {', '.join(sorted(cfg))}"
            )
        dict.__setitem__(cfg, key, value)
    return cfg


def variant(cfg: Mapping[str, Any], /, **changes: Any) -> Config:
    """A copy of a resolved config with some settings changed, for ablations and seeds.

    Unlike :func:`resolve_profile`, a ``None`` value is applied (some settings are
    legitimately ``None``). Unknown keys raise ``KeyError`` listing the known ones, so a typo
    in an ablation table cannot silently train the unchanged model.
    """
    unknown = sorted(set(changes) - set(cfg))
    if unknown:
        raise KeyError(f"unknown settings {unknown}; known: {', '.join(sorted(cfg))}")
    out = Config(copy.deepcopy(dict(cfg)))
    for key, value in changes.items():
        dict.__setitem__(out, key, value)
    return out
