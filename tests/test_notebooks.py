"""Hygiene of the committed chapter notebooks (fast; executing them is the runner's job)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "book" / "chapters").glob("[0-9]*.ipynb"))
NOTEBOOKS = CHAPTERS + [ROOT / "book" / "_chapter_template.ipynb"]
COMMON = ["profile", "seed", "device", "data_root", "checkpoint", "max_epochs", "output_dir"]


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def _src(cell: dict) -> str:
    return "".join(cell["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs_or_injected_cells(path):
    nb = _load(path)
    for cell in _code_cells(nb):
        assert not cell.get("outputs"), f"{path.name}: strip outputs (make strip)"
        assert cell.get("execution_count") is None, f"{path.name}: strip execution counts"
        assert "injected-parameters" not in cell.get("metadata", {}).get("tags", [])
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_is_first_and_literal(path):
    cells = _code_cells(_load(path))
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert tagged == [0], f"{path.name}: exactly one cell tagged 'parameters', the first code cell"
    names = []
    for node in ast.parse(_src(cells[0])).body:
        assert isinstance(node, ast.AnnAssign), f"{path.name}: only typed assignments in parameters"
        assert isinstance(node.value, ast.Constant), f"{path.name}: parameters must be literals"
        names.append(node.target.id)
    assert names[: len(COMMON)] == COMMON, f"{path.name}: common knobs first, in order: {COMMON}"
    for line in _src(cells[0]).splitlines():
        if ":" in line and "=" in line and not line.startswith("#"):
            assert "#" in line, f"{path.name}: every parameter needs a help comment: {line}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_has_run_record_cell_and_bibliography(path):
    nb = _load(path)
    last = _code_cells(nb)[-1]
    assert "remove-input" in last.get("metadata", {}).get("tags", [])
    assert "write_run_record" in _src(last)
    text = "".join(_src(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert ":filter: docname in docnames" in text, f"{path.name}: local bibliography missing"
    assert "colab.research.google.com/github/" in text and path.name in text, "Colab badge path"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_has_regression_reference(path):
    ref = ROOT / "book" / "results" / path.stem / "smoke.json"
    assert ref.is_file(), f"missing regression reference {ref.relative_to(ROOT)}"
    data = json.loads(ref.read_text())
    assert data["profile"] == "smoke" and data["metrics"]
    assert "tolerance" in data["check"] and data["check"].get("floors"), "state tolerance and floors"
    for key in ("seed", "commit", "wall_time_s"):
        assert key in data["provenance"]


def test_every_chapter_is_in_the_toc_and_vice_versa():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [ch["file"] for part in toc["parts"] for ch in part["chapters"]]
    listed = {f for f in files if f.startswith("book/chapters/")}
    present = {f"book/chapters/{p.stem}" for p in CHAPTERS}
    assert listed == present
