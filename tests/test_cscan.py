"""CSCAN (Yu & Zhang, LOP 2022): equations (C1)-(C17) of specs/papers/cscan.md against naive code."""

from __future__ import annotations

import itertools

import numpy as np

import pytest
import torch
import torch.nn.functional as F

from sbirlib.losses import cscan as L
from sbirlib.models import cscan as M
from sbirlib.models import resnet
from sbirlib.models.registry import create_model, list_models


def _tiny(**options) -> M.CSCAN:
    """CSCAN on narrow ResNet-18 trunks (width 8): the equations do not depend on the width."""
    torch.manual_seed(0)
    return M.CSCAN(lambda: resnet.resnet18_narrow(width=8), low_channels=16, feat_dim=64,
                   num_classes=5, code_bits=8, **options)


def _inputs(b: int = 2, size: int = 32):
    g = torch.Generator().manual_seed(1)
    return (torch.rand(b, 1, size, size, generator=g), torch.rand(b, 3, size, size, generator=g),
            torch.rand(b, 1, size, size, generator=g))


# -- model equations ----------------------------------------------------------------------


def test_registered():
    assert {"cscan_resnet18", "cscan_resnet50"} <= set(list_models("cscan*"))


def test_channel_pool_matches_loop():
    feat = torch.randn(2, 5, 3, 4)
    out = M.channel_pool(feat)
    for b, y, x in itertools.product(range(2), range(3), range(4)):
        vals = [feat[b, c, y, x].item() for c in range(5)]
        assert out[b, 0, y, x].item() == pytest.approx(sum(vals) / 5, abs=1e-6)
        assert out[b, 1, y, x].item() == pytest.approx(max(vals), abs=1e-6)


def test_spatial_attention_matches_naive_convolution():
    """(C1): M = sigmoid(theta([F^Avg; F^Max])) with a 7x7 conv, zero padding 3, bias."""
    torch.manual_seed(0)
    att = M.SpatialAttention(7)
    with torch.no_grad():
        att.conv.bias.fill_(0.3)  # make the bias count
    feat = torch.randn(1, 4, 5, 6)
    mask = att(feat)
    pooled = M.channel_pool(feat)[0]
    padded = torch.zeros(2, 5 + 6, 6 + 6)
    padded[:, 3:8, 3:9] = pooled
    w, bias = att.conv.weight[0], att.conv.bias[0]
    for y, x in itertools.product(range(5), range(6)):
        z = bias + sum(w[c, i, j] * padded[c, y + i, x + j]
                       for c in range(2) for i in range(7) for j in range(7))
        assert mask[0, 0, y, x].item() == pytest.approx(torch.sigmoid(z).item(), abs=1e-5)
    assert mask.shape == (1, 1, 5, 6) and bool(((mask > 0) & (mask < 1)).all())


def test_spatial_attention_init():
    att = M.SpatialAttention()
    assert torch.count_nonzero(att.conv.bias) == 0 and att.conv.weight.std() > 0


def test_co_attention_mask_is_shared_and_applied_to_both():
    """(C3)-(C5): one mask from [F_L^I; F_L^E], multiplied into both low feature maps."""
    model = _tiny().eval()
    sketch, photo, edge = _inputs()
    with torch.no_grad():
        f = model.photo_features(photo, edge)
        assert f["mask_i"] is f["mask_e"]
        # hand form of (C3)-(C4): pools of the concatenation from the pools of the parts
        avg = 0.5 * (f["low_i"].mean(1, keepdim=True) + f["low_e"].mean(1, keepdim=True))
        mx = torch.maximum(f["low_i"].amax(1, keepdim=True), f["low_e"].amax(1, keepdim=True))
        expected = torch.sigmoid(model.theta_ie.conv(torch.cat([avg, mx], 1)))
        torch.testing.assert_close(f["mask_i"], expected)
        # (C5)-(C6): the high parts see exactly F_L * M
        torch.testing.assert_close(f["high_i"], model.image_encoder.high(f["low_i"] * expected))
        torch.testing.assert_close(f["high_e"], model.line_encoder.high(f["low_e"] * expected))
        # (C7) sum fusion and (C8) sigmoid hashing
        torch.testing.assert_close(f["fused"], f["high_i"] + f["high_e"])
        code = torch.sigmoid(f["fused"] @ model.hash_photo.weight.T + model.hash_photo.bias)
        torch.testing.assert_close(model.encode_photo(photo, edge), code)


