"""Getting real datasets onto disk and finding them there.

Two halves:

* **Locating** (used by every real loader): :func:`locate_root` resolves ``root=`` /
  ``$SBIR_DATA`` to the folder of one dataset and :func:`missing_dataset` builds the error
  that names the dataset, what was expected where, and the ``data_scripts`` command to run.
* **Fetching** (used by ``data_scripts/fetch_<dataset>.py`` and ``download=True``):
  :func:`download_url` (resumable, checksummed, progress bar, Google-Drive aware),
  :func:`extract_archive` (zip / tar / 7z with every member checked before anything is
  written: no absolute paths, no ``..``, no links or devices) and :func:`fetch`, which runs
  both for the resources listed in :data:`RESOURCES`.

Checksum policy. A known SHA-256 (or MD5, where that is all the literature publishes) is
checked after every download. Where none is known, the first download's SHA-256 is recorded
in ``<root>/.sbirlib_checksums.json`` and later downloads are checked against it. A mismatch
never deletes anything: a file the user already had is left in place, a freshly downloaded
file is kept next to it as ``<name>.mismatch`` and the error says what to do.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tarfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from sbirlib.utils import DataNotFoundError, data_root

__all__ = [
    "Resource",
    "RESOURCES",
    "FETCH_SCRIPTS",
    "ChecksumError",
    "UnsafeArchiveError",
    "DownloadError",
    "locate_root",
    "image_to_tensor",
    "scan_class_folders",
    "download_root",
    "missing_dataset",
    "fetch_command",
    "file_sha256",
    "file_md5",
    "verify_file",
    "download_url",
    "extract_archive",
    "fetch",
    "cli",
    "quickdraw_bitmap_resources",
]


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------
class ChecksumError(RuntimeError):
    """A file's checksum differs from the expected one (nothing was deleted)."""


class UnsafeArchiveError(RuntimeError):
    """An archive member would be written outside the target folder (nothing was extracted)."""


class DownloadError(RuntimeError):
    """A download failed or returned something that is not the expected file."""


# --------------------------------------------------------------------------------------
# locating datasets
# --------------------------------------------------------------------------------------
#: ``data_scripts`` command per registered dataset name
FETCH_SCRIPTS: dict[str, str] = {
    "sketchy": "fetch_sketchy.py",
    "sketchy-ext": "fetch_sketchy_ext.py",
    "sketchy-fg": "fetch_sketchy.py",
    "tuberlin": "fetch_tuberlin.py",
    "tuberlin-ext": "fetch_tuberlin_ext.py",
    "quickdraw-ext": "fetch_quickdraw_ext.py",
    "qmul-v1": "fetch_qmul_v1.py",
    "qmul-v2": "fetch_qmul_v2.py",
    "quickdraw-bitmap": "fetch_quickdraw_bitmap.py",
}


def fetch_command(dataset: str, root: str | os.PathLike | None = None, extra: str = "") -> str:
    """The shell command that downloads ``dataset`` (a registered name) into ``root``."""
    script = FETCH_SCRIPTS.get(dataset, f"fetch_{dataset.replace('-', '_')}.py")
    target = str(root) if root is not None else "$SBIR_DATA"
    return f"python data_scripts/{script} --root {target}{(' ' + extra) if extra else ''}"


def missing_dataset(dataset: str, root: str | os.PathLike | None, expected: str, extra: str = "") -> DataNotFoundError:
    """The error raised when a dataset is not where a loader looked.

    ``expected`` says what was looked for (e.g. ``"shoes/shoes_sketch_db_train.mat"``).
    """
    where = f" under {root}" if root is not None else ""
    return DataNotFoundError(
        f"{dataset}: dataset not found{where}; expected {expected}. "
        f"Download it with `{fetch_command(dataset, root, extra)}` (or pass download=True), "
        "or point root= / $SBIR_DATA at the folder that holds it (see data_scripts/README.md)."
    )


