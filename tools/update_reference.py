"""Re-record a chapter's smoke regression reference from a run record.

A reference (``book/results/<chapter>/smoke.json``) is a run record plus a ``"check"`` section
(tolerance and floors). When a deliberate change moves a chapter's numbers, re-run the chapter,
review the new record, and replace the reference with it; the ``check`` section and any
recorded extra sections (e.g. ``ablation``) of the old reference are kept unless the new
record has its own.

    python tools/update_reference.py _build/src/runs/03_dssa/metrics.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sbirlib.results import load_json, save_json  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("records", nargs="+", type=Path, help="run records (metrics.json)")
    args = parser.parse_args(argv)
    for path in args.records:
        record = load_json(path)
        chapter, profile = record["chapter"], record["profile"]
        if profile != "smoke":
            raise SystemExit(f"{path}: only smoke records are regression references (got {profile!r})")
        ref_path = ROOT / "book" / "results" / chapter / "smoke.json"
        old = load_json(ref_path) if ref_path.is_file() else {}
        if "check" not in old:
            raise SystemExit(f"{ref_path}: no existing 'check' section; write tolerance and floors by hand")
        new = {**{k: v for k, v in old.items() if k not in ("metrics", "provenance")}, **record}
        new["check"] = old["check"]
        for name in old["check"].get("floors", {}):
            if new["metrics"].get(name) is None:
                raise SystemExit(f"{path}: the new record lacks the floored metric {name}")
        changed = sorted(k for k, v in record["metrics"].items() if old.get("metrics", {}).get(k) != v)
        save_json(new, ref_path)
        print(f"{ref_path.relative_to(ROOT)}: {len(changed)} metric(s) changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
