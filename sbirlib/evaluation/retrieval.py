"""Embed datasets and evaluate them: the calls every chapter and recipe makes.

``extract_embeddings`` runs an encoder over a dataset (items are the dicts of
CONTRIBUTING.md); ``evaluate_fg`` and ``evaluate_category`` embed a sketch set and a photo set
and score them with :func:`sbirlib.evaluation.fg_accuracy` /
:func:`sbirlib.evaluation.retrieval_metrics`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from sbirlib.evaluation.metrics import MetricResult, fg_accuracy, retrieval_metrics

__all__ = ["extract_embeddings", "fg_gallery", "evaluate_fg", "evaluate_category"]

EncodeFn = Callable[[Tensor], Tensor]


def extract_embeddings(
    encode_fn: EncodeFn,
    dataset: Dataset,
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    num_workers: int = 0,
    progress: bool = False,
) -> dict[str, Tensor]:
    """Embed every item of ``dataset`` with ``encode_fn`` (in dataset order).

    ``encode_fn`` maps a batch of images ``[B, C, H, W]`` (already on ``device``) to
    ``[B, D]`` embeddings, e.g. ``model.embed_sketch``. It runs under ``torch.inference_mode``;
    if it is an ``nn.Module`` it is switched to eval mode for the call and restored after
    (for a bound method, put the model in eval mode yourself).

    Returns ``{"emb": float [N, D] on the CPU, "labels": int64 [N], "instances": int64 [N]}``.
    """
    from sbirlib.utils import get_device

    dev = get_device(device)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    was_training = None
    if isinstance(encode_fn, torch.nn.Module):
        was_training = encode_fn.training
        encode_fn.eval()
    embs, labels, instances = [], [], []
    batches = loader
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(loader, desc="embedding", unit="batch")
    try:
        with torch.inference_mode():
            for batch in batches:
                if not isinstance(batch, dict) or "image" not in batch:
                    raise TypeError(
                        "dataset items must be dicts with an 'image' key (see CONTRIBUTING.md, "
                        f"'Data items'); got {type(batch).__name__}"
                    )
                out = encode_fn(batch["image"].to(dev))
                if isinstance(out, (tuple, list)):
                    raise TypeError("encode_fn must return one [B, D] tensor; wrap the model to pick the embedding")
                embs.append(out.detach().float().reshape(out.shape[0], -1).cpu())
                n = out.shape[0]
                labels.append(torch.as_tensor(batch.get("label", torch.full((n,), -1))).long().reshape(-1))
                instances.append(torch.as_tensor(batch.get("instance", torch.full((n,), -1))).long().reshape(-1))
    finally:
        if was_training:
            encode_fn.train()
    if not embs:
        raise ValueError(f"dataset {type(dataset).__name__} is empty")
    return {"emb": torch.cat(embs), "labels": torch.cat(labels), "instances": torch.cat(instances)}


def fg_gallery(sketch_instances: Sequence[int] | Tensor,
               photo_instances: Sequence[int] | Tensor) -> tuple[np.ndarray, np.ndarray]:
    """De-duplicate the photo gallery by instance id and pair each sketch with its photo.

    Returns ``(keep, positives)``: the indices of the photos kept (the first photo of each
    instance, in dataset order) and, for each sketch, the position of its photo among them.
    Raises if a sketch's instance has no photo (a broken pairing).
    """
    s_inst = np.asarray(torch.as_tensor(sketch_instances)).reshape(-1)
    p_inst = np.asarray(torch.as_tensor(photo_instances)).reshape(-1)
    if (s_inst < 0).any():
        raise ValueError("some sketches have instance -1: fine-grained evaluation needs paired data")
    _, first = np.unique(p_inst, return_index=True)
    keep = np.sort(first)
    where = {int(i): k for k, i in enumerate(p_inst[keep])}
    missing = sorted({int(i) for i in s_inst} - set(where))
    if missing:
        raise ValueError(
            f"{len(missing)} sketch instance ids have no photo in the gallery (e.g. {missing[:5]}); "
            "check that the sketch and photo sets come from the same split"
        )
    positives = np.array([where[int(i)] for i in s_inst], dtype=np.int64)
    return keep, positives


def evaluate_fg(
    encode_sketch: EncodeFn,
    encode_photo: EncodeFn,
    sketch_ds: Dataset,
    photo_ds: Dataset,
    ks: Sequence[int] = (1, 5, 10),
    distance: str = "euclidean",
    *,
    ties: str = "pessimistic",
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> MetricResult:
    """Fine-grained SBIR: acc@K of each sketch's own photo among the distinct test photos.

    The gallery is ``photo_ds`` de-duplicated by instance id (``fg_gallery``); ranks use
    ``ties`` (pessimistic by default: photos at the same distance as the true one rank before
    it). Returns ``{"acc@1": ...}``.
    """
    sk = extract_embeddings(encode_sketch, sketch_ds, batch_size=batch_size, device=device, progress=progress)
    ph = extract_embeddings(encode_photo, photo_ds, batch_size=batch_size, device=device, progress=progress)
    keep, positives = fg_gallery(sk["instances"], ph["instances"])
    res = fg_accuracy(sk["emb"], ph["emb"][torch.as_tensor(keep)], positives, ks=ks,
                      distance=distance, ties=ties)
    res.info["gallery"] = "distinct photos (de-duplicated by instance id)"
    return res


def evaluate_category(
    encode_sketch: EncodeFn,
    encode_photo: EncodeFn,
    sketch_ds: Dataset,
    photo_ds: Dataset,
    metrics: Sequence[str] = ("map@all", "p@100"),
    distance: str = "euclidean",
    *,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: bool = False,
    **metric_options: Any,
) -> MetricResult:
    """Category-level (and zero-shot) SBIR: mAP / P@K of sketches against the photo gallery.

    The gallery is ``photo_ds`` as given (duplicates included, if any). ``metric_options``
    go to :func:`retrieval_metrics` (``ap=``, ``norm=``, ``denom=``, ``average=``, ...).
    """
    sk = extract_embeddings(encode_sketch, sketch_ds, batch_size=batch_size, device=device, progress=progress)
    ph = extract_embeddings(encode_photo, photo_ds, batch_size=batch_size, device=device, progress=progress)
    return retrieval_metrics(sk["emb"], sk["labels"], ph["emb"], ph["labels"], metrics=metrics,
                             distance=distance, progress=progress, **metric_options)