def test_sketch_path_equations():
    """(C1), (C2), (C6), (C8), (C9) on the sketch branch; the edge map shares its encoder."""
    model = _tiny().eval()
    sketch, photo, edge = _inputs()
    with torch.no_grad():
        f = model.sketch_features(sketch)
        mask = torch.sigmoid(model.theta_s.conv(M.channel_pool(f["low"])))
        torch.testing.assert_close(f["mask"], mask)
        torch.testing.assert_close(f["high"], model.line_encoder.high(f["low"] * mask))
        out = model(sketch=sketch)
        torch.testing.assert_close(out["code_sketch"], torch.sigmoid(model.hash_sketch(f["high"])))
        torch.testing.assert_close(out["logits_sketch"], model.cls_sketch(out["code_sketch"]))
    assert model.edge_encoder is None  # decision: S and E share the line-drawing encoder
    assert model.theta_s is not model.theta_ie  # decision: separate theta_S, theta_IE
    assert model.hash_sketch is not model.hash_photo and model.cls_sketch is not model.cls_photo


def test_grey_input_is_replicated():
    model = _tiny().eval()
    sketch = _inputs()[0]
    with torch.no_grad():
        torch.testing.assert_close(model.encode_sketch(sketch), model.encode_sketch(sketch.expand(-1, 3, -1, -1)))


@pytest.mark.parametrize(
    "options",
    [
        {"photo_attention": "separate"},
        {"photo_attention": "none", "sketch_attention": False},
        {"sketch_attention": False},
        {"use_edge": False},
        {"shared_theta": True},
        {"fusion": "prod"},
        {"fusion": "concat"},
        {"shared_line_encoder": False},
    ],
)
def test_ablation_variants_run(options):
    model = _tiny(**options).eval()
    sketch, photo, edge = _inputs()
    with torch.no_grad():
        out = model(sketch, photo, None if options.get("use_edge") is False else edge)
        f = model.photo_features(photo, edge)
    assert out["code_sketch"].shape == (2, 8) and out["logits_photo"].shape == (2, 5)
    if options.get("photo_attention") == "separate":
        assert f["mask_i"] is not f["mask_e"]
        assert not torch.allclose(f["mask_i"], f["mask_e"])
    if options.get("fusion") == "concat":
        assert model.hash_photo.in_features == 2 * model.feat_dim
    if options.get("shared_theta"):
        assert model.theta_s is model.theta_ie
    if options.get("use_edge") is False:
        assert f["low_e"] is None and f["mask_i"].shape[1] == 1
    if options.get("shared_line_encoder") is False:
        assert model.edge_encoder is not None


def test_bad_options_fail_clearly():
    with pytest.raises(ValueError, match="photo_attention"):
        _tiny(photo_attention="both")
    with pytest.raises(ValueError, match="fusion"):
        _tiny(fusion="max")
    with pytest.raises(ValueError, match="edge map"):
        _tiny().encode_photo(*_inputs()[1:2])


def test_paper_scale_shapes_and_parameter_count():
    """Spec §2 at 224 px: F_L 512x28x28, F_H 2048, codes K = 64, C logits.

    Runs on the ``meta`` device: shapes propagate exactly without the two ResNet-50 forwards.
    """
    with torch.device("meta"):
        model = create_model("cscan_resnet50", num_classes=125, code_bits=64).eval()
        x = torch.empty(1, 3, 224, 224)
    with torch.no_grad():
        s = model.sketch_features(x[:, :1])
        p = model.photo_features(x, x[:, :1])
        out = model(x[:, :1], x, x[:, :1])
    assert s["low"].shape == (1, 512, 28, 28) and s["mask"].shape == (1, 1, 28, 28)
    assert p["mask_i"].shape == (1, 1, 28, 28) and p["fused"].shape == (1, 2048)
    assert out["code_sketch"].shape == out["code_photo"].shape == (1, 64)
    assert out["logits_photo"].shape == (1, 125)
    n = sum(p.numel() for p in model.parameters())
    # two ResNet-50 trunks without fc (2 x 23,508,032) + 2 theta (2 x 99) + psi (2 x 131,136) + phi (2 x 8,125)
    expected = 2 * 23_508_032 + 2 * 99 + 2 * (2048 * 64 + 64) + 2 * (64 * 125 + 125)
    print(f"CSCAN (ResNet-50, K=64, C=125) parameters: {n:,} (the paper reports no count)")
    assert n == expected


