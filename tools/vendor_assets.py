"""Fetch the browser assets the built book needs, so it renders with no internet.

MathJax comes from the npm registry as a pinned tarball (checked against SHA-256) and is
unpacked into ``book/_vendor/mathjax``. Jupyter Book would otherwise point readers' browsers
at a CDN, and offline the maths would show as raw TeX. (The pages need no widget manager:
every widget carries kernel-free pre-rendered frames, see ``sbirlib/frames.py``.) Idempotent: does nothing when the files
are already in place.

    python tools/vendor_assets.py [--dest book/_vendor]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

# package spec -> (tarball name, sha256, {member prefix inside the tarball: destination sub-folder})
PACKAGES = {
    "mathjax@3.2.2": (
        "mathjax-3.2.2.tgz",
        "1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09",
        {
            "package/es5/tex-mml-chtml.js": "mathjax/tex-mml-chtml.js",
            "package/es5/output/chtml/fonts/woff-v2/": "mathjax/output/chtml/fonts/woff-v2/",
        },
    ),
}
# the files whose presence means the assets are in place
SENTINELS = ("mathjax/tex-mml-chtml.js",)
# source maps and licence banners are never loaded by a page
SKIP_SUFFIXES = (".map", ".LICENSE.txt")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _extract(tarball: Path, mapping: dict[str, str], dest: Path) -> int:
    count = 0
    with tarfile.open(tarball) as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            for prefix, target in mapping.items():
                if not member.name.startswith(prefix) or member.name.endswith(SKIP_SUFFIXES):
                    continue
                rel = target + member.name[len(prefix):] if prefix.endswith("/") else target
                out = (dest / rel).resolve()
                if dest.resolve() not in out.parents:
                    raise RuntimeError(f"refusing to write {member.name} outside {dest}")
                out.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, out.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
                count += 1
    return count


def vendor(dest: Path) -> None:
    if all((dest / s).is_file() for s in SENTINELS):
        print(f"vendored assets already in {dest}")
        return
    if shutil.which("npm") is None:
        sys.exit("npm is needed once to fetch the book's offline assets: apt-get install npm")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["npm", "pack", "--silent", *PACKAGES], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)
        staging = Path(tmp) / "out"
        for spec, (name, sha, mapping) in PACKAGES.items():
            tarball = Path(tmp) / name
            got = _sha256(tarball)
            if got != sha:
                sys.exit(f"{spec}: checksum mismatch ({got} != {sha}); nothing was written")
            n = _extract(tarball, mapping, staging)
            print(f"{spec}: {n} files")
        # move into place only once everything verified, so a failure leaves no half copy
        for sub in ("mathjax",):
            target = dest / sub
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(staging / sub), str(target))
    print(f"vendored assets written to {dest}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=Path(__file__).resolve().parent.parent / "book" / "_vendor")
    vendor(parser.parse_args().dest)


if __name__ == "__main__":
    main()
