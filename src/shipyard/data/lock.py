"""``shipyard.lock``: the exact versions of the datasets, contracts and models a project's code
uses, in a text file committed with the code.

A pin records the reference as it was asked (``credit.train`` means its latest version,
``credit-risk@production`` the alias holder) and what it meant when locked: version number and
digest, and for a dataset the path ``checkout`` writes it to. So ``git checkout <old commit>
&& shipyard checkout`` gives the data that commit was written against, and ``status`` says
which references the registry now resolves differently.

>>> project.locks.lock(["credit.train", "credit-risk@production"])  # doctest: +SKIP
>>> project.locks.checkout()                                       # doctest: +SKIP

The file is TOML, one ``[[dataset]]`` / ``[[contract]]`` / ``[[model]]`` table per pin,
sorted by kind and name, so that a change reads as a short diff in review. It is read with
the standard library's ``tomllib``; writing it takes a dozen lines here (strings, integers
and a fixed layout) instead of a dependency on a TOML writer.
"""

from __future__ import annotations

import builtins
import json
import os
import shutil
import tomllib
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select

from shipyard._internal.encode import ReadModel
from shipyard._internal.files import write_text_atomic
from shipyard._internal.hashing import digest_bytes, digest_file
from shipyard.config import STATE_DIR
from shipyard.errors import ConflictError, IntegrityError, InvalidInputError, NotFoundError
from shipyard.refs import parse_ref
from shipyard.stores.db.tables import contracts, datasets, registered_models

if TYPE_CHECKING:
    from shipyard.context import ServiceContext
    from shipyard.data.contract_registry import Contracts
    from shipyard.data.datasets import Datasets
    from shipyard.registry.models import Models

__all__ = [
    "LOCK_FILE",
    "LOCK_TAG",
    "CheckedOut",
    "LockFile",
    "LockedInputs",
    "Locks",
    "Pin",
    "PinStatus",
    "lock_digest",
]

LOCK_FILE = "shipyard.lock"
#: Seconds to wait for another process that is changing the lock file.
LOCK_WAIT = 60.0
#: The run tag that records the digest of the project's lock file when the run started.
LOCK_TAG = "shipyard.lock_digest"
LOCK_FORMAT = 1
DATA_DIR = "data"
#: Selectors that name one version for good: only their pins can fall behind a newer one.
EXACT = ("version", "digest")
#: What a pipeline target given to ``lock`` ends with (before an optional ``:NAME``).
PIPELINE_SUFFIXES = (".py", ".yaml", ".yml")

Kind = Literal["dataset", "contract", "model"]
Workspace = Literal["ok", "missing", "other", "modified"]
KINDS: tuple[Kind, ...] = ("dataset", "contract", "model")
_HEADER = (
    "# shipyard.lock: the exact versions this code uses, written by `shipyard lock`.\n"
    "# Commit it with the code. `shipyard checkout` restores the pinned datasets (to `path`);\n"
    "# `shipyard status` lists the pins the registry now resolves differently.\n"
)


@dataclass(frozen=True)
class Pin(ReadModel):
    """One pinned reference: ``ref`` as asked, and the ``version`` and ``digest`` it meant.

    ``path`` (datasets only) is where ``checkout`` writes the version, relative to the
    project folder; ``data_kind`` is ``table`` or ``files`` (datasets only).
    """

    kind: Kind
    name: str
    ref: str
    version: int
    digest: str
    path: str | None = None
    data_kind: str | None = None

    @property
    def exact(self) -> str:
        """``name@version``: the pinned version, whatever ``ref`` means today."""
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class LockFile(ReadModel):
    """The lock file: where it is, its pins in file order and the digest of its bytes.

    As ``lock`` returns it, ``added`` names the pins the file did not hold before
    (``kind:name``) and ``changed`` the pins whose version moved (``kind:name`` to the
    versions before and after).
    """

    path: Path
    digest: str
    pins: tuple[Pin, ...]
    added: tuple[str, ...] = ()
    changed: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class PinStatus(ReadModel):
    """A pin compared with the registry and the working tree.

    ``state``: ``current`` (the reference still means the pinned version), ``newer`` (a pin
    to an exact version, ``NAME@3``, while a newer version exists),
    ``changed`` (the reference now means another version: ``shipyard lock`` would move it) or
    ``gone`` (the reference no longer resolves). ``workspace`` (datasets only): ``ok`` when
    the file at ``path`` holds the pinned bytes, ``missing``, ``other`` (another version of
    the dataset, which ``checkout`` replaces) or ``modified`` (content the registry does not
    know, which ``checkout`` replaces only with ``--force``).
    """

    pin: Pin
    state: Literal["current", "newer", "changed", "gone"]
    resolves_to: int | None
    latest: int | None
    workspace: Workspace | None = None

    @property
    def differs(self) -> bool:
        return self.state in ("changed", "gone")

    json_properties = ("differs",)


