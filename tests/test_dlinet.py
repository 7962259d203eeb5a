"""DLI-Net (spec ``papers/dlinet.md``): equations against naive loops, shapes, gradients, training."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sbirlib.models import dlinet as dl


def _unit_locals(b: int, n: int, c: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(b, n, c, generator=g, dtype=torch.float64), dim=-1)


# ---------------------------------------------------------------- Eq. (L1)


def test_local_l2_normalisation_matches_loop():
    fmap = torch.randn(2, 5, 3, 4, dtype=torch.float64)
    fmap[0, :, 1, 2] = 0.0  # an all-zero location stays zero (eps clamp)
    got = dl.local_l2_normalize(fmap)
    want = torch.zeros_like(fmap)
    for b in range(2):
        for y in range(3):
            for x in range(4):
                v = fmap[b, :, y, x]
                want[b, :, y, x] = v / max(math.sqrt(float((v * v).sum())), 1e-12)
    torch.testing.assert_close(got, want)
    assert torch.all(got[0, :, 1, 2] == 0)


def test_flatten_locals_is_row_major():
    fmap = torch.arange(2 * 3 * 2 * 2.0).reshape(2, 3, 2, 2)
    h = dl.flatten_locals(fmap)
    assert h.shape == (2, 4, 3)
    torch.testing.assert_close(h[1, 2], fmap[1, :, 1, 0])


# ---------------------------------------------------------------- Eqs. (L2)-(L3)


def _naive_si(h: torch.Tensor, k: float) -> tuple[torch.Tensor, torch.Tensor]:
    b, n, c = h.shape
    keep = int(math.floor(k * n))
    outs, idxs = [], []
    for i in range(b):
        S = h[i] @ h[i].T
        r = [float(S[m].sum()) for m in range(n)]
        chosen = sorted(sorted(range(n), key=lambda m: r[m])[:keep])
        idxs.append(torch.tensor(chosen))
        outs.append(h[i, chosen])
    return torch.stack(outs), torch.stack(idxs)


@pytest.mark.parametrize("k", [0.25, 0.5, 0.75])
def test_self_interaction_matches_naive(k):
    h = _unit_locals(3, 16, 8)
    got, idx = dl.self_interaction(h, k, return_indices=True)
    want, want_idx = _naive_si(h, k)
    torch.testing.assert_close(idx, want_idx)
    torch.testing.assert_close(got, want)


def test_self_interaction_drops_the_repetitive_background():
    # 6 identical "background" locals and 2 distinct "object" locals: keep k=0.25 -> 2 locals
    bg = F.normalize(torch.ones(1, 8), dim=-1)
    h = bg.repeat(8, 1)
    h[3] = F.normalize(torch.tensor([1.0, -1, 1, -1, 1, -1, 1, -1]), dim=0)
    h[6] = F.normalize(torch.tensor([1.0, 1, -1, -1, 1, 1, -1, -1]), dim=0)
    _, idx = dl.self_interaction(h[None], 0.25, return_indices=True)
    assert idx.tolist() == [[3, 6]]


def test_self_interaction_off_and_counts():
    h = _unit_locals(2, 49, 4)
    assert dl.self_interaction(h, 1.0) is h
    assert dl.num_kept(256, 0.5) == 128 and dl.num_kept(49, 0.5) == 24 and dl.num_kept(16, 0.5) == 8
    with pytest.raises(ValueError):
        dl.num_kept(16, 0.0)


def test_self_interaction_gradient_reaches_only_kept_features():
    h = _unit_locals(1, 8, 4).requires_grad_(True)
    kept, idx = dl.self_interaction(h, 0.5, return_indices=True)
    kept.sum().backward()
    rows_with_grad = set(torch.nonzero(h.grad[0].abs().sum(-1)).flatten().tolist())
    assert rows_with_grad == set(idx[0].tolist())


# ---------------------------------------------------------------- Eqs. (L4)-(L5)


def _naive_ci(s: torch.Tensor, p: torch.Tensor, agg: str) -> float:
    d = []
    for i in range(s.shape[0]):
        d.append(min(math.sqrt(float(((s[i] - p[j]) ** 2).sum())) for j in range(p.shape[0])))
    return sum(d) if agg == "1norm" else math.sqrt(sum(x * x for x in d))


@pytest.mark.parametrize("agg", ["2norm", "1norm"])
def test_cross_interaction_matches_naive_with_unequal_k(agg):
    s, p = _unit_locals(3, 5, 6, seed=1), _unit_locals(4, 7, 6, seed=2)  # Ks=5 != Kp=7
    got = dl.cross_interaction_matrix(s, p, agg)
    want = torch.tensor([[_naive_ci(s[i], p[j], agg) for j in range(4)] for i in range(3)],
                        dtype=torch.float64)
    torch.testing.assert_close(got, want)
    # aligned-pair version agrees with the diagonal
    torch.testing.assert_close(dl.cross_interaction(s, p[:3, :5], agg),
                               dl.cross_interaction_matrix(s, p[:3, :5], agg).diagonal())


def test_cross_interaction_hand_computed_and_asymmetric():
    # sketch locals e1, e2; photo locals e1, e3, e3: nearest distances 0 and sqrt(2)
    e = torch.eye(3, dtype=torch.float64)
    s, p = e[[0, 1]][None], e[[0, 2, 2]][None]
    assert dl.cross_interaction(s, p).item() == pytest.approx(math.sqrt(2), abs=1e-6)
    assert dl.cross_interaction(s, p, "1norm").item() == pytest.approx(math.sqrt(2), abs=1e-6)
    # photo -> sketch: e1->0, e3->sqrt2, e3->sqrt2: 2norm = 2 -- D is asymmetric
    assert dl.cross_interaction(p, s).item() == pytest.approx(2.0, abs=1e-6)
    sym = dl.cross_interaction(s, p, symmetric=True).item()
    assert sym == pytest.approx(0.5 * (math.sqrt(2) + 2.0), abs=1e-6)


def test_cross_interaction_ignores_photo_locals_no_sketch_chose():
    e = torch.eye(4, dtype=torch.float64)
    s = e[[0, 1]][None]
    p1, p2 = e[[0, 1, 2]][None], e[[0, 1, 3]][None]
    assert dl.cross_interaction(s, p1).item() == pytest.approx(dl.cross_interaction(s, p2).item())


def test_simple_match_matches_naive_and_needs_equal_k():
    s, p = _unit_locals(2, 4, 3, 5), _unit_locals(3, 4, 3, 6)
    got = dl.simple_match_matrix(s, p)
    want = torch.tensor([[math.sqrt(sum(float(((s[i, n] - p[j, n]) ** 2).sum()) for n in range(4)))
                          for j in range(3)] for i in range(2)], dtype=torch.float64)
    torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match="same number of locals"):
        dl.simple_match(s[:, :3], p[:2])


@pytest.mark.parametrize("matching", ["cross", "position"])
def test_blocked_pairwise_distance_equals_dense(matching):
    s, p = _unit_locals(7, 6, 5, 3).float(), _unit_locals(11, 6, 5, 4).float()
    dense = (dl.cross_interaction_matrix(s, p) if matching == "cross"
             else dl.simple_match_matrix(s, p))
    got = dl.pairwise_distance(s, p, matching=matching, query_block=3, gallery_block=4)
    assert got.shape == (7, 11) and got.device.type == "cpu"
    torch.testing.assert_close(got, dense)


def test_cross_interaction_gradients_finite_even_for_exact_matches():
    s = _unit_locals(2, 4, 3).requires_grad_(True)
    p = s.detach().clone().requires_grad_(True)  # exact matches: distance 0
    dl.cross_interaction_matrix(s, p).sum().backward()
    assert torch.isfinite(s.grad).all() and torch.isfinite(p.grad).all()


# ---------------------------------------------------------------- the network


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_paper_model_shapes_and_parameter_count():
    from sbirlib.models import create_model

    torch.manual_seed(0)
    model = create_model("dlinet").eval()
    # ResNet-50 conv1..layer3 = 8,543,296 parameters per encoder; the paper reports no count
    n = _count(model)
    print(f"DLI-Net (2 x ResNet-50 to layer3): {n:,} parameters")
    assert n == 2 * 8_543_296
    assert not hasattr(model.sketch_encoder.trunk, "layer4")
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        fmap, _ = model.sketch_encoder(x)
        s, idx = model.encode_sketch(x, return_indices=True)
    assert fmap.shape == (1, 1024, 16, 16)
    assert s.shape == (1, 128, 1024) and idx.shape == (1, 128)
    torch.testing.assert_close(s.norm(dim=-1), torch.ones(1, 128))


def test_sketchy_variant_has_heads_and_reads_layer3():
    from sbirlib.models import create_model

    model = create_model("dlinet_sketchy", arch="resnet18", num_classes=7)
    out = model(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64))
    assert out["dist"].shape == (2, 2)
    assert out["logits_sketch"].shape == out["logits_photo"].shape == (2, 7)
    assert model.sketch_encoder.channels == 256
    loss = dl.classification_loss(out, torch.tensor([1, 3]))
    want = 0.5 * (F.cross_entropy(out["logits_photo"], torch.tensor([1, 3]))
                  + F.cross_entropy(out["logits_sketch"], torch.tensor([1, 3])))
    torch.testing.assert_close(loss, want)


@pytest.mark.parametrize("kw,k_shape", [
    ({}, (8, 128)),
    ({"keep_ratio": 1.0, "matching": "position"}, (16, 128)),
    ({"feature": "global"}, (1, 256)),
    ({"feature": "high", "keep_ratio": 1.0}, (4, 256)),
    ({"norm": "map", "aggregation": "1norm", "symmetric": True}, (8, 128)),
])
def test_cpu_variant_forward_backward(kw, k_shape):
    from sbirlib.models import create_model

    torch.manual_seed(0)
    model = create_model("dlinet_r18", arch="resnet18_narrow", **kw)  # half width: fast
    sk, ph = torch.rand(3, 3, 64, 64), torch.rand(3, 3, 64, 64)
    out = model(sk, ph)
    assert out["dist"].shape == (3, 3)
    assert model.encode_photo(ph).shape[1:] == k_shape
    out["dist"].sum().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    # the training-time matrix equals the blocked retrieval matrix
    model.eval()
    with torch.no_grad():
        s, p = model.encode_sketch(sk), model.encode_photo(ph)
        torch.testing.assert_close(model.pairwise_distance(s, p, gallery_block=2),
                                   model.distance_matrix(s, p))


def test_invalid_settings_are_refused():
    with pytest.raises(ValueError, match="keep_ratio=1.0"):
        dl.DLINet(arch="resnet18", matching="position", keep_ratio=0.5)
    with pytest.raises(ValueError, match="aggregation"):
        dl.DLINet(arch="resnet18", aggregation="3norm")


# ---------------------------------------------------------------- recipe


def test_in_batch_triplet_loss_is_eq_l7():
    from sbirlib.losses import triplet

    dist = torch.tensor([[0.5, 0.55, 2.0], [0.3, 0.2, 0.25], [1.0, 1.0, 1.0]])
    m = 0.1
    # anchor 0: hinges 0.05 (j=1), 0 (j=2) -> 0.05/1; anchor 1: 0 and 0.05 -> 0.05/1
    # anchor 2: 0.1 and 0.1 -> 0.2/2 = 0.1; mean = 0.2/3
    got = triplet.in_batch_triplet_loss(dist=dist, margin=m, normalize="active")
    assert got.item() == pytest.approx(0.2 / 3, abs=1e-6)
    easy = torch.tensor([[0.0, 5.0], [5.0, 0.0]])
    assert triplet.in_batch_triplet_loss(dist=easy, margin=m).item() == 0.0


def test_full_profiles_resolve_and_one_step_runs():
    from sbirlib.profiles import resolve_profile
    from sbirlib.recipes import dlinet as recipe

    names = ["full"] + [f"full-{s}" for s in recipe.PAPER_SETTINGS if s != "shoe-v1"]
    for name in names:
        cfg = resolve_profile(recipe.PROFILES, name)
        assert cfg.arch == "resnet50" and cfg.image_size == 256 and cfg.batch_size == 32
        assert cfg.keep_ratio == 0.5 and cfg.aggregation == "2norm" and cfg.seed == 1000
    assert resolve_profile(recipe.PROFILES, "full-chair-v2").margin == 0.5
    sk = resolve_profile(recipe.PROFILES, "full-sketchy")
    assert (sk.lr, sk.epochs, sk.trip_weight, sk.cls_weight) == (1e-5, 300, 48.0, 1.0)
    with pytest.raises(ValueError, match="full-chair-v1"):
        recipe._check_profile(resolve_profile(recipe.PROFILES, "full", category="chairs"))
    # one step of the paper's Sketchy model (R50 x2 + heads) on a tiny batch; no ImageNet
    # weights offline, so random init
    cfg = resolve_profile(recipe.PROFILES, "full-sketchy", pretrained=False)
    torch.manual_seed(0)
    model = recipe.build_model(cfg)
    assert model.keep_ratio == 0.5 and model.num_classes == 125
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    batch = {"sketch": torch.rand(3, 3, 64, 64), "photo": torch.rand(3, 3, 64, 64),
             "label": torch.tensor([0, 5, 9])}
    logs = recipe.make_step_fn(cfg)(model, batch, torch.device("cpu"))
    assert torch.isfinite(logs["loss"]) and "loss_cls" in logs
    logs["loss"].backward()
    opt.step()


def test_normalisation_and_training_view_follow_the_official_code():
    from sbirlib.profiles import resolve_profile
    from sbirlib.recipes import dlinet as recipe

    cfg = resolve_profile(recipe.PROFILES, "full")
    white, black = torch.ones(2, 1, 288, 288), torch.zeros(2, 3, 288, 288)
    x = recipe.train_view(white, cfg)
    assert x.shape == (2, 3, 256, 256) and torch.all(x == 1.0)  # 2*1-1, grey -> 3 channels
    assert torch.all(recipe.train_view(black, cfg) == -1.0)
    # the crop is random per image and never flipped: a ramp keeps its direction
    ramp = torch.linspace(0, 1, 288).expand(2, 1, 288, 288).clone()
    out = recipe.train_view(ramp, cfg)
    assert torch.all(out[:, :, :, 1:] >= out[:, :, :, :-1])


class _Bank(torch.utils.data.Dataset):
    """A few images of one modality with instance ids (items as in the library's datasets)."""

    def __init__(self, images, instances):
        self.images, self.instances = images, list(instances)
        self.labels = [0] * len(self.instances)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return {"image": self.images[i], "label": 0, "instance": self.instances[i],
                "domain": 0, "index": i}


def test_dlinet_trains_on_the_synthetic_task(tmp_path):
    """The CPU variant on 24 synthetic-fg training pairs: loss falls, acc@1 rises above chance.

    One batch of 24 distinct photos (and one sketch each, random crops) is fitted for 25 steps
    with the recipe's step function and the shared trainer. The loss must halve and the
    in-batch retrieval accuracy (each sketch's own photo nearest among the 24, chance 1/24)
    must rise to at least 3x chance. A model that does not learn stays near chance.
    """
    from sbirlib import training
    from sbirlib.profiles import resolve_profile
    from sbirlib.recipes import dlinet as recipe

    cfg = resolve_profile(recipe.PROFILES, "smoke", arch="resnet18_narrow")
    data = recipe.build_data(cfg)
    pairs = data["train"]
    n = 24
    photos = torch.stack([pairs.photos[pairs.photo_index[i]]["image"] for i in range(n)])
    sketches = torch.stack([pairs.sketches[pairs.sketches_of[i][0]]["image"] for i in range(n)])
    inst = [int(pairs.photos.instances[pairs.photo_index[i]]) for i in range(n)]
    sk_bank, ph_bank = _Bank(sketches, inst), _Bank(photos, inst)
    torch.manual_seed(0)
    model = recipe.build_model(cfg)
    loader = torch.utils.data.DataLoader(recipe.PhotoPairs(sk_bank, ph_bank), batch_size=n,
                                         shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    hist = training.fit(model, loader, recipe.make_step_fn(cfg), optimizer=opt, epochs=25,
                        device="cpu", seed=0, progress=False)
    losses = hist.train_loss
    acc = [row["batch_acc@1"] for row in hist.train]  # in-batch retrieval, chance 1/24
    print("loss", losses, "batch acc@1", acc)
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5
    assert sum(acc[-5:]) / 5 >= 3 / n and sum(acc[-5:]) > sum(acc[:5])


def test_cpu_profiles_select_on_validation_and_full_keeps_last():
    from sbirlib.profiles import resolve_profile
    from sbirlib.recipes import dlinet as recipe

    for name in ("smoke", "cpu-real"):
        assert resolve_profile(recipe.PROFILES, name).select == "best"
    assert resolve_profile(recipe.PROFILES, "full").select == "last"
    assert resolve_profile(recipe.PROFILES, "full-sketchy-cc").select == "best"
    with pytest.raises(KeyError, match="unknown setting"):
        recipe.variant(resolve_profile(recipe.PROFILES, "smoke"), keep_ration=0.5)


def test_run_ablations_bookkeeping_and_table(monkeypatch):
    """Every (variant, seed) is trained with the variant's overrides; the table is mean ± std."""
    from types import SimpleNamespace

    from sbirlib.profiles import resolve_profile
    from sbirlib.recipes import dlinet as recipe

    seen = []

    def fake_run(cfg, **kw):
        seen.append((cfg["keep_ratio"], cfg["aggregation"], cfg["seed"], cfg["epochs"]))
        acc = cfg["keep_ratio"] + 0.1 * cfg["seed"]
        return SimpleNamespace(
            metrics={"test/acc@1": acc, "test/acc@5": 1.0, "test/acc@10": 1.0, "val/acc@1": 0.2,
                     "baseline/pixel_acc@1": 0.5},
            record={"timing": {"score_s": cfg["keep_ratio"] ** 2}},
            history=SimpleNamespace(best_epoch=3))

    monkeypatch.setattr(recipe, "run", fake_run)
    cfg = resolve_profile(recipe.PROFILES, "smoke")
    names = ["SI k=0.25", "CI with 1norm"]
    rec = recipe.run_ablations(cfg, names=names, seeds=(0, 1, 2), data={}, device="cpu")
    assert seen == [(0.25, "2norm", s, 15) for s in (0, 1, 2)] + [(0.5, "1norm", s, 15) for s in (0, 1, 2)]
    assert rec["kind"] == "ablations" and rec["seeds"] == [0, 1, 2] and len(rec["rows"]) == 6
    assert "baseline/pixel_acc@1" not in rec["rows"][0]["metrics"]
    assert rec["provenance"]["profile"] == "smoke" and rec["changes"]["SI k=0.25"] == {"keep_ratio": 0.25}
    table = {r["ablation"]: r for r in recipe.ablation_table(rec)}
    assert table["SI k=0.25"]["test/acc@1"] == pytest.approx(0.35)
    assert table["SI k=0.25"]["test/acc@1 (std)"] == pytest.approx(0.1)  # sample std of 0.25/0.35/0.45
    assert table["CI with 1norm"]["score_s"] == pytest.approx(0.25)
    one = recipe.ablation_table({"rows": rec["rows"][:1]})
    assert one[0]["test/acc@1 (std)"] is None
    with pytest.raises(KeyError, match="unknown ablations"):
        recipe.run_ablations(cfg, names=["nope"], data={})


def test_cpu_profiles_reestimate_batchnorm_before_validation():
    """bn_images > 0: both encoders' BatchNorm statistics become exact averages on fixed pairs."""
    from sbirlib.profiles import resolve_profile
    from sbirlib.recipes import dlinet as recipe

    assert resolve_profile(recipe.PROFILES, "smoke").bn_images > 0
    assert resolve_profile(recipe.PROFILES, "full").bn_images == 0
    torch.manual_seed(0)
    model = dl.dlinet_r18(arch="resnet18_narrow").eval()
    sk, ph = torch.rand(5, 1, 32, 32), torch.rand(5, 3, 32, 32)
    recipe.recalibrate_batchnorm(model, sk, ph, batch_size=5)
    for enc, x in ((model.sketch_encoder, sk), (model.photo_encoder, ph)):
        with torch.no_grad():
            first = enc.trunk.conv1(recipe.normalize(x))
        torch.testing.assert_close(enc.trunk.bn1.running_mean, first.mean(dim=(0, 2, 3)))
        assert enc.trunk.bn1.momentum == 0.1
    assert not model.training


def _chapter_cell(startswith: str) -> str:
    import json
    from pathlib import Path

    nb = json.loads((Path(__file__).resolve().parent.parent / "book" / "chapters"
                     / "04_dlinet.ipynb").read_text())
    cells = ["".join(c["source"]) for c in nb["cells"]]
    return next(c for c in cells if c.startswith(startswith))


def test_chapter_cpu_real_findings_match_the_records():
    """The chapter's "what we found" box states numbers and orderings; each must hold in the
    committed records it reads (so re-recording a run cannot leave stale prose behind)."""
    import numpy as np

    from sbirlib import results
    from sbirlib.recipes import dlinet as recipe

    box = _chapter_cell(":::{admonition} What the recorded `cpu-real` runs show")
    shoes, chairs = (results.load_result(recipe.CHAPTER, n) for n in ("cpu-real", "cpu-real-chairs"))
    tsn_s, tsn_c = (results.load_result("02_triplet_sn", n) for n in ("cpu-real", "cpu-real-chairs"))
    dssa, abl = results.load_result("03_dssa", "cpu-real"), results.load_result(recipe.CHAPTER, "ablations-cpu-real")
    assert None not in (shoes, chairs, tsn_s, tsn_c, dssa, abl)
    s, c = shoes["metrics"], chairs["metrics"]

    def stated(x: float) -> bool:
        return f"{x:.3f}" in box

    # Chair-V1: ahead of everything
    dssa_c = dssa["metrics"]["compare_chairs_dssa/acc@1_mean"]
    for bar in (tsn_c["metrics"]["test/acc@1"], dssa_c, c["baseline/pixel_acc@1"]):
        assert c["test/acc@1"] > bar and stated(bar)
    assert stated(c["test/acc@1"]) and stated(c["test/acc@10"])
    assert c["test/acc@10"] > max(tsn_c["metrics"]["test/acc@10"], c["baseline/pixel_acc@10"])
    # Shoe-V1: level with the pixels at acc@1, below ten-view Triplet-SN, level with its one view
    assert round(s["test/acc@1"], 3) == round(s["baseline/pixel_acc@1"], 3) and stated(s["test/acc@1"])
    assert s["test/acc@1"] < tsn_s["metrics"]["test/acc@1"] and stated(tsn_s["metrics"]["test/acc@1"])
    one_view = tsn_s["metrics"]["test_1view/acc@1"]
    assert abs(s["test/acc@1"] - one_view) <= 0.01 and stated(one_view)
    assert s["test/acc@10"] > max(tsn_s["metrics"]["test/acc@10"], tsn_s["metrics"]["test_1view/acc@10"],
                                  s["baseline/pixel_acc@10"])
    d = dssa["metrics"]  # DSSA's main record is Shoe-V1, ten views and one
    assert d["test/acc@1"] > s["test/acc@1"] and stated(d["test/acc@1"])
    assert abs(s["test/acc@1"] - d["test_1view/acc@1"]) <= 0.01 and stated(d["test_1view/acc@1"])
    assert s["test/acc@10"] > max(d["test/acc@10"], d["test_1view/acc@10"])
    assert stated(d["test/acc@10"]) and stated(d["test_1view/acc@10"])
    assert stated(tsn_s["metrics"]["test_1view/acc@10"])
    # seeds: the paper setting vs the global embedding on the same trunk
    rows = {name: [r["metrics"]["test/acc@1"] for r in abl["rows"] if r["name"] == name]
            for name in ("mid + SI k=0.5 + CI, 2norm (paper)", "global (layer4 + GAP, Euclidean)")}
    local, glob = (np.array(v) for v in rows.values())
    assert len(local) == len(glob) == 3
    assert results.seed_ordering(abl, *rows, "test/acc@1") == "higher"
    assert glob.max() < s["baseline/pixel_acc@1"]
    assert local[0] == pytest.approx(s["test/acc@1"])  # seed 0 is the recorded chapter run
    for arr in (local, glob):
        assert f"{arr.mean():.3f} ± {arr.std(ddof=1):.3f}" in box
    assert all(stated(v) for v in local)
    epochs = [r["best_epoch"] for r in abl["rows"] if r["name"].endswith("(paper)")]
    assert f"{epochs[0]}, {epochs[1]} and {epochs[2]}" in box


def test_chapter_smoke_ablation_orderings_hold_seed_by_seed():
    """Each ordering the chapter states for the recorded smoke ablations holds for every pair
    of seeds in ``ablations-smoke.json`` (and the overlap it mentions is one)."""
    from sbirlib import results
    from sbirlib.recipes import dlinet as recipe

    rec = results.load_result(recipe.CHAPTER, "ablations-smoke")
    assert rec is not None and rec["seeds"] == [0, 1, 2]
    assert {r["name"] for r in rec["rows"]} == set(recipe.ABLATIONS)

    def order(a: str, b: str) -> str:
        return results.seed_ordering(rec, a, b, "test/acc@1")

    paper, pos = "mid + SI k=0.5 + CI, 2norm (paper)", "position-wise SimpleMatch (k=1.0)"
    assert all(order(pos, n) == "higher" for n in recipe.ABLATIONS if n != pos)
    assert order("SI k=0.75", paper) == order(paper, "SI k=0.25") == "higher"
    assert order("SI k=1.0 (SI off)", "SI k=0.75") == "overlap"
    assert order("global (layer4 + GAP, Euclidean)", paper) == "higher"
    text = _chapter_cell('With three seeds, "twice the standard error"')
    assert "position-wise matching beats every" in text and "$k = 0.25 < 0.5 < 0.75$" in text