def test_cpu_variant_shapes():
    """Spec §9: ResNet-18 encoders, 64 px -> F_L 128x8x8, F_H 512, K = 32."""
    with torch.device("meta"):
        model = create_model("cscan_resnet18", num_classes=30)
        x = torch.empty(2, 3, 64, 64)
    with torch.no_grad():
        s = model.sketch_features(x[:, :1])
        out = model(x[:, :1], x, x[:, :1])
    assert s["low"].shape == (2, 128, 8, 8) and s["high"].shape == (2, 512)
    assert out["code_photo"].shape == (2, 32) and out["logits_sketch"].shape == (2, 30)
    assert model.default_cfg["input_size"] == (3, 64, 64)


def test_gradients_finite_everywhere():
    model = _tiny().train()
    sketch, photo, edge = _inputs(4)
    out = model(sketch, photo, edge)
    labels = torch.tensor([0, 1, 2, 3])
    loss = L.CSCANLoss()(out["code_sketch"], out["code_photo"], out["code_photo"].flip(0),
                         out["logits_sketch"], out["logits_photo"], out["logits_photo"].flip(0),
                         labels, labels, labels.flip(0))["loss"]
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name


# -- losses ---------------------------------------------------------------------------------


def _codes(b=6, k=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(b, k, generator=g) for _ in range(3)]


def test_triplet_and_intra_match_loops():
    a, p, n = _codes()
    tri, intra = 0.0, 0.0
    for i in range(a.shape[0]):
        dp = sum((a[i, r] - p[i, r]).item() ** 2 for r in range(a.shape[1]))
        dn = sum((a[i, r] - n[i, r]).item() ** 2 for r in range(a.shape[1]))
        tri += max(0.0, dp - dn + 1.0) / a.shape[0]
        intra += dp / a.shape[0]
    assert L.origin_triplet_loss(a, p, n).item() == pytest.approx(tri, abs=1e-5)
    assert L.intra_class_loss(a, p).item() == pytest.approx(intra, abs=1e-5)
    assert L.cscan_triplet_loss(a, p, n).item() == pytest.approx(tri + intra, abs=1e-5)
    assert L.cscan_triplet_loss(a, p, n, intra=False).item() == pytest.approx(tri, abs=1e-5)


def test_triplet_hand_values():
    a = torch.tensor([[0.2, 0.9]])
    p = torch.tensor([[0.1, 0.8]])  # ||a-p||^2 = 0.02
    n = torch.tensor([[0.6, 0.9]])  # ||a-n||^2 = 0.16
    assert L.origin_triplet_loss(a, p, n).item() == pytest.approx(0.86, abs=1e-6)
    assert L.intra_class_loss(a, p).item() == pytest.approx(0.02, abs=1e-6)
    far = torch.tensor([[1.0, -1.0]])  # ||a-far||^2 = 0.64 + 3.61 > 1.02: hinge inactive
    assert L.origin_triplet_loss(a, p, far).item() == 0.0


def test_classification_loss_matches_hand_cross_entropy():
    g = torch.Generator().manual_seed(3)
    ls, lp, ln = (torch.randn(4, 5, generator=g) for _ in range(3))
    ys, yp, yn = torch.tensor([0, 1, 2, 3]), torch.tensor([0, 1, 2, 3]), torch.tensor([4, 4, 0, 1])

    def ce(logits, y):
        return sum(-(logits[i, y[i]] - logits[i].exp().sum().log()).item() for i in range(4)) / 4

    want = ce(ls, ys) + 0.5 * (ce(lp, yp) + ce(ln, yn))
    assert L.classification_loss(ls, ys, lp, yp, ln, yn).item() == pytest.approx(want, abs=1e-5)
    assert L.classification_loss(ls, ys, lp, yp).item() == pytest.approx(ce(ls, ys) + ce(lp, yp), abs=1e-5)


