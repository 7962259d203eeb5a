"""The chapters' Colab/Jupyter bootstrap: live, identical everywhere, and able to install sbirlib."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "book" / "chapters").glob("[0-9]*.ipynb"))
TEMPLATE = ROOT / "book" / "_chapter_template.ipynb"


def _code_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def _bootstrap(path: Path) -> str:
    cells = [c for c in _code_cells(path) if "bootstrap" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"{path.name}: exactly one code cell tagged 'bootstrap'"
    assert _code_cells(path).index(cells[0]) == 1, f"{path.name}: the bootstrap follows the parameters"
    return "".join(cells[0]["source"])


def test_template_bootstrap_is_live_and_reads_its_source_from_the_environment():
    src = _bootstrap(TEMPLATE)
    live = [line.strip() for line in src.splitlines() if not line.strip().startswith("#")]
    assert any(line.startswith("%pip install") for line in live), "the %pip install line must be live"
    assert 'os.environ.get("SBIRLIB_SOURCE"' in src
    assert "find_spec(\"sbirlib\") is None" in src, "install only when sbirlib is missing"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_bootstrap_is_the_template_one(path):
    assert _bootstrap(path) == _bootstrap(TEMPLATE), f"{path.name}: copy the bootstrap cell of the template"
    for cell in _code_cells(path)[2:]:
        assert "pip install" not in "".join(cell["source"]), f"{path.name}: install only in the bootstrap cell"


def _filtered_site(src: Path, dest: Path) -> None:
    """Links to every installed distribution of ``src`` except sbirlib (and its editable hook)."""
    dest.mkdir()
    for entry in src.iterdir():
        name = entry.name.lower()
        if name.startswith(("sbirlib", "__editable__", "_sbirlib")) or name.endswith(".pth"):
            continue
        (dest / entry.name).symlink_to(entry)


@pytest.mark.slow
def test_bootstrap_cell_installs_sbirlib_into_a_venv_that_lacks_it(tmp_path):
    """A fresh venv that has the dependencies but not sbirlib; the cell installs a local wheel."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
                   check=True, timeout=300, capture_output=True)
    wheel = next(wheels.glob("sbirlib-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # the project's dependencies (torch, IPython, ...) without sbirlib, visible to the venv's
    # interpreter and to its pip, so the install needs no network
    _filtered_site(Path(sysconfig.get_paths()["purelib"]), tmp_path / "deps")
    (site / "project_deps.pth").write_text(str(tmp_path / "deps") + "\n")
    cell = tmp_path / "bootstrap.py"
    cell.write_text(_bootstrap(CHAPTERS[0]))
    driver = (
        "import importlib.util, sys\n"
        "assert importlib.util.find_spec('sbirlib') is None, 'the venv must lack sbirlib'\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "shell = InteractiveShell.instance()\n"
        f"result = shell.run_cell(open({str(cell)!r}).read())\n"
        "result.raise_error()\n"
        "import sbirlib\n"
        "print(sbirlib.__file__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["SBIRLIB_SOURCE"] = str(wheel)
    proc = subprocess.run([str(py), "-c", driver], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    installed = Path(proc.stdout.strip().splitlines()[-1])
    assert site in installed.parents, f"sbirlib imported from {installed}, not from the fresh venv"
    # only sbirlib was installed: nothing new beside it in the venv
    new = sorted(p.name for p in site.iterdir() if not p.name.startswith(("sbirlib", "pip", "_distutils",
                                                                           "setuptools", "pkg_resources",
                                                                           "distutils", "__pycache__",
                                                                           "project_deps")))
    assert new == [], f"the bootstrap installed more than sbirlib: {new}"
