"""core.digests: one chunked reader for the model's SHA-256 and the downloads' MD5."""

from __future__ import annotations

import hashlib

from core.digests import file_digest


def test_file_digest_matches_hashlib_for_sha256_and_md5(tmp_path):
    data = bytes(range(256)) * 9000  # > 2 MiB: more than one read
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert file_digest(path) == hashlib.sha256(data).hexdigest()
    assert file_digest(str(path), "md5") == hashlib.md5(data).hexdigest()