def locate_root(
    dataset: str,
    root: str | os.PathLike | None,
    candidates: Sequence[str],
    probe: Callable[[Path], bool],
    expected: str,
    extra: str = "",
) -> Path:
    """Find a dataset's folder.

    ``root`` (or ``$SBIR_DATA`` when ``root`` is None) is tried itself and then joined with
    each of ``candidates`` (sub-folder names such as ``"qmul_v1"``); the first folder for
    which ``probe(folder)`` is true wins. Raises :class:`~sbirlib.utils.DataNotFoundError`
    naming ``dataset``, ``expected`` and the ``data_scripts`` command otherwise.
    """
    if root in (None, ""):
        try:
            base = data_root(None)
        except DataNotFoundError as err:
            raise DataNotFoundError(
                f"{dataset}: no data root given. Pass root=... or set SBIR_DATA. "
                f"Download the data with `{fetch_command(dataset, None, extra)}`."
            ) from err
    else:
        base = Path(root).expanduser()
    if not base.is_dir():
        raise missing_dataset(dataset, base, f"an existing folder holding {expected}", extra)
    for sub in ("", *candidates):
        folder = base / sub if sub else base
        if folder.is_dir() and probe(folder):
            return folder
    raise missing_dataset(dataset, base, expected, extra)


def image_to_tensor(image: Any) -> Any:
    """PIL image (``L`` or ``RGB``) -> float tensor ``[C, H, W]`` in [0, 1] (no torchvision import)."""
    import numpy as np
    import torch

    arr = np.asarray(image, dtype=np.float32) / 255.0
    if arr.ndim == 2:
        arr = arr[None]
    else:
        arr = np.ascontiguousarray(arr.transpose(2, 0, 1))
    return torch.from_numpy(arr)


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def scan_class_folders(
    folder: Path,
    dataset: str,
    *,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
    classes: Iterable[str] | None = None,
    aliases: dict[str, str] | None = None,
) -> dict[str, list[Path]]:
    """``{class folder name: sorted image paths}`` of ``folder/<class>/*``.

    ``classes`` (any spelling, see :mod:`sbirlib.data.names`) restricts the result and must all
    exist; an empty class folder or a folder with no class sub-folders is a clear error.
    """
    from sbirlib.data.names import ClassNameResolver

    if not folder.is_dir():
        raise missing_dataset(dataset, folder.parent, f"a folder {folder.name}/<class>/<image>")
    subdirs = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not subdirs:
        raise ValueError(f"{dataset}: {folder} has no class sub-folders; expected {folder}/<class>/<image files>")
    resolver = ClassNameResolver(subdirs, extra=aliases, where=str(folder))
    wanted = resolver.resolve_all(classes) if classes is not None else subdirs
    exts = tuple(e.lower() for e in extensions)
    out: dict[str, list[Path]] = {}
    for name in wanted:
        files = sorted(p for p in (folder / name).iterdir() if p.suffix.lower() in exts and not p.name.startswith("."))
        if not files:
            raise ValueError(
                f"{dataset}: class folder {folder / name} is empty; expected image files ({', '.join(exts)}). "
                "Re-extract the archive or remove the folder."
            )
        out[name] = files
    return out


def download_root(root: str | os.PathLike | None) -> Path:
    """Where ``download=True`` puts a dataset: ``root``, else ``$SBIR_DATA`` (created if missing)."""
    if root not in (None, ""):
        path = Path(root).expanduser()
    else:
        value = os.environ.get("SBIR_DATA", "")
        if not value:
            raise DataNotFoundError("download=True needs a target folder: pass root=... or set SBIR_DATA")
        path = Path(value).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


