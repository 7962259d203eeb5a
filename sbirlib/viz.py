"""Plots every chapter shares, plus thin ipywidgets wrappers around them.

Static functions (always render, also in the built book):

* :func:`plot_history` -- training loss and validation metrics per epoch of a
  :class:`sbirlib.training.History`;
* :func:`image_grid` -- a grid of image tensors with optional titles;
* :func:`show_pairs` -- sketches on top, their photos (or edge maps) below;
* :func:`show_retrievals` -- each query followed by its top-k gallery images, the true match
  framed in green, wrong retrievals in grey, and the true match's rank in the title.

Widgets: :func:`interact_figure` is the one way a widget draws a figure in this project:
controls above an ``ipywidgets.Image`` holding the figure as PNG bytes. The wrappers
:func:`interactive_retrievals` and :func:`interactive_grid` call the static functions through
it and return ``None``, so a widget cell never echoes an object.
Images can be tensors ``[C, H, W]`` / ``[H, W]`` or NumPy arrays, in [0, 1] or any range
(anything outside [0, 1] is min-max scaled per image for display).
"""

from __future__ import annotations

import inspect
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

if TYPE_CHECKING:
    import ipywidgets

__all__ = [
    "to_display",
    "plot_history",
    "image_grid",
    "show_pairs",
    "rank_gallery",
    "show_retrievals",
    "interact_figure",
    "interactive_retrievals",
    "interactive_grid",
]


def to_display(image: Any) -> np.ndarray:
    """An image as a float ``[H, W]`` or ``[H, W, 3]`` array in [0, 1] for ``imshow``."""
    if isinstance(image, dict):
        image = image["image"]
    if isinstance(image, torch.Tensor):
        image = image.detach().float().cpu().numpy()
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[0] in (1, 3) and arr.shape[-1] not in (1, 3):
        arr = np.moveaxis(arr, 0, -1)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    lo, hi = float(arr.min()), float(arr.max())
    if lo < 0.0 or hi > 1.0:
        arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
    return arr


def _imshow(ax: Any, image: Any, title: str | None = None, frame: str | None = None) -> None:
    arr = to_display(image)
    ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None, vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
    for spine in ax.spines.values():
        spine.set_visible(frame is not None)
        if frame is not None:
            spine.set_edgecolor(frame)
            spine.set_linewidth(3)


def plot_history(history: Any, metrics: Iterable[str] | None = None, axes: Any = None) -> Any:
    """Training loss (left) and validation metrics (right) per epoch; returns the figure.

    ``history`` is a :class:`sbirlib.training.History` (or anything with ``train_loss`` and
    ``val``). ``metrics`` defaults to every validation metric recorded. A dashed line marks the
    best epoch.
    """
    val = list(getattr(history, "val", []) or [])
    names = list(metrics) if metrics is not None else (sorted(val[0]) if val else [])
    if axes is None:
        ncols = 2 if names else 1
        fig, axes = plt.subplots(1, ncols, figsize=(4.5 * ncols, 3.2), squeeze=False)
        axes = axes[0]
    else:
        axes = np.atleast_1d(axes)
        fig = axes[0].figure
    loss = list(history.train_loss)
    epochs = np.arange(1, len(loss) + 1)
    axes[0].plot(epochs, loss, marker="o", ms=3)
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("training loss")
    best = getattr(history, "best_epoch", None)
    if names and len(axes) > 1:
        for name in names:
            axes[1].plot(np.arange(1, len(val) + 1), [row.get(name, np.nan) for row in val],
                         marker="o", ms=3, label=name)
        axes[1].set_xlabel("epoch")
        axes[1].set_ylabel("validation")
        axes[1].legend(fontsize=8)
    for ax in axes:
        if best is not None and len(loss) > 1:
            ax.axvline(best, color="grey", ls="--", lw=0.8)
    fig.tight_layout()
    return fig


def image_grid(images: Sequence[Any] | torch.Tensor, ncols: int = 8, titles: Sequence[str] | None = None,
               size: float = 1.3, suptitle: str | None = None) -> Any:
    """Show ``images`` in a grid with ``ncols`` columns; returns the figure."""
    n = len(images)
    if n == 0:
        raise ValueError("image_grid got no images")
    ncols = min(ncols, n)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.3), squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i < n:
            _imshow(ax, images[i], titles[i] if titles else None)
        else:
            ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def show_pairs(sketches: Sequence[Any], photos: Sequence[Any], n: int = 8,
               labels: Sequence[str] = ("sketch", "photo"), size: float = 1.3) -> Any:
    """Two rows: ``n`` sketches above their paired photos (or edge maps); returns the figure."""
    n = min(n, len(sketches), len(photos))
    fig, axes = plt.subplots(2, n, figsize=(size * n, size * 2 + 0.2), squeeze=False)
    for i in range(n):
        _imshow(axes[0, i], sketches[i])
        _imshow(axes[1, i], photos[i])
    axes[0, 0].set_ylabel(labels[0], fontsize=9)
    axes[1, 0].set_ylabel(labels[1], fontsize=9)
    fig.tight_layout()
    return fig


