"""A small model registry in the spirit of timm: register, create and list models by name."""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable
from typing import Any

import torch.nn as nn

__all__ = ["register_model", "create_model", "list_models", "model_entrypoint"]

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}

# Modules whose import registers models. Listed here (not discovered) so that an
# import error in one of them is reported instead of silently hiding its models
_MODEL_MODULES = (
    "sbirlib.models.sketch_a_net",
    "sbirlib.models.resnet",
    "sbirlib.models.se_resnet",
    "sbirlib.models.efficientnet_lite",
    "sbirlib.models.dssa",
    "sbirlib.models.dlinet",
    "sbirlib.models.dase",
    "sbirlib.models.cscan",
    "sbirlib.models.ffmln",
)
_loaded = False


def _load_all() -> None:
    global _loaded
    if not _loaded:
        for module in _MODEL_MODULES:
            importlib.import_module(module)
        _loaded = True


def register_model(fn: Callable[..., nn.Module] | None = None, *, name: str | None = None):
    """Decorator that registers a model constructor under ``name`` (default: the function name)."""

    def wrap(f: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or f.__name__
        if key in _REGISTRY and _REGISTRY[key] is not f:
            raise ValueError(f"model name {key!r} is registered twice")
        _REGISTRY[key] = f
        return f

    return wrap(fn) if fn is not None else wrap


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style ``pattern``, sorted."""
    _load_all()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def model_entrypoint(name: str) -> Callable[..., nn.Module]:
    """The constructor registered under ``name``; a ``KeyError`` lists close names."""
    _load_all()
    if name not in _REGISTRY:
        import difflib

        close = difflib.get_close_matches(name, _REGISTRY, n=5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown model {name!r}.{hint} See sbirlib.models.list_models().")
    return _REGISTRY[name]


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the model registered under ``name`` with keyword arguments ``kwargs``."""
    return model_entrypoint(name)(**kwargs)
