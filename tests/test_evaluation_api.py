"""extract_embeddings, evaluate_fg and evaluate_category on tiny in-memory datasets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from sbirlib.evaluation import evaluate_category, evaluate_fg, extract_embeddings, fg_accuracy, fg_gallery, retrieval_metrics


class DictDataset(Dataset):
    """Items shaped like CONTRIBUTING.md's data items; images carry their own embedding."""

    def __init__(self, vectors, labels, instances, domain=0):
        self.vectors = torch.as_tensor(vectors, dtype=torch.float32)
        self.labels, self.instances, self.domain = list(labels), list(instances), domain

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"image": self.vectors[i].view(1, 1, -1), "label": self.labels[i],
                "instance": self.instances[i], "domain": self.domain, "index": i}


def flat(images):
    return images.flatten(1)


def test_extract_embeddings_keeps_order_and_metadata():
    ds = DictDataset(np.arange(14).reshape(7, 2), [0, 1, 0, 1, 2, 2, 0], [3, 4, 5, 6, 7, 8, 9])
    out = extract_embeddings(flat, ds, batch_size=3)
    assert out["emb"].tolist() == np.arange(14).reshape(7, 2).tolist()
    assert out["labels"].tolist() == ds.labels and out["instances"].tolist() == ds.instances


def test_extract_embeddings_restores_module_mode():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Dropout(0.9))
    model.train()
    ds = DictDataset(np.ones((5, 4)), [0] * 5, [0] * 5)
    out = extract_embeddings(model, ds)
    assert torch.equal(out["emb"], torch.ones(5, 4))  # eval mode: dropout off
    assert model.training


def test_fg_gallery_deduplicates_and_pairs():
    keep, pos = fg_gallery([10, 11, 10, 12], [11, 11, 10, 12, 10])
    assert keep.tolist() == [0, 2, 3]
    assert pos.tolist() == [1, 0, 1, 2]
    with pytest.raises(ValueError, match="no photo"):
        fg_gallery([10, 99], [10, 11])


def test_evaluate_fg_uses_distinct_photos():
    rng = np.random.default_rng(0)
    photos = rng.normal(size=(6, 4))
    photo_inst = [0, 1, 2, 3, 4, 5]
    # the photo set lists every photo twice; the gallery must still have 6 items
    photo_ds = DictDataset(np.r_[photos, photos], [0] * 12, photo_inst * 2, domain=1)
    sketch_inst = [0, 0, 1, 2, 3, 4, 5, 5]
    sketches = photos[sketch_inst] + rng.normal(scale=0.3, size=(8, 4))
    sketch_ds = DictDataset(sketches, [0] * 8, sketch_inst)
    res = evaluate_fg(flat, flat, sketch_ds, photo_ds, ks=(1, 3))
    ref = fg_accuracy(sketches, photos, sketch_inst, ks=(1, 3))
    assert res.info["gallery_size"] == 6
    assert dict(res) == pytest.approx(dict(ref))


def test_evaluate_category_matches_retrieval_metrics():
    rng = np.random.default_rng(1)
    sk, ph = rng.normal(size=(10, 3)), rng.normal(size=(25, 3))
    sl, pl = rng.integers(0, 3, 10), rng.integers(0, 3, 25)
    res = evaluate_category(flat, flat, DictDataset(sk, sl, [-1] * 10), DictDataset(ph, pl, [-1] * 25, 1),
                            metrics=("map@all", "p@5"), ap="voc")
    ref = retrieval_metrics(sk.astype(np.float32), sl, ph.astype(np.float32), pl, metrics=("map@all", "p@5"), ap="voc")
    assert dict(res) == dict(ref)
    assert res.info["ap"] == "voc"
