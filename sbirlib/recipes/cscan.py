"""Recipe for CSCAN (Yu & Zhang, LOP 2022): ``smoke`` and ``full``.

Category-level hashing SBIR on the DSH-style split. A training example is a triplet
``(s, (I+, E+), (I-, E-))``: a sketch, a photo of its class and a photo of another class, each
photo travelling with its edge map. ``run`` trains with :func:`sbirlib.training.train_or_load`
and evaluates the test sketches against the whole photo gallery with
:func:`sbirlib.evaluation.retrieval_metrics`, twice: Hamming distance on the binary codes
(tie-aware AP, the primary metric) and Euclidean distance on the continuous codes. It also
times retrieval per query with :mod:`sbirlib.retrieval` indexes.

There is no ``cpu-real`` profile: no small real category-level photo set exists, so
``resolve_profile(PROFILES, "cpu-real")`` fails loudly.

Profile keys (all in every profile; the chapter's ablations flip them):

* model: ``arch`` (``resnet18`` | ``resnet50`` | any :mod:`sbirlib.models.resnet` trunk),
  ``pretrained``, ``code_bits``, ``sketch_attention``, ``photo_attention`` (``"co"`` |
  ``"separate"`` | ``"none"``), ``use_edge``, ``shared_theta``, ``fusion`` (``"sum"`` |
  ``"prod"`` | ``"concat"``), ``shared_line_encoder``;
* loss: ``margin``, ``alpha``, ``beta``, ``intra``;
* optimisation: ``lr``, ``batch_size``, ``epochs``, ``steps_per_epoch`` (None = one pass over
  the training sketches), ``lr_drop_epoch`` (x0.1 after that epoch; None = constant);
* data: ``dataset``, ``split_name``, ``image_size``, ``load_size``, ``augment``, ``crop_scale``,
  ``data_kwargs`` (extra dataset arguments, e.g. a smaller synthetic world in tests);
* evaluation: ``p_at`` (K of P@K).

The paper's recipe is unknown, so the recipe is sbirlib's reconstruction (chapter 06 (CSCAN),
"Where we had to decide"); it keeps the **final** epoch. Validation mAP is computed every
epoch only to draw the curves (``fit(keep="last")``, which stays right across a resume).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from sbirlib import results, training, utils
from sbirlib.data import samplers
from sbirlib.evaluation import extract_embeddings, retrieval_metrics
from sbirlib.losses import cscan as cscan_losses
from sbirlib.models import cscan as cscan_models
from sbirlib.models import resnet
from sbirlib.profiles import Config, resolve_profile, variant
from sbirlib.recipes import common

__all__ = ["PROFILES", "CHAPTER", "ABLATIONS", "CODE_LENGTH_ABLATIONS", "ABLATION_SEEDS", "run",
           "run_ablations", "record_ablations", "ablations_path", "ablation_table", "seed_ordering",
           "RunResult",
           "build_model", "load_data",
           "PhotoEdge", "evaluate", "variant", "make_step_fn"]

CHAPTER = "06_cscan"

_SHARED: dict[str, Any] = {
    "category": None,
    "sketch_attention": True,
    "photo_attention": "co",
    "use_edge": True,
    "shared_theta": False,
    "fusion": "sum",
    "shared_line_encoder": True,
    "margin": 1.0,
    "alpha": 1.0,
    "beta": 0.1,
    "intra": True,
    "augment": True,
    "crop_scale": (0.8, 1.0),
    "weight_decay": 0.0,
    "p_at": 200,
    "data_kwargs": {},
}

#: The two profiles: ``full`` (the paper-scale reconstruction) and ``smoke`` (its CPU scale).
PROFILES: dict[str, dict[str, Any]] = {
    # synthetic category task, 2 x half-width ResNet-18 from scratch at 64 px, K = 32,
    # 200 steps of 16 triplets. The CPU-scale design named full-width ResNet-18; measured on the
    # shared 2-core machine those cost ~4x more per step than the 3-minute smoke budget allows,
    # so smoke uses resnet18_narrow (F_L = 64 x 8 x 8, F_H = 256) -- same structure, 1/4 FLOPs
    "smoke": {
        **_SHARED,
        "dataset": "synthetic-category",
        "split_name": None,
        "seed": 0,
        "arch": "resnet18_narrow",
        "pretrained": False,
        "image_size": 64,
        "load_size": 64,
        "code_bits": 32,
        "batch_size": 16,
        "lr": 1e-3,
        # the CPU-scale design kept alpha = 1; from random init that collapses all codes to a corner
        # within ~30 steps (measured: Hamming mAP at chance after 80 steps, with or without
        # L_Intra, at lr 1e-3 or 1e-4). alpha = 10 lets the classifiers spread the codes first
        # (Hamming mAP 0.147 after 100 steps vs 0.029 chance)
        "alpha": 10.0,
        "epochs": 10,
        "steps_per_epoch": 20,
        "lr_drop_epoch": None,
    },
    # the library's reconstruction of the paper's recipe: Sketchy-Ext DSH split (or
    # --dataset tuberlin-ext), 2 x ImageNet ResNet-50 at 224 px, K = 64, Adam 1e-4,
    # 32 triplets per step, 30 epochs over the training sketches, lr x 0.1 after epoch 20
    "full": {
        **_SHARED,
        "dataset": "sketchy-ext",
        "split_name": None,  # None -> the DSH split of the dataset (see _DSH_SPLITS)
        "seed": 0,
        "arch": "resnet50",
        "pretrained": True,
        "image_size": 224,
        "load_size": 256,
        "code_bits": 64,
        "batch_size": 32,
        "lr": 1e-4,
        "epochs": 30,
        "steps_per_epoch": None,
        "lr_drop_epoch": 20,
    },
}

#: DSH-style category splits shared with the DASE chapter (DASE's published query lists)
_DSH_SPLITS = {"sketchy-ext": "sketchy_ext/cat/dsh50@dase", "tuberlin-ext": "tuberlin_ext/cat/dsh10@dase"}

#: Edge detector settings for real photos (sbirlib's Canny settings, photos loaded at 256 px);
#: the synthetic generator uses the library detector's defaults at 64 px.
REAL_EDGE_ARGS = {"sigma": 2.0, "low": 0.1, "high": 0.2, "thickness": 3}

#: The chapter's ablations: name -> profile changes. Every one runs under the
#: profile's budget and seed.
ABLATIONS: dict[str, dict[str, Any]] = {
    "CSCAN (co-attention, edge, beta=0.1, K=32)": {},
    "no attention": {"sketch_attention": False, "photo_attention": "none"},
    "separate masks for I and E": {"photo_attention": "separate"},
    "no edge branch": {"use_edge": False},
    "beta = 0 (no quantisation loss)": {"beta": 0.0},
    "K = 64 bits": {"code_bits": 64},
    "K = 128 bits": {"code_bits": 128},
}

#: The code-length ablation: K -> the :data:`ABLATIONS` row that trains it.
CODE_LENGTH_ABLATIONS: dict[int, str] = {
    32: "CSCAN (co-attention, edge, beta=0.1, K=32)", 64: "K = 64 bits", 128: "K = 128 bits"}

#: Seeds of the recorded ablations (mean +- std over these).
ABLATION_SEEDS: tuple[int, ...] = (0, 1, 2)


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------
class PhotoEdge(Dataset):
    """Photos zipped with their edge maps: ``image`` is ``[4, H, W]`` = RGB + edge map.

    Keeping photo and edge map in one tensor makes every spatial transform hit both alike, so
    they stay pixel-aligned -- the co-attention mask ``M_IE`` is computed from both
    and applied to both. Either pass an ``edges`` dataset aligned with ``photos`` by index (the
    synthetic data ship one) or let ``edge_fn`` compute edge maps from the photos (real data;
    cached under ``cache_dir`` when given).
    """

    def __init__(self, photos: Dataset, edges: Dataset | None = None, *, edge_fn: Any = None,
                 cache_dir: Path | None = None) -> None:
        if edges is None and edge_fn is None:
            raise ValueError("PhotoEdge needs an aligned edge dataset or an edge_fn")
        if edges is not None and (len(edges) != len(photos) or list(edges.labels) != list(photos.labels)):
            raise ValueError("PhotoEdge: the edge dataset is not aligned with the photo dataset")
        self.photos, self.edges, self.edge_fn, self.cache_dir = photos, edges, edge_fn, cache_dir
        self.labels = list(photos.labels)
        self.instances = list(photos.instances)
        self.classes = list(photos.classes)

    def __len__(self) -> int:
        return len(self.photos)

    def _edge(self, i: int, photo: torch.Tensor) -> torch.Tensor:
        if self.edges is not None:
            return self.edges[i]["image"]
        path = None
        if self.cache_dir is not None:
            key = hashlib.sha1(str(getattr(self.photos, "samples", [i] * (i + 1))[i]).encode()).hexdigest()
            path = self.cache_dir / f"{key[:2]}" / f"{key}.png"
            if path.is_file():
                from PIL import Image

                with Image.open(path) as img:
                    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)[None]
        edge = self.edge_fn(photo)
        if path is not None:
            from PIL import Image

            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.png")
            Image.fromarray((edge[0].numpy() * 255).round().astype(np.uint8)).save(tmp)
            tmp.replace(path)
        return edge

    def __getitem__(self, i: int) -> dict[str, Any]:
        photo = self.photos[i]["image"]
        edge = self._edge(i, photo)
        return {"image": torch.cat([photo, edge], 0), "label": self.labels[i],
                "instance": self.instances[i], "domain": 1, "index": i}

    def __repr__(self) -> str:
        src = "edge dataset" if self.edges is not None else f"edge_fn={self.edge_fn!r}"
        return f"PhotoEdge(photos={len(self)}, classes={len(set(self.labels))}, {src})"


class _Transformed(Dataset):
    """Applies ``fn`` to the ``image`` of each item (augmentation or resizing)."""

    def __init__(self, source: Dataset, fn: Any) -> None:
        self.source, self.fn = source, fn
        self.labels, self.instances = list(source.labels), list(source.instances)
        self.classes = list(source.classes)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = dict(self.source[i])
        item["image"] = self.fn(item["image"])
        return item


def _train_transform(cfg: Config):
    from torchvision.transforms import v2

    if not cfg.augment:
        return _resize_transform(cfg)
    return v2.Compose([
        v2.RandomResizedCrop(cfg.image_size, scale=tuple(cfg.crop_scale), ratio=(3 / 4, 4 / 3), antialias=True),
        v2.RandomHorizontalFlip(0.5),
    ])


def _resize_transform(cfg: Config):
    from torchvision.transforms import v2

    return v2.Resize((cfg.image_size, cfg.image_size), antialias=True)


def load_data(cfg: Config, data_root: str | None = None, progress: bool = False) -> dict[str, Dataset]:
    """Training sketches, validation and test query sketches, and the photo+edge gallery.

    Returns ``{"train_sketch", "train_photo", "val_sketch", "test_sketch", "gallery"}``; photo
    sets are :class:`PhotoEdge` (``[4, H, W]``). Category level: the gallery is every photo of
    the dataset, also used for training (the DSH protocol). Items are un-augmented; ``run``
    adds the training augmentation.
    """
    if cfg.dataset.startswith("synthetic"):
        from sbirlib.data import synthetic

        if cfg.dataset != "synthetic-category":
            raise ValueError(f"CSCAN is category-level; use dataset 'synthetic-category', not {cfg.dataset!r}")
        kw = {"image_size": cfg.load_size, "progress": progress, **dict(cfg.data_kwargs)}

        def ds(split: str, modality: str) -> common.ImageBank:
            return common.ImageBank(synthetic.SyntheticSBIR("category", split, modality, **kw),
                                    name=f"synthetic {split} {modality}")

        photos = PhotoEdge(ds("test", "photo"), ds("test", "edge"))
        data = {"train_sketch": ds("train", "sketch"), "val_sketch": ds("val", "sketch"),
                "test_sketch": ds("test", "sketch"), "train_photo": photos, "gallery": photos}
    else:
        from sbirlib.data.edges import EdgeMap
        from sbirlib.data.registry import build_dataset

        split_name = cfg.split_name or _DSH_SPLITS.get(cfg.dataset)
        if split_name is None:
            raise ValueError(f"no DSH-style category split known for {cfg.dataset!r}; "
                             f"set split_name (known: {_DSH_SPLITS})")
        root = utils.data_root(data_root)
        kw = {"root": root, "split_name": split_name, "image_size": cfg.load_size, **dict(cfg.data_kwargs)}

        def ds(split: str, modality: str) -> Dataset:
            return build_dataset(cfg.dataset, split=split, modality=modality, **kw)

        edges_at = utils.cache_dir("edges", cfg.dataset, f"{cfg.load_size}px-" + "-".join(
            f"{k}{v}" for k, v in REAL_EDGE_ARGS.items()))
        photos = PhotoEdge(ds("test", "photo"), edge_fn=EdgeMap(**REAL_EDGE_ARGS), cache_dir=edges_at)
        data = {"train_sketch": ds("train", "sketch"), "val_sketch": ds("val", "sketch"),
                "test_sketch": ds("test", "sketch"), "train_photo": photos, "gallery": photos}
    if cfg.load_size != cfg.image_size:
        resize = _resize_transform(cfg)
        for key in ("val_sketch", "test_sketch", "gallery"):
            data[key] = _Transformed(data[key], resize)
    return data


# --------------------------------------------------------------------------------------
# Model, loss, step
# --------------------------------------------------------------------------------------
def build_model(cfg: Config, num_classes: int) -> cscan_models.CSCAN:
    """CSCAN with the profile's trunks and ablation switches."""
    builder = getattr(resnet, cfg.arch, None)
    if builder is None:
        raise ValueError(f"arch={cfg.arch!r} is not a trunk of sbirlib.models.resnet")
    first = builder(pretrained=cfg.pretrained)
    pending = [first]

    def make_trunk():
        return pending.pop() if pending else builder(pretrained=cfg.pretrained)

    return cscan_models.CSCAN(
        make_trunk, low_channels=first.channels["layer2"], feat_dim=first.num_features,
        code_bits=cfg.code_bits, num_classes=num_classes, sketch_attention=cfg.sketch_attention,
        photo_attention=cfg.photo_attention, use_edge=cfg.use_edge, shared_theta=cfg.shared_theta,
        fusion=cfg.fusion, shared_line_encoder=cfg.shared_line_encoder)