# --------------------------------------------------------------------------------------
# checksums
# --------------------------------------------------------------------------------------
def _hash_file(path: Path, algo: str, chunk: int = 1 << 20) -> str:
    digest = hashlib.new(algo)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file (hex)."""
    return _hash_file(Path(path), "sha256")


def file_md5(path: str | os.PathLike) -> str:
    """MD5 of a file (hex); only for the archives whose published checksum is an MD5."""
    return _hash_file(Path(path), "md5")


def verify_file(path: str | os.PathLike, sha256: str | None = None, md5: str | None = None) -> bool:
    """True when ``path`` exists and matches every checksum given (none given: exists)."""
    path = Path(path)
    if not path.is_file():
        return False
    if sha256 and file_sha256(path) != sha256.lower():
        return False
    if md5 and file_md5(path) != md5.lower():
        return False
    return True


_RECORD = ".sbirlib_checksums.json"


def _recorded(folder: Path) -> dict[str, str]:
    try:
        return json.loads((folder / _RECORD).read_text())
    except (OSError, ValueError):
        return {}


def _record(folder: Path, name: str, sha: str) -> None:
    data = _recorded(folder)
    data[name] = sha
    tmp = folder / (_RECORD + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, folder / _RECORD)


# --------------------------------------------------------------------------------------
# downloading
# --------------------------------------------------------------------------------------
class Response(Protocol):
    """What an opener returns: ``status``, ``headers`` (mapping) and ``read(n)``."""

    status: int
    headers: Any

    def read(self, n: int = -1) -> bytes: ...

    def close(self) -> None: ...


Opener = Callable[[str, dict], Response]


def _urllib_opener(url: str, headers: dict) -> Response:  # pragma: no cover - the network
    request = urllib.request.Request(url, headers={"User-Agent": "sbirlib", **headers})
    resp = urllib.request.urlopen(request, timeout=60)  # noqa: S310 - http(s)/file URLs only
    if not hasattr(resp, "status"):
        resp.status = 200
    return resp


_MAGIC = {
    "zip": [b"PK\x03\x04", b"PK\x05\x06"],
    "7z": [b"7z\xbc\xaf\x27\x1c"],
    "gz": [b"\x1f\x8b"],
    "bz2": [b"BZh"],
    "xz": [b"\xfd7zXZ\x00"],
    "mat": [b"MATLAB"],
    "png": [b"\x89PNG"],
    "npy": [b"\x93NUMPY"],
}


def _kind(name: str) -> str | None:
    low = name.lower()
    for suffix, kind in ((".zip", "zip"), (".7z", "7z"), (".tar.gz", "gz"), (".tgz", "gz"), (".gz", "gz"),
                         (".tar.bz2", "bz2"), (".tar.xz", "xz"), (".mat", "mat"), (".npy", "npy"), (".png", "png")):
        if low.endswith(suffix):
            return kind
    if low.endswith(".tar"):
        return "tar"
    return None


def _check_magic(path: Path, name: str) -> None:
    """Refuse HTML pages and other files that do not start like the expected format."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<!doctype html", b"<html")):
        raise DownloadError(
            f"the download of {name} returned an HTML page instead of the file (typically a Google-Drive "
            f"warning or sign-in page). The partial file is kept at {path}. Download the file in a browser "
            "and place it in the target folder under the same name; the script then verifies and uses it."
        )
    kind = _kind(name)
    if kind == "tar":
        if len(head) >= 262 and head[257:262] == b"ustar":
            return
        raise DownloadError(f"{path} does not look like a tar archive (no 'ustar' header)")
    if kind in _MAGIC and not any(head.startswith(m) for m in _MAGIC[kind]):
        raise DownloadError(f"{path} does not start like a .{kind} file; the download is not the expected archive")


def _drive_confirm_url(url: str, page: bytes) -> str | None:
    """Google Drive's 'cannot scan for viruses' page: the URL behind its download form."""
    text = page.decode("utf-8", "replace")
    form = re.search(r'<form[^>]+id="download-form"[^>]+action="([^"]+)"', text)
    if form:
        action = form.group(1).replace("&amp;", "&")
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', text))
        return action + ("&" if "?" in action else "?") + urllib.parse.urlencode(fields)
    token = re.search(r"confirm=([0-9A-Za-z_-]+)", text)
    if token:
        sep = "&" if "?" in url else "?"
        return f"{url}{sep}confirm={token.group(1)}"
    return None


