"""Test helpers: IDX writers and the training CLI runner (imported by tests, not fixtures)."""

from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clients import server_process
from core import data

ROOT = Path(__file__).resolve().parents[1]


def write_idx(path: Path, array: np.ndarray, magic: int | None = None) -> Path:
    """Write an IDX file (gzip when the name ends in .gz): core.data's writer, or with a
    wrong magic number for the corrupt cases."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    if magic is None:
        data.write_idx(path, array)
        return path
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


def run_module(module: str, args: list[str], env: dict[str, str],
               timeout: float = 180) -> subprocess.CompletedProcess:
    """`python -m module args` from the project root, as users run the command lines."""
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=timeout, cwd=ROOT)


def serve_expecting_refusal(env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    """`bentoml serve` that must refuse to start: (exit code, output); the test fails if
    the server keeps running."""
    proc = server_process.start(server_process.free_port(), subprocess.PIPE, env=env)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        server_process.stop(proc)
        out = proc.stdout.read() if proc.stdout else ""
        pytest.fail("the server kept running where it had to refuse to start:\n" + out)
    return proc.returncode, out


def run_training(args: list[str], bentoml_home: Path, timeout: float = 300):
    """Run the training CLI the way users do, against an isolated BentoML store."""
    env = {**os.environ, "BENTOML_HOME": str(bentoml_home), "BENTOML_DO_NOT_TRACK": "true"}
    env.pop("MNIST_DIR", None)
    return subprocess.run([sys.executable, "-m", "training", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_error(resp, status: int, text: str = "") -> None:
    """An HTTP answer is the error `status` with a `{"error": str}` body holding `text`."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert isinstance(body, dict) and isinstance(body["error"], str), body
    assert text.lower() in body["error"].lower(), body