def make_step_fn(loss_fn: cscan_losses.CSCANLoss, use_edge: bool = True):
    """``step_fn(model, batch, device)`` for :func:`sbirlib.training.fit` on triplet batches."""

    def step_fn(model, batch, device):
        s = batch["sketch"].to(device)
        pn = torch.cat([batch["positive"], batch["negative"]]).to(device)
        ys = batch["label"].to(device)
        yn = batch["negative_label"].to(device)
        out = model(sketch=s, photo=pn[:, :3], edge=pn[:, 3:] if use_edge else None)
        cp, cn = out["code_photo"].chunk(2)
        lp, ln = out["logits_photo"].chunk(2)
        return loss_fn(out["code_sketch"], cp, cn, out["logits_sketch"], lp, ln, ys, ys, yn)

    return step_fn


# --------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------
def encode_fns(model: cscan_models.CSCAN):
    """``(encode_sketch, encode_photo)`` on dataset batches; photos are ``[B, 4, H, W]``."""

    def sketch(x: torch.Tensor) -> torch.Tensor:
        return model.encode_sketch(x)

    def photo(x: torch.Tensor) -> torch.Tensor:
        return model.encode_photo(x[:, :3], x[:, 3:] if model.use_edge else None)

    return sketch, photo


def embed(model: cscan_models.CSCAN, sketches: Dataset, gallery: Dataset, device: Any = "cpu",
          batch_size: int = 64) -> dict[str, Any]:
    """Continuous codes of ``sketches`` and ``gallery`` plus the embedding wall time."""
    enc_s, enc_p = encode_fns(model)
    was = model.training
    model.eval()
    try:
        t0 = time.perf_counter()
        sk = extract_embeddings(enc_s, sketches, batch_size=batch_size, device=device)
        t1 = time.perf_counter()
        ph = extract_embeddings(enc_p, gallery, batch_size=batch_size, device=device)
        t2 = time.perf_counter()
    finally:
        model.train(was)
    return {"sketch": sk, "photo": ph, "sketch_s": t1 - t0, "photo_s": t2 - t1}


