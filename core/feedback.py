"""Labelled feedback: model inputs whose true digit a user told us, kept in a real database.

    python -m core.feedback count  --url sqlite:///feedback.db
    python -m core.feedback export --url postgresql://mnist@127.0.0.1/mnist --out fb/
    python -m core.feedback delete --url sqlite:///feedback.db --older-than-days 90

The service writes a row per `POST /feedback` (service/feedback.py); the training job
reads them back to retrain on (training/feedback.py). What a row keeps is the 28x28
model input the service made of the upload (uint8, white on black: core/contract.py),
never the upload itself; the digit the user says it is; the digit the client says the
service answered, when it says; the served model's version; and when it arrived.

A database URL picks the backend: `sqlite:///relative/path.db` or `sqlite:////abs/path.db`
(the embedded default: WAL, every commit synced), or `postgresql://user:pass@host/db`
(psycopg 3, imported only then). `add` returns once the row is committed: a row whose
id was returned survives a SIGKILL of the writer or of the database. A database that
cannot be reached or refuses the write is a StoreUnavailable.

Which rows the training job holds out is decided here, by content (`held_out`): the same
image and digit land on the same side whichever database or export they come from, so
a hold-out row never trains a later model.
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from core.contract import CONTRACT
from core.data import DataError, read_idx, write_idx

DEFAULT_URL = "sqlite:///feedback.db"  # beside where `make serve` runs
SIDE = (CONTRACT.height, CONTRACT.width)
PIXELS = SIDE[0] * SIDE[1]
# The exported IDX files (`export`, and what `load` reads from a folder).
IDX_IMAGES, IDX_LABELS = "feedback-images-idx3-ubyte", "feedback-labels-idx1-ubyte"
NO_ANSWER = -1  # `answered` of a row whose client did not say

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id {id_type} PRIMARY KEY,
    created_at DOUBLE PRECISION NOT NULL,
    model_version TEXT NOT NULL,
    truth SMALLINT NOT NULL CHECK (truth BETWEEN 0 AND 9),
    answered SMALLINT CHECK (answered BETWEEN 0 AND 9),
    pixels {blob} NOT NULL CHECK (length(pixels) = {pixels})
)"""
_COLUMNS = "id, created_at, model_version, truth, answered, pixels"


class StoreUnavailable(Exception):
    """The feedback database cannot be reached, or did not commit the row."""


@dataclass(frozen=True)
class Feedback:
    pixels: np.ndarray  # uint8 [28, 28], the model input
    truth: int  # the digit it is, says the user
    answered: int | None = None  # the digit the service answered, says the client
    model_version: str = ""
    id: int | None = None  # set by the database
    created_at: float | None = None  # unix seconds, set on add

    def checked(self) -> Feedback:
        """Itself, or a ValueError saying which field is wrong."""
        if not 0 <= int(self.truth) <= 9:
            raise ValueError(f"truth must be a digit 0-9, got {self.truth!r}")
        if self.answered is not None and not 0 <= int(self.answered) <= 9:
            raise ValueError(f"answered must be a digit 0-9, got {self.answered!r}")
        if self.pixels.shape != SIDE:
            raise ValueError(f"pixels must be {SIDE[0]}x{SIDE[1]}, got {self.pixels.shape}")
        return self


def as_pixels(model_input: np.ndarray) -> np.ndarray:
    """A float model input [28, 28] (0-255) as the uint8 image a row keeps."""
    return np.clip(np.asarray(model_input, dtype=np.float32), 0, 255).round().astype(np.uint8)


def held_out(pixels: np.ndarray, truth: int, fraction: float) -> bool:
    """Whether this image and digit belong to the hold-out share `fraction` (by content)."""
    digest = hashlib.sha256(as_pixels(pixels).tobytes() + bytes([int(truth)])).digest()
    return int.from_bytes(digest[:8], "big") < fraction * 2.0 ** 64


class FeedbackStore(Protocol):
    url: str  # redacted: safe to log

    def add(self, item: Feedback) -> int: ...
    def rows(self, after_id: int = 0, limit: int | None = None) -> list[Feedback]: ...
    def count(self) -> int: ...
    def delete(self, ids: Sequence[int] = (), before: float | None = None) -> int: ...
    def close(self) -> None: ...


