"""Sketch-classification pre-training (sbirlib.recipes.pretrain): the ResNet-18 variant that
initialises DLI-Net's CPU profile, and the cache tags the Sketch-a-Net chapters rely on."""

from __future__ import annotations

import pytest
import torch

from sbirlib.profiles import resolve_profile
from sbirlib.recipes import dlinet as dli
from sbirlib.recipes import pretrain
from sbirlib.utils import DataNotFoundError


class _Bank(torch.utils.data.Dataset):
    """A tiny in-memory sketch bank with the ImageBank attributes pretrain.run reads."""

    def __init__(self, n: int, size: int, num_classes: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.labels = [i % num_classes for i in range(n)]
        self.classes = [f"c{i}" for i in range(num_classes)]
        # class c: a bright bar at row 4c on a noisy background, so the classes are separable
        self.images = torch.rand(n, 1, size, size, generator=g) * 0.3
        for i, y in enumerate(self.labels):
            self.images[i, :, 4 * y:4 * y + 3, :] = 1.0
        self.instances = list(range(n))

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i], "label": self.labels[i], "instance": i, "domain": 0,
                "index": i}


def test_sketch_a_net_cache_tags_are_unchanged():
    # Triplet-SN and DSSA load these cached pre-trainings by tag: adding the ResNet variant
    # must not change the Sketch-a-Net profiles' settings
    tags = {p: pretrain.cache_tag(resolve_profile(pretrain.PROFILES, p))
            for p in ("smoke", "cpu-real", "full")}
    assert tags["cpu-real"] == "san-cpu-real-04f7eb2ac084340f"
    assert tags["smoke"] == "san-smoke-c22b081baab2c7a4"
    assert all("network" not in pretrain.PROFILES[p] for p in tags)


def test_resnet18_profiles_resolve_and_match_dlinet_cpu_real():
    cfg = resolve_profile(pretrain.PROFILES, "resnet18-cpu-real")
    assert cfg.network == "resnet18" and cfg.dataset == "tuberlin"
    assert pretrain.cache_tag(cfg).startswith("resnet18-cpu-real-")
    assert pretrain.cache_tag(resolve_profile(pretrain.PROFILES, "resnet18-smoke")).startswith(
        "resnet18-smoke-")
    dcfg = resolve_profile(dli.PROFILES, "cpu-real")
    assert dcfg.pretrained is True and dcfg.pretrain_profile == "resnet18-cpu-real"
    # the pre-training sees sketches as DLI-Net cpu-real does: 126 -> random 112 crop
    assert (cfg.load_size, cfg.input_size) == (dcfg.train_resize, dcfg.image_size)
    # smoke stays random-init (spec section 9)
    smoke = resolve_profile(dli.PROFILES, "smoke")
    assert smoke.pretrained is False and smoke.pretrain_profile is None
    with pytest.raises(ValueError, match="unknown pre-training network"):
        pretrain.cache_tag({"network": "vgg", "profile": "x"})


def test_resnet_input_is_dlinets_normalisation():
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(pretrain.resnet_input(x), dli.normalize(x))
    assert pretrain.resnet_input(x).shape == (2, 3, 8, 8)