def score(emb: dict[str, Any], p_at: int = 200, timing: bool = True) -> tuple[dict[str, float], dict[str, float]]:
    """Hamming (binary codes, tie-aware) and Euclidean (continuous codes) metrics and timings.

    Returns ``(metrics, timing)``: ``map@all`` / ``p@K`` / ``map@all_voc`` with suffix
    ``_hamming`` or ``_euclidean``; timing in milliseconds per query.
    """
    from sbirlib.retrieval import ExactIndex, HammingIndex

    qs, qy = emb["sketch"]["emb"], emb["sketch"]["labels"]
    gs, gy = emb["photo"]["emb"], emb["photo"]["labels"]
    qb, gb = cscan_models.CSCAN.binary_codes(qs), cscan_models.CSCAN.binary_codes(gs)
    k = min(p_at, len(gy))
    out: dict[str, float] = {}
    for dist, q, g in (("hamming", qb, gb), ("euclidean", qs, gs)):
        res = retrieval_metrics(q, qy, g, gy, metrics=("map@all", f"p@{k}"), distance=dist, ap="standard")
        voc = retrieval_metrics(q, qy, g, gy, metrics=("map@all",), distance=dist, ap="voc")
        out[f"map@all_{dist}"] = float(res["map@all"])
        out[f"p@{p_at}_{dist}"] = float(res[f"p@{k}"])
        out[f"map@all_voc_{dist}"] = float(voc["map@all"])
    times: dict[str, float] = {}
    if timing:
        nq, ng = len(qy), len(gy)
        for name, index, q in (("hamming", HammingIndex().add(gb), qb),
                               ("euclidean", ExactIndex("euclidean").add(gs), qs)):
            t0 = time.perf_counter()
            index.search(q, k=ng)  # rank the whole gallery
            times[f"search_ms_per_query_{name}"] = 1e3 * (time.perf_counter() - t0) / nq
        times["embed_ms_per_query"] = 1e3 * emb["sketch_s"] / nq
        times["embed_ms_per_gallery_photo"] = 1e3 * emb["photo_s"] / ng
        times["bytes_per_photo_hamming"] = qb.shape[1] / 8
        times["bytes_per_photo_euclidean"] = 4.0 * qs.shape[1]
    return out, times


