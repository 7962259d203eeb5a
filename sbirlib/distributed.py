"""Helpers for running the trainer under ``torchrun`` (gloo on CPU, NCCL on GPU).

Launch any script that calls :func:`sbirlib.training.fit` with, e.g.::

    torchrun --nproc_per_node=2 -m sbirlib.cli train triplet-sn --dataset synthetic-fg \
        --profile smoke --output-dir runs/ddp

The script calls :func:`setup` once (it is a no-op without ``torchrun``'s environment);
``fit`` then wraps the model in DistributedDataParallel, only rank 0 writes checkpoints and
shows progress, and logged scalars are averaged over ranks. Give each rank its share of the
data with :func:`distributed_sampler` (a ``DistributedSampler``; ``fit`` calls its
``set_epoch``). With a per-rank batch of ``B / world_size`` the averaged gradient equals the
single-process gradient of batch ``B``.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn

__all__ = [
    "setup",
    "cleanup",
    "is_distributed",
    "rank",
    "world_size",
    "is_main_process",
    "barrier",
    "wrap_ddp",
    "distributed_sampler",
    "average_scalars",
    "any_true",
]


def is_distributed() -> bool:
    """True inside an initialised process group."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def is_main_process() -> bool:
    """True on rank 0 (and always in a single process)."""
    return rank() == 0


def setup(backend: str | None = None, timeout_s: float = 600.0) -> torch.device:
    """Initialise the process group from torchrun's environment and return this rank's device.

    Without ``WORLD_SIZE`` in the environment (a plain ``python`` run) nothing is initialised
    and the device is CPU/CUDA as available. The backend defaults to NCCL when CUDA is
    available and gloo otherwise.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if not is_distributed():
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def cleanup() -> None:
    """Destroy the process group if there is one."""
    if is_distributed():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for all ranks (no-op in a single process)."""
    if is_distributed():
        dist.barrier()


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """Wrap ``model`` in DistributedDataParallel for ``device`` (unused parameters tolerated)."""
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=False)


def distributed_sampler(dataset: Any, shuffle: bool = True, seed: int = 0, drop_last: bool = False
                        ) -> torch.utils.data.Sampler | None:
    """A ``DistributedSampler`` for ``dataset`` under a process group, else None."""
    if not is_distributed():
        return None
    return torch.utils.data.DistributedSampler(dataset, num_replicas=world_size(), rank=rank(),
                                               shuffle=shuffle, seed=seed, drop_last=drop_last)


def _comm_device() -> torch.device:
    """Where collective tensors must live: NCCL only reduces tensors on this rank's GPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def average_scalars(values: Mapping[str, float]) -> dict[str, float]:
    """Average a dict of floats over ranks (identity in a single process)."""
    values = dict(values)
    if not is_distributed() or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    t = (t / world_size()).cpu()
    return {k: float(v) for k, v in zip(keys, t)}


def any_true(flag: bool) -> bool:
    """True if ``flag`` is true on any rank (so every rank takes the same branch)."""
    if not is_distributed():
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=_comm_device())
    dist.all_reduce(t)
    return bool(t.item() > 0)
