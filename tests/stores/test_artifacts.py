"""The artifact store: content-addressed blobs, verified on every read, on a local folder,
an in-memory fsspec filesystem and S3 (moto)."""

from __future__ import annotations

import io
import os
import tempfile
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shipyard._internal.hashing import digest_bytes, digest_chunks
from shipyard.errors import IntegrityError, InvalidInputError
from shipyard.stores.artifacts import ArtifactStore, Blob

OWNER = "dataset 'credit@3'"


@dataclass
class StoreUnderTest:
    """A store plus out-of-band access to its bytes, as another process or disk rot would."""

    kind: str
    store: ArtifactStore
    overwrite: Callable[[str, bytes], None]
    remove: Callable[[str], None]

    def corrupt(self, digest: str, original: bytes) -> None:
        data = bytearray(original)
        data[len(data) // 2] ^= 0xFF
        self.overwrite(digest, bytes(data))


def _rel_key(digest: str) -> str:
    hx = digest.split(":", 1)[1]
    return f"blobs/{hx[:2]}/{hx[2:]}"


@pytest.fixture(params=["local", "memory", pytest.param("s3", marks=pytest.mark.s3)])
def sut(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[StoreUnderTest]:
    """The same store contract on three backends; remote stores stage in a private temp dir."""
    if request.param == "local":
        root = tmp_path / "artifacts"
        store = ArtifactStore(str(root))

        def overwrite(digest: str, data: bytes) -> None:
            path = root / _rel_key(digest)
            path.chmod(0o644)  # blobs are stored read-only
            path.write_bytes(data)

        def remove(digest: str) -> None:
            (root / _rel_key(digest)).unlink()

        yield StoreUnderTest("local", store, overwrite, remove)
        return
    # Remote stores stage uploads in the system temp folder: give this test its own.
    systmp = tmp_path / "systmp"
    systmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(systmp))
    if request.param == "memory":
        import fsspec

        fs = fsspec.filesystem("memory")
        prefix = f"shipyard-{uuid.uuid4().hex}"
        store = ArtifactStore(f"memory://{prefix}")
        yield StoreUnderTest(
            "memory",
            store,
            lambda d, data: fs.pipe_file(f"{prefix}/{_rel_key(d)}", data),
            lambda d: fs.rm_file(f"{prefix}/{_rel_key(d)}"),
        )
        if fs.exists(prefix):
            fs.rm(prefix, recursive=True)
        return
    s3_uri: str = request.getfixturevalue("s3_uri")
    client: Any = request.getfixturevalue("s3_client")
    bucket, _, prefix = s3_uri.removeprefix("s3://").partition("/")
    store = ArtifactStore(s3_uri)
    yield StoreUnderTest(
        "s3",
        store,
        lambda d, data: client.put_object(Bucket=bucket, Key=f"{prefix}/{_rel_key(d)}", Body=data),
        lambda d: client.delete_object(Bucket=bucket, Key=f"{prefix}/{_rel_key(d)}"),
    )


def _staging_files(store: ArtifactStore) -> list[str]:
    return sorted(p.name for p in store.staging_dir().iterdir())


def test_put_bytes_stores_content_under_its_digest(sut: StoreUnderTest) -> None:
    """A stored blob is keyed by the digest of its bytes and reads back identical."""
    data = b"hello shipyard\n" * 100
    blob, created = sut.store.put_bytes(data)
    assert blob == Blob(digest_bytes(data), len(data))
    assert created
    assert sut.store.exists(blob.digest)
    assert sut.store.read_bytes(blob.digest) == data


def test_identical_content_is_stored_once(sut: StoreUnderTest, tmp_path: Path) -> None:
    """Bytes, a stream and a file with the same content are one blob, stored once."""
    data = os.urandom(10_000)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    first, created_first = sut.store.put_bytes(data)
    second, created_second = sut.store.put_stream(io.BytesIO(data))
    third, created_third = sut.store.put_file(src)
    assert first == second == third
    assert (created_first, created_second, created_third) == (True, False, False)
    assert list(sut.store.iter_digests()) == [first.digest]
    assert src.read_bytes() == data  # a plain put leaves the source alone


def test_put_file_with_move_consumes_the_source(sut: StoreUnderTest, tmp_path: Path) -> None:
    """``put_file(move=True)`` stores the file and removes the original."""
    src = tmp_path / "model.bin"
    src.write_bytes(b"weights" * 1000)
    blob, created = sut.store.put_file(src, move=True)
    assert created
    assert not src.exists()
    assert sut.store.read_bytes(blob.digest) == b"weights" * 1000


def test_empty_blob(sut: StoreUnderTest) -> None:
    """Zero bytes are a valid blob."""
    blob, _ = sut.store.put_bytes(b"")
    assert blob.size == 0
    assert sut.store.read_bytes(blob.digest) == b""


def test_iter_digests_lists_every_blob(sut: StoreUnderTest) -> None:
    """``iter_digests`` yields every stored blob once, in digest order."""
    assert list(sut.store.iter_digests()) == []
    digests = {sut.store.put_bytes(f"blob {i}".encode())[0].digest for i in range(5)}
    assert list(sut.store.iter_digests()) == sorted(digests)


def test_copy_to_writes_the_bytes(sut: StoreUnderTest, tmp_path: Path) -> None:
    """``copy_to`` writes the blob to a local path and reports progress in bytes."""
    data = os.urandom(50_000)
    blob, _ = sut.store.put_bytes(data)
    dest = tmp_path / "out" / "copy.bin"
    dest.parent.mkdir()
    seen: list[int] = []
    sut.store.copy_to(blob.digest, dest, progress=seen.append)
    assert dest.read_bytes() == data
    assert sum(seen) == len(data)
    assert [p.name for p in dest.parent.iterdir()] == ["copy.bin"]


def test_copy_to_a_missing_folder_names_the_destination(
    sut: StoreUnderTest, tmp_path: Path
) -> None:
    """Copying an intact blob into a folder that does not exist is the caller's mistake: an
    InvalidInputError naming the destination, not a claim that the blob is missing."""
    blob, _ = sut.store.put_bytes(b"intact")
    dest = tmp_path / "no" / "such" / "dir" / "x.bin"
    with pytest.raises(InvalidInputError) as info:
        sut.store.copy_to(blob.digest, dest)
    assert str(dest) in info.value.message
    assert "does not exist" in info.value.message
    assert "missing from the artifact store" not in info.value.message
    assert sut.store.check(blob.digest).status == "ok"


def test_local_copy_gives_a_readable_path(sut: StoreUnderTest) -> None:
    """``local_copy`` yields a local file holding the blob, valid inside the block."""
    data = os.urandom(20_000)
    blob, _ = sut.store.put_bytes(data)
    with sut.store.local_copy(blob.digest) as path:
        assert Path(path).read_bytes() == data


def test_delete_removes_a_blob(sut: StoreUnderTest) -> None:
    """A deleted blob no longer exists; deleting it again is harmless."""
    blob, _ = sut.store.put_bytes(b"short-lived")
    keep, _ = sut.store.put_bytes(b"kept")
    sut.store.delete(blob.digest)
    assert not sut.store.exists(blob.digest)
    assert list(sut.store.iter_digests()) == [keep.digest]
    sut.store.delete(blob.digest)


def test_nothing_is_left_in_staging(sut: StoreUnderTest, tmp_path: Path) -> None:
    """After puts of every kind the staging folder is empty again."""
    src = tmp_path / "f.bin"
    src.write_bytes(b"file content")
    before = _staging_files(sut.store)
    sut.store.put_bytes(b"bytes content")
    sut.store.put_stream(io.BytesIO(b"stream content"))
    sut.store.put_file(src)
    sut.store.put_bytes(b"bytes content")  # a duplicate
    assert _staging_files(sut.store) == before


def test_check_reports_ok_corrupt_and_missing(sut: StoreUnderTest) -> None:
    """``check`` re-hashes a blob and says whether it is intact, corrupted or gone."""
    data = b"precious" * 500
    good, _ = sut.store.put_bytes(data)
    assert sut.store.check(good.digest).status == "ok"
    sut.corrupt(good.digest, data)
    result = sut.store.check(good.digest)
    assert result.status == "corrupt"
    assert result.actual is not None and result.actual != good.digest
    sut.remove(good.digest)
    assert sut.store.check(good.digest).status == "missing"


@pytest.mark.parametrize("read", ["read_bytes", "copy_to", "local_copy"])
def test_corrupted_blob_raises_integrity_error(
    sut: StoreUnderTest, tmp_path: Path, read: str
) -> None:
    """Reading a blob whose bytes changed raises IntegrityError naming the blob and its owner,
    and hands out no bytes."""
    data = os.urandom(30_000)
    blob, _ = sut.store.put_bytes(data)
    sut.corrupt(blob.digest, data)
    dest = tmp_path / "dest.bin"
    with pytest.raises(IntegrityError) as info:
        if read == "read_bytes":
            sut.store.read_bytes(blob.digest, owner=OWNER)
        elif read == "copy_to":
            sut.store.copy_to(blob.digest, dest, owner=OWNER)
        else:
            with sut.store.local_copy(blob.digest, owner=OWNER):
                pytest.fail("local_copy handed out a corrupted blob")
    message = info.value.message
    assert blob.digest in message
    assert OWNER in message
    assert "corrupted" in message
    assert info.value.details["owner"] == OWNER
    assert info.value.exit_code == 3
    assert list(tmp_path.glob("*dest.bin*")) == []


@pytest.mark.parametrize("read", ["read_bytes", "copy_to", "local_copy"])
def test_missing_blob_raises_integrity_error(
    sut: StoreUnderTest, tmp_path: Path, read: str
) -> None:
    """Reading a blob that vanished raises IntegrityError saying it is missing, with owner."""
    blob, _ = sut.store.put_bytes(b"soon gone")
    sut.remove(blob.digest)
    with pytest.raises(IntegrityError, match="is missing from the artifact store") as info:
        if read == "read_bytes":
            sut.store.read_bytes(blob.digest, owner=OWNER)
        elif read == "copy_to":
            sut.store.copy_to(blob.digest, tmp_path / "dest.bin", owner=OWNER)
        else:
            with sut.store.local_copy(blob.digest, owner=OWNER):
                pass
    assert blob.digest in info.value.message
    assert OWNER in info.value.message


def test_malformed_digest_is_invalid_input(sut: StoreUnderTest) -> None:
    """A string that is not a digest is rejected before touching the store."""
    with pytest.raises(InvalidInputError, match="not a blob digest"):
        sut.store.exists("blake3:not-hex")
    with pytest.raises(InvalidInputError):
        sut.store.read_bytes("../../etc/passwd")


class _PatternStream(io.RawIOBase):
    """``size`` bytes of a repeating pattern, produced on demand (never held whole)."""

    def __init__(self, size: int, block: bytes) -> None:
        self.remaining = size
        self.block = block

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = 0
        while n < len(view) and self.remaining:
            take = min(len(view) - n, len(self.block), self.remaining)
            view[n : n + take] = self.block[:take]
            n += take
            self.remaining -= take
        return n

    def chunks(self, size: int) -> Iterator[bytes]:
        while size:
            take = min(size, len(self.block))
            yield self.block[:take]
            size -= take


def test_streamed_put_does_not_hold_the_stream_in_memory(tmp_path: Path) -> None:
    """Storing a 64 MiB stream keeps Python memory well below the stream's size."""
    size = 64 * 1024 * 1024
    block = os.urandom(1024 * 1024)
    expected = digest_chunks(_PatternStream(size, block).chunks(size))
    store = ArtifactStore(str(tmp_path / "artifacts"))
    stream = _PatternStream(size, block)
    tracemalloc.start()
    try:
        blob, created = store.put_stream(stream)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert created
    assert blob == Blob(expected, size)
    assert peak < 32 * 1024 * 1024, f"peak Python memory {peak / 2**20:.1f} MiB"
    assert _staging_files(store) == []


def test_local_blobs_are_read_only(tmp_path: Path) -> None:
    """Local blobs are stored read-only, so a stray write cannot change them in place."""
    store = ArtifactStore(str(tmp_path / "artifacts"))
    blob, _ = store.put_bytes(b"immutable")
    path = tmp_path / "artifacts" / _rel_key(blob.digest)
    assert path.stat().st_mode & 0o222 == 0


def test_clean_staging_removes_only_old_leftovers(tmp_path: Path) -> None:
    """``clean_staging`` deletes staging files left by killed processes, not fresh ones."""
    store = ArtifactStore(str(tmp_path / "artifacts"))
    old = store.new_staging_path()
    old.write_bytes(b"left by a crash")
    os.utime(old, (0, 0))
    fresh = store.new_staging_path()
    fresh.write_bytes(b"being written")
    assert store.clean_staging(older_than_seconds=3600) == 1
    assert not old.exists() and fresh.exists()


def test_unknown_protocol_is_invalid_input() -> None:
    """An artifact URI with an unknown protocol raises InvalidInputError naming it."""
    with pytest.raises(InvalidInputError, match="nosuchfs"):
        ArtifactStore("nosuchfs://bucket/prefix")


@pytest.mark.s3
def test_s3_sees_blobs_deleted_by_another_process(s3_uri: str, s3_client: Any) -> None:
    """A blob removed by another process is reported missing and is uploaded again on put."""
    store = ArtifactStore(s3_uri)
    bucket, _, prefix = s3_uri.removeprefix("s3://").partition("/")
    blob, _ = store.put_bytes(b"shared blob")
    assert list(store.iter_digests()) == [blob.digest]
    s3_client.delete_object(Bucket=bucket, Key=f"{prefix}/{_rel_key(blob.digest)}")
    assert not store.exists(blob.digest)
    with pytest.raises(IntegrityError, match="missing"):
        store.read_bytes(blob.digest)
    _, created = store.put_bytes(b"shared blob")
    assert created
    assert store.read_bytes(blob.digest) == b"shared blob"


@pytest.mark.parametrize("size", [0, 5_000, 9 * 1024 * 1024], ids=["empty", "small", "9MiB"])
def test_a_staged_file_is_stored_once_and_its_staging_copy_consumed(
    sut: StoreUnderTest, tmp_path: Path, size: int
) -> None:
    """``stage_file`` hashes a file while copying it to staging; ``put_staged`` stores that
    copy under its digest. A file whose blob is already stored is only hashed: no copy."""
    data = os.urandom(size)
    src = tmp_path / "input.bin"
    src.write_bytes(data)
    blob, staged = sut.store.stage_file(src)
    assert blob == Blob(digest_bytes(data), size)
    assert staged is not None and staged.read_bytes() == data
    sut.store.put_staged(staged, blob.digest)
    assert not staged.exists()
    assert sut.store.read_bytes(blob.digest) == data
    again, none = sut.store.stage_file(src)
    assert (again, none) == (blob, None)
    assert _staging_files(sut.store) == []
    assert src.read_bytes() == data  # the source is left alone
