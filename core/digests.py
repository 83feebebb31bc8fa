"""File digests: the model's SHA-256 in the store, the MD5 of the official MNIST files.

    python -c "from core.digests import file_digest; print(file_digest('artifacts/model.onnx'))"
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks (a model or data file need not fit in memory)."""
    # MD5 only checks downloads against published checksums: not a security use
    # (FIPS builds refuse it unless told so).
    secure = algorithm != "md5"
    with open(path, "rb") as f:
        return hashlib.file_digest(
            f, lambda: hashlib.new(algorithm, usedforsecurity=secure)).hexdigest()
