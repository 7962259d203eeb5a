"""Data: the embedded synthetic benchmark, real-dataset loaders, samplers and edge maps.

Submodules are imported explicitly (``from sbirlib.data import synthetic``); datasets are
also reachable by their registered name through :func:`build_dataset`.
"""

from sbirlib.data.registry import build_dataset, list_datasets, register_dataset

__all__ = ["build_dataset", "list_datasets", "register_dataset"]
