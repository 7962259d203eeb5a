"""FFMLN recipes (zero-shot SBIR): ``sbir train ffmln --profile smoke|full|full-*``.

Only the paper's abstract, outline and result tables are known, so the whole recipe is the
library's reconstruction (chapter 07 (FFMLN), "Where we had to decide"):

* model: :class:`sbirlib.models.ffmln.FFMLN` (shared ResNet trunk + AMFF + L2-normalised
  embedding + seen-class classifier on ``z``);
* loss ((F4)-(F8) in chapter 07): the domain-aware triplet (DAT) -- cross-domain batch-hard
  triplet in both directions, margin 0.3, Euclidean on the unit-norm embeddings
  (:func:`sbirlib.losses.triplet.cross_domain_triplet_loss` with ``symmetric=True``) -- plus
  ``lambda`` (0.5) times the cross-entropy of the classifier over all 2n images of the batch;
* batches: P seen classes, K sketches and K photos of each (:class:`CrossDomainPKSampler`,
  built on :class:`sbirlib.data.samplers.PKBatchSampler`);
* protocol: train on **seen** classes only; the validation classes (carved from the seen ones)
  are the only thing that may select a checkpoint; sketches of the **unseen** classes query
  the unseen-class photos. Metrics come in two columns: library canonical
  (tie-aware AP, mAP@K normalised by min(K, R), P@K over K) and SAKE-lineage comparable
  (VOC-interpolated AP, mAP@K ``voc_capped``), ``test/<metric>`` and ``test/voc/<metric>``.

Profiles: ``smoke`` (CPU scale: ResNet-18 at 64 px on ``synthetic-zeroshot``, random init,
Adam 1e-3, 80 PK steps with the lr drop at step 70 -- fewer than the planned 250 so that the
chapter fits its budget), ``full`` (the paper-scale reconstruction on
``sketchy_ext/zs/sake25``) and one ``full-*`` profile per other split / the 64-d rows.
There is no ``cpu-real`` profile yet (the Sketchy subset's zero-shot splits, ``sketchy-subset``
with ``split_name="sketchy_ext/zs/sake25"``, are its intended data), so asking for it fails loudly.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import ConcatDataset, DataLoader, Sampler

from sbirlib import training
from sbirlib.data.samplers import PKBatchSampler
from sbirlib.evaluation import retrieval_metrics
from sbirlib.evaluation.retrieval import extract_embeddings
from sbirlib.losses import triplet
from sbirlib.models import create_model
from sbirlib.models.resnet import IMAGENET_MEAN, IMAGENET_STD
from sbirlib.profiles import Config
from sbirlib.recipes import common
from sbirlib.utils import get_device, seed_everything

__all__ = ["PROFILES", "SPLITS", "ABLATIONS", "CHAPTER", "CrossDomainPKSampler", "build_data",
           "build_model", "make_loader", "make_step_fn", "normalize", "augment", "embed_split",
           "evaluate", "run", "run_ablations"]

CHAPTER = "07_ffmln"

#: each zero-shot split of the paper, its dataset and the paper's metric columns
SPLITS: dict[str, dict[str, Any]] = {
    "sketchy_ext/zs/sake25": {"dataset": "sketchy-ext", "metrics": ["map@all", "p@100", "map@200", "p@200"]},
    "sketchy_ext/zs/yelamarthi21": {"dataset": "sketchy-ext", "metrics": ["map@200", "p@200", "map@all"]},
    "tuberlin_ext/zs/sake30": {"dataset": "tuberlin-ext", "metrics": ["map@all", "p@100", "map@200", "p@200"]},
    "quickdraw_ext/zs/d2s30": {"dataset": "quickdraw-ext", "metrics": ["map@all", "map@200", "p@200"]},
}

_COMMON: dict[str, Any] = {
    "category": None, "seed": 0, "attention": True, "stages": ["layer3", "layer4"],
    "map_source": "residual", "triplet": "dat", "margin": 0.3, "lambda_ce": 0.5,
    "betas": [0.9, 0.999], "weight_decay": 5e-4, "augment": True, "rrc_scale": [0.8, 1.0],
    "amp": True, "grad_clip": None, "eval_batch_size": 128,
}


def _full(split: str, dim: int = 512) -> dict[str, Any]:
    """The paper-scale reconstruction: ImageNet ResNet-50 at 224 px, PK 16 x (4 + 4), Adam
    1e-4 / 1e-3, 20,000 iterations (20 epochs of 1,000 steps) with lr x 0.1 at 15,000, the final
    iteration kept."""
    return {**_COMMON, "dataset": SPLITS[split]["dataset"], "split": split, "epochs": 20,
            "steps_per_epoch": 1000, "lr_drop_epoch": 15, "model": "ffmln_resnet50", "pretrained": True,
            "dim": dim, "load_size": 224, "input_size": 224, "p": 16, "k": 4, "lr": 1e-3,
            "lr_backbone": 1e-4, "metrics": list(SPLITS[split]["metrics"]), "select": "last",
            "train_on_val_classes": True}


PROFILES: dict[str, dict[str, Any]] = {
    # CPU scale: ResNet-18 (R from bn2 of the last BasicBlocks), 64 px, projection 768 -> 128,
    # P = 8, K = 4 per domain, Adam 1e-3. The planned 250 steps (drop at 190) do not fit the
    # chapter's 3-minute budget on 2 CPU cores (a step costs about 1 s there), so: 80 steps
    # (8 epochs x 10) with the drop at step 70
    "smoke": {**_COMMON, "dataset": "synthetic-zeroshot", "split": None, "epochs": 8,
              "steps_per_epoch": 10, "lr_drop_epoch": 7, "model": "ffmln_resnet18", "pretrained": False,
              "dim": 128, "load_size": 64, "input_size": 64, "p": 8, "k": 4, "lr": 1e-3,
              "lr_backbone": 1e-3, "metrics": ["map@all", "p@10%"], "select": "best",
              "train_on_val_classes": False},
    "full": _full("sketchy_ext/zs/sake25"),
    "full-64": _full("sketchy_ext/zs/sake25", 64),
    "full-yelamarthi21": _full("sketchy_ext/zs/yelamarthi21"),
    "full-tuberlin": _full("tuberlin_ext/zs/sake30"),
    "full-tuberlin-64": _full("tuberlin_ext/zs/sake30", 64),
    "full-quickdraw": _full("quickdraw_ext/zs/d2s30"),
    "full-quickdraw-64": _full("quickdraw_ext/zs/d2s30", 64),
}

#: the chapter's ablations of the reconstruction: overrides of the profile, same seed and budget
ABLATIONS: dict[str, dict[str, Any]] = {
    "FFMLN (AMFF, DAT, lambda=0.5)": {},
    "AMFF off (plain GAP of layer4)": {"attention": False, "stages": ["layer4"]},
    "plain triplet (domain-agnostic batch-hard)": {"triplet": "plain"},
    "DAT sketch->photo only": {"triplet": "s2p"},
    "lambda = 0 (no CE)": {"lambda_ce": 0.0},
    "lambda = 1": {"lambda_ce": 1.0},
    "d = 64": {"dim": 64},
    "d = 512": {"dim": 512},
}


# ----------------------------------------------------------------------------- data


class CrossDomainPKSampler(Sampler[list[int]]):
    """PK batches across two domains: P classes, K sketches **and** K photos of each.

    The class choice and the sketches come from :class:`PKBatchSampler` over the sketch
    labels (classes drawn without replacement, K of each class without replacement, with
    replacement when a class has fewer); the photos of the same classes are then drawn the same
    way from a generator seeded by ``(seed, epoch, batch)``. Indices address
    ``ConcatDataset([sketches, photos])`` (photo indices are offset by ``len(sketch_labels)``);
    each batch lists its P*K sketches first, then its P*K photos.
    """

    def __init__(self, sketch_labels: Sequence[int], photo_labels: Sequence[int], p: int, k: int,
                 seed: int = 0, batches_per_epoch: int | None = None) -> None:
        self.sketches = PKBatchSampler(sketch_labels, p, k, seed=seed, batches_per_epoch=batches_per_epoch)
        self.offset, self.p, self.k, self.seed, self.epoch = len(sketch_labels), int(p), int(k), int(seed), 0
        self.sketch_labels = np.asarray(sketch_labels)
        self.photos_of: dict[int, np.ndarray] = {}
        for i, y in enumerate(photo_labels):
            self.photos_of.setdefault(int(y), []).append(i)  # type: ignore[arg-type]
        self.photos_of = {c: np.asarray(v) for c, v in self.photos_of.items()}
        missing = sorted(set(int(y) for y in sketch_labels) - set(self.photos_of))
        if missing:
            raise ValueError(f"classes {missing[:5]} have sketches but no photos; a PK batch needs both")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.sketches.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sketches)

    def __iter__(self) -> Iterator[list[int]]:
        for b, sk in enumerate(self.sketches):
            rng = np.random.default_rng([self.seed, self.epoch, b, 7])
            classes = list(dict.fromkeys(int(self.sketch_labels[i]) for i in sk))
            photos: list[int] = []
            for c in classes:
                pool = self.photos_of[c]
                photos += [self.offset + int(i) for i in rng.choice(pool, self.k, replace=len(pool) < self.k)]
            yield list(sk) + photos

    def __repr__(self) -> str:
        return (f"CrossDomainPKSampler(p={self.p}, k={self.k} sketches + {self.k} photos, "
                f"batches_per_epoch={len(self)}, seed={self.seed})")


def _class_names(bank: common.ImageBank) -> list[str]:
    """The class name of every image (labels are indices into ``bank.classes``, or ids without names)."""
    return [bank.classes[y] if bank.classes else str(y) for y in bank.labels]


def _merge(a: common.ImageBank, b: common.ImageBank) -> common.ImageBank:
    """One bank holding the images of ``a`` then ``b`` (same modality), labelled by class name.

    Loaders may number classes per split (Sketchy-Ext's train labels 0..89 and validation labels
    0..9 name different classes), so labels are re-derived from the names of both banks.
    """
    out = copy.copy(a)
    names_a, names_b = _class_names(a), _class_names(b)
    out.classes = sorted(set(names_a) | set(names_b))
    index = {c: i for i, c in enumerate(out.classes)}
    out.images = torch.cat([a.images, b.images])
    out.labels, out.instances = [index[c] for c in names_a + names_b], a.instances + b.instances
    out.name = f"{a.name}+{b.name}"
    return out


def build_data(cfg: Mapping[str, Any], data_root: str | None = None) -> dict[str, common.ImageBank]:
    """Sketch and photo banks (3 channels, ``load_size``) of train / val / test.

    ``train`` holds the seen classes minus the validation classes; with
    ``cfg["train_on_val_classes"]`` (the ``full`` headline, trained on all seen classes) the
    validation classes are added to ``train`` (validation is then only logged). ``test`` holds the
    unseen classes.
    """
    cfg = dict(cfg)
    if cfg.get("split"):
        if SPLITS.get(cfg["split"], {}).get("dataset") not in (None, cfg["dataset"]):
            raise ValueError(f"split {cfg['split']!r} belongs to {SPLITS[cfg['split']]['dataset']!r}, not "
                             f"{cfg['dataset']!r}; pick the matching --profile (sbirlib/recipes/ffmln.py, PROFILES)")
        cfg["dataset_kwargs"] = {**dict(cfg.get("dataset_kwargs") or {}), "split_name": cfg["split"]}
    data = common.load_category_data(cfg, data_root, size=int(cfg["load_size"]), channels=3)
    if cfg.get("train_on_val_classes"):
        for side in ("sketch", "photo"):
            data[f"train_{side}"] = _merge(data[f"train_{side}"], data[f"val_{side}"])
    # by class name: loaders may number the classes of each split from 0
    overlap = set(_class_names(data["train_sketch"])) & set(_class_names(data["test_sketch"]))
    if overlap:
        raise ValueError(f"zero-shot violated: classes {sorted(overlap)[:5]} are in train and test")
    return data


def make_loader(cfg: Mapping[str, Any], data: Mapping[str, common.ImageBank]) -> DataLoader:
    """PK batches (``cfg["p"]`` classes x ``cfg["k"]`` sketches + ``cfg["k"]`` photos) of the seen classes."""
    sampler = CrossDomainPKSampler(data["train_sketch"].labels, data["train_photo"].labels, int(cfg["p"]),
                                   int(cfg["k"]), seed=int(cfg["seed"]), batches_per_epoch=cfg.get("steps_per_epoch"))
    return DataLoader(ConcatDataset([data["train_sketch"], data["train_photo"]]), batch_sampler=sampler)


def normalize(x: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std normalisation of 3-channel images in [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean) / std


def augment(images: torch.Tensor, size: int, scale: Sequence[float] = (0.8, 1.0)) -> torch.Tensor:
    """RandomResizedCrop(size, scale, ratio (3/4, 4/3)) + horizontal flip p = 0.5, per image.

    One affine resampling per image (``affine_grid``), drawn from torch's global generator,
    which :func:`sbirlib.training.fit` re-seeds every epoch.
    """
    n, _, h, w = images.shape
    area = torch.empty(n).uniform_(float(scale[0]), float(scale[1]))
    log_r = torch.empty(n).uniform_(float(np.log(3 / 4)), float(np.log(4 / 3)))
    ratio = log_r.exp()
    cw = (area * ratio).sqrt().clamp(max=1.0)    # crop width / image width
    ch = (area / ratio).sqrt().clamp(max=1.0)
    cx = (torch.rand(n) * 2 - 1) * (1 - cw)      # crop centre in [-1, 1] coordinates
    cy = (torch.rand(n) * 2 - 1) * (1 - ch)
    flip = torch.where(torch.rand(n) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = cw * flip, cx
    theta[:, 1, 1], theta[:, 1, 2] = ch, cy
    grid = F.affine_grid(theta.to(images), [n, images.shape[1], size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


# ----------------------------------------------------------------------------- model and loss


def build_model(cfg: Mapping[str, Any], num_classes: int) -> nn.Module:
    """The FFMLN of ``cfg`` (``pretrained=True`` fails loudly without ImageNet weights)."""
    torch.manual_seed(int(cfg["seed"]))
    return create_model(cfg["model"], num_classes=num_classes, dim=int(cfg["dim"]),
                        pretrained=bool(cfg["pretrained"]), attention=bool(cfg["attention"]),
                        stages=tuple(cfg["stages"]), map_source=str(cfg["map_source"]))


def make_optimizer(cfg: Mapping[str, Any], model: nn.Module) -> torch.optim.Optimizer:
    """Adam (L2 weight decay on all weights): ``lr_backbone`` for the trunk, ``lr`` for the new layers."""
    net = training.unwrap_model(model)
    groups = [{"params": net.backbone_parameters(), "lr": float(cfg["lr_backbone"])},
              {"params": net.new_parameters(), "lr": float(cfg["lr"])}]
    return torch.optim.Adam(groups, betas=tuple(cfg["betas"]), weight_decay=float(cfg["weight_decay"]))


def _label_map(train_labels: Sequence[int]) -> torch.Tensor:
    """Global class id -> 0..C_seen-1 (the classifier's index); -1 for classes not in training."""
    seen = sorted(set(int(y) for y in train_labels))
    table = torch.full((max(seen) + 1,), -1, dtype=torch.long)
    table[torch.tensor(seen)] = torch.arange(len(seen))
    return table


def ffmln_loss(out: Mapping[str, torch.Tensor], labels: torch.Tensor, domains: torch.Tensor, *,
               margin: float = 0.3, lambda_ce: float = 0.5, kind: str = "dat") -> dict[str, torch.Tensor]:
    """Eq. (F4)-(F8): ``L = L_DAT + lambda * L_CE`` on one batch of sketches (domain 0) and photos.

    ``kind``: ``"dat"`` (both directions, F6), ``"s2p"`` (sketch -> photo only, F4) or
    ``"plain"`` (batch-hard triplet over the pooled batch, domains ignored: the ablation).
    ``labels`` index the classifier (0..C_seen-1). Returns ``{"loss", "triplet", "ce"}``.
    """
    e = out["embedding"]
    s = domains == 0
    if kind == "plain":
        l_t = triplet.batch_hard_triplet_loss(e, labels, margin=margin, distance="euclidean")
    elif kind in ("dat", "s2p"):
        l_t = triplet.cross_domain_triplet_loss(e[s], labels[s], e[~s], labels[~s], margin=margin,
                                                distance="euclidean", symmetric=kind == "dat")
    else:
        raise ValueError(f"triplet must be 'dat', 's2p' or 'plain', got {kind!r}")
    l_ce = F.cross_entropy(out["logits"].float(), labels)
    return {"loss": l_t + lambda_ce * l_ce, "triplet": l_t, "ce": l_ce}


def make_step_fn(cfg: Mapping[str, Any], label_map: torch.Tensor):
    """``step_fn(model, batch, device)``: augment, embed the 2n images, Eq. (F8)."""
    size, do_aug = int(cfg["input_size"]), bool(cfg["augment"])
    scale = tuple(cfg["rrc_scale"])

    def step_fn(model: nn.Module, batch: Mapping[str, Any], dev: torch.device) -> dict[str, Any]:
        images = batch["image"]
        if do_aug:
            images = augment(images, size, scale)
        elif images.shape[-1] != size:
            images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
        labels = label_map[batch["label"]].to(dev)
        if (labels < 0).any():
            raise RuntimeError("a training batch holds a class outside the seen classes")
        out = model(normalize(images.to(dev)))
        res = ffmln_loss(out, labels, batch["domain"].to(dev), margin=float(cfg["margin"]),
                         lambda_ce=float(cfg["lambda_ce"]), kind=str(cfg["triplet"]))
        return {"loss": res["loss"], "triplet": res["triplet"].detach(), "ce": res["ce"].detach()}

    return step_fn


# ----------------------------------------------------------------------------- evaluation


def embed_split(model: nn.Module, data: Mapping[str, common.ImageBank], cfg: Mapping[str, Any],
                split: str = "test", device: str | torch.device = "cpu") -> dict[str, dict[str, torch.Tensor]]:
    """Unit-norm embeddings of ``split``'s sketches and photos: ``{"sketch": {...}, "photo": {...}}``
    (each ``extract_embeddings``' dict: ``emb``, ``labels``, ``instances``) plus ``"seconds"``."""
    size = int(cfg["input_size"])
    net = training.unwrap_model(model)

    def encode(x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != size:  # test: resize to the input size, no crop
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return net.embed(normalize(x))

    was = net.training
    net.eval()
    t0 = time.perf_counter()
    out: dict[str, Any] = {side: extract_embeddings(encode, data[f"{split}_{side}"], device=device,
                                                    batch_size=int(cfg.get("eval_batch_size", 128)))
                           for side in ("sketch", "photo")}
    out["seconds"] = time.perf_counter() - t0
    net.train(was)
    return out


def _metric_names(names: Sequence[str], gallery_size: int) -> list[str]:
    """Resolve ``p@10%`` (P@K with K = 10% of the gallery, for small galleries) to ``p@<K>``."""
    out = []
    for m in names:
        if m.endswith("%"):
            kind, pct = m[:-1].split("@")
            out.append(f"{kind}@{max(1, round(gallery_size * float(pct) / 100))}")
        else:
            out.append(m)
    return out


def evaluate(model: nn.Module, data: Mapping[str, common.ImageBank], cfg: Mapping[str, Any],
             split: str = "test", device: str | torch.device = "cpu", lineage: bool = True,
             emb: Mapping[str, Any] | None = None) -> dict[str, float]:
    """Zero-shot retrieval: ``split`` sketches query ``split`` photos (Euclidean on ``e``).

    Returns the library-canonical column (``"map@all"``, ``"p@100"``, ...) and, with
    ``lineage``, the SAKE-lineage comparable one (``"voc/map@all"``, ...; VOC-interpolated AP,
    mAP@K ``voc_capped``, P@K over K). Both on the gallery as the loader gives it.
    """
    emb = emb if emb is not None else embed_split(model, data, cfg, split, device)
    sk, ph = emb["sketch"], emb["photo"]
    names = _metric_names(cfg["metrics"], len(ph["labels"]))
    args = (sk["emb"], sk["labels"], ph["emb"], ph["labels"])
    res = {k: float(v) for k, v in retrieval_metrics(*args, metrics=names, ap="standard", norm="min_k_total",
                                                     denom="k").items()}
    if lineage:
        voc = retrieval_metrics(*args, metrics=names, ap="voc", norm="voc_capped", denom="k")
        res.update({f"voc/{k}": float(v) for k, v in voc.items()})
    return res


# ----------------------------------------------------------------------------- run


def run(cfg: Mapping[str, Any], *, output_dir: str | Path | None = None, device: str | torch.device = "auto",
        data_root: str | None = None, checkpoint: str = "auto", progress: bool = True,
        data: Mapping[str, common.ImageBank] | None = None, write: bool = True) -> common.RunResult:
    """Train FFMLN on the seen classes, select on the validation classes (``select="best"``) or
    keep the final iteration (``"last"``), evaluate on the unseen classes, write ``metrics.json``.

    ``data`` lets a caller (the chapter, :func:`run_ablations`) reuse banks it already built.
    ``RunResult.extras["test_embeddings"]`` holds the unseen-class embeddings (for plots).
    """
    t0 = time.perf_counter()
    cfg = cfg if isinstance(cfg, Config) else Config(copy.deepcopy(dict(cfg)))
    seed_everything(int(cfg["seed"]))
    dev = get_device(device)
    data = data if data is not None else build_data(cfg, data_root)
    table = _label_map(data["train_sketch"].labels)
    model = build_model(cfg, int((table >= 0).sum()))
    optimizer = make_optimizer(cfg, model)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[int(cfg["lr_drop_epoch"])], gamma=0.1)
    saved: dict[str, Any] = {"timing": {}}

    def val_fn(m: nn.Module) -> dict[str, float]:
        return evaluate(m, data, {**cfg, "metrics": ["map@all"]}, "val", dev, lineage=False)

    def test_fn(m: nn.Module) -> dict[str, float]:
        emb = embed_split(m, data, cfg, "test", dev)
        saved["emb"] = emb
        n = len(emb["sketch"]["labels"]) + len(emb["photo"]["labels"])
        saved["timing"].update(embed_images=n, embed_seconds=round(emb["seconds"], 3),
                               images_per_second=round(n / max(emb["seconds"], 1e-9), 1))
        return evaluate(m, data, cfg, "test", dev, emb=emb)

    def extra(m: nn.Module) -> dict[str, float]:
        labels = np.asarray(saved["emb"]["photo"]["labels"])
        # chance mAP@all of a random ranking: mean over queries of the relevant fraction
        frac = {int(c): float((labels == c).mean()) for c in np.unique(labels)}
        q = np.asarray(saved["emb"]["sketch"]["labels"])
        return {"chance/map@all": float(np.mean([frac.get(int(c), 0.0) for c in q]))}

    res = common.standard_run(
        cfg, chapter=CHAPTER, data=data, model=model, optimizer=optimizer, loader=make_loader(cfg, data),
        step_fn=make_step_fn(cfg, table), val_fn=val_fn, test_fn=test_fn, output_dir=output_dir, device=dev,
        checkpoint=checkpoint, scheduler=scheduler, monitor="map@all", mode="max",
        steps_per_epoch=cfg.get("steps_per_epoch"), progress=progress, extra_metrics=extra, write=write,
        t0=t0, method="ffmln", timing=saved["timing"], split=cfg.get("split"),
        gallery="as loaded (sbirlib's loaders give the de-duplicated galleries)",
        seen_classes=int((table >= 0).sum()))
    res.extras["test_embeddings"] = saved.get("emb")
    return res


def run_ablations(cfg: Mapping[str, Any], *, names: Sequence[str] | None = None, seeds: Sequence[int] = (0,),
                  data: Mapping[str, common.ImageBank] | None = None, device: str | torch.device = "auto",
                  data_root: str | None = None, progress: bool = False,
                  **budget: Any) -> list[dict[str, Any]]:
    """Run the :data:`ABLATIONS` (all, or ``names``) under ``cfg`` for each seed.

    ``budget`` overrides every run alike (e.g. ``epochs=4``). Nothing is written to disk;
    returns one row per (ablation, seed): ``{"ablation", "seed", "overrides", "metrics",
    "train_loss", "val_map"}``.
    """
    data = data if data is not None else build_data(cfg, data_root)
    rows = []
    for name in names or list(ABLATIONS):
        for seed in seeds:
            over = {**ABLATIONS[name], **budget, "seed": int(seed)}
            sub = Config({**dict(cfg), **over})
            res = run(sub, output_dir=None, device=device, checkpoint="train", progress=progress,
                      data=data, write=False)
            rows.append({"ablation": name, "seed": int(seed), "overrides": over,
                         "metrics": {k: v for k, v in res.metrics.items()},
                         "train_loss": res.history.train_loss,
                         "val_map": res.history.metric("map@all")})
    return rows


def record_ablations(profile: str = "smoke", *, seeds: Sequence[int] = (0,), amff_seeds: Sequence[int] = (0, 1, 2),
                     epochs: int = 4, names: Sequence[str] | None = None, device: str | torch.device = "auto", data_root: str | None = None,
                     path: str | Path | None = None) -> dict[str, Any]:
    """Run every ablation under ``profile`` at ``epochs`` epochs and write the chapter's artefact.

    The AMFF-vs-GAP pair is run for ``amff_seeds`` (0, 1, 2: one seed's difference means little),
    the others for ``seeds``. Writes ``path`` (default
    ``book/results/07_ffmln/<profile>-ablations.json``, which the chapter shows when
    ``run_ablations`` is False) and returns the record::

        python -c "from sbirlib.recipes import ffmln; ffmln.record_ablations()"
    """
    from sbirlib import results
    from sbirlib.profiles import resolve_profile

    t0 = time.perf_counter()
    cfg = resolve_profile(PROFILES, profile)
    data = build_data(cfg, data_root)
    budget = {"epochs": int(epochs), "lr_drop_epoch": max(1, int(epochs) - 1)}
    names = list(names or ABLATIONS)
    amff = [n for n in names if n in list(ABLATIONS)[:2]]
    rest = [n for n in names if n not in amff]
    rows = run_ablations(cfg, names=amff, seeds=amff_seeds, data=data, device=device, **budget) if amff else []
    rows += run_ablations(cfg, names=rest, seeds=seeds, data=data, device=device, **budget) if rest else []
    wall = time.perf_counter() - t0
    note = (f"{profile} profile at {epochs} epochs x {cfg['steps_per_epoch']} steps per run "
            f"({len(rows)} runs: {', '.join(dict.fromkeys(r['ablation'] for r in rows))}), "
            f"seeds {list(amff_seeds)} for AMFF vs GAP and {list(seeds)} otherwise")
    prov = results.provenance(profile=profile, seed=int(cfg["seed"]), device=str(get_device(device)),
                              wall_time_s=wall, config=dict(cfg), dataset=str(cfg["dataset"]), note=note)
    record = results.run_record(CHAPTER, {}, prov, rows=rows)
    if path is None:
        base = results.results_dir()
        if base is None:
            raise RuntimeError("book/results is not available (not a checkout); pass path=")
        path = base / CHAPTER / f"{profile}-ablations.json"
    results.save_json(record, path)
    return record
