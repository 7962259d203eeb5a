"""The bars to beat: references that learn nothing from the SBIR training data.

* Fine-grained: a blurred-pixel nearest-neighbour baseline (:func:`pixel_baseline_fg`): a
  sketch and an edge map (or photo) are compared through blurred, down-sampled pixels.
* Category level and zero-shot (:func:`category_references`): a random ranking, the same
  blurred pixels, and frozen ImageNet EfficientNet-Lite0 features (the off-the-shelf choice a
  reader would try first; not any paper's backbone).

Every chapter reports them next to the trained model, so a model that does not clear them has
learned nothing useful.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from sbirlib.evaluation.metrics import MetricResult

__all__ = ["gaussian_blur", "blurred_pixel_features", "pixel_baseline_fg", "random_ranking", "category_references",
           "frozen_imagenet_encoder"]

#: the image size at which ``sigma`` and ``pool`` are stated
REFERENCE_SIZE = 256


def _pad_symmetric(x: Tensor, radius: int, dim: int) -> Tensor:
    """Half-sample symmetric padding (``d c b a | a b c d | d c b a``), scipy's ``mode="reflect"``."""
    n = x.shape[dim]
    before = x.narrow(dim, 0, radius).flip(dim)
    after = x.narrow(dim, n - radius, radius).flip(dim)
    return torch.cat([before, x, after], dim=dim)


def gaussian_blur(x: Tensor, sigma: float, truncate: float = 4.0) -> Tensor:
    """Separable Gaussian blur of ``[N, 1, H, W]`` images.

    Same definition as ``scipy.ndimage.gaussian_filter(mode="reflect", truncate=4.0)``:
    kernel radius ``ceil(truncate * sigma)`` and half-sample symmetric padding. The padding
    matters: on QMUL Shoe-V1 zero padding moves one test sketch across the acc@1 cut.
    """
    if sigma <= 0:
        return x
    radius = max(1, int(math.ceil(truncate * sigma)))
    radius = min(radius, x.shape[-1], x.shape[-2])
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    x = F.conv2d(_pad_symmetric(x, radius, -1), k.view(1, 1, 1, -1))
    return F.conv2d(_pad_symmetric(x, radius, -2), k.view(1, 1, -1, 1))


def _to_gray01(images: Any) -> Tensor:
    x = images if isinstance(images, Tensor) else torch.as_tensor(np.ascontiguousarray(images))
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    elif not x.is_floating_point():
        x = x.float()
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4:
        raise ValueError(f"images must be [N, H, W] or [N, C, H, W], got shape {tuple(x.shape)}")
    if x.shape[1] not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, got {x.shape[1]}")
    if x.shape[1] == 3:
        x = x.mean(1, keepdim=True)
    if x.numel() and (float(x.min()) < -1e-6 or float(x.max()) > 1 + 1e-6):
        raise ValueError(
            "blurred_pixel_features expects raw images (uint8 0-255 or float in [0, 1], white "
            "background); build the datasets without a normalising transform"
        )
    return x.float()


def blurred_pixel_features(images: Any, sigma: float = 6.0, pool: int = 8, invert: bool = True) -> Tensor:
    """Blurred-pixel features ``[N, (256 // pool)**2]`` of sketches, edge maps or photos.

    Steps: grey scale in [0, 1] (uint8 is divided by 255, RGB averaged); invert so strokes
    are 1 on a 0 background (``invert=False`` if they already are); Gaussian blur with
    ``sigma`` pixels; average-pool ``pool`` x ``pool`` cells; subtract the vector's mean;
    L2-normalise. ``sigma`` and ``pool`` are stated at 256 px: for an image of side H the
    blur uses ``sigma * H / 256`` and the output grid stays ``256 // pool`` cells per side
    (adaptive average pooling), so features of different input sizes are comparable.
    """
    x = _to_gray01(images)
    if invert:
        x = 1.0 - x
    grid = REFERENCE_SIZE // pool
    # blur and pooling are linear and separable: one [side, grid] matrix per axis
    rows = _blur_pool_matrix(x.shape[-2], sigma * x.shape[-2] / REFERENCE_SIZE, grid)
    cols = _blur_pool_matrix(x.shape[-1], sigma * x.shape[-1] / REFERENCE_SIZE, grid)
    x = rows.T @ (x[:, 0].double() @ cols)
    f = x.flatten(1)
    f = f - f.mean(1, keepdim=True)
    return F.normalize(f, dim=1).float()


