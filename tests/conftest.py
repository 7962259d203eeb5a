"""Shared pytest fixtures: small real data from $SBIR_DATA (skipped cleanly when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


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