def test_quantization_loss_values_and_gradient():
    """(C14)-(C15): L1 distance to the 0.5-threshold, gradient sign(x - f_q(x))."""
    a = torch.tensor([[0.1, 0.5, 0.7, 0.45]], requires_grad=True)  # f_q = 0 1 1 0
    p = torch.tensor([[0.9, 0.2, 0.3, 0.6]])  # f_q = 1 0 0 1
    n = torch.tensor([[0.0, 1.0, 0.5, 0.49]])  # f_q = 0 1 1 0
    torch.testing.assert_close(L.binarize(a), torch.tensor([[0.0, 1.0, 1.0, 0.0]]))
    la, lp, ln = 0.1 + 0.5 + 0.3 + 0.45, 0.1 + 0.2 + 0.3 + 0.4, 0.0 + 0.0 + 0.5 + 0.49
    loss = L.quantization_loss(a, p, n)
    assert loss.item() == pytest.approx(la + 0.5 * (lp + ln), abs=1e-6)
    loss.backward()
    torch.testing.assert_close(a.grad, torch.tensor([[1.0, -1.0, -1.0, 1.0]]))
    assert L.quantization_loss(a, p).item() == pytest.approx(la + lp, abs=1e-6)
    # bound of spec §3: at most K/2 per code
    half = torch.full((3, 64), 0.4999)
    assert L.quantization_loss(half, half, half).item() <= 2 * 32


def test_total_loss_combines_terms():
    a, p, n = _codes(seed=5)
    g = torch.Generator().manual_seed(6)
    ls, lp, ln = (torch.randn(6, 3, generator=g) for _ in range(3))
    ys, yn = torch.tensor([0, 1, 2, 0, 1, 2]), torch.tensor([1, 2, 0, 1, 2, 0])
    for alpha, beta, intra in [(1.0, 0.1, True), (0.0, 0.0, False), (2.0, 1.0, True)]:
        out = L.CSCANLoss(alpha=alpha, beta=beta, intra=intra)(a, p, n, ls, lp, ln, ys, ys, yn)
        want = (L.origin_triplet_loss(a, p, n) + (L.intra_class_loss(a, p) if intra else 0)
                + alpha * L.classification_loss(ls, ys, lp, ys, ln, yn)
                + beta * L.quantization_loss(a, p, n))
        torch.testing.assert_close(out["loss"], want)
        assert set(out) == {"loss", "triplet", "intra", "cls", "quant"}
    assert "beta=0.1" in repr(L.CSCANLoss())


def test_loss_decreases_code_distance_direction():
    """A gradient step on L_Triplet moves the anchor towards the positive and away from the negative."""
    a = torch.tensor([[0.5, 0.5]], requires_grad=True)
    p, n = torch.tensor([[0.9, 0.9]]), torch.tensor([[0.4, 0.6]])
    L.cscan_triplet_loss(a, p, n).backward()
    new = a.detach() - 0.1 * a.grad
    assert F.pairwise_distance(new, p) < F.pairwise_distance(a.detach(), p)


# -- recipe -------------------------------------------------------------------------------

from sbirlib.profiles import resolve_profile  # noqa: E402
from sbirlib.recipes import cscan as R  # noqa: E402


def test_profiles_resolve_and_cpu_real_fails_loudly():
    full = resolve_profile(R.PROFILES, "full")
    assert (full.arch, full.image_size, full.code_bits, full.batch_size, full.lr, full.epochs,
            full.lr_drop_epoch, full.margin, full.alpha, full.beta) == (
        "resnet50", 224, 64, 32, 1e-4, 30, 20, 1.0, 1.0, 0.1)
    smoke = resolve_profile(R.PROFILES, "smoke")
    assert smoke.dataset == "synthetic-category" and smoke.epochs * smoke.steps_per_epoch == 200
    with pytest.raises(ValueError, match="cpu-real"):
        resolve_profile(R.PROFILES, "cpu-real")
    for name, changes in R.ABLATIONS.items():
        R.variant(smoke, **changes)  # every ablation names real keys


def test_full_profile_one_training_step_on_tiny_input():
    """The paper-scale model (2 x ResNet-50, K = 64) takes one optimisation step."""
    cfg = resolve_profile(R.PROFILES, "full", pretrained=False)
    torch.manual_seed(0)
    model = R.build_model(cfg, num_classes=3).train()
    g = torch.Generator().manual_seed(0)
    batch = {"sketch": torch.rand(2, 1, 64, 64, generator=g), "positive": torch.rand(2, 4, 64, 64, generator=g),
             "negative": torch.rand(2, 4, 64, 64, generator=g), "label": torch.tensor([0, 1]),
             "negative_label": torch.tensor([2, 0])}
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    before = model.hash_photo.weight.detach().clone()
    logs = R.make_step_fn(R.cscan_losses.CSCANLoss(cfg.margin, cfg.alpha, cfg.beta), True)(model, batch, "cpu")
    logs["loss"].backward()
    opt.step()
    assert torch.isfinite(logs["loss"]) and not torch.equal(before, model.hash_photo.weight)
    assert model.hash_photo.out_features == 64 and model.feat_dim == 2048


