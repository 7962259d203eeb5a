"""DLI-Net recipes: ``smoke`` / ``cpu-real`` / ``full`` (+ one ``full-*`` profile per paper setting).

The per-dataset hyper-parameters of the official code (``xjq1998/DLI-Net`` ``train_*.sh``) are
the table :data:`PAPER_SETTINGS`; each row becomes a profile (``full`` = Shoe-V1,
``full-chair-v1``, ``full-handbag``, ``full-shoe-v2``, ``full-chair-v2``, ``full-sketchy``,
``full-sketchy-cc``). ``smoke`` and ``cpu-real`` are sbirlib's CPU-scale variant.

Initialisation: ``full`` loads ImageNet weights (``pretrained=True``); ``smoke`` is random
(Kaiming). ``cpu-real`` (``pretrained=True`` with ``pretrain_profile="resnet18-cpu-real"``)
copies a ResNet-18 trunk that :mod:`sbirlib.recipes.pretrain` trains to classify the 40-class
TU-Berlin sketch subset (on first use, then cached) into both encoders (:func:`pretrained_trunk`,
:meth:`sbirlib.models.dlinet.DLINet.load_trunk_state`); without TU-Berlin it raises rather than
start from random weights. :func:`run_ablations` trains the chapter's ablations for several
seeds and :func:`ablation_table` summarises them (``tools/record_dlinet_ablations.py``).

Training is the batch triplet loss over the whole in-batch distance matrix (each anchor's hinges
averaged over its active triplets; plus a classification loss on Sketchy), Adam with a constant
learning rate. Retrieval uses :meth:`DLINet.pairwise_distance` (blocked, on the run's device) and
:func:`sbirlib.evaluation.fg_accuracy` on the precomputed matrix (pessimistic ties).

Checkpoint: the ``full`` profiles report the **final epoch** (``select="last"``, sbirlib's
decision: the official scripts keep the best test acc@1) except cross-category, which picks the
best seen-class validation acc@1. The CPU profiles (``smoke``, ``cpu-real``) select the epoch with
the best validation acc@1 (``select="best"``), as Triplet-SN's CPU profiles do: a short CPU run's
last epoch is a noisy pick. The validation split is evaluated every epoch either way, and the test
set never selects anything (the official code selects on test). Before each validation the CPU
profiles re-estimate the BatchNorm statistics on ``bn_images`` fixed training pairs
(:func:`recalibrate_batchnorm`); ``full`` keeps the running averages, as the official code.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset

from sbirlib.evaluation import fg_accuracy
from sbirlib.evaluation.retrieval import extract_embeddings, fg_gallery
from sbirlib.losses import triplet
from sbirlib.models import create_model
from sbirlib.models import dlinet as dl
from sbirlib.profiles import Config, resolve_profile, variant
from sbirlib.recipes.common import (ImageBank, RunResult, build_source, center_crop,
                                    dataset_id, pixel_baseline, random_crop_flip, standard_run)
from sbirlib.utils import DataNotFoundError, cache_dir, get_device, seed_everything

__all__ = ["PROFILES", "PAPER_SETTINGS", "ABLATIONS", "PhotoPairs", "build_model", "pretrained_trunk",
           "variant", "run_ablations", "ablation_table", "recalibrate_batchnorm",
           "normalize", "train_view", "build_data",
           "make_step_fn", "dli_distance_matrix", "evaluate", "run", "CHAPTER"]

CHAPTER = "04_dlinet"

# Settings common to every profile: the model knobs of DLINet, then the training knobs
_MODEL_DEFAULTS: dict[str, Any] = {
    "model": "dlinet", "arch": "resnet50", "pretrained": True, "feature": "mid",
    "keep_ratio": 0.5, "matching": "cross", "aggregation": "2norm", "norm": "local",
    "symmetric": False, "num_classes": None, "amp": True, "pretrain_profile": None,
}
_TRAIN_DEFAULTS: dict[str, Any] = {
    "image_size": 256, "train_resize": 288, "train_crop": True, "batch_size": 32,
    "lr": 1e-4, "betas": (0.9, 0.999), "weight_decay": 0.0, "margin": 0.1,
    "trip_weight": 1.0, "cls_weight": 0.0, "select": "last", "eval_block": 32,
    "max_steps_per_epoch": None, "num_workers": 0, "bn_images": 0,
}

#: one row per paper setting of the official scripts: (dataset, category) + what differs
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
        "train_resize": 256, "train_crop": False, "select": "best",
    },
}


def _full(setting: str) -> dict[str, Any]:
    row = dict(PAPER_SETTINGS[setting])
    return {"dataset": row.pop("dataset"), "category": row.pop("category"), "seed": 1000,
            "epochs": row.pop("epochs"), **_MODEL_DEFAULTS, **_TRAIN_DEFAULTS,
            "paper_setting": setting, **row}


def _cpu(**kw: Any) -> dict[str, Any]:
    base = {"seed": 0, **_MODEL_DEFAULTS, **_TRAIN_DEFAULTS, "model": "dlinet_r18",
            "arch": "resnet18", "pretrained": False, "paper_setting": None, "select": "best",
            "bn_images": 128}
    base.update(kw)
    return base


PROFILES: dict[str, dict[str, Any]] = {
    # CPU scale: 2 x ResNet-18 to layer3, 72 -> random 64 crop, 4x4 locals (keep 8), Adam 1e-3
    "smoke": _cpu(dataset="synthetic-fg", category=None, epochs=15, image_size=64,
                  train_resize=72, lr=1e-3, max_steps_per_epoch=None),
    # CPU scale: QMUL Shoe-V1 sketch vs photo edge map, 126 -> 112, 7x7 locals (keep 24), Adam 1e-4;
    # both ResNet-18 trunks start from sbirlib's TU-Berlin sketch-classification pre-training
    # (recipes/pretrain.py, profile "resnet18-cpu-real"; trained on first use, then cached)
    "cpu-real": _cpu(dataset="qmul-v1", category="shoes", epochs=16, image_size=112,
                     train_resize=126, lr=1e-4, pretrained=True,
                     pretrain_profile="resnet18-cpu-real"),
    "full": _full("shoe-v1"),
    **{f"full-{name}": _full(name) for name in PAPER_SETTINGS if name != "shoe-v1"},
}


# ----------------------------------------------------------------------------- pieces


def _sketch_pretrained(cfg: dict[str, Any]) -> bool:
    return bool(cfg["pretrained"]) and bool(cfg.get("pretrain_profile"))


def pretrained_trunk(cfg: dict[str, Any], *, data_root: str | None = None,
                     device: str | torch.device = "auto",
                     progress: bool = True) -> tuple[dict[str, torch.Tensor] | None, dict[str, Any] | None]:
    """The sketch-pre-trained trunk ``cfg["pretrain_profile"]`` names, and what to record of it.

    Returns ``(None, None)`` when the profile asks for none (random init, or ImageNet through
    ``pretrained=True`` without a ``pretrain_profile``). Otherwise ``(state, info)``: the
    ResNet trunk weights of :func:`sbirlib.recipes.pretrain.pretrained_network` (trained on
    first use, then loaded from ``cache_dir("pretrain", <tag>)``) and a dict with the cache tag,
    its settings and the held-out classification accuracy. Without the TU-Berlin data the
    pre-training cannot run and this raises :class:`~sbirlib.utils.DataNotFoundError` saying
    so -- it never falls back to random weights.
    """
    if not _sketch_pretrained(cfg):
        return None, None
    from sbirlib.recipes import pretrain

    pcfg = resolve_profile(pretrain.PROFILES, cfg["pretrain_profile"])
    tag = pretrain.cache_tag(pcfg)
    # `data_root` may be the QMUL folder itself: TU-Berlin is then looked for beside it too
    roots = [data_root] if not data_root else [data_root, str(Path(data_root).parent)]
    for i, root in enumerate(roots):
        try:
            net = pretrain.pretrained_network(pcfg, device=device, data_root=root,
                                              progress=progress)
            break
        except FileNotFoundError as err:
            if i < len(roots) - 1:
                continue
            raise DataNotFoundError(
                f"DLI-Net profile {cfg.get('profile')!r} initialises both ResNet-18 encoders from "
                f"sbirlib's sketch-classification pre-training (sbirlib.recipes.pretrain profile "
                f"{cfg['pretrain_profile']!r}, cached in {cache_dir('pretrain', tag)}), which "
                f"needs the TU-Berlin 40-class subset: {err} Fix: set SBIR_DATA (or data_root=) "
                "to the folder that holds tuberlin_subset/ as well as qmul_v1/, "
                "or pass pretrained=False to train from random "
                "weights on purpose."
            ) from err
    hist = net.pretrain_history
    info = {"profile": cfg["pretrain_profile"], "cache_tag": tag,
            "config": {k: v for k, v in pcfg.items() if k != "profile"},
            "val/top1": float(net.pretrain_metrics["val/top1"]),
            "test/top1": float(net.pretrain_metrics["test/top1"]),
            "val_top1_per_epoch": [round(float(v.get("top1", float("nan"))), 4) for v in hist.val],
            "epochs": hist.epochs, "train_wall_time_s": round(float(hist.wall_time_s), 1),
            "loaded_from_cache": bool(hist.loaded)}
    state = {k: v.detach().clone() for k, v in net.trunk_state_dict().items()}
    return state, info


def build_model(cfg: dict[str, Any], trunk_state: dict[str, torch.Tensor] | None = None, *,
                data_root: str | None = None, device: str | torch.device = "auto",
                progress: bool = True) -> dl.DLINet:
    """The :class:`DLINet` a profile describes (registered name ``cfg["model"]``).

    ``pretrained=True`` with a ``pretrain_profile`` (the CPU profile ``cpu-real``) builds
    random trunks and then copies the sketch-pre-trained ResNet trunk into both encoders:
    ``trunk_state`` if given, else :func:`pretrained_trunk` (trains it on first use; needs
    TU-Berlin under ``data_root`` / ``$SBIR_DATA``). ``pretrained=True`` without one loads
    ImageNet weights (the ``full`` profiles).
    """
    kw = {k: cfg[k] for k in ("arch", "pretrained", "feature", "keep_ratio", "matching",
                              "aggregation", "norm", "symmetric")}
    if cfg["model"] == "dlinet_sketchy":
        kw["num_classes"] = cfg["num_classes"]
    if not _sketch_pretrained(cfg):
        return create_model(cfg["model"], **kw)
    if trunk_state is None:
        trunk_state, _ = pretrained_trunk(cfg, data_root=data_root, device=device,
                                          progress=progress)
    model = create_model(cfg["model"], **{**kw, "pretrained": False})
    model.load_trunk_state(trunk_state)
    return model


def normalize(images: torch.Tensor) -> torch.Tensor:
    """Grey -> 3 channels and ``x' = 2x - 1`` (mean = std = 0.5, the official code's).

    Not the ImageNet mean/std, although the paper's encoders are ImageNet-initialised.
    """
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return images * 2.0 - 1.0


def train_view(images: torch.Tensor, cfg: dict[str, Any]) -> torch.Tensor:
    """Training augmentation: a random ``image_size`` crop of the ``train_resize`` image, drawn
    independently per image (so the sketch and photo of a pair differ), no flip (official code)."""
    if cfg["train_crop"] and images.shape[-1] > int(cfg["image_size"]):
        images = random_crop_flip(images, int(cfg["image_size"]), flip=False)
    return normalize(images)


class PhotoPairs(Dataset):
    """DLI-Net's training items (as in the official code): indexed by **photo**, each with one of its sketches.

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


