"""Execute the book's chapters with papermill, exactly as CI and ``make book`` do.

For every chapter notebook it

1. checks the requested parameter names against the notebook's ``parameters`` cell
   (papermill itself only warns about unknown names);
2. executes it with a per-cell timeout and a wall-clock limit for the whole chapter, the
   kernel's working directory being the chapter folder, ``SBIR_RUN_DIR`` pointing at
   ``<runs>/`` so the chapter's run record lands in ``<runs>/<chapter>/metrics.json``;
3. on failure prints the failing cell's traceback and exits non-zero;
4. compares the run record with the committed reference ``book/results/<chapter>/smoke.json``
   (tolerance and floors stated in the reference) when the profile is ``smoke``.

With ``--stage DIR`` the book sources (``_config.yml``, ``_toc.yml``, ``book/``) are first copied
to DIR and executed there in place, so the committed notebooks stay output-free and
``jupyter-book build DIR`` renders the executed copies.

    python tools/run_chapters.py                       # every chapter, in a scratch folder
    python tools/run_chapters.py book/chapters/03_dssa.ipynb -p profile=smoke
    python tools/run_chapters.py --stage _build/src    # what `make book` does
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sbirlib.results import compare_to_reference, load_json  # noqa: E402

CHAPTER_GLOB = "[0-9]*.ipynb"
# The timeouts catch a hung kernel, not a slow machine: a smoke chapter aims at a few minutes
# on 2 idle cores, but one at a single thread, or on a slower or busy CPU, measured up to 5x
# that (04_dlinet: 150 s idle at 2 threads, 770 s at 1 thread beside two other runs), so
# the limits leave room for it; a cpu-real cell may train a dozen models (DSSA's seeds x
# datasets comparison: ~25 min on 2 idle cores)
CELL_TIMEOUT = {"smoke": 600, "cpu-real": 3600}
DEFAULT_CHAPTER_TIMEOUT = 1800  # one whole smoke chapter, kernel start included
# nbclient occasionally never sees the reply of a cell that displays ipywidgets
# (jupyter/nbclient#312); such a cell runs into its timeout, and the chapter is run once more
RETRIES_ON_CELL_TIMEOUT = 1


def find_chapters(root: Path) -> list[Path]:
    return sorted((root / "book" / "chapters").glob(CHAPTER_GLOB))


def parse_params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        if "=" not in pair:
            raise SystemExit(f"-p expects name=value, got {pair!r}")
        name, value = pair.split("=", 1)
        params[name.strip()] = value
    return params


def check_param_names(nb: Path, params: dict[str, str]) -> None:
    import papermill

    known = papermill.inspect_notebook(str(nb))
    if not known:
        raise SystemExit(f"{nb}: no cell tagged 'parameters' (see house_style.md section 5)")
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise SystemExit(
            f"{nb.name}: unknown parameter(s) {', '.join(unknown)}; "
            f"the notebook accepts: {', '.join(known)}"
        )


def stage_sources(stage: Path) -> None:
    """Copy the book sources into ``stage`` (fresh), linking the library for literalinclude."""
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy2(ROOT / name, stage / name)
    shutil.copytree(ROOT / "book", stage / "book", symlinks=True,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    # chapters show library code with {literalinclude} ../../sbirlib/...
    (stage / "sbirlib").symlink_to(ROOT / "sbirlib", target_is_directory=True)


def run_one(nb_src: Path, nb_out: Path, params: dict[str, str], runs: Path,
            cell_timeout: int, chapter_timeout: int) -> tuple[bool, float, str]:
    """Execute one chapter; return (ok, seconds, message)."""
    cmd = [
        sys.executable, "-m", "papermill", str(nb_src), str(nb_out),
        "-k", "python3", "--cwd", str(nb_out.parent),
        "--execution-timeout", str(cell_timeout),
        "--log-output", "--no-progress-bar",
    ]
    for name, value in params.items():
        cmd += ["-r", name, value] if name in ("data_root", "output_dir", "device", "profile", "checkpoint") else ["-p", name, value]
    env = dict(os.environ, SBIR_RUN_DIR=str(runs), PYDEVD_DISABLE_FILE_VALIDATION="1")
    # an inherited MPLBACKEND=Agg would make plt.show() draw nothing in the executed pages
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    # progress bars would be ipywidgets here: frozen noise on the page, and extra comm traffic
    env["TQDM_DISABLE"] = "1"
    # widgets pre-render their frames for the kernel-free page (sbirlib/frames.py)
    env["SBIR_STATIC_WIDGETS"] = "1"
    # the kernel must import the sbirlib of this checkout, also from a staged copy
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    # the kernel runs in the chapter's folder: a relative data or cache root given on the
    # command line (SBIR_DATA=../shared/data) means the caller's folder, not that one
    for var in ("SBIR_DATA", "SBIR_CACHE"):
        if env.get(var):
            env[var] = str(Path(env[var]).expanduser().absolute())
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=chapter_timeout)
    except subprocess.TimeoutExpired:
        return False, time.perf_counter() - start, f"exceeded the chapter limit of {chapter_timeout} s"
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = proc.stderr[-6000:]
        return False, seconds, f"papermill exited {proc.returncode}\n{tail}"
    drop_widget_state(nb_out)
    return True, seconds, ""


def drop_widget_state(nb: Path) -> None:
    """Remove the saved ipywidgets state from an executed chapter.

    The built page shows each widget's kernel-free fallback (``nb_mime_priority_overrides``
    in ``_config.yml``), so the state would only add weight (every figure a second time, as
    base64 in the widget model) and load a widget manager that draws dead controls.
    """
    data = json.loads(nb.read_text())
    if data.get("metadata", {}).pop("widgets", None) is not None:
        nb.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def check_record(chapter: str, runs: Path, profile: str) -> list[str]:
    record_path = runs / chapter / "metrics.json"
    if not record_path.is_file():
        return [f"no run record at {record_path} (the last cell must call write_run_record)"]
    record = load_json(record_path)
    if record.get("profile") != profile:
        return [f"run record says profile {record.get('profile')!r}, expected {profile!r}"]
    ref_path = ROOT / "book" / "results" / chapter / f"{profile}.json"
    if profile != "smoke":
        return []
    if not ref_path.is_file():
        return [f"no committed regression reference {ref_path.relative_to(ROOT)}"]
    return compare_to_reference(record, load_json(ref_path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute the book's chapters with papermill.")
    parser.add_argument("notebooks", nargs="*", type=Path, help="chapters (default: all)")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                        help="override a parameter (validated against the parameters cell)")
    parser.add_argument("--stage", type=Path, default=None,
                        help="copy the book sources here and execute in place (for the HTML build)")
    parser.add_argument("--runs", type=Path, default=None,
                        help="where run records go (default: <stage or scratch>/runs)")
    parser.add_argument("--cell-timeout", type=int, default=None,
                        help="seconds per cell (default: 240 for smoke, 3600 for cpu-real, none for full)")
    parser.add_argument("--chapter-timeout", type=int, default=None,
                        help="seconds per chapter (default: 900 for smoke, 4 h otherwise)")
    parser.add_argument("--no-check", action="store_true", help="skip the regression comparison")
    args = parser.parse_args(argv)

    params = parse_params(args.param)
    profile = params.get("profile", "smoke")
    cell_timeout = args.cell_timeout or CELL_TIMEOUT.get(profile, 6 * 3600)
    chapter_timeout = args.chapter_timeout or (DEFAULT_CHAPTER_TIMEOUT if profile == "smoke" else 4 * 3600)
    chapters = [p.resolve() for p in args.notebooks] or find_chapters(ROOT)
    if not chapters:
        print("no chapters found")
        return 1

    scratch = None
    if args.stage is not None:
        stage = args.stage.resolve()
        stage_sources(stage)
        base = stage
    else:
        scratch = Path(tempfile.mkdtemp(prefix="sbir-chapters-"))
        base = scratch
    runs = (args.runs or base / "runs").resolve()
    runs.mkdir(parents=True, exist_ok=True)

    results = []
    for nb in chapters:
        check_param_names(nb, params)
        chapter = nb.stem
        if args.stage is not None:
            out = stage / "book" / "chapters" / nb.name
            src = out
        else:
            out = scratch / nb.name
            shutil.copy2(nb, out)
            src = out
        print(f"==> {chapter}: executing ({profile})", flush=True)
        pristine = out.read_bytes()
        for attempt in range(RETRIES_ON_CELL_TIMEOUT + 1):
            ok, seconds, message = run_one(src, out, params, runs, cell_timeout, chapter_timeout)
            if ok or "CellTimeoutError" not in message or attempt == RETRIES_ON_CELL_TIMEOUT:
                break
            print(f"!!! {chapter}: a cell hit the {cell_timeout} s cell timeout; running the chapter "
                  "once more (see jupyter/nbclient#312)", flush=True)
            out.write_bytes(pristine)
        if ok and not args.no_check:
            failures = check_record(chapter, runs, profile)
            if failures:
                ok, message = False, "regression check failed:\n  " + "\n  ".join(failures)
        status = "ok" if ok else "FAILED"
        print(f"<== {chapter}: {status} in {seconds:.0f} s", flush=True)
        if not ok:
            print(message, file=sys.stderr, flush=True)
        results.append({"chapter": chapter, "ok": ok, "seconds": round(seconds, 1), "profile": profile})

    (runs / "summary.json").write_text(json.dumps(results, indent=2) + "\n")
    print("\nchapter                    status   seconds")
    for r in results:
        print(f"{r['chapter']:<26} {'ok' if r['ok'] else 'FAILED':<8} {r['seconds']:>7.0f}")
    if scratch is not None:
        print(f"(executed copies and run records in {scratch})")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
