"""Sketch-a-Net pre-training by sketch classification (replaces the authors' ``sketchnet_init``).

sbirlib's own recipe, at paper scale and at CPU scale: train Sketch-a-Net with the
pre-training head (dropout 0.5 after fc6 and fc7) to classify sketches, then hand the conv1-fc7
weights to Triplet-SN and DSSA. Kaiming initialisation and Adam: with PyTorch's default
initialisation and SGD the project saw no learning at all.

| profile | data | network | recipe |
|---|---|---|---|
| ``smoke`` | synthetic category sketches (35 classes), 72 -> random 64 crop + flip | SAN-narrow 64 | Adam 1e-3, batch 64, 5 epochs, lr x0.1 after epoch 4 |
| ``cpu-real`` | TU-Berlin 40-class subset from ``$SBIR_DATA``, 144 -> random 128 crop + flip | SAN-narrow 128 | Adam 1e-3, batch 64, 10 epochs, lr x0.1 after epoch 8 |
| ``full`` | TU-Berlin 250 classes, 256 -> random 225 crop + flip | Sketch-a-Net | Adam 1e-3, batch 128, 60 epochs, lr x0.1 after epoch 45 |

The final epoch is kept (validation is for monitoring only). ``cpu-real`` trains for
10 epochs (lr drop after 8): about 2-4 minutes on two cores, top-1 0.49 on the held-out subset
sketches. A shorter 6-epoch schedule (top-1 0.37) left Triplet-SN no better than the
blurred-pixel baseline, so the pre-training is worth its minutes. Weights are cached under
``sbirlib.utils.cache_dir("pretrain", <tag>)`` where the tag holds the profile and a hash of
its settings (e.g. ``san-cpu-real-<hash>``), so Triplet-SN and DSSA share one pre-training::

    from sbirlib.recipes import pretrain
    state = pretrain.pretrained_state("cpu-real")     # trains on first use (~2-3 min on 2 cores)
    model = pretrain.pretrained_sketch_a_net("cpu-real")

**ResNet-18 variant** (sbirlib's decision for DLI-Net's ``cpu-real``, which runs without
ImageNet weights): the same loop trains a full-width ResNet-18 (:class:`ResNetSketchClassifier`:
the library's :class:`~sbirlib.models.resnet.ResNetTrunk` + global average pooling + one linear
layer) to classify sketches, and DLI-Net's CPU profile copies its trunk into both encoders. Its
input follows DLI-Net: grey replicated to 3 channels and ``x' = 2x - 1`` (:func:`resnet_input`),
126 -> random 112 crop + flip.

| profile | data | recipe |
|---|---|---|
| ``resnet18-smoke`` | synthetic category sketches, 72 -> random 64 crop + flip | Adam 1e-3, batch 64, 2 epochs (tests only) |
| ``resnet18-cpu-real`` | TU-Berlin 40-class subset, 126 -> random 112 crop + flip | Adam 1e-3, batch 64, 4 epochs, lr x0.1 after epoch 3; held-out top-1 0.68 |

The ResNet has BatchNorm, whose running averages lag far behind Adam's fast-moving weights in
so short a run: after 2 epochs of ``resnet18-cpu-real`` the eval-mode validation top-1 was 0.05
with the running averages and 0.48 once they were re-estimated on 640 training sketches. So at
every epoch end, before validation and checkpointing, :func:`recalibrate_batchnorm` re-estimates
them exactly on ``bn_images`` fixed training sketches (centre crops), and the cached weights
carry these statistics. Cache tags start with the profile name (``resnet18-cpu-real-<hash>``)::

    state = pretrain.pretrained_state("resnet18-cpu-real")  # ResNetTrunk names: conv1.weight, layer3.1.bn2.bias, ...
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader

from sbirlib import training, utils
from sbirlib.models.resnet import ResNetTrunk
from sbirlib.models.sketch_a_net import SketchANet, normalize_sketch
from sbirlib.profiles import Config, resolve_profile
from sbirlib.recipes.common import ImageBank, build_source, center_crop, random_crop_flip

__all__ = ["PROFILES", "build_model", "load_data", "run", "pretrained_state", "pretrained_sketch_a_net",
           "pretrained_network", "cache_tag", "classification_accuracy", "ResNetSketchClassifier",
           "resnet_input", "recalibrate_batchnorm"]

PROFILES: dict[str, dict[str, Any]] = {
    "smoke": {
        "dataset": "synthetic-category", "category": None, "seed": 0, "epochs": 5,
        "variant": "narrow", "load_size": 72, "input_size": 64, "batch_size": 64,
        "lr": 1e-3, "lr_drop_epoch": 4, "dropout": 0.5,
    },
    "cpu-real": {
        "dataset": "tuberlin", "category": None, "seed": 0, "epochs": 10,
        "variant": "narrow", "load_size": 144, "input_size": 128, "batch_size": 64,
        "lr": 1e-3, "lr_drop_epoch": 8, "dropout": 0.5,
    },
    "full": {
        "dataset": "tuberlin", "category": None, "seed": 0, "epochs": 60,
        "variant": "full", "load_size": 256, "input_size": 225, "batch_size": 128,
        "lr": 1e-3, "lr_drop_epoch": 45, "dropout": 0.5,
    },
    # ResNet-18 for DLI-Net's CPU profiles; "network" selects it
    # "bn_images": BatchNorm statistics re-estimated on this many training sketches at every
    # epoch end (see recalibrate_batchnorm)
    "resnet18-smoke": {
        "network": "resnet18", "dataset": "synthetic-category", "category": None, "seed": 0,
        "epochs": 2, "load_size": 72, "input_size": 64, "batch_size": 64,
        "lr": 1e-3, "lr_drop_epoch": 2, "bn_images": 256,
    },
    "resnet18-cpu-real": {
        "network": "resnet18", "dataset": "tuberlin", "category": None, "seed": 0,
        "epochs": 4, "load_size": 126, "input_size": 112, "batch_size": 64,
        "lr": 1e-3, "lr_drop_epoch": 3, "bn_images": 512,
    },
}

NETWORKS = ("sketch-a-net", "resnet18")


def _network(cfg: dict[str, Any]) -> str:
    net = cfg.get("network", "sketch-a-net")  # the Sketch-a-Net profiles have no "network" key
    if net not in NETWORKS:
        raise ValueError(f"unknown pre-training network {net!r}; known: {', '.join(NETWORKS)}")
    return net


def cache_tag(cfg: dict[str, Any]) -> str:
    """The cache folder name of a pre-training: ``<prefix>-<profile>-<hash of the settings>``.

    The prefix is ``san`` for Sketch-a-Net (``san-cpu-real-<hash>``); the ResNet profiles
    already name their network (``resnet18-cpu-real-<hash>``), so they have none.
    """
    settings = {k: v for k, v in cfg.items() if k != "profile"}
    profile = cfg.get("profile", "custom")
    if _network(cfg) == "sketch-a-net":
        return f"san-{profile}-{training.config_fingerprint(settings)}"
    name = profile if str(profile).startswith(cfg["network"]) else f"{cfg['network']}-{profile}"
    return f"{name}-{training.config_fingerprint(settings)}"


class ResNetSketchClassifier(nn.Module):
    """A full-width ResNet-18 trunk (:class:`~sbirlib.models.resnet.ResNetTrunk`, Kaiming) + GAP + fc.

    ``trunk`` keeps torchvision's names, so :meth:`trunk_state_dict` (``conv1.weight``,
    ``layer3.1.bn2.running_mean``, ...) loads into any ``ResNetTrunk`` of the same depth and
    width -- e.g. both encoders of :class:`sbirlib.models.dlinet.DLINet`.
    """

    def __init__(self, num_classes: int, depth: int = 18) -> None:
        super().__init__()
        self.trunk = ResNetTrunk(depth=depth, width=64, in_chans=3)
        self.fc = nn.Linear(self.trunk.num_features, num_classes)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``[B, num_classes]`` of images prepared by :func:`resnet_input`."""
        return self.fc(self.trunk(x))

    forward = classify

    def trunk_state_dict(self) -> dict[str, torch.Tensor]:
        """The trunk's weights and BatchNorm statistics (``conv1`` ... ``layer4``), no head."""
        return self.trunk.state_dict()


