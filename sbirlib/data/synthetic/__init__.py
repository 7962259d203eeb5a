"""The embedded synthetic SBIR benchmark ("the MNIST of SBIR"), see chapter 00 (Data).

35 parametric object classes (:mod:`.shapes`), rendered as shaded, textured photos on cluttered
backgrounds and as abstract, wobbly sketches with independent pose jitter (:mod:`.render`),
materialised on disk in a Sketchy-like layout with named, versioned splits (:mod:`.dataset`).

>>> from sbirlib.data import synthetic
>>> ds = synthetic.SyntheticSBIR("fg", "test", "sketch", in_memory=True, n_classes=2)
>>> ds[0]["image"].shape
torch.Size([1, 64, 64])
"""

from __future__ import annotations

from typing import Any

from sbirlib.data.registry import register_dataset
from sbirlib.data.synthetic.dataset import (
    GENERATOR_VERSION,
    SPLIT_VERSION,
    TASKS,
    SyntheticConfig,
    SyntheticSBIR,
    chance_levels,
    materialise,
    split_name,
)
from sbirlib.data.synthetic.render import (
    Difficulty,
    Instance,
    render_photo,
    render_sketch,
    sample_instance,
    sketch_strokes,
    strokes_to_image,
)
from sbirlib.data.synthetic.shapes import CLASS_NAMES, TEMPLATES

__all__ = [
    "CLASS_NAMES",
    "TEMPLATES",
    "TASKS",
    "GENERATOR_VERSION",
    "SPLIT_VERSION",
    "Difficulty",
    "Instance",
    "SyntheticConfig",
    "SyntheticSBIR",
    "chance_levels",
    "materialise",
    "render_photo",
    "render_sketch",
    "sample_instance",
    "sketch_strokes",
    "split_name",
    "strokes_to_image",
]


@register_dataset("synthetic-category",
                  "synthetic SBIR, category level (DSH-style held-out query sketches, 35 classes)")
def synthetic_category(root=None, split: str = "train", modality: str = "sketch", **kwargs: Any) -> SyntheticSBIR:
    """``SyntheticSBIR(task="category", ...)``."""
    if kwargs.get("category") is not None:
        raise ValueError("synthetic-category uses all classes; category= applies to synthetic-fg only")
    kwargs.pop("category", None)
    return SyntheticSBIR("category", split, modality, root=root, **kwargs)


@register_dataset("synthetic-zeroshot",
                  "synthetic SBIR, zero-shot (disjoint seen/unseen classes, validation classes from seen)")
def synthetic_zeroshot(root=None, split: str = "train", modality: str = "sketch", **kwargs: Any) -> SyntheticSBIR:
    """``SyntheticSBIR(task="zeroshot", ...)``."""
    if kwargs.get("category") is not None:
        raise ValueError("synthetic-zeroshot uses all classes; category= applies to synthetic-fg only")
    kwargs.pop("category", None)
    return SyntheticSBIR("zeroshot", split, modality, root=root, **kwargs)


@register_dataset("synthetic-fg",
                  "synthetic SBIR, fine-grained (instance-level; category=<class> for one class)")
def synthetic_fg(root=None, split: str = "train", modality: str = "sketch", **kwargs: Any) -> SyntheticSBIR:
    """``SyntheticSBIR(task="fg", ...)``; ``category=`` picks one class (QMUL-style)."""
    return SyntheticSBIR("fg", split, modality, root=root, **kwargs)