def rank_gallery(dist: torch.Tensor | np.ndarray) -> np.ndarray:
    """Gallery indices sorted by increasing distance, one row per query (stable sort)."""
    d = dist.detach().cpu().numpy() if isinstance(dist, torch.Tensor) else np.asarray(dist)
    return np.argsort(d, axis=1, kind="stable")


def _as_positive_fn(positives: Any) -> Callable[[int, int], bool]:
    if callable(positives):
        return positives
    if isinstance(positives, torch.Tensor):
        positives = positives.cpu().numpy()
    arr = np.asarray(positives)
    if arr.ndim == 2:  # boolean matrix [queries, gallery]
        return lambda q, g: bool(arr[q, g])
    return lambda q, g: int(arr[q]) == g  # one true gallery index per query


def show_retrievals(
    queries: Sequence[Any],
    gallery: Sequence[Any],
    dist: torch.Tensor | np.ndarray,
    positives: Any,
    k: int = 5,
    query_ids: Sequence[int] | None = None,
    n_queries: int = 4,
    size: float = 1.2,
    title: str | None = None,
) -> Any:
    """A row per query: the query, then its ``k`` nearest gallery images.

    Args:
        queries / gallery: images (tensors, arrays or dataset items) indexable by position.
        dist: ``[num_queries, num_gallery]`` distances (smaller = closer).
        positives: the true match(es): a vector of one gallery index per query
            (fine-grained), a boolean ``[Q, G]`` matrix (category-level), or ``f(q, g) -> bool``.
        k: how many gallery images to show per query.
        query_ids: which queries to show (default: the first ``n_queries``).

    Correct retrievals get a green frame, wrong ones grey; each row's title gives the rank of
    the first correct gallery item (pessimistic ties are not needed for display).
    """
    is_pos = _as_positive_fn(positives)
    order = rank_gallery(dist)
    ids = list(query_ids) if query_ids is not None else list(range(min(n_queries, len(order))))
    fig, axes = plt.subplots(len(ids), k + 1, figsize=(size * (k + 1.3), size * len(ids) + 0.4),
                             squeeze=False)
    for row, q in enumerate(ids):
        first = next((r + 1 for r, g in enumerate(order[q]) if is_pos(q, int(g))), None)
        _imshow(axes[row, 0], queries[q], f"query {q}\nmatch @{first}", frame="black")
        for col in range(k):
            g = int(order[q][col])
            ok = is_pos(q, g)
            _imshow(axes[row, col + 1], gallery[g], f"#{col + 1}" + (" ✓" if ok else ""),
                    frame="tab:green" if ok else "lightgrey")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _control(name: str, abbrev: Any, default: Any) -> Any:
    """The widget for one keyword of :func:`interact_figure` (abbreviations as ``interact``)."""
    import ipywidgets as widgets

    if isinstance(abbrev, widgets.ValueWidget):
        return abbrev
    control = widgets.interactive.widget_from_abbrev(abbrev, default)
    if not isinstance(control, widgets.ValueWidget):
        raise ValueError(f"interact_figure: cannot make a control from {name}={abbrev!r}; pass a "
                         "widget, (lo, hi), (lo, hi, step), a list of options or a bool "
                         "(bind fixed arguments with functools.partial)")
    control.description = control.description or name
    if "continuous_update" in control.trait_names():
        control.continuous_update = False
    return control


