"""DASE network (spec dase_mems.md sections 2-3, M1-M4, M11) and its SE-ResNe(X)t trunks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sbirlib.models import create_model, dase, se_resnet
from sbirlib.models.registry import list_models


def naive_dase(module, x, d):
    """M1-M4 written out per sample with explicit matrices."""
    w1 = module.fc1.weight.flatten(1)
    w2 = module.fc2.weight.flatten(1)
    out = []
    for xi, di in zip(x, d):
        z = xi.mean((1, 2))
        u = w1 @ z + module.fc1.bias
        u = torch.sigmoid(u) if module.squeeze_act == "sigmoid" else torch.relu(u)
        if module.domain_aware:
            u = torch.cat([u, di.view(1)])
        g = torch.sigmoid(w2 @ u + module.fc2.bias)
        out.append(xi * g.view(-1, 1, 1))
    return torch.stack(out)


@pytest.mark.parametrize("aware,act", [(True, "sigmoid"), (False, "sigmoid"), (True, "relu")])
def test_dase_module_matches_equations(aware, act):
    torch.manual_seed(0)
    module = dase.DASEModule(32, 16, domain_aware=aware, squeeze_act=act)
    assert module.fc2.weight.shape == (32, 2 + int(aware), 1, 1)
    x, d = torch.randn(4, 32, 5, 5), torch.tensor([0.0, 1.0, 0.0, 1.0])
    torch.testing.assert_close(module(x, d), naive_dase(module, x, d))


def test_domain_bit_changes_the_gate_only_when_aware():
    torch.manual_seed(0)
    x = torch.randn(2, 64, 4, 4)
    aware = dase.DASEModule(64, 16, domain_aware=True)
    assert not torch.allclose(aware(x, torch.zeros(2)), aware(x, torch.ones(2)))
    plain = dase.DASEModule(64, 16, domain_aware=False)
    torch.testing.assert_close(plain(x, torch.zeros(2)), plain(x, torch.ones(2)))
    with pytest.raises(ValueError, match="domain bit"):
        aware(x, None)


@pytest.fixture(scope="module")
def full_model():
    torch.manual_seed(0)
    return create_model("dase_seresnext101_32x4d")


@pytest.fixture(scope="module")
def timm_ref():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    return timm.create_model("legacy_seresnext101_32x4d", pretrained=False).eval()


def test_full_model_layout_matches_timm_and_spec(full_model, timm_ref):
    model = full_model
    mods = model.attention_modules()
    aware = [n for n, m in mods if m.domain_aware]
    assert len(aware) == 30 and all(not n.startswith("trunk.layer4") for n in aware)
    assert len(mods) == 33 and all(m.squeeze_act == "sigmoid" for _, m in mods)
    hidden = {n.split(".")[1]: m.fc1.out_channels for n, m in mods}
    assert hidden == {"layer1": 16, "layer2": 32, "layer3": 64, "layer4": 128}
    n_params = sum(p.numel() for p in model.parameters())
    # timm legacy_seresnext101_32x4d (48,955,416 with its 1000-way classifier)
    # - classifier 2,049,000 + head 2048*512+512 + one extra fc2 column per DASE module
    extra = 3 * 256 + 4 * 512 + 23 * 1024
    print(f"DASE SE-ResNeXt-101 parameters: {n_params:,} (the paper reports none)")
    assert n_params == 48_955_416 - 2_049_000 + 2048 * 512 + 512 + extra
    report = se_resnet.load_matching_weights(model.trunk, timm_ref.state_dict())
    assert not report["missing"]
    assert len(report["shape_mismatch"]) == 30
    assert all(n.endswith("se_module.fc2.weight") for n in report["shape_mismatch"])


def test_trunk_equals_timm_forward_with_relu_se(timm_ref):
    ref = timm_ref
    ours = se_resnet.se_resnext101_32x4d(attention=dase.dase_attention("se-relu")).eval()
    se_resnet.load_matching_weights(ours, ref.state_dict())
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, None), ref.forward_features(x))


def test_shapes_at_paper_input_and_gradients(full_model):
    model = full_model.eval()
    with torch.no_grad():
        fmap = model.trunk(torch.rand(1, 3, 224, 224), torch.tensor([1]))
        assert fmap.shape == (1, 2048, 7, 7)
        assert model.head(fmap.mean((2, 3))).shape == (1, 512)
    # gradients on a small input (train mode: BN over the mixed sketch/photo batch)
    model.train()
    f = model(torch.rand(2, 3, 32, 32), torch.tensor([0, 1]))
    assert f.shape == (2, 512)
    f.pow(2).sum().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert all(torch.isfinite(g).all() for g in grads)
    fc2 = model.trunk.layer1[0].se_module.fc2.weight.grad
    assert fc2[:, -1].abs().sum() > 0  # the domain column receives gradient


def test_pretrained_fails_loudly_without_weights(monkeypatch):
    timm = pytest.importorskip("timm")

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(RuntimeError, match="legacy_seresnext101_32x4d.in1k.*pretrained=False"):
        dase.dase_seresnext101_32x4d(pretrained=True)
    with pytest.raises(ValueError, match="no ImageNet weights"):
        dase.dase_seresnet18_cpu(pretrained=True)


def test_pretrained_loader_keeps_dase_fc2_and_head_default(monkeypatch):
    timm = pytest.importorskip("timm")
    real_create = timm.create_model
    fake = real_create("legacy_seresnext101_32x4d", pretrained=False)
    with torch.no_grad():
        for p in fake.parameters():
            p.fill_(0.5)
    monkeypatch.setattr(timm, "create_model", lambda *a, **k: fake)
    model = dase.dase_seresnext101_32x4d(pretrained=True)
    assert torch.all(model.trunk.layer0.conv1.weight == 0.5)
    assert torch.all(model.trunk.layer4[2].se_module.fc2.weight == 0.5)
    assert not torch.all(model.trunk.layer1[0].se_module.fc2.weight == 0.5)
    assert not torch.all(model.head.weight == 0.5)
    assert len(model.pretrained_report["shape_mismatch"]) == 30


def test_cpu_model_shapes_variants_and_registry():
    assert {"dase_seresnext101_32x4d", "dase_seresnet18_cpu", "se_resnext101_32x4d",
            "se_resnet18_narrow"} <= set(list_models())
    torch.manual_seed(0)
    x = torch.rand(4, 3, 32, 32)
    for variant in dase.ATTENTION_VARIANTS:
        model = dase.dase_seresnet18_cpu(width=16, attention=variant)
        assert model(x, torch.tensor([0, 0, 1, 1])).shape == (4, 128)
    model = dase.dase_seresnet18_cpu()
    hidden = [m.fc1.out_channels for _, m in model.attention_modules()]
    assert hidden == [4, 4, 8, 8, 16, 16, 32, 32]
    assert [m.domain_aware for _, m in model.attention_modules()] == [True] * 6 + [False] * 2
    gates = model.gate_means(x, 1)
    assert gates["trunk.layer1.0.se_module"].shape == (64,)
    assert all(m.last_gate is None for _, m in model.attention_modules())
    assert "attention='dase'" in repr(model)


def test_flip_min_distance_matches_loop():
    torch.manual_seed(0)
    q0, q1, g0, g1 = (torch.randn(n, 6) for n in (3, 3, 5, 5))
    d = dase.flip_min_distance([q0, q1], [g0, g1])
    for i in range(3):
        for j in range(5):
            want = min(float(((a[i] - b[j]) ** 2).sum()) for a in (q0, q1) for b in (g0, g1))
            assert abs(float(d[i, j]) - want) < 1e-9 * max(1.0, want) + 1e-6
    mean = dase.flip_min_distance([q0, q1], [g0, g1], reduce="mean")
    assert torch.all(mean >= d - 1e-9)
    model = dase.dase_seresnet18_cpu(width=16)
    batches = [{"image": torch.rand(3, 3, 32, 32), "label": torch.tensor([0, 1, 2])}]
    f, ff, y = dase.embed_with_flips(model, batches, 0)
    assert f.shape == ff.shape == (3, 128) and y.tolist() == [0, 1, 2]


# -- recipe ----------------------------------------------------------------------------------
def test_profiles_resolve_and_cpu_real_fails_loudly():
    from sbirlib.profiles import resolve_profile
    from sbirlib.recipes import dase_mems, get_recipe

    assert get_recipe("dase-mems") is dase_mems
    full = resolve_profile(dase_mems.PROFILES, "full")
    assert full.epochs * full.steps_per_epoch == 200_000 and full.batch_size == 22
    assert full.backbone == "dase_seresnext101_32x4d" and full.pretrained and full.margin == 4.0
    assert full.anneal_fraction * 200_000 == 100_000 and full.hash_bits == (32, 64, 128)
    with pytest.raises(ValueError, match="cpu-real"):
        resolve_profile(dase_mems.PROFILES, "cpu-real")
    factor = dase_mems.lr_lambda(200)
    assert [factor(t) for t in (0, 100, 150, 200)] == [1.0, 1.0, 0.5, 0.0]


def test_full_profile_one_training_step_on_tiny_input(full_model):
    from sbirlib.profiles import resolve_profile
    from sbirlib.recipes import dase_mems

    cfg = resolve_profile(dase_mems.PROFILES, "full")
    cfg = dase_mems.variant(cfg, pretrained=False)  # no network here; the loader is tested above
    model = dase_mems.DASEMEMS(full_model, dase_mems.build_loss(cfg, 250), cfg.loss)
    assert model.loss_fn.anneal_steps == 100_000 and model.loss_fn.centres.shape == (250, 512)
    opt = dase_mems.make_optimizer(model, cfg)
    assert [g["weight_decay"] for g in opt.param_groups] == [1e-4, 0.0]
    assert opt.param_groups[0]["lr"] == 1e-4
    model.train()
    batch = {"sketch": torch.rand(2, 3, 32, 32), "sketch_label": torch.tensor([0, 7]),
             "photo": torch.rand(2, 3, 32, 32), "photo_label": torch.tensor([3, 7])}
    before = model.loss_fn.centres.detach().clone()
    logs = dase_mems.make_step_fn(cfg)(model, batch, torch.device("cpu"))
    opt.zero_grad()
    logs["loss"].backward()
    opt.step()
    assert torch.isfinite(logs["loss"]) and logs["margin"] == 1.0
    assert int(model.train_steps) == 1 and int(model.loss_fn.step) == 1
    assert not torch.equal(before, model.loss_fn.centres)


def test_dase_mems_trains_on_synthetic_task(tmp_path):
    from sbirlib.profiles import resolve_profile
    from sbirlib.recipes import dase_mems

    cfg = resolve_profile(dase_mems.PROFILES, "smoke")
    cfg = dase_mems.variant(cfg, n_classes=6, image_size=32, width=16, epochs=4,
                            steps_per_epoch=20, batch_size=16, hash_steps=100, hash_bits=(8,))
    res = dase_mems.run(cfg, output_dir=tmp_path, device="cpu", checkpoint="train",
                        progress=False)
    m = res.metrics
    print({k: round(v, 3) for k, v in m.items()}, res.chance)
    assert m["train/loss_last"] < m["train/loss_first"]
    assert m["test/map@all"] > res.chance["map@all"] + 0.12  # chance 1/6; trained about 0.4
    assert 0 <= m["test/hash8/map@all"] <= 1
    assert (tmp_path / "metrics.json").is_file() and (tmp_path / "checkpoint.pt").is_file()
    # checkpoint="auto" loads the trained weights (centres and annealing step included)
    again = dase_mems.run(cfg, output_dir=tmp_path, device="cpu", data=res.data,
                          progress=False, write_record=False)
    assert again.history.loaded
    torch.testing.assert_close(again.model.loss_fn.centres, res.model.loss_fn.centres)
    assert int(again.model.loss_fn.step) == 80


def _fake_dsh_layouts(root):
    """TU-Berlin-Ext and Sketchy-Ext folders with DASE's query JSONs (3 classes, tiny images)."""
    import json

    from test_data_real import _png, make_tuberlin_full

    tu = make_tuberlin_full(root / "tu", per_class=12)
    for c, name in enumerate(("ant", "bear (animal)", "wine-bottle")):
        folder = name.replace(" ", "").replace("-", "").replace("(", "").replace(")", "")
        for j in range(4 + c):
            _png(tu / "ImageResized" / folder / f"n{c}_{j}.JPEG", mode="RGB")
    queries = [["sketches/ant/3.png", 0], ["sketches/bear (animal)/13.png", 1], ["sketches/wine-bottle/30.png", 2]]
    (tu / "splits").mkdir()
    (tu / "splits" / "TUBerlin_sketch.json").write_text(json.dumps({"train": [], "test": queries}))

    sk = root / "sketchy"
    for c, name in enumerate(("airplane", "car_(sedan)", "zebra")):
        for j in range(6):
            _png(sk / "rendered_256x256" / "sketch" / "tx_000100000000" / name / f"n{c}_{j}-1.png")
            _png(sk / "rendered_256x256" / "sketch" / "tx_000000000000" / name / f"n{c}_{j}-1.png")
        for j in range(3):
            _png(sk / "extended_photo" / name / f"n{c}_{j}.jpg", mode="RGB")
    (sk / "splits").mkdir()
    rows = [["tx_000100000000/airplane/n0_1-1.png", 0], ["tx_000100000000/zebra/n2_4-1.png", 2]]
    (sk / "splits" / "sketchy_sketch.json").write_text(json.dumps({"train": [], "test": rows}))
    return tu, sk


