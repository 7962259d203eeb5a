"""Look at the built book as a reader would: headless Chromium renders and operates each page.

For every chapter page in ``_build/html/book/chapters`` it opens the page (JavaScript on,
offline) in Debian's Chromium driven by Playwright, and checks

* what a reader must see: highlighted code, a figure, typeset maths, a kernel-free widget;
* every widget: for each of its controls and each value the control can take (the others
  at their defaults), moving the control the way a reader would (drag a slider, pick an
  option, tick a box) shows the frame the kernel drew for that value -- the SHA-256 of the
  displayed PNG must equal the one the kernel recorded for that grid point;
* that no control on the page changes nothing: no ipywidgets view is left (without a kernel
  it would move and redraw nothing), every input inside a cell output belongs to a
  kernel-free widget, and each of those controls changes the picture somewhere on its grid;
* the weight the frames add to the page (at most 5 MB).

A screenshot of each page goes to ``_build/screenshots/<chapter>.png`` for a human to look at.

    python tools/check_html.py [--html _build/html] [pages...]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROME_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
MAX_FRAME_BYTES = 5 * 1024 * 1024
# what must be in the *rendered* DOM
SELECTORS = {
    "highlighted code": "div.highlight",
    "a figure": "img[src*='_images/'], img[src^='data:image/png']",
    "typeset maths": "mjx-container",
    "a kernel-free widget": ".sbir-frames",
}
# an input a reader can operate that lives in a cell's output
# (the theme's copy buttons on output blocks work without a kernel and are not ours)
OUTPUT_CONTROLS = ", ".join(f".cell_output {tag}:not(.copybtn)" for tag in ("input", "select", "textarea", "button"))
# script errors of the theme itself, on every page of a Jupyter Book 1 build (its thebe
# loader is included twice); anything else is reported
THEME_ERRORS = ("Identifier 'THEBE_JS_URL' has already been declared",)


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _png_sha(src: str) -> str:
    prefix = "data:image/png;base64,"
    if not src.startswith(prefix):
        return "not a PNG data URI"
    return hashlib.sha256(base64.b64decode(src[len(prefix):])).hexdigest()


def frame_weight(html_text: str) -> int:
    """Bytes of frame data (the JSON blocks of kernel-free widgets) in a page's HTML."""
    total, marker = 0, 'class="sbir-frames-data">'
    start = html_text.find(marker)
    while start >= 0:
        end = html_text.find("</script>", start)
        total += end - start - len(marker)
        start = html_text.find(marker, end)
    return total


def _dead_controls(data: dict) -> list[str]:
    """Names of static controls that change no frame anywhere on their grid."""
    controls = data["controls"]
    dead = []
    for j, c in enumerate(controls):
        others = [o["keep"] for i, o in enumerate(controls) if i != j]
        changes = False
        for rest in itertools.product(*others):
            frames = {data["index"][",".join(map(str, rest[:j] + (k,) + rest[j:]))] for k in c["keep"]}
            if len(frames) > 1:
                changes = True
                break
        if not changes:
            dead.append(c["name"])
    return dead


def _set_control(el, kind: str, position: int, value_index: int) -> None:
    """Operate one static control as a reader would."""
    if kind == "checkbox":
        el.set_checked(bool(value_index))
    elif kind == "range":
        el.fill(str(position))  # a range input: Playwright sets the value and fires input/change
    else:
        el.select_option(value=str(value_index))


def check_widgets(page) -> list[str]:
    problems = []
    leftovers = page.locator(".jupyter-widgets, .widget-slider, .widget-dropdown, .widget-box").count()
    if leftovers:
        problems.append(f"{leftovers} ipywidgets element(s) on the page (they cannot redraw without a kernel)")
    for el in page.locator(OUTPUT_CONTROLS).all():
        if not el.evaluate("e => !!e.closest('.sbir-frames')"):
            problems.append(f"a control outside any kernel-free widget: {el.evaluate('e => e.outerHTML')[:120]}")
    for w, root in enumerate(page.locator(".sbir-frames").all()):
        data = json.loads(root.locator("script.sbir-frames-data").text_content())
        img = root.locator("img.sbir-frame")
        els = root.locator("[data-sbir-control]").all()
        controls = data["controls"]
        if len(els) != len(controls):
            problems.append(f"widget {w}: {len(els)} controls on the page, {len(controls)} in its data")
            continue
        for name in _dead_controls(data):
            problems.append(f"widget {w}: control {name!r} changes no frame")
        defaults = [c["default"] for c in controls]
        for j, c in enumerate(controls):
            for pos, k in enumerate(c["keep"]):
                for i, other in enumerate(controls):  # the others back at their defaults
                    _set_control(els[i], other["kind"], other["keep"].index(other["default"]), other["default"])
                _set_control(els[j], c["kind"], pos, k)
                point = defaults[:j] + [k] + defaults[j + 1:]
                expected = data["sha256"][data["index"][",".join(map(str, point))]]
                shown = _png_sha(img.get_attribute("src") or "")
                if shown != expected:
                    problems.append(f"widget {w}: {c['name']} = value #{k} shows another frame "
                                    f"({shown[:12]} instead of {expected[:12]})")
    return problems


def check_page(browser, page_path: Path, shots: Path) -> tuple[list[str], int]:
    text = page_path.read_text(encoding="utf-8")
    weight = frame_weight(text)
    problems = []
    if weight > MAX_FRAME_BYTES:
        problems.append(f"widget frames add {weight / 1e6:.1f} MB (limit {MAX_FRAME_BYTES / 1e6:.0f} MB)")
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(page_path.as_uri(), wait_until="load")
    page.wait_for_timeout(500)
    if "$" in text or "\\(" in text:
        try:
            page.wait_for_selector("mjx-container", timeout=10000)
        except Exception:  # reported below as missing
            pass
    for what, selector in SELECTORS.items():
        if page.locator(selector).count() == 0:
            problems.append(f"missing {what}")
    problems += check_widgets(page)
    problems += [f"script error: {e}" for e in errors if not e.startswith(THEME_ERRORS)]
    page.screenshot(path=str(shots / (page_path.stem + ".png")), full_page=False)
    page.close()
    return problems, weight


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", type=Path)
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html")
    args = parser.parse_args(argv)
    exe = chromium()
    if exe is None:
        print("check_html: no chromium found (apt-get install -y chromium); skipped")
        return 0
    from playwright.sync_api import sync_playwright

    pages = args.pages or sorted((args.html / "book" / "chapters").glob("[0-9]*.html"))
    if not pages:
        print(f"check_html: no chapter pages under {args.html}; run `make book` first")
        return 1
    shots = ROOT / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    failed = False
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        browser = pw.chromium.launch_persistent_context(profile, executable_path=exe, args=CHROME_ARGS,
                                                        headless=True, viewport={"width": 1280, "height": 1400})
        for page_path in pages:
            problems, weight = check_page(browser, page_path, shots)
            failed |= bool(problems)
            status = "ok" if not problems else "FAILED"
            print(f"{page_path.name:<28} {status:<7} widget frames {weight / 1e6:5.2f} MB")
            for p in problems:
                print(f"    - {p}")
        browser.close()
    print(f"screenshots in {shots}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
