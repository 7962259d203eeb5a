"""Widget figures: sbirlib.viz.interact_figure and the wrappers built on it."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

widgets = pytest.importorskip("ipywidgets")

from sbirlib import viz  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def _png(box) -> bytes:
    """The bytes in the box's picture, checked to be a PNG."""
    data = bytes(box.children[1].value)
    assert data.startswith(PNG)
    return data


@pytest.fixture
def shown(monkeypatch):
    """What the helpers pass to IPython's ``display`` (nothing is rendered)."""
    import IPython.display

    objs: list = []

    def display(*shown_objs, **kwargs):
        for obj in shown_objs:  # a widget's MIME bundle stands for the widget it shows
            view = obj.get("application/vnd.jupyter.widget-view+json") if isinstance(obj, dict) else None
            objs.append(widgets.widget._instances[view["model_id"]] if view else obj)

    monkeypatch.setattr(IPython.display, "display", display)
    plt.close("all")
    yield objs
    plt.close("all")


def _line(slope: float = 1.0, dashed: bool = False):
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, slope], ls="--" if dashed else "-")
    return fig


def test_interact_figure_draws_png_redraws_and_closes_figures(shown):
    box = viz.interact_figure(_line, slope=(1.0, 5.0, 0.5))
    assert shown == [box]  # displayed with its kernel-free HTML fallback (tests/test_frames.py)
    (controls, image), (slider,) = box.children, box.children[0].children
    assert isinstance(image, widgets.Image) and image.format == "png"
    first = _png(box)
    assert plt.get_fignums() == []
    slider.value = 4.0
    assert _png(box) != first
    assert plt.get_fignums() == []


def test_interact_figure_controls_from_abbreviations_and_widgets(shown):
    def draw(n: int = 3, style: str = "b", dashed: bool = True, scale: float = 1.0):
        return _line(n * scale, dashed)

    given = widgets.FloatSlider(2.0, min=0.0, max=4.0, description="zoom")
    box = viz.interact_figure(draw, n=(0, 10), style=["a", "b"], dashed=False, scale=given)
    n, style, dashed, scale = box.children[0].children
    assert isinstance(n, widgets.IntSlider) and (n.min, n.max, n.value) == (0, 10, 3)
    assert n.description == "n" and n.continuous_update is False
    assert isinstance(style, widgets.Dropdown) and style.value == "b"
    assert isinstance(dashed, widgets.Checkbox) and dashed.value is False
    assert scale is given and scale.description == "zoom" and scale.value == 2.0
    before = _png(box)
    dashed.value = True
    assert _png(box) != before


def test_interact_figure_rejects_a_draw_without_figure_and_bad_controls(shown):
    with pytest.raises(TypeError, match="return the figure"):
        viz.interact_figure(lambda x=0: plt.close("all"), x=(0, 3))
    with pytest.raises(ValueError, match="cannot make a control"):
        viz.interact_figure(_line, slope=object())


def test_interactive_retrievals_is_a_query_slider_over_show_retrievals(shown):
    rng = np.random.default_rng(0)
    images = [rng.random((8, 8)) for _ in range(6)]
    dist = rng.random((4, 6))
    assert viz.interactive_retrievals(images[:4], images, dist, [0, 1, 2, 3], k=3) is None
    (box,) = shown
    (query,) = box.children[0].children
    assert (query.description, query.min, query.max, query.value) == ("query", 0, 3, 0)
    first = _png(box)
    query.value = 2
    assert _png(box) != first
    assert plt.get_fignums() == []


def test_interactive_grid_pages(shown):
    images = [np.full((4, 4), i / 40) for i in range(40)]
    assert viz.interactive_grid(images, page_size=16, ncols=4) is None
    (box,) = shown
    (page,) = box.children[0].children
    assert (page.description, page.max) == ("page", 2)
    first = _png(box)
    page.value = 2
    assert _png(box) != first
    assert plt.get_fignums() == []
