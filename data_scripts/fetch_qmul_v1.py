#!/usr/bin/env python
"""Download QMUL Shoe-V1 / Chair-V1 / Handbag (.mat release of yuqian1023/Deep_SBIR_tf) into ROOT/<category>/.

Run `python data_scripts/fetch_qmul_v1.py --root DIR` (DIR defaults to $SBIR_DATA); `--list` prints the
URLs and checksums. Sources, licences and checksums: data_scripts/README.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sbirlib.data.download import cli  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(cli("qmul-v1", {"shoes": ["qmul-v1/shoes"], "chairs": ["qmul-v1/chairs"], "handbags": ["qmul-v1/handbags"]}, description=__doc__.splitlines()[0]))
