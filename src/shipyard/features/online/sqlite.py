"""The embedded online store: one SQLite table in ``.shipyard/online.db`` (WAL, one connection
per thread), a row per view and entity with the features as JSON and the event time.

A separate file from the metadata database: materializing a million rows must not hold the
catalog's write lock, and serving reads never wait on it.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from shipyard.features.online import StoredRow

if TYPE_CHECKING:
    import polars as pl

__all__ = ["SqliteOnlineStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS online_features (
    view TEXT NOT NULL,
    entity_key TEXT NOT NULL,
    event_time REAL NOT NULL,
    feature_values TEXT NOT NULL,
    PRIMARY KEY (view, entity_key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS online_watermarks (
    view TEXT PRIMARY KEY,
    watermark REAL NOT NULL
);
"""
_BATCH = 50_000


class SqliteOnlineStore:
    """Online values in a SQLite file (see the module docstring)."""

    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA cache_size=-65536")  # 64 MiB: big upserts stay in memory
            conn.executescript(_SCHEMA)
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def write(self, view: str, keys: Sequence[str], frame: pl.DataFrame) -> int:
        import polars as pl

        features = [c for c in frame.columns if c not in keys and c != "event_time"]
        prepared = frame.select(
            pl.concat_str(
                [pl.col(k).cast(pl.String).fill_null("") for k in keys], separator="\x1f"
            ).alias("key"),
            (pl.col("event_time").dt.epoch("us") / 1_000_000).alias("t"),
            pl.struct(features).struct.json_encode().alias("v"),
        ).sort("key")  # in key order, an upsert walks the B-tree once instead of at random
        conn = self._conn()
        sql = (
            "INSERT INTO online_features (view, entity_key, event_time, feature_values) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (view, entity_key) DO UPDATE SET "
            "event_time = excluded.event_time, feature_values = excluded.feature_values"
        )
        with conn:
            for start in range(0, prepared.height, _BATCH):
                part = prepared.slice(start, _BATCH)
                conn.executemany(
                    sql,
                    zip(
                        [view] * part.height,
                        part.get_column("key").to_list(),
                        part.get_column("t").to_list(),
                        part.get_column("v").to_list(),
                        strict=True,
                    ),
                )
        return prepared.height

    def read(self, view: str, keys: Sequence[str], features: Sequence[str]) -> list[StoredRow]:
        conn = self._conn()
        found: dict[str, tuple[str, float]] = {}
        for start in range(0, len(keys), 500):
            part = list(keys[start : start + 500])
            marks = ",".join("?" * len(part))
            for key, values, t in conn.execute(
                "SELECT entity_key, feature_values, event_time FROM online_features "
                f"WHERE view = ? AND entity_key IN ({marks})",
                [view, *part],
            ):
                found[key] = (values, t)
        out: list[StoredRow] = []
        for key in keys:
            hit = found.get(key)
            if hit is None:
                out.append(None)
                continue
            values = orjson.loads(hit[0])
            out.append(({f: values.get(f) for f in features}, float(hit[1])))
        return out

    def watermark(self, view: str) -> float | None:
        row = (
            self._conn()
            .execute("SELECT watermark FROM online_watermarks WHERE view = ?", (view,))
            .fetchone()
        )
        return None if row is None else float(row[0])

    def set_watermark(self, view: str, value: float) -> None:
        with self._conn() as conn:
            conn.execute(
                "INSERT INTO online_watermarks (view, watermark) VALUES (?, ?) "
                "ON CONFLICT (view) DO UPDATE SET watermark = excluded.watermark",
                (view, value),
            )

    def clear(self, view: str) -> None:
        with self._conn() as conn:
            conn.execute("DELETE FROM online_features WHERE view = ?", (view,))
            conn.execute("DELETE FROM online_watermarks WHERE view = ?", (view,))

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
