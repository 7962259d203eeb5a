#!/usr/bin/env python
"""Download Google Quick, Draw! 28x28 numpy_bitmap files for the given classes (CC BY 4.0).

Run `python data_scripts/fetch_quickdraw_bitmap.py --root DIR --classes cat "hot air balloon"`;
files are saved as DIR/full_numpy_bitmap_<class>.npy (about 100 MB each), the layout that
`sbirlib.data.quickdraw.QuickDrawBitmap` reads. Sources and licences: data_scripts/README.md.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sbirlib.data.download import cli, quickdraw_bitmap_resources  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(cli("quickdraw-bitmap", ["quickdraw-bitmap"], description=__doc__.splitlines()[0],
                         resources=quickdraw_bitmap_resources))