def test_photo_edge_keeps_alignment_under_augmentation():
    """Photo and edge map share one crop/flip: a pixel-aligned pair stays aligned."""
    from torch.utils.data import Dataset

    class Toy(Dataset):
        def __init__(self, channels):
            g = torch.Generator().manual_seed(0)
            self.base = torch.rand(3, 1, 32, 32, generator=g)
            self.channels, self.labels, self.instances, self.classes = channels, [0, 1, 2], [0, 1, 2], ["a", "b", "c"]

        def __len__(self):
            return 3

        def __getitem__(self, i):
            return {"image": self.base[i].expand(self.channels, -1, -1), "label": i, "instance": i}

    pe = R.PhotoEdge(Toy(3), Toy(1))
    aug = R._Transformed(pe, R._train_transform(resolve_profile(R.PROFILES, "smoke", image_size=24)))
    torch.manual_seed(0)
    for i in range(3):
        x = aug[i]["image"]
        assert x.shape == (4, 24, 24)
        torch.testing.assert_close(x[0], x[3])


def test_smoke_recipe_learns_on_tiny_synthetic_task(tmp_path):
    """A short CPU run: the loss falls and Hamming mAP rises well above chance."""
    cfg = resolve_profile(R.PROFILES, "smoke", epochs=4, steps_per_epoch=10, batch_size=8,
                          image_size=32, load_size=32, code_bits=16,
                          data_kwargs={"n_classes": 4, "in_memory": True})
    res = R.run(cfg, output_dir=tmp_path, device="cpu", checkpoint="train", progress=False)
    chance = float(np.mean([np.mean(np.asarray(res.data["gallery"].labels) == y)
                            for y in res.data["test_sketch"].labels]))
    m = res.metrics
    assert m["train/loss_last"] < m["train/loss_first"]
    assert m["test/map@all_hamming"] > chance + 0.15, (m, chance)
    assert (tmp_path / "metrics.json").is_file() and (tmp_path / "checkpoint.pt").is_file()
    again = R.run(cfg, output_dir=tmp_path, device="cpu", checkpoint="auto", progress=False, data=res.data)
    assert again.history.loaded and again.metrics["test/map@all_hamming"] == pytest.approx(m["test/map@all_hamming"])


# -- ablation artefact (producer: R.record_ablations) ---------------------------------------


def _fake_run(calls):
    """A stand-in for R.run: metrics that depend on the seed and code length, no training."""

    def fake(cfg, **kwargs):
        calls.append((cfg.code_bits, cfg.seed, cfg.use_edge))
        value = 0.1 + 0.01 * cfg.seed + cfg.code_bits / 1000
        metrics = {"test/map@all_hamming": value, "test/map@all_euclidean": value + 0.05,
                   "val/map@all_hamming": 0.0, "train/loss_first": 2.0}
        timing = {"search_ms_per_query_hamming": 0.1 * (cfg.seed + 1),
                  "bytes_per_photo_hamming": cfg.code_bits / 8}
        return R.RunResult(None, None, metrics, timing, {})

    return fake