def google_drive_url(file_id: str, resource_key: str | None = None) -> str:
    """Direct-download URL of a Google-Drive file id (with the post-2021 ``resourcekey``)."""
    url = f"https://drive.google.com/uc?export=download&id={file_id}"
    return url + (f"&resourcekey={resource_key}" if resource_key else "")


def download_url(
    url: str,
    dest: str | os.PathLike,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    opener: Opener | None = None,
    progress: bool = True,
    chunk_size: int = 1 << 16,
    check_magic: bool = True,
) -> Path:
    """Download ``url`` to ``dest``, resuming a partial ``dest.part`` and verifying checksums.

    * An existing ``dest`` that matches the checksums is kept and nothing is downloaded; one
      that does not match raises :class:`ChecksumError` and is left untouched.
    * Bytes arrive in ``dest.part``; an interrupted download resumes from its size with an
      HTTP ``Range`` request (a server that ignores ``Range`` restarts it from zero).
    * When no checksum is given, the SHA-256 of the first download is recorded in
      ``.sbirlib_checksums.json`` next to ``dest`` and later downloads must match it.
    * A finished download that fails a checksum is moved to ``dest.mismatch`` (kept for
      inspection) and :class:`ChecksumError` says what to do.

    ``opener(url, headers)`` performs the HTTP request (default: :mod:`urllib`); tests pass
    a fake one so nothing touches the network.
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    opener = opener or _urllib_opener
    recorded = _recorded(dest.parent).get(dest.name)
    want_sha = sha256 or recorded

    if dest.exists():
        if verify_file(dest, want_sha, md5):
            return dest
        raise ChecksumError(
            f"{dest} exists but its checksum does not match the expected one "
            f"(sha256 {want_sha or '-'}, md5 {md5 or '-'}; found sha256 {file_sha256(dest)}). "
            "Nothing was deleted. If the file is an older or partial copy, move it away and run the "
            "command again; if you trust it, remove its entry from .sbirlib_checksums.json."
        )

    part = dest.with_name(dest.name + ".part")
    current = url
    for _attempt in range(3):  # at most two Google-Drive confirmation hops
        offset = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            resp = opener(current, headers)
        except OSError as err:
            raise DownloadError(
                f"cannot download {current}: {err}. The partial file (if any) is kept at {part}; "
                "run the command again to resume."
            ) from err
        try:
            status = int(getattr(resp, "status", 200) or 200)
            ctype = str(resp.headers.get("Content-Type", "") if resp.headers is not None else "")
            if "text/html" in ctype and "drive.google" in current:
                page = resp.read()
                nxt = _drive_confirm_url(current, page)
                if nxt is None:
                    raise DownloadError(
                        f"Google Drive returned a web page instead of {dest.name} (quota exceeded or the id "
                        f"needs a resource key). Download it in a browser from {url} and save it as {dest}."
                    )
                current = nxt
                continue
            if offset and status != 206:
                offset = 0  # server ignored the Range request: start again
            total = resp.headers.get("Content-Length") if resp.headers is not None else None
            total_bytes = int(total) + offset if total not in (None, "") else None
            mode = "ab" if offset else "wb"
            with open(part, mode) as fh, tqdm(
                total=total_bytes, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                desc=dest.name, disable=not progress,
            ) as bar:
                while block := resp.read(chunk_size):
                    fh.write(block)
                    bar.update(len(block))
        except OSError as err:
            raise DownloadError(
                f"download of {dest.name} interrupted: {err}. {part} is kept; run the command again to resume."
            ) from err
        finally:
            close = getattr(resp, "close", None)
            if close is not None:
                close()
        break
    else:
        raise DownloadError(f"too many redirections while downloading {url}")

    if check_magic:
        _check_magic(part, dest.name)
    got_sha = file_sha256(part)
    bad = (want_sha and got_sha != want_sha.lower()) or (md5 and file_md5(part) != md5.lower())
    if bad:
        bad_path = dest.with_name(dest.name + ".mismatch")
        os.replace(part, bad_path)
        raise ChecksumError(
            f"the download of {dest.name} from {url} does not match the expected checksum "
            f"(expected sha256 {want_sha or '-'} / md5 {md5 or '-'}, got sha256 {got_sha}). "
            f"Nothing you had was deleted; the downloaded bytes are kept at {bad_path} for inspection. "
            "The source may have changed or the transfer was corrupted: delete that file and run the "
            "command again, or report the new checksum if the source changed."
        )
    os.replace(part, dest)
    if not sha256 and not recorded:
        _record(dest.parent, dest.name, got_sha)
    return dest


# --------------------------------------------------------------------------------------
# extracting
# --------------------------------------------------------------------------------------
def _safe_member_path(name: str, dest: Path) -> Path:
    """Where member ``name`` would go, refusing anything that escapes ``dest``."""
    cleaned = name.replace("\\", "/")
    posix = PurePosixPath(cleaned)
    if posix.is_absolute() or re.match(r"^[A-Za-z]:", cleaned) or ".." in posix.parts:
        raise UnsafeArchiveError(f"archive member {name!r} would be written outside {dest}; nothing was extracted")
    target = (dest / Path(*[p for p in posix.parts if p not in ("", ".")])).resolve()
    root = dest.resolve()
    if target != root and root not in target.parents:
        raise UnsafeArchiveError(f"archive member {name!r} resolves outside {dest}; nothing was extracted")
    return target


def _extract_zip(archive: Path, dest: Path, progress: bool) -> list[Path]:
    from tqdm.auto import tqdm

    out = []
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:  # check everything before writing anything
            _safe_member_path(info.filename, dest)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeArchiveError(f"archive member {info.filename!r} is a symbolic link; nothing was extracted")
        for info in tqdm(infos, desc=f"extract {archive.name}", disable=not progress):
            target = _safe_member_path(info.filename, dest)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            out.append(target)
    return out


def _extract_tar(archive: Path, dest: Path, progress: bool) -> list[Path]:
    from tqdm.auto import tqdm

    out = []
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        for m in members:
            _safe_member_path(m.name, dest)
            if not (m.isfile() or m.isdir()):
                raise UnsafeArchiveError(
                    f"archive member {m.name!r} is a link or special file; nothing was extracted"
                )
        for m in tqdm(members, desc=f"extract {archive.name}", disable=not progress):
            target = _safe_member_path(m.name, dest)
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(m)
            assert src is not None
            with src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            out.append(target)
    return out


def _extract_7z(archive: Path, dest: Path, progress: bool) -> list[Path]:
    try:
        import py7zr  # type: ignore[import-not-found]
    except ImportError:
        exe = shutil.which("7z") or shutil.which("7za")
        raise DownloadError(
            f"{archive.name} is a 7-Zip archive: install `py7zr` (pip install py7zr) and run the command "
            f"again, or extract it yourself with `7z x {archive} -o{dest}`"
            + ("" if exe else " (7z is not on PATH either)")
        ) from None
    with py7zr.SevenZipFile(archive) as zf:
        names = zf.getnames()
        for name in names:
            _safe_member_path(name, dest)
        for info in zf.list():
            if getattr(info, "is_symlink", False):
                raise UnsafeArchiveError(f"archive member {info.filename!r} is a symbolic link; nothing was extracted")
        zf.extractall(path=dest)
    return [dest / n for n in names]


def extract_archive(archive: str | os.PathLike, dest: str | os.PathLike, *, progress: bool = True) -> list[Path]:
    """Extract a zip / tar(.gz/.bz2/.xz) / 7z archive into ``dest`` and return the files written.

    Every member is checked first; an absolute path, a ``..`` component, a link or a
    device file raises :class:`UnsafeArchiveError` before anything is written.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        return _extract_zip(archive, dest, progress)
    if archive.name.lower().endswith(".7z"):
        return _extract_7z(archive, dest, progress)
    if tarfile.is_tarfile(archive):
        return _extract_tar(archive, dest, progress)
    raise DownloadError(f"{archive} is not a zip, tar or 7z archive")


