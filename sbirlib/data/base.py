"""The base image dataset every SBIR loader (synthetic or real) builds on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

__all__ = ["DOMAINS", "MODALITIES", "SBIRImageDataset", "verify_str_arg", "load_image"]

#: integer code of each domain in a batch's ``"domain"`` field
DOMAINS = {"sketch": 0, "photo": 1, "edge": 2}
MODALITIES = tuple(DOMAINS)


def verify_str_arg(value: str, name: str, allowed: Sequence[str]) -> str:
    """Check a string argument against its allowed values with a helpful error."""
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not valid; expected one of {', '.join(map(repr, allowed))}")
    return value


def load_image(path: str | Path, mode: str) -> Image.Image:
    """Open an image file and convert it to ``mode``, naming the file if it is unreadable."""
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert(mode)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise OSError(
            f"cannot read image {path}: {err}. The file is corrupt or truncated; "
            "re-download the dataset or delete the file."
        ) from err


class SBIRImageDataset(Dataset):
    """A list of images of one modality with class labels and (optional) instance ids.

    Subclasses fill ``samples`` (anything ``load_sample`` understands: a path or an index into
    an array), ``labels``, ``instances`` and ``classes``. Items are dicts
    ``{"image", "label", "instance", "domain", "index"}`` (see CONTRIBUTING.md).
    """

    def __init__(
        self,
        samples: Sequence[Any],
        labels: Sequence[int],
        classes: Sequence[str],
        modality: str,
        split: str,
        instances: Sequence[int] | None = None,
        transform: Callable[[Any], Any] | None = None,
        root: str | Path | None = None,
    ) -> None:
        verify_str_arg(modality, "modality", MODALITIES)
        if len(samples) != len(labels):
            raise ValueError(f"{len(samples)} samples but {len(labels)} labels")
        self.samples = list(samples)
        self.labels = [int(x) for x in labels]
        self.instances = [int(x) for x in instances] if instances is not None else [-1] * len(self.samples)
        self.classes = list(classes)
        self.modality = modality
        self.split = split
        self.transform = transform
        self.root = Path(root) if root is not None else None

    # -- to override -----------------------------------------------------------------
    def load_sample(self, sample: Any) -> Image.Image | np.ndarray | torch.Tensor:
        """Load one sample; the default treats it as an image path."""
        return load_image(sample, "L" if self.modality != "photo" else "RGB")

    # -- torch Dataset ---------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image = self.load_sample(self.samples[index])
        if self.transform is not None:
            image = self.transform(image)
        return {
            "image": image,
            "label": self.labels[index],
            "instance": self.instances[index],
            "domain": DOMAINS[self.modality],
            "index": index,
        }

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [
            f"Number of images: {len(self)}",
            f"Classes: {len(self.classes)}",
            f"Modality: {self.modality}",
            f"Split: {self.split}",
        ]
        if self.root is not None:
            lines.append(f"Root: {self.root}")
        if any(i >= 0 for i in self.instances):
            lines.append(f"Instances: {len(set(self.instances))}")
        if self.transform is not None:
            lines.append(f"Transform: {self.transform}")
        extra = self.extra_repr()
        if extra:
            lines += extra.splitlines()
        body = "\n    ".join(lines)
        return f"{type(self).__name__}\n    {body}"