def _photo_modality(cfg: dict[str, Any]) -> str:
    """QMUL V1's shared copy has photo edge maps only (stated in chapter 04); others use photos."""
    return "edge" if cfg["dataset"] == "qmul-v1" else "photo"


def build_data(cfg: dict[str, Any], data_root: str | None = None) -> dict[str, Dataset]:
    """In-memory banks (:class:`sbirlib.recipes.common.ImageBank`), decoded once.

    ``{"train": PhotoPairs, "train_sketch", "train_photo"`` at ``train_resize`` (square) ``,
    "val_sketch", "val_photo", "test_sketch", "test_photo"`` at ``image_size``, in [0, 1];
    grey images keep one channel (``normalize`` repeats it).
    """
    pm = _photo_modality(cfg)
    train_size = int(cfg["train_resize"] if cfg["train_crop"] else cfg["image_size"])
    out: dict[str, Dataset] = {}
    for split in ("train", "val", "test"):
        size = train_size if split == "train" else int(cfg["image_size"])
        for side, modality in (("sketch", "sketch"), ("photo", pm)):
            src = build_source(cfg, split, modality, data_root)
            name = f"{cfg['dataset']}/{cfg.get('category') or 'all'}/{split}/{modality}"
            out[f"{split}_{side}"] = ImageBank(src, size, None, name=name)
    out["train"] = PhotoPairs(out["train_sketch"], out["train_photo"], seed=int(cfg["seed"]))
    return out


