"""Triplet-SN ("Sketch Me That Shoe", Yu et al. CVPR 2016): the recipe behind ``sbir train triplet-sn``.

One Sketch-a-Net with shared weights embeds the sketch, the positive edge map and the negative edge
map; the loss is the triplet hinge with margin 0.3 on squared Euclidean distances; only fc6/fc7
train on top of a pre-trained conv1-conv5 (:mod:`sbirlib.recipes.pretrain`); the test averages
distances over ten crops/flips.

Profiles (``PROFILES``):

* ``smoke`` -- synthetic fine-grained task (sketch vs edge map), SAN-narrow at 64 px, a short
  synthetic pre-training; a pipeline check, not a result.
* ``cpu-real`` -- QMUL Shoe-V1 (``--category chairs`` for Chair-V1) from ``$SBIR_DATA``,
  SAN-narrow at 128 px (144 px images), pre-trained on the TU-Berlin 40-class subset, Adam,
  batch 16, 600 iterations (20 epochs of 30). The CPU-scale design had 300; on the Shoe-V1
  validation split 600 reached acc@1 0.50 against 0.37 (seed 0), so we train twice as long.
  Must finish in < 10 min on two cores (pre-training included).
* ``full`` -- the paper's recipe: Sketch-a-Net at 225 px (256 px images), batch 128, SGD
  momentum 0.9, lr 1e-3, weight decay 5e-4 on weights, biases at 2x lr, 25,000 iterations,
  final iteration kept.

Library decisions (chapter 02 (Triplet-SN), "Where we had to decide"): 1/B loss
normalisation; TU-Berlin-only pre-training; anchors in a seeded permutation per epoch; the
positive is the sketch's own edge map and the negative another training edge map (the
annotated relative triplets are not in the shipped data); ``smoke``/``cpu-real`` select the
epoch with the best validation acc@1 (validation carved from the training instances), ``full``
keeps the final iteration (never the best on test).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, RandomSampler

from sbirlib import distributed, training, utils
from sbirlib.data import samplers
from sbirlib.losses import distances, triplet
from sbirlib.models.sketch_a_net import SketchANet, normalize_sketch
from sbirlib.profiles import Config
from sbirlib.recipes import common

__all__ = ["PROFILES", "CHAPTER", "load_data", "build_model", "build_optimizer", "make_loader",
           "make_step_fn", "encoder", "evaluate", "run"]

CHAPTER = "02_triplet_sn"

_COMMON = {
    "category": None, "seed": 0, "photo_modality": "edge", "margin": 0.3, "distance": "sqeuclidean",
    "loss": "fixed", "pretrained": True, "train_convs": False, "views": 10, "val_views": 1,
    "select": "best", "hard_negative": 0.5, "amp": True, "grad_clip": None,
    "synthetic": None, "dataset_kwargs": None,
}

PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {
        **_COMMON, "dataset": "synthetic-fg", "epochs": 4, "steps_per_epoch": 15,
        "variant": "narrow", "load_size": 72, "input_size": 64, "batch_size": 16,
        "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "bias_lr_mult": 1.0,
        "pretrain_profile": "smoke",
    },
    "cpu-real": {
        **_COMMON, "dataset": "qmul-v1", "category": "shoes", "epochs": 20, "steps_per_epoch": 30,
        "variant": "narrow", "load_size": 144, "input_size": 128, "batch_size": 16,
        "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "bias_lr_mult": 1.0,
        "pretrain_profile": "cpu-real", "hard_negative": 0.0,
    },
    "full": {
        **_COMMON, "dataset": "qmul-v1", "category": "shoes", "epochs": 100, "steps_per_epoch": 250,
        "variant": "full", "load_size": 256, "input_size": 225, "batch_size": 128,
        "optimizer": "sgd", "lr": 1e-3, "momentum": 0.9, "weight_decay": 5e-4, "bias_lr_mult": 2.0,
        "pretrain_profile": "full", "hard_negative": 0.0, "select": "last",
    },
}


def load_data(cfg: dict[str, Any], data_root: str | None = None) -> dict[str, common.ImageBank]:
    """Sketch and edge-map banks (grey, ``cfg["load_size"]`` px, uncropped) for train/val/test."""
    return common.load_fg_data(cfg, data_root, size=int(cfg["load_size"]),
                               photo_modality=cfg.get("photo_modality", "edge"), channels=1)


def build_model(cfg: dict[str, Any], backbone_state: dict[str, torch.Tensor] | None = None) -> SketchANet:
    """Sketch-a-Net (``cfg["variant"]``) with the pre-trained conv1-fc7 weights; convs frozen unless ``train_convs``."""
    torch.manual_seed(int(cfg["seed"]))
    model = SketchANet(variant=cfg["variant"], input_size=int(cfg["input_size"]))
    if backbone_state is not None:
        missing, unexpected = model.load_state_dict(backbone_state, strict=False)
        if missing or unexpected:
            raise RuntimeError(f"pre-trained weights do not fit SketchANet({cfg['variant']}): "
                               f"missing {missing}, unexpected {unexpected}")
    model.freeze_convs(not cfg.get("train_convs", False))
    return model


def build_optimizer(model: SketchANet, cfg: dict[str, Any]) -> torch.optim.Optimizer:
    """Caffe-style groups: weights at ``lr`` with weight decay, biases at ``bias_lr_mult * lr`` without."""
    weights = [p for n, p in model.named_parameters() if p.requires_grad and not n.endswith("bias")]
    biases = [p for n, p in model.named_parameters() if p.requires_grad and n.endswith("bias")]
    lr, wd = float(cfg["lr"]), float(cfg.get("weight_decay", 0.0))
    groups = [{"params": weights, "lr": lr, "weight_decay": wd},
              {"params": biases, "lr": lr * float(cfg.get("bias_lr_mult", 1.0)), "weight_decay": 0.0}]
    if cfg["optimizer"] == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=float(cfg.get("momentum", 0.9)))
    if cfg["optimizer"] == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999))
    raise ValueError(f"optimizer must be 'sgd' or 'adam', got {cfg['optimizer']!r}")


def make_loader(cfg: dict[str, Any], data: dict[str, common.ImageBank]) -> DataLoader:
    """Triplets (sketch, own edge map, another edge map); ``steps_per_epoch`` batches per epoch.

    The sketches are visited in seeded per-epoch permutations (consecutive chunks of
    ``batch_size``); under ``torchrun`` each rank gets ``batch_size / world_size`` of them.
    """
    triplets = samplers.TripletDataset(data["train_sketch"], data["train_photo"], level="instance",
                                       seed=int(cfg["seed"]), hard_negative=float(cfg.get("hard_negative", 0.0)))
    world = distributed.world_size()
    batch = int(cfg["batch_size"])
    if batch % world:
        raise ValueError(f"batch_size {batch} is not divisible by the {world} processes")
    sampler: Any
    if world > 1:
        sampler = distributed.distributed_sampler(triplets, shuffle=True, seed=int(cfg["seed"]))
    else:
        steps = cfg.get("steps_per_epoch")
        sampler = RandomSampler(triplets, num_samples=steps * batch if steps else None)
    return DataLoader(triplets, batch_size=batch // world, sampler=sampler, drop_last=True)


def make_step_fn(cfg: dict[str, Any]):
    """``step_fn(model, batch, device)``: random crop + flip per image, embed, triplet loss."""
    crop, margin, dist = int(cfg["input_size"]), float(cfg["margin"]), cfg.get("distance", "sqeuclidean")

    def step_fn(net, batch, dev):
        b = batch["sketch"].shape[0]
        images = torch.cat([batch["sketch"], batch["positive"], batch["negative"]])
        emb = net(normalize_sketch(common.random_crop_flip(images, crop)).to(dev))
        a, p, n = emb[:b], emb[b:2 * b], emb[2 * b:]
        if cfg["loss"] == "fixed":
            loss = triplet.triplet_margin_loss(a, p, n, margin=margin, distance=dist)
        elif cfg["loss"] == "in-batch":
            d = distances.pairwise_distance(a, p, dist)
            inst = batch["instance"].to(dev)
            same = (inst[:, None] == inst[None, :]) & ~torch.eye(b, dtype=torch.bool, device=dev)
            d = d.masked_fill(same, float(4.0 + margin))  # another sketch of the same instance is no negative
            loss = triplet.in_batch_triplet_loss(dist=d, margin=margin, normalize="all")
        else:
            raise ValueError(f"loss must be 'fixed' or 'in-batch', got {cfg['loss']!r}")
        with torch.no_grad():
            ok = (distances.paired_distance(a, p, dist) < distances.paired_distance(a, n, dist)).float().mean()
        return {"loss": loss, "triplet_acc": ok}

    return step_fn


def encoder(model: SketchANet, device: torch.device | str = "cpu"):
    """``encode(images in [0, 1]) -> embeddings``: the Sketch-a-Net input scaling, then the model."""
    def encode(x: torch.Tensor) -> torch.Tensor:
        return training.unwrap_model(model)(normalize_sketch(x.to(device)))

    return encode


def evaluate(model: SketchANet, data: dict[str, common.ImageBank], cfg: dict[str, Any], split: str = "test",
             views: int | None = None, device: torch.device | str = "cpu",
             return_distance: bool = False) -> Any:
    """acc@1/5/10 on ``split`` with the ``views``-view test (default ``cfg["views"]``)."""
    model.eval()
    return common.fg_metrics(encoder(model, device), data[f"{split}_sketch"], data[f"{split}_photo"],
                             crop=int(cfg["input_size"]), views=int(views or cfg["views"]),
                             distance=cfg.get("distance", "sqeuclidean"), device=device,
                             return_distance=return_distance)


def pretrained_backbone(cfg: dict[str, Any], *, device: str | torch.device = "auto", data_root: str | None = None,
                        progress: bool = True) -> dict[str, torch.Tensor] | None:
    """The cached Sketch-a-Net pre-training named by ``cfg["pretrain_profile"]`` (None if not pre-trained)."""
    if not cfg.get("pretrained", True):
        return None
    from pathlib import Path

    from sbirlib.recipes import pretrain

    # `--data-root DIR/qmul_v1` (the QMUL folder itself) is accepted: TU-Berlin is then looked
    # for beside it, in DIR, before giving up
    roots = [data_root] if not data_root else [data_root, str(Path(data_root).parent)]
    for i, root in enumerate(roots):
        try:
            return pretrain.pretrained_state(cfg["pretrain_profile"], device=device, data_root=root,
                                             progress=progress)
        except FileNotFoundError:
            if i == len(roots) - 1:
                raise
    return None  # pragma: no cover


def run(cfg: dict[str, Any], *, output_dir: str | Path | None = None, device: str | torch.device = "auto",
        data_root: str | None = None, checkpoint: str = "auto", progress: bool = True,
        data: dict[str, common.ImageBank] | None = None,
        backbone_state: dict[str, torch.Tensor] | None = None, baseline: bool = True,
        write: bool = True) -> common.RunResult:
    """Pre-train (cached), fine-tune, evaluate (ten-view test) and write ``metrics.json``.

    ``data`` and ``backbone_state`` let a chapter reuse what it already built. The record's
    metrics hold ``test/acc@K`` (ten views), ``test_1view/acc@K`` (centre crop only),
    ``val/acc@K`` (best epoch, one view) and, with ``baseline``, ``baseline/acc@K``: the
    blurred-pixel bar on the same test set.
    """
    t0 = time.perf_counter()
    cfg = Config(dict(cfg))
    utils.seed_everything(int(cfg.seed))
    dev = utils.get_device(device)
    data = data if data is not None else load_data(cfg, data_root)
    if backbone_state is None:
        backbone_state = pretrained_backbone(cfg, device=dev, data_root=data_root, progress=progress)
    model = build_model(cfg, backbone_state)
    optimizer = build_optimizer(model, cfg)
    loader = make_loader(cfg, data)

    def val_fn(net):
        return evaluate(net, data, cfg, "val", views=int(cfg.val_views), device=dev)

    def test_fn(net):
        return evaluate(net, data, cfg, "test", device=dev)

    def extra(net):
        out = {f"test_1view/{k}": v for k, v in evaluate(net, data, cfg, "test", views=1, device=dev).items()}
        if baseline:
            out.update({f"baseline/{k}": v for k, v in
                        common.pixel_baseline(data["test_sketch"], data["test_photo"]).items()})
        out["chance/acc@1"] = 1.0 / len(set(data["test_photo"].instances))
        return out

    return common.standard_run(
        cfg, chapter=CHAPTER, data=data, model=model, optimizer=optimizer, loader=loader,
        step_fn=make_step_fn(cfg), val_fn=val_fn, test_fn=test_fn, output_dir=output_dir, device=dev,
        checkpoint=checkpoint, steps_per_epoch=None, progress=progress, extra_metrics=extra,
        write=write, t0=t0, method="triplet-sn")
