"""The edge detector: polarity, geometry, determinism, input types."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from sbirlib.data.edges import EdgeMap, edge_map


def _square(n=48):
    img = np.full((n, n, 3), 200, dtype=np.uint8)
    img[12:36, 12:36] = (40, 60, 200)
    return img


def test_square_gives_its_outline():
    e = edge_map(_square())
    assert e.shape == (1, 48, 48) and e.dtype == torch.float32
    ink = (e[0] < 0.5).numpy()
    ys, xs = np.nonzero(ink)
    assert ink.sum() > 60  # four sides
    assert 9 <= ys.min() <= 13 and 34 <= ys.max() <= 38 and 9 <= xs.min() <= 13 and 34 <= xs.max() <= 38
    assert not ink[20:28, 20:28].any() and not ink[:5].any()  # flat interior and background stay white


def test_flat_and_input_types_and_determinism():
    assert torch.equal(edge_map(np.full((20, 20), 0.3)), torch.ones(1, 20, 20))
    img = _square()
    ref = edge_map(img)
    assert torch.equal(ref, edge_map(Image.fromarray(img)))
    assert torch.equal(ref, edge_map(torch.from_numpy(img).permute(2, 0, 1).float() / 255))
    assert torch.equal(ref, EdgeMap()(img))
    thick = edge_map(img, thickness=3)
    assert (thick < 0.5).sum() > (ref < 0.5).sum()


def test_thresholds_control_weak_edges():
    img = np.full((40, 40), 100, dtype=np.uint8)
    img[:, 20:] = 200  # strong vertical edge
    img[5:15, 5:15] = 112  # weak square
    strict = (edge_map(img, high=0.5, low=0.5) < 0.5).sum()
    loose = (edge_map(img, high=0.05, low=0.02) < 0.5).sum()
    assert loose > strict > 0
    with pytest.raises(ValueError):
        edge_map(img, low=0.5, high=0.1)
    with pytest.raises(ValueError, match="shape"):
        edge_map(np.zeros((4, 4, 5)))
