"""BLAKE3 content digests: streaming equals one-shot, whatever the chunking."""

from __future__ import annotations

import io
import itertools
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard._internal.hashing import (
    Hasher,
    canonical_json,
    digest_bytes,
    digest_chunks,
    digest_file,
    digest_stream,
    is_digest,
)
from shipyard.stores.artifacts import ArtifactStore

payloads = st.binary(max_size=4096)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@given(payloads, st.lists(st.integers(min_value=0), max_size=12))
def test_digest_is_independent_of_chunking(data: bytes, cuts: list[int]) -> None:
    """The digest of bytes equals the digest of the same bytes fed in any chunking."""
    chunks = _split(data, cuts)
    assert b"".join(chunks) == data
    assert digest_chunks(chunks) == digest_bytes(data)


@given(payloads, st.integers(min_value=1, max_value=5000))
def test_stream_digest_equals_bytes_digest(data: bytes, chunk_size: int) -> None:
    """Reading a stream in chunks of any size gives the digest and size of its bytes."""
    assert digest_stream(io.BytesIO(data), chunk_size=chunk_size) == (
        digest_bytes(data),
        len(data),
    )


@given(payloads)
def test_hasher_counts_bytes(data: bytes) -> None:
    """The incremental hasher reports how many bytes it has seen."""
    h = Hasher()
    h.update(data)
    h.update(memoryview(data))
    assert h.size == 2 * len(data)
    assert h.hexdigest() == digest_bytes(data + data)


@given(payloads)
def test_digests_are_well_formed(data: bytes) -> None:
    """Every digest is ``blake3:`` followed by 64 lowercase hex digits."""
    digest = digest_bytes(data)
    assert is_digest(digest)
    assert digest.startswith("blake3:") and len(digest) == 7 + 64


def test_digest_of_known_input() -> None:
    """The digest is BLAKE3 itself (known-answer test for the empty input)."""
    assert digest_bytes(b"") == (
        "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "blake3:",
        "blake3:" + "a" * 63,
        "blake3:" + "a" * 65,
        "blake3:" + "A" * 64,
        "sha256:" + "a" * 64,
        "a" * 64,
        "blake3:" + "g" * 64,
    ],
)
def test_is_digest_rejects_malformed_digests(text: str) -> None:
    """Wrong prefix, wrong length, upper case or non-hex digits are not digests."""
    assert not is_digest(text)


def test_is_digest_rejects_trailing_newline() -> None:
    """A digest followed by a newline is not a digest."""
    assert not is_digest(digest_bytes(b"x") + "\n")


def test_file_digest_equals_bytes_digest(tmp_path: Path) -> None:
    """Digesting a file gives the digest and size of its content."""
    data = bytes(range(256)) * 1000
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert digest_file(path) == (digest_bytes(data), len(data))


@given(
    st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=8),
    st.randoms(use_true_random=False),
)
def test_canonical_json_ignores_key_order(doc: dict[str, object], rnd: object) -> None:
    """Documents with the same content hash the same whatever their key order."""
    items = list(doc.items())
    rnd.shuffle(items)  # type: ignore[attr-defined]
    assert canonical_json(dict(items)) == canonical_json(doc)


@pytest.fixture(scope="module", params=["local", "memory"])
def hashing_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> ArtifactStore:
    """One artifact store shared by the examples of a property test."""
    if request.param == "local":
        return ArtifactStore(str(tmp_path_factory.mktemp("artifacts")))
    return ArtifactStore(f"memory://hashing-{uuid.uuid4().hex}")


@settings(max_examples=30, deadline=None)
@given(data=payloads)
def test_store_digest_equals_digest_bytes(hashing_store: ArtifactStore, data: bytes) -> None:
    """Storing bytes, or a stream of them, keys the blob by ``digest_bytes`` of the content."""
    blob, _ = hashing_store.put_bytes(data)
    assert blob.digest == digest_bytes(data)
    assert blob.size == len(data)
    streamed, created = hashing_store.put_stream(io.BytesIO(data))
    assert streamed == blob
    assert not created
