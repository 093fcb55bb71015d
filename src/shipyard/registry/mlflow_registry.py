"""The model registry as the MLflow registry protocol sees it: registered models and versions
with descriptions and free-form tags, searched with MLflow's filters, and versions registered
from an MLflow model directory.

>>> project.mlflow_registry.create_model("credit", tags={"team": "risk"})   # doctest: +SKIP
>>> project.mlflow_registry.search_versions("name = 'credit'").items          # doctest: +SKIP

It is a view of shipyard's registry, not a second one: a version is a shipyard model version
(same number), aliases move through :class:`Models` (so protected ones are refused), and
nothing is ever removed. MLflow's *delete* archives: a deleted version is an archived one, and
a deleted registered model has every version archived and is hidden from this view (shipyard
keeps it and its history; creating it again brings it back, numbering continuing).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from shipyard._internal.encode import ReadModel
from shipyard.authz import require_role
from shipyard.errors import ConflictError, InvalidInputError, NotFoundError
from shipyard.refs import validate_name
from shipyard.registry import mlflow_search as search
from shipyard.registry.mlflow_search import RegistryPage
from shipyard.registry.mlflow_sources import resolve_source
from shipyard.registry.models import ensure_model, insert_version
from shipyard.stores.db.tables import (
    model_aliases,
    model_tags,
    model_version_sources,
    model_versions,
    registered_models,
    runs,
)

if TYPE_CHECKING:
    from shipyard.context import ServiceContext
    from shipyard.registry.models import Models
    from shipyard.stores.audit import AuditedTransaction
    from shipyard.tracking.artifact_tree import ArtifactTree

__all__ = ["MlflowRegistry", "RegistryModel", "RegistryPage", "RegistryVersion"]

KIND = "model"
#: The tag that hides a registered model deleted through the MLflow protocol (version 0).
DELETED_TAG = "shipyard.deleted"
#: Tag keys under this prefix are shipyard's own; clients can neither set nor delete them.
RESERVED_PREFIX = "shipyard."
MAX_TAG_KEY = 250
MAX_TAG_VALUE = 5000


@dataclass(frozen=True)
class RegistryVersion(ReadModel):
    """A model version with what the MLflow protocol shows of it."""

    name: str
    version: int
    created_at: datetime
    created_by: str
    description: str
    run_id: str | None
    status: str  # shipyard's: candidate, approved, rejected, archived
    flavor: str
    aliases: list[str]
    tags: dict[str, str]
    source: str  # the client's source URI, or shipyard:NAME@N for a version shipyard registered
    logged_model_id: str | None = None
    artifact_path: str | None = None  # the MLflow model directory in the MLflow artifact tree

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class RegistryModel(ReadModel):
    """A registered model, its latest version, tags and aliases."""

    name: str
    description: str
    created_at: datetime
    created_by: str
    updated_at: datetime
    tags: dict[str, str]
    aliases: dict[str, int]
    latest: RegistryVersion | None = None


class MlflowRegistry:
    """Service for the registry's MLflow view: ``create_model``, ``create_version``,
    ``get_model``, ``get_version``, ``search_models``, ``search_versions``, plus
    ``describe_model``, ``describe_version``, ``set_tag``, ``delete_tag``, ``delete_model``,
    ``delete_version``, ``get_by_alias``, ``latest_versions`` and ``download_path``."""

    def __init__(self, ctx: ServiceContext, *, models: Models, artifact_tree: ArtifactTree) -> None:
        self._ctx = ctx
        self._models = models
        self._tree = artifact_tree

    # -- registered models --------------------------------------------------------------------

    def create_model(
        self, name: str, *, description: str = "", tags: Mapping[str, str] | None = None
    ) -> RegistryModel:
        """Create a registered model with no versions (contributor). A model deleted through
        the MLflow protocol comes back, with its archived versions.

        Raises:
            ConflictError: the model exists.
            PermissionDeniedError: the actor is not a contributor.
        """
        validate_name(name, "model name")
        checked = {_check_tag_key(k): _check_tag_value(k, v) for k, v in (tags or {}).items()}
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", "create registered models")
            row = _model_row(tx.conn, name)
            if row is not None and not _hidden(tx.conn, int(row.id)):
                raise ConflictError(
                    f"registered model '{name}' already exists; register a version of it, or "
                    "pick another name"
                )
            model_id = ensure_model(tx, name, datetime.now(UTC))
            if row is not None:
                tx.conn.execute(
                    model_tags.delete()
                    .where(model_tags.c.model_id == model_id)
                    .where(model_tags.c.version == 0)
                    .where(model_tags.c.key == DELETED_TAG)
                )
                tx.record("model.mlflow_restore", KIND, name, {})
            if description:
                _describe(tx, model_id, name, 0, description)
            for k, v in checked.items():
                _write_tag(tx, model_id, name, 0, k, v)
        return self.get_model(name)

    def get_model(self, name: str) -> RegistryModel:
        """One registered model.

        Raises:
            NotFoundError: no such model (or it was deleted through the MLflow protocol).
        """
        with self._ctx.db.read() as conn:
            return _load_models(conn, [_visible_model_id(conn, name)])[0]

    def search_models(
        self,
        filter: str | None = None,
        *,
        order_by: builtins.list[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
    ) -> RegistryPage:
        """Registered models matching an MLflow filter on ``name`` and ``tags.<key>``
        (``name LIKE 'credit%'``), by name unless ``order_by`` says otherwise
        (``name``, ``creation_timestamp``, ``last_updated_timestamp``, each ASC or DESC).

        Raises:
            InvalidInputError: a filter, order or page token that cannot be used.
        """
        where = search.parse_filter(filter, {"run_name": "name"}, "registered models")
        order = search.parse_order(order_by, search.MODEL_ORDER, default=["name"])
        start = search.offset(page_token)
        limit = search.limit(max_results)
        with self._ctx.db.read() as conn:
            hidden = _hidden_ids(conn)
            ids = [
                int(r.id)
                for r in conn.execute(select(registered_models.c.id))
                if int(r.id) not in hidden
            ]
            found = _load_models(conn, ids)
        matched = [m for m in found if search.matches(where, {"name": m.name}, m.tags)]
        return search.page(search.sort(matched, order), start, limit)

    def describe_model(self, name: str, description: str) -> RegistryModel:
        """Set a registered model's description (contributor).

        Raises:
            NotFoundError: no such model.
        """
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", "describe models")
            _describe(tx, _visible_model_id(tx.conn, name), name, 0, description)
        return self.get_model(name)

    def describe_version(self, name: str, version: int, description: str) -> RegistryVersion:
        """Set a version's description (contributor).

        Raises:
            NotFoundError: no such model or version.
        """
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", "describe models")
            model_id = _visible_model_id(tx.conn, name)
            _visible_version(tx.conn, model_id, name, version)
            _describe(tx, model_id, name, version, description)
        return self.get_version(name, version)

    def set_tag(self, name: str, key: str, value: str, version: int | None = None) -> None:
        """Set a tag on a registered model, or on one of its versions (contributor).

        Raises:
            InvalidInputError: a key that is empty, too long or reserved (``shipyard.``).
            NotFoundError: no such model or version.
        """
        _check_tag_key(key)
        _check_tag_value(key, value)
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", "tag models")
            model_id = _visible_model_id(tx.conn, name)
            if version is not None:
                _visible_version(tx.conn, model_id, name, version)
            _write_tag(tx, model_id, name, version or 0, key, value)

    def delete_tag(self, name: str, key: str, version: int | None = None) -> None:
        """Remove a tag from a registered model or a version (contributor).

        Raises:
            NotFoundError: no such model, version or tag.
        """
        _check_tag_key(key)
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", "tag models")
            model_id = _visible_model_id(tx.conn, name)
            if version is not None:
                _visible_version(tx.conn, model_id, name, version)
            gone = tx.conn.execute(
                model_tags.delete()
                .where(model_tags.c.model_id == model_id)
                .where(model_tags.c.version == (version or 0))
                .where(model_tags.c.key == key)
            ).rowcount
            what = f"'{name}'" if version is None else f"'{name}' version {version}"
            if not gone:
                raise NotFoundError(f"registered model {what} has no tag {key!r}")
            ref = name if version is None else f"{name}@{version}"
            tx.record("model.tag.delete", KIND, ref, {"key": key})

    def delete_model(self, name: str) -> builtins.list[int]:
        """MLflow's *delete registered model*: archive every version and hide the model from
        this view (contributor). shipyard keeps it, its versions and their history. Returns
        the versions archived now.

        Raises:
            ConflictError: an alias still points at one of its versions (move or delete it
                first; a protected one only moves through promotion or rollback).
        """
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", "delete registered models")
            model_id = _visible_model_id(tx.conn, name)
            held = sorted(
                f"{r.alias} (version {r.version})"
                for r in tx.conn.execute(
                    select(model_aliases).where(model_aliases.c.model_id == model_id)
                )
            )
            if held:
                raise ConflictError(
                    f"cannot delete registered model '{name}': aliases still point at its "
                    f"versions: {', '.join(held)}; delete them first (a protected alias such "
                    f"as production moves only with `shipyard models rollback {name}`)"
                )
            archived = []
            for row in tx.conn.execute(
                _select_versions(model_id).where(model_versions.c.status != "archived")
            ).all():
                self._models.set_status(tx, row, "archived")
                archived.append(int(row.version))
            _write_tag(tx, model_id, name, 0, DELETED_TAG, "true", audit=False)
            tx.record("model.mlflow_delete", KIND, name, {"archived": archived})
        return archived

    # -- versions -----------------------------------------------------------------------------

    def create_version(
        self,
        name: str,
        source: str,
        *,
        run_id: str | None = None,
        logged_model_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        description: str = "",
    ) -> RegistryVersion:
        """Register the MLflow model directory at ``source`` (``models:/m-…``, ``runs:/RUN/
        PATH`` or ``mlflow-artifacts:/…``) as the next version of ``name`` (contributor).

        Only a scikit-learn model saved with skops is registered: the file is loaded once with
        shipyard's trusted-type check (:func:`shipyard.registry.flavors.load_model`), its
        signature inferred from the saved input example, its run recorded as lineage.

        Raises:
            NotFoundError: no such model, source, or file in it.
            InvalidInputError: a source of another form, a model that is not a skops
                scikit-learn model (a pickle is never loaded), or untrusted types in it.
            PermissionDeniedError: the actor is not a contributor.
        """
        from shipyard.governance.annotations import check_model
        from shipyard.registry.flavors import UntrustedModelError, load_model
        from shipyard.registry.mlflow_models import MlflowModelDir, example_frame
        from shipyard.registry.signatures import infer_signature

        checked = {_check_tag_key(k): _check_tag_value(k, v) for k, v in (tags or {}).items()}
        with self._ctx.db.read() as conn:
            require_role(conn, self._ctx.actor, "contributor", "register models")
            _visible_model_id(conn, name)
            where = resolve_source(conn, source, run_id, logged_model_id)
        model_dir = MlflowModelDir.parse(self._read(where.path, "MLmodel", source), where.path)
        refusal = model_dir.refusal(name, source)
        if refusal is not None:
            raise refusal
        assert model_dir.model_file is not None
        digest = self._digest(where.path, model_dir.model_file, source)
        with self._ctx.artifacts.local_copy(digest, owner=f"{source}") as local:
            try:
                model = load_model(local)
            except UntrustedModelError as exc:
                types = exc.details.get("untrusted_types", [])
                raise UntrustedModelError(
                    f"cannot register {source} as a version of '{name}': its skops file holds "
                    f"types that are not trusted: {', '.join(types)}; shipyard loads only "
                    "scikit-learn, numpy and scipy types; nothing was registered",
                    details={"model": name, "source": source, "untrusted_types": types},
                ) from None
        signature = None
        if model_dir.example_file:
            frame = example_frame(self._read(where.path, model_dir.example_file, source), model_dir)
            if frame is not None:
                signature = infer_signature(model, frame).to_dict()
        details: dict[str, Any] = {"format": "skops", "mlflow_source": source}
        if model_dir.sklearn_version:
            details["versions"] = {"sklearn": model_dir.sklearn_version}
        run = where.run_id or model_dir.run_id
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", "register models")
            _visible_model_id(tx.conn, name)
            if run is not None and not _run_exists(tx.conn, run):
                run = None
            check_model(tx.conn, name, checked)
            model_id, version = insert_version(
                tx, name, digest, "sklearn", signature, run, description, details
            )
            tx.conn.execute(
                model_version_sources.insert().values(
                    model_id=model_id,
                    version=version,
                    source=source,
                    logged_model_id=where.logged_model_id,
                    artifact_path=where.path,
                )
            )
            write_version_tags(tx, model_id, name, version, checked)
        return self.get_version(name, version)

    def _digest(self, folder: str, rel: str, source: str) -> str:
        try:
            digest = self._tree.get(f"{folder}/{rel}").digest
        except NotFoundError:
            digest = None
        if digest is None:
            raise NotFoundError(
                f"the MLflow model at {source} has no file {rel} (looked in {folder}); upload "
                "the model's files before registering it"
            )
        return digest

    def _read(self, folder: str, rel: str, source: str) -> bytes:
        digest = self._digest(folder, rel, source)
        with self._ctx.artifacts.local_copy(digest, owner=f"{source}/{rel}") as local:
            return local.read_bytes()

    def get_version(self, name: str, version: int) -> RegistryVersion:
        """One version, unless archived (MLflow's deleted).

        Raises:
            NotFoundError: no such model or version, or the version is archived.
        """
        with self._ctx.db.read() as conn:
            model_id = _visible_model_id(conn, name)
            return _load_versions(conn, [_visible_version(conn, model_id, name, version)])[0]

    def get_by_alias(self, name: str, alias: str) -> RegistryVersion:
        """The version an alias points at.

        Raises:
            NotFoundError: no such model or alias.
        """
        with self._ctx.db.read() as conn:
            model_id = _visible_model_id(conn, name)
            row = conn.execute(
                select(model_aliases.c.version)
                .where(model_aliases.c.model_id == model_id)
                .where(model_aliases.c.alias == alias)
            ).first()
            if row is None:
                raise NotFoundError(f"registered model '{name}' has no alias {alias!r}")
            return _load_versions(conn, [_version_row(conn, model_id, name, int(row.version))])[0]

    def latest_versions(
        self, name: str, stages: builtins.list[str] | None = None
    ) -> builtins.list[RegistryVersion]:
        """The newest version that is not archived, if any: MLflow's latest version of stage
        ``None``, the only stage there is (shipyard has aliases, not stages), so asking for
        other ``stages`` finds nothing.

        Raises:
            NotFoundError: no such model.
        """
        with self._ctx.db.read() as conn:
            model_id = _visible_model_id(conn, name)
            if stages and not any(s.lower() == "none" for s in stages):
                return []
            row = conn.execute(
                _select_versions(model_id)
                .where(model_versions.c.status != "archived")
                .order_by(model_versions.c.version.desc())
                .limit(1)
            ).first()
            return _load_versions(conn, [row]) if row is not None else []

    def search_versions(
        self,
        filter: str | None = None,
        *,
        order_by: builtins.list[str] | None = None,
        max_results: int = 10_000,
        page_token: str | None = None,
    ) -> RegistryPage:
        """Versions (not archived) matching an MLflow filter on ``name``, ``run_id`` and
        ``tags.<key>``, newest first per model unless ``order_by`` says otherwise
        (``name``, ``version_number``, ``creation_timestamp``, ``last_updated_timestamp``).

        Raises:
            InvalidInputError: a filter, order or page token that cannot be used.
        """
        where = search.parse_filter(
            filter, {"run_name": "name", "run_id": "run_id"}, "model versions"
        )
        order = search.parse_order(
            order_by, search.VERSION_ORDER, default=["name", "version_number DESC"]
        )
        start = search.offset(page_token)
        limit = search.limit(max_results, ceiling=200_000)
        with self._ctx.db.read() as conn:
            hidden = _hidden_ids(conn)
            stmt = (
                select(model_versions, registered_models.c.name)
                .join(registered_models, registered_models.c.id == model_versions.c.model_id)
                .where(model_versions.c.status != "archived")
            )
            name = search.equal_name(where)
            if name is not None:
                stmt = stmt.where(registered_models.c.name == name)
            rows = [r for r in conn.execute(stmt) if int(r.model_id) not in hidden]
            found = _load_versions(conn, rows)
        matched = [
            v for v in found if search.matches(where, {"name": v.name, "run_id": v.run_id}, v.tags)
        ]
        return search.page(search.sort(matched, order), start, limit)

    def download_path(self, name: str, version: int) -> str:
        """Where the version's MLflow model directory is, in the MLflow artifact tree.

        Raises:
            NotFoundError: no such model or version.
            InvalidInputError: shipyard registered the version itself (there is no MLflow model
                directory; it loads with ``shipyard models load``).
        """
        v = self.get_version(name, version)
        if v.artifact_path is None:
            raise InvalidInputError(
                f"version {v.version} of '{v.name}' was registered by shipyard, not from an "
                "MLflow model directory, so there is no MLflow model to download; load it "
                f"with `shipyard models load {v.ref}` or project.models.load('{v.ref}')"
            )
        return v.artifact_path

    def delete_version(self, name: str, version: int) -> None:
        """MLflow's *delete model version*: archive it (contributor); its history stays.

        Raises:
            ConflictError: an alias points at it (delete or move the alias first).
            NotFoundError: no such version, or it is archived already.
        """
        with self._ctx.db.read() as conn:
            model_id = _visible_model_id(conn, name)
            _visible_version(conn, model_id, name, version)
        self._models.archive(f"{name}@{version}")


# -- reading --------------------------------------------------------------------------------------


def _run_exists(conn: Connection, run_id: str) -> bool:
    return conn.execute(select(runs.c.id).where(runs.c.id == run_id)).first() is not None


def _model_row(conn: Connection, name: str) -> Any:
    return conn.execute(select(registered_models).where(registered_models.c.name == name)).first()


def _hidden_ids(conn: Connection) -> set[int]:
    return {
        int(r.model_id)
        for r in conn.execute(
            select(model_tags.c.model_id)
            .where(model_tags.c.version == 0)
            .where(model_tags.c.key == DELETED_TAG)
        )
    }


def _hidden(conn: Connection, model_id: int) -> bool:
    return model_id in _hidden_ids(conn)


def _visible_model_id(conn: Connection, name: str) -> int:
    row = _model_row(conn, name)
    if row is None or _hidden(conn, int(row.id)):
        raise NotFoundError(f"no registered model '{name}'; see `shipyard models list`")
    return int(row.id)


def _select_versions(model_id: int) -> Any:
    return (
        select(model_versions, registered_models.c.name)
        .join(registered_models, registered_models.c.id == model_versions.c.model_id)
        .where(model_versions.c.model_id == model_id)
    )


def _version_row(conn: Connection, model_id: int, name: str, version: int) -> Any:
    row = conn.execute(
        _select_versions(model_id).where(model_versions.c.version == version)
    ).first()
    if row is None:
        raise NotFoundError(
            f"registered model '{name}' has no version {version}; see "
            f"`shipyard models versions {name}`"
        )
    return row


def _visible_version(conn: Connection, model_id: int, name: str, version: int) -> Any:
    row = _version_row(conn, model_id, name, version)
    if row.status == "archived":
        raise NotFoundError(
            f"version {version} of registered model '{name}' is archived (deleted through the "
            "MLflow API, or archived in shipyard); its history stays in `shipyard models "
            f"versions {name}`"
        )
    return row


def _tags_of(
    conn: Connection, model_ids: builtins.list[int]
) -> dict[tuple[int, int], dict[str, str]]:
    out: dict[tuple[int, int], dict[str, str]] = {}
    for start in range(0, len(model_ids), 500):
        chunk = model_ids[start : start + 500]
        for r in conn.execute(
            select(model_tags).where(model_tags.c.model_id.in_(chunk)).order_by(model_tags.c.key)
        ):
            if not r.key.startswith(RESERVED_PREFIX):
                out.setdefault((int(r.model_id), int(r.version)), {})[r.key] = r.value
    return out


def _aliases_of(conn: Connection, model_ids: builtins.list[int]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}
    for start in range(0, len(model_ids), 500):
        chunk = model_ids[start : start + 500]
        for r in conn.execute(
            select(model_aliases)
            .where(model_aliases.c.model_id.in_(chunk))
            .order_by(model_aliases.c.alias)
        ):
            out.setdefault(int(r.model_id), {})[r.alias] = int(r.version)
    return out


def _load_versions(conn: Connection, rows: builtins.list[Any]) -> builtins.list[RegistryVersion]:
    model_ids = sorted({int(r.model_id) for r in rows})
    tags = _tags_of(conn, model_ids)
    aliases = _aliases_of(conn, model_ids)
    sources: dict[tuple[int, int], Any] = {}
    for start in range(0, len(model_ids), 500):
        chunk = model_ids[start : start + 500]
        for s in conn.execute(
            select(model_version_sources).where(model_version_sources.c.model_id.in_(chunk))
        ):
            sources[(int(s.model_id), int(s.version))] = s
    out = []
    for r in rows:
        key = (int(r.model_id), int(r.version))
        src = sources.get(key)
        held = aliases.get(int(r.model_id), {})
        out.append(
            RegistryVersion(
                name=r.name,
                version=int(r.version),
                created_at=r.created_at,
                created_by=r.created_by,
                description=r.description or "",
                run_id=r.run_id,
                status=r.status,
                flavor=r.flavor,
                aliases=sorted(a for a, v in held.items() if v == int(r.version)),
                tags=tags.get(key, {}),
                source=src.source if src is not None else f"shipyard:{r.name}@{r.version}",
                logged_model_id=src.logged_model_id if src is not None else None,
                artifact_path=src.artifact_path if src is not None else None,
            )
        )
    return out


def _load_models(conn: Connection, ids: builtins.list[int]) -> builtins.list[RegistryModel]:
    if not ids:
        return []
    tags = _tags_of(conn, ids)
    aliases = _aliases_of(conn, ids)
    out: dict[int, RegistryModel] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        models = conn.execute(
            select(registered_models).where(registered_models.c.id.in_(chunk))
        ).all()
        latest = {
            int(r.model_id): r
            for r in conn.execute(
                select(model_versions, registered_models.c.name)
                .join(registered_models, registered_models.c.id == model_versions.c.model_id)
                .where(model_versions.c.model_id.in_(chunk))
                .where(model_versions.c.status != "archived")
                .order_by(model_versions.c.version)
            )
        }
        versions = {v.name: v for v in _load_versions(conn, list(latest.values()))}
        for m in models:
            newest = versions.get(m.name)
            out[int(m.id)] = RegistryModel(
                name=m.name,
                description=m.description or "",
                created_at=m.created_at,
                created_by=m.created_by,
                updated_at=max(m.created_at, newest.created_at) if newest else m.created_at,
                tags=tags.get((int(m.id), 0), {}),
                aliases=aliases.get(int(m.id), {}),
                latest=newest,
            )
    return [out[i] for i in ids if i in out]


# -- writing --------------------------------------------------------------------------------------


def _check_tag_key(key: Any) -> str:
    if not isinstance(key, str) or not key or len(key) > MAX_TAG_KEY:
        raise InvalidInputError(
            f"invalid tag key {key!r}: a tag key is 1 to {MAX_TAG_KEY} characters"
        )
    if key.startswith(RESERVED_PREFIX):
        raise InvalidInputError(
            f"tag key {key!r} is reserved: keys starting with {RESERVED_PREFIX!r} are "
            "shipyard's own; pick another key"
        )
    return key


def _check_tag_value(key: str, value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_TAG_VALUE:
        raise InvalidInputError(
            f"invalid value for tag {key!r}: a tag value is text of at most {MAX_TAG_VALUE} "
            "characters"
        )
    return value


def _write_tag(
    tx: AuditedTransaction,
    model_id: int,
    name: str,
    version: int,
    key: str,
    value: str,
    *,
    audit: bool = True,
) -> None:
    tx.conn.execute(
        model_tags.delete()
        .where(model_tags.c.model_id == model_id)
        .where(model_tags.c.version == version)
        .where(model_tags.c.key == key)
    )
    tx.conn.execute(
        model_tags.insert().values(model_id=model_id, version=version, key=key, value=value)
    )
    if audit:
        ref = name if version == 0 else f"{name}@{version}"
        tx.record("model.tag", KIND, ref, {"key": key, "value": value})


def write_version_tags(
    tx: AuditedTransaction, model_id: int, name: str, version: int, tags: Mapping[str, str]
) -> None:
    """Tag a version inside the caller's transaction (each key and value checked)."""
    for k, v in tags.items():
        _write_tag(tx, model_id, name, version, _check_tag_key(k), _check_tag_value(k, v))


def _describe(
    tx: AuditedTransaction, model_id: int, name: str, version: int, description: str
) -> None:
    if not isinstance(description, str) or len(description) > 100_000:
        raise InvalidInputError("a description is text of at most 100,000 characters")
    if version == 0:
        tx.conn.execute(
            update(registered_models)
            .where(registered_models.c.id == model_id)
            .values(description=description)
        )
        ref = name
    else:
        tx.conn.execute(
            update(model_versions)
            .where(model_versions.c.model_id == model_id)
            .where(model_versions.c.version == version)
            .values(description=description)
        )
        ref = f"{name}@{version}"
    tx.record("model.describe", KIND, ref, {"description": description})