def _blur_pool_matrix(n: int, sigma: float, grid: int) -> Tensor:
    """``[n, grid]`` matrix M with ``x @ M`` = average-pool(Gaussian-blur(x)) along one axis."""
    eye = torch.eye(n, dtype=torch.float64).view(n, 1, 1, n)
    blurred = _blur_1d(eye, sigma).view(n, 1, n)
    if n % grid == 0:
        return F.avg_pool1d(blurred, n // grid).view(n, grid)
    return F.adaptive_avg_pool1d(blurred, grid).view(n, grid)


def _blur_1d(x: Tensor, sigma: float, truncate: float = 4.0) -> Tensor:
    if sigma <= 0:
        return x
    radius = min(max(1, int(math.ceil(truncate * sigma))), x.shape[-1])
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return F.conv2d(_pad_symmetric(x, radius, -1), (k / k.sum()).view(1, 1, 1, -1))


def pixel_baseline_fg(
    sketch_ds: Dataset | Any,
    photo_ds: Dataset | Any,
    ks: Sequence[int] = (1, 5, 10),
    *,
    sigma: float = 6.0,
    pool: int = 8,
    batch_size: int = 64,
) -> MetricResult:
    """acc@K of the blurred-pixel baseline: cosine similarity, pessimistic ranks.

    ``sketch_ds`` and ``photo_ds`` are fine-grained datasets whose items carry raw images
    (no normalising transform) and instance ids; the photo gallery is de-duplicated by
    instance, exactly as in :func:`sbirlib.evaluation.evaluate_fg`. One call, so every
    fine-grained chapter reports the same bar.
    """
    from sbirlib.evaluation.retrieval import evaluate_fg

    def encode(images: Tensor) -> Tensor:
        return blurred_pixel_features(images, sigma=sigma, pool=pool)

    res = evaluate_fg(encode, encode, sketch_ds, photo_ds, ks=ks, distance="cosine",
                      ties="pessimistic", batch_size=batch_size)
    res.info["method"] = f"blurred pixels (sigma={sigma} px at 256, {pool}x{pool} pooling, cosine)"
    return res


def random_ranking(sketch_labels: Sequence[int], photo_labels: Sequence[int], metrics: Sequence[str],
                   seed: int = 0) -> MetricResult:
    """Metrics of a uniformly random ranking of the gallery for every query (seeded)."""
    from sbirlib.evaluation.metrics import retrieval_metrics

    gen = torch.Generator().manual_seed(int(seed))
    dist = torch.rand(len(sketch_labels), len(photo_labels), generator=gen)
    res = retrieval_metrics(dist, torch.as_tensor(list(sketch_labels)), None, torch.as_tensor(list(photo_labels)),
                            metrics=tuple(metrics), distance="precomputed")
    res.info["method"] = f"random ranking (seed {seed})"
    return res


def frozen_imagenet_encoder(size: int = 128, device: str | torch.device = "cpu"):
    """``encode(images) -> features``: frozen ImageNet EfficientNet-Lite0, pooled 1,280-d.

    Grey images are replicated to three channels and resized to ``size``. Needs the
    ``sbirlib[imagenet]`` extra (raises :class:`~sbirlib.models.resnet.PretrainedWeightsError`
    without it).
    """
    from sbirlib.models import create_model

    net = create_model("efficientnet_lite0", pretrained=True).eval().to(device)

    @torch.no_grad()
    def encode(x: Tensor) -> Tensor:
        x = x.to(device)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return net(net.normalize(x))

    return encode


def category_references(sketch_ds: Dataset | Any, photo_ds: Dataset | Any, metrics: Sequence[str], *,
                        seeds: Sequence[int] = (0, 1, 2), imagenet: bool = True, imagenet_size: int = 128,
                        device: str | torch.device = "cpu", batch_size: int = 64) -> dict[str, dict[str, Any]]:
    """Reference rows for category-level / zero-shot SBIR on one split, through the one evaluator.

    Returns ``{row: {"metrics": {...}, "method": str}}`` with rows ``"random"`` (mean over
    ``seeds``; ``"metrics_std"`` holds the spread), ``"pixels"`` (blurred pixels, cosine) and,
    with ``imagenet``, ``"imagenet_frozen"`` (EfficientNet-Lite0 at ``imagenet_size`` px, cosine).
    ``sketch_ds`` / ``photo_ds`` (library datasets or banks, with ``.labels``) yield raw images
    in [0, 1] (no normalising transform).
    """
    from sbirlib.evaluation.retrieval import evaluate_category

    runs = [random_ranking(sketch_ds.labels, photo_ds.labels, metrics, seed) for seed in seeds]
    rows: dict[str, dict[str, Any]] = {"random": {
        "metrics": {m: float(np.mean([r[m] for r in runs])) for m in runs[0]},
        "metrics_std": {m: float(np.std([r[m] for r in runs])) for m in runs[0]},
        "method": f"random ranking, mean of seeds {list(seeds)}"}}

    def pixels(images: Tensor) -> Tensor:
        return blurred_pixel_features(images)

    res = evaluate_category(pixels, pixels, sketch_ds, photo_ds, metrics=tuple(metrics), distance="cosine",
                            batch_size=batch_size)
    rows["pixels"] = {"metrics": {k: float(v) for k, v in res.items()},
                      "method": "blurred pixels (sigma 6 px at 256, 8x8 pooling), cosine"}
    if imagenet:
        enc = frozen_imagenet_encoder(imagenet_size, device)
        res = evaluate_category(enc, enc, sketch_ds, photo_ds, metrics=tuple(metrics), distance="cosine",
                                batch_size=batch_size, device=device)
        rows["imagenet_frozen"] = {"metrics": {k: float(v) for k, v in res.items()},
                                   "method": f"frozen ImageNet EfficientNet-Lite0 at {imagenet_size} px, pooled, "
                                             "cosine (not the paper's backbone)"}
    return rows
