"""The ten-view test of fine-grained SBIR ("Sketch Me That Shoe", DSSA).

From each uncropped image (256 px in the papers, 144 or 72 px in the CPU profiles) take five
``crop x crop`` views -- the centre and the four corners -- plus the horizontal flip of each.
Every view is embedded; view ``v`` of a sketch is compared with view ``v`` of a photo, giving
one distance matrix per view; the ten matrices are averaged and the average is ranked.

View order here is ``centre, top-left, top-right, bottom-left, bottom-right``, then the same
five flipped, so ``views=1`` is the single centre-crop test and ``views=10`` the full one.
Any model works: it only needs an ``encode_fn(images[B, C, crop, crop]) -> [B, D]`` and a
distance (squared Euclidean by default, or a callable such as DSSA's learned HOLEF ``D_W``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "VIEW_NAMES",
    "view_offsets",
    "crop_view",
    "ten_views",
    "multiview_embeddings",
    "multiview_distance",
    "multiview_fg_accuracy",
    "evaluate_fg_multiview",
]

VIEW_NAMES = (
    "centre", "top-left", "top-right", "bottom-left", "bottom-right",
    "centre-flip", "top-left-flip", "top-right-flip", "bottom-left-flip", "bottom-right-flip",
)

DistanceLike = str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def view_offsets(size: int | tuple[int, int], crop: int) -> list[tuple[int, int]]:
    """``(top, left)`` of the centre and the four corner crops of an image of ``size``.

    For 256 -> 225 this is (15, 15), (0, 0), (0, 31), (31, 0), (31, 31), the offsets of the
    official ``do_multiview_crop``; the centre offset is ``(size - crop) // 2``.
    """
    h, w = (size, size) if isinstance(size, int) else size
    if crop > h or crop > w:
        raise ValueError(f"crop {crop} is larger than the image ({h}x{w})")
    dh, dw = h - crop, w - crop
    return [(dh // 2, dw // 2), (0, 0), (0, dw), (dh, 0), (dh, dw)]


def crop_view(images: torch.Tensor, crop: int, view: int) -> torch.Tensor:
    """View number ``view`` (0-9, see :data:`VIEW_NAMES`) of a batch ``[N, C, H, W]``."""
    if not 0 <= view < 10:
        raise ValueError(f"view must be in 0..9, got {view}")
    top, left = view_offsets(tuple(images.shape[-2:]), crop)[view % 5]
    out = images[..., top : top + crop, left : left + crop]
    return out.flip(-1) if view >= 5 else out


def ten_views(images: torch.Tensor, crop: int, views: int = 10) -> torch.Tensor:
    """Stack the first ``views`` views of ``images [N, C, H, W]`` into ``[views, N, C, crop, crop]``."""
    _check_views(views)
    return torch.stack([crop_view(images, crop, v) for v in range(views)])


def _check_views(views: int) -> None:
    if views not in (1, 2, 5, 10):
        raise ValueError(
            f"views must be 1 (centre), 2 (centre + flip is not standard; use 1, 5 or 10), 5 or 10, got {views}"
        )


@torch.no_grad()
def multiview_embeddings(
    encode_fn: Callable[[torch.Tensor], torch.Tensor],
    data: Dataset | torch.Tensor,
    crop: int,
    *,
    views: int = 10,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> torch.Tensor:
    """Embed every view of every image: returns ``[views, N, D]`` (on the CPU).

    ``data`` is a tensor ``[N, C, H, W]`` of uncropped images or a dataset whose items hold
    them under ``"image"`` (the library's item format). ``encode_fn`` is called under
    ``torch.no_grad()`` on ``[B, C, crop, crop]`` batches already on ``device``; put the model
    in eval mode before calling.
    """
    _check_views(views)
    if isinstance(data, torch.Tensor):
        batches = data.split(batch_size)
    else:
        loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=0)
        batches = (b["image"] if isinstance(b, dict) else b[0] for b in loader)
    per_view: list[list[torch.Tensor]] = [[] for _ in range(views)]
    for images in batches:
        images = images.to(device)
        for v in range(views):
            per_view[v].append(encode_fn(crop_view(images, crop, v)).float().cpu())
    return torch.stack([torch.cat(chunks) for chunks in per_view])


def _pairwise(distance: DistanceLike) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if callable(distance):
        return distance
    if distance == "sqeuclidean":
        return lambda a, b: torch.cdist(a.double(), b.double()).pow(2)
    if distance == "euclidean":
        return lambda a, b: torch.cdist(a.double(), b.double())
    if distance == "cosine":
        return lambda a, b: 1.0 - torch.nn.functional.normalize(a.double(), dim=1) @ torch.nn.functional.normalize(
            b.double(), dim=1
        ).T
    raise ValueError(f"unknown distance {distance!r}; use 'sqeuclidean', 'euclidean', 'cosine' or a callable")


@torch.no_grad()
def multiview_distance(
    emb_sketch: torch.Tensor, emb_photo: torch.Tensor, distance: DistanceLike = "sqeuclidean"
) -> torch.Tensor:
    """Average over views of the per-view distance matrices (the ten-view distance): ``[Ns, Np]``.

    ``emb_sketch [V, Ns, D]`` and ``emb_photo [V, Np, D]`` come from
    :func:`multiview_embeddings`; view ``v`` of the sketches meets view ``v`` of the photos.
    ``distance`` is ``"sqeuclidean"`` (the official test), ``"euclidean"``, ``"cosine"`` or a
    callable ``(sketch [Ns, D], photo [Np, D]) -> [Ns, Np]`` such as a ``HOLEFDistance``.
    """
    if emb_sketch.dim() == 2:
        emb_sketch, emb_photo = emb_sketch[None], emb_photo[None]
    if emb_sketch.shape[0] != emb_photo.shape[0]:
        raise ValueError(f"sketch and photo have different numbers of views: {emb_sketch.shape[0]} vs {emb_photo.shape[0]}")
    fn = _pairwise(distance)
    total = None
    for v in range(emb_sketch.shape[0]):
        d = fn(emb_sketch[v], emb_photo[v]).double()
        total = d if total is None else total + d
    return total / emb_sketch.shape[0]


def evaluate_fg_multiview(
    encode_sketch: Callable[[torch.Tensor], torch.Tensor],
    encode_photo: Callable[[torch.Tensor], torch.Tensor],
    sketch_ds: Dataset,
    photo_ds: Dataset,
    crop: int,
    *,
    views: int = 10,
    distance: DistanceLike = "sqeuclidean",
    ks: Sequence[int] = (1, 10),
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    return_distance: bool = False,
):
    """Fine-grained acc@K with the ``views``-view averaged distance.

    The datasets yield *uncropped* images (see :func:`multiview_embeddings`) and expose
    ``.instances``; the gallery is the photos de-duplicated by instance
    (:func:`sbirlib.evaluation.retrieval.fg_gallery`) and the true match of each sketch is the
    photo with the same ``instance``. Ranks are pessimistic, through
    :func:`sbirlib.evaluation.fg_accuracy` on the averaged distance matrix. Returns the metric
    dict (``{"acc@1": ..., "acc@10": ...}``), plus the distance matrix if ``return_distance``.
    """
    emb_s = multiview_embeddings(encode_sketch, sketch_ds, crop, views=views, batch_size=batch_size, device=device)
    emb_p = multiview_embeddings(encode_photo, photo_ds, crop, views=views, batch_size=batch_size, device=device)
    metrics, dist = multiview_fg_accuracy(emb_s, emb_p, list(sketch_ds.instances), list(photo_ds.instances),
                                          distance=distance, ks=ks)
    return (metrics, dist) if return_distance else metrics


def multiview_fg_accuracy(
    emb_sketch: torch.Tensor,
    emb_photo: torch.Tensor,
    sketch_instances: Sequence[int],
    photo_instances: Sequence[int],
    *,
    views: int | None = None,
    distance: DistanceLike = "sqeuclidean",
    ks: Sequence[int] = (1, 10),
):
    """acc@K from precomputed view embeddings ``[V, N, D]``; returns ``(metrics, distance matrix)``.

    ``views`` uses only the first ``views`` of the ``V`` views (``1`` = centre crop), so one
    embedding pass serves the 10-view and the single-view test, and any number of distances.
    The gallery is de-duplicated by instance; ranks are pessimistic.
    """
    from sbirlib.evaluation.metrics import fg_accuracy
    from sbirlib.evaluation.retrieval import fg_gallery

    if views is not None:
        _check_views(views)
        if views > emb_sketch.shape[0]:
            raise ValueError(f"asked for {views} views but the embeddings hold {emb_sketch.shape[0]}")
        emb_sketch, emb_photo = emb_sketch[:views], emb_photo[:views]
    if callable(distance) and isinstance(distance, torch.nn.Module):
        distance = _on_cpu(distance)
    dist = multiview_distance(emb_sketch, emb_photo, distance)
    keep, positives = fg_gallery(list(sketch_instances), list(photo_instances))
    dist = dist[:, torch.as_tensor(keep)]
    return fg_accuracy(dist, None, positives, ks=tuple(ks), distance="precomputed"), dist


def _on_cpu(module: torch.nn.Module) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def fn(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        p = next(module.parameters(), None)
        if p is not None:
            a, b = a.to(p.device, p.dtype), b.to(p.device, p.dtype)
        return module(a, b).cpu()

    return fn
