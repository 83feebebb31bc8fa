"""Uploads stay in memory: a read-only container's small /tmp must not turn into a 500.

    pytest tests/security/test_spool.py

Starlette spools an uploaded file over 1 MiB to a temporary file. In the locked-down
container /tmp is a 64 MB tmpfs: a few 10-MiB uploads at once filled it, and the
OSError escaped as a 500. The body limit already bounds what is held in memory.
"""

from __future__ import annotations

import tempfile


def test_a_large_upload_never_touches_the_temporary_directory(client, monkeypatch, tmp_path):
    gone = tmp_path / "no-such-dir"
    monkeypatch.setattr(tempfile, "tempdir", str(gone))  # any spill would fail here
    resp = client.post("/predict", files={"image": ("big.bin", b"\x00" * (3 << 20))})
    assert resp.status_code == 400, resp.text  # not a PNG or JPEG: a client error
    assert resp.json()["error"] == "the file is not a PNG or JPEG image"
