#!/usr/bin/env python
"""Download Sketchy plus the Sketchy-Extended photos (extended_photo.zip) into ROOT/extended_photo/<class>/.

Run `python data_scripts/fetch_sketchy_ext.py --root DIR` (DIR defaults to $SBIR_DATA); `--list` prints the
URLs and checksums. Sources, licences and checksums: data_scripts/README.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sbirlib.data.download import cli  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(cli("sketchy-ext", ["sketchy", "sketchy-info", "sketchy-ext"], description=__doc__.splitlines()[0]))
