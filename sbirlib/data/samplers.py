"""Samplers that turn a sketch dataset and a photo dataset into training examples.

* :class:`TripletDataset` — (anchor sketch, positive photo, negative photo) triplets at the
  instance level (the positive is the sketch's own photo) or the category level (any photo of
  the sketch's class);
* :class:`PairDataset` — instance-level (sketch, photo) pairs, optionally with negative pairs;
* :class:`PKBatchSampler` — class-balanced batches of ``P`` classes x ``K`` samples.

All randomness is a function of ``(seed, epoch, index)``: call ``set_epoch(epoch)`` at the start
of every epoch to draw fresh negatives; the same seed and epoch always give the same examples,
whatever the number of workers or the order in which items are read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset, Sampler

from sbirlib.data.base import verify_str_arg

__all__ = ["TripletDataset", "PairDataset", "PKBatchSampler"]


def _group(keys: Sequence[int]) -> dict[int, np.ndarray]:
    groups: dict[int, list[int]] = defaultdict(list)
    for i, k in enumerate(keys):
        groups[int(k)].append(i)
    return {k: np.asarray(v) for k, v in groups.items()}


def _image(item: Any) -> Any:
    return item["image"] if isinstance(item, dict) else item


class TripletDataset(Dataset):
    """Triplets ``{"sketch", "positive", "negative", "label", "instance", ...}`` for triplet losses.

    Args:
        sketches: dataset of sketch items (dicts with ``image``, ``label``, ``instance``) that
            exposes ``.labels`` and ``.instances``.
        photos: the photo (or edge-map) dataset, same interface.
        level: ``"instance"``: positive = the photo with the sketch's instance id, negative = a
            photo of another instance, drawn from the *same class* with probability
            ``hard_negative`` (the fine-grained case) and from any class otherwise;
            ``"category"``: positive = a random photo of the sketch's class, negative = a photo
            of another class.
        seed: base seed; see :meth:`set_epoch`.
        hard_negative: instance level only, the probability of a same-class negative.

    One item per sketch; ``len(self) == len(sketches)``.
    """

    def __init__(self, sketches: Dataset, photos: Dataset, level: str = "instance", seed: int = 0,
                 hard_negative: float = 0.5) -> None:
        verify_str_arg(level, "level", ("instance", "category"))
        if not 0.0 <= hard_negative <= 1.0:
            raise ValueError(f"hard_negative={hard_negative} must lie in [0, 1]")
        self.sketches, self.photos, self.level = sketches, photos, level
        self.seed, self.epoch, self.hard_negative = int(seed), 0, float(hard_negative)
        self._sk_labels = list(sketches.labels)
        self._sk_inst = list(sketches.instances)
        self._ph_labels = np.asarray(photos.labels)
        self._ph_by_label = _group(photos.labels)
        self._ph_by_inst = _group(photos.instances)
        if level == "instance":
            missing = sorted({i for i in self._sk_inst if i not in self._ph_by_inst})
            if missing:
                raise ValueError(
                    f"level='instance' needs a photo for every sketch instance; {len(missing)} sketch "
                    f"instances have none (e.g. {missing[:5]}). Use the same split for both datasets "
                    "or level='category'."
                )
        else:
            missing = sorted({c for c in self._sk_labels if c not in self._ph_by_label})
            if missing:
                raise ValueError(f"level='category': classes {missing[:5]} have sketches but no photos")
        if level == "category" and len(self._ph_by_label) < 2:
            raise ValueError("level='category' triplets need photos of at least two classes")
        if level == "instance" and len(self._ph_by_inst) < 2:
            raise ValueError("level='instance' triplets need photos of at least two instances")

    def set_epoch(self, epoch: int) -> None:
        """Draw a different (but reproducible) set of positives/negatives for ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.sketches)

    def sample_indices(self, index: int) -> tuple[int, int]:
        """``(positive photo index, negative photo index)`` of triplet ``index`` this epoch."""
        rng = np.random.default_rng([self.seed, self.epoch, index])
        label = self._sk_labels[index]
        n = len(self._ph_labels)
        if self.level == "instance":
            inst = self._sk_inst[index]
            pos = int(rng.choice(self._ph_by_inst[inst]))
            same = self._ph_by_label[label]
            pool = same[np.asarray([self.photos.instances[j] != inst for j in same], dtype=bool)]
            if len(pool) and rng.random() < self.hard_negative:
                neg = int(rng.choice(pool))
            else:
                while True:  # any photo of another instance
                    neg = int(rng.integers(n))
                    if self.photos.instances[neg] != inst:
                        break
        else:
            pos = int(rng.choice(self._ph_by_label[label]))
            while True:
                neg = int(rng.integers(n))
                if self._ph_labels[neg] != label:
                    break
        return pos, neg

    def __getitem__(self, index: int) -> dict[str, Any]:
        pos, neg = self.sample_indices(index)
        sk = self.sketches[index]
        return {
            "sketch": _image(sk),
            "positive": _image(self.photos[pos]),
            "negative": _image(self.photos[neg]),
            "label": int(self._sk_labels[index]),
            "instance": int(self._sk_inst[index]),
            "negative_label": int(self._ph_labels[neg]),
            "index": index,
        }

    def __repr__(self) -> str:
        return (f"TripletDataset(level={self.level!r}, triplets={len(self)}, photos={len(self._ph_labels)}, "
                f"hard_negative={self.hard_negative}, seed={self.seed}, epoch={self.epoch})")


