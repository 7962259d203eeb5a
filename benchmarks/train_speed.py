"""Training throughput (images/s) of every registered model on the CPU, at smoke and full sizes.

A benchmark, not a test: it prints a table and asserts nothing. For each model it builds the
model with its defaults, then times ``--steps`` optimisation steps (forward, a dummy loss on
the output, backward, SGD step) on random images of the model's input size, after one warm-up
step. Sizes: the model's own ``default_cfg["input_size"]`` where it has one, else 64 px
(smoke) and 224 px (full). Models that need more than one input (e.g. DLI-Net's pairs) are
listed as skipped.

    python benchmarks/train_speed.py                      # every model, 2 threads
    python benchmarks/train_speed.py --models 'sketch*' 'resnet18*' --batch 16 --steps 3

Wall times depend on the machine and on its load; report them with the machine's state.
"""

from __future__ import annotations

import argparse
import fnmatch
import time

import torch


def _sizes(name: str, model: torch.nn.Module) -> list[tuple[str, int, int]]:
    if name.startswith("sketch_a_net_narrow"):
        return [("smoke", 1, 64), ("cpu-real", 1, 128)]
    if name.startswith("sketch_a_net"):
        return [("full", 1, 225)]
    cfg = getattr(model, "default_cfg", {}) or {}
    if "input_size" in cfg:
        c, _, s = cfg["input_size"]
        return [("default", int(c), int(s))]
    return [("smoke", 3, 64), ("full", 3, 224)]


def _first_tensor(out):
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        out = list(out.values())
    for item in out:
        t = _first_tensor(item) if not isinstance(item, torch.Tensor) else item
        if t is not None:
            return t
    return None


def bench(name: str, batch: int, steps: int) -> list[str]:
    from sbirlib.models import create_model

    rows = []
    try:
        model = create_model(name)
    except Exception as err:  # needs constructor arguments
        return [f"{name:<28} {'-':>9} {'-':>6} {'-':>10}  skipped: {type(err).__name__}: {err}"[:140]]
    for label, size_name in ((s[0], s) for s in _sizes(name, model)):
        _, c, s = size_name
        if name.startswith("sketch_a_net_narrow"):
            model = create_model(name, input_size=s)
        model.train()
        opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        x = torch.rand(batch, c, s, s)

        def step():
            opt.zero_grad(set_to_none=True)
            out = _first_tensor(model(x))
            out.float().pow(2).mean().backward()
            opt.step()

        try:
            step()
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            dt = (time.perf_counter() - t0) / steps
            rows.append(f"{name:<28} {label:>9} {s:>6} {batch / dt:>10.1f}")
        except Exception as err:
            rows.append(f"{name:<28} {label:>9} {s:>6} {'-':>10}  skipped: {type(err).__name__}"[:140])
    return rows


def main(argv: list[str] | None = None) -> None:
    from sbirlib.models import list_models

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=["*"], help="shell patterns of model names")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    names = [n for n in list_models() if any(fnmatch.fnmatch(n, p) for p in args.models)]
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, {args.steps} timed steps")
    print(f"{'model':<28} {'profile':>9} {'px':>6} {'images/s':>10}")
    for name in names:
        for row in bench(name, args.batch, args.steps):
            print(row, flush=True)


if __name__ == "__main__":
    main()
