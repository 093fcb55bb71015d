"""BLAKE3 content digests, computed in a streaming fashion.

A digest is written ``blake3:<64 lowercase hex digits>``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import blake3

__all__ = [
    "CHUNK_SIZE",
    "Hasher",
    "buffer_size",
    "canonical_json",
    "digest_bytes",
    "digest_chunks",
    "digest_file",
    "digest_stream",
    "is_digest",
]

PREFIX = "blake3:"
CHUNK_SIZE = 8 * 1024 * 1024
_DIGEST_RE = re.compile(r"blake3:[0-9a-f]{64}")


class Hasher:
    """Incremental BLAKE3; large updates use every core."""

    def __init__(self) -> None:
        self._h = blake3.blake3(max_threads=blake3.blake3.AUTO)
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._h.update(data)
        self.size += len(data)

    def hexdigest(self) -> str:
        return PREFIX + self._h.hexdigest()


def is_digest(text: str) -> bool:
    return isinstance(text, str) and _DIGEST_RE.fullmatch(text) is not None


def digest_bytes(data: bytes) -> str:
    h = Hasher()
    h.update(data)
    return h.hexdigest()


def digest_chunks(chunks: Iterable[bytes]) -> str:
    h = Hasher()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()


def digest_stream(stream: BinaryIO, chunk_size: int = CHUNK_SIZE) -> tuple[str, int]:
    """Digest and size of everything left in ``stream``, read in chunks of ``chunk_size``
    bytes (a small file is best read with a buffer of its own size: zeroing an 8 MiB buffer
    costs more than hashing a few kilobytes)."""
    h = Hasher()
    buf = bytearray(max(1, chunk_size))
    view = memoryview(buf)
    while True:
        n = stream.readinto(view)  # type: ignore[attr-defined]
        if not n:
            break
        h.update(view[:n])
    return h.hexdigest(), h.size


def digest_file(path: str | Path) -> tuple[str, int]:
    """Digest and size of a local file, streamed."""
    with open(path, "rb", buffering=0) as f:
        return digest_stream(f, buffer_size(os.fstat(f.fileno()).st_size))


def buffer_size(file_size: int) -> int:
    """The read buffer for a file of ``file_size`` bytes: its size (plus one byte, so that
    the end is seen in one read) up to CHUNK_SIZE."""
    return min(CHUNK_SIZE, file_size + 1)


def canonical_json(value: Any) -> bytes:
    """Deterministic JSON bytes (sorted keys, no spaces) for hashing documents."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