def test_record_ablations_merges_per_seed_rows_with_provenance(tmp_path, monkeypatch):
    from sbirlib import results

    main, k64 = R.CODE_LENGTH_ABLATIONS[32], R.CODE_LENGTH_ABLATIONS[64]
    path = tmp_path / "ablations-smoke.json"
    legacy = {"chapter": R.CHAPTER, "profile": "smoke", "provenance": {
        "profile": "smoke", "seed": 0, "commit": "abc-dirty", "cpu_threads": 1, "config": {"x": 1}},
        "rows": [{"name": main, "changes": {}, "seed": 0, "metrics": {"test/map@all_hamming": 0.9}},
                 {"name": "no edge branch", "changes": {"use_edge": False}, "seed": 0,
                  "metrics": {"test/map@all_hamming": 0.5}, "wall_time_s": 3.0}]}
    results.save_json(legacy, path)
    calls = []
    monkeypatch.setattr(R, "run", _fake_run(calls))
    monkeypatch.setattr(R, "load_data", lambda cfg, *a, **k: {})
    commits = iter(["c-start"])  # later calls: the checkout dirtied by the artefact's rewrites
    monkeypatch.setattr(R.utils, "git_commit", lambda *a: next(commits, "c-start-dirty"))
    rec = R.record_ablations("smoke", [main, k64], (0, 1), path=path, threads=None, progress=False)
    assert calls == [(32, 0, True), (32, 1, True), (64, 0, True), (64, 1, True)]
    assert rec == results.load_json(path)
    keys = [(r["name"], r["seed"]) for r in rec["rows"]]
    # ABLATIONS order, then seed; the re-run (main, 0) replaced the stored row, the rest kept
    assert keys == [(main, 0), (main, 1), ("no edge branch", 0), (k64, 0), (k64, 1)]
    for r in rec["rows"]:
        assert r["provenance"]["profile"] == "smoke" and r["provenance"]["seed"] == r["seed"]
        assert r["changes"] == R.ABLATIONS[r["name"]]
    kept = rec["rows"][2]
    assert kept["provenance"]["commit"] == "abc-dirty" and "config" not in kept["provenance"]
    assert kept["provenance"]["wall_time_s"] == 3.0
    assert rec["rows"][0]["metrics"]["test/map@all_hamming"] == pytest.approx(0.132)
    assert "val/map@all_hamming" not in rec["rows"][0]["metrics"]
    assert rec["provenance"]["seeds"] == [0, 1] and "abc-dirty" in rec["provenance"]["commits"]
    assert rec["provenance"]["recorded"] == {main: [0, 1], "no edge branch": [0], k64: [0, 1]}
    # new rows carry the commit of the code that ran, not one made dirty by the artefact itself
    assert {r["provenance"]["commit"] for r in rec["rows"]} == {"c-start", "abc-dirty"}
    assert rec["provenance"]["commit"] == "c-start"
    assert rec["provenance"]["config"]["code_bits"] == 32

    table = R.ablation_table(rec, ("test/map@all_hamming", "search_ms_per_query_hamming"),
                             names=[k64, "no edge branch"])
    assert [t["ablation"] for t in table] == [k64, "no edge branch"]
    vals = np.array([0.164, 0.174])
    assert table[0]["test/map@all_hamming"] == pytest.approx(vals.mean())
    assert table[0]["test/map@all_hamming (std)"] == pytest.approx(vals.std(ddof=1))
    assert table[0]["search_ms_per_query_hamming"] == pytest.approx(0.15)
    assert table[1]["test/map@all_hamming (std)"] is None  # one seed: no spread
    assert table[1]["search_ms_per_query_hamming"] is None  # legacy row: no timing
    assert table[1]["search_ms_per_query_hamming (n)"] == 0


def test_record_ablations_refresh_runs_nothing_and_replaces_the_note(tmp_path, monkeypatch):
    from sbirlib import results

    path = tmp_path / "ablations-smoke.json"
    row = {"name": "no attention", "changes": R.ABLATIONS["no attention"], "seed": 2,
           "metrics": {"test/map@all_hamming": 0.2}, "provenance": {"commit": "c1", "seed": 2}}
    results.save_json({"profile": "smoke", "rows": [row], "provenance": {"note": "old"}}, path)
    monkeypatch.setattr(R, "run", lambda *a, **k: pytest.fail("refresh must not train"))
    monkeypatch.setattr(R, "load_data", lambda *a, **k: pytest.fail("refresh must not load data"))
    rec = R.record_ablations("smoke", [], path=path, threads=None, note="new")
    assert rec["rows"] == [row] and rec["provenance"]["note"] == "new"
    assert R.record_ablations("smoke", [], path=path, threads=None)["provenance"]["note"] == "new"


def test_record_ablations_refuses_unknown_names(tmp_path, monkeypatch):
    monkeypatch.setattr(R, "load_data", lambda cfg, *a, **k: {})
    with pytest.raises(KeyError, match="unknown ablations"):
        R.record_ablations("smoke", ["K = 256 bits"], path=tmp_path / "a.json", threads=None)


