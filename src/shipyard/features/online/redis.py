"""The team online store: one Redis hash per feature view and entity
(``<prefix>fv:<view>:<entity key>``), a field per feature holding its JSON value and
``__event_time`` the event time; ``<prefix>wm:<view>`` is the view's watermark.

Needs the ``redis`` extra (``pip install 'shipyard[redis]'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from shipyard.errors import MissingDependencyError
from shipyard.features.online import StoredRow

if TYPE_CHECKING:
    import polars as pl

__all__ = ["RedisOnlineStore"]

_TIME = "__event_time"
_BATCH = 5_000


class RedisOnlineStore:
    """Online values in Redis hashes (see the module docstring)."""

    kind = "redis"

    def __init__(self, url: str, *, prefix: str) -> None:
        try:
            import redis
        except ImportError:
            raise MissingDependencyError(
                "the online store is configured on Redis (redis_url), which needs the redis "
                "extra: pip install 'shipyard[redis]'"
            ) from None
        self.prefix = prefix
        self._client: Any = redis.Redis.from_url(url)

    def _key(self, view: str, key: str) -> str:
        return f"{self.prefix}fv:{view}:{key}"

    def write(self, view: str, keys: Sequence[str], frame: pl.DataFrame) -> int:
        import polars as pl

        features = [c for c in frame.columns if c not in keys and c != "event_time"]
        prepared = frame.select(
            pl.concat_str(
                [pl.col(k).cast(pl.String).fill_null("") for k in keys], separator="\x1f"
            ).alias("__key"),
            (pl.col("event_time").dt.epoch("us") / 1_000_000).alias("__t"),
            *features,
        )
        for start in range(0, prepared.height, _BATCH):
            pipe = self._client.pipeline(transaction=False)
            for row in prepared.slice(start, _BATCH).iter_rows():
                mapping = {f: orjson.dumps(v) for f, v in zip(features, row[2:], strict=True)}
                mapping[_TIME] = repr(float(row[1])).encode()
                pipe.hset(self._key(view, row[0]), mapping=mapping)
            pipe.execute()
        return prepared.height

    def read(self, view: str, keys: Sequence[str], features: Sequence[str]) -> list[StoredRow]:
        fields = [*features, _TIME]
        if len(keys) == 1:
            answers = [self._client.hmget(self._key(view, keys[0]), fields)]
        else:
            pipe = self._client.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(self._key(view, key), fields)
            answers = pipe.execute()
        out: list[StoredRow] = []
        for values in answers:
            if values[-1] is None:
                out.append(None)
                continue
            out.append(
                (
                    {
                        f: None if v is None else orjson.loads(v)
                        for f, v in zip(features, values, strict=False)
                    },
                    float(values[-1]),
                )
            )
        return out

    def watermark(self, view: str) -> float | None:
        value = self._client.get(f"{self.prefix}wm:{view}")
        return None if value is None else float(value)

    def set_watermark(self, view: str, value: float) -> None:
        self._client.set(f"{self.prefix}wm:{view}", repr(float(value)))

    def clear(self, view: str) -> None:
        batch: list[Any] = []
        for key in self._client.scan_iter(match=f"{self.prefix}fv:{view}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                self._client.delete(*batch)
                batch.clear()
        if batch:
            self._client.delete(*batch)
        self._client.delete(f"{self.prefix}wm:{view}")

    def close(self) -> None:
        self._client.close()
