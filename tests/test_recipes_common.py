"""Shared recipe machinery and the Triplet-SN / TripletCE / pre-training recipes on tiny data."""

from __future__ import annotations

import json

import pytest
import torch

from sbirlib import utils
from sbirlib.profiles import resolve_profile
from sbirlib.recipes import common, pretrain, triplet_ce, triplet_sn

TINY = {"n_classes": 3, "n_instances": 6, "in_memory": True}


def tiny_fg_cfg(**kw):
    over = dict(epochs=2, steps_per_epoch=2, batch_size=4, pretrained=False, views=1)
    over.update(kw)
    return resolve_profile(triplet_sn.PROFILES, "smoke", synthetic=TINY, **over)


@pytest.fixture(scope="module")
def fg_data():
    return triplet_sn.load_data(tiny_fg_cfg())


def test_image_bank_and_fg_pairing(fg_data):
    assert set(fg_data) == {f"{s}_{side}" for s in common.SPLITS for side in ("sketch", "photo")}
    sk, ph = fg_data["train_sketch"], fg_data["train_photo"]
    assert sk.images.shape[1:] == (1, 72, 72) and ph.images.shape[1:] == (1, 72, 72)
    assert 0.0 <= float(sk.images.min()) and float(sk.images.max()) <= 1.0
    assert set(sk.instances) == set(ph.instances)
    item = sk[0]
    assert set(item) == {"image", "label", "instance", "domain", "index"} and item["domain"] == 0
    assert fg_data["train_photo"][0]["domain"] == 2
    assert "ImageBank(" in repr(sk)
    rgb = common.ImageBank(sk, size=32, channels=3)
    assert rgb.images.shape[1:] == (3, 32, 32)


def test_crops_are_seeded_and_sized():
    x = torch.rand(5, 1, 20, 20)
    torch.manual_seed(0)
    a = common.random_crop_flip(x, 16)
    torch.manual_seed(0)
    b = common.random_crop_flip(x, 16)
    assert a.shape == (5, 1, 16, 16) and torch.equal(a, b)
    torch.testing.assert_close(common.center_crop(x, 16), x[..., 2:18, 2:18])
    with pytest.raises(ValueError):
        common.random_crop_flip(x, 21)


def test_real_dataset_without_root_names_sbir_data(monkeypatch):
    monkeypatch.delenv("SBIR_DATA", raising=False)
    cfg = resolve_profile(triplet_sn.PROFILES, "cpu-real")
    with pytest.raises(utils.DataNotFoundError, match="SBIR_DATA"):
        common.build_source(cfg, "train", "sketch")


def test_triplet_sn_run_writes_record_and_reloads(tmp_path, fg_data):
    cfg = tiny_fg_cfg()
    res = triplet_sn.run(cfg, output_dir=tmp_path, device="cpu", data=fg_data, progress=False)
    rec = json.loads((tmp_path / "metrics.json").read_text())
    assert (tmp_path / "checkpoint.pt").is_file()
    for key in ("test/acc@1", "test/acc@10", "val/acc@1", "baseline/acc@1", "test_1view/acc@1"):
        assert 0.0 <= rec["metrics"][key] <= 1.0
    assert rec["test"]["acc@1"] == rec["metrics"]["test/acc@1"]
    prov = rec["provenance"]
    assert prov["profile"] == "smoke" and prov["seed"] == 0 and prov["config"]["epochs"] == 2
    assert "commit" in prov and prov["wall_time_s"] > 0
    assert not res.history.loaded and res.history.epochs == 2
    again = triplet_sn.run(cfg, output_dir=tmp_path, device="cpu", data=fg_data, progress=False)
    assert again.history.loaded
    assert again.metrics["test/acc@1"] == pytest.approx(res.metrics["test/acc@1"])