# --------------------------------------------------------------------------------------
# the resources of each dataset
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Resource:
    """One file to download: where from, its name on disk, checksums, and where it goes.

    ``subdir`` is relative to the dataset root given to :func:`fetch`; ``extract`` unpacks
    the archive there; ``rename`` maps extracted top-level folder names to sbirlib's.
    """

    url: str
    filename: str
    sha256: str | None = None
    md5: str | None = None
    subdir: str = ""
    extract: bool = False
    rename: dict[str, str] = field(default_factory=dict)
    note: str = ""


_DEEP_SBIR = "https://github.com/yuqian1023/Deep_SBIR_tf/raw/7cad9b22f04deb1dbdeebd469e0d86c5ef67edc1/data"
_DASE = "https://github.com/Ben-Louis/SBIR-DASE-MEMS/raw/589f789f6766d267f4c728b3f3f235082de9023e/datasets/anno"
_QMUL_V1_SHA = {
    "chairs/chairs_edge_db_test.mat": "d429cd73c92c1a6ceef3262f18a0c9acc135a4e8136fa04fbdd0bf4bc7a1be8a",
    "chairs/chairs_edge_db_train.mat": "4f21547d8c4466fcd86746d003ac148aa26bee9e834bfc341a40c62318b1c6a2",
    "chairs/chairs_sketch_db_test.mat": "ebe92e8826ffc2011ad420e94a9bb5cffbe2ea0fc72908480c062909d77bc237",
    "chairs/chairs_sketch_db_train.mat": "6d50d1aef109c7514439e1527735455596728aa973e2914e64a8850789d8f89f",
    "shoes/shoes_edge_db_test.mat": "34ddbcec5f14e0b358b537a82063a2026156da0f079a8a39e0839ea475369fd3",
    "shoes/shoes_edge_db_train.mat": "ca1744d77c1674862e67d2f3fa4b07ff4d4a587017a4096275e977d3c7d73cc4",
    "shoes/shoes_sketch_db_test.mat": "5f66f4801287c79600c7272c1072a878046536d1d24555230493f4aec4c2c065",
    "shoes/shoes_sketch_db_train.mat": "7e6d238778fed20226b9fa4e93747555862a5f695305e865fa90c65a22469dbe",
    "shoes/shoes_train_triplets.mat": "042e83b7098a216ad35abd2ba114cbe7ebc096c2018588f357b12206f08f766a",
}


