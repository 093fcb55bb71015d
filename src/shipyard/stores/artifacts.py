"""The artifact store: content-addressed blobs, keyed by their BLAKE3 digest.

Blob ``blake3:abcd…`` lives at ``<root>/blobs/ab/cd…``. Writes are streamed and land under a
temporary name that is renamed into place (on object stores a single PUT is already atomic), so
a killed process never leaves a partial blob under a real name. Every read re-computes the
digest; a mismatch raises :class:`~shipyard.errors.IntegrityError` naming the blob and its owner.

Two backends share this interface: a local folder (plain ``os`` calls, atomic ``rename``) and
any fsspec filesystem (``s3://bucket/prefix`` through s3fs, ``memory://`` in tests).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from shipyard._internal.hashing import CHUNK_SIZE, Hasher, buffer_size, digest_file, is_digest
from shipyard.errors import IntegrityError, InvalidInputError, MissingDependencyError

__all__ = ["ArtifactStore", "Blob", "BlobCheck"]

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Blob:
    """A stored blob: its digest and size in bytes."""

    digest: str
    size: int


@dataclass(frozen=True)
class BlobCheck:
    """The outcome of re-hashing one blob."""

    digest: str
    status: str  # "ok" | "corrupt" | "missing"
    actual: str | None = None


def _hex(digest: str) -> str:
    if not is_digest(digest):
        raise InvalidInputError(f"not a blob digest: {digest!r}")
    return digest.split(":", 1)[1]


def _copy_hashing(
    src: BinaryIO | io.RawIOBase,
    dst: BinaryIO,
    progress: Progress | None,
    buffer: int = CHUNK_SIZE,
) -> tuple[str, int]:
    h = Hasher()
    buf = bytearray(buffer)
    view = memoryview(buf)
    while True:
        n = src.readinto(view)  # type: ignore[union-attr]
        if not n:
            break
        h.update(view[:n])
        dst.write(view[:n])
        if progress:
            progress(n)
    return h.hexdigest(), h.size


def _read_only(path: str, flags: int) -> int:
    """An ``open`` opener creating the file read-only (0444): how blobs are kept."""
    return os.open(path, flags, 0o444)


def _corrupt(digest: str, actual: str, owner: str | None) -> IntegrityError:
    whose = f" of {owner}" if owner else ""
    return IntegrityError(
        f"blob {digest}{whose} is corrupted: its content hashes to {actual}; "
        "run `shipyard verify` to check the whole store",
        details={"digest": digest, "actual": actual, "owner": owner},
    )


def _missing(digest: str, owner: str | None) -> IntegrityError:
    whose = f" of {owner}" if owner else ""
    return IntegrityError(
        f"blob {digest}{whose} is missing from the artifact store; "
        "run `shipyard verify` to check the whole store",
        details={"digest": digest, "owner": owner},
    )


class _BlobReader(io.RawIOBase):
    """A stored blob open for reading. A blob that is gone raises the "missing from the
    artifact store" IntegrityError, whether the open or (on object stores, which may only
    notice on the first read) a later read finds it gone."""

    def __init__(self, opener: Callable[[], Any], digest: str, owner: str | None) -> None:
        super().__init__()
        self._digest, self._owner = digest, owner
        try:
            self._raw = opener()
        except FileNotFoundError:
            raise _missing(digest, owner) from None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            return int(self._raw.readinto(buffer) or 0)
        except FileNotFoundError:
            raise _missing(self._digest, self._owner) from None

    def read(self, size: int | None = -1) -> bytes:
        try:
            return bytes(self._raw.read(-1 if size is None else size))
        except FileNotFoundError:
            raise _missing(self._digest, self._owner) from None

    def close(self) -> None:
        try:
            if not self.closed:
                self._raw.close()
        finally:
            super().close()


class ArtifactStore:
    """Content-addressed blob storage over a local folder or an fsspec filesystem.

    >>> store = ArtifactStore("/tmp/artifacts")            # doctest: +SKIP
    >>> blob = store.put_file("data.parquet")              # doctest: +SKIP
    >>> with store.local_copy(blob.digest) as path: ...    # doctest: +SKIP
    """

    def __init__(self, uri: str, options: dict[str, Any] | None = None) -> None:
        self._prefix = uuid.uuid4().hex
        self._counter = itertools.count()
        self.uri = uri
        self.options = dict(options or {})
        if "://" in uri and not uri.startswith("file://"):
            protocol, _, path = uri.partition("://")
            self._fs = _filesystem(protocol, self.options)
            self._root = path.rstrip("/")
            self.is_local = False
        else:
            self._fs = None
            self._root = str(Path(uri.removeprefix("file://")).resolve())
            self._shards: set[str] = set()  # blob folders known to exist
            self._local_staging = Path(self._root, "tmp")
            self.is_local = True
            Path(self._root, "blobs").mkdir(parents=True, exist_ok=True)
            Path(self._root, "tmp").mkdir(parents=True, exist_ok=True)

    # -- layout -------------------------------------------------------------------------------

    def _key(self, digest: str) -> str:
        hx = _hex(digest)
        return f"{self._root}/blobs/{hx[:2]}/{hx[2:]}"

    def local_path(self, digest: str) -> Path | None:
        """Where a blob's file is (or would be) in a local store; None in an object store."""
        return Path(self._key(digest)) if self.is_local else None

    def staging_dir(self) -> Path:
        """A local folder for files about to be stored (same filesystem when local)."""
        if self.is_local:
            return self._local_staging
        return Path(tempfile.gettempdir())

    def new_staging_path(self, suffix: str = "") -> Path:
        return self.staging_dir() / f"{uuid.uuid4().hex}.part{suffix}"

    # -- writes -------------------------------------------------------------------------------

    def put_file(
        self, path: str | Path, *, move: bool = False, digest: str | None = None
    ) -> tuple[Blob, bool]:
        """Store a local file; returns the blob and whether it was new.

        With ``move=True`` the file is consumed (renamed into place when possible).
        ``digest`` may be passed when the caller has just computed it while writing the file.
        """
        path = Path(path)
        if digest is None:
            digest, size = digest_file(path)
        else:
            size = path.stat().st_size
        blob = Blob(digest, size)
        if self.refresh(digest):
            if move:
                path.unlink(missing_ok=True)
            return blob, False
        key = self._key(digest)
        if self.is_local:
            Path(key).parent.mkdir(parents=True, exist_ok=True)
            if move and path.parent == self.staging_dir():
                os.replace(path, key)
            else:
                tmp = self.new_staging_path()
                try:
                    shutil.copyfile(path, tmp)
                    os.replace(tmp, key)
                finally:
                    tmp.unlink(missing_ok=True)
                if move:
                    path.unlink(missing_ok=True)
            os.chmod(key, 0o444)
        else:
            assert self._fs is not None
            self._fs.put_file(str(path), key)  # one PUT: atomic on object stores
            if move:
                path.unlink(missing_ok=True)
        return blob, True

    def put_stream(
        self, stream: BinaryIO, *, progress: Progress | None = None
    ) -> tuple[Blob, bool]:
        """Store everything read from ``stream`` (hashing while writing a staging file)."""
        tmp = self.new_staging_path()
        try:
            with open(tmp, "wb") as out:
                digest, _ = _copy_hashing(stream, out, progress)
            return self.put_file(tmp, move=True, digest=digest)
        finally:
            tmp.unlink(missing_ok=True)

    def stage_file(self, path: str | Path) -> tuple[Blob, Path | None]:
        """Hash a local file and, unless its blob is already stored, copy it to a staging
        file in the same pass (the file is read once). Returns the blob and the staging
        file, which :meth:`put_staged` stores; None when the blob is present. Safe to call
        from several threads at once.

        Raises:
            OSError: the file cannot be read.
        """
        with open(path, "rb", buffering=0) as src:
            size = os.fstat(src.fileno()).st_size
            if size < CHUNK_SIZE:
                data = src.read()
                if len(data) == size:  # else it grew since: take the streaming path below
                    h = Hasher()
                    h.update(data)
                    blob = Blob(h.hexdigest(), size)
                    if self.exists(blob.digest):
                        return blob, None
                    tmp = self._staging_name()
                    try:
                        with open(tmp, "xb", opener=_read_only) as out:
                            out.write(data)
                    except BaseException:
                        tmp.unlink(missing_ok=True)
                        raise
                    return blob, tmp
                src.seek(0)
            tmp = self._staging_name()
            try:
                with open(tmp, "xb", opener=_read_only) as out:
                    digest, size = _copy_hashing(src, out, None, buffer_size(size))
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        if self.exists(digest):
            tmp.unlink(missing_ok=True)
            return Blob(digest, size), None
        return Blob(digest, size), tmp

    def _staging_name(self) -> Path:
        """A new staging path, cheaper than :meth:`new_staging_path` (one random prefix per
        store, then a counter) for the many files of a folder."""
        return self.staging_dir() / f"{self._prefix}-{next(self._counter)}.part"

    def put_staged(self, path: Path, digest: str) -> None:
        """Store a staging file made by :meth:`stage_file` under ``digest`` (consumed): on a
        local store a rename into place (an existing blob with this digest holds the same
        bytes, so replacing it is harmless, and the rename makes it new for ``gc``)."""
        if not self.is_local:
            self.put_file(path, move=True, digest=digest)
            return
        key = self._key(digest)
        shard = os.path.dirname(key)
        if shard not in self._shards:
            os.makedirs(shard, exist_ok=True)
            self._shards.add(shard)
        try:
            os.replace(path, key)  # read-only already (stage_file creates it so)
        except FileNotFoundError:
            if not path.exists():
                raise
            os.makedirs(shard, exist_ok=True)  # the folder went away since (gc)
            os.replace(path, key)

    def put_bytes(self, data: bytes) -> tuple[Blob, bool]:
        return self.put_stream(io.BytesIO(data))

    def delete(self, digest: str) -> None:
        key = self._key(digest)
        if self.is_local:
            with contextlib.suppress(FileNotFoundError):
                os.chmod(key, 0o644)
                os.unlink(key)
        else:
            assert self._fs is not None
            with contextlib.suppress(FileNotFoundError):
                self._fs.rm_file(key)

    def refresh(self, digest: str) -> bool:
        """Whether the blob is present; if it is, it counts as just written.

        A write that finds its content already stored calls this before committing the row
        that refers to it, so that ``shipyard gc``'s grace period covers a blob left behind
        by an interrupted write and being re-used now. Object stores cannot change a
        blob's age in place: there ``gc`` relies on re-checking the references of each blob
        right before deleting it.
        """
        key = self._key(digest)
        if not self.is_local:
            assert self._fs is not None
            return bool(self._fs.exists(key))
        try:
            os.utime(key)
        except FileNotFoundError:
            return False
        except PermissionError:  # a blob another user wrote: present, age unchanged
            return True
        return True

    # -- reads --------------------------------------------------------------------------------

    def exists(self, digest: str) -> bool:
        key = self._key(digest)
        if self.is_local:
            return os.path.exists(key)
        assert self._fs is not None
        return bool(self._fs.exists(key))

    def _open_raw(self, digest: str, owner: str | None) -> _BlobReader:
        """The blob open for reading; a missing blob raises IntegrityError (see _BlobReader)."""
        key = self._key(digest)
        if self.is_local:
            return _BlobReader(lambda: open(key, "rb"), digest, owner)
        fs = self._fs
        assert fs is not None
        return _BlobReader(lambda: fs.open(key, "rb", block_size=CHUNK_SIZE), digest, owner)

    def check(self, digest: str) -> BlobCheck:
        """Re-hash one blob."""
        try:
            with self._open_raw(digest, None) as f:
                h = Hasher()
                while chunk := f.read(CHUNK_SIZE):
                    h.update(chunk)
        except IntegrityError:
            return BlobCheck(digest, "missing")
        actual = h.hexdigest()
        return BlobCheck(digest, "ok" if actual == digest else "corrupt", actual)

    def read_bytes(self, digest: str, *, owner: str | None = None) -> bytes:
        """A small blob's content, verified."""
        with self._open_raw(digest, owner) as f:
            data = f.read()
        h = Hasher()
        h.update(data)
        if h.hexdigest() != digest:
            raise _corrupt(digest, h.hexdigest(), owner)
        return data

    @contextlib.contextmanager
    def local_copy(self, digest: str, *, owner: str | None = None) -> Iterator[Path]:
        """A verified local path to the blob's bytes, valid inside the ``with`` block.

        Local blobs are hashed in place; remote ones are downloaded to a temporary file while
        hashing. Raises IntegrityError when the bytes do not match the digest.
        """
        if self.is_local:
            result = self.check(digest)
            if result.status == "missing":
                raise _missing(digest, owner)
            if result.status == "corrupt":
                raise _corrupt(digest, result.actual or "?", owner)
            yield Path(self._key(digest))
            return
        tmp = Path(tempfile.mkdtemp(prefix="shipyard-")) / "blob"
        try:
            self.copy_to(digest, tmp, owner=owner)
            yield tmp
        finally:
            shutil.rmtree(tmp.parent, ignore_errors=True)

    def copy_to(
        self,
        digest: str,
        dest: str | Path,
        *,
        owner: str | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Write the blob to ``dest`` (temporary name, verified, then renamed).

        Raises:
            IntegrityError: the blob is missing or its bytes do not match its digest.
            InvalidInputError: ``dest`` cannot be written (e.g. its folder does not exist).
        """
        dest = Path(dest)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            with self._open_raw(digest, owner) as src:
                try:
                    out = open(tmp, "wb")  # noqa: SIM115 - closed by the `with out` below
                except FileNotFoundError:
                    raise InvalidInputError(
                        f"cannot write {dest}: the folder {dest.parent} does not exist"
                    ) from None
                except OSError as exc:
                    raise InvalidInputError(f"cannot write {dest}: {exc.strerror}") from None
                with out:
                    actual, _ = _copy_hashing(src, out, progress)
            if actual != digest:
                raise _corrupt(digest, actual, owner)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def iter_digests(self) -> Iterator[str]:
        """Every blob present in the store."""
        if self.is_local:
            base = Path(self._root, "blobs")
            for shard in sorted(base.iterdir()) if base.exists() else []:
                if shard.is_dir():
                    for f in sorted(shard.iterdir()):
                        yield f"blake3:{shard.name}{f.name}"
            return
        assert self._fs is not None
        prefix = f"{self._root}/blobs"
        try:
            keys = self._fs.find(prefix)
        except FileNotFoundError:
            return
        for key in sorted(keys):
            rel = str(key).split("/blobs/", 1)[-1]
            head, _, rest = rel.partition("/")
            if len(head) == 2 and rest:
                yield f"blake3:{head}{rest}"

    def size(self, digest: str) -> int:
        """The blob's size in bytes."""
        key = self._key(digest)
        if self.is_local:
            return os.stat(key).st_size
        assert self._fs is not None
        return int(self._fs.size(key))

    def age_seconds(self, digest: str) -> float:
        """Seconds since the blob was written."""
        import time

        key = self._key(digest)
        if self.is_local:
            return time.time() - os.stat(key).st_mtime
        assert self._fs is not None
        modified = self._fs.modified(key)
        return time.time() - modified.timestamp()  # type: ignore[no-any-return]

    def clean_staging(self, older_than_seconds: float = 3600.0) -> int:
        """Remove staging files left by killed processes; returns how many."""
        if not self.is_local:
            return 0
        import time

        removed = 0
        cutoff = time.time() - older_than_seconds
        for f in Path(self._root, "tmp").glob("*.part*"):
            with contextlib.suppress(FileNotFoundError):
                if f.stat().st_mtime < cutoff:
                    f.unlink()
                    removed += 1
        return removed


def _filesystem(protocol: str, options: dict[str, Any]) -> Any:
    if protocol in ("s3", "s3a"):
        try:
            import s3fs  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError.for_extra("s3fs", "s3", "an S3 artifact store") from exc
        # Blobs may be written or deleted by other processes: never trust a cached listing.
        opts = {"use_listings_cache": False, **options}
        endpoint = os.environ.get("SHIPYARD_S3_ENDPOINT_URL")
        if endpoint:
            opts.setdefault("client_kwargs", {}).setdefault("endpoint_url", endpoint)
        protocol = "s3"
    else:
        opts = dict(options)
    import fsspec

    try:
        return fsspec.filesystem(protocol, **opts)
    except (ValueError, ImportError) as exc:
        raise InvalidInputError(f"cannot open artifact store protocol {protocol!r}: {exc}") from exc