#: the chapter's ablations, each a set of overrides of the profile (same budget and seed)
ABLATIONS: dict[str, dict[str, Any]] = {
    "mid + SI k=0.5 + CI, 2norm (paper)": {},
    "global (layer4 + GAP, Euclidean)": {"feature": "global"},
    "SI k=0.25": {"keep_ratio": 0.25},
    "SI k=0.75": {"keep_ratio": 0.75},
    "SI k=1.0 (SI off)": {"keep_ratio": 1.0},
    "position-wise SimpleMatch (k=1.0)": {"keep_ratio": 1.0, "matching": "position"},
    "CI with 1norm": {"aggregation": "1norm"},
}


def run_ablations(cfg: dict[str, Any], names: list[str] | None = None, seeds: tuple[int, ...] = (0,), *,
                  device: str | torch.device = "auto", data: dict[str, Dataset] | None = None,
                  data_root: str | None = None, progress: bool = False) -> dict[str, Any]:
    """Train and test each ablation of :data:`ABLATIONS` (or ``names``) for every seed in ``seeds``.

    Every variant uses ``cfg``'s data, budget and checkpoint selection; only the ablation's
    own keys and the seed change. Nothing is written to disk (each run trains from scratch).
    Returns a results artefact ``{"chapter", "kind": "ablations", "profile", "seeds",
    "changes", "rows": [{"name", "seed", "metrics", "best_epoch", "wall_time_s"}],
    "provenance"}`` for :func:`sbirlib.results.save_json`; :func:`ablation_table` summarises it.
    """
    from sbirlib import results

    names = list(ABLATIONS) if names is None else list(names)
    unknown = [n for n in names if n not in ABLATIONS]
    if unknown:
        raise KeyError(f"unknown ablations {unknown}; known: {list(ABLATIONS)}")
    cfg = variant(cfg)
    dev = get_device(device)
    t0 = time.perf_counter()
    data = data if data is not None else build_data(cfg, data_root)
    trunk = pretrained_trunk(cfg, data_root=data_root, device=dev, progress=progress)
    rows = []
    for name in names:
        for seed in seeds:
            t1 = time.perf_counter()
            res = run(variant(cfg, seed=int(seed), **ABLATIONS[name]), output_dir=None, device=dev,
                      checkpoint="train", progress=progress, data=data, write=False, trunk=trunk)
            rows.append({"name": name, "seed": int(seed),
                         "metrics": {k: float(v) for k, v in res.metrics.items()
                                     if k.startswith(("test/", "val/", "train/"))},
                         "score_s": float(res.record["timing"]["score_s"]),
                         "best_epoch": res.history.best_epoch,
                         "wall_time_s": round(time.perf_counter() - t1, 1)})
    prov = results.provenance(profile=str(cfg["profile"]), seed=int(cfg["seed"]), device=str(dev),
                              wall_time_s=time.perf_counter() - t0, config=dict(cfg),
                              dataset=str(cfg["dataset"]), seeds=[int(s) for s in seeds])
    return {"chapter": CHAPTER, "kind": "ablations", "profile": str(cfg["profile"]),
            "seeds": [int(s) for s in seeds], "changes": {n: ABLATIONS[n] for n in names},
            "rows": rows, "provenance": prov}


