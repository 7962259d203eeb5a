"""Pictures of the synthetic benchmark: class overviews, instance rows and a browser widget.

These render straight from the generator (no files), so they are cheap and show exactly what
the datasets contain for the same seed and difficulty.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sbirlib.data.edges import edge_map
from sbirlib.data.synthetic.render import Difficulty, render_photo, render_sketch, sample_instance
from sbirlib.data.synthetic.shapes import CLASS_NAMES

__all__ = ["instance_views", "plot_classes", "plot_instances", "plot_strokes", "browse"]


def _label(cls: str | int) -> int:
    if isinstance(cls, str):
        if cls not in CLASS_NAMES:
            raise ValueError(f"unknown synthetic class {cls!r}; known: {', '.join(CLASS_NAMES)}")
        return CLASS_NAMES.index(cls)
    return int(cls)


def instance_views(cls: str | int, index: int, n_sketches: int = 3, size: int = 64, seed: int = 0,
                   difficulty: Difficulty = Difficulty()) -> dict[str, Any]:
    """Photo, edge map and ``n_sketches`` sketches (uint8 arrays) of one instance, plus its attributes."""
    inst = sample_instance(_label(cls), index, seed)
    photo = render_photo(inst, size, seed, difficulty)
    edge = (edge_map(photo)[0].numpy() * 255).astype(np.uint8)
    sketches = [render_sketch(inst, k, size, seed, difficulty)[0] for k in range(n_sketches)]
    return {"photo": photo, "edge": edge, "sketches": sketches, "attributes": inst.attribute_dict(),
            "class": inst.class_name}


def _rgb(img: np.ndarray) -> np.ndarray:
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img


def _mosaic(rows: Sequence[Sequence[np.ndarray]], gap: int = 2) -> np.ndarray:
    """Tile equally sized images into one RGB array with white gaps (one imshow is fast)."""
    h, w = rows[0][0].shape[:2]
    ncols = max(len(r) for r in rows)
    out = np.full((len(rows) * (h + gap) - gap, ncols * (w + gap) - gap, 3), 255, dtype=np.uint8)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            out[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = _rgb(img)
    return out


def plot_instances(rows: Sequence[tuple[str | int, int]], n_sketches: int = 3, size: int = 64, seed: int = 0,
                   difficulty: Difficulty = Difficulty(), attributes: bool = True, tile: float = 1.1):
    """One row per ``(class, instance)``: photo | edge map | sketches; returns the figure."""
    import matplotlib.pyplot as plt

    views = [instance_views(cls, index, n_sketches, size, seed, difficulty) for cls, index in rows]
    grid = _mosaic([[v["photo"], v["edge"], *v["sketches"]] for v in views])
    ncols = 2 + n_sketches
    fig, ax = plt.subplots(figsize=(tile * ncols + (2.0 if attributes else 0.4), tile * len(rows) + 0.3))
    ax.imshow(grid)
    step = size + 2
    ax.set_xticks([step * c + size / 2 for c in range(ncols)],
                  ["photo", "edge map"] + [f"sketch {k}" for k in range(n_sketches)], fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks([step * r + size / 2 for r in range(len(rows))],
                  [f"{v['class']} #{index}" for v, (_, index) in zip(views, rows)], fontsize=8)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if attributes:
        for r, v in enumerate(views):
            text = "\n".join(f"{k}={val}" for k, val in v["attributes"].items())
            ax.text(step * ncols + 4, step * r + size / 2, text, fontsize=7, va="center")
    fig.tight_layout()
    return fig


def plot_classes(classes: Sequence[str | int] | None = None, index: int = 0, ncols: int = 12, size: int = 64,
                 seed: int = 0, tile: float = 0.95):
    """Every class once: a photo with one sketch beneath it; returns the figure."""
    import matplotlib.pyplot as plt

    labels = [_label(c) for c in (classes if classes is not None else range(len(CLASS_NAMES)))]
    blank = np.full((size, size), 255, dtype=np.uint8)
    rows: list[list[np.ndarray]] = []
    for b in range(0, len(labels), ncols):
        block = labels[b:b + ncols]
        insts = [sample_instance(label, index, seed) for label in block]
        pad = [blank] * (ncols - len(block))
        rows.append([render_photo(i, size, seed) for i in insts] + pad)
        rows.append([render_sketch(i, 0, size, seed)[0] for i in insts] + pad)
    fig, ax = plt.subplots(figsize=(tile * ncols, tile * len(rows) + 0.3))
    ax.imshow(_mosaic(rows, gap=12))
    for j, label in enumerate(labels):
        b, c = divmod(j, ncols)
        ax.text(c * (size + 12) + size / 2, 2 * b * (size + 12) - 3, CLASS_NAMES[label],
                fontsize=7, ha="center", va="bottom")
    ax.axis("off")
    fig.tight_layout(pad=0.3)
    return fig


def plot_strokes(strokes: np.ndarray, ax=None, size: int = 64):
    """Draw ``(x, y, pen_lift)`` strokes, one colour per stroke, numbered in drawing order."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(2.6, 2.6))
    ends = np.flatnonzero(strokes[:, 2] > 0.5)
    start = 0
    cmap = plt.get_cmap("viridis")
    for n, end in enumerate(ends):
        seg = strokes[start:end + 1]
        ax.plot(seg[:, 0], seg[:, 1], "-", color=cmap(n / max(1, len(ends) - 1)), lw=1.5)
        ax.text(seg[0, 0], seg[0, 1], str(n), fontsize=6)
        start = end + 1
    ax.set_xlim(0, size)
    ax.set_ylim(size, 0)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def browse(n_sketches: int = 3, size: int = 64, seed: int = 0) -> None:
    """An ipywidgets browser over classes, instances and difficulty knobs (wraps :func:`plot_instances`).

    Drawn with :func:`sbirlib.viz.interact_figure`, like every widget figure in the book.
    """
    import ipywidgets as widgets

    from sbirlib.viz import interact_figure

    def draw(cls: str = CLASS_NAMES[0], instance: int = 0, jitter: float = 1.0,
             abstraction: float = 1.0, clutter: float = 1.0):
        return plot_instances([(cls, instance)], n_sketches, size, seed,
                              Difficulty(jitter, abstraction, clutter), tile=1.6)

    knob = (0.0, 2.0, 0.25)
    # the built page pre-renders the classes (instance and knobs at their defaults; as many
    # classes as the frame budget allows): five controls on a grid would leave two values each
    interact_figure(draw, cls=widgets.Dropdown(options=list(CLASS_NAMES), description="class"),
                    instance=(0, 47), jitter=knob, abstraction=knob, clutter=knob,
                    static=("cls",), max_frames=len(CLASS_NAMES))
