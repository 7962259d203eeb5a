"""The category-level triplet + cross-entropy baseline ("TripletCE"): ``sbir train triplet-ce``.

The project's own generic baseline for the category-level and zero-shot chapters (no paper:
every choice is sbirlib's decision, see chapter 02 (Triplet-SN)): one trunk shared by sketches
(grey, replicated to 3 channels) and photos, global average pooling, a linear projection to ``z``,
the embedding ``e = z / ||z||``, a classifier on ``z``. Loss: triplet hinge with margin
0.2 on (non-squared) Euclidean distances of ``e`` (positive: a photo of the sketch's class;
negative: a photo of another class) plus 1.0 x the cross-entropy of the classifier averaged over
the sketch, the positive and the negative. Retrieval ranks photos by Euclidean distance of ``e``.

Profiles: ``smoke`` (synthetic category task, narrow ResNet-18 at 64 px, random init),
``cpu-real`` (the Sketchy subset, category split ``sketchy_subset/cat/q5v2``: ImageNet
EfficientNet-Lite0 at 128 px with its stem and first 11 of 16 blocks frozen, so a CPU epoch takes
about a minute; Adam 3e-4, 3 epochs, best validation mAP kept; P@25 because every class has
exactly 25 photos, so P@25 is the R-precision) and ``full`` (ImageNet ResNet-50 at 224 px on
TU-Berlin-Ext, Adam 1e-4, 30 epochs, lr x0.1 after epoch 20, final epoch kept).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, RandomSampler

from sbirlib import distributed, training, utils
from sbirlib.data import samplers
from sbirlib.losses import classification, triplet
from sbirlib.models import create_model
from sbirlib.models.resnet import IMAGENET_MEAN, IMAGENET_STD
from sbirlib.profiles import Config
from sbirlib.recipes import common

__all__ = ["PROFILES", "CHAPTER", "TripletCENet", "build_model", "make_loader", "make_step_fn", "evaluate", "run"]

CHAPTER = "02_triplet_sn"

PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {
        "dataset": "synthetic-category", "category": None, "seed": 0, "epochs": 3, "steps_per_epoch": 10,
        "backbone": "resnet18_narrow", "pretrained": False, "embed_dim": 128, "load_size": 64,
        "input_size": 64, "batch_size": 32, "lr": 1e-3, "lr_drop_epoch": 2, "margin": 0.2, "ce_weight": 1.0,
        "metrics": ["map@all", "p@100"], "select": "best", "amp": True, "grad_clip": None,
        "synthetic": None, "dataset_kwargs": None, "freeze_blocks": 0,
    },
    "cpu-real": {
        "dataset": "sketchy-subset", "category": None, "seed": 0, "epochs": 3, "steps_per_epoch": None,
        "backbone": "efficientnet_lite0", "pretrained": True, "freeze_blocks": 11, "embed_dim": 256,
        "load_size": 128, "input_size": 128, "batch_size": 32, "lr": 3e-4, "lr_drop_epoch": 3, "margin": 0.2,
        "ce_weight": 1.0, "metrics": ["map@all", "p@25"], "select": "best", "amp": True, "grad_clip": None,
        "synthetic": None, "dataset_kwargs": None,
    },
    "full": {
        "dataset": "tuberlin-ext", "category": None, "seed": 0, "epochs": 30, "steps_per_epoch": None,
        "backbone": "resnet50", "pretrained": True, "embed_dim": 512, "load_size": 224,
        "input_size": 224, "batch_size": 32, "lr": 1e-4, "lr_drop_epoch": 20, "margin": 0.2, "ce_weight": 1.0,
        "metrics": ["map@all", "p@100", "p@200"], "select": "last", "amp": True, "grad_clip": None,
        "synthetic": None, "dataset_kwargs": None, "freeze_blocks": 0,
    },
}


class TripletCENet(nn.Module):
    """Shared trunk -> GAP -> linear ``z`` -> ``e = z/||z||``; a classifier on ``z``.

    ``forward(x)`` returns ``e`` (what retrieval uses); ``forward_train(x)`` returns ``(e, logits)``.
    Inputs are 3-channel images as the trunk expects them (:meth:`prepare` maps [0, 1] images there,
    with the mean and std of the trunk's ``default_cfg``).
    """

    def __init__(self, trunk: nn.Module, num_features: int, embed_dim: int, num_classes: int) -> None:
        super().__init__()
        self.trunk = trunk
        self.proj = nn.Linear(num_features, embed_dim)
        self.classifier = classification.ClassifierHead(embed_dim, num_classes)
        self.embed_dim, self.num_classes = embed_dim, num_classes
        cfg = getattr(trunk, "default_cfg", {}) or {}
        self.register_buffer("mean", torch.tensor(cfg.get("mean", IMAGENET_MEAN)).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.get("std", IMAGENET_STD)).view(1, 3, 1, 1), persistent=False)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] images (grey or RGB) -> the trunk's normalised 3-channel input."""
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return (x - self.mean) / self.std

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """The un-normalised projection ``z``."""
        return self.proj(self.trunk(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.project(x), dim=1, eps=1e-12)

    def forward_train(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.project(x)
        return F.normalize(z, dim=1, eps=1e-12), self.classifier(z)


def build_model(cfg: dict[str, Any], num_classes: int) -> TripletCENet:
    """The TripletCE network of ``cfg`` (``pretrained=True`` fails loudly without ImageNet weights)."""
    torch.manual_seed(int(cfg["seed"]))
    trunk = create_model(cfg["backbone"], pretrained=bool(cfg["pretrained"]))
    if cfg.get("freeze_blocks"):
        trunk.freeze(int(cfg["freeze_blocks"]))
    return TripletCENet(trunk, trunk.num_features, int(cfg["embed_dim"]), num_classes)


def _augment(images: torch.Tensor, size: int) -> torch.Tensor:
    """RandomResizedCrop(size, scale=(0.8, 1), ratio=(3/4, 4/3)) + horizontal flip, per image."""
    n, _, h, w = images.shape
    out = []
    for img in images:
        area = h * w * float(torch.empty(1).uniform_(0.8, 1.0))
        ratio = float(torch.exp(torch.empty(1).uniform_(torch.log(torch.tensor(3 / 4)).item(),
                                                         torch.log(torch.tensor(4 / 3)).item())))
        cw = min(w, max(1, int(round((area * ratio) ** 0.5))))
        ch = min(h, max(1, int(round((area / ratio) ** 0.5))))
        top = int(torch.randint(0, h - ch + 1, (1,)))
        left = int(torch.randint(0, w - cw + 1, (1,)))
        crop = img[:, top:top + ch, left:left + cw].unsqueeze(0)
        crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False)[0]
        out.append(crop.flip(-1) if float(torch.rand(1)) < 0.5 else crop)
    return torch.stack(out)


def make_loader(cfg: dict[str, Any], data: dict[str, common.ImageBank]) -> DataLoader:
    """Category-level triplets (sketch, same-class photo, other-class photo)."""
    triplets = samplers.TripletDataset(data["train_sketch"], data["train_photo"], level="category",
                                       seed=int(cfg["seed"]))
    world = distributed.world_size()
    batch = int(cfg["batch_size"])
    if world > 1:
        sampler: Any = distributed.distributed_sampler(triplets, shuffle=True, seed=int(cfg["seed"]))
    else:
        steps = cfg.get("steps_per_epoch")
        sampler = RandomSampler(triplets, num_samples=steps * batch if steps else None)
    return DataLoader(triplets, batch_size=batch // world, sampler=sampler, drop_last=True)


def make_step_fn(cfg: dict[str, Any]):
    """Triplet hinge + ``ce_weight`` x cross-entropy averaged over the three images."""
    size, margin, w = int(cfg["input_size"]), float(cfg["margin"]), float(cfg["ce_weight"])

    def step_fn(net, batch, dev):
        b = batch["sketch"].shape[0]
        images = torch.cat([batch["sketch"], batch["positive"], batch["negative"]])
        core = training.unwrap_model(net)
        e, logits = core.forward_train(core.prepare(_augment(images, size).to(dev)))
        labels = torch.cat([batch["label"], batch["label"], batch["negative_label"]]).to(dev)
        l_trip = triplet.triplet_margin_loss(e[:b], e[b:2 * b], e[2 * b:], margin=margin, distance="euclidean")
        l_ce = classification.classification_loss(logits, labels)
        return {"loss": l_trip + w * l_ce, "triplet": l_trip.detach(), "ce": l_ce.detach()}

    return step_fn


def evaluate(model: TripletCENet, data: dict[str, common.ImageBank], cfg: dict[str, Any], split: str = "test",
             device: torch.device | str = "cpu") -> dict[str, float]:
    """mAP@all / P@K of ``split`` sketches against ``split`` photos (Euclidean distance of ``e``)."""
    size = int(cfg["input_size"])

    def encode(x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        core = training.unwrap_model(model)
        return core(core.prepare(x.to(device)))

    model.eval()
    return common.category_metrics(encode, data[f"{split}_sketch"], data[f"{split}_photo"],
                                   metrics=tuple(cfg["metrics"]), distance="euclidean", device=device)


def run(cfg: dict[str, Any], *, output_dir: str | Path | None = None, device: str | torch.device = "auto",
        data_root: str | None = None, checkpoint: str = "auto", progress: bool = True,
        data: dict[str, common.ImageBank] | None = None, write: bool = True) -> common.RunResult:
    """Train (or load) TripletCE, select on validation mAP, evaluate on test, write ``metrics.json``.

    Note: the DDP wrapper is not used by this step function's ``forward_train`` call, so under
    ``torchrun`` gradients are synchronised by DDP only for ``forward``; run it single-process.
    """
    t0 = time.perf_counter()
    cfg = Config(dict(cfg))
    if distributed.world_size() > 1:
        raise RuntimeError("triplet-ce does not support torchrun yet; run it in a single process")
    utils.seed_everything(int(cfg.seed))
    dev = utils.get_device(device)
    data = data if data is not None else common.load_category_data(cfg, data_root, size=int(cfg.load_size))
    num_classes = len(data["train_sketch"].classes) or max(data["train_sketch"].labels) + 1
    model = build_model(cfg, num_classes)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=float(cfg.lr),
                                 betas=(0.9, 0.999))
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[int(cfg.lr_drop_epoch)], gamma=0.1)
    monitor = str(cfg.metrics[0])
    return common.standard_run(
        cfg, chapter=CHAPTER, data=data, model=model, optimizer=optimizer, loader=make_loader(cfg, data),
        step_fn=make_step_fn(cfg), val_fn=lambda m: evaluate(m, data, cfg, "val", dev),
        test_fn=lambda m: evaluate(m, data, cfg, "test", dev), output_dir=output_dir, device=dev,
        checkpoint=checkpoint, scheduler=scheduler, monitor=monitor, mode="max", progress=progress,
        write=write, t0=t0, method="triplet-ce")