def evaluate(model: cscan_models.CSCAN, sketches: Dataset, gallery: Dataset, *, p_at: int = 200,
             device: Any = "cpu", timing: bool = True) -> tuple[dict[str, float], dict[str, float]]:
    """Embed and score (see :func:`score`)."""
    return score(embed(model, sketches, gallery, device), p_at=p_at, timing=timing)


# --------------------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------------------
@dataclass
class RunResult:
    """What ``run`` produced: the trained model, its history, metrics and the run record."""

    model: cscan_models.CSCAN
    history: training.History
    metrics: dict[str, float]
    timing: dict[str, float]
    record: dict[str, Any]
    data: dict[str, Dataset] = field(repr=False, default_factory=dict)
    output_dir: Path | None = None

    def __repr__(self) -> str:
        main = {k: round(v, 4) for k, v in self.metrics.items() if k.startswith("test/map@all")}
        return f"RunResult(profile={self.record.get('profile')!r}, {main}, history={self.history!r})"


def run(cfg: Config, *, output_dir: str | Path | None = None, device: str = "auto",
        data_root: str | None = None, checkpoint: str = "auto", progress: bool = True,
        data: dict[str, Dataset] | None = None, write: bool = True) -> RunResult:
    """Train CSCAN under ``cfg`` and evaluate it on the test queries vs the gallery.

    ``output_dir`` receives ``checkpoint.pt`` and ``metrics.json`` (None: a fresh folder from
    :func:`sbirlib.results.output_dir_for` when available, else nothing is written). ``data``
    reuses already-loaded datasets (the chapter's ablations).
    """
    t_start = time.perf_counter()
    utils.seed_everything(cfg.seed)
    dev = utils.get_device(device)
    if data is None:
        data = load_data(cfg, data_root, progress=progress)
    num_classes = len(data["train_sketch"].classes)
    model = build_model(cfg, num_classes)
    loss_fn = cscan_losses.CSCANLoss(cfg.margin, cfg.alpha, cfg.beta, cfg.intra)

    aug = _train_transform(cfg)
    triplets = samplers.TripletDataset(_Transformed(data["train_sketch"], aug),
                                       _Transformed(data["train_photo"], aug),
                                       level="category", seed=cfg.seed)
    # no generator: fit re-seeds torch every epoch, which fixes the shuffle (and exact resume)
    loader = DataLoader(triplets, batch_size=cfg.batch_size, shuffle=True, drop_last=True)
    steps = cfg.steps_per_epoch or math.ceil(len(triplets) / cfg.batch_size)
    if cfg.steps_per_epoch and cfg.steps_per_epoch > len(loader):
        loader = _Repeat(loader, cfg.steps_per_epoch)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999),
                                 weight_decay=cfg.weight_decay)
    scheduler = (torch.optim.lr_scheduler.MultiStepLR(optimizer, [cfg.lr_drop_epoch], 0.1)
                 if cfg.lr_drop_epoch else None)

    def val_fn(m: cscan_models.CSCAN) -> dict[str, float]:
        metrics, _ = evaluate(m, data["val_sketch"], data["gallery"], p_at=cfg.p_at, device=dev, timing=False)
        return metrics

    out = Path(output_dir) if output_dir else None
    if out is None and write:
        out = Path(results.output_dir_for(CHAPTER))
    history = training.train_or_load(
        model, loader, make_step_fn(loss_fn, cfg.use_edge), checkpoint=checkpoint, output_dir=out,
        config=cfg.to_dict(), optimizer=optimizer, epochs=cfg.epochs, device=dev, scheduler=scheduler,
        val_fn=val_fn, keep="last", seed=cfg.seed, amp=False,
        steps_per_epoch=steps, progress=progress)
    model.to(dev)
    test, timing = evaluate(model, data["test_sketch"], data["gallery"], p_at=cfg.p_at, device=dev)
    metrics = {f"test/{k}": v for k, v in test.items()}
    if history.val:
        metrics.update({f"val/{k}": v for k, v in history.val[-1].items()})
    if history.train:
        metrics["train/loss_first"] = history.train[0]["loss"]
        metrics["train/loss_last"] = history.train[-1]["loss"]
    prov = results.provenance(profile=cfg.profile, seed=cfg.seed, device=str(dev),
                              wall_time_s=time.perf_counter() - t_start, config=cfg.to_dict(),
                              dataset=cfg.dataset, trained=not history.loaded,
                              train_wall_time_s=round(history.wall_time_s, 2),
                              selection="final epoch (no selection)",
                              hamming_ties="tie-aware AP (equal distances scored as one block)")
    record = results.run_record(CHAPTER, metrics, prov, timing=timing,
                                history={"train": history.train, "val": history.val})
    if out is not None and write:
        results.write_run_record(out, record)
    return RunResult(model, history, metrics, timing, record, data, out)