class PairDataset(Dataset):
    """Instance-level pairs ``{"sketch", "photo", "target", "label", "instance"}``.

    Every sketch is paired with its own photo (``target = 1``). With ``negatives=r > 0`` the
    dataset also holds ``round(r * len(sketches))`` negative pairs (``target = 0``): a sketch
    with the photo of another instance of the same class (a fine-grained negative), redrawn
    every epoch.
    """

    def __init__(self, sketches: Dataset, photos: Dataset, negatives: float = 0.0, seed: int = 0) -> None:
        if negatives < 0:
            raise ValueError(f"negatives={negatives} must be >= 0")
        self.sketches, self.photos = sketches, photos
        self.seed, self.epoch = int(seed), 0
        self._ph_by_inst = _group(photos.instances)
        self._ph_by_label = _group(photos.labels)
        self._sk_inst = list(sketches.instances)
        missing = sorted({i for i in self._sk_inst if i not in self._ph_by_inst})
        if missing or any(i < 0 for i in self._sk_inst):
            raise ValueError(f"PairDataset needs a photo for every sketch instance (missing e.g. {missing[:5]})")
        self.n_neg = int(round(negatives * len(sketches)))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.sketches) + self.n_neg

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self.sketches)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if index < n:
            s, target = index, 1
            p = int(rng.choice(self._ph_by_inst[self._sk_inst[s]]))
        else:
            s, target = int(rng.integers(n)), 0
            inst, label = self._sk_inst[s], self.sketches.labels[s]
            pool = [j for j in self._ph_by_label.get(label, []) if self.photos.instances[j] != inst]
            if not pool:
                pool = [j for j in range(len(self.photos)) if self.photos.instances[j] != inst]
            p = int(rng.choice(pool))
        return {"sketch": _image(self.sketches[s]), "photo": _image(self.photos[p]), "target": target,
                "label": int(self.sketches.labels[s]), "instance": int(self._sk_inst[s]), "index": index}

    def __repr__(self) -> str:
        return f"PairDataset(positives={len(self.sketches)}, negatives={self.n_neg}, seed={self.seed})"


class PKBatchSampler(Sampler[list[int]]):
    """Class-balanced batches: ``p`` classes, ``k`` indices of each, ``p * k`` indices per batch.

    Each epoch the classes are shuffled and visited in groups of ``p``; a class contributes
    ``k`` of its indices (without replacement when it has at least ``k``, with replacement
    otherwise). ``len(self)`` batches per epoch, by default ``len(labels) // (p * k)`` (at least
    one). Deterministic given ``seed`` and :meth:`set_epoch`.
    """

    def __init__(self, labels: Sequence[int], p: int, k: int, seed: int = 0,
                 batches_per_epoch: int | None = None) -> None:
        self.by_label = _group(labels)
        if p < 1 or k < 1:
            raise ValueError(f"need p >= 1 and k >= 1, got p={p}, k={k}")
        if p > len(self.by_label):
            raise ValueError(f"p={p} classes per batch but the labels hold only {len(self.by_label)} classes")
        self.p, self.k, self.seed, self.epoch = int(p), int(k), int(seed), 0
        self.classes = np.asarray(sorted(self.by_label))
        self.n_batches = batches_per_epoch or max(1, len(labels) // (p * k))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n_batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        order: list[int] = []
        for _ in range(self.n_batches):
            if len(order) < self.p:  # refill; the leftovers come first and are not repeated
                order += [c for c in rng.permutation(self.classes).tolist() if c not in order]
            chosen, order = order[: self.p], order[self.p:]
            batch: list[int] = []
            for c in chosen:
                pool = self.by_label[c]
                take = rng.choice(pool, self.k, replace=len(pool) < self.k)
                batch += [int(i) for i in take]
            yield batch

    def __repr__(self) -> str:
        return f"PKBatchSampler(p={self.p}, k={self.k}, classes={len(self.classes)}, batches={self.n_batches}, seed={self.seed})"
