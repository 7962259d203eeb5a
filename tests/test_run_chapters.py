"""The papermill runner: unknown parameters and failing cells must fail loudly."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools import run_chapters  # noqa: E402


def _notebook(path: Path, body: str) -> Path:
    cells = [
        {"cell_type": "code", "id": "params", "metadata": {"tags": ["parameters"]},
         "execution_count": None, "outputs": [], "source": 'profile: str = "smoke"  # which recipe\n'},
        {"cell_type": "code", "id": "body", "metadata": {}, "execution_count": None, "outputs": [],
         "source": body},
    ]
    nb = {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}}
    path.write_text(json.dumps(nb))
    return path


def test_unknown_parameter_is_rejected(tmp_path):
    nb = _notebook(tmp_path / "90_x.ipynb", "x = 1\n")
    with pytest.raises(SystemExit, match="unknown parameter"):
        run_chapters.main([str(nb), "-p", "profil=smoke", "--no-check"])


@pytest.mark.slow
def test_failing_cell_fails_the_run_with_its_traceback(tmp_path, capsys):
    nb = _notebook(tmp_path / "91_fail.ipynb", "raise ValueError('boom from cell')\n")
    rc = run_chapters.main([str(nb), "--no-check", "--runs", str(tmp_path / "runs")])
    assert rc == 1
    assert "boom from cell" in capsys.readouterr().err


@pytest.mark.slow
def test_missing_reference_fails_the_regression_check(tmp_path, capsys):
    body = (
        "from sbirlib import results\n"
        "rec = results.run_record('92_ok', {'test/x': 0.5}, {'profile': profile, 'seed': 0})\n"
        "results.write_run_record(results.output_dir_for('92_ok'), rec)\n"
    )
    nb = _notebook(tmp_path / "92_ok.ipynb", body)
    rc = run_chapters.main([str(nb), "--runs", str(tmp_path / "runs")])
    assert rc == 1
    assert "no committed regression reference" in capsys.readouterr().err
    assert (tmp_path / "runs" / "92_ok" / "metrics.json").is_file()


@pytest.mark.slow
def test_relative_data_and_cache_roots_mean_the_callers_folder(tmp_path, monkeypatch, capsys):
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SBIR_DATA", "data")
    monkeypatch.setenv("SBIR_CACHE", "cache")
    body = (
        "import os\n"
        f"assert os.environ['SBIR_DATA'] == {str(tmp_path / 'data')!r}, os.environ['SBIR_DATA']\n"
        f"assert os.environ['SBIR_CACHE'] == {str(tmp_path / 'cache')!r}, os.environ['SBIR_CACHE']\n"
    )
    nb = _notebook(tmp_path / "93_env.ipynb", body)
    rc = run_chapters.main([str(nb), "--no-check", "--runs", str(tmp_path / "runs")])
    assert rc == 0, capsys.readouterr().err
