"""Online stores: the latest feature values per entity, for serving.

Two implementations of :class:`OnlineStore`: SQLite (``sqlite.py``, one table in
``.shipyard/online.db``, the embedded default) and Redis (``redis.py``, one hash per view and
entity, used when ``redis_url`` is configured). :func:`open_online_store` picks by settings.

Values are kept per view and entity key as the features' values and the event time they were
observed at; the store knows nothing of TTLs (the service judges freshness when it reads).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import polars as pl

    from shipyard.config import Settings

__all__ = ["OnlineStore", "StoredRow", "entity_key", "open_online_store"]

# What a read returns per entity key: the feature values (name -> value) and the event time in
# seconds since the epoch; None when the store holds nothing for that key.
StoredRow = tuple[dict[str, Any], float] | None

_SEP = "\x1f"


def entity_key(values: Sequence[Any]) -> str:
    """The store key of an entity from its join-key values, in the view's key order: the same
    for ``42`` and ``"42"`` (a request's values arrive as text)."""
    return _SEP.join("" if v is None else str(v) for v in values)


class OnlineStore(Protocol):
    """Where materialized feature values live."""

    kind: str

    def write(self, view: str, keys: Sequence[str], frame: pl.DataFrame) -> int:
        """Upsert one row per entity: ``keys`` names the join-key columns of ``frame``,
        ``event_time`` its UTC event times, every other column a feature; returns the rows
        written."""
        ...

    def read(self, view: str, keys: Sequence[str], features: Sequence[str]) -> list[StoredRow]:
        """The stored values of ``features`` for each entity key, in order."""
        ...

    def watermark(self, view: str) -> float | None:
        """The latest event time materialized for ``view`` (seconds since the epoch)."""
        ...

    def set_watermark(self, view: str, value: float) -> None: ...

    def clear(self, view: str) -> None:
        """Forget every value of ``view`` (before a full materialization)."""
        ...

    def close(self) -> None: ...


def open_online_store(settings: Settings) -> OnlineStore:
    """Redis when the project configures ``redis_url`` (``[store] redis_url`` or
    ``SHIPYARD_REDIS_URL``), else SQLite in ``.shipyard/online.db``.

    Raises:
        MissingDependencyError: Redis is configured and the ``redis`` extra is missing.
    """
    if settings.redis_url:
        from shipyard.features.online.redis import RedisOnlineStore

        return RedisOnlineStore(settings.redis_url, prefix=_prefix(settings))
    from shipyard.features.online.sqlite import SqliteOnlineStore

    return SqliteOnlineStore(settings.state_dir / "online.db")


def _prefix(settings: Settings) -> str:
    """Keys of one project: its name and a digest of its metadata database, so two projects
    on one Redis never share values."""
    from shipyard._internal.hashing import digest_bytes

    db = digest_bytes(settings.db_url.encode()).split(":")[-1][:12]
    return f"shipyard:{settings.name}:{db}:"
