#!/usr/bin/env python
"""Regenerate the named splits shipped in ``sbirlib/data/splits/`` (``specs/splits.md``).

The published class lists are typed below from the public files named in each manifest; the
two seeded SEM-PCYC lists are *recomputed* with sem-pcyc's procedure (NumPy legacy RNG, seed 0)
and checked against the published lists. sbirlib's validation classes are 10% of the seen
classes drawn with ``numpy.random.default_rng(0)`` (splits.md rule 4).

Usage::

    python data_scripts/make_splits.py            # rewrite the split folders (idempotent)
    python data_scripts/make_splits.py --check    # fail if a folder would change
    python data_scripts/make_splits.py --dase-json TUBerlin_sketch.json --out DIR
        # turn DASE's committed query list into query_test.txt / train_sketch.txt (not shipped)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sbirlib.data.names import name_key  # noqa: E402
from sbirlib.data.splits import SPLITS_DIR, class_list  # noqa: E402

SAKE25 = ("cup swan harp squirrel snail ray pineapple volcano rifle scissors parrot windmill teddy_bear tree "
          "wine_bottle deer chicken airplane wheelchair tank umbrella butterfly camel horse bell").split()
SEMPCYC25_VAL = ("racket pear hamburger saw geyser mushroom bear spoon trumpet jack_o_lantern guitar saxophone").split()
SEMPCYC25_TEST = ("bell cannon door eyeglasses lobster motorcycle rhinoceros squirrel tank teapot tiger violin "
                  "wheelchair").split()
YELAMARTHI21 = ("bat cabin cow dolphin door giraffe helicopter mouse pear raccoon rhinoceros saw scissors seagull "
                "skyscraper songbird sword tree wheelchair windmill window").split()
SAKE30 = [c.strip() for c in (
    "banana; bus; tractor; suitcase; streetlight; telephone; bottle opener; canoe; fan; teacup; penguin; laptop; "
    "shoe; lighter; hot air balloon; pizza; brain; ant; t-shirt; trombone; windmill; snowboard; table; "
    "rollerblades; parachute; space shuttle; bridge; frying-pan; bread; horse").split(";")]
SEMPCYC30_VAL = ("duck snail purse couch snake flying_saucer eyeglasses dolphin knife walkie_talkie foot tablelamp "
                 "hedgehog snowman rollerblades").split()
SEMPCYC30_TEST = ("backpack bicycle bookshelf cabinet calculator castle door_handle fire_hydrant octopus pear sailboat "
                  "swan traffic_light truck umbrella").split()
D2S30 = [c.strip() for c in (
    "bat; cow; dolphin; door; giraffe; helicopter; mouse; raccoon; rhinoceros; saw; scissors; skyscraper; tree; "
    "windmill; feather; campfire; palm tree; fire_hydrant; bread; beach; megaphone; cactus; zebra; tiger; shark; "
    "frog; banana; cake; hamburger; fan").split(";")]


DASE_RAW = "https://github.com/Ben-Louis/SBIR-DASE-MEMS/raw/589f789f6766d267f4c728b3f3f235082de9023e/datasets/anno"


def sempcyc_split(classes: list[str], n_train: int, n_val: int) -> tuple[list[str], list[str]]:
    """sem-pcyc's seeded class split (legacy global RNG, seed 0): returns (val, test)."""
    rs = np.random.RandomState(0)  # same stream as np.random.seed(0) + np.random.choice
    train = rs.choice(classes, n_train, replace=False)
    rest = np.setdiff1d(classes, train)
    val = rs.choice(rest, n_val, replace=False)
    test = np.setdiff1d(rest, val)
    return [str(c) for c in val], [str(c) for c in test]


def to_disk_names(names: list[str], classes: list[str]) -> list[str]:
    by_key = {name_key(c): c for c in classes}
    missing = [n for n in names if name_key(n) not in by_key]
    if missing:
        raise SystemExit(f"classes not in the class list: {missing}")
    return [by_key[name_key(n)] for n in names]


