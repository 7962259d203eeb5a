"""The ``sbir`` command: train and evaluate any method's recipe, list models and datasets.

::

    sbir train triplet-sn --dataset synthetic-fg --profile smoke --output-dir runs/tsn
    sbir train triplet-sn --dataset qmul-v1 --category shoes --data-root data/qmul_v1 \\
        --profile cpu-real --output-dir runs/shoes
    sbir evaluate triplet-sn --checkpoint runs/shoes/checkpoint.pt --dataset qmul-v1 --category shoes \\
        --data-root data/qmul_v1 --profile cpu-real
    sbir list-models [PATTERN]
    sbir datasets

Mistakes in what was asked for (an unknown profile, setting or dataset, a value of the wrong
type, missing data, a checkpoint that cannot be read or does not fit) are reported as one line,
``sbir: error: ...``, with exit status 2; ``--debug`` shows the traceback. Anything else is a
bug and keeps its traceback.

``train`` resolves ``recipe.PROFILES[profile]`` with the overrides given (unknown settings are
refused) and calls ``recipe.run(cfg, output_dir=..., device=..., data_root=...)``, which writes
``OUT/metrics.json`` and ``OUT/checkpoint.pt``. It also works under
``torchrun --nproc_per_node=N -m sbirlib.cli train ...`` (gloo on CPU, NCCL on GPU).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "build_parser", "resolve_data_root", "UsageError"]


class UsageError(Exception):
    """A mistake in what the user asked for: ``sbir`` prints it as one line and exits 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but its errors are one ``sbir: error:`` line (no usage block) and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog.split()[0]}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``sbir`` (sub-commands ``train``, ``evaluate``, ``list-models``, ``datasets``)."""
    from sbirlib.recipes import list_recipes

    parser = _Parser(prog="sbir", description="Sketch-based image retrieval, reproduced.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add_run_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("method", choices=list_recipes(), help="method (recipe) name")
        p.add_argument("--dataset", default=None, help="dataset name (see `sbir datasets`); default: the profile's")
        p.add_argument("--category", default=None, help="category for fine-grained datasets, e.g. shoes, chairs")
        p.add_argument("--data-root", default=None,
                       help="folder with the real data (default $SBIR_DATA); for qmul-v1 the folder holding <category>/")
        p.add_argument("--profile", default="smoke", help="smoke | cpu-real | full")
        p.add_argument("--seed", type=int, default=None, help="seed (default: the profile's)")
        p.add_argument("--device", default="auto", help="auto | cpu | cuda")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override any profile setting (JSON value), e.g. --set lr=0.0005")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        # SUPPRESS: a sub-command's default must not undo `sbir --debug train ...`
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback of an error")

    train = sub.add_parser("train", help="train a method and write OUT/metrics.json + OUT/checkpoint.pt")
    add_run_args(train)
    train.add_argument("--output-dir", required=True, help="run folder (metrics.json, checkpoint.pt)")
    train.add_argument("--epochs", type=int, default=None, help="override the profile's number of epochs")
    train.add_argument("--checkpoint", default="auto",
                       help="auto (reuse a matching checkpoint in the run folder) | train | a path")

    ev = sub.add_parser("evaluate", help="evaluate a trained checkpoint on the test split")
    add_run_args(ev)
    ev.add_argument("--checkpoint", required=True, help="checkpoint.pt written by `sbir train`")
    ev.add_argument("--output-dir", default=None, help="write metrics.json here (default: print only)")

    lm = sub.add_parser("list-models", help="registered model names")
    lm.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'resnet*'")

    sub.add_parser("datasets", help="registered dataset names")
    return parser


def resolve_data_root(dataset: str | None, data_root: str | None) -> str | None:
    """Accept both ``DIR`` (holding ``qmul_v1/``) and ``DIR/qmul_v1`` for QMUL data; pass others through."""
    return data_root or None


def _parse_sets(pairs: list[str]) -> dict[str, tuple[Any, str]]:
    """``KEY=VALUE`` pairs as ``{key: (value, raw text)}``; a value is JSON where it parses."""
    out: dict[str, tuple[Any, str]] = {}
    for pair in pairs:
        if "=" not in pair:
            raise UsageError(f"--set expects KEY=VALUE, got {pair!r}")
        key, raw = pair.split("=", 1)
        try:
            out[key] = (json.loads(raw), raw)
        except json.JSONDecodeError:
            out[key] = (raw, raw)
    return out


def _typed(key: str, value: Any, raw: str, default: Any, profile: str) -> Any:
    """``value`` checked against the type of the profile's own ``default`` (ints widen to floats)."""
    if default is None or value is None:
        return value
    kinds = {bool: (bool,), int: (int,), float: (int, float), str: (str,), list: (list,),
             tuple: (list, tuple), dict: (dict,)}
    want = next((k for k in (bool, int, float, str, list, tuple, dict) if isinstance(default, k)), None)
    if want is None:
        return value
    ok = isinstance(value, kinds[want]) and not (want is not bool and isinstance(value, bool))
    if not ok:
        article = "an" if want.__name__[0] in "aeiou" else "a"
        raise UsageError(f"--set {key}={raw}: {key} takes {article} {want.__name__} in profile {profile!r} "
                         f"(its value there is {json.dumps(default, default=str)})")
    return float(value) if want is float else tuple(value) if want is tuple else value


