"""Pretrained weights: a flat ``{tag: (url, sha256)}`` manifest, a local cache, clear offline errors.

``pretrained=True`` in a model builder resolves a tag here::

    from sbirlib import hub
    state = hub.load_state_dict("resnet18.tv_in1k")     # cached file, or download + verify

Files live in ``sbirlib.utils.cache_dir("weights")`` (``$SBIR_CACHE/weights``, default
``~/.cache/sbirlib/weights``); torch.hub's checkpoint folder is also searched so weights that
torchvision already downloaded are reused. Downloads go through
:func:`sbirlib.data.download.download_url` (resumable, verified). ``sha256`` is the full
SHA-256, or ``None`` when only torchvision's 8-hex-digit prefix in the file name is known (then
that prefix is checked). Offline (``SBIR_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``, or no network),
:class:`WeightsUnavailableError` says which URL to fetch elsewhere and where to put the file.
Checkpoints load with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch

__all__ = ["WEIGHTS", "WeightsUnavailableError", "register_weights", "weights_path", "load_state_dict", "list_weights"]


class WeightsUnavailableError(RuntimeError):
    """Pretrained weights were requested but are neither cached nor downloadable."""


#: tag -> (url, sha256 or None). Tags are ``<architecture>.<source>``.
WEIGHTS: dict[str, tuple[str, str | None]] = {
    "resnet18.tv_in1k": ("https://download.pytorch.org/models/resnet18-f37072fd.pth", None),
    "resnet50.tv_in1k": ("https://download.pytorch.org/models/resnet50-0676ba61.pth", None),
}


def register_weights(tag: str, url: str, sha256: str | None = None) -> None:
    """Add (or confirm) a manifest entry; re-registering a tag with another URL/hash raises."""
    if tag in WEIGHTS and WEIGHTS[tag] != (url, sha256):
        raise ValueError(f"weights tag {tag!r} is already registered as {WEIGHTS[tag]}")
    WEIGHTS[tag] = (url, sha256)


def list_weights() -> dict[str, str]:
    """``{tag: url}`` of every known weight file."""
    return {tag: url for tag, (url, _sha) in sorted(WEIGHTS.items())}


def _offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes") for v in ("SBIR_OFFLINE", "HF_HUB_OFFLINE"))


def _prefix(filename: str) -> str | None:
    """torchvision's short hash: ``resnet18-f37072fd.pth`` -> ``f37072fd``."""
    m = re.search(r"-([0-9a-f]{8,64})\.\w+$", filename)
    return m.group(1) if m else None


def _verified(path: Path, sha256: str | None) -> bool:
    from sbirlib.data.download import file_sha256

    digest = file_sha256(path)
    if sha256:
        return digest == sha256.lower()
    prefix = _prefix(path.name)
    return prefix is None or digest.startswith(prefix)


def weights_path(tag: str, *, download: bool = True, opener: Any = None, progress: bool = True) -> Path:
    """Local path of the weights ``tag``, downloading them into the cache if needed."""
    from sbirlib.data.download import ChecksumError, DownloadError, download_url
    from sbirlib.utils import cache_dir

    if tag not in WEIGHTS:
        raise KeyError(f"unknown weights {tag!r}; known: {', '.join(sorted(WEIGHTS))}")
    url, sha256 = WEIGHTS[tag]
    filename = url.rsplit("/", 1)[-1]
    target = cache_dir("weights") / filename
    for path in (target, Path(torch.hub.get_dir()) / "checkpoints" / filename):
        if path.is_file():
            if not _verified(path, sha256):
                raise WeightsUnavailableError(
                    f"{path} exists but does not match the expected checksum for {tag!r}; it was not changed. "
                    f"Move it away and retry, or download {url} again by hand."
                )
            return path
    how = (f"Download {url} on a machine with network access and put it at {target} "
           "($SBIR_CACHE/weights), or pass pretrained=False to train from scratch on purpose.")
    if not download or _offline():
        reason = "offline mode is on (SBIR_OFFLINE / HF_HUB_OFFLINE)" if _offline() else "download=False"
        raise WeightsUnavailableError(f"pretrained weights {tag!r} are not cached and {reason}. {how}")
    try:
        path = download_url(url, target, sha256=sha256, opener=opener, progress=progress, check_magic=False)
    except (DownloadError, ChecksumError, OSError) as err:
        raise WeightsUnavailableError(f"could not download pretrained weights {tag!r}: {err}. {how}") from err
    if not _verified(path, sha256):
        bad = path.with_name(path.name + ".mismatch")
        os.replace(path, bad)
        raise WeightsUnavailableError(f"downloaded weights {tag!r} fail the hash check (kept at {bad}). {how}")
    return path


def load_state_dict(tag: str, *, download: bool = True, opener: Any = None) -> dict[str, torch.Tensor]:
    """The state dict of ``tag`` (``torch.load(..., weights_only=True)`` on CPU)."""
    path = weights_path(tag, download=download, opener=opener)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated or not a checkpoint
        raise WeightsUnavailableError(f"cannot read weights {path}: {err}. Delete the file and retry.") from err
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return state
