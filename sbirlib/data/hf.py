"""Expose any sbirlib dataset as a Hugging Face :class:`datasets.Dataset` (image columns, Arrow cache).

Why: the Arrow copy is memory-mapped, loads in milliseconds the second time, can be shared
or pushed to a hub by the user, and gives the ``datasets`` tooling (``map``, ``filter``,
``with_format("torch")``) to anyone who prefers it. sbirlib's own training code keeps using the
torch datasets.

Offline-safe: nothing here touches the network. The Arrow copy lives in
``sbirlib.utils.cache_dir("hf", <key>)`` (under ``$SBIR_CACHE``), where ``<key>`` hashes the
dataset's class, ``repr``, sample list, labels, instances and (when it has one) its
``fingerprint()``; a second call with the same dataset loads that copy with
:func:`datasets.load_from_disk`. Works with ``HF_DATASETS_OFFLINE=1``.

Columns: ``image`` (:class:`datasets.Image`; grayscale ``L`` for sketches/edges, ``RGB`` for
photos, decoded as PIL images), ``label`` (:class:`datasets.ClassLabel` with the dataset's class
names), ``instance``, ``domain``, ``index`` — the fields of an sbirlib item.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["to_hf_dataset", "hf_cache_key"]


def _require_datasets() -> Any:
    try:
        import datasets
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("sbirlib.data.hf needs the Hugging Face `datasets` package: pip install 'sbirlib[hf]'") from err
    return datasets


def hf_cache_key(ds: Any) -> str:
    """A content key for ``ds``: changes when its files, split, labels or parameters change."""
    digest = hashlib.sha256()
    digest.update(f"{type(ds).__module__}.{type(ds).__qualname__}\n{ds!r}\n{len(ds)}\n".encode())
    for attr in ("samples", "labels", "instances"):
        values = getattr(ds, attr, None)
        if values is not None:
            digest.update("\x1f".join(map(str, values)).encode())
    fingerprint = getattr(ds, "fingerprint", None)
    if callable(fingerprint):
        digest.update(str(fingerprint()).encode())
    return digest.hexdigest()[:24]


def _to_pil(image: Any) -> Any:
    """A PIL image from an item's image (PIL, or a float tensor/array in [0, 1] of shape [C, H, W])."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return image
    arr = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    if arr.ndim == 3:
        arr = arr[0] if arr.shape[0] == 1 else np.transpose(arr, (1, 2, 0))
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def _generate(ds: Any, limit: int) -> Any:
    from tqdm.auto import tqdm

    for i in tqdm(range(limit), desc=f"to Arrow: {type(ds).__name__}", leave=False):
        item = ds[i]
        yield {
            "image": _to_pil(item["image"]),
            "label": int(item["label"]),
            "instance": int(item["instance"]),
            "domain": int(item["domain"]),
            "index": int(item["index"]),
        }


def to_hf_dataset(
    ds: Any,
    *,
    cache: bool = True,
    max_items: int | None = None,
    keep_in_memory: bool = False,
) -> Any:
    """Convert an sbirlib image dataset (any ``SBIRImageDataset``) to a ``datasets.Dataset``.

    Args:
        ds: the dataset; its ``transform`` is applied, so pass ``transform=None`` for raw images.
        cache: keep/load an Arrow copy under ``$SBIR_CACHE/hf/<key>`` (see module doc).
        max_items: convert only the first ``max_items`` items (quick looks, tests).
        keep_in_memory: load the Arrow table into memory instead of memory-mapping it.

    Returns a ``datasets.Dataset`` whose ``info.description`` names the source dataset.
    """
    datasets = _require_datasets()
    from sbirlib.utils import cache_dir

    limit = len(ds) if max_items is None else min(len(ds), int(max_items))
    classes = [str(c) for c in getattr(ds, "classes", [])] or ["0"]
    features = datasets.Features({
        "image": datasets.Image(),
        "label": datasets.ClassLabel(names=classes),
        "instance": datasets.Value("int64"),
        "domain": datasets.Value("int8"),
        "index": datasets.Value("int64"),
    })
    key = f"{hf_cache_key(ds)}-{limit}"
    target = cache_dir("hf") / key
    if cache and (target / "dataset_info.json").is_file():
        return datasets.load_from_disk(str(target), keep_in_memory=keep_in_memory)
    build_dir = cache_dir("hf", f".build-{key}-{os.getpid()}")
    try:
        out = datasets.Dataset.from_generator(
            _generate, features=features, cache_dir=str(build_dir), gen_kwargs={"ds": ds, "limit": limit},
            fingerprint=key, keep_in_memory=not cache or keep_in_memory,
        )
        out.info.description = f"sbirlib {type(ds).__name__}: {ds!r}".replace("\n    ", "; ")
        if not cache:
            return out
        tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
        out.save_to_disk(str(tmp))
        if target.exists():  # another process finished first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
    return datasets.load_from_disk(str(Path(target)), keep_in_memory=keep_in_memory)
