"""Machinery every recipe shares: data banks, batch augmentation, evaluation, run records.

A recipe's ``run(cfg, ...)`` follows one skeleton (see :func:`standard_run`):

1. seed everything from ``cfg.seed``;
2. build the data -- :func:`load_fg_data` (fine-grained: sketches vs edge maps or photos) or
   :func:`load_category_data` (category / zero-shot), synthetic or real, train / val / test,
   each decoded **once** into an in-memory :class:`ImageBank` (two CPU cores cannot afford
   PIL decoding every step);
3. build the model and optimiser;
4. :func:`sbirlib.training.train_or_load` with a ``val_fn`` on the **validation** split;
5. evaluate the selected weights on the test split through :mod:`sbirlib.evaluation`;
6. write ``metrics.json`` (:func:`sbirlib.results.run_record` with provenance) and return a
   :class:`RunResult`.

Augmentation happens on whole batches of tensors (:func:`random_crop_flip`), drawn from
torch's global generator, which :func:`sbirlib.training.fit` re-seeds every epoch -- so a run
is reproducible and resumable.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from sbirlib import results, training, utils
from sbirlib.profiles import Config

__all__ = [
    "ImageBank",
    "RunResult",
    "build_source",
    "load_fg_data",
    "load_category_data",
    "random_crop_flip",
    "center_crop",
    "fg_metrics",
    "category_metrics",
    "pixel_baseline",
    "dataset_id",
    "finish_run",
    "standard_run",
    "SPLITS",
]

SPLITS = ("train", "val", "test")
_SYNTHETIC = ("synthetic-fg", "synthetic-category", "synthetic-zeroshot")


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------
class ImageBank(Dataset):
    """Images of one split and modality decoded once into a float tensor ``[N, C, S, S]`` in [0, 1].

    Items follow the library's format (``image``, ``label``, ``instance``, ``domain``,
    ``index``); ``.labels``, ``.instances`` and ``.classes`` are copied from the source, so
    samplers and evaluators accept a bank wherever they accept the source dataset.

    Args:
        source: any library dataset whose items carry an ``image`` tensor (no transform).
        size: side length to resize to (area interpolation; ``None`` keeps the size).
        channels: 1 turns RGB into grey, 3 repeats grey to RGB, ``None`` keeps the source's.
        name: shown in the ``repr``.
    """

    def __init__(self, source: Dataset, size: int | None = None, channels: int | None = None,
                 name: str = "") -> None:
        loader = DataLoader(source, batch_size=128, shuffle=False, num_workers=0)
        chunks = []
        for batch in loader:
            img = batch["image"].float()
            if channels == 1 and img.shape[1] == 3:
                img = img.mean(dim=1, keepdim=True)
            elif channels == 3 and img.shape[1] == 1:
                img = img.expand(-1, 3, -1, -1)
            if size is not None and (img.shape[-1] != size or img.shape[-2] != size):
                img = F.interpolate(img, size=(size, size), mode="area" if img.shape[-1] > size else "bilinear",
                                    **({} if img.shape[-1] > size else {"align_corners": False}))
            chunks.append(img.clamp(0, 1))
        if not chunks:
            raise ValueError(f"cannot build an ImageBank from the empty dataset {name or source!r}")
        self.images = torch.cat(chunks).contiguous()
        self.labels = [int(x) for x in source.labels]
        self.instances = [int(x) for x in source.instances]
        self.classes = list(getattr(source, "classes", []))
        self.modality = getattr(source, "modality", "sketch")
        from sbirlib.data.base import DOMAINS

        self.domain = DOMAINS.get(self.modality, 0)
        self.name = name or type(source).__name__
        fp = getattr(source, "fingerprint", None)
        self.source_fingerprint = fp() if callable(fp) else None

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": self.images[i], "label": self.labels[i], "instance": self.instances[i],
                "domain": self.domain, "index": i}

    def __repr__(self) -> str:
        c, h, w = self.images.shape[1:]
        return (f"ImageBank({self.name}: {len(self)} images of {c}x{h}x{w}, "
                f"{len(set(self.labels))} classes, {len(set(self.instances))} instances)")


def build_source(cfg: Mapping[str, Any], split: str, modality: str, data_root: str | None = None) -> Dataset:
    """The raw library dataset for ``cfg["dataset"]`` (synthetic or real) without a transform.

    Real datasets are read from ``data_root`` or ``$SBIR_DATA``; a missing root raises
    :class:`sbirlib.utils.DataNotFoundError` naming both (never a silent fallback).
    """
    from sbirlib.data.registry import build_dataset

    name = cfg["dataset"]
    kwargs: dict[str, Any] = {"split": split, "modality": modality, **dict(cfg.get("dataset_kwargs") or {})}
    if name in _SYNTHETIC:
        kwargs.update(seed=int(cfg.get("data_seed", 0)), progress=False)
        if cfg.get("category"):
            kwargs["category"] = cfg["category"]
        if cfg.get("synthetic"):
            kwargs.update(dict(cfg["synthetic"]))
        return build_dataset(name, **kwargs)
    root = utils.data_root(data_root or None)
    if cfg.get("category"):
        kwargs["category"] = cfg["category"]
    return build_dataset(name, root=str(root), **kwargs)


def load_fg_data(cfg: Mapping[str, Any], data_root: str | None = None, *, size: int | None = None,
                 photo_modality: str | None = None, channels: int | None = 1) -> dict[str, ImageBank]:
    """Fine-grained data: ``{"train_sketch", "train_photo", "val_sketch", ..., "test_photo"}``.

    ``photo`` is the gallery side: edge maps (``photo_modality="edge"``, the Triplet-SN / DSSA
    setting) or photos. Images are resized to ``size`` (default ``cfg["load_size"]``) and kept
    uncropped, so random crops (training) and the ten-view test can be cut from them.
    """
    size = size or cfg.get("load_size")
    photo_modality = photo_modality or cfg.get("photo_modality", "edge")
    out = {}
    for split in SPLITS:
        for side, modality in (("sketch", "sketch"), ("photo", photo_modality)):
            src = build_source(cfg, split, modality, data_root)
            out[f"{split}_{side}"] = ImageBank(src, size, channels,
                                               name=f"{cfg['dataset']}/{cfg.get('category') or 'all'}/{split}/{modality}")
    return out


def load_category_data(cfg: Mapping[str, Any], data_root: str | None = None, *, size: int | None = None,
                       channels: int | None = 3) -> dict[str, ImageBank]:
    """Category-level / zero-shot data: sketch and photo banks for train, val and test (RGB by default)."""
    size = size or cfg.get("load_size")
    out = {}
    for split in SPLITS:
        for side in ("sketch", "photo"):
            src = build_source(cfg, split, side, data_root)
            out[f"{split}_{side}"] = ImageBank(src, size, channels,
                                               name=f"{cfg['dataset']}/{split}/{side}")
    return out


def dataset_id(cfg: Mapping[str, Any], data: Mapping[str, ImageBank]) -> dict[str, Any]:
    """Dataset name, category, sizes and (where the loader offers one) the source checksum."""
    sizes = {k: len(v) for k, v in data.items()}
    checks = sorted({v.source_fingerprint for v in data.values() if v.source_fingerprint})
    return {"dataset": cfg["dataset"], "category": cfg.get("category"), "sizes": sizes,
            "sha256": checks or None}


# --------------------------------------------------------------------------------------
# batch augmentation
# --------------------------------------------------------------------------------------
def random_crop_flip(images: torch.Tensor, crop: int, flip: bool = True) -> torch.Tensor:
    """An independent random ``crop x crop`` crop (all offsets) and horizontal flip (p = 0.5) per image.

    Uses torch's global generator (re-seeded by :func:`sbirlib.training.fit` every epoch).
    """
    n, _, h, w = images.shape
    if crop > h or crop > w:
        raise ValueError(f"crop {crop} is larger than the images ({h}x{w})")
    tops = torch.randint(0, h - crop + 1, (n,)).tolist()
    lefts = torch.randint(0, w - crop + 1, (n,)).tolist()
    flips = (torch.rand(n) < 0.5).tolist() if flip else [False] * n
    out = [img[:, t:t + crop, l:l + crop] for img, t, l in zip(images, tops, lefts)]
    out = [v.flip(-1) if f else v for v, f in zip(out, flips)]
    return torch.stack(out)


def center_crop(images: torch.Tensor, crop: int) -> torch.Tensor:
    """The centre ``crop x crop`` of a batch ``[N, C, H, W]``."""
    h, w = images.shape[-2:]
    top, left = (h - crop) // 2, (w - crop) // 2
    return images[..., top:top + crop, left:left + crop]


# --------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------
def fg_metrics(encode: Callable[[torch.Tensor], torch.Tensor], sketches: ImageBank, photos: ImageBank, *,
               crop: int, views: int = 10, ks: Sequence[int] = (1, 5, 10), distance: Any = "sqeuclidean",
               device: str | torch.device = "cpu", return_distance: bool = False) -> Any:
    """Fine-grained acc@K with the ``views``-view averaged distance (1 = centre crop only).

    ``encode`` maps a batch of ``crop``-sized images (already on ``device``) to embeddings; it
    runs under ``torch.no_grad()``. Returns ``{"acc@1": ..., ...}`` (and the distance matrix
    ``[sketches, distinct photos]`` with ``return_distance``).
    """
    from sbirlib.evaluation import multiview

    out = multiview.evaluate_fg_multiview(encode, encode, sketches, photos, crop, views=views,
                                          distance=distance, ks=tuple(ks), device=device,
                                          return_distance=return_distance)
    if return_distance:
        metrics, dist = out
        return {k: float(v) for k, v in dict(metrics).items()}, dist
    return {k: float(v) for k, v in dict(out).items()}


def category_metrics(encode: Callable[[torch.Tensor], torch.Tensor], sketches: ImageBank, photos: ImageBank, *,
                     metrics: Sequence[str] = ("map@all", "p@100"), distance: str = "euclidean",
                     device: str | torch.device = "cpu", **options: Any) -> dict[str, float]:
    """Category-level mAP / P@K through :func:`sbirlib.evaluation.evaluate_category`."""
    from sbirlib.evaluation import evaluate_category

    res = evaluate_category(encode, encode, sketches, photos, metrics=tuple(metrics), distance=distance,
                            device=device, **options)
    return {k: float(v) for k, v in dict(res).items()}


def pixel_baseline(sketches: ImageBank, photos: ImageBank, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """The blurred-pixel nearest-neighbour bar (:func:`sbirlib.evaluation.pixel_baseline_fg`)."""
    from sbirlib.evaluation import pixel_baseline_fg

    return {k: float(v) for k, v in dict(pixel_baseline_fg(sketches, photos, ks=tuple(ks))).items()}


# --------------------------------------------------------------------------------------
# run records
# --------------------------------------------------------------------------------------
@dataclasses.dataclass
class RunResult:
    """What a recipe's ``run`` returns: metrics, training history, the model and the record."""

    metrics: dict[str, float]
    history: training.History
    model: nn.Module = dataclasses.field(repr=False)
    record: dict[str, Any] = dataclasses.field(repr=False)
    output_dir: Path | None = None
    data: Mapping[str, Any] | None = dataclasses.field(default=None, repr=False)
    extras: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def test(self) -> dict[str, float]:
        """Test metrics without the ``test/`` prefix."""
        return {k[5:]: v for k, v in self.metrics.items() if k.startswith("test/")}

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v:.3f}" for k, v in self.metrics.items()
                          if k.startswith("test/") and v is not None)
        how = "loaded" if self.history.loaded else f"trained {self.history.epochs} epochs"
        return f"RunResult({how}; {shown}; output_dir={self.output_dir})"


