"""DLI-Net recipes: ``smoke`` / ``cpu-real`` / ``full`` (+ one ``full-*`` profile per paper setting).

Spec: ``../shared/specs/papers/dlinet.md``. The paper's per-dataset hyper-parameters (§4.1) are
the table :data:`PAPER_SETTINGS`; each row becomes a profile (``full`` = Shoe-V1,
``full-chair-v1``, ``full-handbag``, ``full-shoe-v2``, ``full-chair-v2``, ``full-sketchy``,
``full-sketchy-cc``). ``smoke`` and ``cpu-real`` are the CPU-scale variant of §9.

Training is the batch triplet loss over the whole in-batch distance matrix (Eq. L7; plus the
classification loss of Eq. L8 on Sketchy), Adam with a constant learning rate. Retrieval uses
:meth:`DLINet.pairwise_distance` (blocked, on the run's device) and
:func:`sbirlib.evaluation.fg_accuracy` on the precomputed matrix (pessimistic ties).

Checkpoint (spec §4.2 / §7.5): the reported model is the **final epoch** (``select="final"``);
the validation split is still evaluated every epoch and logged. ``select="val"`` picks the best
validation acc@1 instead (the cross-category setting). The test set never selects anything.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from sbirlib import results, training
from sbirlib.evaluation import fg_accuracy
from sbirlib.evaluation.retrieval import extract_embeddings, fg_gallery
from sbirlib.losses import triplet
from sbirlib.models import create_model
from sbirlib.models import dlinet as dl
from sbirlib.profiles import Config
from sbirlib.utils import get_device, seed_everything

__all__ = ["PROFILES", "PAPER_SETTINGS", "build_model", "build_transforms", "build_data",
           "make_step_fn", "dli_distance_matrix", "evaluate", "run", "CHAPTER"]

CHAPTER = "04_dlinet"

# Settings common to every profile: the model knobs of DLINet, then the training knobs
_MODEL_DEFAULTS: dict[str, Any] = {
    "model": "dlinet", "arch": "resnet50", "pretrained": True, "feature": "mid",
    "keep_ratio": 0.5, "matching": "cross", "aggregation": "2norm", "norm": "local",
    "symmetric": False, "num_classes": None,
}
_TRAIN_DEFAULTS: dict[str, Any] = {
    "image_size": 256, "train_resize": 288, "train_crop": True, "batch_size": 32,
    "lr": 1e-4, "betas": (0.9, 0.999), "weight_decay": 0.0, "margin": 0.1,
    "trip_weight": 1.0, "cls_weight": 0.0, "select": "final", "eval_block": 32,
    "max_steps_per_epoch": None, "num_workers": 0,
}

#: spec §4.1, one row per paper setting: (dataset, category) + what differs from the defaults
PAPER_SETTINGS: dict[str, dict[str, Any]] = {
    "shoe-v1": {"dataset": "qmul-v1", "category": "shoes", "epochs": 100},
    "chair-v1": {"dataset": "qmul-v1", "category": "chairs", "epochs": 100},
    "handbag": {"dataset": "qmul-v1", "category": "handbags", "epochs": 100},
    "shoe-v2": {"dataset": "qmul-v2", "category": "shoes", "epochs": 100},
    "chair-v2": {"dataset": "qmul-v2", "category": "chairs", "epochs": 100, "margin": 0.5},
    "sketchy": {
        "dataset": "sketchy-fg", "category": None, "epochs": 300, "lr": 1e-5,
        "model": "dlinet_sketchy", "num_classes": 125, "trip_weight": 48.0, "cls_weight": 1.0,
        "train_resize": 256, "train_crop": False,
    },
    "sketchy-cc": {
        "dataset": "sketchy-fg-cc", "category": None, "epochs": 20, "lr": 1e-5,
        "model": "dlinet_sketchy", "num_classes": 104, "trip_weight": 48.0, "cls_weight": 1.0,
        "train_resize": 256, "train_crop": False, "select": "val",
    },
}


def _full(setting: str) -> dict[str, Any]:
    row = dict(PAPER_SETTINGS[setting])
    return {"dataset": row.pop("dataset"), "category": row.pop("category"), "seed": 1000,
            "epochs": row.pop("epochs"), **_MODEL_DEFAULTS, **_TRAIN_DEFAULTS,
            "paper_setting": setting, **row}


def _cpu(**kw: Any) -> dict[str, Any]:
    base = {"seed": 0, **_MODEL_DEFAULTS, **_TRAIN_DEFAULTS, "model": "dlinet_r18",
            "arch": "resnet18", "pretrained": False, "paper_setting": None}
    base.update(kw)
    return base


PROFILES: dict[str, dict[str, Any]] = {
    # spec §9: 2 x ResNet-18 to layer3, 72 -> random 64 crop, 4x4 locals (keep 8), Adam 1e-3
    "smoke": _cpu(dataset="synthetic-fg", category=None, epochs=15, image_size=64,
                  train_resize=72, lr=1e-3, max_steps_per_epoch=None),
    # spec §9: QMUL Shoe-V1 sketch vs photo edge map, 126 -> 112, 7x7 locals (keep 24), Adam 1e-4
    "cpu-real": _cpu(dataset="qmul-v1", category="shoes", epochs=16, image_size=112,
                     train_resize=126, lr=1e-4),
    "full": _full("shoe-v1"),
    **{f"full-{name}": _full(name) for name in PAPER_SETTINGS if name != "shoe-v1"},
}


# ----------------------------------------------------------------------------- pieces


def build_model(cfg: dict[str, Any]) -> dl.DLINet:
    """The :class:`DLINet` a profile describes (registered name ``cfg["model"]``)."""
    kw = {k: cfg[k] for k in ("arch", "pretrained", "feature", "keep_ratio", "matching",
                              "aggregation", "norm", "symmetric")}
    if cfg["model"] == "dlinet_sketchy":
        kw["num_classes"] = cfg["num_classes"]
    return create_model(cfg["model"], **kw)


class _ToRGB:
    """Replicate a 1-channel tensor to 3 channels (grey sketches and edge maps)."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(3, -1, -1) if x.shape[0] == 1 else x

    def __repr__(self) -> str:
        return "ToRGB()"


