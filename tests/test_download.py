"""Every download step except the HTTP request itself: fake openers and file:// URLs only."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from sbirlib.data import download as dl
from sbirlib.data.download import (
    ChecksumError,
    DownloadError,
    Resource,
    UnsafeArchiveError,
    download_url,
    extract_archive,
    fetch,
)

PAYLOAD = bytes(range(256)) * 40  # 10,240 bytes
SHA = hashlib.sha256(PAYLOAD).hexdigest()


class FakeResponse:
    def __init__(self, body: bytes, status: int = 200, headers: dict | None = None, fail_after: int | None = None):
        self._buf = io.BytesIO(body)
        self.status = status
        self.headers = {"Content-Length": str(len(body)), **(headers or {})}
        self._fail_after = fail_after
        self._sent = 0

    def read(self, n: int = -1) -> bytes:
        if self._fail_after is not None and self._sent >= self._fail_after:
            raise ConnectionResetError("connection reset by peer")
        block = self._buf.read(n if n > 0 else -1)
        self._sent += len(block)
        return block

    def close(self) -> None:
        pass


class FakeServer:
    """Serves ``body`` honouring Range requests; records every request."""

    def __init__(self, body: bytes, honour_range: bool = True, fail_first_after: int | None = None):
        self.body, self.honour_range, self.fail_first_after = body, honour_range, fail_first_after
        self.requests: list[tuple[str, dict]] = []

    def __call__(self, url: str, headers: dict) -> FakeResponse:
        self.requests.append((url, dict(headers)))
        fail = self.fail_first_after if len(self.requests) == 1 else None
        rng = headers.get("Range")
        if rng and self.honour_range:
            start = int(rng.split("=")[1].rstrip("-"))
            return FakeResponse(self.body[start:], status=206, fail_after=fail)
        return FakeResponse(self.body, fail_after=fail)


def test_download_verifies_and_leaves_no_partial(tmp_path):
    server = FakeServer(PAYLOAD)
    out = download_url("https://example.org/data.bin", tmp_path / "data.bin", sha256=SHA, opener=server,
                       progress=False, chunk_size=1000)
    assert out.read_bytes() == PAYLOAD
    assert not (tmp_path / "data.bin.part").exists()
    # a verified file is not downloaded again
    download_url("https://example.org/data.bin", out, sha256=SHA, opener=server, progress=False)
    assert len(server.requests) == 1


def test_interrupted_download_resumes_with_range(tmp_path):
    server = FakeServer(PAYLOAD, fail_first_after=3000)
    dest = tmp_path / "data.bin"
    with pytest.raises(DownloadError, match="resume"):
        download_url("https://example.org/data.bin", dest, sha256=SHA, opener=server, progress=False,
                     chunk_size=1000)
    part = tmp_path / "data.bin.part"
    assert part.stat().st_size == 3000 and not dest.exists()
    download_url("https://example.org/data.bin", dest, sha256=SHA, opener=server, progress=False, chunk_size=1000)
    assert server.requests[1][1] == {"Range": "bytes=3000-"}
    assert dest.read_bytes() == PAYLOAD and not part.exists()


def test_server_ignoring_range_restarts_from_zero(tmp_path):
    dest = tmp_path / "data.bin"
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD[:500])
    server = FakeServer(PAYLOAD, honour_range=False)
    download_url("https://example.org/data.bin", dest, sha256=SHA, opener=server, progress=False)
    assert dest.read_bytes() == PAYLOAD


def test_checksum_mismatch_deletes_nothing(tmp_path):
    dest = tmp_path / "data.bin"
    bad_sha = "0" * 64
    # a fresh download that fails the checksum is kept aside, never installed
    with pytest.raises(ChecksumError, match=r"Nothing you had was deleted.*\.mismatch"):
        download_url("https://example.org/data.bin", dest, sha256=bad_sha, opener=FakeServer(PAYLOAD), progress=False)
    assert not dest.exists() and (tmp_path / "data.bin.mismatch").read_bytes() == PAYLOAD
    # a file the user already had is left exactly as it was
    dest.write_bytes(b"my own precious file")
    with pytest.raises(ChecksumError, match="Nothing was deleted"):
        download_url("https://example.org/data.bin", dest, sha256=SHA, opener=FakeServer(PAYLOAD), progress=False)
    assert dest.read_bytes() == b"my own precious file"
    # MD5-only sources are checked too
    with pytest.raises(ChecksumError):
        download_url("https://example.org/other.bin", tmp_path / "other.bin", md5="0" * 32,
                     opener=FakeServer(PAYLOAD), progress=False)


def test_unknown_checksum_is_recorded_then_enforced(tmp_path):
    dest = tmp_path / "data.bin"
    download_url("https://example.org/data.bin", dest, opener=FakeServer(PAYLOAD), progress=False)
    record = (tmp_path / ".sbirlib_checksums.json").read_text()
    assert SHA in record
    dest.unlink()
    with pytest.raises(ChecksumError):  # the source changed since the first download
        download_url("https://example.org/data.bin", dest, opener=FakeServer(PAYLOAD[::-1]), progress=False)


def test_html_instead_of_archive_is_refused(tmp_path):
    page = b"<!DOCTYPE html><html><body>Sign in</body></html>"
    with pytest.raises(DownloadError, match="HTML page"):
        download_url("https://example.org/a.zip", tmp_path / "a.zip", opener=FakeServer(page), progress=False)
    assert not (tmp_path / "a.zip").exists()
    with pytest.raises(DownloadError, match="does not start like"):
        download_url("https://example.org/b.7z", tmp_path / "b.7z", opener=FakeServer(PAYLOAD), progress=False)


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_google_drive_confirmation_page_is_followed(tmp_path):
    archive = _zip_bytes({"x/a.txt": b"hello"})
    page = (b'<html><form id="download-form" action="https://drive.usercontent.google.com/download" method="get">'
            b'<input type="hidden" name="id" value="ABC"><input type="hidden" name="confirm" value="t">'
            b"</form></html>")
    calls = []

    def opener(url, headers):
        calls.append(url)
        if len(calls) == 1:
            return FakeResponse(page, headers={"Content-Type": "text/html; charset=utf-8"})
        return FakeResponse(archive, headers={"Content-Type": "application/octet-stream"})

    out = download_url(dl.google_drive_url("ABC", "key"), tmp_path / "a.zip", opener=opener, progress=False)
    assert calls[0].endswith("id=ABC&resourcekey=key")
    assert calls[1].startswith("https://drive.usercontent.google.com/download?") and "confirm=t" in calls[1]
    assert out.read_bytes() == archive


def test_extract_zip_and_tar(tmp_path):
    zpath = tmp_path / "a.zip"
    zpath.write_bytes(_zip_bytes({"top/cls/1.png": b"one", "top/cls/2.png": b"two"}))
    files = extract_archive(zpath, tmp_path / "out", progress=False)
    assert sorted(p.name for p in files) == ["1.png", "2.png"]
    assert (tmp_path / "out" / "top" / "cls" / "2.png").read_bytes() == b"two"
    tpath = tmp_path / "b.tar.gz"
    with tarfile.open(tpath, "w:gz") as tf:
        info = tarfile.TarInfo("pkg/data.txt")
        info.size = 4
        tf.addfile(info, io.BytesIO(b"data"))
    extract_archive(tpath, tmp_path / "out2", progress=False)
    assert (tmp_path / "out2" / "pkg" / "data.txt").read_bytes() == b"data"


@pytest.mark.parametrize("evil", ["../escape.txt", "a/../../escape.txt", "/tmp/sbirlib_abs_escape.txt"])
def test_zip_path_traversal_writes_nothing(tmp_path, evil):
    zpath = tmp_path / "evil.zip"
    zpath.write_bytes(_zip_bytes({"fine/first.txt": b"ok", evil: b"pwned"}))
    dest = tmp_path / "target"
    with pytest.raises(UnsafeArchiveError, match="outside"):
        extract_archive(zpath, dest, progress=False)
    assert not (tmp_path / "escape.txt").exists() and not Path("/tmp/sbirlib_abs_escape.txt").exists()
    assert list(dest.iterdir()) == []  # not even the harmless member was written


def test_tar_traversal_and_links_write_nothing(tmp_path):
    dest = tmp_path / "target"
    for kind in ("dotdot", "symlink", "hardlink"):
        tpath = tmp_path / f"{kind}.tar"
        with tarfile.open(tpath, "w") as tf:
            ok = tarfile.TarInfo("fine.txt")
            ok.size = 2
            tf.addfile(ok, io.BytesIO(b"ok"))
            if kind == "dotdot":
                bad = tarfile.TarInfo("../escape.txt")
                bad.size = 5
                tf.addfile(bad, io.BytesIO(b"pwned"))
            else:
                bad = tarfile.TarInfo("link")
                bad.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                bad.linkname = "/etc/passwd"
                tf.addfile(bad)
        with pytest.raises(UnsafeArchiveError):
            extract_archive(tpath, dest, progress=False)
        assert not (tmp_path / "escape.txt").exists()
        assert not dest.exists() or list(dest.iterdir()) == []


def test_fetch_file_url_extract_rename_and_idempotence(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    archive = src / "pack.zip"
    archive.write_bytes(_zip_bytes({"256x256/sketch/a.png": b"s", "256x256/photo/a.jpg": b"p"}))
    res = Resource(archive.as_uri(), "pack.zip", sha256=hashlib.sha256(archive.read_bytes()).hexdigest(),
                   extract=True, rename={"256x256": "rendered_256x256"})
    root = tmp_path / "data"
    fetch("test", root, resources=[res], progress=False)  # default urllib opener on a file:// URL
    assert (root / "rendered_256x256" / "sketch" / "a.png").read_bytes() == b"s"
    calls = []

    def opener(url, headers):  # must not be called again: everything is present and verified
        calls.append(url)
        raise AssertionError("downloaded twice")

    fetch("test", root, resources=[res], progress=False, opener=opener)
    fetch("test", root, resources=[res], progress=False, opener=opener, keep_archives=False)
    assert not (root / "pack.zip").exists() and (root / "rendered_256x256").is_dir()
    fetch("test", root, resources=[res], progress=False, opener=opener)  # extracted earlier: skipped
    assert calls == []


def test_fetch_postprocess_normalises_tuberlin_ext_folders(tmp_path, monkeypatch):
    archive = tmp_path / "images.zip"
    archive.write_bytes(_zip_bytes({"ImageResized/tromobone/n1.JPEG": b"x", "ImageResized/mouse/n2.JPEG": b"y",
                                    "ImageResized/alarmclock/n3.JPEG": b"z"}))
    res = Resource(archive.as_uri(), "images.zip", extract=True)
    root = tmp_path / "data"
    fetch("tuberlin-ext", root, resources=[res], progress=False)
    names = sorted(p.name for p in (root / "ImageResized").iterdir())
    assert names == ["alarm clock", "mouse (animal)", "trombone"]


def test_cli_list_and_checksum_failure(tmp_path, monkeypatch, capsys):
    src = tmp_path / "f.mat"
    src.write_bytes(b"MATLAB 5.0 MAT-file fake")
    monkeypatch.setitem(dl.RESOURCES, "fake", [Resource(src.as_uri(), "f.mat", sha256="1" * 64, subdir="cat")])
    assert dl.cli("fake", ["fake"], argv=["--root", str(tmp_path / "d"), "--list"]) == 0
    assert "sha256=" + "1" * 64 in capsys.readouterr().out
    assert dl.cli("fake", ["fake"], argv=["--root", str(tmp_path / "d"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "does not match" in err and (tmp_path / "d" / "cat" / "f.mat.mismatch").exists()


def test_every_fetch_script_only_uses_sbirlib_download():
    scripts = sorted((Path(__file__).resolve().parents[1] / "data_scripts").glob("fetch_*.py"))
    assert len(scripts) >= 8
    for script in scripts:
        text = script.read_text()
        assert "from sbirlib.data.download import" in text
        assert "urllib" not in text and "requests" not in text and "subprocess" not in text
    for name, script in dl.FETCH_SCRIPTS.items():
        assert (scripts[0].parent / script).is_file(), (name, script)


# --------------------------------------------------------------------------------------
# sbirlib.hub: pretrained weights
# --------------------------------------------------------------------------------------
@pytest.fixture()
def weights_env(tmp_path, monkeypatch):
    import torch

    from sbirlib import hub

    monkeypatch.setenv("SBIR_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SBIR_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torchhub"))
    monkeypatch.setattr(hub, "WEIGHTS", dict(hub.WEIGHTS))
    src = tmp_path / "src"
    src.mkdir()
    torch.save({"w": torch.arange(4.0)}, src / "tiny.pth")
    return hub, src


def test_hub_downloads_verifies_and_caches(weights_env):
    import torch

    hub, src = weights_env
    sha = hashlib.sha256((src / "tiny.pth").read_bytes()).hexdigest()
    hub.register_weights("tiny.test", (src / "tiny.pth").as_uri(), sha)
    state = hub.load_state_dict("tiny.test")
    assert torch.equal(state["w"], torch.arange(4.0))

    def opener(url, headers):
        raise AssertionError("cached weights must not be downloaded again")

    assert hub.load_state_dict("tiny.test", opener=opener)["w"].shape == (4,)
    with pytest.raises(ValueError, match="already registered"):
        hub.register_weights("tiny.test", "https://elsewhere/tiny.pth", sha)
    with pytest.raises(KeyError, match="resnet18.tv_in1k"):
        hub.weights_path("nope")


def test_hub_offline_error_names_url_and_cache(weights_env, monkeypatch):
    hub, _src = weights_env
    monkeypatch.setenv("SBIR_OFFLINE", "1")
    with pytest.raises(hub.WeightsUnavailableError, match=r"resnet18-f37072fd\.pth.*weights.*pretrained=False"):
        hub.weights_path("resnet18.tv_in1k")


def test_hub_short_hash_mismatch_keeps_file(weights_env):
    hub, src = weights_env
    bad = src / "net-deadbeef.pth"
    bad.write_bytes((src / "tiny.pth").read_bytes())
    hub.register_weights("net.test", bad.as_uri())
    with pytest.raises(hub.WeightsUnavailableError, match="hash check"):
        hub.weights_path("net.test", progress=False)
    assert bad.exists()


def test_loader_download_true_end_to_end(tmp_path, monkeypatch):
    """QMULV1(download=True) fetches (file:// URLs), verifies and loads."""
    import numpy as np
    from scipy.io import savemat

    from sbirlib.data.qmul import QMULV1

    src = tmp_path / "mirror"
    src.mkdir()
    items = []
    for kind in ("sketch", "edge"):
        for split, n in (("train", 10), ("test", 4)):
            name = f"lamps_{kind}_db_{split}.mat"
            savemat(src / name, {"data": np.full((n, 8, 8), 200, np.uint8)})
            items.append(Resource((src / name).as_uri(), name, sha256=dl.file_sha256(src / name), subdir="lamps"))
    monkeypatch.setitem(dl.RESOURCES, "qmul-v1/lamps", items)
    ds = QMULV1(tmp_path / "data", "test", "edge", category="lamps", download=True)
    assert len(ds) == 4 and (tmp_path / "data" / "lamps" / "lamps_edge_db_test.mat").is_file()


def test_7z_without_py7zr_says_what_to_install(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "py7zr":
            raise ImportError("no py7zr")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    archive = tmp_path / "x.7z"
    archive.write_bytes(b"7z\xbc\xaf\x27\x1c" + b"\0" * 32)
    with pytest.raises(DownloadError, match=r"pip install py7zr.*7z x"):
        extract_archive(archive, tmp_path / "out", progress=False)
