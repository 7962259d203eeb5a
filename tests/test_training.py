"""The trainer: selection on validation, exact resume, atomic checkpoints, non-finite stop."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from sbirlib import training


class _Payload:
    """Stands for arbitrary code a malicious checkpoint could carry."""


def _data(n: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return x, y


def _model() -> nn.Module:
    torch.manual_seed(123)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))


def _loader() -> DataLoader:
    x, y = _data()
    return DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)


def _step(model, batch, device):
    x, y = (t.to(device) for t in batch)
    return {"loss": nn.functional.cross_entropy(model(x), y), "extra": torch.tensor(1.0)}


def _val(model):
    x, y = _data(32, seed=1)
    return {"acc@1": (model(x).argmax(1) == y).float().mean().item()}


def _fit(model, **kw):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    args = dict(optimizer=opt, scheduler=sched, epochs=4, val_fn=_val, progress=False, seed=0)
    args.update(kw)
    return training.fit(model, _loader(), _step, **args)


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_fit_learns_and_records_history():
    model = _model()
    hist = _fit(model)
    assert hist.epochs == 4 and len(hist.train) == 4 and len(hist.val) == 4
    assert hist.train_loss[-1] < hist.train_loss[0]
    assert hist.train[0]["extra"] == pytest.approx(1.0)
    assert hist.train[2]["lr"] == pytest.approx(0.05)
    assert hist.best_score == max(hist.metric("acc@1"))
    assert "trained" in repr(hist)


def test_best_epoch_is_selected_on_validation_and_loaded_back():
    scores = iter([0.2, 0.9, 0.4])
    snapshots = []

    def val_fn(model):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"acc@1": next(scores)}

    model = _model()
    hist = _fit(model, epochs=3, val_fn=val_fn)
    assert hist.best_epoch == 2 and hist.best_score == 0.9
    for k, v in model.state_dict().items():
        assert torch.equal(v, snapshots[1][k])
    assert not torch.equal(snapshots[1]["0.weight"], snapshots[2]["0.weight"])


def test_min_mode_and_missing_monitor():
    model = _model()
    hist = _fit(model, epochs=2, val_fn=lambda m: {"loss": 1.0}, monitor="loss", mode="min")
    assert hist.best_epoch == 1
    with pytest.raises(KeyError, match="monitor"):
        _fit(_model(), epochs=1, val_fn=lambda m: {"map@all": 0.1})


def test_seeded_runs_are_identical():
    a, b = _model(), _model()
    _fit(a, seed=3)
    _fit(b, seed=3)
    assert _same_weights(a, b)
    c = _model()
    _fit(c, seed=4)
    assert not _same_weights(a, c)


def test_interrupted_and_resumed_run_matches_uninterrupted(tmp_path):
    ref = _model()
    ref_hist = _fit(ref, output_dir=tmp_path / "ref")

    calls = {"n": 0}

    def crashing_step(model, batch, device):
        calls["n"] += 1
        if calls["n"] == 10:  # in the third epoch (4 steps per epoch)
            raise KeyboardInterrupt
        return _step(model, batch, device)

    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    with pytest.raises(KeyboardInterrupt):
        training.fit(model, _loader(), crashing_step, optimizer=opt, scheduler=sched, epochs=4,
                     val_fn=_val, progress=False, output_dir=tmp_path / "run")
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=True)["epoch"] == 2

    resumed = _model()
    hist = _fit(resumed, output_dir=tmp_path / "run")
    assert hist.resumed_from == 2 and hist.epochs == 4
    assert _same_weights(ref, resumed)
    assert hist.train_loss == ref_hist.train_loss
    assert hist.metric("acc@1") == ref_hist.metric("acc@1")


def test_resume_ignores_a_checkpoint_of_another_config(tmp_path):
    _fit(_model(), epochs=2, output_dir=tmp_path, config={"lr": 0.1})
    hist = _fit(_model(), epochs=2, output_dir=tmp_path, config={"lr": 0.2})
    assert hist.resumed_from == 0


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    calls = {"n": 0}

    def nan_step(model, batch, device):
        calls["n"] += 1
        out = _step(model, batch, device)
        if calls["n"] == 6:  # second epoch
            out["loss"] = out["loss"] * float("nan")
        return out

    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(training.NonFiniteLossError, match="epoch 2"):
        training.fit(model, _loader(), nan_step, optimizer=opt, epochs=3, progress=False,
                     output_dir=tmp_path)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["epoch"] == 1
    for k, v in model.state_dict().items():
        assert torch.equal(v, state["model"][k])
        assert torch.isfinite(v).all()


def test_checkpoints_are_atomic_and_weights_only(tmp_path):
    model = _model()
    path = training.save_checkpoint(tmp_path / "ck.pt", {"model": model.state_dict(), "epoch": 3})
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]
    other = _model()
    nn.init.zeros_(other[0].weight)
    state = training.load_checkpoint(path, other)
    assert state["epoch"] == 3 and _same_weights(model, other)

    # an arbitrary pickled object must be refused
    torch.save({"model": model.state_dict(), "payload": _Payload()}, tmp_path / "evil.pt")
    with pytest.raises(RuntimeError, match="cannot load checkpoint"):
        training.load_checkpoint(tmp_path / "evil.pt", other)
    with pytest.raises(FileNotFoundError):
        training.load_checkpoint(tmp_path / "missing.pt")
    with pytest.raises(RuntimeError, match="does not fit"):
        training.load_checkpoint(path, nn.Linear(3, 3))


def test_a_failed_write_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    path = training.save_checkpoint(tmp_path / "ck.pt", {"epoch": 1})

    def broken_save(obj, f):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        training.save_checkpoint(path, {"epoch": 2})
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ck.pt"]


class _CountingRun:
    """``train_or_load`` on the toy task, counting the training steps it takes."""

    def __init__(self, folder):
        self.folder, self.steps = folder, 0

    def _step(self, model, batch, device):
        self.steps += 1
        return _step(model, batch, device)

    def __call__(self, checkpoint="auto", config=None, model=None, sub=""):
        model = model or _model()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        hist = training.train_or_load(model, _loader(), self._step, optimizer=opt, epochs=2,
                                      val_fn=_val, progress=False, output_dir=self.folder / sub,
                                      config=config or {"lr": 0.1}, checkpoint=checkpoint)
        return model, hist


def test_train_or_load(tmp_path, monkeypatch):
    monkeypatch.setenv("SBIR_CACHE", str(tmp_path / "cache"))
    run = _CountingRun(tmp_path)
    m1, h1 = run()
    assert not h1.loaded and run.steps == 8
    m2, h2 = run()
    assert h2.loaded and run.steps == 8 and _same_weights(m1, m2)
    assert h2.best_epoch == h1.best_epoch and h2.train_loss == h1.train_loss
    _, h3 = run(config={"lr": 0.2})
    assert not h3.loaded and run.steps == 16
    _, h4 = run(checkpoint="train")
    assert not h4.loaded and run.steps == 24
    m5, h5 = run(checkpoint=str(tmp_path / "checkpoint.pt"))
    assert h5.loaded and run.steps == 24
    with pytest.raises(FileNotFoundError):
        run(checkpoint=str(tmp_path / "nope.pt"))


def test_train_or_load_finds_the_same_config_from_another_run_folder(tmp_path, monkeypatch):
    """A chapter re-run after a kernel restart gets a fresh run folder and must not retrain."""
    monkeypatch.setenv("SBIR_CACHE", str(tmp_path / "cache"))
    run = _CountingRun(tmp_path)

    m1, h1 = run(sub="run-1")
    assert not h1.loaded and run.steps == 8
    shared = training.weights_cache_path(m1, training.config_fingerprint({"lr": 0.1}))
    assert shared.is_file() and (tmp_path / "cache") in shared.parents
    m2, h2 = run(sub="run-2")
    assert h2.loaded and run.steps == 8 and _same_weights(m1, m2)
    assert h2.train_loss == h1.train_loss  # the chapter reports the losses of a loaded run too
    assert (tmp_path / "run-2" / "checkpoint.pt").is_file() and not (tmp_path / "run-2" / "last.pt").exists()
    _, h3 = run(sub="run-3", config={"lr": 0.2})  # another config trains
    assert not h3.loaded and run.steps == 16

    class Other(nn.Sequential):
        pass

    torch.manual_seed(123)
    other = Other(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))
    _, h4 = run(sub="run-4", model=other)  # same config, another model class: trains
    assert not h4.loaded and run.steps == 24
    monkeypatch.setattr("sbirlib.utils.code_digest", lambda: "edited-code")
    _, h5 = run(sub="run-5")  # the library's code changed: the old weights are not used
    assert not h5.loaded and run.steps == 32


def test_steps_per_epoch_caps_each_epoch():
    model = _model()
    hist = _fit(model, epochs=2, steps_per_epoch=2)
    assert [row["steps"] for row in hist.train] == [2, 2]


def test_keep_last_keeps_the_final_epoch_also_after_resume(tmp_path):
    ref = _model()
    _fit(ref, epochs=3, keep="last", val_fn=lambda m: {"acc@1": 1.0})
    calls = {"n": 0}

    def crashing_step(model, batch, device):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt
        return _step(model, batch, device)

    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    with pytest.raises(KeyboardInterrupt):
        training.fit(model, _loader(), crashing_step, optimizer=opt, scheduler=sched, epochs=3, keep="last",
                     val_fn=lambda m: {"acc@1": 1.0}, progress=False, output_dir=tmp_path)
    resumed = _model()
    hist = _fit(resumed, epochs=3, keep="last", val_fn=lambda m: {"acc@1": 1.0}, output_dir=tmp_path)
    assert hist.best_epoch == 3 and _same_weights(ref, resumed)
    with pytest.raises(ValueError, match="keep"):
        _fit(_model(), epochs=1, keep="first")


def test_keep_last_needs_no_monitored_metric():
    # validation only logged: the metrics need not contain the monitor name
    hist = _fit(_model(), epochs=2, keep="last", val_fn=lambda m: {"map@all": 0.5})
    assert hist.best_epoch == 2 and hist.val[-1] == {"map@all": 0.5}
