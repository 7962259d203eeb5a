"""Recipe for DASE + MEMS (Lu et al., ACM MM 2021): ``smoke`` / ``full`` (no ``cpu-real``).

Category-level SBIR on the DSH protocol: query sketches are held out per class, every photo is
training data *and* gallery. One shared network embeds a mixed,
unpaired batch of sketches and photos together with their domain bits; MEMS pulls both towards
learnable class centres with an annealed multiplicative margin. At test time the squared
Euclidean distance is the minimum over the four flip combinations (M11); after training a
k-bit hash map is fitted on the centres and scored by Hamming mAP (M12-M15).
The method follows the official code ``Ben-Louis/SBIR-DASE-MEMS`` (the paper's method section
could not be read); (M1)-(M15) are sbirlib's labels for its equations, written out where used.

Switches for the chapter's ablations (keys of every profile): ``attention`` (a key of
:data:`sbirlib.models.dase.ATTENTION_VARIANTS`; ``"se"`` = domain bit off), ``loss``
(``"mems"`` | ``"ems"`` | ``"ce"`` | ``"triplet"``), ``margin``, ``anneal`` (False = m from
the first step).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch.utils.data import DataLoader
from torchvision import transforms as T

from sbirlib import results, utils
from sbirlib.data.registry import build_dataset
from sbirlib.evaluation import metrics as eval_metrics
from sbirlib.evaluation import retrieval
from sbirlib.losses import mems as mems_loss
from sbirlib.losses import triplet
from sbirlib.models import dase as dase_models
from sbirlib.models import dase_hashing
from sbirlib.profiles import Config, variant
from sbirlib.training import train_or_load, unwrap_model

__all__ = ["PROFILES", "CHAPTER", "run", "RunResult", "DASEMEMS", "build_model", "build_loss", "load_data",
           "sketch_transform", "photo_transform", "MixedBatches", "make_step_fn", "lr_lambda",
           "evaluate", "variant"]

CHAPTER = "05_dase_mems"

_SHARED: dict[str, Any] = {
    "attention": "dase",
    "loss": "mems",
    "margin": 4.0,
    "anneal": True,
    "anneal_fraction": 0.5,      # T_a = anneal_fraction * T (100k of 200k in the paper)
    "weight_decay": 1e-4,        # network only (Adam's L2 form); centres have none
    "reduction": 16,
    "triplet_margin": 0.3,
    "hash_steps": 10_000,
    "hash_lr": 1e-3,
    "crop_scale": (0.6, 1.0),
    "rotation": 90.0,
    "erase_p": 0.6,
    "n_classes": None,           # synthetic only: None = all 35 classes
    "split_name": None,          # real data: the named split (the DSH query lists of DASE)
    "rendering": None,           # Sketchy only: which sketch rendering folder
}

#: ``epochs * steps_per_epoch`` = T training iterations (each a mixed batch).
PROFILES: dict[str, dict[str, Any]] = {
    # synthetic category task (35 classes, DSH-style), narrow SE-ResNet-18 at 64 px (CPU scale)
    "smoke": {
        **_SHARED,
        "dataset": "synthetic-category", "category": None, "seed": 0,
        "epochs": 10, "steps_per_epoch": 20, "batch_size": 32,
        "backbone": "dase_seresnet18_cpu", "width": 32, "embed_dim": 128, "pretrained": False,
        "image_size": 64, "lr": 1e-3,
        "hash_steps": 2000, "hash_bits": (16, 32), "p_at": 100,
    },
    # the paper: SE-ResNeXt-101 32x4d (ImageNet, timm), 224 px, batch 22 + 22, Adam 1e-4,
    # 200,000 iterations, m = 4 annealed over 100,000, TU-Berlin-Ext DSH split
    "full": {
        **_SHARED,
        "dataset": "tuberlin-ext", "category": None, "seed": 0,
        "epochs": 200, "steps_per_epoch": 1000, "batch_size": 22,
        "backbone": "dase_seresnext101_32x4d", "width": None, "embed_dim": 512,
        "pretrained": True, "image_size": 224, "lr": 1e-4,
        "hash_bits": (32, 64, 128), "p_at": 200,
        "split_name": "tuberlin_ext/cat/dsh10@dase",
    },
    # the same recipe on Sketchy-Extended: DASE's 6,250 query sketches (tx_000100000000
    # rendering), every one of the 73,002 Extension photos as training set and gallery
    "full-sketchy": {
        **_SHARED,
        "dataset": "sketchy-ext", "category": None, "seed": 0,
        "epochs": 200, "steps_per_epoch": 1000, "batch_size": 22,
        "backbone": "dase_seresnext101_32x4d", "width": None, "embed_dim": 512,
        "pretrained": True, "image_size": 224, "lr": 1e-4,
        "hash_bits": (32, 64, 128), "p_at": 200,
        "split_name": "sketchy_ext/cat/dsh50@dase", "rendering": "tx_000100000000",
    },
}


# -- data ---------------------------------------------------------------------------------------
class _RandomRotateBlack:
    """Rotation uniform in [-deg, deg], bicubic, black fill (sketches are inverted here)."""

    def __init__(self, degrees: float) -> None:
        self.degrees = degrees

    def __call__(self, img: Image.Image) -> Image.Image:
        angle = float(torch.empty(1).uniform_(-self.degrees, self.degrees))
        return img.rotate(angle, resample=Image.BICUBIC, fillcolor=0)

    def __repr__(self) -> str:
        return f"RandomRotateBlack(degrees={self.degrees})"


def _to_three(x: torch.Tensor) -> torch.Tensor:
    return x.expand(3, -1, -1) if x.shape[0] == 1 else x


def sketch_transform(cfg: Config | dict, train: bool) -> T.Compose:
    """Sketch pipeline of the official code (train) or resize 1.1x + centre crop (test).

    Train: grayscale -> invert -> RandomResizedCrop(scale) -> hflip -> rotation +-90 (black
    fill) -> ToTensor -> random erasing of one square (p, 2-20 %, fills 0 = erases strokes) ->
    invert back -> 3 channels. Output in [0, 1], no normalisation.
    """
    size = cfg["image_size"]
    if not train:
        return T.Compose([T.Grayscale(), T.Resize((int(1.1 * size),) * 2), T.CenterCrop(size),
                          T.ToTensor(), T.Lambda(_to_three)])
    return T.Compose([
        T.Grayscale(), T.Lambda(ImageOps.invert),
        T.RandomResizedCrop(size, scale=tuple(cfg["crop_scale"]), ratio=(3 / 4, 4 / 3)),
        T.RandomHorizontalFlip(), _RandomRotateBlack(cfg["rotation"]), T.ToTensor(),
        T.RandomErasing(p=cfg["erase_p"], scale=(0.02, 0.2), ratio=(1.0, 1.0), value=0),
        T.Lambda(lambda x: 1 - x), T.Lambda(_to_three),
    ])


def photo_transform(cfg: Config | dict, train: bool) -> T.Compose:
    """Photo pipeline: resize to exactly size x size (+ hflip when training), 3 channels."""
    size = cfg["image_size"]
    steps: list[Any] = [T.Resize((size, size))]
    if train:
        steps.append(T.RandomHorizontalFlip())
    return T.Compose(steps + [T.ToTensor(), T.Lambda(_to_three)])


def load_data(cfg: Config | dict, data_root: str | Path | None = None,
              progress: bool = False) -> dict[str, Any]:
    """The five datasets of a run: training sketches/photos (augmented), validation and test
    query sketches, and the photo gallery (all photos, test transform).

    Synthetic data come from the sbirlib cache; real data from ``data_root`` / ``$SBIR_DATA``
    (a clear error names ``SBIR_DATA`` when missing) with the profile's ``split_name`` (the
    DSH query lists of DASE: every photo is both a training image and a gallery item).
    """
    name = cfg["dataset"]
    kw: dict[str, Any] = {}
    if name.startswith("synthetic"):
        kw = {"image_size": cfg["image_size"], "seed": 0, "progress": progress}
        if cfg.get("n_classes"):
            kw["n_classes"] = cfg["n_classes"]
    else:
        kw = {"root": utils.data_root(data_root), "split_name": cfg.get("split_name")}
        if cfg.get("rendering"):
            kw["rendering"] = cfg["rendering"]

    def ds(split: str, modality: str, train: bool):
        tf = (sketch_transform if modality == "sketch" else photo_transform)(cfg, train)
        return build_dataset(name, split=split, modality=modality, transform=tf, **kw)

    return {"train_sketch": ds("train", "sketch", True), "train_photo": ds("train", "photo", True),
            "val_sketch": ds("val", "sketch", False), "test_sketch": ds("test", "sketch", False),
            "gallery": ds("test", "photo", False)}


class MixedBatches:
    """Endless unpaired mixed batches: ``batch_size`` sketches + ``batch_size`` photos.

    Two independently shuffled loaders with ``drop_last``; each restarts when exhausted (the
    official trainer). Yields ``{"sketch", "sketch_label", "photo", "photo_label"}``. The
    shuffles draw from torch's global generator, which :func:`sbirlib.training.fit` seeds at
    every epoch, so runs repeat exactly.
    """

    def __init__(self, sketches, photos, batch_size: int, num_workers: int = 0) -> None:
        self.loaders = [DataLoader(d, batch_size=batch_size, shuffle=True, drop_last=True,
                                   num_workers=num_workers) for d in (sketches, photos)]
        self.batch_size = batch_size

    @staticmethod
    def _endless(loader):
        while True:
            yield from loader

    def __iter__(self):
        sk, ph = (self._endless(loader) for loader in self.loaders)
        while True:
            s, p = next(sk), next(ph)
            yield {"sketch": s["image"], "sketch_label": s["label"],
                   "photo": p["image"], "photo_label": p["label"]}

    def __repr__(self) -> str:
        n = [len(loader.dataset) for loader in self.loaders]
        return f"MixedBatches(sketches={n[0]}, photos={n[1]}, batch_size={self.batch_size} + {self.batch_size})"


# -- model and loss -----------------------------------------------------------------------------
class DASEMEMS(nn.Module):
    """The trained object: the shared encoder ``net`` plus the loss with its parameters.

    Keeping the MEMS centres (and the annealing step) inside one module means the trainer
    checkpoints and restores them with the network. ``forward(x, domain)`` embeds.
    """

    def __init__(self, net: dase_models.DASENet, loss_fn: nn.Module, loss_name: str) -> None:
        super().__init__()
        self.net, self.loss_fn, self.loss_name = net, loss_fn, loss_name
        self.register_buffer("train_steps", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor, domain: torch.Tensor | int) -> torch.Tensor:
        return self.net(x, domain)

    @property
    def centres(self) -> torch.Tensor | None:
        """The class centres (MEMS/EMS) or the classifier weights (CE); None for triplet."""
        if hasattr(self.loss_fn, "centres"):
            return self.loss_fn.centres.detach()
        if isinstance(self.loss_fn, nn.Linear):
            return self.loss_fn.weight.detach()
        return None

    def extra_repr(self) -> str:
        return f"loss={self.loss_name!r}"


def build_loss(cfg: Config | dict, num_classes: int) -> nn.Module:
    """The configured loss with its learnable parts (centres / classifier); T_a from the profile."""
    total = cfg["epochs"] * cfg["steps_per_epoch"]
    anneal = int(round(cfg["anneal_fraction"] * total)) if cfg["anneal"] else 0
    loss = cfg["loss"]
    if loss == "mems":
        return mems_loss.MEMSLoss(num_classes, cfg["embed_dim"], cfg["margin"], anneal)
    if loss == "ems":
        return mems_loss.EMSLoss(num_classes, cfg["embed_dim"], cfg["margin"])
    if loss == "ce":
        return nn.Linear(cfg["embed_dim"], num_classes)
    if loss == "triplet":
        return nn.Identity()
    raise ValueError(f"loss must be 'mems', 'ems', 'ce' or 'triplet', got {loss!r}")


def build_model(cfg: Config | dict, num_classes: int) -> DASEMEMS:
    """Encoder from the model registry + the configured loss (:func:`build_loss`)."""
    from sbirlib.models import create_model

    kw = {"pretrained": cfg["pretrained"], "embed_dim": cfg["embed_dim"],
          "attention": cfg["attention"], "reduction": cfg["reduction"]}
    if cfg.get("width"):
        kw["width"] = cfg["width"]
    net = create_model(cfg["backbone"], **kw)
    return DASEMEMS(net, build_loss(cfg, num_classes), cfg["loss"])


def lr_lambda(total_steps: int):
    """Official schedule: factor 1 for t <= T/2, then 2 (1 - t/T), reaching 0 at T."""
    def factor(step: int) -> float:
        return 1.0 if step <= total_steps / 2 else max(0.0, 2 * (1 - step / total_steps))
    return factor


def make_optimizer(model: DASEMEMS, cfg: Config | dict) -> torch.optim.Optimizer:
    """Adam: the network with weight decay, the loss parameters (centres) without."""
    groups = [{"params": list(model.net.parameters()), "weight_decay": cfg["weight_decay"]}]
    extra = list(model.loss_fn.parameters())
    if extra:
        groups.append({"params": extra, "weight_decay": 0.0})
    return torch.optim.Adam(groups, lr=cfg["lr"])


def make_step_fn(cfg: Config | dict):
    """One training step on a mixed batch: a single forward over [sketches; photos]."""
    def step_fn(model: nn.Module, batch: dict, device: torch.device) -> dict[str, Any]:
        s, p = batch["sketch"].to(device), batch["photo"].to(device)
        ys, yp = batch["sketch_label"].to(device), batch["photo_label"].to(device)
        x = torch.cat([s, p])
        labels = torch.cat([ys, yp])
        domain = torch.cat([torch.zeros(len(s)), torch.ones(len(p))]).to(device)
        feats = model(x, domain)
        core = unwrap_model(model)
        core.train_steps += 1
        logs: dict[str, Any] = {}
        if core.loss_name in ("mems", "ems"):
            if core.loss_name == "mems":
                logs["margin"] = core.loss_fn.current_margin
            loss = core.loss_fn(feats, labels)
        elif core.loss_name == "ce":
            loss = F.cross_entropy(core.loss_fn(feats), labels)
        else:
            loss = triplet.cross_domain_triplet_loss(feats[: len(s)], ys, feats[len(s):], yp,
                                                     margin=cfg["triplet_margin"], symmetric=True)
        logs["loss"] = loss
        return logs
    return step_fn


# -- evaluation ---------------------------------------------------------------------------------
def _embed(model: DASEMEMS, dataset, domain: int, device, flip: bool) -> dict[str, torch.Tensor]:
    model.eval()
    fn = (lambda x: model(x.flip(3), domain)) if flip else (lambda x: model(x, domain))
    return retrieval.extract_embeddings(fn, dataset, batch_size=64, device=device)


@torch.no_grad()
def evaluate(model: DASEMEMS, data: dict[str, Any], cfg: Config | dict, *,
             device: str | torch.device = "cpu", split: str = "test",
             hashing: bool = True, seed: int = 0) -> dict[str, Any]:
    """The paper's test protocol on ``split`` (``"test"`` or ``"val"``).

    Returns ``{"metrics": {...}, "features": {...}, "codes": {...}}``: mAP@all with flip-min
    TTA (tie-aware and order-based AP), without TTA and with mean-over-flips, P@K, and for each
    code length the Hamming mAP (tie-aware primary; order-based on a seeded random gallery order).
    """
    dev = utils.get_device(device)
    pk = f"p@{cfg['p_at']}"
    m: dict[str, float] = {}
    if split == "val":  # cheap check during training: no flips
        q0 = _embed(model, data["val_sketch"], 0, dev, False)
        g0 = _embed(model, data["gallery"], 1, dev, False)
        d = dase_models.squared_euclidean(q0["emb"], g0["emb"])
        m["map@all"] = eval_metrics.retrieval_metrics(
            d, q0["labels"], None, g0["labels"], ("map@all",), distance="precomputed")["map@all"]
        return {"metrics": m}
    q0, q1 = (_embed(model, data["test_sketch"], 0, dev, f) for f in (False, True))
    g0, g1 = (_embed(model, data["gallery"], 1, dev, f) for f in (False, True))
    ql, gl = q0["labels"], g0["labels"]
    d_min = dase_models.flip_min_distance([q0["emb"], q1["emb"]], [g0["emb"], g1["emb"]])
    std = eval_metrics.retrieval_metrics(d_min, ql, None, gl, ("map@all", pk),
                                         distance="precomputed", ap="standard")
    m["map@all"], m[pk] = std["map@all"], std[pk]
    m["map@all_sorted"] = eval_metrics.retrieval_metrics(d_min, ql, None, gl, ("map@all",),
                                                         distance="precomputed", ap="sorted")["map@all"]
    d_none = dase_models.squared_euclidean(q0["emb"], g0["emb"])
    d_mean = dase_models.flip_min_distance([q0["emb"], q1["emb"]], [g0["emb"], g1["emb"]], "mean")
    for tag, d in (("noflip", d_none), ("meanflip", d_mean)):
        m[f"map@all_{tag}"] = eval_metrics.retrieval_metrics(
            d, ql, None, gl, ("map@all",), distance="precomputed")["map@all"]
    feats = {"query": q0["emb"], "query_flip": q1["emb"], "gallery": g0["emb"],
             "gallery_flip": g1["emb"], "query_labels": ql, "gallery_labels": gl,
             "distance": d_min}
    codes: dict[int, dict[str, torch.Tensor]] = {}
    centres = unwrap_model(model).centres
    if hashing and centres is not None:
        perm = torch.from_numpy(np.random.default_rng(seed).permutation(len(gl)))
        for bits in cfg["hash_bits"]:
            hasher, losses = dase_hashing.fit_centre_hash(
                centres.float().cpu(), bits, steps=cfg["hash_steps"], lr=cfg["hash_lr"], seed=seed)
            cq = dase_hashing.binary_codes(hasher, q0["emb"], q1["emb"])
            cg = dase_hashing.binary_codes(hasher, g0["emb"], g1["emb"])
            m[f"hash{bits}/map@all"] = eval_metrics.retrieval_metrics(
                cq, ql, cg, gl, ("map@all",), distance="hamming", ap="standard")["map@all"]
            m[f"hash{bits}/map@all_sorted"] = eval_metrics.retrieval_metrics(
                cq, ql, cg[perm], gl[perm], ("map@all",), distance="hamming",
                ap="sorted")["map@all"]
            codes[bits] = {"query": cq, "gallery": cg, "hash_loss_first": losses[0],
                           "hash_loss_last": losses[-1]}
    return {"metrics": m, "features": feats, "codes": codes}


# -- run ----------------------------------------------------------------------------------------
@dataclass
class RunResult:
    """What :func:`run` returns: metrics, history, model, data and the evaluation outputs."""

    metrics: dict[str, float]
    history: Any
    model: DASEMEMS
    data: dict[str, Any]
    evaluation: dict[str, Any]
    record: dict[str, Any]
    output_dir: Path
    wall_time_s: float = 0.0
    chance: dict[str, float] = field(default_factory=dict)

    def __repr__(self) -> str:
        main = {k: round(v, 4) for k, v in self.metrics.items() if k.startswith("test/")}
        return f"RunResult(profile={self.record.get('profile')!r}, {main}, wall={self.wall_time_s:.0f}s)"


def run(cfg: Config | dict, *, output_dir: str | Path, device: str = "auto",
        data_root: str | Path | None = None, checkpoint: str = "auto",
        data: dict[str, Any] | None = None, progress: bool = True,
        write_record: bool = True) -> RunResult:
    """Train (or load) DASE + MEMS with profile ``cfg``, evaluate on test, write ``metrics.json``.

    ``data`` may pass already-built datasets (ablations reuse them). The run folder receives
    ``checkpoint.pt`` (via :func:`sbirlib.training.train_or_load`) and ``metrics.json``.
    """
    t0 = time.perf_counter()
    cfg = cfg if isinstance(cfg, Config) else Config(cfg)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    utils.seed_everything(cfg["seed"])
    dev = utils.get_device(device)
    if data is None:
        data = load_data(cfg, data_root, progress=progress)
    num_classes = len(data["train_sketch"].classes)
    torch.manual_seed(cfg["seed"])
    model = build_model(cfg, num_classes)
    total = cfg["epochs"] * cfg["steps_per_epoch"]
    optimizer = make_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(total))
    loader = MixedBatches(data["train_sketch"], data["train_photo"], cfg["batch_size"])

    def val_fn(m: nn.Module) -> dict[str, float]:
        val = evaluate(m, data, cfg, device=dev, split="val", hashing=False)["metrics"]
        # the official code tests the final step: monitoring the (checkpointed) step counter
        # makes fit keep the last weights; validation mAP is only logged
        return {"map@all": val["map@all"], "train_steps": float(m.train_steps)}

    history = train_or_load(
        model, loader, make_step_fn(cfg), checkpoint=checkpoint, output_dir=out,
        config=cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg),
        optimizer=optimizer, scheduler=scheduler, scheduler_interval="step",
        epochs=cfg["epochs"], steps_per_epoch=cfg["steps_per_epoch"], device=dev,
        val_fn=val_fn, monitor="train_steps", mode="max", seed=cfg["seed"], progress=progress)
    model.to(dev)
    ev = evaluate(model, data, cfg, device=dev, split="test", seed=cfg["seed"])
    metrics = {f"test/{k}": v for k, v in ev["metrics"].items()}
    if history.val:
        metrics["val/map@all"] = history.val[-1]["map@all"]
    losses = history.train_loss
    if losses:
        metrics["train/loss_first"], metrics["train/loss_last"] = losses[0], losses[-1]
    ql, gl = ev["features"]["query_labels"], ev["features"]["gallery_labels"]
    chance = {"map@all": float(np.mean([(gl == y).float().mean() for y in ql]))}
    wall = time.perf_counter() - t0
    prov = results.provenance(profile=cfg.get("profile", "custom"), seed=cfg["seed"],
                              device=str(dev), wall_time_s=wall, config=dict(cfg),
                              dataset=cfg["dataset"], loaded=bool(getattr(history, "loaded", False)))
    record = results.run_record(CHAPTER, metrics, prov, chance=chance,
                                history=history.to_dict())
    if write_record:
        results.write_run_record(out, record)
    return RunResult(metrics, history, model, data, ev, record, out, wall, chance)


# -- ablations ----------------------------------------------------------------------------------
#: The chapter's ablations: name -> profile changes.
ABLATIONS: dict[str, dict[str, Any]] = {
    "DASE + MEMS (m=4, annealed)": {},
    "domain bit off (plain SE, sigmoid squeeze)": {"attention": "se"},
    "softmax CE (linear classifier)": {"loss": "ce"},
    "cross-domain triplet (batch-hard)": {"loss": "triplet"},
    "MEMS m=1 (centre-distance softmax)": {"margin": 1.0, "anneal": False},
    "MEMS m=2, annealed": {"margin": 2.0},
    "MEMS m=4, no annealing": {"anneal": False},
}


def run_ablations(cfg: Config | dict, *, output_dir: str | Path, device: str = "auto",
                  names: list[str] | None = None, data: dict[str, Any] | None = None,
                  progress: bool = False) -> dict[str, Any]:
    """Train and test every ablation of :data:`ABLATIONS` (or ``names``) with ``cfg``'s budget
    and seed; returns ``{"rows": {name: metrics}, "provenance": ...}`` (a results artefact).
    """
    t0 = time.perf_counter()
    out = Path(output_dir)
    data = data if data is not None else load_data(cfg)
    rows: dict[str, dict[str, float]] = {}
    for name in names or list(ABLATIONS):
        res = run(variant(cfg, **ABLATIONS[name]), output_dir=out / _slug(name), device=device,
                  data=data, progress=progress)
        rows[name] = {k: v for k, v in res.metrics.items() if k.startswith(("test/", "train/"))}
    prov = results.provenance(profile=cfg.get("profile", "custom"), seed=cfg["seed"],
                              device=str(utils.get_device(device)),
                              wall_time_s=time.perf_counter() - t0, config=dict(cfg),
                              dataset=cfg["dataset"])
    return {"chapter": CHAPTER, "kind": "ablations", "profile": prov["profile"],
            "changes": {n: ABLATIONS[n] for n in rows}, "rows": rows, "provenance": prov}


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")[:60]
