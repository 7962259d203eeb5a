"""The package's docstrings, comments and messages point only at things a user has.

The project's design specs (``shared/specs/*.md``) and its issue tracker are not part of the
repository, and nothing of them is installed with ``pip install sbirlib``. A pointer such as
"spec §4.2", "``evaluation.md`` §5" or "issue 7" in the package therefore means nothing to its
readers: say the fact in plain words, or name the paper's equation or the book's chapter.
"""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "sbirlib"

SPEC_FILES = ("datasets", "splits", "evaluation", "synthetic", "house_style", "toolchain",
              "triplet_sn", "dssa", "dlinet", "dase_mems", "cscan", "ffmln")
FORBIDDEN = [
    re.compile(r"spec\s*§", re.IGNORECASE),
    re.compile(r"\.\./shared"),
    re.compile(r"shared/specs|specs/"),
    re.compile(r"\b(?:%s)\.md\b" % "|".join(SPEC_FILES)),
    re.compile(r"\b[Ii]ssue #?\d+"),
]


def test_no_pointers_to_files_users_do_not_have():
    hits = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if any(p.search(line) for p in FORBIDDEN):
                hits.append(f"{path.relative_to(PACKAGE.parent)}:{n}: {line.strip()}")
    assert not hits, "pointers to the specs or the issue tracker:\n" + "\n".join(hits)
