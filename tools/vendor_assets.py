"""Fetch the browser assets the built book needs, so it renders with no internet.

The widget manager, require.js and MathJax come from the npm registry as pinned tarballs
(checked against SHA-256) and are unpacked into ``book/_vendor/{widgets,mathjax}``. Jupyter
Book would otherwise point readers' browsers at CDNs, and offline the widgets and the maths
would simply be missing (toolchain.md section 7). Idempotent: does nothing when the files
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
    "@jupyter-widgets/html-manager@1.0.15": (
        "jupyter-widgets-html-manager-1.0.15.tgz",
        "2b9d65cb7913e1c7d671757a10008b32c9c2448d4429513371e55c07d6107638",
        {"package/dist/": "widgets/"},
    ),
    "requirejs@2.3.8": (
        "requirejs-2.3.8.tgz",
        "777158e89275e16bd51aec3ef714fbcb5dc45789e7078659933bc814916d7dec",
        {"package/require.js": "widgets/require.js"},
    ),
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
SENTINELS = ("widgets/require.js", "widgets/embed-amd.js", "mathjax/tex-mml-chtml.js")
# html-manager's dist/ also holds source maps and the non-AMD bundle, which the book never loads
SKIP_SUFFIXES = (".map", "embed.js", "libembed-amd.js", ".LICENSE.txt")


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
        for sub in ("widgets", "mathjax"):
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