def sbirlib_val(seen: list[str], fraction: float = 0.1, seed: int = 0) -> list[str]:
    """sbirlib's validation classes: round(fraction * |seen|) seen classes, default_rng(seed)."""
    n = int(round(fraction * len(seen)))
    rng = np.random.default_rng(seed)
    return sorted(str(c) for c in rng.choice(sorted(seen), n, replace=False))


def qmul_v1_val_ids(n_train: int, fraction: float = 0.1, seed: int = 0) -> list[int]:
    """Must agree with sbirlib.data.qmul._val_indices (tested)."""
    n = int(round(fraction * n_train))
    rng = np.random.default_rng(seed)
    return sorted(int(i) + 1 for i in rng.permutation(n_train)[:n])


def build() -> dict[str, tuple[dict, dict[str, list[str]]]]:
    sk, tu, qd = list(class_list("sketchy")), list(class_list("tuberlin")), list(class_list("quickdraw_ext"))
    out: dict[str, tuple[dict, dict[str, list[str]]]] = {}

    def zs(name, dataset, classes, unseen, origin, convention, metrics, dup, counts_note, extra=None, note=""):
        unseen_d = to_disk_names(unseen, classes)
        seen = sorted(set(classes) - set(unseen_d))
        val = sbirlib_val(seen)
        lists = {"unseen.txt": unseen_d, "seen.txt": seen, "val.txt": val, **(extra or {})}
        manifest = {
            "name": name, "dataset": dataset, "task": "zeroshot", "origin": origin,
            "class_name_convention": convention + " (lists here use sbirlib's on-disk folder names; any "
                                                  "spelling resolves through sbirlib.data.names)",
            "validation": "val.txt = 10% of the seen classes, numpy.random.default_rng(0) (sbirlib's choice, "
                          "splits.md rule 4); train = seen - val",
            "gallery_duplicates": dup, "metrics": metrics, "expected_test_sizes": counts_note,
            "note": note,
        }
        out[name] = (manifest, lists)

    zs("sketchy_ext/zs/sake25@1", "sketchy-ext", sk, SAKE25,
       "qliu24/SAKE dataset/Sketchy/zeroshot1/cname_cid_zero.txt (file order = class id)",
       "Sketchy folder names, hyphens kept", ["map@all", "p@100", "map@200", "p@200"],
       "published gallery: 17,101 entries, 14,602 unique (originals listed twice); sbirlib's folder loader "
       "yields the de-duplicated gallery (sake25-dedup)",
       {"queries": 15229, "gallery_published": 17101, "gallery_unique": 14602})
    v, t = sempcyc_split(sk, 100, 12)
    assert [name_key(c) for c in v] == [name_key(c) for c in SEMPCYC25_VAL], v
    assert [name_key(c) for c in t] == sorted(name_key(c) for c in SEMPCYC25_TEST), t
    zs("sketchy_ext/zs/sempcyc25@1", "sketchy-ext", sk, sorted(v + t),
       "AnjanDutta/sem-pcyc src/utils.py load_files_sketchy_zeroshot (recomputed: np.random.seed(0), "
       "100 train, 12 val, 13 test; evaluated unseen = val + test)",
       "sem-pcyc renames hot-air_balloon/jack-o-lantern with underscores", ["map@all", "p@100", "map@200", "p@200"],
       "none (extended_photo/ only)", {"queries": 14421, "gallery": 14626},
       extra={"sempcyc_val.txt": to_disk_names(v, sk), "sempcyc_test.txt": to_disk_names(t, sk)},
       note="sem-pcyc's own val classes are part of its evaluated unseen set; sbirlib validates on val.txt "
            "(seen classes) instead")
    zs("sketchy_ext/zs/yelamarthi21@1", "sketchy-ext", sk, YELAMARTHI21,
       "Yelamarthi et al. ECCV'18 via AnjanDutta/sem-pcyc test_classes_eccv_2018.txt (= doodle2search, ZSE-SBIR "
       "test_class_sketchy21.txt)", "Sketchy folder names", ["map@200", "p@200"],
       "ZSE-SBIR lists: 12,553 entries, 10,453 unique; unseen classes keep only ImageNet-filtered ext_ photos "
       "(list of removed photos unpublished)", {"queries": 12694, "gallery_published": 12553, "gallery_unique": 10453})
    zs("tuberlin_ext/zs/sake30@1", "tuberlin-ext", tu, SAKE30,
       "qliu24/SAKE dataset/TUBerlin/zeroshot/cname_cid_zero.txt (file order = class id)",
       "original TU-Berlin names (spaces, hyphens)", ["map@all", "p@100"], "none",
       {"queries": 2400, "gallery": 27989})
    v, t = sempcyc_split(tu, 220, 15)
    assert [name_key(c) for c in v] == [name_key(c) for c in SEMPCYC30_VAL], v
    assert [name_key(c) for c in t] == sorted(name_key(c) for c in SEMPCYC30_TEST), t
    zs("tuberlin_ext/zs/sempcyc30@1", "tuberlin-ext", tu, sorted(v + t),
       "AnjanDutta/sem-pcyc src/utils.py load_files_tuberlin_zeroshot (recomputed: np.random.seed(0), 220 train, "
       "15 val, 15 test over the 250 names; evaluated unseen = val + test)",
       "sem-pcyc uses underscores", ["map@all", "p@100"], "none",
       {"queries": 2400, "gallery_ma_zs_sbir": 25708},
       extra={"sempcyc_val.txt": to_disk_names(v, tu), "sempcyc_test.txt": to_disk_names(t, tu)},
       note="computing from the raw (un-renamed) photo folder names selects a different set (splits.md 3.2)")
    zs("quickdraw_ext/zs/d2s30@1", "quickdraw-ext", qd, D2S30,
       "sounakdey/doodle2search src/data/zeroshot_classes_quickdraw.txt = buptLinfy/ZSE-SBIR "
       "datasets/QuickDraw/zeroshot/cname_cid_zero.txt (file order = class id)",
       "ZSE-SBIR folder names (spaces in 'palm tree', underscores elsewhere)", ["map@all", "p@200"], "none",
       {"queries": 92291, "gallery": 54151},
       note="doodle2search writes palm_tree in its test list but 'palm tree' in its class list, so that class "
            "stays in its training classes (apparent leak); sbirlib keeps it unseen")

    # category-level protocols: manifests (the DASE query list is converted from the public JSON on demand)
    for name, dataset, q, ntr, src in (("tuberlin_ext/cat/dsh10@dase", "tuberlin-ext", 10, 17500, "TUBerlin_sketch.json"),
                                       ("sketchy_ext/cat/dsh50@dase", "sketchy-ext", 50, 69231, "sketchy_sketch.json")):
        out[name] = ({
            "source_file": src,
            "source_url": f"{DASE_RAW}/{src}",
            "name": name, "dataset": dataset, "task": "category",
            "origin": "Ben-Louis/SBIR-DASE-MEMS datasets/anno/{TUBerlin,sketchy}_sketch.json (DSH protocol, "
                      "unseeded shuffle: the committed JSON is the split)",
            "protocol": f"{q} query sketches per class; the rest train; gallery = all photos (also used for training)",
            "counts_expected": {"train_sketches": ntr},
            "files_not_shipped": "the query list is read at run time from <root>/splits/<source_file> (downloaded "
                                 "by the dataset's fetch script) or from split_file=",
            "validation": "10% of each class's training sketches, default_rng(0 + c) (sbirlib's choice)",
            "metrics": ["map@all", "p@100"],
        }, {})
    out["tuberlin/cat/low10@1"] = ({
        "name": "tuberlin/cat/low10@1", "dataset": "tuberlin", "task": "category",
        "origin": "sbirlib (same rule as the 40-class tuberlin_subset: its tu-test holds the 10 lowest ids per class)",
        "protocol": "per class: the 10 lowest sketch ids -> test; of the other 70, round(0.1*70)=7 -> val "
                    "(default_rng(0 + c) for the class at sorted position c), the rest train",
        "metrics": ["acc@1 (recognition)", "map@all (sketch->sketch)"],
    }, {})
    for cat, ntr, nte in (("shoes", 304, 115), ("chairs", 200, 97), ("handbags", 400, 168)):
        out[f"qmul_v1/fg/{cat}@1"] = ({
            "name": f"qmul_v1/fg/{cat}@1", "dataset": "qmul-v1", "task": "fg",
            "origin": "yuqian1023/Deep_SBIR_tf data/<cat>/<cat>_{sketch,edge}_db_{train,test}.mat",
            "protocol": f"train ids 1-{ntr}, test ids {ntr + 1}-{ntr + nte}; sketch i <-> edge/photo i; val.txt = "
                        f"round(0.1*{ntr}) training product ids, default_rng(0).permutation",
            "counts_expected": {"train": ntr, "test": nte},
            "metrics": ["acc@1", "acc@10"],
        }, {"val.txt": [str(i) for i in qmul_v1_val_ids(ntr)]})
    out["qmul_v2/fg/chairv2_bhunia@1"] = ({
        "name": "qmul_v2/fg/chairv2_bhunia@1", "dataset": "qmul-v2", "task": "fg",
        "origin": "AyanKumarBhunia/on-the-fly-FGSBIR ChairV2_Coordinate (keys '/train/…', '/test/…')",
        "protocol": "split by key prefix; photo id = key without its last _<k>; val = round(0.1 * train photos) "
                    "photo ids with all their sketches, default_rng(0) over the sorted photo ids",
        "counts_expected": {"train_sketches": 952, "test_sketches": 323, "train_photos": 300, "test_photos": 100},
        "variant_note": "differs from the SketchX download (964/311) and the papers' split (951/324)",
        "metrics": ["acc@1", "acc@10"],
    }, {})
    return out


