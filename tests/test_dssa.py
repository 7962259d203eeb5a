"""DSSA model (specs/papers/dssa.md D1-D5): equations vs naive code, shapes, parameters, gradients."""

import math

import pytest
import torch
import torch.nn as nn

from sbirlib.losses import holef
from sbirlib.models import dssa, registry


def _naive_attention(att: dssa.SpatialAttention, f: torch.Tensor):
    """D1-D3 written with explicit loops over positions."""
    b, c, h, w = f.shape
    w1, b1 = att.a1.weight[:, :, 0, 0], att.a1.bias
    w2, b2 = att.a2.weight[0, :, 0, 0], att.a2.bias[0]
    o = torch.zeros(b, h, w)
    for n in range(b):
        for y in range(h):
            for x in range(w):
                hidden = torch.relu(w1 @ f[n, :, y, x] + b1)
                o[n, y, x] = w2 @ hidden + b2
    a = torch.exp(o) / torch.exp(o).sum(dim=(1, 2), keepdim=True)
    f_att = f * (1 + a[:, None])
    return f_att, a[:, None]


def test_attention_matches_naive_loops():
    torch.manual_seed(0)
    att = dssa.SpatialAttention(6)
    f = torch.rand(2, 6, 7, 7)
    f_att, a = att(f)
    ref_f, ref_a = _naive_attention(att, f)
    torch.testing.assert_close(a, ref_a, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(f_att, ref_f, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a.sum(dim=(1, 2, 3)), torch.ones(2))


def test_attention_variants():
    torch.manual_seed(1)
    f = torch.rand(1, 4, 7, 7)
    sig = dssa.SpatialAttention(4, mode="sigmoid", residual=False)
    f_att, a = sig(f)
    torch.testing.assert_close(a, torch.sigmoid(sig.logits(f)))
    torch.testing.assert_close(f_att, f * a)
    with pytest.raises(ValueError, match="softmax"):
        dssa.SpatialAttention(4, mode="tanh")


def test_fusion_matches_hand_formula():
    torch.manual_seed(2)
    fc6, fc7 = nn.Linear(3 * 49, 8), nn.Linear(8, 5)
    fusion = dssa.CoarseFineFusion(fc6, fc7)
    f = torch.randn(2, 3, 7, 7)
    e = fusion(f)
    coarse = fc7(torch.relu(fc6(f.reshape(2, -1))))
    coarse = coarse / coarse.norm(dim=1, keepdim=True)
    fine = f.sum(dim=(2, 3))
    fine = fine / fine.norm(dim=1, keepdim=True)
    torch.testing.assert_close(e, torch.cat([coarse, fine], dim=1))  # coarse first (D5)
    torch.testing.assert_close(e.pow(2).sum(1), torch.full((2,), 2.0))  # ||e||^2 = 2


def test_paper_size_shapes_and_parameter_count():
    model = registry.create_model("dssa")
    x = torch.randn(2, 1, 225, 225)
    out = model.forward_features(x)
    assert out["pool5"].shape == (2, 256, 7, 7)
    assert out["attention"].shape == (2, 1, 7, 7)
    assert out["emb"].shape == (2, 512) and model.embed_dim == 512
    n = sum(p.numel() for name, p in model.named_parameters() if not name.startswith("distance."))
    assert model.distance.W.shape == (512, 512)
    conv = 14_464 + 204_928 + 295_168 + 590_080 + 590_080
    fc = 12_544 * 512 + 512 + 512 * 256 + 256
    att = 256 * 256 + 256 + 256 + 1
    print(f"DSSA parameters (without W): {n:,}; W adds {512 * 512:,} (the paper reports no count)")
    assert n == conv + fc + att == 8_315_137
    torch.testing.assert_close(model(x), out["emb"])


def test_initial_attention_is_near_uniform():
    torch.manual_seed(0)
    model = registry.create_model("dssa_narrow", input_size=64)
    a = model.forward_features(torch.randn(3, 1, 64, 64))["attention"]
    assert a.shape == (3, 1, 7, 7)
    torch.testing.assert_close(a.sum(dim=(1, 2, 3)), torch.ones(3))
    assert a.max() < 0.5  # spread out, not collapsed to a single position


def test_narrow_variant_and_ablation_switches():
    for size in (64, 128):
        m = dssa.dssa_narrow(input_size=size)
        assert m(torch.randn(2, 1, size, size)).shape == (2, 256)
    coarse_only = dssa.dssa_narrow(input_size=64, attention="none", fine=False)
    assert coarse_only.attention is None and coarse_only.embed_dim == 128
    assert coarse_only(torch.randn(2, 1, 64, 64)).shape == (2, 128)


def test_backbone_state_is_loaded_and_head_ignored():
    from sbirlib.models import sketch_a_net

    torch.manual_seed(3)
    san = sketch_a_net.SketchANet(variant="narrow", input_size=64, num_classes=5)
    model = dssa.dssa_narrow(input_size=64, backbone_state=san.state_dict())
    torch.testing.assert_close(model.trunk.conv3.weight, san.features.conv3.weight)
    torch.testing.assert_close(model.fusion.fc6.weight, san.fc6.weight)
    with pytest.raises(ValueError, match="backbone_state"):
        dssa.dssa_narrow(input_size=64, backbone_state={"bogus": torch.zeros(1)})


def test_trainable_set_and_finite_gradients():
    torch.manual_seed(4)
    model = dssa.dssa_narrow(input_size=64)
    params = model.trainable_parameters()
    names = {n for n, p in model.named_parameters() if p.requires_grad and not n.startswith("distance.")}
    assert names == {"trunk.conv5.weight", "trunk.conv5.bias", "attention.a1.weight", "attention.a1.bias",
                     "attention.a2.weight", "attention.a2.bias", "fusion.fc6.weight", "fusion.fc6.bias",
                     "fusion.fc7.weight", "fusion.fc7.bias"}
    assert len(params) == len(names)
    assert model.distance.weight.requires_grad  # W has its own optimiser
    e = model(torch.randn(4, 1, 64, 64))
    e.pow(3).sum().backward()
    for n, p in model.named_parameters():
        if n.startswith("distance."):
            continue
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), n
        else:
            assert p.grad is None, n
    model.trainable_parameters(train_conv5=False)
    assert not model.trunk.conv5.weight.requires_grad
    assert math.isclose(float(e.detach().pow(2).sum(1).mean()), 2.0, rel_tol=1e-5)


