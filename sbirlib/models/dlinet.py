"""DLI-Net: Dual Local Interaction Network for fine-grained SBIR (Sun et al., TCSVT 2022).

Equation labels (L1)-(L5) are sbirlib's: (L1) is the paper's Eqs. (1)-(2), (L2)-(L3) its Eq. (3);
(L4)-(L5) follow the official code and the paper's Fig. 3. Each image is described by its mid-level
local features (a ResNet ``layer3`` map, every spatial vector L2-normalised on its own, Eq. L1).
The parameter-free *Self Interaction* module keeps the ``k·N`` locals that are least similar to all
the others (Eqs. L2–L3), and the *Cross Interaction* module scores a sketch–photo pair by matching
every kept sketch local to its nearest photo local and taking the L2 norm of these nearest
distances (Eqs. L4–L5). The distance is not a dot product of two fixed vectors, so retrieval needs
the whole query × gallery matrix of pair distances: :func:`pairwise_distance` computes it in blocks
on any device.

Building blocks (pure functions, usable on their own):

* :func:`local_l2_normalize` -- Eq. (L1);
* :func:`flatten_locals` -- ``[B, C, H, W] -> [B, N, C]``;
* :func:`self_interaction` -- Eqs. (L2)–(L3);
* :func:`cross_interaction` -- Eqs. (L4)–(L5) for aligned pairs, and
  :func:`cross_interaction_matrix` for every sketch against every photo;
* :func:`simple_match` / :func:`simple_match_matrix` -- the position-wise baseline;
* :func:`pairwise_distance` -- a whole query × gallery matrix, streamed in blocks.

The network is :class:`DLINet` (registered as ``dlinet``, ``dlinet_sketchy`` and the narrow
CPU variant ``dlinet_r18``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from sbirlib.models.registry import register_model

__all__ = [
    "local_l2_normalize",
    "flatten_locals",
    "num_kept",
    "self_interaction",
    "aggregate",
    "nearest_local_distances",
    "nearest_matches",
    "cross_interaction",
    "cross_interaction_matrix",
    "simple_match",
    "simple_match_matrix",
    "pairwise_distance",
    "LocalEncoder",
    "classification_loss",
    "DLINet",
    "dlinet",
    "dlinet_r18",
    "dlinet_sketchy",
]

EPS = 1e-12

FEATURES = ("mid", "high", "global")
MATCHINGS = ("cross", "position")
AGGREGATIONS = ("2norm", "1norm")
NORMS = ("local", "map")
ARCHS = ("resnet50", "resnet18", "resnet18_narrow", "resnet50_narrow")


def _check(value: str, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(map(repr, allowed))}; got {value!r}")
    return value


# --------------------------------------------------------------------------------------
# Equations
# --------------------------------------------------------------------------------------


def local_l2_normalize(fmap: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Eq. (L1): divide every spatial vector ``f(x, y)`` of ``fmap [B, C, H, W]`` by its L2 norm.

    The norm is clamped below at ``eps`` (as ``F.normalize`` does), so an all-zero location
    stays zero instead of producing NaNs.
    """
    return F.normalize(fmap, p=2.0, dim=1, eps=eps)


def flatten_locals(fmap: torch.Tensor) -> torch.Tensor:
    """``[B, C, H, W] -> [B, N, C]`` with ``N = H·W`` in row-major (y, x) order."""
    return fmap.flatten(2).transpose(1, 2)


def num_kept(n: int, keep_ratio: float) -> int:
    """``⌊k·N⌋``, the number of locals Self Interaction keeps (at least one)."""
    if not 0.0 < keep_ratio <= 1.0:
        raise ValueError(f"keep_ratio must be in (0, 1]; got {keep_ratio}")
    return max(1, int(math.floor(keep_ratio * n + 1e-9)))