def write(check: bool) -> int:
    changed = 0
    for name, (manifest, lists) in build().items():
        folder = SPLITS_DIR / name
        texts = {f: "\n".join(lines) + "\n" for f, lines in lists.items()}
        manifest = dict(manifest)
        manifest["sha256"] = {f: hashlib.sha256(t.encode()).hexdigest() for f, t in sorted(texts.items())}
        manifest["counts"] = {f.removesuffix(".txt"): len(lines) for f, lines in sorted(lists.items())}
        texts["manifest.json"] = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
        for fname, text in texts.items():
            path = folder / fname
            if path.is_file() and path.read_text(encoding="utf-8") == text:
                continue
            changed += 1
            if check:
                print(f"would change: {path}")
            else:
                folder.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
    return changed


def convert_dase(json_path: Path, out: Path) -> None:
    data = json.loads(json_path.read_text())
    out.mkdir(parents=True, exist_ok=True)
    for part, fname in (("test", "query_test.txt"), ("train", "train_sketch.txt")):
        rows = sorted(p.split("/", 1)[1] if p.startswith("sketches/") else p for p, _label in data[part])
        (out / fname).write_text("\n".join(rows) + "\n")
        print(f"{out / fname}: {len(rows)} sketches")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only report folders that would change")
    ap.add_argument("--dase-json", type=Path, help="DASE *_sketch.json to convert into file lists")
    ap.add_argument("--out", type=Path, help="output folder for --dase-json")
    args = ap.parse_args(argv)
    if args.dase_json:
        if not args.out:
            ap.error("--dase-json needs --out")
        convert_dase(args.dase_json, args.out)
        return 0
    changed = write(args.check)
    print(f"{changed} file(s) {'would change' if args.check else 'written'}")
    return 1 if (args.check and changed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