def build_transforms(cfg: dict[str, Any], train: bool) -> T.Compose:
    """Square resize (+ random crop when training), grey -> 3 channels, ``x' = 2x - 1``.

    The mean = std = 0.5 normalisation is the official code's (spec §4.2), not ImageNet's.
    """
    size = int(cfg["image_size"])
    if train and cfg["train_crop"]:
        geo = [T.Resize((int(cfg["train_resize"]),) * 2), T.RandomCrop(size)]
    else:
        geo = [T.Resize((size, size))]
    return T.Compose([*geo, T.ToTensor(), _ToRGB(), T.Normalize((0.5,) * 3, (0.5,) * 3)])


class PhotoPairs(Dataset):
    """DLI-Net's training items (spec §4.2): indexed by **photo**, each with one of its sketches.

    Item ``i`` is photo ``i`` of the de-duplicated photo set and a sketch of the same instance,
    drawn uniformly at random on every access (V1 has exactly one). Shuffling photos therefore
    never puts a photo twice in a batch, so every off-diagonal entry of the batch distance
    matrix is a true negative. Items: ``{"sketch", "photo", "label", "instance"}``.
    """

    def __init__(self, sketches: Dataset, photos: Dataset, seed: int = 0) -> None:
        keep, _ = fg_gallery(sketches.instances, photos.instances)
        self.sketches, self.photos = sketches, photos
        self.photo_index = [int(i) for i in keep]
        by_inst: dict[int, list[int]] = {}
        for j, inst in enumerate(sketches.instances):
            by_inst.setdefault(int(inst), []).append(j)
        self.sketches_of = [by_inst.get(int(photos.instances[i]), []) for i in self.photo_index]
        if any(not s for s in self.sketches_of):
            raise ValueError("some training photos have no sketch; check the split")
        self.seed, self.epoch = int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        """Called by :func:`sbirlib.training.fit`: makes the sketch draws depend on the epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.photo_index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        choices = self.sketches_of[i]
        if len(choices) == 1:
            j = choices[0]
        else:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch * 10_007 + i)
            j = choices[int(torch.randint(len(choices), (1,), generator=g))]
        photo = self.photos[self.photo_index[i]]
        return {"sketch": self.sketches[j]["image"], "photo": photo["image"],
                "label": photo["label"], "instance": photo["instance"]}

    def __repr__(self) -> str:
        n_sk = sum(len(s) for s in self.sketches_of)
        return f"PhotoPairs(photos={len(self)}, sketches={n_sk}, seed={self.seed})"


def _dataset(cfg: dict[str, Any], split: str, modality: str, train: bool,
             data_root: str | None) -> Dataset:
    from sbirlib.data.registry import build_dataset

    tf = build_transforms(cfg, train)
    kw: dict[str, Any] = {"split": split, "modality": modality, "transform": tf}
    if cfg["dataset"].startswith("synthetic"):
        kw.update(task="fg", image_size=int(cfg.get("synthetic_size", 64)), seed=0)
    else:
        kw["root"] = data_root or None
        if cfg.get("category"):
            kw["category"] = cfg["category"]
    return build_dataset(cfg["dataset"], **kw)


def _photo_modality(cfg: dict[str, Any]) -> str:
    """QMUL V1's shared copy has photo edge maps only (spec §9 deviation); others use photos."""
    return "edge" if cfg["dataset"] == "qmul-v1" else "photo"