def test_resnet18_pretraining_runs_caches_and_maps_into_both_dlinet_encoders(tmp_path):
    cfg = resolve_profile(pretrain.PROFILES, "resnet18-smoke", epochs=1, batch_size=8,
                          load_size=36, input_size=32)
    data = {split: _Bank(16, 36, 4, seed) for seed, split in enumerate(("train", "val", "test"))}
    model, hist, metrics = pretrain.run(cfg, output_dir=tmp_path, device="cpu", progress=False,
                                        data=data)
    assert isinstance(model, pretrain.ResNetSketchClassifier) and not hist.loaded
    assert torch.isfinite(torch.tensor(hist.train_loss)).all()
    assert 0.0 <= metrics["test/top1"] <= 1.0 and model.fc.out_features == 4
    _, again, _ = pretrain.run(cfg, output_dir=tmp_path, device="cpu", progress=False, data=data)
    assert again.loaded  # the second call loads the cached weights

    state = model.trunk_state_dict()
    assert "layer3.1.bn2.running_mean" in state and not any(k.startswith("fc") for k in state)
    dcfg = resolve_profile(dli.PROFILES, "cpu-real")
    net = dli.build_model(dcfg, trunk_state=state)
    for enc in (net.sketch_encoder, net.photo_encoder):
        own = enc.trunk.state_dict()
        assert not any(k.startswith("layer4") for k in own)  # mid features: layer4 dropped
        assert own.keys() <= state.keys()
        for k, v in own.items():  # conv1 ... layer3, BatchNorm statistics included
            torch.testing.assert_close(v, state[k], rtol=0, atol=0)
    # two independent copies: training one encoder leaves the other alone
    with torch.no_grad():
        net.sketch_encoder.trunk.conv1.weight.add_(1.0)
    torch.testing.assert_close(net.photo_encoder.trunk.conv1.weight, state["conv1.weight"])
    # the "global" ablation keeps layer4, which is copied too
    glob = dli.build_model(dli.variant(dcfg, feature="global"), trunk_state=state)
    torch.testing.assert_close(glob.photo_encoder.trunk.layer4[1].conv2.weight,
                               state["layer4.1.conv2.weight"])


def test_trunk_state_must_cover_the_encoder():
    dcfg = resolve_profile(dli.PROFILES, "cpu-real")
    state = pretrain.ResNetSketchClassifier(3).trunk_state_dict()
    del state["layer2.0.conv1.weight"]
    with pytest.raises(ValueError, match="lacks 1 tensors"):
        dli.build_model(dcfg, trunk_state=state)
    wrong = {k: v[..., :1] if v.ndim == 4 else v
             for k, v in pretrain.ResNetSketchClassifier(3).trunk_state_dict().items()}
    with pytest.raises(ValueError, match="shape mismatch"):
        dli.build_model(dcfg, trunk_state=wrong)


def test_missing_tuberlin_fails_clearly_never_random(tmp_path, monkeypatch):
    monkeypatch.setenv("SBIR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SBIR_DATA", raising=False)
    empty = tmp_path / "data"
    empty.mkdir()
    dcfg = resolve_profile(dli.PROFILES, "cpu-real")
    for root in (str(empty), None):
        with pytest.raises(DataNotFoundError) as err:
            dli.build_model(dcfg, data_root=root, device="cpu", progress=False)
        msg = str(err.value)
        assert "resnet18-cpu-real" in msg and "tuberlin_subset" in msg
        assert "SBIR_DATA" in msg and "pretrained=False" in msg
    # asking for random weights on purpose works without any data
    net = dli.build_model(dli.variant(dcfg, pretrained=False))
    assert net.arch == "resnet18"


def test_recalibrate_batchnorm_sets_exact_statistics():
    torch.manual_seed(0)
    model = pretrain.ResNetSketchClassifier(3).eval()
    images = torch.rand(6, 1, 32, 32)
    x = pretrain.resnet_input(images)
    with torch.no_grad():
        first = model.trunk.conv1(x)
        weights = model.trunk.conv1.weight.clone()
    n = pretrain.recalibrate_batchnorm(model, images, batch_size=6)
    assert n == sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    bn = model.trunk.bn1
    torch.testing.assert_close(bn.running_mean, first.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(bn.running_var, first.transpose(0, 1).flatten(1).var(dim=1))
    assert bn.momentum == 0.1 and not model.training  # restored
    torch.testing.assert_close(model.trunk.conv1.weight, weights)  # weights untouched
    from sbirlib.models.sketch_a_net import SketchANet

    assert pretrain.recalibrate_batchnorm(SketchANet(variant="narrow", input_size=64), images) == 0
