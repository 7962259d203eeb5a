"""JupyterLab is part of the install: the README's command serves the chapters."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_readme_command_names_the_installed_jupyter_lab():
    assert ".venv/bin/jupyter lab book/chapters/" in (ROOT / "README.md").read_text()
    assert shutil.which("jupyter-lab", path=str(Path(sys.executable).parent)), \
        "jupyter-lab is not installed next to this Python (requirements.txt pins jupyterlab)"


@pytest.mark.slow
def test_jupyter_lab_serves_the_chapter_list(tmp_path):
    exe = Path(sys.executable).parent / "jupyter-lab"
    port, token = _free_port(), secrets.token_hex(16)
    proc = subprocess.Popen(
        [str(exe), "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT / 'book' / 'chapters'}",
         "--ServerApp.port_retries=0", *(["--allow-root"] if os.geteuid() == 0 else [])],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path,
        env={**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
             "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"), "JUPYTER_DATA_DIR": str(tmp_path / "data")},
    )
    try:
        base = f"http://127.0.0.1:{port}"
        listing, deadline = None, time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{base}/api/contents?token={token}", timeout=5) as r:
                    listing = json.loads(r.read())
                break
            except OSError:
                time.sleep(0.5)
        assert listing is not None, "jupyter lab did not answer within 90 s: " + (
            proc.stderr.read().decode()[-2000:] if proc.poll() is not None else "")
        names = {item["name"] for item in listing["content"]}
        chapters = {p.name for p in (ROOT / "book" / "chapters").glob("[0-9]*.ipynb")}
        assert chapters <= names, f"missing from the listing: {sorted(chapters - names)}"
        with urllib.request.urlopen(f"{base}/lab?token={token}", timeout=10) as r:
            assert r.status == 200 and b"JupyterLab" in r.read()
        with pytest.raises(urllib.error.HTTPError):  # the token is required
            urllib.request.urlopen(f"{base}/api/contents", timeout=5)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