def resnet_input(images: torch.Tensor) -> torch.Tensor:
    """Grey -> 3 channels and ``x' = 2x - 1``: DLI-Net's input normalisation (official code).

    The same as :func:`sbirlib.recipes.dlinet.normalize`, so the pre-trained trunk sees sketches
    exactly as DLI-Net's encoders will.
    """
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return images * 2.0 - 1.0


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, images: torch.Tensor, prepare=resnet_input,
                          device: torch.device | str = "cpu", batch_size: int = 64) -> int:
    """Re-estimate every BatchNorm's running mean and variance on ``images`` ("precise BN").

    The statistics become the plain average over the batches of ``prepare(images)`` (momentum
    ``None``) instead of an exponential average over past training steps, which lags behind the
    weights when they move fast. The batches go through ``model.classify`` if the model has one,
    else ``model`` itself (e.g. one DLI-Net encoder). Weights are untouched. Returns the number
    of BatchNorm layers (0 for Sketch-a-Net, which has none).
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return 0
    was, momenta = model.training, [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    forward = getattr(model, "classify", model)
    model.train()
    for start in range(0, len(images), batch_size):
        forward(prepare(images[start:start + batch_size]).to(device))
    for m, momentum in zip(bns, momenta):
        m.momentum = momentum
    model.train(was)
    return len(bns)


def _input_fn(cfg: dict[str, Any]):
    return normalize_sketch if _network(cfg) == "sketch-a-net" else resnet_input


def load_data(cfg: dict[str, Any], data_root: str | None = None) -> dict[str, ImageBank]:
    """``{"train", "val", "test"}`` sketch banks resized to ``cfg["load_size"]`` (grey)."""
    return {split: ImageBank(build_source(cfg, split, "sketch", data_root), cfg["load_size"], 1,
                             name=f"{cfg['dataset']}/{split}/sketch")
            for split in ("train", "val", "test")}


def build_model(cfg: dict[str, Any], num_classes: int) -> SketchANet | ResNetSketchClassifier:
    """Sketch-a-Net of ``cfg["variant"]`` (or, with ``cfg["network"] == "resnet18"``, a
    :class:`ResNetSketchClassifier`) with a ``num_classes`` head, Kaiming-initialised from ``cfg["seed"]``."""
    torch.manual_seed(int(cfg["seed"]))
    if _network(cfg) == "resnet18":
        return ResNetSketchClassifier(num_classes, depth=18)
    return SketchANet(variant=cfg["variant"], input_size=int(cfg["input_size"]), num_classes=num_classes,
                      dropout=float(cfg["dropout"]), init="kaiming")


@torch.no_grad()
def classification_accuracy(model: SketchANet | ResNetSketchClassifier, bank: ImageBank, crop: int,
                            device: torch.device | str = "cpu", batch_size: int = 256,
                            prepare=normalize_sketch) -> float:
    """Top-1 accuracy of the pre-training head on the centre crops of ``bank``.

    ``prepare`` maps the crops to the network's input (:func:`resnet_input` for the ResNet).
    """
    was = model.training
    model.eval()
    correct = 0
    labels = torch.as_tensor(bank.labels)
    for start in range(0, len(bank), batch_size):
        x = prepare(center_crop(bank.images[start:start + batch_size], crop)).to(device)
        correct += int((model.classify(x).argmax(1).cpu() == labels[start:start + batch_size]).sum())
    model.train(was)
    return correct / max(1, len(bank))


def run(cfg: dict[str, Any], *, output_dir: str | Path | None = None, device: str | torch.device = "auto",
        data_root: str | None = None, checkpoint: str = "auto", progress: bool = True,
        data: dict[str, ImageBank] | None = None) -> tuple[SketchANet, training.History, dict[str, float]]:
    """Pre-train (or load the cached pre-training) and return ``(model, history, metrics)``.

    ``metrics`` holds the classification accuracy on the validation and test sketches.
    """
    t0 = time.perf_counter()
    cfg = Config(dict(cfg))
    utils.seed_everything(int(cfg.seed))
    dev = utils.get_device(device)
    data = data or load_data(cfg, data_root)
    model = build_model(cfg, num_classes=len(data["train"].classes) or max(data["train"].labels) + 1)
    crop = int(cfg.input_size)
    prepare = _input_fn(cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(cfg.lr), betas=(0.9, 0.999))
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[int(cfg.lr_drop_epoch)], gamma=0.1)
    loader = DataLoader(data["train"], batch_size=int(cfg.batch_size), shuffle=True, drop_last=True)

    def step_fn(net, batch, dev_):
        x = prepare(random_crop_flip(batch["image"], crop)).to(dev_)
        y = batch["label"].to(dev_)
        logits = training.unwrap_model(net).classify(x)
        loss = F.cross_entropy(logits, y)
        return {"loss": loss, "acc": (logits.argmax(1) == y).float().mean()}

    bn_images = None
    if int(cfg.get("bn_images") or 0):
        pick = torch.randperm(len(data["train"]), generator=torch.Generator().manual_seed(int(cfg.seed)))
        bn_images = center_crop(data["train"].images[pick[:int(cfg.bn_images)]], crop)

    def val_fn(net):
        if bn_images is not None:  # before validation, so the checkpoints carry the new statistics
            recalibrate_batchnorm(net, bn_images, prepare, dev)
        return {"top1": classification_accuracy(net, data["val"], crop, dev, prepare=prepare)}

    settings = {k: v for k, v in dict(cfg).items() if k != "profile"}
    history = training.train_or_load(
        model, loader, step_fn, checkpoint=checkpoint, output_dir=output_dir, config=settings,
        optimizer=optimizer, scheduler=scheduler, epochs=int(cfg.epochs), device=dev, val_fn=val_fn,
        monitor="top1", mode="max", keep="last", seed=int(cfg.seed), progress=progress)
    metrics = {"val/top1": classification_accuracy(model, data["val"], crop, dev, prepare=prepare),
               "test/top1": classification_accuracy(model, data["test"], crop, dev, prepare=prepare),
               "wall_time_s": time.perf_counter() - t0}
    return model, history, metrics


def _cfg(profile: str | dict[str, Any]) -> Config:
    return resolve_profile(PROFILES, profile) if isinstance(profile, str) else Config(dict(profile))


def pretrained_network(profile: str | dict[str, Any] = "cpu-real", *, device: str | torch.device = "auto",
                       data_root: str | None = None, checkpoint: str = "auto",
                       progress: bool = True) -> SketchANet | ResNetSketchClassifier:
    """The pre-trained network of ``profile`` (with its classification head), cached.

    The first call trains (see the module tables for the cost) and stores the weights under
    ``cache_dir("pretrain", cache_tag(cfg))``; later calls load them. The training history and
    the held-out top-1 are attached as ``.pretrain_history`` / ``.pretrain_metrics``.
    """
    cfg = _cfg(profile)
    out = utils.cache_dir("pretrain", cache_tag(cfg))
    model, history, metrics = run(cfg, output_dir=out, device=device, data_root=data_root,
                                  checkpoint=checkpoint, progress=progress)
    model.pretrain_history = history  # type: ignore[attr-defined]
    model.pretrain_metrics = metrics  # type: ignore[attr-defined]
    return model.cpu()


def pretrained_sketch_a_net(profile: str | dict[str, Any] = "cpu-real", *, device: str | torch.device = "auto",
                            data_root: str | None = None, checkpoint: str = "auto",
                            progress: bool = True) -> SketchANet:
    """The pre-trained Sketch-a-Net of ``profile`` (with its classification head), cached.

    The first call trains (see the module table for the cost) and stores the weights under
    ``cache_dir("pretrain", cache_tag(cfg))``; later calls load them.
    """
    return pretrained_network(profile, device=device, data_root=data_root, checkpoint=checkpoint,
                              progress=progress)


def pretrained_state(profile: str | dict[str, Any] = "cpu-real", *, device: str | torch.device = "auto",
                     data_root: str | None = None, checkpoint: str = "auto",
                     progress: bool = True) -> dict[str, torch.Tensor]:
    """Trunk weights (no head) of the cached pre-training of ``profile``; trains on first use.

    Sketch-a-Net: conv1-fc7. ResNet (``resnet18-*``): the :class:`~sbirlib.models.resnet.ResNetTrunk`
    state, ``conv1`` ... ``layer4`` under torchvision's names.
    """
    model = pretrained_network(profile, device=device, data_root=data_root, checkpoint=checkpoint,
                               progress=progress)
    return {k: v.detach().clone() for k, v in model.trunk_state_dict().items()}