def build_data(cfg: dict[str, Any], data_root: str | None = None) -> dict[str, Dataset]:
    """``{"train": PhotoPairs, "val_sketch", "val_photo", "test_sketch", "test_photo"}``."""
    pm = _photo_modality(cfg)
    out: dict[str, Dataset] = {
        "train": PhotoPairs(_dataset(cfg, "train", "sketch", True, data_root),
                            _dataset(cfg, "train", pm, True, data_root), seed=cfg["seed"]),
    }
    for split in ("val", "test"):
        out[f"{split}_sketch"] = _dataset(cfg, split, "sketch", False, data_root)
        out[f"{split}_photo"] = _dataset(cfg, split, pm, False, data_root)
    return out


def make_step_fn(cfg: dict[str, Any]):
    """``step_fn(model, batch, device)``: Eq. (L7) (plus Eq. (L8) on Sketchy) on one batch."""

    def step_fn(model: nn.Module, batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
        sketch, photo = batch["sketch"].to(device), batch["photo"].to(device)
        out = model(sketch, photo)
        loss_trip = triplet.in_batch_triplet_loss(dist=out["dist"], margin=cfg["margin"],
                                                  normalize="active")
        logs = {"loss_trip": loss_trip.detach()}
        loss = cfg["trip_weight"] * loss_trip
        if cfg["cls_weight"]:
            loss_cls = dl.classification_loss(out, batch["label"].to(device))
            loss = loss + cfg["cls_weight"] * loss_cls
            logs["loss_cls"] = loss_cls.detach()
        with torch.no_grad():
            d = out["dist"].detach()
            logs["batch_acc@1"] = (d.argmin(dim=1) == torch.arange(len(d), device=d.device)).float().mean()
        return {"loss": loss, **logs}

    return step_fn


def _encode(model: dl.DLINet, fn, ds: Dataset, device, batch_size: int = 64) -> dict[str, torch.Tensor]:
    out = extract_embeddings(fn, ds, batch_size=batch_size, device=device)
    c = model.sketch_encoder.channels
    out["emb"] = out["emb"].reshape(out["emb"].shape[0], -1, c)
    return out


def dli_distance_matrix(model: dl.DLINet, sketch_ds: Dataset, photo_ds: Dataset,
                        device: str | torch.device = "cpu", block: int = 32) -> dict[str, Any]:
    """Encode both sets, de-duplicate the gallery and compute the ``[Q, G]`` DLI distances.

    Returns ``{"dist", "positives", "sketch_locals", "photo_locals", "encode_s", "score_s"}``
    (the last two are wall times: embedding both sets, and scoring all pairs).
    """
    dev = get_device(device)
    was_training = model.training
    model.eval()
    t0 = time.perf_counter()
    sk = _encode(model, model.encode_sketch, sketch_ds, dev)
    ph = _encode(model, model.encode_photo, photo_ds, dev)
    t1 = time.perf_counter()
    keep, positives = fg_gallery(sk["instances"], ph["instances"])
    gallery = ph["emb"][torch.as_tensor(keep)]
    dist = model.pairwise_distance(sk["emb"], gallery, device=dev, gallery_block=block)
    t2 = time.perf_counter()
    model.train(was_training)
    return {"dist": dist, "positives": positives, "sketch_locals": sk["emb"],
            "photo_locals": gallery, "encode_s": t1 - t0, "score_s": t2 - t1}


def evaluate(model: dl.DLINet, sketch_ds: Dataset, photo_ds: Dataset,
             device: str | torch.device = "cpu", ks=(1, 5, 10), block: int = 32):
    """acc@K of DLI-Net (pessimistic ties) via the precomputed DLI distance matrix."""
    d = dli_distance_matrix(model, sketch_ds, photo_ds, device, block)
    res = fg_accuracy(d["dist"], None, d["positives"], ks=ks, distance="precomputed")
    res.info.update({"encode_s": d["encode_s"], "score_s": d["score_s"],
                     "pairs": int(d["dist"].numel())})
    return res


def _check_profile(cfg: dict[str, Any]) -> None:
    name = str(cfg.get("profile", ""))
    if name.startswith("full") and name in PROFILES:
        own = PROFILES[name]
        if (cfg["dataset"], cfg["category"]) != (own["dataset"], own["category"]):
            match = [p for p, v in PROFILES.items() if p.startswith("full")
                     and (v["dataset"], v["category"]) == (cfg["dataset"], cfg["category"])]
            hint = f"use --profile {match[0]}" if match else "no paper setting exists for it"
            raise ValueError(
                f"profile {name!r} holds the paper's hyper-parameters for {own['dataset']} "
                f"{own['category'] or ''}, not {cfg['dataset']} {cfg['category'] or ''}; {hint} "
                f"(sbirlib/recipes/dlinet.py, PAPER_SETTINGS)"
            )


def run(cfg: dict[str, Any], *, output_dir: str | Path, device: str = "auto",
        data_root: str | None = None, checkpoint: str = "auto", progress: bool = True,
        data: dict[str, Dataset] | None = None) -> dict[str, Any]:
    """Train DLI-Net as ``cfg`` says, evaluate acc@1/5/10 on test, write ``metrics.json``.

    ``cfg`` is a resolved profile (``resolve_profile(PROFILES, name, ...)``). The model is the
    final epoch (``select="final"``) or the best validation acc@1 (``select="val"``); the
    validation curve is logged either way. ``data`` lets a caller (the chapter) pass datasets
    it already built. Returns ``{"model", "history", "test", "val", "record", "eval_info"}``.
    """
    cfg = Config(copy.deepcopy(dict(cfg))) if not isinstance(cfg, Config) else cfg
    _check_profile(cfg)
    seed_everything(int(cfg["seed"]))
    dev = get_device(device)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    data = data if data is not None else build_data(cfg, data_root)
    model = build_model(cfg)
    bs = int(cfg["batch_size"])
    loader = DataLoader(data["train"], batch_size=bs, shuffle=True,
                        drop_last=len(data["train"]) > bs, num_workers=int(cfg["num_workers"]))
    opt = torch.optim.Adam(model.parameters(), lr=float(cfg["lr"]), betas=tuple(cfg["betas"]),
                           weight_decay=float(cfg["weight_decay"]))
    epoch_box = [0]

    def val_fn(m: nn.Module) -> dict[str, float]:
        epoch_box[0] += 1
        res = evaluate(m, data["val_sketch"], data["val_photo"], dev, block=cfg["eval_block"])
        return {**{k: float(v) for k, v in res.items()}, "epoch": float(epoch_box[0])}

    monitor = "acc@1" if cfg["select"] == "val" else "epoch"
    history = training.train_or_load(
        model, loader, make_step_fn(cfg), checkpoint=checkpoint, output_dir=out,
        config=dict(cfg), optimizer=opt, epochs=int(cfg["epochs"]), device=dev, val_fn=val_fn,
        monitor=monitor, mode="max", seed=int(cfg["seed"]), progress=progress,
        steps_per_epoch=cfg["max_steps_per_epoch"],
    )
    model.to(dev)
    test = evaluate(model, data["test_sketch"], data["test_photo"], dev, block=cfg["eval_block"])
    val = evaluate(model, data["val_sketch"], data["val_photo"], dev, block=cfg["eval_block"])
    losses = history.train_loss
    metrics = {**{f"test/{k}": v for k, v in test.items()},
               **{f"val/{k}": v for k, v in val.items()}}
    if losses:
        metrics.update({"train/loss_first": losses[0], "train/loss_last": losses[-1]})
    prov = results.provenance(
        profile=cfg["profile"], seed=int(cfg["seed"]), device=str(dev),
        wall_time_s=time.perf_counter() - t_start, config=cfg.to_dict(),
        dataset=f"{cfg['dataset']}{'/' + cfg['category'] if cfg['category'] else ''}",
        selection=cfg["select"], photo_modality=_photo_modality(cfg),
    )
    record = results.run_record(
        CHAPTER, metrics, prov, test=dict(test), chance={"test/acc@1": test.info["chance_acc@1"]},
        timing={"encode_s": round(test.info["encode_s"], 3),
                "score_s": round(test.info["score_s"], 3), "pairs": test.info["pairs"]},
    )
    results.write_run_record(out, record)
    return {"model": model, "history": history, "test": test, "val": val, "record": record,
            "eval_info": dict(test.info)}