def finish_run(cfg: Mapping[str, Any], *, chapter: str, test: Mapping[str, float],
               val: Mapping[str, float] | None, history: training.History, output_dir: str | Path | None,
               device: str | torch.device, wall_time_s: float, data_info: Mapping[str, Any] | None = None,
               extra_metrics: Mapping[str, float] | None = None, write: bool = True,
               **sections: Any) -> dict[str, Any]:
    """Assemble (and write to ``output_dir/metrics.json``) the run record of a recipe run.

    ``metrics`` holds ``test/<m>``, ``val/<m>`` (best epoch), ``train/loss_first`` /
    ``train/loss_last`` and ``extra_metrics``; the record also has a ``test`` object and a
    ``provenance`` object (profile, seed, commit, device, wall time, config, dataset).
    """
    metrics: dict[str, float] = {f"test/{k}": float(v) for k, v in test.items()}
    for k, v in (val or {}).items():
        metrics[f"val/{k}"] = float(v)
    if history.train_loss:
        metrics["train/loss_first"] = float(history.train_loss[0])
        metrics["train/loss_last"] = float(history.train_loss[-1])
    metrics.update({k: float(v) for k, v in (extra_metrics or {}).items()})
    cfg_plain = dict(cfg)
    prov = results.provenance(profile=str(cfg.get("profile")), seed=int(cfg.get("seed", 0)), device=str(device),
                              wall_time_s=wall_time_s, config=cfg_plain,
                              dataset=str(cfg.get("dataset")), data=dict(data_info or {}),
                              trained=not history.loaded, epochs=history.epochs,
                              best_epoch=history.best_epoch)
    record = results.run_record(chapter, metrics, prov, test=dict(test),
                                history=history.to_dict(), **sections)
    if write and output_dir is not None:
        results.write_run_record(output_dir, record)
    return record


