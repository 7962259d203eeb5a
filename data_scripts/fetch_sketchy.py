#!/usr/bin/env python
"""Download Sketchy (rendered_256x256.7z and info-06-04.7z, MD5-checked) into ROOT/rendered_256x256/ and ROOT/info/.

Run `python data_scripts/fetch_sketchy.py --root DIR` (DIR defaults to $SBIR_DATA); `--list` prints the
URLs and checksums. Sources, licences and checksums: data_scripts/README.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sbirlib.data.download import cli  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(cli("sketchy", ["sketchy", "sketchy-info"], description=__doc__.splitlines()[0]))
