"""Previews of a run's artifacts on its page: the start of a text file, the first rows of a
CSV or Parquet file, or an image (shown from the artifact route). Each preview reads a
bounded number of bytes through the artifact tree, which verifies them against their digest.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

__all__ = ["IMAGE_TYPES", "Preview", "preview_of"]

TEXT_SUFFIXES = frozenset(
    {".txt", ".md", ".log", ".json", ".yaml", ".yml", ".py", ".toml", ".cfg", ".ini", ".html"}
)
TABLE_SUFFIXES = frozenset({".csv", ".tsv", ".parquet"})
#: Images shown inline, by suffix; anything else (SVG included: it can carry script) is only
#: ever sent as a download.
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
TEXT_BYTES = 8_000
CSV_BYTES = 256_000
PARQUET_MAX_BYTES = 32_000_000
ROWS = 10


@dataclass(frozen=True)
class Preview:
    """What a page shows for one artifact: ``kind`` is text, table, image or none."""

    path: str
    kind: str
    text: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    note: str = ""


def _take(chunks: Iterable[bytes], limit: int) -> bytes:
    out = bytearray()
    it: Iterator[bytes] = iter(chunks)
    for chunk in it:
        out += chunk
        if len(out) >= limit:
            break
    close = getattr(it, "close", None)
    if close is not None:
        close()  # stop reading the blob
    return bytes(out[:limit])


def preview_of(path: str, size: int, chunks: Iterable[bytes]) -> Preview:
    """The preview of the artifact at ``path`` (``size`` bytes), read from ``chunks`` only
    as far as it needs."""
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in IMAGE_TYPES:
        return Preview(path, "image")
    if suffix in TEXT_SUFFIXES:
        data = _take(chunks, TEXT_BYTES)
        note = f"the first {TEXT_BYTES:,} of {size:,} bytes" if size > TEXT_BYTES else ""
        return Preview(path, "text", text=data.decode("utf-8", errors="replace"), note=note)
    if suffix in (".csv", ".tsv"):
        import polars as pl

        data = _take(chunks, CSV_BYTES)
        if len(data) < size:  # cut at the last whole line
            data = data[: data.rfind(b"\n") + 1]
        try:
            frame = pl.read_csv(
                io.BytesIO(data), separator="\t" if suffix == ".tsv" else ",", n_rows=ROWS
            )
        except Exception as e:  # a malformed file is shown as such, not as a failed page
            return Preview(path, "none", note=f"not readable as {suffix[1:]}: {e}")
        return Preview(path, "table", columns=frame.columns, rows=frame.rows())
    if suffix == ".parquet":
        if size > PARQUET_MAX_BYTES:
            return Preview(path, "none", note="too large to preview here; download it")
        import polars as pl

        try:
            frame = pl.read_parquet(io.BytesIO(_take(chunks, size)), n_rows=ROWS)
        except Exception as e:
            return Preview(path, "none", note=f"not readable as parquet: {e}")
        return Preview(path, "table", columns=frame.columns, rows=frame.rows())
    return Preview(path, "none")
