"""Restricted unpickler and stroke rasteriser for vector sketches."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from sbirlib.data.vector import (
    RestrictedUnpickler,
    UnsafePickleError,
    load_stroke_pickle,
    rasterize_strokes,
    split_strokes,
)


def _strokes() -> np.ndarray:
    # two strokes: a horizontal line (row 50) and a vertical line (column 200)
    return np.array([[20, 50, 0], [120, 50, 1], [200, 100, 0], [200, 180, 1]], dtype=np.float64)


def test_plain_containers_and_arrays_load(tmp_path):
    data = {"/train/a_1": _strokes(), "/test/b-c_d_12": _strokes()[:2]}
    path = tmp_path / "X_Coordinate"
    for protocol in (2, 3, 4, 5):
        path.write_bytes(pickle.dumps(data, protocol=protocol))
        out = load_stroke_pickle(path)
        assert sorted(out) == sorted(data)
        np.testing.assert_array_equal(out["/train/a_1"], data["/train/a_1"])


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_restricted_unpickler_refuses_code(tmp_path):
    path = tmp_path / "evil"
    path.write_bytes(pickle.dumps({"/train/x_1": _Evil()}))
    with pytest.raises(UnsafePickleError, match=r"(posix|os|nt)\.system"):
        load_stroke_pickle(path)
    import collections
    import io

    payload = pickle.dumps(collections.OrderedDict(a=1))
    with pytest.raises(UnsafePickleError, match="OrderedDict"):
        RestrictedUnpickler(io.BytesIO(payload)).load()


def test_bad_pickles_name_the_file(tmp_path):
    path = tmp_path / "trunc"
    path.write_bytes(pickle.dumps({"/train/a_1": _strokes()})[:30])
    with pytest.raises(ValueError, match="trunc"):
        load_stroke_pickle(path)
    path.write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match="expected a dict"):
        load_stroke_pickle(path)
    path.write_bytes(pickle.dumps({"k": np.zeros((4, 2))}))
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        load_stroke_pickle(path)


def test_split_and_rasterize():
    pts = _strokes()
    strokes = split_strokes(pts)
    assert [len(s) for s in strokes] == [2, 2]
    img = np.asarray(rasterize_strokes(pts, 256))
    assert img.shape == (256, 256) and img[0, 0] == 255
    assert img[50, 70] < 128  # on the horizontal stroke (x -> column, y -> row)
    assert img[140, 200] < 128  # on the vertical stroke
    assert img[75, 160] == 255  # pen up between the strokes: no connecting line
    small = np.asarray(rasterize_strokes(pts, 64))
    assert small.shape == (64, 64) and small[12, 17] < 128
    # deterministic
    assert np.array_equal(img, np.asarray(rasterize_strokes(pts, 256)))
    # a single-point stroke is a dot
    dot = np.asarray(rasterize_strokes(np.array([[100.0, 100.0, 1.0]]), 256))
    assert dot[100, 100] < 128


@pytest.mark.realdata
def test_chairv2_pickle_real(shared_data):
    path = shared_data / "chairv2_vector" / "ChairV2_Coordinate"
    if not path.is_file():
        pytest.skip("ChairV2 vector pickle not found under $SBIR_DATA/chairv2_vector")
    data = load_stroke_pickle(path)
    assert len(data) == 1275
    assert sum(k.startswith("/train/") for k in data) == 952
    arr = next(iter(data.values()))
    assert arr.shape[1] == 3 and arr[-1, 2] == 1
