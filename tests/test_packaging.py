"""requirements.txt, pyproject.toml and environment.yml must tell the same story."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.lower()] = version
    return pins


def test_pyproject_pins_match_requirements():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pins()
    # the "data" extra (py7zr) is for the full-dataset download scripts only, not installed by make
    extras = {k: v for k, v in project["optional-dependencies"].items() if k != "data"}
    deps = project["dependencies"] + [d for extra in extras.values() for d in extra]
    for dep in deps:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==(\S+)", dep)
        if match:
            name, version = match.groups()
            assert pins.get(name.lower()) == version, f"{name}: pyproject {version} vs requirements {pins.get(name.lower())}"
    for dep in deps:
        name = re.split(r"[<>=\[ ]", dep)[0].lower()
        assert name in pins, f"{name} is a dependency but not in requirements.txt"
    assert project["scripts"]["sbir"] == "sbirlib.cli:main"


def test_jupyter_book_is_pinned_below_2():
    assert _pins()["jupyter-book"].startswith("1.")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any("jupyter-book" in d and "<2" in d for d in project["optional-dependencies"]["book"])


def test_environment_yml_installs_the_same_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    assert "-r requirements.txt" in pip and "-e ." in pip


def test_readme_shows_the_two_commands():
    text = (ROOT / "README.md").read_text()
    assert "make book" in text and "make test" in text
    assert "make test" in (ROOT / ".ci" / "run").read_text()
