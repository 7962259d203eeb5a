"""FFMLN recipe: zero-shot protocol, PK sampling, loss, profiles, and a short training run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sbirlib.losses import triplet
from sbirlib.profiles import resolve_profile
from sbirlib.recipes import ffmln


def test_profiles_resolve_and_cpu_real_fails_loudly():
    assert {"smoke", "full"} <= set(ffmln.PROFILES)
    with pytest.raises(ValueError, match="cpu-real"):
        resolve_profile(ffmln.PROFILES, "cpu-real")
    full = resolve_profile(ffmln.PROFILES, "full")
    # spec §4: shared ImageNet ResNet-50, 224 px, P=16 x (4+4), Adam 1e-4/1e-3, 20k iterations, drop at 15k
    assert full.split == "sketchy_ext/zs/sake25" and full.dataset == "sketchy-ext"
    assert (full.model, full.pretrained, full.dim, full.input_size) == ("ffmln_resnet50", True, 512, 224)
    assert (full.p, full.k, full.lr_backbone, full.lr, full.weight_decay) == (16, 4, 1e-4, 1e-3, 5e-4)
    assert full.epochs * full.steps_per_epoch == 20_000 and full.lr_drop_epoch * full.steps_per_epoch == 15_000
    assert (full.margin, full.lambda_ce, full.select) == (0.3, 0.5, "last")
    assert resolve_profile(ffmln.PROFILES, "full-64").dim == 64
    for name, prof in ffmln.PROFILES.items():
        if prof["split"]:
            assert ffmln.SPLITS[prof["split"]]["dataset"] == prof["dataset"], name


def test_wrong_dataset_for_split_is_refused():
    cfg = resolve_profile(ffmln.PROFILES, "full", dataset="tuberlin-ext")
    with pytest.raises(ValueError, match="profile"):
        ffmln.build_data(cfg, data_root="/nonexistent")


def test_cross_domain_pk_sampler():
    sk = [0] * 5 + [1] * 6 + [2] * 3 + [3] * 4
    ph = [0] * 2 + [1] * 7 + [2] * 5 + [3] * 4
    s = ffmln.CrossDomainPKSampler(sk, ph, p=2, k=4, seed=0, batches_per_epoch=6)
    batches = list(s)
    assert len(batches) == 6
    for b in batches:
        sk_idx, ph_idx = b[:8], b[8:]
        assert len(ph_idx) == 8 and all(i >= len(sk) for i in ph_idx) and all(i < len(sk) for i in sk_idx)
        sk_cls = [sk[i] for i in sk_idx]
        ph_cls = [ph[i - len(sk)] for i in ph_idx]
        assert len(set(sk_cls)) == 2 and sorted(sk_cls) == sorted(ph_cls)
        for c in set(ph_cls):  # without replacement when the class has >= K photos
            chosen = [i for i in ph_idx if ph[i - len(sk)] == c]
            if ph.count(c) >= 4:
                assert len(set(chosen)) == 4
    assert batches == list(s)  # deterministic per epoch
    s.set_epoch(1)
    assert list(s) != batches


def test_augment_shapes_and_identity_crop():
    x = torch.rand(4, 3, 20, 20)
    y = ffmln.augment(x, 16)
    assert y.shape == (4, 3, 16, 16) and torch.isfinite(y).all()
    # scale (1, 1) with ratio 1 is a resize, possibly flipped
    torch.manual_seed(0)
    img = torch.arange(64.0).view(1, 1, 8, 8).repeat(1, 3, 1, 1)
    out = ffmln.augment(img, 8, scale=(1.0, 1.0))
    assert out.shape == img.shape


def _naive_dat(e_s, y_s, e_p, y_p, m):
    def one(a, ya, g, yg):
        total = 0.0
        for i in range(len(a)):
            d = [float(torch.dist(a[i], g[j])) for j in range(len(g))]
            pos = max(d[j] for j in range(len(g)) if yg[j] == ya[i])
            neg = min(d[j] for j in range(len(g)) if yg[j] != ya[i])
            total += max(0.0, m + pos - neg)
        return total / len(a)

    return 0.5 * (one(e_s, y_s, e_p, y_p) + one(e_p, y_p, e_s, y_s))


def test_ffmln_loss_matches_naive_equations():
    torch.manual_seed(0)
    n = 6
    e = torch.nn.functional.normalize(torch.randn(2 * n, 5), dim=1)
    labels = torch.tensor([0, 0, 1, 1, 2, 2] * 2)
    domains = torch.tensor([0] * n + [1] * n)
    logits = torch.randn(2 * n, 3)
    out = {"embedding": e, "logits": logits}
    res = ffmln.ffmln_loss(out, labels, domains, margin=0.3, lambda_ce=0.5)
    dat = _naive_dat(e[:n], labels[:n], e[n:], labels[n:], 0.3)
    ce = float(-torch.log_softmax(logits, 1)[torch.arange(2 * n), labels].mean())
    assert res["triplet"].item() == pytest.approx(dat, abs=1e-5)
    assert res["ce"].item() == pytest.approx(ce, abs=1e-5)
    assert res["loss"].item() == pytest.approx(dat + 0.5 * ce, abs=1e-5)
    plain = ffmln.ffmln_loss(out, labels, domains, kind="plain")["triplet"]
    assert plain.item() == pytest.approx(triplet.batch_hard_triplet_loss(e, labels, 0.3).item())
    with pytest.raises(ValueError):
        ffmln.ffmln_loss(out, labels, domains, kind="nope")


def test_full_profile_one_step_on_tiny_input():
    cfg = resolve_profile(ffmln.PROFILES, "full", pretrained=False, input_size=32)
    model = ffmln.build_model(cfg, num_classes=5)
    opt = ffmln.make_optimizer(cfg, model)
    assert [g["lr"] for g in opt.param_groups] == [1e-4, 1e-3]
    table = torch.arange(5)
    step = ffmln.make_step_fn(cfg, table)
    batch = {"image": torch.rand(8, 3, 40, 40), "label": torch.tensor([0, 0, 1, 1] * 2),
             "domain": torch.tensor([0] * 4 + [1] * 4)}
    out = step(model, batch, torch.device("cpu"))
    assert torch.isfinite(out["loss"])
    before = model.amff.att["layer3"].weight.detach().clone()
    out["loss"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    opt.step()
    assert not torch.equal(before, model.amff.att["layer3"].weight)  # zero-init maps still learn


def test_smoke_training_learns_zero_shot(tmp_path):
    # the smoke recipe at a quarter of the cost per step (P=4, K=2, 32 px) and 24 steps
    cfg = resolve_profile(ffmln.PROFILES, "smoke", epochs=3, steps_per_epoch=8)
    cfg.update(p=4, k=2, load_size=32, input_size=32, lr_drop_epoch=3)
    data = ffmln.build_data(cfg)
    assert not set(data["train_sketch"].labels) & set(data["test_photo"].labels)
    assert not set(data["val_sketch"].labels) & set(data["test_photo"].labels)
    res = ffmln.run(cfg, output_dir=tmp_path, data=data, checkpoint="train", progress=False)
    loss = res.history.train_loss
    assert loss[-1] < loss[0]
    chance = res.metrics["chance/map@all"]
    assert res.metrics["test/map@all"] > chance + 0.04  # 24 tiny steps: a modest margin
    assert res.metrics["test/voc/map@all"] >= res.metrics["test/map@all"] - 1e-9
    assert (tmp_path / "metrics.json").is_file()
    assert res.extras["test_embeddings"]["sketch"]["emb"].shape[1] == cfg.dim


def test_merging_train_and_validation_classes_relabels_by_name():
    """Sketchy-Ext numbers each split's classes from 0: train 0 = 'ant', val 0 = 'zebra'. The
    ``train_on_val_classes`` merge must keep them apart, and the zero-shot check compares names."""
    from sbirlib.recipes.common import ImageBank

    def bank(classes, labels):
        b = ImageBank.__new__(ImageBank)
        b.images, b.labels, b.instances = torch.zeros(len(labels), 3, 4, 4), list(labels), [-1] * len(labels)
        b.classes, b.name = list(classes), "fake"
        return b

    merged = ffmln._merge(bank(["ant", "bee"], [0, 1, 1]), bank(["zebra"], [0, 0]))
    assert merged.classes == ["ant", "bee", "zebra"] and merged.labels == [0, 1, 1, 2, 2]
    assert ffmln._class_names(merged) == ["ant", "bee", "bee", "zebra", "zebra"]