def self_interaction(
    h: torch.Tensor, keep_ratio: float = 0.5, return_indices: bool = False
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Eqs. (L2)–(L3): keep the ``⌊k·N⌋`` locals least similar to all the others.

    ``h [B, N, C]`` holds L2-normalised locals. ``S = h hᵀ`` are their cosine similarities and
    ``r_n = Σ_m S_nm`` is how much local ``n`` resembles the rest of the image (background is
    repetitive, so it scores high). The locals with the *smallest* ``r_n`` are kept, re-sorted by
    position. The selection is a hard top-k: gradients reach the kept features, never the
    indices. ``keep_ratio=1.0`` returns ``h`` unchanged (Self Interaction off).

    Returns ``[B, K, C]`` (and the kept indices ``[B, K]`` when ``return_indices``).
    """
    b, n, c = h.shape
    k = num_kept(n, keep_ratio)
    if k == n:
        idx = torch.arange(n, device=h.device).expand(b, n)
        return (h, idx) if return_indices else h
    with torch.no_grad():
        # r = h (hᵀ 1) equals the row sums of h hᵀ without building the N×N matrix
        r = torch.bmm(h, h.sum(dim=1, keepdim=True).transpose(1, 2)).squeeze(-1)
        idx = torch.topk(r, k, dim=1, largest=False, sorted=False).indices
        idx = torch.sort(idx, dim=1).values
    kept = torch.gather(h, 1, idx.unsqueeze(-1).expand(b, k, c))
    return (kept, idx) if return_indices else kept


def aggregate(d: torch.Tensor, aggregation: str = "2norm") -> torch.Tensor:
    """Eq. (L5): combine the per-local nearest distances ``d [..., K]`` into one pair distance.

    ``"2norm"`` is ``(Σ_i d_i²)^½`` (the final setting), ``"1norm"`` is ``Σ_i d_i``.
    """
    _check(aggregation, AGGREGATIONS, "aggregation")
    if aggregation == "1norm":
        return d.sum(dim=-1)
    return d.pow(2).sum(dim=-1).clamp_min(EPS).sqrt()


def _sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances ``‖a_i − b_j‖²`` via ``‖a‖² + ‖b‖² − 2a·b``; broadcast batch."""
    a2 = a.pow(2).sum(-1, keepdim=True)
    b2 = b.pow(2).sum(-1).unsqueeze(-2)
    return (a2 + b2 - 2.0 * (a @ b.transpose(-1, -2))).clamp_min(0.0)


def nearest_local_distances(s: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Eq. (L4): ``d_i = min_j ‖ŝ_i − p̂_j‖₂`` for broadcastable ``s [..., Ks, C]``, ``p [..., Kp, C]``.

    The minimum is taken on squared distances and the root afterwards (the square root is
    monotone, so the argmin and the value are those of Eq. L4); the root is clamped at 1e-12
    so that an exact match does not give an infinite gradient. Returns ``[..., Ks]``.
    """
    return _sq_dists(s, p).min(dim=-1).values.clamp_min(EPS).sqrt()


def nearest_matches(s: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For each sketch local ``ŝ_i`` the index ``j*`` of its nearest photo local and ``d_i``.

    ``s [..., Ks, C]``, ``p [..., Kp, C]`` -> ``(indices [..., Ks], distances [..., Ks])``: the
    lines Cross Interaction draws between a sketch and a photo (Eq. L4).
    """
    d2 = _sq_dists(s, p)
    val, idx = d2.min(dim=-1)
    return idx, val.clamp_min(EPS).sqrt()


def cross_interaction(
    s: torch.Tensor, p: torch.Tensor, aggregation: str = "2norm", symmetric: bool = False
) -> torch.Tensor:
    """Eqs. (L4)–(L5) for aligned pairs: ``D(s_b, p_b)`` for ``s [B, Ks, C]``, ``p [B, Kp, C]``.

    ``D`` is asymmetric (sketch → photo): photo locals no sketch local chose are ignored.
    ``Ks`` and ``Kp`` may differ. ``symmetric=True`` returns ``½(D(s,p) + D(p,s))``, a variant
    that is *not* in the paper (an ablation). Returns ``[B]``.
    """
    dist = aggregate(nearest_local_distances(s, p), aggregation)
    if symmetric:
        dist = 0.5 * (dist + aggregate(nearest_local_distances(p, s), aggregation))
    return dist


def cross_interaction_matrix(
    s: torch.Tensor, p: torch.Tensor, aggregation: str = "2norm", symmetric: bool = False
) -> torch.Tensor:
    """``D(s_i, p_j)`` for every sketch ``s [Q, Ks, C]`` and photo ``p [G, Kp, C]``: ``[Q, G]``.

    This holds ``Q·G·Ks·Kp`` floats at once; for large galleries use
    :func:`pairwise_distance`, which streams blocks through this function.
    """
    return cross_interaction(s.unsqueeze(1), p.unsqueeze(0), aggregation, symmetric)


def simple_match(s: torch.Tensor, p: torch.Tensor, aggregation: str = "2norm") -> torch.Tensor:
    """Position-wise baseline (SimpleMatch, LA-Net style): ``‖(‖ŝ_n − p̂_n‖₂)_n‖``.

    Local ``n`` of the sketch is compared only with local ``n`` of the photo, so it needs
    ``Ks == Kp`` and no Self Interaction. ``s``, ``p``: ``[..., K, C]`` (broadcastable).
    """
    if s.shape[-2] != p.shape[-2]:
        raise ValueError(
            f"position-wise matching needs the same number of locals; got {s.shape[-2]} and "
            f"{p.shape[-2]} (use keep_ratio=1.0 and equal input sizes)"
        )
    d = (s - p).pow(2).sum(-1).clamp_min(EPS).sqrt()
    return aggregate(d, aggregation)


def simple_match_matrix(s: torch.Tensor, p: torch.Tensor, aggregation: str = "2norm") -> torch.Tensor:
    """Position-wise distances for every sketch ``[Q, K, C]`` against every photo ``[G, K, C]``."""
    return simple_match(s.unsqueeze(1), p.unsqueeze(0), aggregation)


def pairwise_distance(
    query: torch.Tensor,
    gallery: torch.Tensor,
    *,
    matching: str = "cross",
    aggregation: str = "2norm",
    symmetric: bool = False,
    query_block: int = 64,
    gallery_block: int = 32,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """The whole ``[Q, G]`` matrix of DLI distances, computed in blocks on ``device``.

    ``query [Q, Ks, C]`` and ``gallery [G, Kp, C]`` are kept locals (as returned by
    :meth:`DLINet.encode_sketch` / :meth:`DLINet.encode_photo`). The gallery is streamed in
    blocks of ``gallery_block`` photos (the official code used 32) and the queries in blocks of
    ``query_block``, so only a ``query_block × gallery_block × Ks × Kp`` intermediate exists
    at a time; the result is returned on the CPU. ``device=None`` uses the query's device.
    """
    _check(matching, MATCHINGS, "matching")
    dev = torch.device(device) if device is not None else query.device
    fn = cross_interaction_matrix if matching == "cross" else simple_match_matrix
    kwargs: dict[str, Any] = {"aggregation": aggregation}
    if matching == "cross":
        kwargs["symmetric"] = symmetric
    out = torch.empty(query.shape[0], gallery.shape[0], dtype=torch.float32)
    starts = range(0, query.shape[0], query_block)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="pairwise distances", leave=False)
    with torch.no_grad():
        gal_blocks = [
            (g0, gallery[g0 : g0 + gallery_block].to(dev))
            for g0 in range(0, gallery.shape[0], gallery_block)
        ]
        for q0 in starts:
            q = query[q0 : q0 + query_block].to(dev)
            for g0, g in gal_blocks:
                out[q0 : q0 + q.shape[0], g0 : g0 + g.shape[0]] = fn(q, g, **kwargs).float().cpu()
    return out


# --------------------------------------------------------------------------------------
# Encoders and the network
# --------------------------------------------------------------------------------------


def _resnet_module():
    from sbirlib.models import resnet

    return resnet


class LocalEncoder(nn.Module):
    """One branch of DLI-Net: a ResNet trunk read at ``layer3`` (``mid``) or ``layer4``.

    ``feature="mid"`` returns the ``layer3`` map, ``"high"`` the ``layer4`` map, ``"global"``
    the global-average-pooled ``layer4`` vector as a ``1 × 1`` map. With ``num_classes`` the full
    ResNet (``layer4`` + GAP + fc) is kept to produce classification logits (the Sketchy
    variant), and the local map is read at the requested tap on the way.
    """

    def __init__(
        self, arch: str = "resnet50", feature: str = "mid", num_classes: int | None = None,
        pretrained: bool = False,
    ) -> None:
        super().__init__()
        self.arch, self.feature = arch, _check(feature, FEATURES, "feature")
        self.num_classes = num_classes
        needs_layer4 = feature != "mid" or num_classes is not None
        self.trunk = getattr(_resnet_module(), _check(arch, ARCHS, "arch"))(pretrained=pretrained)
        if not needs_layer4:
            del self.trunk.layer4  # the QMUL models drop layer4, GAP and fc entirely
        self.trunk_depth4 = needs_layer4
        self.tap = "layer3" if feature == "mid" else "layer4"
        self.channels = self.trunk.channels[self.tap]
        self.fc = (
            nn.Linear(self.trunk.channels["layer4"], num_classes) if num_classes is not None
            else None
        )

    def extra_repr(self) -> str:
        return f"arch={self.arch!r}, feature={self.feature!r}, channels={self.channels}"

    def load_trunk_state(self, state: dict[str, torch.Tensor]) -> list[str]:
        """Copy a ResNet trunk's weights (torchvision names: ``conv1.weight``, ``layer3.1.bn2.bias``,
        ...) into this encoder's trunk; returns the names copied.

        Every tensor of the trunk must be in ``state`` with the same shape (a missing or
        mis-shaped one raises ``ValueError``). Extra entries are ignored only when this encoder
        has no such layer (``layer4`` of a ``mid`` encoder); the classification ``fc`` is never
        touched.
        """
        own = self.trunk.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise ValueError(f"the trunk state lacks {len(missing)} tensors of this encoder's "
                             f"{self.arch} trunk, e.g. {missing[:3]}")
        bad = [k for k in own if tuple(state[k].shape) != tuple(own[k].shape)]
        if bad:
            raise ValueError(f"shape mismatch for {bad[:3]}: state {[tuple(state[k].shape) for k in bad[:3]]}"
                             f" vs trunk {[tuple(own[k].shape) for k in bad[:3]]}")
        extra = [k for k in state if k not in own]
        if any(not k.startswith("layer4.") for k in extra):
            raise ValueError(f"the trunk state has tensors this {self.arch} trunk does not know, "
                             f"e.g. {[k for k in extra if not k.startswith('layer4.')][:3]}")
        self.trunk.load_state_dict({k: state[k] for k in own}, strict=True)
        return list(own)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``(feature map [B, C, H, W], logits [B, num_classes] or None)``."""
        taps = self.trunk.forward_taps(x, ("layer3", "layer4") if self.trunk_depth4 else ("layer3",))
        logits = None
        if self.fc is not None or self.feature == "global":
            pooled = taps["layer4"].mean(dim=(2, 3))
            if self.fc is not None:
                logits = self.fc(pooled)
        if self.feature == "mid":
            fmap = taps["layer3"]
        elif self.feature == "high":
            fmap = taps["layer4"]
        else:
            fmap = pooled[:, :, None, None]
        return fmap, logits


class DLINet(nn.Module):
    """DLI-Net: two independent local encoders + Self Interaction + Cross Interaction.

    Args:
        arch: trunk of both encoders, ``"resnet50"`` (paper) or ``"resnet18"`` (CPU variant).
        feature: ``"mid"`` (layer3 locals, the paper), ``"high"`` (layer4 locals) or
            ``"global"`` (layer4 + GAP; one 2048/512-d vector per image, Euclidean distance).
        keep_ratio: Self Interaction keep ratio ``k`` (``1.0`` switches SI off).
        matching: ``"cross"`` (Cross Interaction) or ``"position"`` (SimpleMatch baseline).
        aggregation: ``"2norm"`` (final setting) or ``"1norm"``.
        norm: ``"local"`` (Eq. L1, each spatial vector) or ``"map"`` (ablation: the whole
            flattened map L2-normalised as one vector).
        symmetric: use ``½(D(s,p) + D(p,s))`` (ablation, not in the paper).
        num_classes: add the Sketchy classification head (full ResNet + fc) to each encoder.
        pretrained: ImageNet-initialise the trunks (needs the weights in the torch cache).

    ``forward(sketch, photo)`` returns ``{"dist": [B, B] with dist[i, j] = D(s_i, p_j)}`` plus
    ``"logits_sketch"`` / ``"logits_photo"`` with a head. For retrieval use
    :meth:`encode_sketch`, :meth:`encode_photo` and :meth:`distance_matrix`.
    """

    def __init__(
        self, arch: str = "resnet50", feature: str = "mid", keep_ratio: float = 0.5,
        matching: str = "cross", aggregation: str = "2norm", norm: str = "local",
        symmetric: bool = False, num_classes: int | None = None, pretrained: bool = False,
    ) -> None:
        super().__init__()
        self.arch = arch
        self.feature = _check(feature, FEATURES, "feature")
        self.matching = _check(matching, MATCHINGS, "matching")
        self.aggregation = _check(aggregation, AGGREGATIONS, "aggregation")
        self.norm = _check(norm, NORMS, "norm")
        num_kept(4, keep_ratio)  # validates the ratio
        self.keep_ratio = float(keep_ratio) if feature != "global" else 1.0
        if matching == "position" and self.keep_ratio != 1.0:
            raise ValueError(
                "position-wise matching compares local n with local n, so it cannot follow Self "
                "Interaction; pass keep_ratio=1.0 with matching='position'"
            )
        self.symmetric = bool(symmetric)
        self.num_classes = num_classes
        self.sketch_encoder = LocalEncoder(arch, feature, num_classes, pretrained)
        self.photo_encoder = LocalEncoder(arch, feature, num_classes, pretrained)

    def load_trunk_state(self, state: dict[str, torch.Tensor]) -> list[str]:
        """Copy one pre-trained ResNet trunk into **both** encoders (independent copies).

        Used by the CPU profile, whose ResNet-18 trunk is pre-trained by sbirlib on TU-Berlin
        sketches (:mod:`sbirlib.recipes.pretrain`) instead of ImageNet. The two
        encoders start equal and are trained separately. Returns the names copied.
        """
        names = self.sketch_encoder.load_trunk_state(state)
        self.photo_encoder.load_trunk_state(state)
        return names

    def extra_repr(self) -> str:
        return (
            f"arch={self.arch!r}, feature={self.feature!r}, keep_ratio={self.keep_ratio}, "
            f"matching={self.matching!r}, aggregation={self.aggregation!r}, norm={self.norm!r}, "
            f"symmetric={self.symmetric}, num_classes={self.num_classes}"
        )

    def _locals(self, fmap: torch.Tensor, return_indices: bool):
        if self.norm == "local":
            h = flatten_locals(local_l2_normalize(fmap))
        else:
            h = flatten_locals(fmap)
            h = h / h.flatten(1).norm(dim=1).clamp_min(EPS)[:, None, None]
        return self_interaction(h, self.keep_ratio, return_indices=return_indices)

    def _encode(self, encoder: LocalEncoder, x: torch.Tensor, return_indices: bool = False):
        fmap, logits = encoder(x)
        out = self._locals(fmap, return_indices)
        return out, logits

    def encode_sketch(self, x: torch.Tensor, return_indices: bool = False):
        """Kept, normalised sketch locals ``[B, K, C]`` (and their indices if asked)."""
        return self._encode(self.sketch_encoder, x, return_indices)[0]

    def encode_photo(self, x: torch.Tensor, return_indices: bool = False):
        """Kept, normalised photo locals ``[B, K, C]`` (and their indices if asked)."""
        return self._encode(self.photo_encoder, x, return_indices)[0]

    def distance_matrix(self, sketch_locals: torch.Tensor, photo_locals: torch.Tensor) -> torch.Tensor:
        """``[Q, G]`` with entry ``D(s_i, p_j)``, differentiable (for a training batch)."""
        if self.matching == "position":
            return simple_match_matrix(sketch_locals, photo_locals, self.aggregation)
        return cross_interaction_matrix(
            sketch_locals, photo_locals, self.aggregation, self.symmetric
        )

    def pairwise_distance(self, sketch_locals: torch.Tensor, photo_locals: torch.Tensor, **kw: Any) -> torch.Tensor:
        """Blocked, no-grad :func:`pairwise_distance` with this model's matching settings."""
        return pairwise_distance(
            sketch_locals, photo_locals, matching=self.matching, aggregation=self.aggregation,
            symmetric=self.symmetric, **kw,
        )

    def forward(self, sketch: torch.Tensor, photo: torch.Tensor) -> dict[str, torch.Tensor]:
        s, logits_s = self._encode(self.sketch_encoder, sketch)
        p, logits_p = self._encode(self.photo_encoder, photo)
        out = {"dist": self.distance_matrix(s, p)}
        if self.num_classes is not None:
            out["logits_sketch"], out["logits_photo"] = logits_s, logits_p
        return out


def classification_loss(out: dict[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
    """Eq. (L8), left part: ``½(CE(c_p(p), y) + CE(c_s(s), y))`` of the Sketchy variant."""
    return 0.5 * (
        F.cross_entropy(out["logits_photo"], labels) + F.cross_entropy(out["logits_sketch"], labels)
    )


@register_model
def dlinet(**kwargs: Any) -> DLINet:
    """DLI-Net as in the paper: 2 × ResNet-50 to layer3, SI k=0.5, CI with 2norm (QMUL models)."""
    kwargs.setdefault("arch", "resnet50")
    return DLINet(**kwargs)


@register_model
def dlinet_r18(**kwargs: Any) -> DLINet:
    """Narrow CPU variant: 2 × ResNet-18 to layer3 (C = 256), otherwise unchanged."""
    kwargs.setdefault("arch", "resnet18")
    return DLINet(**kwargs)


@register_model
def dlinet_sketchy(num_classes: int = 125, **kwargs: Any) -> DLINet:
    """Sketchy variant: full ResNet-50 + fc per encoder, locals read at layer3 (Eq. L8)."""
    kwargs.setdefault("arch", "resnet50")
    return DLINet(num_classes=num_classes, **kwargs)
