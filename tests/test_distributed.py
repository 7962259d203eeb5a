"""`torchrun --nproc_per_node=2` (gloo, CPU) reproduces a single-process run of the trainer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import torch

from sbirlib import distributed

SCRIPT = textwrap.dedent(
    """
    import sys, torch
    from torch.utils.data import DataLoader, SequentialSampler
    from sbirlib import distributed, training
    from sbirlib.data import samplers
    from sbirlib.losses import triplet
    from sbirlib.models.sketch_a_net import SketchANet, normalize_sketch
    from sbirlib.recipes import common, triplet_sn
    from sbirlib.profiles import resolve_profile

    torch.set_num_threads(1)
    distributed.setup()
    cfg = resolve_profile(triplet_sn.PROFILES, "smoke")
    dict.__setitem__(cfg, "synthetic", {"n_classes": 3, "n_instances": 6, "in_memory": True})
    data = triplet_sn.load_data(cfg)
    data = {k: common.ImageBank(v, 64) for k, v in data.items()}
    trip = samplers.TripletDataset(data["train_sketch"], data["train_photo"], seed=0)
    world = distributed.world_size()
    sampler = distributed.distributed_sampler(trip, shuffle=False) or SequentialSampler(trip)
    loader = DataLoader(trip, batch_size=8 // world, sampler=sampler, drop_last=True)
    torch.manual_seed(0)
    model = SketchANet("narrow", input_size=64)

    def step_fn(net, batch, dev):
        b = batch["sketch"].shape[0]
        x = normalize_sketch(torch.cat([batch["sketch"], batch["positive"], batch["negative"]]))
        e = net(x.to(dev))
        return {"loss": triplet.triplet_margin_loss(e[:b], e[b:2 * b], e[2 * b:], margin=0.3)}

    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    hist = training.fit(model, loader, step_fn, optimizer=opt, epochs=2, device="cpu", progress=False)
    if distributed.is_main_process():
        torch.save({"state": model.state_dict(), "loss": hist.train_loss}, sys.argv[1])
    distributed.cleanup()
    """
)


def _run(cmd: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.distributed
@pytest.mark.slow
def test_torchrun_two_processes_matches_single_process(tmp_path):
    script = tmp_path / "ddp_fit.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd()}
    env.pop("WORLD_SIZE", None)
    _run([sys.executable, str(script), str(tmp_path / "single.pt")], env)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    if shutil.which("torchrun") is None and sys.executable is None:  # pragma: no cover
        pytest.skip("torchrun is not available")
    _run([*torchrun, str(script), str(tmp_path / "ddp.pt")], env)
    single = torch.load(tmp_path / "single.pt", weights_only=True)
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    for key, value in single["state"].items():
        torch.testing.assert_close(ddp["state"][key], value, rtol=1e-4, atol=1e-5)
    assert ddp["loss"] == pytest.approx(single["loss"], rel=1e-4)
    assert single["state"]["fc6.weight"].abs().sum() > 0


def test_helpers_without_a_process_group():
    assert not distributed.is_distributed()
    assert distributed.rank() == 0 and distributed.world_size() == 1 and distributed.is_main_process()
    assert distributed.average_scalars({"a": 1.5}) == {"a": 1.5}
    assert distributed.any_true(True) and not distributed.any_true(False)
    assert distributed.distributed_sampler(list(range(4))) is None
    assert distributed.setup().type in ("cpu", "cuda")
    distributed.barrier()
