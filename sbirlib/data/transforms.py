"""Image transforms shared by every dataset: tensors, channel handling, light augmentation.

Datasets hand a PIL image to ``transform``; :func:`build_transform` returns the usual chain
(resize, optional augmentation, tensor, optional 3 channels and ImageNet normalisation) so that
chapters do not each rebuild it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ToTensor01", "RepeatChannels", "build_transform"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ToTensor01:
    """PIL image or ``uint8`` array -> float tensor ``[C, H, W]`` in ``[0, 1]`` (no normalisation)."""

    def __call__(self, image) -> torch.Tensor:
        arr = np.array(image, dtype=np.float32) / 255.0
        t = torch.from_numpy(arr)
        return t.unsqueeze(0) if t.ndim == 2 else t.permute(2, 0, 1).contiguous()

    def __repr__(self) -> str:
        return "ToTensor01()"


class RepeatChannels:
    """Repeat a 1-channel tensor to ``channels`` (sketches into RGB backbones); others pass through."""

    def __init__(self, channels: int = 3) -> None:
        self.channels = channels

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        return t.expand(self.channels, *t.shape[1:]).contiguous() if t.shape[0] == 1 else t

    def __repr__(self) -> str:
        return f"RepeatChannels({self.channels})"


def build_transform(image_size: int | None = None, *, train: bool = False, channels: int | None = None,
                    normalize: bool = False, flip: bool = False, max_shift: float = 0.0,
                    max_rotation: float = 0.0) -> Callable[[Image.Image], torch.Tensor]:
    """The standard transform chain.

    Args:
        image_size: resize to this square size (``None`` keeps the size).
        train: apply the augmentation below (off at evaluation time).
        channels: 3 repeats grey images to RGB (for ImageNet backbones); ``None`` keeps them.
        normalize: ImageNet mean/std normalisation (only with 3 channels).
        flip: random horizontal flip (train only). Off by default: a flip changes fine-grained
            attributes such as which side a handle is on.
        max_shift, max_rotation: random translation (fraction of the size) and rotation
            (degrees), train only; the fill is white, the background of sketches.
    """
    steps: list[Callable] = []
    if image_size is not None:
        steps.append(T.Resize((image_size, image_size), interpolation=T.InterpolationMode.BILINEAR))
    if train and (max_shift > 0 or max_rotation > 0):
        steps.append(T.RandomAffine(degrees=max_rotation, translate=(max_shift, max_shift), fill=255))
    if train and flip:
        steps.append(T.RandomHorizontalFlip())
    steps.append(ToTensor01())
    if channels is not None:
        steps.append(RepeatChannels(channels))
    if normalize:
        if channels not in (None, 3):
            raise ValueError("normalize=True needs 3 channels")
        steps.append(T.Normalize(IMAGENET_MEAN, IMAGENET_STD))
    return T.Compose(steps)
