"""Checks on the executed and built book (run by `make test` after `make book`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STAGE = ROOT / "_build" / "src"
HTML = ROOT / "_build" / "html"
CHAPTERS = sorted((ROOT / "book" / "chapters").glob("[0-9]*.ipynb"))

pytestmark = pytest.mark.notebooks


@pytest.fixture(scope="module", autouse=True)
def built():
    if not (HTML / "index.html").is_file():
        pytest.fail("_build/html/index.html is missing: run `make book` first")


def test_every_chapter_ran_and_passed_its_regression_check():
    summary = json.loads((STAGE / "runs" / "summary.json").read_text())
    ran = {r["chapter"]: r for r in summary}
    for nb in CHAPTERS:
        assert nb.stem in ran, f"{nb.stem} was not executed"
        assert ran[nb.stem]["ok"], f"{nb.stem} failed"
        assert ran[nb.stem]["profile"] == "smoke"


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.stem)
def test_executed_chapter_has_no_errors_and_a_page(nb):
    executed = json.loads((STAGE / "book" / "chapters" / nb.name).read_text())
    for cell in executed["cells"]:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", f"{nb.stem}: a cell raised"
    assert "injected-parameters" not in json.dumps(executed), "the published build runs the defaults"
    assert (HTML / "book" / "chapters" / f"{nb.stem}.html").is_file()
    record = json.loads((STAGE / "runs" / nb.stem / "metrics.json").read_text())
    assert record["profile"] == "smoke"


REUSE_CHAPTER = "04_dlinet"  # the quickest chapter that trains (pre-training, main run, ablations)
# the cache `make book` used, read at import (conftest gives the test session a fresh one)
BUILD_CACHE = Path(os.environ.get("SBIR_CACHE") or ROOT / ".cache" / "sbirlib")


def test_a_second_run_in_a_fresh_kernel_reuses_the_build_training(tmp_path):
    """``checkpoint="auto"``: the chapter run again (new kernel, new run folder) trains nothing.

    ``make book`` trained the chapter with ``SBIR_CACHE`` as its cache; running it once more
    with the same cache must find every model's weights by its config fingerprint, write no
    ``last.pt`` (``fit`` writes one per epoch) and report the same numbers.
    """
    cache = BUILD_CACHE
    built = STAGE / "runs" / REUSE_CHAPTER / "metrics.json"
    if not built.is_file() or not (cache / "checkpoints").is_dir():
        pytest.fail(f"no build record {built} or cached checkpoints under {cache}: run `make book` first")
    before = {p: p.stat().st_mtime_ns for p in (cache / "checkpoints").rglob("*.pt")}
    runs = tmp_path / "runs"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "run_chapters.py"),
         str(ROOT / "book" / "chapters" / f"{REUSE_CHAPTER}.ipynb"), "--runs", str(runs)],
        env=dict(os.environ, SBIR_CACHE=str(cache)), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    trained = sorted(str(p) for p in runs.rglob("last.pt"))
    assert trained == [], f"the second run trained again: {trained}"
    after = {p: p.stat().st_mtime_ns for p in (cache / "checkpoints").rglob("*.pt")}
    assert after == before, "the second run wrote new checkpoints into the cache"
    again = json.loads((runs / REUSE_CHAPTER / "metrics.json").read_text())["metrics"]
    first = json.loads(built.read_text())["metrics"]
    assert again == first


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.stem)
def test_page_widgets_are_kernel_free_and_light(nb):
    """Every widget reached the page as pre-rendered frames, and they weigh at most 5 MB."""
    sys.path.insert(0, str(ROOT))
    from tools.check_html import MAX_FRAME_BYTES, frame_weight

    page = (HTML / "book" / "chapters" / f"{nb.stem}.html").read_text(encoding="utf-8")
    assert 'class="sbir-frames"' in page, f"{nb.stem}: no kernel-free widget on the page"
    assert "application/vnd.jupyter.widget-state+json" not in page, "widget state left on the page"
    assert "embed-amd" not in page, "a widget manager is loaded for widgets that cannot redraw"
    weight = frame_weight(page)
    print(f"{nb.stem}: widget frames {weight / 1e6:.2f} MB")
    assert weight <= MAX_FRAME_BYTES
