"""The feedback store on its real backends: SQLite (a file) and PostgreSQL (a throwaway
cluster, tests/postgres.py).

    pytest tests/core/test_feedback.py
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from core import feedback
from core.data import DataError
from core.feedback import Feedback, StoreUnavailable, held_out, open_store
from tests import postgres


@pytest.fixture(scope="module")
def cluster():
    with postgres.cluster() as pg:
        yield pg


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    url = (f"sqlite:///{tmp_path}/feedback.db" if request.param == "sqlite"
           else request.getfixturevalue("cluster").url)
    opened = open_store(url)
    opened.delete(before=time.time() + 1)  # the cluster is shared by the module's tests
    yield opened
    opened.close()


def _digit(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8)


def test_a_committed_row_reads_back_as_it_was_sent(store):
    first = store.add(Feedback(pixels=_digit(0), truth=7, answered=1, model_version="v1"))
    second = store.add(Feedback(pixels=_digit(1), truth=3, model_version="v1"))
    assert second > first
    rows = store.rows()
    assert [r.id for r in rows] == [first, second] and store.count() == 2
    assert np.array_equal(rows[0].pixels, _digit(0)) and rows[0].pixels.dtype == np.uint8
    assert (rows[0].truth, rows[0].answered, rows[0].model_version) == (7, 1, "v1")
    assert rows[1].answered is None
    assert abs(rows[0].created_at - time.time()) < 60
    assert [r.id for r in store.rows(after_id=first)] == [second]
    assert [r.id for r in store.rows(limit=1)] == [first]


def test_a_bad_row_is_refused_before_the_database(store):
    with pytest.raises(ValueError, match="truth"):
        store.add(Feedback(pixels=_digit(0), truth=10))
    with pytest.raises(ValueError, match="answered"):
        store.add(Feedback(pixels=_digit(0), truth=1, answered=-2))
    with pytest.raises(ValueError, match="28x28"):
        store.add(Feedback(pixels=np.zeros((28, 27), np.uint8), truth=1))
    assert store.count() == 0


def test_delete_by_id_and_by_age(store):
    ids = [store.add(Feedback(pixels=_digit(i), truth=i)) for i in range(4)]
    assert store.delete(ids=ids[:2]) == 2
    assert [r.id for r in store.rows()] == ids[2:]
    assert store.delete(before=time.time() - 3600) == 0  # none is an hour old
    assert store.delete(before=time.time() + 1) == 2
    assert store.count() == 0
    with pytest.raises(ValueError, match="ids or a time"):
        store.delete()


def test_export_and_load_round_trip(store, tmp_path):
    sent = [(_digit(i), i % 10) for i in range(12)]
    for pixels, truth in sent:
        store.add(Feedback(pixels=pixels, truth=truth))
    folder = feedback.export_idx(store.rows(), tmp_path / "export")
    for source in (str(folder), store.url if "sqlite" in store.url else None):
        if source is None:
            continue
        images, labels = feedback.load(source)
        assert np.array_equal(images, np.stack([p for p, _ in sent]))
        assert labels.tolist() == [t for _, t in sent] and labels.dtype == np.int64


def test_postgres_load_reads_the_database_by_its_url(cluster):
    store = open_store(cluster.url)
    store.delete(before=time.time() + 1)
    store.add(Feedback(pixels=_digit(5), truth=5))
    store.close()
    images, labels = feedback.load(cluster.url)
    assert labels.tolist() == [5] and np.array_equal(images[0], _digit(5))


def test_a_folder_that_is_not_an_export_is_a_data_error(tmp_path):
    feedback.export_idx([Feedback(pixels=_digit(0), truth=1)], tmp_path)
    (tmp_path / f"{feedback.IDX_LABELS}.gz").unlink()
    feedback.export_idx([Feedback(pixels=_digit(i), truth=1) for i in range(2)],
                        tmp_path / "two")
    (tmp_path / "two" / f"{feedback.IDX_LABELS}.gz").rename(
        tmp_path / f"{feedback.IDX_LABELS}.gz")
    with pytest.raises(DataError, match="do not match"):
        feedback.load(str(tmp_path))


def test_held_out_is_decided_by_content_and_holds_the_share():
    digits = [(_digit(i), i % 10) for i in range(2000)]
    first = [held_out(p, t, 0.2) for p, t in digits]
    assert first == [held_out(p.copy(), t, 0.2) for p, t in digits]  # by content
    assert abs(np.mean(first) - 0.2) < 0.03
    # The same image as the float model input it came from: the same side.
    assert all(held_out(p.astype(np.float32), t, 0.2) == f
               for (p, t), f in zip(digits[:50], first[:50], strict=True))
    assert not any(held_out(p, t, 0.0) for p, t in digits[:50])
    assert all(held_out(p, t, 1.0) for p, t in digits[:50])
    # A larger share holds out a superset: a row never moves back into training.
    wider = [held_out(p, t, 0.3) for p, t in digits]
    assert all(w for f, w in zip(first, wider, strict=True) if f)


def test_redact_hides_only_the_password():
    assert feedback.redact("postgresql://mnist:s3cret@db:5432/mnist") == \
        "postgresql://mnist:***@db:5432/mnist"
    assert feedback.redact("sqlite:///feedback.db") == "sqlite:///feedback.db"


def test_a_postgres_store_names_its_url_without_the_password(cluster):
    store = open_store(cluster.url)
    try:
        assert cluster.password not in store.url and "***" in store.url
    finally:
        store.close()


def test_a_bad_url_is_refused_by_name():
    with pytest.raises(ValueError, match="sqlite:///<path> or postgresql"):
        open_store("mysql://user:pw@host/db")
    with pytest.raises(ValueError) as refused:
        open_store("mongodb://user:hunter2@host/db")
    assert "hunter2" not in str(refused.value)


def test_a_database_that_is_down_is_store_unavailable_without_its_password(tmp_path):
    from clients.server_process import free_port

    url = f"postgresql://mnist:hunter2@127.0.0.1:{free_port()}/mnist"
    pytest.importorskip("psycopg")
    with pytest.raises(StoreUnavailable) as down:
        open_store(url, timeout_s=1)
    assert "hunter2" not in str(down.value)
    (tmp_path / "dir.db").mkdir()  # a folder where the file should be
    with pytest.raises(StoreUnavailable):
        open_store(f"sqlite:///{tmp_path}/dir.db")


def test_a_restarted_postgres_serves_the_same_store_again(cluster):
    store = open_store(cluster.url)
    try:
        row = store.add(Feedback(pixels=_digit(9), truth=9))
        cluster.kill()
        with pytest.raises(StoreUnavailable):
            store.add(Feedback(pixels=_digit(8), truth=8))
        cluster.start()
        assert row in [r.id for r in store.rows()]  # the store reconnects by itself
    finally:
        store.close()


def test_the_cli_counts_exports_and_deletes(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/cli.db"
    store = open_store(url)
    ids = [store.add(Feedback(pixels=_digit(i), truth=i)) for i in range(3)]
    store.close()
    assert feedback.main(["count", "--url", url]) == 0
    assert feedback.main(["export", "--url", url, "--out", str(tmp_path / "out")]) == 0
    assert feedback.main(["delete", "--url", url, "--id", str(ids[0])]) == 0
    assert feedback.main(["delete", "--url", url, "--older-than-days", "0"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "3" and out[1].startswith("3 rows") and out[2:] == [
        "deleted 1 rows", "deleted 2 rows"]
    assert feedback.load(str(tmp_path / "out"))[1].tolist() == [0, 1, 2]
    assert feedback.main(["count", "--url", "nope://x"]) == 1
