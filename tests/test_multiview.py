"""The ten-view test (evaluation.md section 4)."""

import torch
import pytest

from sbirlib.evaluation import multiview


def test_offsets_match_official_256_225():
    assert multiview.view_offsets(256, 225) == [(15, 15), (0, 0), (0, 31), (31, 0), (31, 31)]
    assert multiview.view_offsets(144, 128) == [(8, 8), (0, 0), (0, 16), (16, 0), (16, 16)]


def test_views_are_the_right_crops_and_flips():
    img = torch.arange(6 * 6, dtype=torch.float).view(1, 1, 6, 6)
    v = multiview.ten_views(img, 4)
    assert v.shape == (10, 1, 1, 4, 4)
    torch.testing.assert_close(v[0, 0, 0], img[0, 0, 1:5, 1:5])  # centre
    torch.testing.assert_close(v[2, 0, 0], img[0, 0, 0:4, 2:6])  # top-right
    torch.testing.assert_close(v[3, 0, 0], img[0, 0, 2:6, 0:4])  # bottom-left
    torch.testing.assert_close(v[7, 0, 0], img[0, 0, 0:4, 2:6].flip(-1))  # top-right flipped
    assert len({tuple(x.flatten().tolist()) for x in v}) == 10
    with pytest.raises(ValueError):
        multiview.ten_views(img, 7)


def test_distance_is_the_mean_of_per_view_matrices():
    g = torch.Generator().manual_seed(0)
    es, ep = torch.randn(10, 3, 4, generator=g), torch.randn(10, 5, 4, generator=g)
    d = multiview.multiview_distance(es, ep)
    naive = torch.zeros(3, 5, dtype=torch.float64)
    for v in range(10):
        for i in range(3):
            for j in range(5):
                naive[i, j] += ((es[v, i] - ep[v, j]) ** 2).sum().double() / 10
    torch.testing.assert_close(d, naive, rtol=1e-6, atol=1e-6)
    # a callable distance (e.g. HOLEF) is used per view
    d2 = multiview.multiview_distance(es, ep, lambda a, b: torch.cdist(a, b))
    torch.testing.assert_close(d2, multiview.multiview_distance(es, ep, "euclidean"), rtol=1e-5, atol=1e-5)


def test_embeddings_from_tensor_and_dataset():
    imgs = torch.rand(5, 1, 10, 10, generator=torch.Generator().manual_seed(1))
    enc = lambda x: x.flatten(1)[:, :3]  # noqa: E731
    e = multiview.multiview_embeddings(enc, imgs, 8, batch_size=2)
    assert e.shape == (10, 5, 3)
    torch.testing.assert_close(e[1], imgs[:, 0, 0, :3])  # top-left view, first row
    ds = [{"image": imgs[i], "instance": i} for i in range(5)]
    torch.testing.assert_close(multiview.multiview_embeddings(enc, ds, 8, views=1, batch_size=3), e[:1])


def test_evaluate_fg_multiview_end_to_end():
    g = torch.Generator().manual_seed(2)
    photos = torch.rand(6, 1, 10, 10, generator=g)
    sketches = photos + 0.01 * torch.rand(6, 1, 10, 10, generator=g)
    perm = [3, 4, 5, 0, 1, 2]
    s_ds = _ListDS(sketches, range(6))
    p_ds = _ListDS(photos[perm], perm)  # photo j shows instance perm[j]
    enc = lambda x: x.flatten(1)  # noqa: E731
    m, d = multiview.evaluate_fg_multiview(enc, enc, s_ds, p_ds, 8, ks=(1, 2), return_distance=True)
    assert d.shape == (6, 6)
    assert m["acc@1"] == 1.0
    wrong = _ListDS(p_ds.images, [1, 2, 0, 5, 4, 3])  # mislabelled gallery
    assert multiview.evaluate_fg_multiview(enc, enc, s_ds, wrong, 8, ks=(1,))["acc@1"] < 0.7


class _ListDS(torch.utils.data.Dataset):
    def __init__(self, images, instances):
        self.images, self.instances = images, list(instances)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return {"image": self.images[i], "instance": self.instances[i]}


def test_fg_accuracy_from_precomputed_views_matches_single_view_run():
    g = torch.Generator().manual_seed(3)
    photos = torch.rand(7, 1, 10, 10, generator=g)
    sketches = photos + 0.3 * torch.rand(7, 1, 10, 10, generator=g)
    s_ds, p_ds = _ListDS(sketches, range(7)), _ListDS(photos, range(7))
    enc = lambda x: x.flatten(1)  # noqa: E731
    es = multiview.multiview_embeddings(enc, s_ds, 8)
    ep = multiview.multiview_embeddings(enc, p_ds, 8)
    one, d1 = multiview.multiview_fg_accuracy(es, ep, range(7), range(7), views=1, ks=(1, 3))
    direct, d_direct = multiview.evaluate_fg_multiview(enc, enc, s_ds, p_ds, 8, views=1, ks=(1, 3),
                                                       return_distance=True)
    torch.testing.assert_close(d1, d_direct)
    assert one["acc@1"] == direct["acc@1"] and one["acc@3"] == direct["acc@3"]
    ten, d10 = multiview.multiview_fg_accuracy(es, ep, range(7), range(7), ks=(1,))
    assert not torch.allclose(d10, d1)
    with pytest.raises(ValueError):
        multiview.multiview_fg_accuracy(es[:1], ep[:1], range(7), range(7), views=10)
