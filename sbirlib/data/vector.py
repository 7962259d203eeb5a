"""Vector sketches: a restricted unpickler for stroke pickles and a stroke rasteriser.

QMUL Shoe-V2 / Chair-V2 vector sketches are published as a Python pickle of one ``dict``
(``'/train/<photo_id>_<k>'`` -> ``float64 (n, 3)`` array of ``[x, y, pen_end]``, ``pen_end = 1``
on the last point of each stroke; canvas 256×256). Unpickling arbitrary files runs arbitrary
code, so :func:`load_stroke_pickle` uses :class:`RestrictedUnpickler`, which resolves only the
global names NumPy needs to rebuild an array (:data:`ALLOWED_GLOBALS`). Everything else (plain dicts, lists,
tuples, strings, numbers) needs no global lookup and loads normally.

:func:`rasterize_strokes` draws the strokes as **dark lines on a white background** (the
polarity of every other sketch in sbirlib; the reference rasteriser of Bhunia et al. draws
white-on-black 1-px lines and dilates once, i.e. about 3 px wide, which ``line_width=3``
matches).
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["RestrictedUnpickler", "UnsafePickleError", "load_stroke_pickle", "split_strokes", "rasterize_strokes"]

#: the only globals a stroke pickle may reference (NumPy 1.x and 2.x spellings), mapped to
#: where they live now. ``_codecs.encode`` (protocol 2 stores array bytes with it) and
#: ``_frombuffer`` (protocol 5) are pure functions that build bytes / arrays.
ALLOWED_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
})


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle references a global that is not on the allow-list (nothing was executed)."""


def _allowed_object(module: str, name: str) -> Any:
    import importlib

    if module == "_codecs":
        import _codecs

        return _codecs.encode
    if module == "numpy":
        return getattr(np, name)
    for mod in (module.replace("numpy.core", "numpy._core"), module):
        try:
            return getattr(importlib.import_module(mod), name)
        except (ImportError, AttributeError):
            continue
    raise UnsafePickleError(f"{module}.{name} is allowed but not available in this NumPy")


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that accepts plain containers and NumPy arrays only."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_GLOBALS:
            return _allowed_object(module, name)
        raise UnsafePickleError(
            f"refusing to load {module}.{name} from a pickle: only plain containers and NumPy arrays are "
            "allowed (the file may be corrupt or malicious)"
        )


def load_stroke_pickle(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load a stroke pickle (``{key: (n, 3) array}``) through :class:`RestrictedUnpickler`.

    Raises :class:`UnsafePickleError` for a pickle that needs any other global, and
    ``ValueError`` naming the file when the content is not a dict of ``(n, 3)`` arrays.
    """
    path = Path(path)
    data = path.read_bytes()
    try:
        obj = RestrictedUnpickler(io.BytesIO(data)).load()
    except UnsafePickleError as err:
        raise UnsafePickleError(f"{path}: {err}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise ValueError(f"cannot read stroke pickle {path}: {err}; the file is corrupt or truncated") from err
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a dict of stroke arrays, got {type(obj).__name__}")
    for key, value in obj.items():
        arr = np.asarray(value)
        if arr.ndim != 2 or arr.shape[1] < 3:
            raise ValueError(f"{path}: entry {key!r} has shape {arr.shape}; expected (n, 3) [x, y, pen_end]")
    return obj


def split_strokes(points: np.ndarray) -> list[np.ndarray]:
    """Split an ``(n, 3)`` ``[x, y, pen_end]`` array into strokes (a stroke ends where ``pen_end == 1``)."""
    points = np.asarray(points, dtype=np.float64)
    ends = np.flatnonzero(points[:, 2] > 0.5)
    strokes, start = [], 0
    for end in ends:
        strokes.append(points[start : end + 1, :2])
        start = end + 1
    if start < len(points):
        strokes.append(points[start:, :2])
    return [s for s in strokes if len(s)]


def rasterize_strokes(
    points: np.ndarray,
    size: int = 256,
    *,
    canvas: int = 256,
    line_width: int = 3,
) -> Image.Image:
    """Render ``[x, y, pen_end]`` strokes to a grayscale PIL image (dark strokes on white).

    Coordinates are on a ``canvas``×``canvas`` grid (x -> column, y -> row) and are scaled to
    ``size``. Single-point strokes become dots. Deterministic.
    """
    scale = size / float(canvas)
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    width = max(1, int(round(line_width * scale)))
    for stroke in split_strokes(points):
        xy = [(float(x) * scale, float(y) * scale) for x, y in stroke]
        if len(xy) == 1:
            x, y = xy[0]
            r = width / 2
            draw.ellipse([x - r, y - r, x + r, y + r], fill=0)
        else:
            draw.line(xy, fill=0, width=width, joint="curve")
    return image
