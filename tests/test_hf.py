"""sbirlib datasets as Hugging Face `datasets.Dataset` objects, offline, with an Arrow cache."""

from __future__ import annotations

import socket

import numpy as np
import pytest

datasets = pytest.importorskip("datasets", reason="the Hugging Face `datasets` package is not installed")

from sbirlib.data.hf import hf_cache_key, to_hf_dataset  # noqa: E402
from sbirlib.data.qmul import QMULV1  # noqa: E402
from sbirlib.data.tuberlin import TUBerlin  # noqa: E402
from test_data_real import _png, make_qmul_v1_mat  # noqa: E402


@pytest.fixture()
def offline(tmp_path, monkeypatch):
    """A private cache, HF offline mode, and no sockets at all."""
    monkeypatch.setenv("SBIR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if hasattr(datasets.config, name):
            monkeypatch.setattr(datasets.config, name, True)

    def no_network(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    return tmp_path


def test_qmul_as_hf_dataset_roundtrip_and_cache(offline, monkeypatch):
    make_qmul_v1_mat(offline / "data", "shoes", n_train=10, n_test=5)
    ds = QMULV1(offline / "data", "test", "edge", category="shoes")
    hf = to_hf_dataset(ds)
    assert hf.num_rows == 5 and hf.column_names == ["image", "label", "instance", "domain", "index"]
    assert hf.features["label"].names == ["shoes"]
    assert isinstance(hf.features["image"], datasets.Image)
    row = hf[2]
    assert row["image"].mode == "L" and row["image"].size == (16, 16)
    np.testing.assert_allclose(np.asarray(row["image"]) / 255.0, ds[2]["image"][0].numpy(), atol=1e-6)
    assert (row["instance"], row["domain"], row["index"]) == (ds.instances[2], 2, 2)
    # second call: loaded from the Arrow copy, the generator is not run again
    monkeypatch.setattr(datasets.Dataset, "from_generator", lambda *a, **k: pytest.fail("rebuilt"))
    again = to_hf_dataset(ds)
    assert again.num_rows == 5 and np.array_equal(np.asarray(again[2]["image"]), np.asarray(row["image"]))


def test_cache_key_tracks_content(offline):
    make_qmul_v1_mat(offline / "data", "shoes", n_train=10, n_test=5)
    test = QMULV1(offline / "data", "test", category="shoes")
    assert hf_cache_key(test) == hf_cache_key(QMULV1(offline / "data", "test", category="shoes"))
    assert hf_cache_key(test) != hf_cache_key(QMULV1(offline / "data", "test", "edge", category="shoes"))
    assert hf_cache_key(test) != hf_cache_key(QMULV1(offline / "data", "val", category="shoes"))


def test_class_labels_and_max_items_without_cache(offline):
    for c, name in enumerate(("ant", "wine-bottle")):
        for k in range(12):
            _png(offline / "tu" / "png" / name / f"{c * 12 + k + 1}.png", value=40 * k)
    ds = TUBerlin(offline / "tu", "test")
    hf = to_hf_dataset(ds, cache=False, max_items=15)
    assert hf.num_rows == 15 and hf.features["label"].names == ["ant", "wine-bottle"]
    assert hf[14]["label"] == 1 and hf.features["label"].int2str(hf[14]["label"]) == "wine-bottle"
    assert not (offline / "cache" / "hf").exists() or not any(
        (offline / "cache" / "hf").glob("*/dataset_info.json"))
    torch_view = hf.with_format("torch")
    assert tuple(torch_view[0]["image"].shape)[-2:] == (8, 8)
