"""Recipe for DSSA (Song et al., ICCV 2017): ``smoke`` / ``cpu-real`` / ``full``.

Stage 0 is the shared Sketch-a-Net pre-training (:mod:`sbirlib.recipes.pretrain`, cached);
stage 1 fine-tunes DSSA -- conv5, the attention, fc6, fc7 and the HOLEF matrix ``W`` -- on
sketch / photo-edge-map triplets, then scores the test set with the ten-view averaged ``D_W``
(equation labels (D1)-(D10) as in chapter 03 (DSSA)). ``run`` also reports the single-view
result and the same network ranked by squared Euclidean distance.

Switches for the chapter's ablations (all keys of every profile): ``attention``
(``"softmax"`` | ``"sigmoid"`` | ``"none"``), ``residual``, ``fine``, ``holef`` (HOLEF loss and
test distance, else the squared-Euclidean triplet loss D9), ``holef_diagonal``, ``lam``,
``train_conv5``, ``pretrained``. With ``attention="none", fine=False, holef=False,
train_conv5=False`` the network is exactly Triplet-SN (the first rung of the ladder).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, RandomSampler

from sbirlib import training, utils
from sbirlib.data import samplers
from sbirlib.evaluation import multiview
from sbirlib.losses import holef as holef_loss
from sbirlib.models import dssa as dssa_models
from sbirlib.models import sketch_a_net
from sbirlib.profiles import Config, variant
from sbirlib.recipes import common

__all__ = ["PROFILES", "CHAPTER", "run", "build_model", "build_optimizer", "load_data", "make_loader",
           "make_step_fn", "triplet_loss", "encoder", "model_distance", "evaluate", "pretrained_backbone",
           "variant", "normalize"]

CHAPTER = "03_dssa"

_SHARED: dict[str, Any] = {
    "category": None, "seed": 0, "photo_modality": "edge",
    "attention": "softmax", "residual": True, "fine": True,
    "holef": True, "holef_diagonal": False, "margin": 0.3, "lam": 5e-4,
    "w_init_std": 0.05, "w_lr": 1e-4, "w_betas": (0.5, 0.999),
    "train_conv5": True, "pretrained": True, "views": 10, "val_views": 1,
    "select": "last", "hard_negative": 0.0, "weight_decay": 0.0, "momentum": 0.0,
    "amp": True, "grad_clip": None,
}

#: The three profiles. ``epochs * steps_per_epoch`` is the number of training iterations.
PROFILES: dict[str, dict[str, Any]] = {
    # synthetic fine-grained task, SAN-narrow on 72 -> 64 px, 150 iterations (CPU scale)
    "smoke": {
        **_SHARED, "dataset": "synthetic-fg", "hard_negative": 0.5,
        "epochs": 3, "steps_per_epoch": 50, "batch_size": 16,
        "variant": "narrow", "load_size": 72, "input_size": 64,
        "optimizer": "adam", "lr": 1e-4, "pretrain_profile": "smoke",
    },
    # real QMUL Shoe-V1 (category="chairs": Chair-V1), SAN-narrow on 144 -> 128 px, 300 iterations
    "cpu-real": {
        **_SHARED, "dataset": "qmul-v1", "category": "shoes",
        "epochs": 6, "steps_per_epoch": 50, "batch_size": 16,
        "variant": "narrow", "load_size": 144, "input_size": 128,
        "optimizer": "adam", "lr": 1e-4, "pretrain_profile": "cpu-real",
    },
    # the paper: Sketch-a-Net on 256 -> 225 px, batch 128, SGD 1e-3 momentum 0.9, 20,000 iterations
    "full": {
        **_SHARED, "dataset": "qmul-v1", "category": "shoes",
        "epochs": 100, "steps_per_epoch": 200, "batch_size": 128,
        "variant": "full", "load_size": 256, "input_size": 225,
        "optimizer": "sgd", "lr": 1e-3, "momentum": 0.9, "pretrain_profile": "full",
    },
}


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------
def load_data(cfg: Config | dict[str, Any], data_root: str | None = None) -> dict[str, common.ImageBank]:
    """Sketch and edge-map banks (grey, ``cfg["load_size"]`` px, uncropped) for train/val/test.

    Photos are edge maps, as in the paper. Real data comes from ``data_root`` or ``$SBIR_DATA``.
    Validation is the loader's seeded 10 % of the training instances.
    """
    return common.load_fg_data(cfg, data_root, size=int(cfg["load_size"]), photo_modality="edge", channels=1)


def normalize(images: torch.Tensor) -> torch.Tensor:
    """Input scaling ``(x - 250.42) / 255`` (official mean pixel, 1/255) of images in [0, 1]."""
    return sketch_a_net.normalize_sketch(images)


def make_loader(cfg: Config | dict[str, Any], data: dict[str, common.ImageBank]) -> DataLoader:
    """Triplets (sketch, its own edge map, another training edge map), ``steps_per_epoch`` batches an epoch.

    The negative is drawn from any other instance (``hard_negative=0``; QMUL V1 has one class
    per dataset, so this is the official Handbag sampler). Fresh triplets every epoch.
    """
    triplets = samplers.TripletDataset(data["train_sketch"], data["train_photo"], level="instance",
                                       seed=int(cfg["seed"]), hard_negative=float(cfg["hard_negative"]))
    batch = int(cfg["batch_size"])
    sampler = RandomSampler(triplets, num_samples=int(cfg["steps_per_epoch"]) * batch)
    return DataLoader(triplets, batch_size=batch, sampler=sampler, drop_last=True)


# --------------------------------------------------------------------------------------
# model, loss, optimiser
# --------------------------------------------------------------------------------------
def build_model(cfg: Config, backbone_state: dict[str, torch.Tensor] | None = None) -> dssa_models.DSSA:
    """DSSA for ``cfg`` (backbone, input size, switches); ``W`` is drawn from ``cfg.seed``."""
    gen = torch.Generator().manual_seed(int(cfg.seed))
    kwargs = dict(attention=cfg.attention, residual=cfg.residual, fine=cfg.fine, holef=cfg.holef,
                  holef_diagonal=cfg.holef_diagonal, generator=gen)
    if cfg["variant"] == "narrow":
        model = dssa_models.dssa_narrow(input_size=cfg.input_size, backbone_state=backbone_state, **kwargs)
    elif cfg["variant"] == "full":
        model = dssa_models.dssa(input_size=cfg.input_size, backbone_state=backbone_state, **kwargs)
    else:
        raise ValueError(f"variant must be 'narrow' or 'full', got {cfg['variant']!r}")
    if model.distance is not None and cfg.w_init_std != 0.05:
        with torch.no_grad():
            base = torch.ones(model.embed_dim) if cfg.holef_diagonal else torch.eye(model.embed_dim)
            noise = torch.randn(model.distance.weight.shape, generator=gen) * cfg.w_init_std
            model.distance.weight.copy_(base + noise)
    return model


def build_optimizer(model: dssa_models.DSSA, cfg: Config) -> torch.optim.Optimizer:
    """Network: Adam (CPU profiles) or SGD + momentum (paper); ``W``: its own Adam, betas (0.5, 0.999).

    Adam keeps per-parameter state, so a ``W`` param group with its own lr and betas is the
    same as TC-Net's separate optimiser for ``W``; with SGD for the network the two optimisers
    are combined by :class:`_Optimizers`.
    """
    net_params = model.trainable_parameters(train_conv5=cfg.train_conv5)
    w_params = [] if model.distance is None else list(model.distance.parameters())
    w_group = {"params": w_params, "lr": cfg.w_lr, "betas": tuple(cfg.w_betas), "weight_decay": 0.0}
    if cfg.optimizer == "adam":
        groups = [{"params": net_params, "lr": cfg.lr, "weight_decay": cfg.weight_decay}]
        if w_params:
            groups.append(w_group)
        return torch.optim.Adam(groups)
    if cfg.optimizer == "sgd":
        net = torch.optim.SGD(net_params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        return _Optimizers(net, torch.optim.Adam([w_group])) if w_params else net
    raise ValueError(f"optimizer must be 'adam' or 'sgd', got {cfg.optimizer!r}")


class _Optimizers(torch.optim.Optimizer):
    """Two optimisers stepped together (network SGD + HOLEF Adam), seen by ``fit`` as one."""

    def __init__(self, *optimizers: torch.optim.Optimizer) -> None:
        self.optimizers = optimizers
        self.defaults = {}
        self.state = {}
        self.param_groups = [g for o in optimizers for g in o.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.optimizers:
            o.zero_grad(set_to_none=set_to_none)

    def step(self, closure=None):  # noqa: ANN001
        for o in self.optimizers:
            o.step()

    def state_dict(self) -> dict[str, Any]:
        return {f"opt{i}": o.state_dict() for i, o in enumerate(self.optimizers)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for i, o in enumerate(self.optimizers):
            o.load_state_dict(state[f"opt{i}"])

    def __repr__(self) -> str:
        return "Optimizers(" + ", ".join(type(o).__name__ for o in self.optimizers) + ")"


def triplet_loss(model: dssa_models.DSSA, cfg: Config, a: torch.Tensor, p: torch.Tensor, n: torch.Tensor) -> dict[str, torch.Tensor]:
    """HOLEF (D8) when the model carries ``W``, else the squared-Euclidean triplet loss (D9)."""
    if model.distance is not None:
        loss_fn = holef_loss.HOLEFLoss(model.embed_dim, margin=cfg.margin, lam=cfg.lam, distance=model.distance)
        return loss_fn.parts(a, p, n)
    loss = holef_loss.squared_euclidean_triplet_loss(a, p, n, margin=cfg.margin)
    return {"loss": loss, "hinge": loss}


# --------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------
def encoder(model: dssa_models.DSSA, device: torch.device | str = "cpu"):
    """``encode(images in [0, 1]) -> embeddings``: the input scaling, then the model."""
    def encode(x: torch.Tensor) -> torch.Tensor:
        return training.unwrap_model(model)(normalize(x.to(device)))

    return encode


def model_distance(model: dssa_models.DSSA):
    """The model's retrieval distance as a callable ``(sketch [Ns, D], photo [Np, D]) -> [Ns, Np]``.

    HOLEF ``D_W`` (D7, in float64 on the CPU) when the model carries ``W``, else squared Euclidean.
    """
    net = training.unwrap_model(model)

    def fn(s: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        if net.distance is None:
            return torch.cdist(s.double(), p.double()).pow(2)
        W = net.distance.W.detach().to("cpu", torch.float64)
        return holef_loss.holef_distance(s.double().cpu(), p.double().cpu(), W)

    return fn


def evaluate(model: dssa_models.DSSA, data: dict[str, common.ImageBank], cfg: Config | dict[str, Any],
             split: str = "test", *, views: int | None = None, distance: str = "model",
             device: torch.device | str = "cpu", return_distance: bool = False) -> Any:
    """acc@1/5/10 on ``split`` with the ``views``-view test (default ``cfg["views"]``).

    ``distance="model"`` ranks by the model's own distance (``D_W`` with HOLEF, D10);
    ``"sqeuclidean"`` ranks the same embeddings by squared Euclidean distance.
    """
    model.eval()
    dist = model_distance(model) if distance == "model" else distance
    return common.fg_metrics(encoder(model, device), data[f"{split}_sketch"], data[f"{split}_photo"],
                             crop=int(cfg["input_size"]), views=int(views or cfg["views"]), distance=dist,
                             device=device, return_distance=return_distance)


# --------------------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------------------
def pretrained_backbone(cfg: Config | dict[str, Any], *, device: str | torch.device = "auto",
                        data_root: str | None = None, checkpoint: str = "auto",
                        progress: bool = True) -> dict[str, torch.Tensor] | None:
    """The cached Sketch-a-Net pre-training of ``cfg["pretrain_profile"]`` (None when ``pretrained`` is off).

    Shared with the Triplet-SN chapter: :func:`sbirlib.recipes.pretrain.pretrained_state`
    trains on first use and loads from its cache afterwards.
    """
    if not cfg["pretrained"]:
        return None
    from sbirlib.recipes import pretrain

    return pretrain.pretrained_state(cfg["pretrain_profile"], device=device, data_root=data_root,
                                     checkpoint=checkpoint, progress=progress)


def make_step_fn(cfg: Config | dict[str, Any]):
    """``step_fn(model, batch, device)``: independent random crop + flip per image, embed, loss."""
    crop = int(cfg["input_size"])

    def step_fn(net, batch, dev):
        b = batch["sketch"].shape[0]
        images = torch.cat([batch["sketch"], batch["positive"], batch["negative"]])
        emb = net(normalize(common.random_crop_flip(images, crop)).to(dev))
        return triplet_loss(training.unwrap_model(net), cfg, emb[:b], emb[b:2 * b], emb[2 * b:])

    return step_fn


def run(cfg: Config | dict[str, Any], *, output_dir: str | Path | None = None, device: str | torch.device = "auto",
        data_root: str | None = None, checkpoint: str = "auto", progress: bool = True,
        data: dict[str, common.ImageBank] | None = None,
        backbone_state: dict[str, torch.Tensor] | None = None, baseline: bool = True,
        write: bool = True) -> common.RunResult:
    """Pre-train (cached), fine-tune DSSA, evaluate with the ten-view test and write ``metrics.json``.

    ``data`` / ``backbone_state`` let a chapter reuse what it already built across ablations.
    The final iteration is kept (``select="last"``, sbirlib's decision): single-view validation
    acc@1 is logged every epoch but never selects. Metrics: ``test/acc@K`` (10 views, the
    model's distance), ``test_1view/acc@K``, ``test_euclid/acc@K`` (10 views, squared Euclidean;
    HOLEF models only), ``val/acc@K``, ``baseline/acc@K`` (blurred pixels), ``chance/acc@1``.
    """
    t0 = time.perf_counter()
    cfg = Config(dict(cfg))
    utils.seed_everything(int(cfg.seed))
    dev = utils.get_device(device)
    data = data if data is not None else load_data(cfg, data_root)
    if backbone_state is None and cfg.pretrained:
        backbone_state = pretrained_backbone(cfg, device=dev, data_root=data_root, progress=progress)
    model = build_model(cfg, backbone_state if cfg.pretrained else None)
    optimizer = build_optimizer(model, cfg)

    def val_fn(net):
        res = evaluate(net, data, cfg, "val", views=int(cfg.val_views), device=dev)
        return {k: res[k] for k in ("acc@1", "acc@10")}

    cache: dict[str, Any] = {}

    def test_scores(net, views: int, distance: Any) -> dict[str, float]:
        # one embedding pass over the ten views serves every test metric below
        if "emb" not in cache:
            enc = encoder(net, dev)
            cache["emb"] = [multiview.multiview_embeddings(enc, data[f"test_{side}"], int(cfg.input_size),
                                                           views=int(cfg.views), device=dev)
                            for side in ("sketch", "photo")]
        emb_s, emb_p = cache["emb"]
        res, _ = multiview.multiview_fg_accuracy(
            emb_s, emb_p, data["test_sketch"].instances, data["test_photo"].instances,
            views=views, distance=distance, ks=(1, 5, 10))
        return {k: float(v) for k, v in dict(res).items()}

    def test_fn(net):
        return test_scores(net, int(cfg.views), model_distance(net))

    def extra(net):
        out = {f"test_1view/{k}": v for k, v in test_scores(net, 1, model_distance(net)).items()}
        if training.unwrap_model(net).distance is not None:
            out.update({f"test_euclid/{k}": v for k, v in test_scores(net, int(cfg.views), "sqeuclidean").items()})
        if baseline:
            out.update({f"baseline/{k}": v for k, v in
                        common.pixel_baseline(data["test_sketch"], data["test_photo"]).items()})
        out["chance/acc@1"] = 1.0 / len(set(data["test_photo"].instances))
        return out

    return common.standard_run(
        cfg, chapter=CHAPTER, data=data, model=model, optimizer=optimizer, loader=make_loader(cfg, data),
        step_fn=make_step_fn(cfg), val_fn=val_fn, test_fn=test_fn, output_dir=output_dir, device=dev,
        checkpoint=checkpoint, steps_per_epoch=None, progress=progress, extra_metrics=extra,
        write=write, t0=t0, method="dssa")
