"""Look at the built book as a reader would: headless Chromium renders each chapter page.

For every chapter page in ``_build/html/book/chapters`` it renders the page (JavaScript on,
offline, with a virtual-time budget so MathJax and the widget manager finish), then checks
the rendered DOM for highlighted code, a figure, a rendered ipywidget and typeset maths,
and saves a screenshot to ``_build/screenshots/<chapter>.png`` for a human to look at.

    python tools/check_html.py [--html _build/html] [pages...]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROME_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--virtual-time-budget=10000", "--run-all-compositor-stages-before-draw",
]
# what must be in the *rendered* DOM (none of it is in the HTML before scripts run)
CHECKS = {
    "highlighted code": r'class="highlight',
    "a figure": r'<img[^>]+src="[^"]*(_images/|data:image/png)',
    "a rendered widget": r'class="[^"]*(widget-(slider|dropdown|select|toggle|button|label|box|hbox|vbox|html|text))',
    "typeset maths": r"<mjx-container",
}


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def render(browser: str, page: Path, *extra: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [browser, *CHROME_FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
            capture_output=True, text=True, timeout=120,
        )


def check_page(browser: str, page: Path, shots: Path) -> list[str]:
    dom = render(browser, page, "--dump-dom").stdout
    missing = [what for what, pattern in CHECKS.items() if not re.search(pattern, dom)]
    render(browser, page, "--window-size=1280,2400", f"--screenshot={shots / (page.stem + '.png')}")
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", type=Path)
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    args = parser.parse_args(argv)
    browser = chromium()
    if browser is None:
        print("check_html: no chromium found (apt-get install -y chromium); skipped")
        return 0
    pages = args.pages or sorted((args.html / "book" / "chapters").glob("[0-9]*.html"))
    if not pages:
        print(f"check_html: no chapter pages under {args.html}; run `make book` first")
        return 1
    shots = ROOT / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    failed = False
    for page in pages:
        missing = check_page(browser, page, shots)
        status = "ok" if not missing else "MISSING " + ", ".join(missing)
        failed |= bool(missing)
        print(f"{page.name:<28} {status}")
    print(f"screenshots in {shots}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