@pytest.mark.parametrize("profile", ["full", "full-sketchy"])
def test_full_data_path_reads_the_dsh_query_lists(tmp_path, profile):
    """The ``full`` profiles read DASE's query JSON; every photo is training image and gallery item."""
    from sbirlib.profiles import resolve_profile
    from sbirlib.recipes import dase_mems

    tu, sk = _fake_dsh_layouts(tmp_path)
    cfg = dase_mems.variant(resolve_profile(dase_mems.PROFILES, profile), image_size=32, pretrained=False)
    data = dase_mems.load_data(cfg, tu if profile == "full" else sk)
    n_sketches, n_queries, n_photos = (36, 3, 4 + 5 + 6) if profile == "full" else (18, 2, 9)
    names = sorted(("/".join(Path(p).parts[-2:]) for p in data["test_sketch"].samples))
    if profile == "full":
        assert names == ["ant/3.png", "bear (animal)/13.png", "wine-bottle/30.png"]
    else:
        assert names == ["airplane/n0_1-1.png", "zebra/n2_4-1.png"]
        assert all("tx_000100000000" in str(p) for p in data["train_sketch"].samples)
    assert len(data["train_sketch"]) + len(data["val_sketch"]) == n_sketches - n_queries
    assert not set(data["train_sketch"].samples) & set(data["test_sketch"].samples)
    assert len(data["gallery"]) == len(data["train_photo"]) == n_photos  # DSH: photos train and gallery
    assert data["gallery"].classes == data["test_sketch"].classes == data["train_sketch"].classes
    assert data["test_sketch"][0]["image"].shape == (3, 32, 32)
    batch = next(iter(dase_mems.MixedBatches(data["train_sketch"], data["train_photo"], batch_size=2)))
    assert batch["sketch"].shape == batch["photo"].shape == (2, 3, 32, 32)
