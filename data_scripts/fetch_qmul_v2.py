#!/usr/bin/env python
"""Download the QMUL Chair-V2 vector sketches (Bhunia's ChairV2_Coordinate) into ROOT/ChairV2/; photos: see README.

Run `python data_scripts/fetch_qmul_v2.py --root DIR` (DIR defaults to $SBIR_DATA); `--list` prints the
URLs and checksums. Sources, licences and checksums: data_scripts/README.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sbirlib.data.download import cli  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(cli("qmul-v2", {"chairs": ["qmul-v2/chairs"]}, description=__doc__.splitlines()[0]))