@dataclass(frozen=True)
class CheckedOut(ReadModel):
    """What ``checkout`` did with one dataset pin: ``written`` or ``unchanged`` (the file
    already held the pinned bytes)."""

    ref: str
    path: Path
    action: Literal["written", "unchanged"]


@dataclass(frozen=True)
class LockedInputs(ReadModel):
    """What a pipeline run did with the project's lock, per input (``kind:ref`` as the
    pipeline writes it, mapped to the exact ``name@version`` read).

    ``read``: pinned by the lock under the same reference, read at the pinned version.
    ``added``: not pinned yet, resolved now and added to the lock. ``replaced``: pinned
    under another reference (the code now asks for something else), resolved as the code
    asks and its pin replaced. ``unpinned``: a second reference to a name the run already
    pinned (the lock holds one pin per name), resolved now and not written. ``digest`` is the
    lock file's digest once the run's additions are written.
    """

    digest: str
    read: dict[str, str] = field(default_factory=dict)
    added: dict[str, str] = field(default_factory=dict)
    replaced: dict[str, str] = field(default_factory=dict)
    unpinned: dict[str, str] = field(default_factory=dict)
    pins: dict[str, Pin] = field(default_factory=dict, metadata={"json": "omit"})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LockedInputs:
        """Read back what :meth:`to_dict` wrote (a pipeline run's record; without pins)."""
        return cls(
            str(data.get("digest", "")),
            **{k: dict(data.get(k) or {}) for k in ("read", "added", "replaced", "unpinned")},
        )


def lock_digest(root: Path) -> str | None:
    """The digest of ``root/shipyard.lock`` (None when there is none): what a run records in
    its :data:`LOCK_TAG` tag, so that a model links to the data its commit pinned."""
    try:
        return digest_bytes((root / LOCK_FILE).read_bytes())
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


