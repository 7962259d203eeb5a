"""Kernel-free widgets: pre-rendered frames of an :func:`sbirlib.viz.interact_figure` figure.

A page of the built book has no kernel behind it, so a live ipywidgets control cannot redraw
its picture: the slider moves and the figure stays where it was executed. To keep the page
honest, :func:`sbirlib.viz.interact_figure` renders its figure once per point of a bounded
grid of control values at execution time, and displays, next to the live widget, an HTML
fallback that carries those frames and a few lines of JavaScript that swap them. The book's
HTML builder is told to prefer that fallback (``nb_mime_priority_overrides`` in
``_config.yml``); JupyterLab and Colab keep showing the live widget.

How the grid is chosen (:func:`plan_grid`):

* each control contributes its full list of values (every slider step, every option, both
  states of a checkbox; for a multiple selection: the default selection, each option alone
  and all options);
* the frame budget is ``max_frames`` (36), fewer where the executed frame is large
  (:func:`frame_budget`, enforced on the rendered frames by :func:`fit_frames`: about
  2.2 MB of frames a widget);
* while the grid has more than that many points, the control with the most values is
  thinned to about half of them, evenly spaced over its whole range, always keeping the
  control's starting value (which may stand in for the nearest end);
* the static controls then move only between rendered values ("snapping"): a slider steps
  through the rendered values, a drop-down lists them.

Frames are rendered only when ``SBIR_STATIC_WIDGETS=1`` (``tools/run_chapters.py`` sets it
for the book build), since a reader with a kernel never sees them; otherwise the fallback is
the single executed frame with a note. Identical frames are stored once, and a control that
changes no frame anywhere on the grid is shown as fixed text, never as a dead control.
"""

from __future__ import annotations

import base64
import hashlib
import html
import itertools
import json
import math
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["STATIC_ENV", "MAX_FRAMES", "MAX_WIDGET_BYTES", "frame_budget", "StaticControl", "static_control", "plan_grid",
           "fit_frames", "static_html", "static_enabled"]

STATIC_ENV = "SBIR_STATIC_WIDGETS"
# at most 36 frames, and at most about 2.2 MB of them (base64) a widget, so that a page with
# two widgets stays under the 5 MB it may add; tests/test_book_output.py checks every page
MAX_FRAMES = 36
MAX_WIDGET_BYTES = 2_200_000