def test_model_distance_is_holef_or_squared_euclidean():
    g = torch.Generator().manual_seed(5)
    m = dssa.dssa_narrow(input_size=64, generator=g)
    s, p = torch.randn(3, 256), torch.randn(4, 256)
    torch.testing.assert_close(m.pairwise_distance(s, p), holef.holef_distance(s, p, m.distance.W))
    m_euc = dssa.dssa_narrow(input_size=64, holef=False)
    assert m_euc.distance is None
    torch.testing.assert_close(m_euc.pairwise_distance(s, p), torch.cdist(s, p) ** 2, rtol=1e-4, atol=1e-4)
    again = dssa.dssa_narrow(input_size=64, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(again.distance.W, m.distance.W)


# -- recipe -------------------------------------------------------------------------------
def test_profiles_resolve_and_full_is_the_paper_recipe():
    from sbirlib.profiles import resolve_profile
    from sbirlib.recipes import dssa as recipe

    full = resolve_profile(recipe.PROFILES, "full")
    assert (full.variant, full.input_size, full.load_size, full.batch_size) == ("full", 225, 256, 128)
    assert (full.optimizer, full.lr, full.momentum, full.weight_decay) == ("sgd", 1e-3, 0.9, 0.0)
    assert full.epochs * full.steps_per_epoch == 20_000
    assert (full.margin, full.lam, full.w_lr, tuple(full.w_betas)) == (0.3, 5e-4, 1e-4, (0.5, 0.999))
    assert full.select == "last" and full.views == 10
    for name in ("smoke", "cpu-real"):
        cfg = resolve_profile(recipe.PROFILES, name)
        assert cfg.variant == "narrow" and cfg.batch_size == 16 and cfg.lr == 1e-4
    assert resolve_profile(recipe.PROFILES, "cpu-real").epochs * 50 == 300
    with pytest.raises(KeyError):
        resolve_profile(recipe.PROFILES, "smoke", nonsense=1)


def test_full_profile_one_training_step_on_a_tiny_input():
    from sbirlib.profiles import resolve_profile
    from sbirlib.recipes import dssa as recipe

    cfg = resolve_profile(recipe.PROFILES, "full")
    model = recipe.build_model(cfg)
    opt = recipe.build_optimizer(model, cfg)
    assert "SGD" in repr(opt) and "Adam" in repr(opt)  # network SGD, W its own Adam
    g = torch.Generator().manual_seed(0)
    batch = {k: torch.rand(2, 1, 256, 256, generator=g) for k in ("sketch", "positive", "negative")}
    w0 = model.distance.weight.detach().clone()
    fc6 = model.fusion.fc6.weight.detach().clone()
    conv1 = model.trunk.conv1.weight.detach().clone()
    model.train()
    opt.zero_grad()
    logs = recipe.make_step_fn(cfg)(model, batch, torch.device("cpu"))
    assert torch.isfinite(logs["loss"])
    logs["loss"].backward()
    opt.step()
    assert not torch.equal(model.distance.weight, w0)
    assert not torch.equal(model.fusion.fc6.weight, fc6)
    assert torch.equal(model.trunk.conv1.weight, conv1)  # conv1-4 frozen
    state = opt.state_dict()
    opt.load_state_dict(state)


def test_dssa_learns_the_synthetic_task(tmp_path):
    """Short CPU run from random init: the loss falls and acc@1 rises well above chance."""
    from sbirlib.profiles import resolve_profile
    from sbirlib.recipes import dssa as recipe

    cfg = resolve_profile(recipe.PROFILES, "smoke", epochs=2)
    cfg = recipe.variant(cfg, pretrained=False, steps_per_epoch=15, views=1)
    res = recipe.run(cfg, output_dir=tmp_path, checkpoint="train", progress=False, baseline=False)
    m = res.metrics
    print({k: round(v, 3) for k, v in m.items()})
    assert m["train/loss_last"] < m["train/loss_first"]
    assert m["test/acc@1"] > 3 * m["chance/acc@1"]
    assert (tmp_path / "metrics.json").is_file()