class _Repeat:
    """Cycle a DataLoader so that an epoch can be longer than one pass (tiny synthetic sets)."""

    def __init__(self, loader: DataLoader, steps: int) -> None:
        self.loader, self.steps = loader, steps
        self.dataset = loader.dataset

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        n = 0
        while True:
            for batch in self.loader:
                yield batch
                n += 1
                if n >= self.steps:
                    return


def _ablation_row(name: str, cfg: Config, res: RunResult, wall_time_s: float,
                  device: str) -> dict[str, Any]:
    """One (variant, seed) run as a run record plus ``name``, ``changes`` and ``seed``."""
    metrics = {k: v for k, v in res.metrics.items() if k.startswith("test/")}
    prov = results.provenance(profile=cfg.profile, seed=cfg.seed, device=device,
                              wall_time_s=wall_time_s, dataset=cfg.dataset,
                              code_bits=cfg.code_bits)
    record = results.run_record(CHAPTER, metrics, prov, timing=dict(res.timing))
    return {"name": name, "changes": ABLATIONS[name], "seed": cfg.seed, **record}


def _ablation_record(rows: list[dict[str, Any]], cfg: Config, device: str,
                     wall_time_s: float | None = None, note: str | None = None) -> dict[str, Any]:
    """The artefact: rows in :data:`ABLATIONS` order then by seed, and what produced them."""
    order = {n: i for i, n in enumerate(ABLATIONS)}
    rows = sorted(rows, key=lambda r: (order.get(r["name"], len(order)), r["seed"]))
    commits = sorted({r["provenance"].get("commit") or "unknown" for r in rows})
    recorded = {n: [r["seed"] for r in rows if r["name"] == n] for n in dict.fromkeys(r["name"] for r in rows)}
    extra = {"seeds": sorted({r["seed"] for r in rows}), "recorded": recorded, "commits": commits,
             "producer": "sbirlib.recipes.cscan.record_ablations "
                         "(python -m sbirlib.recipes.cscan --help)"}
    if note:
        extra["note"] = note
    prov = results.provenance(profile=cfg.profile, seed=cfg.seed, device=device,
                              wall_time_s=wall_time_s, config=cfg.to_dict(), dataset=cfg.dataset,
                              **extra)
    return {"chapter": CHAPTER, "profile": cfg.profile, "rows": rows, "provenance": prov}