def redact(url: str) -> str:
    """The URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def _row(values: Sequence[Any]) -> Feedback:
    id_, created, version, truth, answered, blob = values
    return Feedback(pixels=np.frombuffer(bytes(blob), dtype=np.uint8).reshape(SIDE).copy(),
                    truth=int(truth), answered=None if answered is None else int(answered),
                    model_version=str(version), id=int(id_), created_at=float(created))


def _insert(item: Feedback, mark: str) -> tuple[str, tuple[Any, ...]]:
    """The INSERT of a checked row, in a driver's parameter style, and its values."""
    item = item.checked()
    return (f"INSERT INTO feedback (created_at, model_version, truth, answered, pixels) "
            f"VALUES ({', '.join([mark] * 5)}) RETURNING id",
            (time.time(), item.model_version, int(item.truth), item.answered,
             as_pixels(item.pixels).tobytes()))


def _delete_sql(ids: Sequence[int], before: float | None, mark: str) -> tuple[str, list[Any]]:
    clauses, params = [], []  # type: list[str], list[Any]
    if ids:
        clauses.append(f"id IN ({', '.join([mark] * len(ids))})")
        params.extend(int(i) for i in ids)
    if before is not None:
        clauses.append(f"created_at < {mark}")
        params.append(float(before))
    if not clauses:
        raise ValueError("delete needs ids or a time to delete before")
    return f"DELETE FROM feedback WHERE {' OR '.join(clauses)}", params


class SQLiteStore:
    """The embedded default: one file, WAL, synchronous=FULL (a commit is on disk)."""

    def __init__(self, path: str, timeout_s: float = 2.0) -> None:
        self.url, self.path, self._lock = f"sqlite:///{path}", path, threading.Lock()
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=timeout_s, check_same_thread=False,
                                       isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA.format(id_type="INTEGER", blob="BLOB", pixels=PIXELS))
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"{self.url}: {exc}") from exc

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            with self._lock:
                cursor = self._db.execute(sql, params)
                return cursor.fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.url}: {exc}") from exc

    def add(self, item: Feedback) -> int:
        ((id_,),) = self._run(*_insert(item, "?"))
        return int(id_)

    def rows(self, after_id: int = 0, limit: int | None = None) -> list[Feedback]:
        sql = f"SELECT {_COLUMNS} FROM feedback WHERE id > ? ORDER BY id"
        return [_row(r) for r in self._run(sql + (f" LIMIT {int(limit)}" if limit else ""),
                                           (after_id,))]

    def count(self) -> int:
        return int(self._run("SELECT count(*) FROM feedback")[0][0])

    def delete(self, ids: Sequence[int] = (), before: float | None = None) -> int:
        sql, params = _delete_sql(ids, before, "?")
        with self._lock:
            try:
                return self._db.execute(sql, params).rowcount
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"{self.url}: {exc}") from exc

    def close(self) -> None:
        self._db.close()


class PostgresStore:
    """PostgreSQL through psycopg 3: one connection, re-opened after a failure; each add is
    its own transaction, committed (synchronous_commit: the server's default, on)."""

    def __init__(self, url: str, timeout_s: float = 2.0) -> None:
        self.url, self._dsn, self._timeout = redact(url), url, timeout_s
        self._lock, self._conn = threading.Lock(), None  # type: threading.Lock, Any
        self._execute(_SCHEMA.format(id_type="BIGSERIAL", blob="BYTEA", pixels=PIXELS))

    def _connect(self) -> Any:
        import psycopg  # only where PostgreSQL is used

        ms = int(self._timeout * 1000)
        return psycopg.connect(self._dsn, connect_timeout=max(1, round(self._timeout)),
                               options=f"-c statement_timeout={ms}", autocommit=False)

    def _execute(self, sql: str, params: Sequence[Any] = (), fetch: bool = False) -> Any:
        import psycopg

        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = self._connect()
                with self._conn.transaction(), self._conn.cursor() as cur:
                    cur.execute(sql, params)  # type: ignore[arg-type]
                    return cur.fetchall() if fetch else cur.rowcount
            except psycopg.Error as exc:
                self._drop()
                raise StoreUnavailable(f"{self.url}: {str(exc).strip()}") from exc

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def add(self, item: Feedback) -> int:
        ((id_,),) = self._execute(*_insert(item, "%s"), fetch=True)
        return int(id_)

    def rows(self, after_id: int = 0, limit: int | None = None) -> list[Feedback]:
        sql = f"SELECT {_COLUMNS} FROM feedback WHERE id > %s ORDER BY id"
        return [_row(r) for r in self._execute(
            sql + (f" LIMIT {int(limit)}" if limit else ""), (after_id,), fetch=True)]

    def count(self) -> int:
        return int(self._execute("SELECT count(*) FROM feedback", fetch=True)[0][0])

    def delete(self, ids: Sequence[int] = (), before: float | None = None) -> int:
        sql, params = _delete_sql(ids, before, "%s")
        return int(self._execute(sql, params))

    def close(self) -> None:
        with self._lock:
            self._drop()


