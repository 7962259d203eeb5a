"""Triplet, pair and P x K samplers: correctness of positives/negatives and determinism."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from sbirlib.data.samplers import PairDataset, PKBatchSampler, TripletDataset


class Toy(Dataset):
    """Items whose image encodes (label, instance) so a test can read them back."""

    def __init__(self, labels, instances):
        self.labels, self.instances = list(labels), list(instances)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"image": torch.tensor([float(self.labels[i]), float(self.instances[i])]),
                "label": self.labels[i], "instance": self.instances[i], "domain": 0, "index": i}


# 3 classes x 4 instances; 2 sketches per instance, 1 photo per instance
PH = Toy([c for c in range(3) for _ in range(4)], list(range(12)))
SK = Toy([c for c in range(3) for _ in range(8)], [i for i in range(12) for _ in range(2)])


@pytest.mark.parametrize("hard", [0.0, 0.5, 1.0])
def test_instance_triplets(hard):
    ds = TripletDataset(SK, PH, level="instance", seed=1, hard_negative=hard)
    same_class = 0
    for i in range(len(ds)):
        t = ds[i]
        assert t["positive"][1] == t["instance"] == SK.instances[i]
        assert t["negative"][1] != t["instance"]
        same_class += int(t["negative"][0] == t["label"])
    if hard == 1.0:
        assert same_class == len(ds)
    if hard == 0.0:
        assert same_class < len(ds)


def test_category_triplets_and_determinism():
    ds = TripletDataset(SK, PH, level="category", seed=3)
    for i in range(len(ds)):
        t = ds[i]
        assert t["positive"][0] == t["label"] != t["negative"][0] == t["negative_label"]
    first = [ds.sample_indices(i) for i in range(len(ds))]
    assert first == [TripletDataset(SK, PH, level="category", seed=3).sample_indices(i) for i in range(len(ds))]
    ds.set_epoch(1)
    assert first != [ds.sample_indices(i) for i in range(len(ds))]
    batch = next(iter(DataLoader(ds, batch_size=4)))
    assert batch["sketch"].shape == (4, 2) and set(batch) >= {"sketch", "positive", "negative", "label", "instance"}


def test_triplets_reject_unpaired_data():
    with pytest.raises(ValueError, match="photo for every sketch instance"):
        TripletDataset(SK, Toy([0, 1], [0, 1]), level="instance")
    with pytest.raises(ValueError, match="level"):
        TripletDataset(SK, PH, level="pixel")


def test_pairs():
    ds = PairDataset(SK, PH, negatives=0.5, seed=0)
    assert len(ds) == len(SK) + len(SK) // 2
    targets = Counter()
    for i in range(len(ds)):
        p = ds[i]
        targets[p["target"]] += 1
        same = bool(p["sketch"][1] == p["photo"][1])
        assert same == (p["target"] == 1)
        if p["target"] == 0:
            assert p["photo"][0] == p["sketch"][0]  # negatives are same-class, other instance
    assert targets == {1: len(SK), 0: len(SK) // 2}


def test_pk_batches():
    labels = [c for c in range(5) for _ in range(3 + c)]
    sampler = PKBatchSampler(labels, p=3, k=4, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == len(labels) // 12
    for b in batches:
        counts = Counter(labels[i] for i in b)
        assert len(b) == 12 and len(counts) == 3 and set(counts.values()) == {4}
    assert batches == list(PKBatchSampler(labels, p=3, k=4, seed=0))
    sampler.set_epoch(1)
    assert list(sampler) != batches
    many = PKBatchSampler(labels, p=2, k=2, seed=0, batches_per_epoch=50)
    seen = Counter(labels[i] for b in many for i in b)
    assert set(seen) == set(range(5))  # every class is visited
    with pytest.raises(ValueError, match="classes"):
        PKBatchSampler(labels, p=6, k=2)
    loader = DataLoader(SK, batch_sampler=PKBatchSampler(SK.labels, p=2, k=3))
    assert next(iter(loader))["image"].shape == (6, 2)