def run_ablations(cfg: Config, names: list[str] | None = None, seeds: tuple[int, ...] = (0,), *,
                  extra_seeds: dict[str, tuple[int, ...]] | None = None, device: str = "auto",
                  data: dict[str, Dataset] | None = None, progress: bool = False,
                  on_row: Any = None) -> dict[str, Any]:
    """Train and evaluate each ablation of :data:`ABLATIONS` under ``cfg``'s budget.

    Every variant uses the same data, budget and seeds; nothing is written to disk (each run
    trains from scratch). ``extra_seeds`` adds seeds for some variants. Returns
    ``{"chapter", "profile", "rows", "provenance"}``: one row per (variant, seed), each a run
    record (:func:`sbirlib.results.run_record`: ``metrics``, ``timing``, ``provenance`` with
    profile, seed, commit, device, wall time) plus ``name``, ``changes`` and ``seed``.
    ``on_row(row)`` is called after each run (:func:`record_ablations` saves there).
    """
    from tqdm.auto import tqdm

    names = list(ABLATIONS) if names is None else names
    unknown = [n for n in names if n not in ABLATIONS]
    if unknown:
        raise KeyError(f"unknown ablations {unknown}; known: {list(ABLATIONS)}")
    if data is None:
        data = load_data(cfg, progress=progress)
    dev = str(utils.get_device(device))
    jobs = [(n, s) for n in names for s in sorted(set(seeds) | set((extra_seeds or {}).get(n, ())))]
    rows = []
    t0 = time.perf_counter()
    for name, seed in tqdm(jobs, desc="ablations", disable=not progress):
        vcfg = variant(cfg, seed=seed, **ABLATIONS[name])
        t1 = time.perf_counter()
        res = run(vcfg, output_dir=None, device=dev, checkpoint="train", progress=False,
                  data=data, write=False)
        row = _ablation_row(name, vcfg, res, time.perf_counter() - t1, dev)
        rows.append(row)
        if on_row is not None:
            on_row(row)
    return _ablation_record(rows, cfg, dev, time.perf_counter() - t0)


