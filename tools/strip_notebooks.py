"""Remove outputs, execution counts and injected-parameter cells from notebooks (in place).

Committed chapters carry no outputs: the book shows the copy papermill executed in CI.

    python tools/strip_notebooks.py book/chapters/*.ipynb
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

KEEP_METADATA = {"kernelspec", "language_info", "jupytext"}


def strip(path: Path) -> bool:
    """Strip one notebook; return True if it changed."""
    original = path.read_text()
    nb = json.loads(original)
    cells = []
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags:
            continue
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        meta = cell.get("metadata", {})
        cell["metadata"] = {k: v for k, v in meta.items() if k in ("tags",)}
        cells.append(cell)
    nb["cells"] = cells
    nb["metadata"] = {k: v for k, v in nb.get("metadata", {}).items() if k in KEEP_METADATA}
    nb["metadata"]["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    if text != original:
        path.write_text(text)
        return True
    return False


def main(paths: list[str]) -> int:
    for p in paths:
        if strip(Path(p)):
            print(f"stripped {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
