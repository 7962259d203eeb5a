"""Rendering of synthetic instances: photos (RGB, shaded, textured, cluttered) and sketches.

Every random choice is drawn from ``numpy.random.default_rng([seed, class, instance, stream])``,
so one image never depends on how many others were generated or in which order.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from sbirlib.data.synthetic.shapes import ACCENT, BODY, DETAIL, N_CONTINUOUS, TEMPLATES, Part

__all__ = ["Difficulty", "Instance", "sample_instance", "render_photo", "render_sketch", "strokes_to_image"]

SUPERSAMPLE = 3  # sketches: draw at 3x and box-filter down (anti-aliasing without extra dependencies)
PHOTO_SUPERSAMPLE = 2  # photos: 2x is enough for filled shapes and costs less than half of 3x
PHOTO_STREAM, SKETCH_STREAM = 1000, 2000


@dataclass(frozen=True)
class Difficulty:
    """The difficulty knobs; 1.0 is the calibrated default, 0 switches an effect off.

    ``jitter`` scales the independent pose jitter of sketch and photo (shift, scale, rotation,
    shear); ``abstraction`` scales dropped parts, wobble, over/undershoot and simplification;
    ``clutter`` scales background distractors, texture and noise in photos.
    """

    jitter: float = 1.0
    abstraction: float = 1.0
    clutter: float = 1.0

    def __post_init__(self) -> None:
        for name in ("jitter", "abstraction", "clutter"):
            value = getattr(self, name)
            if not 0 <= value <= 3:
                raise ValueError(f"difficulty {name}={value} must lie in [0, 3]")


@dataclass
class Instance:
    """One object: its class, continuous proportions ``u`` and discrete attributes."""

    label: int
    index: int
    u: np.ndarray
    attributes: tuple[int, ...]
    parts: list[Part] = field(repr=False, default_factory=list)

    @property
    def class_name(self) -> str:
        return TEMPLATES[self.label].name

    def attribute_dict(self) -> dict[str, int]:
        return {name: int(v) for (name, _), v in zip(TEMPLATES[self.label].attributes, self.attributes)}


def sample_instance(label: int, index: int, seed: int = 0) -> Instance:
    """Draw instance ``index`` of class ``label``: proportions and fine-grained attributes."""
    template = TEMPLATES[label]
    rng = np.random.default_rng([seed, label, index, 0])
    u = rng.random(N_CONTINUOUS)
    attributes = tuple(int(rng.integers(k)) for _, k in template.attributes)
    parts = template.draw(u, attributes)
    return Instance(label, index, u, attributes, parts)


# -- geometry ------------------------------------------------------------------------------------
def _pose(rng: np.random.Generator, jitter: float) -> tuple[np.ndarray, np.ndarray]:
    """A random affine map (2x2 matrix, shift) in object coordinates."""
    scale = 0.78 * np.exp(rng.normal(0, 0.08 * jitter))
    rot = np.deg2rad(rng.normal(0, 8.0 * jitter))
    shear = rng.normal(0, 0.08 * jitter)
    aspect = np.exp(rng.normal(0, 0.06 * jitter))
    c, s = np.cos(rot), np.sin(rot)
    mat = scale * np.array([[c, -s], [s, c]]) @ np.array([[aspect, shear], [0, 1 / aspect]])
    shift = rng.normal(0, 0.07 * jitter, size=2)
    return mat, shift


def _to_pixels(points: np.ndarray, mat: np.ndarray, shift: np.ndarray, size: float) -> np.ndarray:
    p = points @ mat.T + shift
    return (p + 1.0) * 0.5 * size


@lru_cache(maxsize=8)
def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / np.float32(n - 1) - np.float32(0.5)
    yy.flags.writeable = False
    xx.flags.writeable = False
    return yy, xx


def _colour(rng: np.random.Generator, sat=(0.45, 0.9), val=(0.45, 0.95)) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(*sat), rng.uniform(*val)))


def _rgb255(c: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(round(float(x) * 255)) for x in np.clip(c, 0, 1))


# -- photos --------------------------------------------------------------------------------------
def render_photo(inst: Instance, size: int = 64, seed: int = 0, difficulty: Difficulty = Difficulty()) -> np.ndarray:
    """Render the photo of ``inst`` as ``uint8 [size, size, 3]``.

    Background: a two-colour linear gradient with low-contrast distractor shapes. Object:
    parts filled with a body and an accent colour, optional stripe/dot texture, Lambert-like
    shading from a random light direction, darker outlines.
    """
    rng = np.random.default_rng([seed, inst.label, inst.index, PHOTO_STREAM])
    ss = PHOTO_SUPERSAMPLE
    n = size * ss
    cl = difficulty.clutter
    # background gradient
    bg1, bg2 = _colour(rng, (0.05, 0.35), (0.55, 0.95)), _colour(rng, (0.05, 0.35), (0.55, 0.95))
    phi = rng.uniform(0, 2 * np.pi)
    yy, xx = _grid(n)
    t = np.clip(0.5 + xx * np.float32(np.cos(phi)) + yy * np.float32(np.sin(phi)), 0, 1)[..., None]
    bg = bg1.astype(np.float32) * (1 - t) + bg2.astype(np.float32) * t
    img = Image.fromarray((bg * 255 + 0.5).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(rng.poisson(5 * cl)):
        base = bg[rng.integers(n), rng.integers(n)]
        col = _rgb255(base + rng.normal(0, 0.09, 3) * min(cl, 1.5))
        cx, cy, r = rng.uniform(0, n, 2).tolist() + [rng.uniform(0.05, 0.25) * n]
        kind = rng.integers(3)
        if kind == 0:
            draw.ellipse([cx - r, cy - r * rng.uniform(0.4, 1), cx + r, cy + r], fill=col)
        elif kind == 1:
            draw.rectangle([cx - r, cy - r / 2, cx + r, cy + r / 2], fill=col)
        else:
            pts = rng.uniform(0, n, (3, 2))
            draw.line(pts.ravel().tolist(), fill=col, width=int(ss * rng.uniform(1, 3)))
    # object
    mat, shift = _pose(rng, difficulty.jitter)
    body, accent = _colour(rng), _colour(rng)
    dark = np.full(3, rng.uniform(0.05, 0.25))
    mask = Image.new("L", (n, n), 0)
    body_mask = Image.new("L", (n, n), 0)
    mdraw, bdraw = ImageDraw.Draw(mask), ImageDraw.Draw(body_mask)
    lw = max(1, int(round(1.2 * ss)))
    for part in inst.parts:
        pix = _to_pixels(part.points, mat, shift, n)
        pts = pix.ravel().tolist()
        if part.closed and len(pix) >= 3:
            fill = {BODY: body, ACCENT: accent, DETAIL: dark}[part.role]
            draw.polygon(pts, fill=_rgb255(fill), outline=_rgb255(fill * 0.55), width=lw)
            mdraw.polygon(pts, fill=255, outline=255, width=lw)
            if part.role == BODY:
                bdraw.polygon(pts, fill=255)
        else:
            col = dark if part.role == DETAIL else body * 0.7
            draw.line(pts, fill=_rgb255(col), width=2 * lw, joint="curve")
            mdraw.line(pts, fill=255, width=2 * lw, joint="curve")
    arr = np.asarray(img, dtype=np.float32) / np.float32(255.0)
    m = np.asarray(mask, dtype=np.float32)[..., None] / np.float32(255.0)
    bm = np.asarray(body_mask)[..., None] > 0
    # texture on the body: stripes, dots or none
    texture = rng.integers(3) if cl > 0 else 0
    if texture:
        # periodic patterns from products and a modulo only (exact IEEE arithmetic, so
        # the pixels do not depend on the platform's sin/cos implementation)
        freq = np.float32(rng.uniform(5, 11))
        ang = rng.uniform(0, np.pi)
        ca, sa = np.float32(np.cos(ang)), np.float32(np.sin(ang))
        pu = np.mod(freq * (xx * ca + yy * sa), np.float32(1.0))
        if texture == 1:
            pattern = (pu < 0.35)[..., None]
        else:
            pv = np.mod(freq * (yy * ca - xx * sa), np.float32(1.0))
            pattern = (((pu - 0.5) ** 2 + (pv - 0.5) ** 2) < 0.06)[..., None]
        arr = np.where(pattern & bm, arr * np.float32(1 - 0.3 * min(cl, 1.5)), arr)
    # shading: brightness falls off away from the light
    la = rng.uniform(0, 2 * np.pi)
    shade = 1 + np.float32(0.45) * (xx * np.float32(np.cos(la)) + yy * np.float32(np.sin(la)))
    arr = arr * (1 - m) + np.minimum(arr * shade[..., None], 1) * m
    out = Image.fromarray((np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8), "RGB")
    out = out.resize((size, size), Image.BOX)
    res = np.asarray(out, dtype=np.float32)
    if cl > 0:
        res = res + rng.normal(0, 3.0 * cl, res.shape).astype(np.float32)
    return np.clip(res + 0.5, 0, 255).astype(np.uint8)


# -- sketches ------------------------------------------------------------------------------------
def _smooth_noise(rng: np.random.Generator, m: int, scale: float) -> np.ndarray:
    """Low-frequency 2-D noise along a polyline of ``m`` points (linear between random knots)."""
    knots = max(2, m // 4 + 2)
    k = rng.normal(0, scale, (knots, 2))
    t = np.linspace(0, knots - 1, m)
    i = np.minimum(t.astype(int), knots - 2)
    w = (t - i)[:, None]
    return k[i] * (1 - w) + k[i + 1] * w


def _densify(points: np.ndarray, step: float) -> np.ndarray:
    """Resample a polyline so consecutive points are about ``step`` apart (keeps corners)."""
    seg = points[1:] - points[:-1]
    k = np.maximum(1, np.ceil(np.hypot(seg[:, 0], seg[:, 1]) / step).astype(int))
    idx = np.repeat(np.arange(len(seg)), k)
    j = np.arange(len(idx)) - np.repeat(np.cumsum(k) - k, k) + 1
    t = (j / k[idx])[:, None]
    return np.concatenate([points[:1], points[idx] + seg[idx] * t])


def sketch_strokes(inst: Instance, drawer: int, size: int = 64, seed: int = 0,
                   difficulty: Difficulty = Difficulty()) -> tuple[np.ndarray, float]:
    """The strokes of sketch ``drawer`` of ``inst`` in ``(x, y, pen_lift)`` format, and the pen width.

    ``x, y`` are absolute pixel coordinates in a ``size`` x ``size`` canvas; ``pen_lift = 1``
    marks the last point of a stroke (the pen leaves the paper after it).
    """
    rng = np.random.default_rng([seed, inst.label, inst.index, SKETCH_STREAM + drawer])
    ab = difficulty.abstraction
    mat, shift = _pose(rng, difficulty.jitter)
    p_drop = min(0.9, 0.35 * ab)
    width = rng.choice([1.0, 1.5, 2.0]) * size / 64
    strokes = []
    for j, part in enumerate(inst.parts):
        if part.minor and rng.random() < p_drop:
            continue
        if j > 0 and not part.minor and rng.random() < 0.04 * ab:
            continue
        pts = part.points
        if part.closed:
            pts = np.concatenate([pts, pts[:1]])
        # simplification: keep every k-th vertex of dense curves
        if len(pts) >= 12 and ab > 0:
            k = int(rng.integers(1, 2 + int(round(ab))))
            idx = np.unique(np.r_[np.arange(0, len(pts), k), len(pts) - 1])
            pts = pts[idx]
        pts = _densify(pts, 0.08)
        # over/undershoot: extend or shorten both ends along the tangent
        if len(pts) >= 2 and ab > 0:
            for end in (0, -1):
                nb = pts[1] if end == 0 else pts[-2]
                d = pts[end] - nb
                norm = np.linalg.norm(d)
                if norm > 1e-9:
                    pts[end] = pts[end] + d / norm * rng.normal(0.0, 0.06 * ab)
        pts = pts + _smooth_noise(rng, len(pts), 0.022 * ab)
        pix = _to_pixels(pts, mat, shift, size)
        # long closed outlines are sometimes drawn in two strokes
        if part.closed and len(pix) > 10 and rng.random() < 0.3 * ab:
            cut = int(rng.integers(3, len(pix) - 3))
            strokes += [pix[: cut + 1], pix[cut:]]
        else:
            strokes.append(pix)
    rows = []
    for s in strokes:
        lift = np.zeros((len(s), 1))
        lift[-1] = 1
        rows.append(np.concatenate([s, lift], 1))
    return np.concatenate(rows).astype(np.float32), float(width)


def strokes_to_image(strokes: np.ndarray, size: int = 64, width: float = 1.0) -> np.ndarray:
    """Rasterise ``(x, y, pen_lift)`` strokes as black on white, ``uint8 [size, size]``."""
    n = size * SUPERSAMPLE
    img = Image.new("L", (n, n), 255)
    draw = ImageDraw.Draw(img)
    lw = max(1, int(round(width * SUPERSAMPLE)))
    ends = np.flatnonzero(strokes[:, 2] > 0.5)
    start = 0
    for end in ends:
        pts = (strokes[start:end + 1, :2].astype(np.float64) * SUPERSAMPLE).ravel().tolist()
        if len(pts) == 2:
            pts = pts * 2
        draw.line(pts, fill=0, width=lw, joint="curve")
        start = end + 1
    return np.asarray(img.resize((size, size), Image.BOX), dtype=np.uint8)


def render_sketch(inst: Instance, drawer: int, size: int = 64, seed: int = 0,
                  difficulty: Difficulty = Difficulty()) -> tuple[np.ndarray, np.ndarray]:
    """Sketch ``drawer`` of ``inst``: ``(uint8 image [size, size], strokes [N, 3])``."""
    strokes, width = sketch_strokes(inst, drawer, size, seed, difficulty)
    return strokes_to_image(strokes, size, width), strokes