def standard_run(
    cfg: Mapping[str, Any],
    *,
    chapter: str,
    data: Mapping[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: Any,
    step_fn: training.StepFn,
    val_fn: training.ValFn | None,
    test_fn: Callable[[nn.Module], Mapping[str, float]],
    output_dir: str | Path | None,
    device: str | torch.device = "auto",
    checkpoint: str = "auto",
    scheduler: Any = None,
    monitor: str = "acc@1",
    mode: str = "max",
    steps_per_epoch: int | None = None,
    progress: bool = True,
    extra_metrics: Callable[[nn.Module], Mapping[str, float]] | None = None,
    write: bool = True,
    t0: float | None = None,
    **sections: Any,
) -> RunResult:
    """Steps 4-6 of the skeleton: train or load, evaluate on test, write the run record.

    ``val_fn`` selects the checkpoint on the validation split (``monitor``/``mode``); when
    ``cfg["select"] == "last"`` the final epoch is kept instead (validation is still logged).
    ``test_fn(model)`` runs once, on the selected weights.
    """
    t0 = time.perf_counter() if t0 is None else t0
    dev = utils.get_device(device)
    out = Path(output_dir) if output_dir else None
    keep = "last" if cfg.get("select", "best") == "last" else "best"
    fingerprint_cfg = {k: v for k, v in dict(cfg).items() if k not in ("profile",)}
    history = training.train_or_load(
        model, loader, step_fn, checkpoint=checkpoint, output_dir=out, config=fingerprint_cfg,
        optimizer=optimizer, epochs=int(cfg["epochs"]), device=dev, scheduler=scheduler, val_fn=val_fn,
        monitor=monitor, mode=mode, keep=keep, seed=int(cfg.get("seed", 0)), progress=progress,
        steps_per_epoch=steps_per_epoch, amp=bool(cfg.get("amp", True)),
        grad_clip=cfg.get("grad_clip"),
    )
    model.eval()
    with torch.no_grad():
        test = dict(test_fn(model))
        extra = dict(extra_metrics(model)) if extra_metrics is not None else {}
    val = history.best_val
    info = dataset_id(cfg, data) if data and all(isinstance(v, ImageBank) for v in data.values()) else None
    record = finish_run(cfg, chapter=chapter, test=test, val=val, history=history, output_dir=out,
                        device=dev, wall_time_s=time.perf_counter() - t0, data_info=info,
                        extra_metrics=extra, write=write, **sections)
    return RunResult(metrics=dict(record["metrics"]), history=history, model=model, record=record,
                     output_dir=out, data=data)
