"""Dataset names: every dataset is registered under a stable name the CLI and chapters use."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

from torch.utils.data import Dataset

__all__ = ["register_dataset", "build_dataset", "list_datasets"]

_FACTORIES: dict[str, Callable[..., Dataset]] = {}
_DESCRIPTIONS: dict[str, str] = {}

# Modules whose import registers datasets (explicit, so an import error is never hidden)
_DATA_MODULES = (
    "sbirlib.data.synthetic",
    "sbirlib.data.sketchy",
    "sbirlib.data.tuberlin",
    "sbirlib.data.quickdraw",
    "sbirlib.data.qmul",
    "sbirlib.data.class_folders",
)
_loaded = False


def _load_all() -> None:
    global _loaded
    if not _loaded:
        for module in _DATA_MODULES:
            importlib.import_module(module)
        _loaded = True


def register_dataset(name: str, description: str, **defaults: Any):
    """Register a dataset class or factory ``f(root=None, split=..., modality=..., **kw)``.

    Use it as a decorator or call it on a class: ``register_dataset("tuberlin", "...")(TUBerlin)``.
    ``defaults`` are keyword arguments the name implies (e.g. a split list); callers can
    still override them.
    """

    def wrap(factory: Callable[..., Dataset]) -> Callable[..., Dataset]:
        built = functools.partial(factory, **defaults) if defaults else factory
        if name in _FACTORIES and _FACTORIES[name] != built:
            raise ValueError(f"dataset name {name!r} is registered twice")
        _FACTORIES[name] = built
        _DESCRIPTIONS[name] = description
        return factory

    return wrap


def list_datasets() -> dict[str, str]:
    """``{name: one-line description}`` of every registered dataset, sorted by name."""
    _load_all()
    return dict(sorted(_DESCRIPTIONS.items()))


def build_dataset(name: str, **kwargs: Any) -> Dataset:
    """Build the dataset registered as ``name`` (e.g. ``"synthetic-fg"``, ``"qmul-v1"``)."""
    _load_all()
    if name not in _FACTORIES:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(_FACTORIES))}")
    return _FACTORIES[name](**kwargs)
