"""Small helpers every chapter and script needs: seeding, device choice, paths, provenance."""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import random
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "seed_everything",
    "get_device",
    "env_report",
    "git_commit",
    "data_root",
    "cache_dir",
    "code_digest",
    "DataNotFoundError",
]


class DataNotFoundError(FileNotFoundError):
    """Raised when a dataset or data root is missing; the message says how to get it."""


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch (all devices) so CPU runs repeat exactly.

    With ``deterministic=True`` torch is asked for deterministic kernels where it
    has them (``warn_only`` so that ops without a deterministic version still run).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        if torch.backends.cudnn.is_available():
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        # cuBLAS needs this for deterministic matmuls on CUDA
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def get_device(device: str | torch.device = "auto") -> torch.device:
    """Resolve ``"auto"`` to CUDA, then Apple MPS, then CPU; pass anything else through.

    Asking for ``"cuda"`` on a machine without a GPU raises instead of silently
    running on the CPU.
    """
    if isinstance(device, torch.device):
        return device
    if device in ("auto", "", None):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"device={device!r} was requested but CUDA is not available; use device='auto' or 'cpu'"
        )
    return dev


def git_commit(path: str | os.PathLike | None = None) -> str | None:
    """Return the current git commit (with ``-dirty`` if the tree has changes), or None."""
    cwd = Path(path) if path else Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, timeout=5,
        )
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def env_report(device: str | torch.device = "auto", print_it: bool = True) -> dict[str, Any]:
    """Versions, device, CPU and git commit: the facts a run record needs."""
    dev = get_device(device)
    import sbirlib

    report: dict[str, Any] = {
        "sbirlib": sbirlib.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "commit": git_commit(),
    }
    try:
        import torchvision

        report["torchvision"] = torchvision.__version__
    except ImportError:  # pragma: no cover - torchvision is a dependency
        pass
    if print_it:
        width = max(map(len, report))
        for key, value in report.items():
            print(f"{key:<{width}}  {value}")
    return report


def data_root(explicit: str | os.PathLike | None = None, *, required: bool = True) -> Path | None:
    """The folder holding real datasets: ``explicit`` if given, else ``$SBIR_DATA``.

    Raises :class:`DataNotFoundError` (naming ``SBIR_DATA`` and the download scripts)
    when neither is set or the folder does not exist and ``required`` is true.
    """
    value = str(explicit) if explicit not in (None, "") else os.environ.get("SBIR_DATA", "")
    if not value:
        if not required:
            return None
        raise DataNotFoundError(
            "No real-data root: pass data_root=... or set the environment variable SBIR_DATA "
            "to the folder holding the datasets (see data_scripts/README.md for the download "
            "commands, e.g. `python data_scripts/fetch_qmul_v1.py --root $SBIR_DATA`)."
        )
    path = Path(value).expanduser()
    if not path.is_dir():
        if not required:
            return None
        raise DataNotFoundError(
            f"Data root {path} does not exist. Set SBIR_DATA (or data_root=) to an existing "
            "folder; see data_scripts/README.md for how to fetch each dataset."
        )
    return path


def cache_dir(*parts: str) -> Path:
    """A writable cache folder: ``$SBIR_CACHE`` or ``~/.cache/sbirlib``, created on demand."""
    base = Path(os.environ.get("SBIR_CACHE", "") or Path.home() / ".cache" / "sbirlib").expanduser()
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """A short hash of the installed library's source (every ``sbirlib/**/*.py``).

    Part of the key under which trained weights are cached: weights are reused only by the
    code that trained them, so editing a model or a loss never silently loads stale weights.
    """
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