def frame_budget(frame_bytes: int, max_frames: int = MAX_FRAMES) -> int:
    """How many frames of about ``frame_bytes`` (one PNG) a widget may embed (at least 2)."""
    per_frame = max(1, frame_bytes * 4 // 3)  # base64
    return max(2, min(max_frames, MAX_WIDGET_BYTES // per_frame))


def static_enabled() -> bool:
    """Whether this kernel pre-renders widget frames (``SBIR_STATIC_WIDGETS=1``)."""
    return os.environ.get(STATIC_ENV, "") not in ("", "0", "false", "False")


@dataclass
class StaticControl:
    """One control of a static widget: its name, the values it can take and how to show them.

    ``kind`` is ``"range"`` (a slider over the value list), ``"select"`` (a drop-down) or
    ``"checkbox"`` (values ``[False, True]``). ``values[default]`` is the live control's
    starting value.
    """

    name: str
    label: str
    kind: str
    values: list[Any]
    labels: list[str]
    default: int = 0
    keep: list[int] = field(default_factory=list)  # indices into values, set by plan_grid

    def __repr__(self) -> str:
        return (f"StaticControl({self.name!r}, kind={self.kind!r}, {len(self.values)} values, "
                f"{len(self.keep) or len(self.values)} rendered)")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (tuple, list)):
        return ", ".join(_fmt(v) for v in value) or "(none)"
    return str(value)


def _index_of(values: Sequence[Any], value: Any) -> int:
    for i, v in enumerate(values):
        if v == value:
            return i
    if isinstance(value, (int, float)) and values and all(isinstance(v, (int, float)) for v in values):
        return min(range(len(values)), key=lambda i: abs(values[i] - value))
    return 0


def static_control(name: str, control: Any) -> StaticControl | None:
    """The :class:`StaticControl` of an ipywidgets control, or ``None`` if it has no value list.

    Sliders (int and float), drop-downs, radio buttons, toggle buttons, selections, checkboxes
    and multiple selections are supported; a free-form control (text, colour, ...) has no
    bounded set of values and is left out of the static page.
    """
    import ipywidgets as widgets

    label = control.description or name
    value = control.value
    if isinstance(control, (widgets.IntSlider, widgets.FloatSlider, widgets.BoundedIntText,
                            widgets.BoundedFloatText)):
        lo, hi = control.min, control.max
        step = control.step or 1
        n = int(math.floor((hi - lo) / step + 1e-9)) + 1
        if isinstance(control, (widgets.IntSlider, widgets.BoundedIntText)):
            values: list[Any] = [int(lo + i * step) for i in range(n)]
        else:
            digits = max(0, -int(math.floor(math.log10(step)))) + 2 if step < 1 else 6
            values = [round(lo + i * step, digits) for i in range(n)]
        return StaticControl(name, label, "range", values, [_fmt(v) for v in values],
                             _index_of(values, value))
    if isinstance(control, widgets.Checkbox) or isinstance(control, widgets.ToggleButton):
        return StaticControl(name, label, "checkbox", [False, True], ["off", "on"], int(bool(value)))
    if isinstance(control, widgets.SelectMultiple):
        opts = list(control._options_values)
        labels = list(control._options_labels)
        subsets: list[tuple] = [tuple(value)]
        subsets += [(o,) for o in opts] + [tuple(opts)]
        unique: list[tuple] = []
        for s in subsets:
            if s not in unique:
                unique.append(s)
        names = {o: lab for o, lab in zip(opts, labels)}
        return StaticControl(name, label, "select", unique,
                             [", ".join(names[o] for o in s) or "(none)" for s in unique], 0)
    if hasattr(control, "_options_values"):  # Dropdown, RadioButtons, ToggleButtons, Select...
        values = list(control._options_values)
        return StaticControl(name, label, "select", values, list(control._options_labels),
                             _index_of(values, value))
    return None


def _pick(n: int, m: int, default: int) -> list[int]:
    """``m`` of the indices ``0..n-1``, evenly spaced end to end, one of them moved to ``default``."""
    if m >= n:
        return list(range(n))
    if m <= 1:
        return [default]
    picks = sorted({round(i * (n - 1) / (m - 1)) for i in range(m)})
    if default not in picks:
        nearest = min(range(len(picks)), key=lambda j: abs(picks[j] - default))
        picks[nearest] = default
    return sorted(set(picks))


def plan_grid(controls: Sequence[StaticControl], max_frames: int = MAX_FRAMES) -> None:
    """Choose the rendered values of each control (``control.keep``) so the grid fits.

    The grid is the Cartesian product of the kept values. While it has more than
    ``max_frames`` points, the control with the most kept values is thinned to about half,
    evenly spaced over its whole range with the default among them. A control thinned to
    one value keeps its default and is shown as fixed text.
    """
    counts = [len(c.values) for c in controls]
    while math.prod(counts) > max_frames and max(counts) > 1:
        widest = counts.index(max(counts))
        counts[widest] = max(1, math.ceil(counts[widest] / 2)) if counts[widest] > 2 else 1
    for c, m in zip(controls, counts):
        c.keep = _pick(len(c.values), m, c.default)


def fit_frames(draw_png: Callable[[Mapping[str, Any]], bytes], controls: Sequence[StaticControl],
               first_frame: bytes, max_frames: int = MAX_FRAMES) -> dict[tuple[int, ...], bytes]:
    """Plan and render the grid so its distinct frames weigh at most :data:`MAX_WIDGET_BYTES`.

    The first plan guesses from ``first_frame`` (the executed one); frames elsewhere in the grid
    can be larger (a busier figure compresses worse), so the rendered weight is measured and the
    grid thinned from the largest frame seen until it fits. Frames already drawn are reused.
    """
    drawn: dict[tuple[int, ...], bytes] = {}

    def memo(point: tuple[int, ...]) -> bytes:
        if point not in drawn:
            drawn[point] = draw_png({c.name: c.values[i] for c, i in zip(controls, point)})
        return drawn[point]

    budget = frame_budget(len(first_frame), max_frames)
    while True:
        plan_grid(controls, budget)
        frames = {point: memo(point) for point in itertools.product(*(c.keep for c in controls))}
        weight = sum(len(f) for f in {_sha(f): f for f in frames.values()}.values()) * 4 // 3
        if weight <= MAX_WIDGET_BYTES or budget <= 2 or len(frames) <= 2:
            return frames
        largest = max(len(f) for f in frames.values())
        budget = max(2, min(len(frames) - 1, frame_budget(largest, max_frames)))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_SCRIPT = """
(function () {
  var root = document.getElementById("%(id)s");
  var data = JSON.parse(root.querySelector("script.sbir-frames-data").textContent);
  var img = root.querySelector("img.sbir-frame");
  var inputs = Array.prototype.slice.call(root.querySelectorAll("[data-sbir-control]"));
  function position(el) {
    if (el.type === "checkbox") { return el.checked ? el.dataset.on : el.dataset.off; }
    var keep = JSON.parse(el.dataset.keep);
    return String(el.tagName === "SELECT" ? el.value : keep[parseInt(el.value, 10)]);
  }
  function update() {
    var key = inputs.map(position).join(",");
    var frame = data.index[key];
    if (frame === undefined) { return; }
    img.src = "data:image/png;base64," + data.frames[frame];
    img.dataset.key = key;
    img.dataset.sha256 = data.sha256[frame];
    inputs.forEach(function (el) {
      var out = root.querySelector('output[data-for="' + el.id + '"]');
      if (out) { out.textContent = data.labels[el.dataset.sbirControl][position(el)]; }
    });
  }
  inputs.forEach(function (el) {
    el.addEventListener("input", update);
    el.addEventListener("change", update);
  });
})();
"""


def static_html(controls: Sequence[StaticControl], frames: Mapping[tuple[int, ...], bytes],
                fixed: Mapping[str, str] | None = None) -> str:
    """The kernel-free widget: the frames, one HTML control per varying control, a swap script.

    The frame of each grid point is stored once (identical frames share one entry); the data
    block also carries each frame's SHA-256 so a browser test can check that moving a control
    shows the frame the kernel drew for that value.
    """
    uid = "sbir-frames-" + uuid.uuid4().hex[:12]
    varying = [i for i, c in enumerate(controls) if _changes_frames(i, controls, frames)]
    fixed = dict(fixed or {})
    for i, c in enumerate(controls):
        if i not in varying:
            fixed[c.label] = c.labels[c.default]
    store: list[str] = []
    shas: list[str] = []
    by_sha: dict[str, int] = {}
    index: dict[str, int] = {}
    for point, png in frames.items():
        sha = _sha(png)
        if sha not in by_sha:
            by_sha[sha] = len(store)
            store.append(base64.b64encode(png).decode("ascii"))
            shas.append(sha)
        index[",".join(str(point[i]) for i in varying)] = by_sha[sha]
    default_point = tuple(c.default for c in controls)
    first = by_sha[_sha(frames[default_point])]
    data = {
        "frames": store, "sha256": shas, "index": index,
        "controls": [{"name": controls[i].name, "label": controls[i].label,
                      "kind": controls[i].kind, "keep": controls[i].keep,
                      "default": controls[i].default} for i in varying],
        "labels": {controls[i].name: {str(k): controls[i].labels[k] for k in controls[i].keep}
                   for i in varying},
    }
    parts = [f'<div class="sbir-frames" id="{uid}">', '<div class="sbir-frames-controls">']
    for i in varying:
        c = controls[i]
        cid = f"{uid}-{i}"
        esc = html.escape
        if c.kind == "checkbox":
            on, off = (str(k) for k in (1, 0))
            checked = " checked" if c.default == 1 else ""
            widget = (f'<input type="checkbox" id="{cid}" data-sbir-control="{esc(c.name)}" '
                      f'data-on="{on}" data-off="{off}"{checked}>')
        elif c.kind == "range":
            pos = c.keep.index(c.default)
            widget = (f'<input type="range" id="{cid}" data-sbir-control="{esc(c.name)}" min="0" '
                      f'max="{len(c.keep) - 1}" step="1" value="{pos}" '
                      f"data-keep='{json.dumps(c.keep)}'>")
        else:
            opts = "".join(f'<option value="{k}"{" selected" if k == c.default else ""}>'
                           f"{esc(c.labels[k])}</option>" for k in c.keep)
            widget = (f'<select id="{cid}" data-sbir-control="{esc(c.name)}" '
                      f"data-keep='{json.dumps(c.keep)}'>{opts}</select>")
        parts.append(f'<label class="sbir-frames-control">{esc(c.label)} {widget} '
                     f'<output data-for="{cid}">{esc(c.labels[c.default])}</output></label>')
    for label, value in fixed.items():
        parts.append(f'<span class="sbir-frames-fixed">{html.escape(label)}: {html.escape(value)}</span>')
    parts.append("</div>")
    key = ",".join(str(default_point[i]) for i in varying)
    parts.append(f'<img class="sbir-frame" alt="widget figure" data-key="{key}" '
                 f'data-sha256="{shas[first]}" src="data:image/png;base64,{store[first]}">')
    n_rendered = len(frames)
    note = (f"Pre-rendered: {n_rendered} frame(s) on a grid of control values; the controls "
            "snap to them. Run the notebook for every value." if varying else
            "Run the notebook to move the controls.")
    parts.append(f'<p class="sbir-frames-note">{note}</p>')
    payload = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
    parts.append(f'<script type="application/json" class="sbir-frames-data">{payload}</script>')
    if varying:
        parts.append("<script>" + _SCRIPT % {"id": uid} + "</script>")
    parts.append("</div>")
    return "".join(parts)


def _changes_frames(i: int, controls: Sequence[StaticControl],
                    frames: Mapping[tuple[int, ...], bytes]) -> bool:
    """Whether moving control ``i`` alone changes the frame at some point of the grid."""
    if len(controls[i].keep) < 2:
        return False
    others = [c.keep for j, c in enumerate(controls) if j != i]
    for rest in itertools.product(*others):
        seen = set()
        for k in controls[i].keep:
            point = rest[:i] + (k,) + rest[i:]
            seen.add(_sha(frames[point]))
            if len(seen) > 1:
                return True
    return False