def _qmul_v1_resources() -> dict[str, list[Resource]]:
    out: dict[str, list[Resource]] = {}
    for cat in ("shoes", "chairs", "handbags"):
        files = [f"{cat}/{cat}_{kind}_db_{split}.mat" for kind in ("sketch", "edge") for split in ("train", "test")]
        if cat == "shoes":
            files.append("shoes/shoes_train_triplets.mat")
        out[f"qmul-v1/{cat}"] = [
            Resource(f"{_DEEP_SBIR}/{f}", Path(f).name, sha256=_QMUL_V1_SHA.get(f), subdir=cat) for f in files
        ]
    return out


#: ``{resource group: [Resource, ...]}``; a dataset's fetch script downloads one or more groups
RESOURCES: dict[str, list[Resource]] = {
    **_qmul_v1_resources(),
    "sketchy": [
        Resource(google_drive_url("0B7ISyeE8QtDdTjE1MG9Gcy1kSkE", "0-r6nB4crmdU-LK7H38xnOUw"),
                 "rendered_256x256.7z", md5="6a9dccbd07b48566c4754a7674087657", extract=True,
                 rename={"256x256": "rendered_256x256"}),
    ],
    "sketchy-info": [
        Resource(google_drive_url("0B7ISyeE8QtDdaFhqeTZiNVBYZjA"), "info-06-04.7z",
                 md5="f99274c883d073b323c87140bef7bdbf", extract=True),
    ],
    "sketchy-ext": [
        Resource(google_drive_url("0B2U-hnwRkpRrdGZKTzkwbkEwVkk"), "extended_photo.zip", extract=True,
                 rename={"EXTEND_image_sketchy": "extended_photo"},
                 note="MD5 unknown: the SHA-256 of the first download is recorded"),
        Resource(f"{_DASE}/sketchy_sketch.json", "sketchy_sketch.json", subdir="splits",
                 note="DSH query list (split sketchy_ext/cat/dsh50@dase); checksum recorded on first download"),
    ],
    "tuberlin": [
        Resource("http://cybertron.cg.tu-berlin.de/eitz/projects/classifysketch/sketches_png.zip",
                 "sketches_png.zip", md5="023123df86a928a5273e3ba11990d8fd", extract=True),
    ],
    "tuberlin-ext": [
        Resource(google_drive_url("0B2U-hnwRkpRrMFVvTmFQa3dmSUk"), "images.zip", extract=True,
                 note="MD5 unknown: the SHA-256 of the first download is recorded"),
        Resource(f"{_DASE}/TUBerlin_sketch.json", "TUBerlin_sketch.json", subdir="splits",
                 note="DSH query list (split tuberlin_ext/cat/dsh10@dase); checksum recorded on first download"),
    ],
    "quickdraw-ext": [
        Resource("http://datasets.cvc.uab.es/QuickDraw/QuickDraw_sketches_final.zip",
                 "QuickDraw_sketches_final.zip", extract=True, note="checksum unknown; recorded on first download"),
        Resource("http://datasets.cvc.uab.es/QuickDraw/QuickDraw_images_final.zip",
                 "QuickDraw_images_final.zip", extract=True, note="checksum unknown; recorded on first download"),
    ],
    "qmul-v2/chairs": [
        Resource("https://github.com/AyanKumarBhunia/on-the-fly-FGSBIR/raw/"
                 "544e20d726cafa0a7e7ea910e3185671ca8082dc/ChairV2_Coordinate",
                 "ChairV2_Coordinate", sha256="a22925201f3f7a0127b356b843671bc41fd8dd6d11ea16b5169e5733f440b959",
                 subdir="ChairV2", note="vector sketches only; photos come from the SketchX download page"),
    ],
}


