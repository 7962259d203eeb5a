"""Recipes: one module per method holding its ``PROFILES`` and a ``run`` function.

A recipe is what ``sbir train METHOD`` and a chapter both execute, so the paper's
settings live in exactly one place. Each recipe module defines

* ``PROFILES: dict[str, dict]`` -- ``smoke`` / ``cpu-real`` (where real CPU data exists) /
  ``full`` (the paper's recipe), each a flat dict with at least ``dataset``, ``category``,
  ``seed``, ``epochs``;
* ``run(cfg, *, output_dir, device="auto", data_root=None, checkpoint="auto") -> RunResult``
  -- trains with :mod:`sbirlib.training`, selects on validation, evaluates on test with
  :mod:`sbirlib.evaluation`, and writes ``metrics.json`` and ``checkpoint.pt``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["RECIPES", "get_recipe", "list_recipes"]

#: method name (as used by ``sbir train``) -> module implementing it
RECIPES: dict[str, str] = {
    "triplet-sn": "sbirlib.recipes.triplet_sn",
    "triplet-ce": "sbirlib.recipes.triplet_ce",
    "dssa": "sbirlib.recipes.dssa",
    "dlinet": "sbirlib.recipes.dlinet",
    "dase-mems": "sbirlib.recipes.dase_mems",
    "cscan": "sbirlib.recipes.cscan",
    "ffmln": "sbirlib.recipes.ffmln",
}


def list_recipes() -> list[str]:
    """Method names ``sbir train`` accepts."""
    return list(RECIPES)


def get_recipe(name: str) -> ModuleType:
    """The recipe module of method ``name``."""
    if name not in RECIPES:
        raise KeyError(f"unknown method {name!r}; known: {', '.join(RECIPES)}")
    return importlib.import_module(RECIPES[name])