class Locks:
    """Service for the project's lock file: ``lock``, ``get``, ``status``, ``checkout``."""

    def __init__(
        self, ctx: ServiceContext, *, datasets: Datasets, contracts: Contracts, models: Models
    ) -> None:
        self._ctx = ctx
        self._datasets = datasets
        self._contracts = contracts
        self._models = models

    @property
    def path(self) -> Path:
        return self._ctx.settings.root / LOCK_FILE

    def get(self) -> LockFile:
        """The project's lock file, read.

        Raises:
            NotFoundError: the project has no ``shipyard.lock``.
            InvalidInputError: the file is not a lock file shipyard can read.
        """
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(
                f"{self.path} does not exist; pin what the code uses with `shipyard lock "
                "DATASET CONTRACT MODEL@ALIAS ...`"
            ) from None
        return LockFile(self.path, digest_bytes(data), _parse(data, self.path))

    def lock(self, refs: Sequence[str] = (), *, path: str | None = None) -> LockFile:
        """Pin ``refs`` (added to the pins already in the lock file; a name pinned again
        replaces its pin) and re-resolve every other pin; write the file.

        A reference is ``NAME[@SELECTOR]``, prefixed by ``dataset:``, ``contract:`` or
        ``model:`` when several kinds share the name. ``path`` sets where ``checkout``
        writes the one dataset named (default: the path already pinned, else
        ``data/NAME.parquet`` for a table and ``data/NAME/`` for a file tree).

        >>> project.locks.lock(["credit.train", "model:credit-risk@production"])  # doctest: +SKIP

        Raises:
            InvalidInputError: no reference and no lock file yet; ``path`` without exactly one
                dataset; a path outside the project; two datasets pinned to one path.
            NotFoundError: a reference names nothing, or a version that does not exist.
        """
        with self._exclusive():
            return self._lock(refs, path)

    def _lock(self, refs: Sequence[str], path: str | None) -> LockFile:
        existing = self.get().pins if self.path.exists() else ()
        if not refs and not existing:
            raise InvalidInputError(
                f"{self.path.name} does not exist yet; name what to pin: `shipyard lock "
                "DATASET CONTRACT MODEL@ALIAS ... | PIPELINE.py[:NAME]`"
            )
        asked: builtins.list[tuple[Kind, str]] = []
        for text in refs:
            target = _pipeline_target(text, self._ctx.settings.root)
            if target is not None:
                asked.extend(_pipeline_inputs(target))
            else:
                asked.append(self._kind_of(text))
        if path is not None and [k for k, _ in asked].count("dataset") != 1:
            raise InvalidInputError("--path applies to exactly one dataset; name one dataset")
        old_paths = {p.name: p.path for p in existing if p.kind == "dataset"}
        pins: dict[tuple[str, str], Pin] = {
            (p.kind, p.name): self._resolve(p.kind, p.ref, p.path) for p in existing
        }
        for kind, ref in asked:
            name = parse_ref(ref).name
            where = path if (kind == "dataset" and path is not None) else old_paths.get(name)
            pins[(kind, name)] = self._resolve(kind, ref, where)
        before: dict[tuple[str, str], int] = {(p.kind, p.name): p.version for p in existing}
        added = tuple(f"{k}:{n}" for (k, n) in pins if (k, n) not in before)
        changed = {
            f"{k}:{n}": (before[(k, n)], p.version)
            for (k, n), p in pins.items()
            if (k, n) in before and before[(k, n)] != p.version
        }
        return replace(self._save(pins.values()), added=added, changed=changed)

    def pin_inputs(self, inputs: Sequence[tuple[str, str]]) -> LockedInputs | None:
        """The exact versions a pipeline run reads for its ``inputs`` (``(kind, ref)`` as the
        pipeline writes them), taken from the lock file, which gets the inputs it lacks; None
        when the project has no lock file (the run resolves its inputs itself).

        An input the lock pins under the same reference is read at the pinned version (its
        digest checked against the registry), so ``git checkout OLD && shipyard pipeline run``
        reads the data OLD pinned. One the lock lacks is resolved now and added; one whose
        name the lock pins under another reference is resolved as the pipeline asks and its
        pin replaced (the lock follows the code, as ``shipyard lock PIPELINE`` would). Pins
        the run does not read are left as they are. The file is rewritten (sorted, atomic)
        only when a pin was added or replaced.

        Raises:
            NotFoundError: an input names nothing, or a pinned version is gone.
            IntegrityError: the registry's version no longer has the pinned digest.
            InvalidInputError: the lock file is unreadable, or an added dataset's default
                path is another pin's.
        """
        if not self.path.exists():  # nothing to read or extend: no need to wait for it
            return None
        with self._exclusive():
            return self._pin_inputs(inputs)

    def _pin_inputs(self, inputs: Sequence[tuple[str, str]]) -> LockedInputs | None:
        if not self.path.exists():
            return None
        lf = self.get()
        pinned: dict[tuple[str, str], Pin] = {(p.kind, p.name): p for p in lf.pins}
        taken: set[tuple[str, str]] = set()
        out: dict[str, dict[str, str]] = {"read": {}, "added": {}, "replaced": {}, "unpinned": {}}
        pins: dict[str, Pin] = {}
        for kind_text, ref in inputs:
            label = f"{kind_text}:{ref}"
            if label in pins:
                continue
            if kind_text not in KINDS:
                raise InvalidInputError(f"{label}: not a dataset, contract or model input")
            kind: Kind = kind_text  # type: ignore[assignment]
            parsed = parse_ref(ref)
            key = (kind, parsed.name)
            have = pinned.get(key)
            if key in taken:
                pin, action = self._resolve(kind, ref, None), "unpinned"
            elif have is not None and have.ref == str(parsed):
                self._verify(have)
                pin, action = have, "read"
            else:
                pin = self._resolve(kind, ref, have.path if have is not None else None)
                pinned[key] = pin
                action = "added" if have is None else "replaced"
            taken.add(key)
            pins[label] = pin
            out[action][label] = pin.exact
        digest = lf.digest
        if out["added"] or out["replaced"]:
            digest = self._save(pinned.values()).digest
        return LockedInputs(digest, pins=pins, **out)

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Hold the project's lock-file lock while the file is read, changed and written
        again: two runs adding pins at once each keep their additions (without it, the one
        that wrote last dropped the other's). An OS file lock (``filelock``), released when
        the process ends however it ends.

        Raises:
            ConflictError: another process has held it for ``LOCK_WAIT`` seconds.
        """
        from filelock import FileLock, Timeout

        state = self._ctx.settings.root / STATE_DIR
        state.mkdir(exist_ok=True)
        held = state / f"{LOCK_FILE}.flock"
        try:
            with FileLock(held, timeout=LOCK_WAIT):
                yield
        except Timeout:
            raise ConflictError(
                f"another shipyard process has been changing {self.path.name} for "
                f"{LOCK_WAIT:.0f} s (it holds {held}); try again when it has finished"
            ) from None

    def _save(self, pins: Iterable[Pin]) -> LockFile:
        """Write ``pins`` sorted by kind and name, under a temporary name then renamed."""
        ordered = sorted(pins, key=lambda p: (KINDS.index(p.kind), p.name))
        _check_paths(ordered)
        text = render(ordered)
        write_text_atomic(self.path, text)
        return LockFile(self.path, digest_bytes(text.encode("utf-8")), tuple(ordered))

    def _verify(self, pin: Pin) -> None:
        """The registry still holds ``pin``'s version with the pinned digest."""
        digest = self._get(pin.kind, pin.exact)[1]
        if digest != pin.digest:
            raise IntegrityError(
                f"{pin.exact} has digest {digest} in the registry but the lock pins "
                f"{pin.digest}; the lock was written for another project or the registry "
                "was rewritten"
            )

    def status(self) -> builtins.list[PinStatus]:
        """Each pin compared with what its reference means now, and each dataset's file in the
        working tree with the pinned bytes.

        Raises:
            NotFoundError: no lock file.
        """
        out: builtins.list[PinStatus] = []
        for pin in self.get().pins:
            latest = self._latest(pin.kind, pin.name)
            try:
                now: int | None = self._get(pin.kind, pin.ref)[0]
            except NotFoundError:
                now = None
            state: Literal["current", "newer", "changed", "gone"]
            if now is None:
                state = "gone"
            elif now != pin.version:
                state = "changed"
            elif latest != pin.version and parse_ref(pin.ref).selector.kind in EXACT:
                state = "newer"
            else:
                state = "current"
            workspace = None
            if pin.kind == "dataset" and pin.path is not None:
                workspace = self._workspace(pin, self._ctx.settings.root / pin.path)
            out.append(PinStatus(pin, state, now, latest, workspace))
        return out

    def checkout(self, *, to: Path | None = None, force: bool = False) -> list[CheckedOut]:
        """Write every pinned dataset version to its path in the project (or, with ``to``,
        into that folder under the path's last part), verifying each blob's digest on the way.

        A file already holding the pinned bytes is left alone; one holding another version of
        the dataset (a checkout of an older lock) is replaced. A file (or folder) with content
        the registry does not know is replaced only with ``force``; without it nothing is
        written and every such path is named.

        Raises:
            NotFoundError: no lock file.
            ConflictError: without ``force``, a target holds other content.
            IntegrityError: a stored blob does not match its digest, or the registry's
                version no longer has the pinned digest.
        """
        pins = [p for p in self.get().pins if p.kind == "dataset" and p.path is not None]
        root = self._ctx.settings.root
        plan: builtins.list[tuple[Pin, Path, str]] = []
        for pin in pins:
            assert pin.path is not None
            rel = PurePosixPath(pin.path)
            target = (to / rel.name) if to is not None else root / rel
            plan.append((pin, target, self._workspace(pin, target)))
        clashes = [str(t) for _, t, state in plan if state == "modified"]
        if clashes and not force:
            raise ConflictError(
                f"{len(clashes)} path(s) hold other content than the lock pins: "
                + ", ".join(clashes)
                + "; move them away or run `shipyard checkout --force` to replace them",
                details={"paths": clashes},
            )
        done: builtins.list[CheckedOut] = []
        for pin, target, state in plan:
            if state == "ok":
                done.append(CheckedOut(pin.exact, target, "unchanged"))
                continue
            v = self._datasets.get(pin.exact)
            if v.digest != pin.digest:
                raise IntegrityError(
                    f"{pin.exact} has digest {v.digest} in the registry but the lock pins "
                    f"{pin.digest}; the lock was written for another project or the registry "
                    "was rewritten"
                )
            self._write(pin, target)
            done.append(CheckedOut(pin.exact, target, "written"))
        return done

    # -- resolving --------------------------------------------------------------------------------

    def _kind_of(self, text: str) -> tuple[Kind, str]:
        """(kind, reference without its prefix) of a reference as a user typed it."""
        kind, sep, rest = text.partition(":")
        if sep and kind in KINDS:
            parse_ref(rest)
            return kind, rest  # type: ignore[return-value]
        name = parse_ref(text).name
        tables = {"dataset": datasets, "contract": contracts, "model": registered_models}
        with self._ctx.db.read() as conn:
            found = [
                k
                for k, t in tables.items()
                if conn.execute(select(t.c.id).where(t.c.name == name)).first()
            ]
        if not found:
            pipeline = " and no pipeline file of that name" if _looks_like_file(text) else ""
            raise NotFoundError(
                f"no dataset, contract or model named '{name}'{pipeline}; see `shipyard data "
                "list`, `shipyard contract list` and `shipyard models list`"
            )
        if len(found) > 1:
            raise InvalidInputError(
                f"'{name}' names a {' and a '.join(found)}; write "
                + " or ".join(f"{k}:{text}" for k in found)
            )
        return found[0], text  # type: ignore[return-value]

    def _get(self, kind: Kind, ref: str) -> tuple[int, str, str | None]:
        """(version, digest, data kind) of what ``ref`` means now."""
        if kind == "dataset":
            v = self._datasets.get(ref)
            return v.version, v.digest, v.kind
        if kind == "contract":
            c = self._contracts.get(ref)
            return c.version, c.digest, None
        m = self._models.get(ref)
        return m.version, m.digest, None

    def _resolve(self, kind: Kind, ref: str, path: str | None) -> Pin:
        parsed = parse_ref(ref)
        version, digest, data_kind = self._get(kind, ref)
        if kind == "dataset":
            suffix = ".parquet" if data_kind == "table" else ""
            path = _checked_path(path or f"{DATA_DIR}/{parsed.name}{suffix}")
            if data_kind == "table" and not path.endswith(".parquet"):
                # The stored bytes are Parquet: only a .parquet file can hold the pinned digest.
                raise InvalidInputError(
                    f"{parsed.name} is a table stored as Parquet; give it a path ending in "
                    f".parquet, not {path!r}"
                )
        return Pin(kind, parsed.name, str(parsed), version, digest, path, data_kind)

    def _latest(self, kind: Kind, name: str) -> int | None:
        try:
            return self._get(kind, name)[0]
        except NotFoundError:
            return None

    # -- the working tree ---------------------------------------------------------------------

    def _workspace(self, pin: Pin, target: Path) -> Workspace:
        """What ``target`` holds: the pinned version (``ok``), nothing (``missing``), another
        version of the same dataset (``other``: a checkout of an older lock, replaced freely)
        or content the registry does not know (``modified``: a user's file)."""
        if not target.exists() and not target.is_symlink():
            return "missing"
        if pin.data_kind == "files":
            have = _tree_digest(target) if target.is_dir() else None
        else:
            have = digest_file(target)[0] if target.is_file() else None
        if have == pin.digest:
            return "ok"
        if have is not None:
            try:
                self._datasets.get(f"{pin.name}@{have}")
                return "other"
            except NotFoundError:
                pass
        return "modified"

    def _write(self, pin: Pin, target: Path) -> None:
        """Write the pinned version at ``target`` through the datasets service (verified
        bytes, a temporary name then a rename, the read logged), replacing what is there."""
        if pin.data_kind != "files":
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            self._datasets.export(pin.exact, target)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fresh = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.new")
        self._datasets.export(pin.exact, fresh)
        old = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.old")
        if target.exists() or target.is_symlink():
            os.replace(target, old)
        os.replace(fresh, target)
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


# -- the file ---------------------------------------------------------------------------------


def render(pins: Iterable[Pin]) -> str:
    """The lock file's text: a header, the format, then one table per pin in the given order."""
    lines = [_HEADER, f"lock_format = {LOCK_FORMAT}\n"]
    for p in pins:
        lines.append(f"\n[[{p.kind}]]\n")
        fields: list[tuple[str, str | int | None]] = [
            ("name", p.name),
            ("ref", p.ref),
            ("version", p.version),
            ("digest", p.digest),
            ("kind", p.data_kind),
            ("path", p.path),
        ]
        for key, value in fields:
            if value is None:
                continue
            # A JSON string is a valid TOML basic string (same escapes).
            text = str(value) if isinstance(value, int) else json.dumps(value, ensure_ascii=False)
            lines.append(f"{key} = {text}\n")
    return "".join(lines)


def _parse(data: bytes, where: Path) -> tuple[Pin, ...]:
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInputError(f"{where} is not valid TOML: {exc}") from None
    if doc.get("lock_format") != LOCK_FORMAT:
        raise InvalidInputError(
            f"{where}: lock_format {doc.get('lock_format')!r} is not one this shipyard reads "
            f"({LOCK_FORMAT})"
        )
    pins: list[Pin] = []
    for kind in KINDS:
        for i, item in enumerate(doc.get(kind, [])):
            try:
                pin = Pin(
                    kind,
                    str(item["name"]),
                    str(item["ref"]),
                    int(item["version"]),
                    str(item["digest"]),
                    item.get("path"),
                    item.get("kind"),
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise InvalidInputError(
                    f"{where}: [[{kind}]] number {i + 1} lacks or garbles {exc}; run "
                    "`shipyard lock` again with the references to pin"
                ) from None
            if parse_ref(pin.ref).name != pin.name:
                raise InvalidInputError(
                    f"{where}: [[{kind}]] {pin.name} has ref {pin.ref!r} of another name"
                )
            if kind == "dataset":
                pin = replace(pin, path=_checked_path(pin.path or f"{DATA_DIR}/{pin.name}"))
            pins.append(pin)
    return tuple(pins)


def _checked_path(path: str) -> str:
    """A dataset's path, relative to the project folder and inside it (POSIX separators)."""
    p = PurePosixPath(path.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or not p.parts or p.parts[0] in (".", ""):
        raise InvalidInputError(
            f"dataset path {path!r} must be relative to the project folder and inside it "
            "(e.g. data/train.parquet)"
        )
    if p.parts[0] in (".shipyard", LOCK_FILE):
        raise InvalidInputError(f"dataset path {path!r} would write into shipyard's own files")
    return p.as_posix()


def _looks_like_file(text: str) -> bool:
    file, sep, _ = text.rpartition(":")
    return (file if sep else text).endswith(PIPELINE_SUFFIXES) or text.endswith(PIPELINE_SUFFIXES)


def _pipeline_target(text: str, root: Path) -> str | None:
    """``FILE.py[:NAME]`` or ``FILE.yaml`` naming an existing file (relative to the current
    folder or to the project's), as ``pipeline run`` takes it; None for anything else."""
    file, sep, name = text.rpartition(":")
    if not sep or not file.endswith(PIPELINE_SUFFIXES):
        file, name = text, ""
    if not file.endswith(PIPELINE_SUFFIXES):
        return None
    path = Path(file).expanduser()
    if not path.is_absolute() and not path.is_file() and (root / path).is_file():
        path = root / path
    if not path.is_file():
        if sep and name:  # FILE.py:NAME is no reference: only a pipeline
            raise NotFoundError(f"no pipeline file {file}")
        return None
    return f"{path}:{name}" if name else str(path)


def _pipeline_inputs(target: str) -> list[tuple[Kind, str]]:
    """The datasets and models a pipeline's graph (built with its default params) reads; of
    several references to one name, the first (the lock holds one pin per name)."""
    from shipyard.pipelines.sources import load_source

    seen: dict[tuple[str, str], tuple[Kind, str]] = {}
    for item in load_source(target).build({}).inputs():
        kind: Kind = "model" if item.kind == "model" else "dataset"
        seen.setdefault((kind, parse_ref(item.ref).name), (kind, item.ref))
    return list(seen.values())


def _check_paths(pins: Sequence[Pin]) -> None:
    seen: dict[str, str] = {}
    for p in pins:
        if p.path is None:
            continue
        if p.path in seen:
            raise InvalidInputError(
                f"datasets {seen[p.path]} and {p.name} are both pinned to {p.path}; give one "
                "another path with `shipyard lock NAME --path PATH`"
            )
        seen[p.path] = p.name


def _tree_digest(folder: Path) -> str | None:
    """The digest a folder would have as a file-tree version (None: it holds no files)."""
    from shipyard.data.ingest import walk_tree
    from shipyard.data.versions import tree_manifest

    try:
        entries = list(walk_tree(folder))
    except InvalidInputError:
        return None
    files = []
    for e in entries:
        digest, size = digest_file(e.absolute)
        files.append({"path": e.path, "digest": digest, "size": size, "exec": e.executable})
    return digest_bytes(tree_manifest(files))