def ablation_table(record: dict[str, Any],
                   metrics: tuple[str, ...] = ("test/acc@1", "test/acc@5", "test/acc@10", "val/acc@1",
                                               "score_s"),
                   ) -> list[dict[str, Any]]:
    """:func:`sbirlib.results.ablation_table` of a :func:`run_ablations` record: per ablation the
    mean, ``"<m> (std)"`` (sample std, ``None`` for one seed) of the accuracies and the scoring time."""
    from sbirlib import results

    return results.ablation_table(record, metrics)


def _bn_pairs(pairs: PhotoPairs, cfg: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``cfg["bn_images"]`` fixed training (sketch, photo) pairs, centre crops at the test size."""
    n = min(int(cfg.get("bn_images") or 0), len(pairs))
    if n == 0:
        return None
    pick = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(int(cfg["seed"])))[:n]
    sk = torch.stack([pairs.sketches[pairs.sketches_of[int(i)][0]]["image"] for i in pick])
    ph = torch.stack([pairs.photos[pairs.photo_index[int(i)]]["image"] for i in pick])
    size = int(cfg["image_size"])
    return center_crop(sk, size), center_crop(ph, size)


@torch.no_grad()
def recalibrate_batchnorm(model: dl.DLINet, sketches: torch.Tensor, photos: torch.Tensor,
                          device: str | torch.device = "cpu", batch_size: int = 64) -> None:
    """Re-estimate both encoders' BatchNorm statistics on training images ("precise BN").

    The CPU profiles (``bn_images > 0``) do this after every epoch, before validation: with Adam
    at 1e-3 the running averages lag behind the weights, and the eval-mode accuracy of an epoch
    then says more about the lag than about the weights (measured on the smoke run's selected
    epoch: test acc@1 0.029 with the running averages, 0.086 re-estimated). ``full`` keeps the
    paper's running averages (``bn_images = 0``).
    """
    from sbirlib.recipes.pretrain import recalibrate_batchnorm as precise_bn

    precise_bn(model.sketch_encoder, sketches, normalize, device, batch_size)
    precise_bn(model.photo_encoder, photos, normalize, device, batch_size)


def make_step_fn(cfg: dict[str, Any]):
    """``step_fn(model, batch, device)``: batch triplet loss (+ classification on Sketchy).

    The batch holds ``B`` (sketch, photo) pairs of distinct photos; the model returns the
    ``B x B`` matrix ``D(s_i, p_j)`` whose diagonal holds the positives.
    """

    def step_fn(model: nn.Module, batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
        sketch = train_view(batch["sketch"], cfg).to(device)
        photo = train_view(batch["photo"], cfg).to(device)
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
            d = out["dist"].detach().float()
            hits = d.argmin(dim=1) == torch.arange(len(d), device=d.device)
            logs["batch_acc@1"] = hits.float().mean()
        return {"loss": loss, **logs}

    return step_fn


def _encode(model: dl.DLINet, fn, ds: Dataset, device, batch_size: int = 64) -> dict[str, torch.Tensor]:
    out = extract_embeddings(lambda x: fn(normalize(x)), ds, batch_size=batch_size, device=device)
    out["emb"] = out["emb"].reshape(out["emb"].shape[0], -1, model.sketch_encoder.channels)
    return out


def dli_distance_matrix(model: dl.DLINet, sketch_ds: Dataset, photo_ds: Dataset,
                        device: str | torch.device = "cpu", block: int = 32) -> dict[str, Any]:
    """Encode both sets, de-duplicate the gallery and compute the ``[Q, G]`` DLI distances.

    ``sketch_ds`` / ``photo_ds`` hold un-normalised images in [0, 1] at the test size.
    Returns ``{"dist", "positives", "gallery_index", "sketch_locals", "photo_locals",
    "encode_s", "score_s"}`` (the last two are wall times: embedding both sets, scoring all
    pairs in blocks of ``block`` photos).
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
    return {"dist": dist, "positives": positives, "gallery_index": keep,
            "sketch_locals": sk["emb"], "photo_locals": gallery,
            "encode_s": t1 - t0, "score_s": t2 - t1}


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


def run(cfg: dict[str, Any], *, output_dir: str | Path | None = None, device: str = "auto",
        data_root: str | None = None, checkpoint: str = "auto", progress: bool = True,
        data: dict[str, Dataset] | None = None, write: bool = True,
        trunk: tuple[dict[str, torch.Tensor], dict[str, Any]] | None = None) -> RunResult:
    """Train DLI-Net as ``cfg`` says, evaluate acc@1/5/10 on test, write ``metrics.json``.

    ``cfg`` is a resolved profile (``resolve_profile(PROFILES, name, ...)``). The model is the
    final epoch (``select="last"``) or the best validation acc@1 (``select="best"``); the
    validation curve is logged either way, and the test set selects nothing. ``data`` (and
    ``trunk``, the ``(state, info)`` of :func:`pretrained_trunk`) let a caller (the chapter,
    its ablations) reuse what it already built. The record also holds the blurred-pixel
    baseline (``baseline/pixel_acc@K``), the retrieval timing, a ``dataset`` section (sizes and
    source checksums of the banks) and, for a sketch-pre-trained trunk, a ``pretraining``
    section (cache tag, settings, held-out top-1).
    """
    t0 = time.perf_counter()
    cfg = cfg if isinstance(cfg, Config) else Config(copy.deepcopy(dict(cfg)))
    _check_profile(cfg)
    seed_everything(int(cfg["seed"]))
    dev = get_device(device)
    data = data if data is not None else build_data(cfg, data_root)
    trunk_state, trunk_info = trunk if trunk is not None else pretrained_trunk(
        cfg, data_root=data_root, device=dev, progress=progress)
    seed_everything(int(cfg["seed"]))  # the same DLI-Net init whether or not it pre-trained now
    model = build_model(cfg, trunk_state)
    bs = int(cfg["batch_size"])
    loader = DataLoader(data["train"], batch_size=bs, shuffle=True,
                        drop_last=len(data["train"]) > bs, num_workers=int(cfg["num_workers"]))
    opt = torch.optim.Adam(model.parameters(), lr=float(cfg["lr"]), betas=tuple(cfg["betas"]),
                           weight_decay=float(cfg["weight_decay"]))
    timing: dict[str, Any] = {}

    bn_pairs = _bn_pairs(data["train"], cfg)

    def val_fn(m: nn.Module) -> dict[str, float]:
        if bn_pairs is not None:  # before validation, so the checkpoints carry the statistics
            recalibrate_batchnorm(m, *bn_pairs, device=dev)
        res = evaluate(m, data["val_sketch"], data["val_photo"], dev, block=cfg["eval_block"])
        return {k: float(v) for k, v in res.items()}

    def test_fn(m: nn.Module) -> dict[str, float]:
        res = evaluate(m, data["test_sketch"], data["test_photo"], dev, block=cfg["eval_block"])
        timing.update({k: (round(v, 4) if isinstance(v, float) else v)
                       for k, v in res.info.items()})
        return {k: float(v) for k, v in res.items()}

    def extra(m: nn.Module) -> dict[str, float]:
        pix = pixel_baseline(data["test_sketch"], data["test_photo"])
        return {f"baseline/pixel_{k}": v for k, v in pix.items()}

    return standard_run(
        cfg, chapter=CHAPTER, data=data, model=model, optimizer=opt, loader=loader,
        step_fn=make_step_fn(cfg), val_fn=val_fn, test_fn=test_fn, output_dir=output_dir,
        device=dev, checkpoint=checkpoint, monitor="acc@1", mode="max",
        steps_per_epoch=cfg["max_steps_per_epoch"], progress=progress, extra_metrics=extra,
        write=write, t0=t0, timing=timing, photo_modality=_photo_modality(cfg),
        dataset=dataset_id(cfg, {k: v for k, v in data.items() if isinstance(v, ImageBank)}),
        **({"pretraining": trunk_info} if trunk_info else {}),
    )
