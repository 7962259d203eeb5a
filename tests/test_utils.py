import random

import numpy as np
import pytest
import torch

from sbirlib import utils


def test_seed_everything_repeats_all_generators():
    utils.seed_everything(123)
    a = (random.random(), np.random.rand(), torch.rand(3))
    utils.seed_everything(123)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])


def test_get_device_auto_and_explicit():
    dev = utils.get_device("auto")
    assert isinstance(dev, torch.device)
    assert utils.get_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert dev.type in ("cpu", "mps")
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            utils.get_device("cuda")


def test_env_report_has_provenance_fields(capsys):
    report = utils.env_report("cpu")
    for key in ("torch", "python", "device", "commit", "sbirlib"):
        assert key in report
    assert "torch" in capsys.readouterr().out


def test_data_root_errors_name_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv("SBIR_DATA", raising=False)
    with pytest.raises(utils.DataNotFoundError, match="SBIR_DATA"):
        utils.data_root()
    assert utils.data_root(required=False) is None
    with pytest.raises(utils.DataNotFoundError, match="does not exist"):
        utils.data_root(tmp_path / "missing")
    monkeypatch.setenv("SBIR_DATA", str(tmp_path))
    assert utils.data_root() == tmp_path


def test_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SBIR_CACHE", str(tmp_path))
    path = utils.cache_dir("a", "b")
    assert path == tmp_path / "a" / "b" and path.is_dir()
