"""Checks on the executed and built book (run by `make test` after `make book`)."""

from __future__ import annotations

import json
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