def ablations_path(profile: str) -> Path:
    """``book/results/06_cscan/ablations-<profile>.json`` of this checkout."""
    base = results.results_dir()
    if base is None:
        raise FileNotFoundError("book/results is not available (sbirlib is not running from a checkout)")
    return base / CHAPTER / f"ablations-{profile}.json"


def _stored_rows(record: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Rows of an existing artefact; rows of the first format (no per-row provenance) inherit
    the artefact's provenance minus its config, so every row says where it came from."""
    if not record:
        return []
    top = {k: v for k, v in record.get("provenance", {}).items()
           if k not in ("config", "note", "seeds", "commits", "producer")}
    rows = []
    for r in record.get("rows", []):
        r = dict(r)
        if "provenance" not in r:
            prov = {**top, "seed": r["seed"], "wall_time_s": r.get("wall_time_s")}
            r = {"name": r["name"], "changes": r["changes"], "seed": r["seed"],
                 "chapter": CHAPTER, "profile": record.get("profile"), "metrics": r["metrics"],
                 "provenance": prov, **({"source": r["source"]} if "source" in r else {})}
        rows.append(r)
    return rows


def record_ablations(profile: str = "smoke", names: list[str] | None = None,
                     seeds: tuple[int, ...] = ABLATION_SEEDS, *, path: str | Path | None = None,
                     device: str = "cpu", threads: int | None = 1, progress: bool = True,
                     note: str | None = None) -> dict[str, Any]:
    """Run ``names`` x ``seeds`` with :func:`run_ablations` and merge them into the artefact.

    The one producer of ``book/results/06_cscan/ablations-<profile>.json``. A (variant, seed)
    row that is run again replaces the stored one; every other stored row is kept, so the
    artefact can be filled in several sittings. The file is rewritten (atomically) after
    every run, and once more at the end (``names=[]`` only refreshes the artefact's
    provenance and ``note``; a stored note is kept unless ``note`` replaces it). ``threads``
    fixes ``torch.set_num_threads`` (from-scratch smoke runs differ in the last digits between
    thread counts; the smoke reference ran with 1). Each new row's ``commit`` is the checkout's
    commit when the producer started -- the code that was imported -- so the artefact's own
    rewrites do not mark later rows ``-dirty``.
    """
    commit = utils.git_commit()
    if threads:
        torch.set_num_threads(threads)
    cfg = resolve_profile(PROFILES, profile)
    path = Path(path) if path else ablations_path(profile)
    stored = results.load_json(path) if path.is_file() else None
    if stored and stored.get("profile") not in (None, profile):
        raise ValueError(f"{path} holds profile {stored.get('profile')!r}, not {profile!r}")
    rows = _stored_rows(stored)
    old_note = (stored or {}).get("provenance", {}).get("note")
    t0 = time.perf_counter()

    def write() -> None:
        record = _ablation_record(rows, cfg, device, time.perf_counter() - t0, note or old_note)
        record["provenance"]["commit"] = commit
        results.save_json(record, path)

    def save(row: dict[str, Any]) -> None:
        row["provenance"]["commit"] = commit
        rows[:] = [r for r in rows if (r["name"], r["seed"]) != (row["name"], row["seed"])] + [row]
        write()
        m = row["metrics"]
        print(f"{row['name']} seed {row['seed']}: Hamming {m['test/map@all_hamming']:.4f} "
              f"Euclidean {m['test/map@all_euclidean']:.4f} ({row['provenance']['wall_time_s']} s)",
              flush=True)

    if names is None or names:
        run_ablations(cfg, names, seeds, device=device, progress=progress, on_row=save)
    write()
    return results.load_json(path)


def ablation_table(record: dict[str, Any], metrics: tuple[str, ...] = (
        "test/map@all_hamming", "test/map@all_euclidean"),
        names: list[str] | None = None) -> list[dict[str, Any]]:
    """:func:`sbirlib.results.ablation_table` with this chapter's two mAPs as default metrics
    (timing keys such as ``search_ms_per_query_hamming`` work too)."""
    return results.ablation_table(record, metrics, names)


def seed_ordering(record: dict[str, Any], a: str, b: str, metric: str = "test/map@all_hamming") -> str:
    """:func:`sbirlib.results.seed_ordering` on Hamming mAP@all unless ``metric`` says otherwise."""
    return results.seed_ordering(record, a, b, metric)


def main(argv: list[str] | None = None) -> int:
    """``python -m sbirlib.recipes.cscan``: record the chapter's ablations (see ``--help``)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m sbirlib.recipes.cscan",
        description="Train the CSCAN ablations x seeds and merge them into "
                    "book/results/06_cscan/ablations-<profile>.json (one row per variant and seed).")
    parser.add_argument("--profile", default="smoke", choices=["smoke"])
    parser.add_argument("--names", nargs="+", default=None, metavar="NAME",
                        help=f"ablations to run (default: all); known: {list(ABLATIONS)}")
    parser.add_argument("--code-lengths", action="store_true",
                        help=f"shorthand for --names {' '.join(repr(n) for n in CODE_LENGTH_ABLATIONS.values())}")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(ABLATION_SEEDS))
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--path", default=None, help="artefact path (default: the checkout's)")
    parser.add_argument("--note", default=None, help="note stored in the artefact's provenance")
    parser.add_argument("--refresh", action="store_true",
                        help="run nothing; rewrite the artefact's provenance (and --note)")
    parser.add_argument("--list", action="store_true", help="list the ablations and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, changes in ABLATIONS.items():
            print(f"{name!r}: {changes}")
        return 0
    names = [] if args.refresh else args.names
    if args.code_lengths and not args.refresh:
        names = list(dict.fromkeys((names or []) + list(CODE_LENGTH_ABLATIONS.values())))
    record_ablations(args.profile, names, tuple(args.seeds), path=args.path, device=args.device,
                     threads=args.threads, note=args.note)
    return 0


if __name__ == "__main__":  # pragma: no cover - the artefact's producer
    raise SystemExit(main())
