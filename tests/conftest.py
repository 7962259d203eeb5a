"""Shared pytest fixtures: small real data from $SBIR_DATA (skipped cleanly when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session", autouse=True)
def fresh_weights_cache(tmp_path_factory):
    """A session cache whose ``checkpoints/`` starts empty (the rest links to the real cache).

    ``train_or_load(checkpoint="auto")`` finds trained weights by config under
    ``$SBIR_CACHE/checkpoints``; a test that expects to train must not load what an earlier
    session left there. Data caches (synthetic banks, pre-training) stay shared for speed.
    """
    real = Path(os.environ.get("SBIR_CACHE", "") or Path.home() / ".cache" / "sbirlib").expanduser()
    real.mkdir(parents=True, exist_ok=True)
    session = tmp_path_factory.mktemp("sbir-cache")
    for entry in real.iterdir():
        if entry.name != "checkpoints":
            (session / entry.name).symlink_to(entry.resolve())
    old = os.environ.get("SBIR_CACHE")
    os.environ["SBIR_CACHE"] = str(session)
    yield session
    if old is None:
        os.environ.pop("SBIR_CACHE", None)
    else:
        os.environ["SBIR_CACHE"] = old


def _shared_data() -> Path | None:
    value = os.environ.get("SBIR_DATA", "")
    path = Path(value) if value else None
    return path if path is not None and path.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The small real data folder (``$SBIR_DATA``, e.g. ``../shared/data``)."""
    path = _shared_data()
    if path is None:
        pytest.skip("small real data not found: set SBIR_DATA to ../shared/data")
    return path


@pytest.fixture(scope="session")
def qmul_v1_root(shared_data: Path) -> Path:
    root = shared_data / "qmul_v1"
    if not (root / "shoes" / "shoes_sketch_db_test.mat").is_file():
        pytest.skip("QMUL V1 test data not found under $SBIR_DATA/qmul_v1")
    return root


@pytest.fixture(scope="session")
def tuberlin_root(shared_data: Path) -> Path:
    root = shared_data / "tuberlin_subset"
    if not root.is_dir():
        pytest.skip("TU-Berlin subset not found under $SBIR_DATA/tuberlin_subset")
    return root


@pytest.fixture(scope="session")
def quickdraw_root(shared_data: Path) -> Path:
    root = shared_data / "quickdraw_subset"
    if not root.is_dir():
        pytest.skip("QuickDraw subset not found under $SBIR_DATA/quickdraw_subset")
    return root


@pytest.fixture(scope="session")
def chairv2_vector_root(shared_data: Path) -> Path:
    root = shared_data / "chairv2_vector"
    if not (root / "ChairV2_Coordinate").is_file():
        pytest.skip("ChairV2 vector sketches not found under $SBIR_DATA/chairv2_vector")
    return root


@pytest.fixture(scope="session")
def sketchy_subset_root(shared_data: Path) -> Path:
    root = shared_data / "sketchy_subset"
    if not (root / "photo").is_dir() or not (root / "sketch").is_dir():
        pytest.skip("Sketchy subset not found under $SBIR_DATA/sketchy_subset")
    return root