def interact_figure(draw: Callable[..., Figure], *, max_frames: int | None = None,
                    static: Sequence[str] | None = None, **controls: Any) -> ipywidgets.VBox:
    """Display controls above a picture that ``draw(**values)`` redraws; returns the widget.

    ``draw`` takes the controls' values as keyword arguments and returns a **new** figure (as
    the static functions in this module do; it must not call ``plt.show()``). The figure is
    rendered to PNG bytes in an ``ipywidgets.Image`` and closed, so nothing reaches the
    inline backend; every change of a control's value redraws it.

    Each keyword is a control: an ipywidgets widget (used as given), or an ``interact``
    abbreviation: ``(lo, hi)`` or ``(lo, hi, step)`` for a slider, a list of options for a
    dropdown, a bool for a checkbox. A control built from an abbreviation starts at
    ``draw``'s default for that argument, is labelled with its name and reports only when
    released (``continuous_update=False``), since each redraw renders a whole figure.

    The widget is displayed with a kernel-free HTML fallback (see :mod:`sbirlib.frames`): with
    ``SBIR_STATIC_WIDGETS=1`` (the book build) the figure is pre-rendered on a grid of at most
    ``max_frames`` control values (default :data:`sbirlib.frames.MAX_FRAMES`) and the page's
    controls swap those frames; a kernel shows the live widget. ``static`` names the controls
    the page varies (default: all); the others stay at their starting values there, shown as
    text -- spend the frames where a reader learns most.

    Returns the displayed ``VBox([HBox(controls), Image])``: end the cell with ``;``.

    We do not draw into an ``Output`` widget, as ``ipywidgets.interact`` does: executed by
    papermill (nbclient), such cells intermittently stalled until the cell timeout
    (jupyter/nbclient#312).
    """
    import ipywidgets as widgets
    from IPython.display import display

    params = inspect.signature(draw).parameters
    controls = {name: _control(name, abbrev, params[name].default if name in params
                               else inspect.Parameter.empty)
                for name, abbrev in controls.items()}
    picture = widgets.Image(format="png")

    def png(values: Mapping[str, Any]) -> bytes:
        fig = draw(**values)
        if not isinstance(fig, Figure):
            raise TypeError(f"interact_figure: draw must return a matplotlib Figure, got "
                            f"{type(fig).__name__} (return the figure instead of calling plt.show())")
        buf = io.BytesIO()
        try:
            fig.savefig(buf, format="png", bbox_inches="tight")
        finally:
            plt.close(fig)
        return buf.getvalue()

    def redraw(*_: Any) -> None:
        picture.value = png({name: control.value for name, control in controls.items()})

    for control in controls.values():
        control.observe(redraw, names="value")
    redraw()
    box = widgets.VBox([widgets.HBox(list(controls.values()),
                                     layout=widgets.Layout(flex_flow="row wrap")), picture])
    bundle = dict(box._repr_mimebundle_() or {})
    varied = controls if static is None else {n: c for n, c in controls.items() if n in static}
    unknown = set(static or ()) - set(controls)
    if unknown:
        raise ValueError(f"interact_figure: static names unknown controls {sorted(unknown)}")
    bundle["text/html"] = _static_fallback(png, controls, varied, bytes(picture.value), max_frames)
    display(bundle, raw=True)
    return box


def _static_fallback(png: Callable[[Mapping[str, Any]], bytes], controls: Mapping[str, Any],
                     varied: Mapping[str, Any], current: bytes, max_frames: int | None) -> str:
    """The HTML a page without a kernel shows for an :func:`interact_figure` widget."""
    from sbirlib import frames as static

    specs = [static.static_control(name, c) if name in varied else None
             for name, c in controls.items()]
    fixed = {c.description or name: _label(c) for (name, c), s in zip(controls.items(), specs)
             if s is None}
    specs = [s for s in specs if s is not None]
    if not static.static_enabled() or not specs:
        for s in specs:
            s.keep = [s.default]
        point = tuple(s.default for s in specs)
        return static.static_html(specs, {point: current}, fixed)
    others = {name: c.value for (name, c) in controls.items()
              if name not in {s.name for s in specs}}
    frames = static.fit_frames(lambda values: png({**others, **values}), specs, current,
                               max_frames or static.MAX_FRAMES)
    return static.static_html(specs, frames, fixed)


def _label(control: Any) -> str:
    """A control's current value as a reader would name it (an option's label, not its value)."""
    labels, values = getattr(control, "_options_labels", None), getattr(control, "_options_values", None)
    if labels is not None and values is not None and control.value in values:
        return str(labels[list(values).index(control.value)])
    return f"{control.value:.4g}" if isinstance(control.value, float) else str(control.value)


def interactive_retrievals(queries: Sequence[Any], gallery: Sequence[Any], dist: Any, positives: Any,
                           k: int = 5, **kwargs: Any) -> None:
    """A slider over query indices that redraws :func:`show_retrievals` for one query."""
    n = len(rank_gallery(dist))

    def draw(query: int = 0) -> Figure:
        return show_retrievals(queries, gallery, dist, positives, k=k, query_ids=[query], **kwargs)

    interact_figure(draw, query=(0, n - 1))


def interactive_grid(images: Sequence[Any], page_size: int = 16, **kwargs: Any) -> None:
    """A slider paging through ``images`` with :func:`image_grid`."""
    pages = max(1, (len(images) + page_size - 1) // page_size)

    def draw(page: int = 0) -> Figure:
        start = page * page_size
        return image_grid(images[start:start + page_size], **kwargs)

    interact_figure(draw, page=(0, pages - 1))