def quickdraw_bitmap_resources(classes: Iterable[str]) -> list[Resource]:
    """Google's ``numpy_bitmap`` files (one ``.npy`` per class, 100k+ drawings each; CC BY 4.0)."""
    base = "https://storage.googleapis.com/quickdraw_dataset/full/numpy_bitmap"
    return [Resource(f"{base}/{urllib.parse.quote(c)}.npy", f"full_numpy_bitmap_{c}.npy",
                     note="checksum unknown; recorded on first download") for c in classes]


def _normalise_tuberlin_ext(root: Path) -> dict[str, str]:
    from sbirlib.data.names import TUBERLIN_EXT_PHOTO_FOLDERS, normalise_class_folders
    from sbirlib.data.splits import class_list

    folder = root / "ImageResized"
    if not folder.is_dir():
        return {}
    return normalise_class_folders(folder, class_list("tuberlin"), aliases=TUBERLIN_EXT_PHOTO_FOLDERS)


#: steps run after a group is extracted (class-name normalisation)
POSTPROCESS: dict[str, Callable[[Path], dict[str, str]]] = {"tuberlin-ext": _normalise_tuberlin_ext}


def fetch(
    group: str,
    root: str | os.PathLike,
    *,
    opener: Opener | None = None,
    progress: bool = True,
    keep_archives: bool = True,
    resources: Iterable[Resource] | None = None,
) -> list[Path]:
    """Download (and extract) every resource of ``group`` (a key of :data:`RESOURCES`) into ``root``.

    Idempotent: files that are already present and verified are not downloaded again, and an
    archive whose extraction marker exists is not extracted again. Returns the paths of the
    downloaded files.
    """
    items = list(resources) if resources is not None else RESOURCES.get(group)
    if items is None:
        raise KeyError(f"no download resources for {group!r}; known: {', '.join(sorted(RESOURCES))}")
    root = Path(root).expanduser()
    out = []
    for res in items:
        folder = root / res.subdir if res.subdir else root
        marker = folder / f".{res.filename}.extracted"
        if res.extract and marker.exists() and not (folder / res.filename).exists():
            continue  # extracted earlier and the archive was removed on request
        path = download_url(res.url, folder / res.filename, sha256=res.sha256, md5=res.md5,
                            opener=opener, progress=progress)
        out.append(path)
        if res.extract:
            if not marker.exists():
                extract_archive(path, folder, progress=progress)
                for src, dst in res.rename.items():
                    if (folder / src).is_dir() and not (folder / dst).exists():
                        os.replace(folder / src, folder / dst)
                marker.write_text(file_sha256(path) + "\n")
            if not keep_archives:
                # only our own download is removed, after a verified extraction
                path.unlink()
    if group in POSTPROCESS:
        renamed = POSTPROCESS[group](root)
        if renamed and progress:
            print(f"renamed {len(renamed)} class folders to the canonical names: "
                  + ", ".join(f"{a} -> {b}" for a, b in sorted(renamed.items())))
    return out