def open_store(url: str, timeout_s: float = 2.0) -> FeedbackStore:
    """The store a URL names (see the module's docstring); StoreUnavailable if it cannot
    be opened, ValueError if the URL names no backend."""
    scheme, _, rest = url.partition("://")
    if scheme == "sqlite" and rest.startswith("/") and len(rest) > 1:
        return SQLiteStore(rest[1:], timeout_s)
    if scheme in ("postgresql", "postgres"):
        return PostgresStore(url, timeout_s)
    raise ValueError(f"feedback URL must be sqlite:///<path> or postgresql://..., got "
                     f"{redact(url)!r}")


def arrays(rows: Iterable[Feedback]) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [N, 28, 28], labels int64 [N]) of rows."""
    rows = list(rows)
    images = np.stack([r.pixels for r in rows]) if rows else np.zeros((0, *SIDE), np.uint8)
    return images, np.asarray([r.truth for r in rows], dtype=np.int64)


def export_idx(rows: Iterable[Feedback], folder: str | Path) -> Path:
    """The rows as two gzipped IDX files (images, labels) in folder; returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = arrays(rows)
    write_idx(folder / f"{IDX_IMAGES}.gz", images)
    write_idx(folder / f"{IDX_LABELS}.gz", labels)
    return folder


def load(source: str, timeout_s: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """The feedback digits from a database URL or an exported IDX folder:
    (images uint8 [N, 28, 28], labels int64 [N]). DataError when a folder is not one."""
    if "://" in source:
        store = open_store(source, timeout_s)
        try:
            return arrays(store.rows())
        finally:
            store.close()
    folder = Path(source)
    images, labels = (read_idx(folder / f"{name}.gz") for name in (IDX_IMAGES, IDX_LABELS))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(f"{folder}: feedback images and labels do not match")
    if labels.max(initial=0) > 9:
        raise DataError(f"{folder}: feedback labels outside 0-9")
    return images, labels.astype(np.int64)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.feedback", description=(
        "Count, export or delete the feedback rows of a database."))
    parser.add_argument("command", choices=("count", "export", "delete"))
    parser.add_argument("--url", default=DEFAULT_URL, help="the database (default: %(default)s)")
    parser.add_argument("--out", help="export: the folder for the IDX files")
    parser.add_argument("--id", type=int, nargs="+", default=[], help="delete: these rows")
    parser.add_argument("--older-than-days", type=float,
                        help="delete: rows that arrived more than this many days ago")
    args = parser.parse_args(argv)
    try:
        store = open_store(args.url)
        if args.command == "count":
            print(store.count())
        elif args.command == "export":
            if not args.out:
                parser.error("export needs --out")
            rows = store.rows()
            print(f"{len(rows)} rows -> {export_idx(rows, args.out)}/")
        else:
            before = (time.time() - args.older_than_days * 86400
                      if args.older_than_days is not None else None)
            if not args.id and before is None:
                parser.error("delete needs --id or --older-than-days")
            print(f"deleted {store.delete(args.id, before)} rows")
        store.close()
    except (StoreUnavailable, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
