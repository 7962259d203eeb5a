"""Kernel-free widgets: the grid of pre-rendered frames and the HTML that swaps them."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

widgets = pytest.importorskip("ipywidgets")

from sbirlib import frames, viz  # noqa: E402


@pytest.fixture
def bundles(monkeypatch):
    import IPython.display

    shown: list = []
    monkeypatch.setattr(IPython.display, "display", lambda *o, **kw: shown.extend(o))
    yield shown
    plt.close("all")


def _data(html: str) -> dict:
    return json.loads(re.search(r'class="sbir-frames-data">(.*?)</script>', html).group(1))


def _sha(png: bytes) -> str:
    return hashlib.sha256(png).hexdigest()


def _draw(slope: float = 1.0, n: int = 3, style: str = "a", dashed: bool = False, unused: int = 0):
    fig, ax = plt.subplots(figsize=(1.5, 1.5))
    ax.plot(range(n), [slope * i for i in range(n)], ls="--" if dashed else "-")
    ax.set_title(style)
    return fig


def test_plan_grid_fits_the_budget_keeps_ends_and_defaults():
    a = frames.StaticControl("a", "a", "range", list(range(30)), [str(i) for i in range(30)], default=7)
    b = frames.StaticControl("b", "b", "select", ["x", "y", "z"], ["x", "y", "z"], default=2)
    frames.plan_grid([a, b], max_frames=12)
    assert len(a.keep) * len(b.keep) <= 12
    assert 7 in a.keep and 2 in b.keep and a.keep[-1] == 29
    assert a.keep == sorted(set(a.keep))
    c = frames.StaticControl("c", "c", "range", list(range(5)), [str(i) for i in range(5)], default=1)
    frames.plan_grid([c], max_frames=100)
    assert c.keep == [0, 1, 2, 3, 4]
    frames.plan_grid([c], max_frames=1)
    assert c.keep == [1]


def test_static_control_reads_sliders_options_checkboxes_and_multiple_selections():
    s = frames.static_control("q", widgets.IntSlider(3, min=0, max=9, step=3))
    assert (s.kind, s.values, s.default) == ("range", [0, 3, 6, 9], 1)
    f = frames.static_control("m", widgets.FloatSlider(1.5, min=1.0, max=2.0, step=0.25))
    assert f.values == [1.0, 1.25, 1.5, 1.75, 2.0] and f.default == 2
    d = frames.static_control("side", widgets.Dropdown(options=["photo", "sketch"], value="sketch"))
    assert (d.kind, d.values, d.default) == ("select", ["photo", "sketch"], 1)
    c = frames.static_control("flag", widgets.Checkbox(True))
    assert (c.kind, c.values, c.default) == ("checkbox", [False, True], 1)
    m = frames.static_control("cls", widgets.SelectMultiple(options=["a", "b", "c"], value=("a", "b")))
    assert m.values[0] == ("a", "b") and ("c",) in m.values and ("a", "b", "c") in m.values
    assert frames.static_control("t", widgets.Text("free text")) is None


def test_every_frame_is_what_the_live_widget_draws_for_those_values(bundles, monkeypatch):
    monkeypatch.setenv(frames.STATIC_ENV, "1")
    box = viz.interact_figure(_draw, max_frames=48, slope=(1.0, 5.0, 0.5), n=(2, 12),
                              style=["a", "b"], dashed=False, unused=(0, 1))
    (bundle,) = bundles
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == box.model_id
    html = bundle["text/html"]
    data = _data(html)
    names = [c["name"] for c in data["controls"]]
    # 'unused' changes no frame: shown as fixed text, never as a control that does nothing
    assert names == ["slope", "n", "style", "dashed"] and "unused: 0" in html
    assert html.count("data-sbir-control=") == 4
    assert len(data["index"]) <= 48 and len(data["frames"]) <= len(data["index"])
    live = dict(zip(["slope", "n", "style", "dashed", "unused"], box.children[0].children))
    specs = {c["name"]: frames.static_control(c["name"], live[c["name"]]) for c in data["controls"]}
    for key, frame in data["index"].items():
        for c, k in zip(data["controls"], map(int, key.split(","))):
            live[c["name"]].value = specs[c["name"]].values[k]
        shown = bytes(box.children[1].value)
        assert _sha(shown) == data["sha256"][frame], f"frame {key} differs from the live drawing"
        assert base64.b64decode(data["frames"][frame]) == shown
    # the picture shown first is the default frame
    first = re.search(r'<img class="sbir-frame"[^>]*src="data:image/png;base64,([^"]+)"', html).group(1)
    default_key = ",".join(str(c["default"]) for c in data["controls"])
    assert data["frames"][data["index"][default_key]] == first


def test_without_the_build_flag_the_fallback_is_the_executed_frame(bundles, monkeypatch):
    monkeypatch.delenv(frames.STATIC_ENV, raising=False)
    box = viz.interact_figure(_draw, slope=(1.0, 5.0, 0.5))
    html = bundles[0]["text/html"]
    data = _data(html)
    assert len(data["frames"]) == 1 and data["controls"] == []
    assert "<script>" not in html and "Run the notebook" in html
    assert base64.b64decode(data["frames"][0]) == bytes(box.children[1].value)


def test_frame_payload_cannot_close_its_script_tag():
    c = frames.StaticControl("x", "x", "select", ["</script>", "b"], ["</script><b>", "b"], default=0)
    c.keep = [0, 1]
    html = frames.static_html([c], {(0,): b"one", (1,): b"two"})
    block = html.split('class="sbir-frames-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in block
    assert json.loads(block)["labels"]["x"]["0"] == "</script><b>"


def test_static_names_the_controls_the_page_varies(bundles, monkeypatch):
    monkeypatch.setenv(frames.STATIC_ENV, "1")
    viz.interact_figure(_draw, static=("style",), slope=(1.0, 5.0, 0.5), style=["a", "b"])
    html = bundles[0]["text/html"]
    data = _data(html)
    assert [c["name"] for c in data["controls"]] == ["style"] and len(data["frames"]) == 2
    assert "slope: 1" in html and html.count("data-sbir-control=") == 1
    with pytest.raises(ValueError, match="unknown controls"):
        viz.interact_figure(_draw, static=("nope",), slope=(1.0, 5.0, 0.5))


def test_frame_budget_shrinks_for_large_frames():
    assert frames.frame_budget(1000) == frames.MAX_FRAMES
    big = frames.frame_budget(200_000)
    assert 2 <= big < frames.MAX_FRAMES and big * 200_000 * 4 // 3 <= frames.MAX_WIDGET_BYTES
    assert frames.frame_budget(10**9) == 2


def test_fit_frames_measures_the_rendered_weight_not_just_the_first_frame():
    """Frames away from the executed one may be far larger; the widget still fits its budget."""
    s = frames.StaticControl("q", "q", "range", list(range(30)), [str(i) for i in range(30)], default=0)
    small, large = b"s" * 1_000, frames.MAX_WIDGET_BYTES // 8
    calls = []

    def draw(values):
        calls.append(values["q"])
        q = values["q"]
        return small if q == 0 else bytes([q]) * large  # distinct, large frames elsewhere

    out = frames.fit_frames(draw, [s], small)
    weight = sum(len(f) for f in out.values()) * 4 // 3
    assert weight <= frames.MAX_WIDGET_BYTES and len(out) >= 2 and (0,) in out
    assert len(calls) == len(set(calls)), "a frame was drawn twice"