def cli(dataset: str, groups: dict[str, list[str]] | list[str], argv: Sequence[str] | None = None,
        description: str = "", resources: Callable[[Any], list[Resource]] | None = None) -> int:
    """Command line of ``data_scripts/fetch_<dataset>.py``.

    ``groups`` lists the resource groups to fetch, or maps ``--category`` values to them.
    ``--root`` defaults to ``$SBIR_DATA``. Exit status 0 on success, 1 on a download or
    checksum problem (the message says what to do).
    """
    import argparse

    ap = argparse.ArgumentParser(description=description or f"Download {dataset} (see data_scripts/README.md)")
    ap.add_argument("--root", default=os.environ.get("SBIR_DATA", ""),
                    help="target folder (default: $SBIR_DATA)")
    if isinstance(groups, dict):
        ap.add_argument("--category", action="append", choices=sorted(groups),
                        help="category to fetch (repeatable; default: all)")
    if resources is not None:
        ap.add_argument("--classes", nargs="+", required=True, help="class names to fetch")
    ap.add_argument("--remove-archives", action="store_true", help="delete archives after a verified extraction")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    ap.add_argument("--list", action="store_true", help="print the URLs and checksums and exit")
    args = ap.parse_args(argv)
    if not args.root:
        ap.error("no target folder: pass --root DIR or set SBIR_DATA")
    if isinstance(groups, dict):
        chosen = [g for cat in (args.category or sorted(groups)) for g in groups[cat]]
    else:
        chosen = list(groups)
    plan = [(g, resources(args.classes) if resources is not None else RESOURCES[g]) for g in chosen]
    if args.list:
        for g, items in plan:
            for r in items:
                checks = f"sha256={r.sha256}" if r.sha256 else (f"md5={r.md5}" if r.md5 else "checksum: recorded on first download")
                print(f"[{g}] {r.url} -> {Path(args.root) / r.subdir / r.filename}  {checks}")
        return 0
    try:
        for g, items in plan:
            fetch(g, Path(args.root), progress=not args.quiet, keep_archives=not args.remove_archives,
                  resources=items)
    except (ChecksumError, DownloadError, UnsafeArchiveError) as err:
        print(f"error: {err}", file=__import__("sys").stderr)
        return 1
    print(f"{dataset}: done. Use root={args.root!r} (or SBIR_DATA={args.root}) with sbirlib.data.build_dataset("
          f"{dataset!r}, ...).")
    return 0
