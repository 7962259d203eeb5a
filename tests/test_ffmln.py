"""FFMLN (reconstruction, spec ffmln.md): AMFF equations, DAT loss, shapes, gradients."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sbirlib.losses.triplet import cross_domain_triplet_loss
from sbirlib.models import create_model
from sbirlib.models.ffmln import FFMLN


def _naive_residual(block, x):
    # torchvision's own forward, R read off by a hook (cloned: the block adds identity in place)
    seen = {}
    bn = block.bn3 if hasattr(block, "bn3") else block.bn2
    handle = bn.register_forward_hook(lambda m, i, o: seen.update(r=o.clone()))
    out = block(x)
    handle.remove()
    return out, seen["r"]


def test_amff_matches_equations_F1_to_F3():
    torch.manual_seed(0)
    model = create_model("ffmln_resnet18", num_classes=5, dim=16).eval()
    for conv in model.amff.att.values():  # non-trivial maps
        torch.nn.init.normal_(conv.weight, std=0.1)
    x = torch.randn(3, 3, 64, 64)
    trunk = model.trunk
    h = trunk.maxpool(trunk.relu(trunk.bn1(trunk.conv1(x))))
    h = trunk.layer2(trunk.layer1(h))
    pooled = []
    for name in ("layer3", "layer4"):
        layer = getattr(trunk, name)
        for block in layer[:-1]:
            h = block(h)
        h, r = _naive_residual(layer[-1], h)
        conv = model.amff.att[name]
        a = torch.sigmoid((r * conv.weight.view(1, -1, 1, 1)).sum(1, keepdim=True) + conv.bias)
        pooled.append((h * a).sum(dim=(2, 3)) / (h.shape[2] * h.shape[3]))
    z = model.amff.proj(torch.cat(pooled, 1))
    out = model(x)
    torch.testing.assert_close(out["z"], z)
    torch.testing.assert_close(out["embedding"], z / z.norm(dim=1, keepdim=True))
    torch.testing.assert_close(out["logits"], model.classifier(z))


def test_zero_initialised_attention_is_half_everywhere():
    model = create_model("ffmln_resnet18", num_classes=4, dim=8).eval()
    maps = model.attention_maps(torch.randn(2, 3, 64, 64))
    assert set(maps) == {"layer3", "layer4"}
    for a in maps.values():
        assert torch.all(a == 0.5)


def test_attention_off_is_plain_gap():
    model = create_model("ffmln_resnet18", num_classes=4, dim=8, attention=False).eval()
    x = torch.randn(2, 3, 64, 64)
    taps = model.trunk.forward_taps(x, ("layer3", "layer4"))
    v = torch.cat([taps["layer3"].mean((2, 3)), taps["layer4"].mean((2, 3))], 1)
    torch.testing.assert_close(model(x)["z"], model.amff.proj(v))


def test_full_model_shapes_at_paper_input_size():
    model = create_model("ffmln_resnet50", num_classes=100, dim=512).eval()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"FFMLN (ResNet-50, d=512, 100 classes): {n_params:,} parameters (the paper reports none)")
    with torch.no_grad():
        out = model(torch.randn(1, 3, 224, 224))
        maps = model.attention_maps(torch.randn(1, 3, 224, 224))
    assert out["embedding"].shape == (1, 512) and out["logits"].shape == (1, 100)
    assert maps["layer3"].shape == (1, 1, 14, 14) and maps["layer4"].shape == (1, 1, 7, 7)
    assert model.amff.proj.in_features == 1024 + 2048


def _dat_naive(es, ys, ep, yp, m):
    def one_way(a, ya, g, yg):
        total = 0.0
        for i in range(len(a)):
            d = [(a[i] - g[j]).norm().item() for j in range(len(g))]
            pos = max(d[j] for j in range(len(g)) if yg[j] == ya[i])
            neg = min(d[j] for j in range(len(g)) if yg[j] != ya[i])
            total += max(0.0, m + pos - neg)
        return total / len(a)
    return 0.5 * (one_way(es, ys, ep, yp) + one_way(ep, yp, es, ys))


def test_domain_aware_triplet_matches_naive_loop():
    torch.manual_seed(1)
    es = F.normalize(torch.randn(8, 5), dim=1)
    ep = F.normalize(torch.randn(8, 5), dim=1)
    y = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    got = cross_domain_triplet_loss(es, y, ep, y, margin=0.3, symmetric=True)
    assert abs(got.item() - _dat_naive(es, y, ep, y, 0.3)) < 1e-5


def test_gradients_are_finite_and_reach_attention():
    torch.manual_seed(0)
    model = create_model("ffmln_resnet18", num_classes=3, dim=8)
    x = torch.randn(6, 3, 64, 64)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    out = model(x)
    loss = cross_domain_triplet_loss(out["embedding"][:3], y[:3], out["embedding"][3:], y[3:],
                                     symmetric=True) + 0.5 * F.cross_entropy(out["logits"], y)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert all(torch.isfinite(g).all() for g in grads)
    assert model.amff.att["layer3"].weight.grad.abs().sum() > 0
    assert isinstance(model, FFMLN) and "attention=True" in repr(model)