def _resolve(args: argparse.Namespace):
    from sbirlib.data import list_datasets
    from sbirlib.profiles import resolve_profile
    from sbirlib.recipes import get_recipe

    recipe = get_recipe(args.method)
    if args.profile not in recipe.PROFILES:
        raise UsageError(f"{args.method} has no profile {args.profile!r}; it has: {', '.join(recipe.PROFILES)}")
    if args.dataset is not None and args.dataset not in list_datasets():
        raise UsageError(f"unknown dataset {args.dataset!r}; `sbir datasets` lists them: "
                         f"{', '.join(sorted(list_datasets()))}")
    base = resolve_profile(recipe.PROFILES, args.profile)
    overrides: dict[str, Any] = dict(dataset=args.dataset, seed=args.seed, epochs=getattr(args, "epochs", None))
    for key, (value, raw) in _parse_sets(args.set).items():
        if key not in base:
            raise UsageError(f"--set {key}: {args.method} profile {args.profile!r} has no setting {key!r}; "
                             f"known: {', '.join(sorted(base))}")
        overrides[key] = _typed(key, value, raw, base[key], args.profile)
    cfg = resolve_profile(recipe.PROFILES, args.profile, **overrides)
    if args.category is not None:  # also allows clearing with an explicit value
        if "category" not in cfg:
            raise UsageError(f"{args.method} profile {args.profile!r} has no 'category' setting")
        dict.__setitem__(cfg, "category", args.category)
    return recipe, cfg


def _train(args: argparse.Namespace) -> int:
    from sbirlib import distributed

    distributed.setup()
    try:
        recipe, cfg = _resolve(args)
        out = Path(args.output_dir)
        result = recipe.run(cfg, output_dir=out, device=args.device,
                            data_root=resolve_data_root(cfg.get("dataset"), args.data_root),
                            checkpoint=args.checkpoint, progress=not args.quiet)
        if distributed.is_main_process():
            print(result)
            test = {k: v for k, v in result.metrics.items() if k.startswith("test/")}
            print(json.dumps(test, indent=2))
            print(f"wrote {out / 'metrics.json'} and {out / 'checkpoint.pt'}")
    finally:
        distributed.cleanup()
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    recipe, cfg = _resolve(args)
    if not Path(args.checkpoint).is_file():
        raise UsageError(f"checkpoint {args.checkpoint} does not exist; train first with `sbir train`")
    result = recipe.run(cfg, output_dir=args.output_dir, device=args.device,
                        data_root=resolve_data_root(cfg.get("dataset"), args.data_root),
                        checkpoint=args.checkpoint, progress=not args.quiet,
                        **({"write": args.output_dir is not None} if _accepts(recipe.run, "write") else {}))
    print(json.dumps({k: v for k, v in result.metrics.items() if k.startswith("test")}, indent=2))
    return 0


def _accepts(fn: Any, name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _user_errors() -> tuple[type[BaseException], ...]:
    from sbirlib.training import CheckpointError
    from sbirlib.utils import DataNotFoundError

    return UsageError, DataNotFoundError, CheckpointError


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err.args[0] if isinstance(err, KeyError) and err.args else err).split())
    return text or type(err).__name__


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sbir`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except _user_errors() as err:
        if args.debug:
            raise
        print(f"sbir: error: {_one_line(err)}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "list-models":
        from sbirlib.models import list_models

        for name in list_models(args.pattern):
            print(name)
        return 0
    if args.command == "datasets":
        from sbirlib.data import list_datasets

        for name, desc in list_datasets().items():
            print(f"{name:<22} {desc}")
        return 0
    if args.command == "train":
        return _train(args)
    if args.command == "evaluate":
        return _evaluate(args)
    raise UsageError(f"unknown command {args.command!r}")  # pragma: no cover - argparse catches it


if __name__ == "__main__":  # pragma: no cover - `python -m sbirlib.cli`
    sys.exit(main())