def test_triplet_sn_trains_only_fc_layers_and_in_batch_loss(fg_data):
    cfg = tiny_fg_cfg(loss="in-batch")
    model = triplet_sn.build_model(cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = triplet_sn.build_optimizer(model, cfg)
    batch = next(iter(triplet_sn.make_loader(cfg, fg_data)))
    out = triplet_sn.make_step_fn(cfg)(model, batch, torch.device("cpu"))
    out["loss"].backward()
    opt.step()
    after = model.state_dict()
    assert torch.equal(before["features.conv1.weight"], after["features.conv1.weight"])
    assert not torch.equal(before["fc6.weight"], after["fc6.weight"])


def test_full_profile_resolves_and_one_step_runs():
    cfg = resolve_profile(triplet_sn.PROFILES, "full")
    assert (cfg.variant, cfg.input_size, cfg.batch_size, cfg.margin) == ("full", 225, 128, 0.3)
    assert cfg.epochs * cfg.steps_per_epoch == 25_000 and cfg.select == "last"
    model = triplet_sn.build_model(cfg)
    opt = triplet_sn.build_optimizer(model, cfg)
    assert isinstance(opt, torch.optim.SGD)
    assert opt.param_groups[1]["lr"] == pytest.approx(2e-3) and opt.param_groups[1]["weight_decay"] == 0
    assert opt.param_groups[0]["weight_decay"] == pytest.approx(5e-4)
    g = torch.Generator().manual_seed(0)
    batch = {k: torch.rand(2, 1, 256, 256, generator=g) for k in ("sketch", "positive", "negative")}
    batch["instance"] = torch.tensor([1, 2])
    out = triplet_sn.make_step_fn(cfg)(model, batch, torch.device("cpu"))
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    opt.step()


def test_triplet_ce_smoke_tiny(tmp_path):
    over = dict(epochs=1, steps_per_epoch=2, batch_size=4, backbone="resnet18_narrow", input_size=32, load_size=32)
    cfg = resolve_profile(triplet_ce.PROFILES, "smoke", synthetic=TINY, **over)
    res = triplet_ce.run(cfg, output_dir=tmp_path, device="cpu", progress=False)
    assert 0.0 <= res.metrics["test/map@all"] <= 1.0 and "test/p@100" in res.metrics
    assert res.history.train[0]["ce"] > 0
    assert set(triplet_ce.PROFILES) == {"smoke", "cpu-real", "full"}
    full = resolve_profile(triplet_ce.PROFILES, "full")
    assert (full.backbone, full.embed_dim, full.margin, full.lr) == ("resnet50", 512, 0.2, 1e-4)


def test_pretrain_tiny_caches_trunk(tmp_path):
    cfg = resolve_profile(pretrain.PROFILES, "smoke", epochs=1, batch_size=8)
    dict.__setitem__(cfg, "synthetic", TINY)
    model, hist, metrics = pretrain.run(cfg, output_dir=tmp_path, device="cpu", progress=False)
    assert hist.epochs == 1 and 0.0 <= metrics["test/top1"] <= 1.0
    assert model.head is not None and (tmp_path / "checkpoint.pt").is_file()
    _, again, _ = pretrain.run(cfg, output_dir=tmp_path, device="cpu", progress=False)
    assert again.loaded
    assert pretrain.cache_tag(dict(cfg)).startswith("san-smoke-")


@pytest.mark.realdata
def test_qmul_fg_data_pairs_sketches_and_edges(qmul_v1_root):
    cfg = resolve_profile(triplet_sn.PROFILES, "cpu-real", load_size=32)
    data = triplet_sn.load_data(cfg, str(qmul_v1_root))
    assert len(data["test_sketch"]) == 115 and len(data["test_photo"]) == 115
    assert len(data["train_sketch"]) + len(data["val_sketch"]) == 304
    base = common.pixel_baseline(data["test_sketch"], data["test_photo"])
    assert base["acc@1"] > 0.1  # a broken pairing gives about 1/115
