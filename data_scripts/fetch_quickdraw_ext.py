#!/usr/bin/env python
"""Download QuickDraw-Extended (QuickDraw_sketches_final.zip, QuickDraw_images_final.zip) into ROOT/.

Run `python data_scripts/fetch_quickdraw_ext.py --root DIR` (DIR defaults to $SBIR_DATA); `--list` prints the
URLs and checksums. Sources, licences and checksums: data_scripts/README.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sbirlib.data.download import cli  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(cli("quickdraw-ext", ["quickdraw-ext"], description=__doc__.splitlines()[0]))