def test_recorded_ablations_cover_code_lengths_and_seeds():
    """The committed artefact: K = 32, 64, 128 x seeds 0-2, each row with its provenance."""
    from sbirlib import results

    rec = results.load_result(R.CHAPTER, "ablations-smoke")
    assert rec is not None, "book/results/06_cscan/ablations-smoke.json is missing"
    smoke = resolve_profile(R.PROFILES, "smoke")
    assert rec["provenance"]["config"]["code_bits"] == smoke.code_bits
    for bits, name in R.CODE_LENGTH_ABLATIONS.items():
        rows = {r["seed"]: r for r in rec["rows"] if r["name"] == name}
        assert set(R.ABLATION_SEEDS) <= set(rows), (name, sorted(rows))
        for seed, r in rows.items():
            assert R.variant(smoke, **r["changes"]).code_bits == bits
            prov = r["provenance"]
            assert (prov["profile"], prov["seed"]) == ("smoke", seed) and prov["commit"]
            for key in ("test/map@all_hamming", "test/map@all_euclidean"):
                assert 0.0 <= r["metrics"][key] <= 1.0
            assert r["timing"]["bytes_per_photo_hamming"] == bits / 8
            assert r["timing"]["search_ms_per_query_hamming"] > 0
            assert r["timing"]["search_ms_per_query_euclidean"] > 0


def test_seed_ordering_needs_separated_ranges():
    def rec(**vals):
        return {"rows": [{"name": n, "seed": i, "metrics": {"m": v}}
                         for n, vs in vals.items() for i, v in enumerate(vs)]}

    assert R.seed_ordering(rec(a=[0.5, 0.6, 0.55], b=[0.4, 0.45, 0.49]), "a", "b", "m") == "higher"
    assert R.seed_ordering(rec(a=[0.3, 0.35], b=[0.4, 0.45, 0.49]), "a", "b", "m") == "lower"
    assert R.seed_ordering(rec(a=[0.5, 0.6, 0.46], b=[0.4, 0.45, 0.49]), "a", "b", "m") == "overlap"
    assert R.seed_ordering(rec(a=[0.9], b=[0.1, 0.2]), "a", "b", "m") == "too few seeds"


def test_chapter_reading_matches_the_recorded_ablations():
    """Every ordering the chapter's prose states (06_cscan, "Ablations") holds in the artefact,
    by the strict rule of R.seed_ordering; re-recording that changes one must update the prose."""
    from sbirlib import results

    rec = results.load_result(R.CHAPTER, "ablations-smoke")
    main, k64, k128 = (R.CODE_LENGTH_ABLATIONS[k] for k in (32, 64, 128))
    beta0, no_edge = "beta = 0 (no quantisation loss)", "no edge branch"
    H, E = "test/map@all_hamming", "test/map@all_euclidean"
    o = R.seed_ordering
    assert (o(rec, k64, main, H), o(rec, k64, main, E)) == ("lower", "overlap")
    assert o(rec, k128, k64, H) == o(rec, k128, k64, E) == "lower"
    assert o(rec, k128, main, H) == o(rec, k128, main, E) == "lower"
    assert (o(rec, beta0, main, H), o(rec, beta0, main, E)) == ("higher", "overlap")
    assert o(rec, no_edge, main, H) == o(rec, no_edge, main, E) == "overlap"
    for a, b in ((k64, main), (k128, k64), (k128, main)):
        for key in ("search_ms_per_query_hamming", "search_ms_per_query_euclidean"):
            assert o(rec, a, b, key) == "overlap", (a, b, key)
    chance = results.load_result(R.CHAPTER, "smoke")["provenance"]["chance_map"]
    near_chance = [r["seed"] for r in rec["rows"] if r["name"] == k128 and r["metrics"][H] < 1.1 * chance]
    assert len(near_chance) == 2  # "at chance for two of its three seeds"
    table = {r["ablation"]: r for r in R.ablation_table(rec)}
    assert abs(table[no_edge][H] - table[main][H]) < table[main][H + " (std)"]
    for name in ("no attention", "separate masks for I and E", no_edge):
        assert table[name]["seeds"] == [0, 1, 2]
        assert o(rec, name, main, H) == o(rec, name, main, E) == "overlap", name
    assert table["no attention"][H] > table[main][H]  # "without attention the mean is even higher"
