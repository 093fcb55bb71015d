"""The model registry: numbered model versions, aliases with their complete history, loading.

>>> v = run.log_model(pipeline, name="credit-risk", input_example=X.head())  # doctest: +SKIP
>>> project.models.set_alias("credit-risk@2", "staging")                     # doctest: +SKIP
>>> project.models.load("credit-risk@staging").predict(X)                   # doctest: +SKIP

An alias (``staging``, ``champion``…) points at one version; every move is recorded, so the
history answers "which version was in production on 3 May?". Protected aliases
(``production``) only move through promotion, which checks the governance policy.
"""

from __future__ import annotations

import builtins
import logging
import math
import posixpath
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import func, select, update

from shipyard._internal.encode import ReadModel
from shipyard._internal.hashing import CHUNK_SIZE, digest_file
from shipyard._internal.progress import NO_PROGRESS, Progress
from shipyard.authz import require_role
from shipyard.errors import ConflictError, InvalidArgumentError, InvalidInputError, NotFoundError
from shipyard.refs import parse_ref, validate_name
from shipyard.registry.aliases import check_alias, move_alias, refuse_protected
from shipyard.registry.versions import (
    AliasEvent,
    ModelSummary,
    ModelVersion,
    authors_of,
    find_model_id,
    resolve_version,
    select_versions,
    to_version,
)
from shipyard.stores.audit import AuditedTransaction
from shipyard.stores.db.tables import (
    alias_events,
    blob_refs,
    model_aliases,
    model_tags,
    model_versions,
    registered_models,
    run_artifacts,
    run_latest_metrics,
)
from shipyard.stores.lineage import add_edge, walk
from shipyard.stores.versioning import next_version

if TYPE_CHECKING:
    from shipyard.context import ServiceContext
    from shipyard.data.contract_registry import Contracts
    from shipyard.data.contracts import Contract
    from shipyard.data.datasets import Datasets
    from shipyard.features.lookup import ModelFeatures
    from shipyard.features.service import Features
    from shipyard.registry.batch import OnInvalid
    from shipyard.registry.code_approvals import CodeApproval, CodeSource
    from shipyard.registry.export import Parity
    from shipyard.registry.flavors import UntrustedModelError
    from shipyard.registry.row_checks import RowCheckRules, RowChecks
    from shipyard.registry.signatures import CheckedPredictor

__all__ = [
    "AliasEvent",
    "ModelDownload",
    "ModelExport",
    "ModelSummary",
    "ModelVersion",
    "Models",
    "ensure_model",
    "insert_version",
]

log = logging.getLogger(__name__)

KIND = "model"
#: Training rows, with no missing value, that the missing-value probe of :meth:`Models.
#: row_checks` scores with one column at a time set to missing.
PROBE_ROWS = 16
STATUSES = ("candidate", "approved", "rejected", "archived")
#: The prefix of the version tags that record a version's provenance (reserved: MLflow
#: clients can neither set nor delete them).
PROVENANCE_PREFIX = "shipyard."


@dataclass(frozen=True)
class ModelDownload(ReadModel):
    """A version's stored model file, verified against its digest and open for reading:
    iterate ``chunks`` once to get its bytes (the team server streams them to a remote
    ``models load``, which loads them with the trusted-type rules)."""

    version: ModelVersion
    size: int
    chunks: Iterator[bytes] = field(metadata={"json": "omit"}, repr=False)

    @property
    def digest(self) -> str:
        return self.version.digest

    @property
    def flavor(self) -> str:
        return self.version.flavor


@dataclass(frozen=True)
class ModelExport(ReadModel):
    """A version exported to another format (:meth:`Models.export`): where it was written
    (``written`` is False when its parity failed and nothing was written), its size and
    digest, and its parity against the original (:class:`~shipyard.registry.export.
    Parity`)."""

    model: str
    format: str
    output: str
    written: bool
    size: int
    digest: str
    parity: Parity


#: The run artifact, beside a logged model file, whose rows give the model's signature when
#: it is registered (:meth:`Models.register`); autolog writes it.
INPUT_EXAMPLE = "input_example.parquet"
#: The most rows of an input example file that are read.
EXAMPLE_ROWS = 1_000

#: The most rows an export's parity is checked on.
EXPORT_ROWS = 10_000


class Models:
    """Service for the model registry: ``register_model``/``register``, ``get``, ``list``,
    ``versions``, plus ``set_alias``, ``remove_alias``, ``alias_history``, ``archive``,
    ``load`` and ``predict_file``."""

    def __init__(
        self,
        ctx: ServiceContext,
        *,
        datasets: Datasets,
        contracts: Contracts,
        features: Features | None = None,
    ) -> None:
        self._ctx = ctx
        self._datasets = datasets
        self._contracts = contracts
        self._features = features

    # -- registering --------------------------------------------------------------------------

    def register_model(
        self,
        name: str,
        model: Any,
        *,
        run_id: str | None = None,
        input_example: Any = None,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        provenance: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """Save a model in its flavor's format (:mod:`shipyard.registry.flavors`: a
        scikit-learn estimator or pipeline with skops; XGBoost, LightGBM, ONNX in their own
        formats) and register it as a new version. The signature is inferred from
        ``input_example``; an ONNX model whose inputs are one column each has one without.
        ``provenance`` (where the model came from, such as an MLflow import) is recorded in
        the ``model.register`` event and as the version's ``shipyard.KEY`` tags, which its
        card shows.

        Raises:
            InvalidInputError: a model of no flavor, or a bad name.
            MissingDependencyError: the flavor's extra is not installed.
            UntrustedModelError: the saved model holds types that are not trusted (such as a
                FunctionTransformer over a function of your own), so :meth:`load` would refuse
                it; nothing is registered.
            PermissionDeniedError: the actor is not a contributor.
        """
        from shipyard.registry.flavors import flavor_of, save_model

        validate_name(name, "model name")
        with self._ctx.db.read() as conn:
            require_role(conn, self._ctx.actor, "contributor", "register models")
            if run_id is not None:
                from shipyard.tracking.runs import resolve_run_id

                run_id = resolve_run_id(conn, run_id)
        if flavor_of(model) == "onnx":
            from shipyard.registry.flavors.onnx import OnnxModel

            model = OnnxModel.from_onnx(model)
        signature = _signature(model, input_example)
        staging = self._ctx.artifacts.new_staging_path(".model")
        try:
            saved = save_model(model, staging)
            if saved.untrusted_types:
                raise _untrusted(name, "the model", saved.untrusted_types)
            digest, _ = digest_file(staging)
            self._ctx.artifacts.put_file(staging, move=True, digest=digest)
        finally:
            staging.unlink(missing_ok=True)
        details: dict[str, Any] = {"format": saved.format, "versions": saved.versions}
        if saved.flavor == "code":
            details["code_digest"] = model.code_digest
        return self._insert_version(
            name,
            digest,
            saved.flavor,
            signature,
            run_id,
            description,
            details,
            tags=tags,
            provenance=provenance,
        )

    def register(
        self,
        name: str,
        *,
        run_id: str,
        artifact: str,
        input_example: Any = None,
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        """Register a model file (of any flavor) that a run logged as an artifact.

        The file is loaded once with the trusted-type check before it is registered. Its
        signature is inferred, as ``log_model`` infers it, from ``input_example`` (a frame, or
        the path of a CSV or Parquet file of input rows) or, when none is given, from the
        :data:`INPUT_EXAMPLE` the run logged beside the artifact (autolog logs ``model`` with
        ``input_example.parquet``); an ONNX model whose graph describes its columns needs
        neither.

        Raises:
            NotFoundError: the run has no such artifact.
            InvalidInputError: no input example to infer the signature from, or one that does
                not fit the model.
            UntrustedModelError: the file holds types that are not trusted.
        """
        from shipyard.registry.flavors import file_flavor
        from shipyard.tracking.runs import resolve_run_id

        validate_name(name, "model name")
        if isinstance(input_example, str | Path):
            input_example = read_example(Path(input_example))
        with self._ctx.db.read() as conn:
            require_role(conn, self._ctx.actor, "contributor", "register models")
            full = resolve_run_id(conn, run_id)
            found = {
                r.path: r.digest
                for r in conn.execute(
                    select(run_artifacts.c.path, run_artifacts.c.digest).where(
                        run_artifacts.c.run_id == full
                    )
                )
            }
        if artifact not in found:
            raise NotFoundError(
                f"run {full} has no artifact {artifact!r}; its artifacts are: "
                f"{', '.join(sorted(found)) or 'none'}"
            )
        beside = posixpath.join(posixpath.dirname(artifact), INPUT_EXAMPLE)
        source = f"artifact {artifact} of run {full}"
        with self._ctx.artifacts.local_copy(found[artifact], owner=source) as path:
            flavor = _not_code(file_flavor(path), name)
            model = _load_checked(path, name, source)
        if input_example is None and beside in found:
            with self._ctx.artifacts.local_copy(
                found[beside], owner=f"artifact {beside} of run {full}"
            ) as path:
                input_example = read_example(
                    path, fmt="parquet", where=f"artifact {beside} of run {full}"
                )
        try:
            signature = _signature(model, input_example)
        except InvalidInputError as exc:
            raise InvalidInputError(
                f"cannot register model '{name}': the input example does not fit {source}: "
                f"{exc.message}"
            ) from None
        if signature is None:
            raise InvalidInputError(
                f"cannot register model '{name}' from {source}: no input example to infer its "
                f"signature from (the run logged no {beside}); give a CSV or Parquet file of a "
                "few input rows with --input-example FILE (input_example= in Python)",
                details={"model": name, "run_id": full, "artifact": artifact},
            )
        return self._insert_version(
            name,
            found[artifact],
            flavor,
            signature,
            full,
            description,
            {"format": flavor},
            tags,
        )

    def register_file(
        self,
        name: str,
        file: str | Path | BinaryIO,
        *,
        run_id: str | None = None,
        input_example: Any = None,
        description: str = "",
        saved_with: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        signature: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Register a model file saved elsewhere (a remote client's ``log_model``), of any
        flavor (:func:`~shipyard.registry.flavors.save_model`),
        given as a path or an open binary stream: it is loaded once with the trusted-type
        check, its signature inferred from ``input_example`` (a frame, or JSON records: a list
        of objects), and its bytes stored as they are. ``saved_with`` gives the library
        versions it was saved with (:func:`~shipyard.registry.flavors.running_versions` on
        the client), when known.

        A custom code model is not loaded here (that would run its code before anyone
        approved it): its archive and code digest are checked, and its ``signature`` is the
        one its author's client inferred by running it (:meth:`Signature.to_dict
        <shipyard.registry.signatures.Signature.to_dict>`), required for that flavor only.

        Raises:
            InvalidInputError: not a skops file of a scikit-learn model, or a bad name.
            UntrustedModelError: the file holds types that are not trusted.
            NotFoundError: no such run.
            PermissionDeniedError: the actor is not a contributor.
        """
        from shipyard.registry.flavors import file_flavor

        validate_name(name, "model name")
        with self._ctx.db.read() as conn:
            require_role(conn, self._ctx.actor, "contributor", "register models")
            if run_id is not None:
                from shipyard.tracking.runs import resolve_run_id

                run_id = resolve_run_id(conn, run_id)
        if not isinstance(file, str | Path):
            staging = self._ctx.artifacts.new_staging_path(".skops")
            try:
                with open(staging, "wb") as out:
                    shutil.copyfileobj(file, out, 1024 * 1024)
                return self.register_file(
                    name,
                    staging,
                    run_id=run_id,
                    input_example=input_example,
                    description=description,
                    saved_with=saved_with,
                    tags=tags,
                    signature=signature,
                )
            finally:
                staging.unlink(missing_ok=True)
        if isinstance(input_example, list):
            import polars as pl

            try:
                input_example = pl.DataFrame(input_example)
            except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
                raise InvalidInputError(
                    f"the input example is not a list of records with one type per column: {exc}"
                ) from None
        flavor = file_flavor(Path(file))
        details: dict[str, Any] = {"format": "skops" if flavor == "sklearn" else flavor}
        if flavor == "code":
            found = _code_signature(Path(file), name, signature)
            details.update(format=found[2], code_digest=found[0])
            inferred: dict[str, Any] | None = found[1]
        elif signature is not None:
            raise InvalidInputError(
                f"cannot register model '{name}': a signature is given only with a custom code "
                "model; the signature of any other is inferred from its input example"
            )
        else:
            model = _load_checked(Path(file), name, "the uploaded file")
            inferred = _signature(model, input_example)
        blob, _ = self._ctx.artifacts.put_file(file)
        if saved_with:
            details["versions"] = {str(k): str(v) for k, v in saved_with.items()}
        return self._insert_version(
            name, blob.digest, flavor, inferred, run_id, description, details, tags
        )

    def _insert_version(
        self,
        name: str,
        digest: str,
        flavor: str,
        signature: dict[str, Any] | None,
        run_id: str | None,
        description: str,
        details: dict[str, Any],
        tags: Mapping[str, str] | None = None,
        provenance: Mapping[str, str] | None = None,
    ) -> ModelVersion:
        from shipyard.governance.annotations import check_model
        from shipyard.registry.mlflow_registry import write_version_tags

        # Where an imported model came from, in reserved tags that users cannot set.
        reserved = {f"{PROVENANCE_PREFIX}{k}": str(v) for k, v in (provenance or {}).items()}
        if provenance:
            details = {**details, "provenance": dict(provenance)}
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", "register models")
            check_model(tx.conn, name, tags or {})
            model_id, version = insert_version(
                tx, name, digest, flavor, signature, run_id, description, details
            )
            write_version_tags(tx, model_id, name, version, tags or {})
            for key, value in reserved.items():
                tx.conn.execute(
                    model_tags.insert().values(
                        model_id=model_id, version=version, key=key, value=value
                    )
                )
        return replace(self.get(f"{name}@{version}"), created=True)

    # -- reads --------------------------------------------------------------------------------

    def get(self, ref: str) -> ModelVersion:
        """The version a reference points at: ``NAME@3``, ``NAME@production``, ``NAME``.

        Raises:
            NotFoundError: no such model, version or alias.
        """
        with self._ctx.db.read() as conn:
            return to_version(conn, resolve_version(conn, parse_ref(ref)))

    def list(self) -> builtins.list[ModelSummary]:
        """Every registered model with its latest version and aliases."""
        with self._ctx.db.read() as conn:
            models = conn.execute(
                select(registered_models).order_by(registered_models.c.name)
            ).all()
            out = []
            for m in models:
                stats = conn.execute(
                    select(func.max(model_versions.c.version), func.count()).where(
                        model_versions.c.model_id == m.id
                    )
                ).one()
                latest = conn.execute(
                    select(model_versions.c.created_at, model_versions.c.created_by)
                    .where(model_versions.c.model_id == m.id)
                    .order_by(model_versions.c.version.desc())
                    .limit(1)
                ).first()
                aliases = {
                    r.alias: int(r.version)
                    for r in conn.execute(
                        select(model_aliases).where(model_aliases.c.model_id == m.id)
                    )
                }
                out.append(
                    ModelSummary(
                        m.name,
                        int(stats[0] or 0),
                        int(stats[1]),
                        dict(sorted(aliases.items())),
                        latest.created_at if latest else m.created_at,
                        latest.created_by if latest else m.created_by,
                    )
                )
            return out

    def versions(self, name: str) -> builtins.list[ModelVersion]:
        """Every version of a model, oldest first."""
        with self._ctx.db.read() as conn:
            model_id = find_model_id(conn, name)
            rows = conn.execute(
                select_versions()
                .where(model_versions.c.model_id == model_id)
                .order_by(model_versions.c.version)
            ).all()
            return [to_version(conn, r) for r in rows]

    def alias_history(self, name: str, alias: str | None = None) -> builtins.list[AliasEvent]:
        """Every move of the model's aliases (or of one alias), oldest first."""
        with self._ctx.db.read() as conn:
            model_id = find_model_id(conn, name)
            stmt = select(alias_events).where(alias_events.c.model_id == model_id)
            if alias:
                stmt = stmt.where(alias_events.c.alias == alias)
            rows = conn.execute(stmt.order_by(alias_events.c.time, alias_events.c.id)).all()
        return [
            AliasEvent(r.alias, r.from_version, r.to_version, r.actor, r.time, r.reason, r.comment)
            for r in rows
        ]

    def aliases(self, name: str) -> dict[str, int]:
        """The model's aliases now: alias → version, by alias.

        Raises:
            NotFoundError: no such model.
        """
        with self._ctx.db.read() as conn:
            model_id = find_model_id(conn, name)
            rows = conn.execute(
                select(model_aliases.c.alias, model_aliases.c.version)
                .where(model_aliases.c.model_id == model_id)
                .order_by(model_aliases.c.alias)
            ).all()
        return {r.alias: int(r.version) for r in rows}

    def alias_at(self, name: str, alias: str, when: datetime) -> int | None:
        """The version ``alias`` pointed at, at time ``when`` (None if it pointed nowhere)."""
        holder: int | None = None
        for e in self.alias_history(name, alias):
            if e.time > when:
                break
            holder = e.to_version
        return holder

    # -- aliases and status -------------------------------------------------------------------

    def set_alias(self, ref: str, alias: str, *, comment: str = "") -> ModelVersion:
        """Point ``alias`` at a version (contributor). Protected aliases (``production`` and
        any alias a deployment routes to or shadows) are refused: they move only through
        promotion and rollback, which check the policy.

        Raises:
            PermissionDeniedError: the alias is protected, or the actor is not a contributor.
        """
        check_alias(alias)
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", f"move model aliases ({alias})")
            row = resolve_version(tx.conn, parse_ref(ref))
            refuse_protected(tx.conn, row.model_id, row.name, alias, f"{row.name}@{row.version}")
            move_alias(tx, row, alias, reason="set", comment=comment)
            return to_version(tx.conn, resolve_version(tx.conn, parse_ref(f"{row.name}@{alias}")))

    def remove_alias(self, name: str, alias: str) -> None:
        """Remove a (non-protected) alias; the removal is recorded in its history.

        Raises:
            PermissionDeniedError: the alias is protected, or the actor is not a contributor.
            NotFoundError: the model has no such alias.
        """
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", "move model aliases")
            model_id = find_model_id(tx.conn, name)
            refuse_protected(tx.conn, model_id, name, alias, None)
            current = tx.conn.execute(
                select(model_aliases.c.version)
                .where(model_aliases.c.model_id == model_id)
                .where(model_aliases.c.alias == alias)
            ).first()
            if current is None:
                raise NotFoundError(f"model '{name}' has no alias '{alias}'")
            tx.conn.execute(
                model_aliases.delete()
                .where(model_aliases.c.model_id == model_id)
                .where(model_aliases.c.alias == alias)
            )
            tx.conn.execute(
                alias_events.insert().values(
                    model_id=model_id,
                    alias=alias,
                    from_version=int(current.version),
                    to_version=None,
                    actor=self._ctx.actor,
                    time=datetime.now(UTC),
                    reason="remove",
                    comment="",
                )
            )
            tx.record("model.alias.remove", KIND, name, {"alias": alias, "from": current.version})

    def archive(self, ref: str) -> ModelVersion:
        """Mark a version archived (contributor). A version an alias points at cannot be
        archived until the alias moves."""
        with self._ctx.audited() as tx:
            require_role(tx.conn, self._ctx.actor, "contributor", "archive models")
            row = resolve_version(tx.conn, parse_ref(ref))
            held = [
                r.alias
                for r in tx.conn.execute(
                    select(model_aliases.c.alias)
                    .where(model_aliases.c.model_id == row.model_id)
                    .where(model_aliases.c.version == row.version)
                )
            ]
            if held:
                raise ConflictError(
                    f"model '{row.name}@{row.version}' is still {', '.join(held)}; move the "
                    "alias to another version before archiving it"
                )
            self.set_status(tx, row, "archived")
        return self.get(f"{row.name}@{row.version}")

    def set_status(self, tx: AuditedTransaction, row: Any, status: str) -> None:
        """Change a version's status inside a caller's transaction (records an event)."""
        if status not in STATUSES:
            raise InvalidInputError(f"status must be one of {', '.join(STATUSES)}")
        tx.conn.execute(
            update(model_versions).where(model_versions.c.id == row.id).values(status=status)
        )
        tx.record(
            f"model.{status}", KIND, f"{row.name}@{row.version}", {"from": row.status, "to": status}
        )

    # -- using models -------------------------------------------------------------------------

    def load(
        self, ref: str, *, trusted: builtins.list[str] | tuple[str, ...] = ()
    ) -> CheckedPredictor:
        """A predictor for a version: digest verified, loaded with skops' trusted-type check,
        checking every input against the signature. A version saved with another
        scikit-learn minor version still loads; its predictor's ``version_problem`` says so
        (the compiled path refuses it) and a warning is logged.

        Raises:
            IntegrityError: the stored model does not match its digest.
            UntrustedModelError: the file holds a type that is not trusted.
        """
        v = self.get(ref)
        predictor = self._predictor(v, trusted)
        with self._ctx.audited() as tx:
            tx.record("model.load", KIND, v.ref, {"digest": v.digest})
        problem = predictor.version_problem
        if problem is not None:
            log.warning("model %s: %s", v.ref, problem)
        return predictor

    def _predictor(
        self, v: ModelVersion, trusted: builtins.list[str] | tuple[str, ...] = ()
    ) -> CheckedPredictor:
        """The predictor of version ``v``, loaded from its verified file (no audit event). A
        custom code model loads only when its code is approved."""
        from shipyard.registry.code_approvals import confirmed_approvals
        from shipyard.registry.flavors import file_code_digest, load_model
        from shipyard.registry.flavors.code import CodeNotApprovedError
        from shipyard.registry.signatures import CheckedPredictor, Signature

        with self._ctx.artifacts.local_copy(v.digest, owner=f"model '{v.ref}'") as path:
            approved: tuple[str, ...] = ()
            if v.flavor == "code":
                digest = file_code_digest(path)
                if digest is not None:
                    with self._ctx.db.read() as conn:
                        if confirmed_approvals(conn, digest):
                            approved = (digest,)
            try:
                model = load_model(path, trusted=trusted, approved_code=approved)
            except CodeNotApprovedError as exc:
                digest = exc.details.get("code_digest")
                raise CodeNotApprovedError(
                    f"model '{v.ref}' is custom Python code ({digest}), which runs when it is "
                    "loaded, and no approver has approved that code, so it is neither loaded "
                    f"nor served; an approver reads it with `shipyard models code {v.ref}` and "
                    f"approves it with `shipyard models approve-code {v.ref}`",
                    details=exc.details,
                ) from None
        signature = Signature.from_dict(v.signature) if v.signature else None
        return CheckedPredictor(model, signature, name=v.ref, saved_with=v.environment)

    def code(self, ref: str) -> CodeSource:
        """The source code of a custom code model version, its digest and the confirmed
        approvals of that digest, for review (running nothing).

        Raises:
            InvalidInputError: the version is not a custom code model.
        """
        from shipyard.registry.code_approvals import CodeSource, confirmed_approvals
        from shipyard.registry.flavors.bundle import read_bundle
        from shipyard.registry.flavors.code import bundle_digest, check_parts

        v = self.get(ref)
        if v.flavor != "code":
            raise InvalidInputError(f"model '{v.ref}' is of flavor {v.flavor}, not custom code")
        with self._ctx.artifacts.local_copy(v.digest, owner=f"model '{v.ref}'") as path:
            bundle = read_bundle(path.read_bytes(), v.ref)
            models = check_parts(bundle, path)
            digest = bundle_digest(bundle, path)
        with self._ctx.db.read() as conn:
            found = confirmed_approvals(conn, digest)
        return CodeSource(
            v.ref,
            digest,
            str(bundle.manifest.get("class_name", "")),
            bundle.parts["code"].decode(errors="replace"),
            found,
            str(bundle.manifest.get("weights_format", "npz")),
            {name: entry["flavor"] for name, entry in models.items()},
        )

    def approve_code(self, ref: str, *, comment: str = "") -> CodeApproval:
        """Approve the code of a custom code model version (approver role; never an author
        of the version), so that it loads and serves, as does any version with the same code.

        Raises:
            InvalidInputError: the version is not a custom code model.
            PermissionDeniedError: the actor is not an approver, or is an author of it.
        """
        from shipyard.errors import PermissionDeniedError
        from shipyard.registry.code_approvals import ACTION, CodeApproval
        from shipyard.stores.db.tables import code_approvals

        source = self.code(ref)
        actor = self._ctx.actor
        now = datetime.now(UTC)
        with self._ctx.audited() as tx:
            require_role(tx.conn, actor, "approver", "approve model code")
            row = resolve_version(tx.conn, parse_ref(source.model))
            authors = authors_of(tx.conn, row)
            if actor in authors:
                raise PermissionDeniedError(
                    f"user '{actor}' cannot approve the code of {source.model}: they registered "
                    "it or ran the run that produced it, and an author never approves their own "
                    "code (separation of duties); ask another approver",
                    details={"actor": actor, "authors": sorted(authors)},
                )
            res = tx.conn.execute(
                code_approvals.insert().values(
                    digest=source.digest,
                    model=source.model,
                    approver=actor,
                    comment=comment,
                    time=now,
                )
            )
            approval_id = int(res.inserted_primary_key[0])  # type: ignore[index]
            event = tx.record(
                ACTION,
                "code",
                source.digest,
                {"id": approval_id, "model": source.model, "comment": comment},
            )
            tx.conn.execute(
                update(code_approvals)
                .where(code_approvals.c.id == approval_id)
                .values(event_seq=event.seq)
            )
        return CodeApproval(source.digest, source.model, actor, comment, now, event.seq)

    def download(self, ref: str) -> ModelDownload:
        """A version's stored model file, verified before the first byte is handed out (so a
        corrupted blob is an error, never a truncated download), recorded as a load.

        >>> f = project.models.download("credit-risk@production")    # doctest: +SKIP
        >>> data = b"".join(f.chunks)                                  # doctest: +SKIP

        Raises:
            NotFoundError: no such model, version or alias.
            IntegrityError: the stored file is missing or does not match its digest.
        """
        v = self.get(ref)
        owner = f"model '{v.ref}'"
        chunks = _verified_chunks(self._ctx.artifacts.local_copy(v.digest, owner=owner))
        first = next(chunks, b"")  # enters the copy, which verifies the digest
        size = self._ctx.artifacts.size(v.digest)
        with self._ctx.audited() as tx:
            tx.record("model.load", KIND, v.ref, {"digest": v.digest, "via": "download"})

        def all_chunks() -> Iterator[bytes]:
            if first:
                yield first
            yield from chunks

        return ModelDownload(v, size, all_chunks())

    def input_contracts(self, ref: str) -> builtins.list[Contract]:
        """The contracts of the data a version was trained on
        (:meth:`Datasets.governing_contracts`), which every row it scores must also pass, on
        every scoring path: a value outside them (an age of 250, an unknown category) is
        refused like a badly typed one."""
        mv = self.get(ref)
        found: dict[str, Contract] = {}
        for dataset in dict.fromkeys(mv.training_data):
            for governing in self._datasets.governing_contracts(dataset):
                if governing.contract not in found:
                    found[governing.contract] = self._contracts.get(
                        governing.contract, include_deleted=True
                    ).contract
        return builtins.list(found.values())

    def row_checks(
        self,
        ref: str,
        predictor: CheckedPredictor,
        rows: Sequence[dict[str, Any]] | None = None,
    ) -> RowChecks:
        """The checks every row scored by ``predictor`` (version ``ref``) passes first, on every
        scoring path: its signature, the contracts of its training data
        (:meth:`input_contracts`), and no missing value where its pipeline cannot take one
        (probed on ``rows``, else on :meth:`reference_rows`)."""
        from shipyard.registry.row_checks import RowChecks

        if predictor.signature is None:
            return RowChecks()
        return self._rules(ref, predictor, rows).checks(predictor.signature)

    def row_check_rules(self, ref: str) -> RowCheckRules:
        """What :meth:`row_checks` builds a version's checks from, besides its signature: the
        contracts of its training data and the columns its pipeline cannot take missing
        (probed here, on :meth:`reference_rows`). A remote ``models predict`` scores with
        these, so it refuses what a local one refuses without reading the training data.

        Raises:
            NotFoundError: no such model, version or alias.
            IntegrityError: the stored model does not match its digest.
        """
        from shipyard.registry.row_checks import RowCheckRules

        v = self.get(ref)
        if not v.signature:
            return RowCheckRules(v.ref)
        return self._rules(v.ref, self._predictor(v))

    def _rules(
        self,
        ref: str,
        predictor: CheckedPredictor,
        rows: Sequence[dict[str, Any]] | None = None,
    ) -> RowCheckRules:
        from shipyard.registry.row_checks import RowCheckRules, columns_without_nulls

        if rows is None:
            rows = self.reference_rows(ref, 4 * PROBE_ROWS)
        complete = [r for r in rows if all(v is not None for v in r.values())][:PROBE_ROWS]
        return RowCheckRules(
            ref, tuple(self.input_contracts(ref)), columns_without_nulls(predictor, complete)
        )

    def reference_rows(
        self, ref: str, n: int = 256, *, seed: int = 0
    ) -> builtins.list[dict[str, Any]]:
        """Up to ``n`` rows of the data a version was trained on (its training datasets, named
        by its lineage), sampled with ``seed`` and shaped as a request row is after its checks
        (the signature's pydantic model: dates as datetimes, missing values as None). Rows that
        fail the signature are left out, and so is a dataset that cannot be read (with a
        logged warning); empty without a signature or training data. Used to check a compiled
        form against scikit-learn on realistic rows (:func:`shipyard.registry.compiled.
        compile_predictor`), so a model server can call it while loading a version."""
        from pydantic import ValidationError

        from shipyard.registry.signatures import Signature

        mv = self.get(ref)
        if not mv.signature:
            return []
        signature = Signature.from_dict(mv.signature)
        model = signature.inputs.to_pydantic()
        rows: builtins.list[dict[str, Any]] = []
        for dataset in dict.fromkeys(mv.training_data):
            try:
                v = self._datasets.get(dataset)
                if v.kind != "table" or not set(signature.columns) <= set(v.columns):
                    continue
                frame = v.to_polars().select(signature.columns)
            except Exception as exc:  # a sample for a check: never the reason a load fails
                log.warning("model %s: cannot read its training data %s: %s", ref, dataset, exc)
                continue
            if frame.height > n:
                frame = frame.sample(n, seed=seed)
            for record in frame.to_dicts():
                try:
                    rows.append(model.model_validate(record).model_dump(by_alias=True))
                except ValidationError:
                    continue
            if len(rows) >= n:
                break
        return rows[:n]

    def export(
        self,
        ref: str,
        output: str | Path,
        *,
        format: str = "onnx",
        data: str | None = None,
        force: bool = False,
    ) -> ModelExport:
        """Export a version to ``format`` (``onnx``: :mod:`shipyard.registry.export`) at
        ``output``, after checking its parity against the original on the model's own
        validation rows: those of ``data`` (a dataset reference) if given, else of the
        dataset of its newest evaluation, else of its training data (at most
        :data:`EXPORT_ROWS`, sampled). An export whose parity fails is not written
        (``written`` is False); the caller reports it.

        Raises:
            InvalidInputError: an unknown format, an ``output`` whose extension is not the
                format's or whose folder does not exist (it is never created), a model
                without a signature, a model the converters cannot convert, or no rows to
                check it on.
            ConflictError: ``output`` exists and ``force`` is false.
            MissingDependencyError: the ``onnx-export`` extra is not installed.
        """
        from shipyard._internal.files import require_folder, write_bytes_atomic
        from shipyard._internal.hashing import digest_bytes
        from shipyard.registry.export import FORMATS, SUFFIXES, check_parity, to_onnx

        if format not in FORMATS:
            raise InvalidArgumentError(
                f"cannot export to {format!r}: the formats are {', '.join(FORMATS)}"
            )
        dest = Path(output).expanduser()
        if dest.suffix.lower() not in SUFFIXES[format]:
            given = f"a {dest.suffix} file" if dest.suffix else "a file without an extension"
            raise InvalidArgumentError(
                f"{dest}: cannot write {given}; an export to {format} writes "
                f"{', '.join(SUFFIXES[format])}"
            )
        if dest.is_dir():
            raise InvalidInputError(f"{dest} is a folder; give a file name")
        require_folder(dest)
        exists = ConflictError(
            f"{dest} already exists; pass --force to replace it (force=True in Python)"
        )
        if dest.exists() and not force:
            raise exists
        v = self.get(ref)
        predictor = self.load(v.ref)
        if predictor.signature is None:
            raise InvalidInputError(
                f"model '{v.ref}' has no signature, so the inputs of its export are unknown; "
                "register it with an input example"
            )
        frame, rows_from = self._validation_rows(v, predictor, data)
        exported = to_onnx(predictor.model, predictor.signature)
        parity = check_parity(predictor, exported, frame, rows_from)
        digest = digest_bytes(exported)
        if parity.passed:
            try:
                write_bytes_atomic(dest, exported, overwrite=force, parents=False)
            except FileExistsError:  # created meanwhile by someone else
                raise exists from None
            except FileNotFoundError:
                require_folder(dest)
                raise
        with self._ctx.audited() as tx:
            tx.record(
                "model.export",
                KIND,
                v.ref,
                {"format": format, "digest": digest, "parity": parity.to_dict()},
            )
        return ModelExport(v.ref, format, str(dest), parity.passed, len(exported), digest, parity)

    def _validation_rows(
        self, v: ModelVersion, predictor: CheckedPredictor, data: str | None
    ) -> tuple[Any, str]:
        """The rows an export is checked on, and which data they are."""
        from shipyard.stores.db.tables import evaluation_reports

        if data is None:
            with self._ctx.db.read() as conn:
                data = conn.execute(
                    select(evaluation_reports.c.dataset)
                    .join(
                        registered_models,
                        registered_models.c.id == evaluation_reports.c.model_id,
                    )
                    .where(registered_models.c.name == v.name)
                    .where(evaluation_reports.c.version == v.version)
                    .order_by(evaluation_reports.c.id.desc())
                    .limit(1)
                ).scalar()
        if data is not None:
            dataset = self._datasets.get(data)
            frame = dataset.to_pandas()
            if len(frame) > EXPORT_ROWS:
                frame = frame.sample(EXPORT_ROWS, random_state=0)
            return frame, dataset.ref
        rows = self.reference_rows(v.ref, EXPORT_ROWS)
        if not rows:
            raise InvalidInputError(
                f"model '{v.ref}' has no evaluation and no readable training data to check its "
                "export on; pass a dataset (--data)"
            )
        return predictor.frame_from_records(rows), "its training data"

    def lineage(self, ref: str) -> dict[str, Any]:
        """Where a version came from: its run and, through it, the datasets."""
        v = self.get(ref)
        with self._ctx.db.read() as conn:
            up = walk(conn, KIND, v.ref, upstream=True)
        return {"ref": v.ref, "digest": v.digest, "upstream": up}

    def predict_file(
        self,
        ref: str,
        source: str | Path,
        dest: str | Path,
        *,
        chunk_size: int = 50_000,
        on_invalid: OnInvalid = "reject",
        force: bool = False,
        timestamp: str | None = None,
        online: bool = False,
        progress: Progress = NO_PROGRESS,
    ) -> dict[str, Any]:
        """Score a CSV or Parquet file chunk by chunk into ``dest`` (.csv or .parquet): the
        input columns plus ``prediction`` (the model's own ``predict()``) and, for a
        classifier, ``proba_<class>``. Memory is bounded by the chunk size, not the file size.

        Every row is checked as the model server checks a request: the signature and the
        contracts of the training data (:meth:`input_contracts`). ``on_invalid`` says what
        happens to a refused row: ``reject`` (nothing is written), ``skip`` or ``null`` (see
        :mod:`shipyard.registry.batch`; refused rows go to ``<stem>.rejected.csv``).

        A version trained on ``features historical`` output gets its feature columns filled
        (:mod:`shipyard.features.lookup`), so the file needs the join keys and the other
        columns only: **point in time** as of each row's ``timestamp`` column (by default the
        file's only date or datetime column), the values the version would have been given
        then; with ``online``, or when the file has no date or datetime column, the latest
        values in the online store, as the model server reads them. The result says which
        (``features``), and the output holds the values scored.

        Raises:
            InvalidInputError: a bad file, refused rows with ``on_invalid="reject"``, a
                ``timestamp`` that is not a column, several time columns to choose from, or
                rows without the features' join keys.
            ConflictError: the output exists and ``force`` is false.
        """
        from shipyard.registry.batch import input_format, score_file

        input_format(Path(source))  # a missing input is refused before the model loads
        predictor = self.load(ref)
        checks = self.row_checks(ref, predictor)
        fill: Any = None
        filled: tuple[str, ...] = ()
        how: dict[str, Any] | None = None
        if predictor.signature is not None and self._features is not None:
            found = self._model_features(ref, predictor.signature.columns)
            if found is not None:
                fill, how = self._feature_fill(found, Path(source), timestamp, online)
                filled = found.columns
        doc = score_file(
            predictor,
            Path(source),
            Path(dest),
            chunk_size,
            progress,
            checks=checks,
            on_invalid=on_invalid,
            force=force,
            fill=fill,
            filled=filled,
        )
        if how is not None:
            doc["features"] = how
        return doc

    def _model_features(self, ref: str, columns: Sequence[str]) -> ModelFeatures | None:
        from shipyard.features.lookup import model_features

        assert self._features is not None
        return model_features(self._ctx.db, self._features, self._datasets, self.get(ref), columns)

    def _feature_fill(
        self, found: ModelFeatures, source: Path, timestamp: str | None, online: bool
    ) -> tuple[Any, dict[str, Any]]:
        """How ``models predict`` fills the feature columns of the rows of ``source``: the
        function for each chunk, and what it does (for the result)."""
        import pyarrow as pa
        import pyarrow.dataset as ds

        from shipyard.features.lookup import fill_table, time_columns
        from shipyard.registry.batch import input_format

        assert self._features is not None
        features = self._features
        if timestamp is not None and online:
            raise InvalidInputError("give --timestamp or --online, not both")
        try:
            schema = ds.dataset(str(source), format=input_format(source)).schema
        except (pa.ArrowException, OSError) as exc:
            raise InvalidInputError(f"{source}: cannot read: {exc}") from None
        absent = [k for k in found.join_keys if k not in schema.names]
        if absent:
            raise InvalidInputError(
                f"{source} lacks {', '.join(absent)}: the features of this model "
                f"({', '.join(found.refs)}) are looked up by {', '.join(found.join_keys)}"
            )
        if timestamp is not None and timestamp not in schema.names:
            raise InvalidInputError(
                f"{source} has no column {timestamp!r} to join the features as of; its time "
                f"columns: {', '.join(time_columns(schema)) or 'none'}"
            )
        if timestamp is None and not online:
            found_times = time_columns(schema, leave_out=found.columns)
            if len(found_times) > 1:
                raise InvalidInputError(
                    f"{source} has several time columns ({', '.join(found_times)}): name the "
                    "one to join the features as of with --timestamp (timestamp= in Python), "
                    "or read the latest values with --online"
                )
            timestamp = found_times[0] if found_times else None
        how = {
            "refs": list(found.refs),
            "mode": "online" if timestamp is None else "point_in_time",
            "timestamp": timestamp,
        }

        return fill_table(features, found, timestamp, str(source)), how


# -- helpers --------------------------------------------------------------------------------------


def _untrusted(name: str, source: str, types: Sequence[str]) -> UntrustedModelError:
    """The refusal of ``register_model`` and ``register`` (one message for both) to register
    a model whose file names types that ``load`` would not trust."""
    from shipyard.registry.flavors import UntrustedModelError as Untrusted

    return Untrusted(
        f"cannot register model '{name}': {source} holds types that are not trusted: "
        f"{', '.join(types)}; shipyard loads only scikit-learn, numpy and scipy types, so "
        "it could not load this version (a FunctionTransformer over a function of your own "
        "or an estimator class of your own is not trusted); nothing was registered",
        details={"model": name, "untrusted_types": list(types)},
    )


def read_example(path: Path, *, fmt: str | None = None, where: str | None = None) -> Any:
    """The first :data:`EXAMPLE_ROWS` rows of the CSV or Parquet file ``path`` (``fmt``
    ``csv`` or ``parquet``, else told by its suffix) as a polars frame, read as ``models
    predict`` reads its input; ``where`` names the file in errors.

    Raises:
        InvalidInputError: not a readable .csv or .parquet file, or one without rows.
    """
    import polars as pl
    import pyarrow as pa
    import pyarrow.dataset as ds

    where = where or str(path)
    fmt = fmt or _EXAMPLE_FORMATS.get(path.suffix.lower())
    if fmt is None or not path.is_file():
        raise InvalidInputError(
            f"{where}: give an existing .csv or .parquet file of input rows as the input example"
        )
    try:
        table = ds.dataset(str(path), format=fmt).head(EXAMPLE_ROWS)
    except (pa.ArrowException, OSError) as exc:
        raise InvalidInputError(f"{where}: cannot read the input example: {exc}") from None
    if table.num_rows == 0:
        raise InvalidInputError(f"{where}: the input example has no rows")
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


_EXAMPLE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def _not_code(flavor: str, name: str) -> str:
    """Refuse a custom code model given as a file: its signature needs its code run, which
    only log_model (in the author's own process) does."""
    if flavor == "code":
        raise InvalidInputError(
            f"cannot register model '{name}' from a file: it is custom Python code, which is "
            "registered with log_model in the project (run.log_model(CodeModel(...), ...))"
        )
    return flavor


def _code_signature(
    path: Path, name: str, signature: Mapping[str, Any] | None
) -> tuple[str, dict[str, Any], str]:
    """The code digest of the custom code model file ``path`` (its archive checked, its code
    not run), ``signature``, checked to be one, and the file's format.

    Raises:
        InvalidInputError: a damaged archive, or no valid signature.
    """
    from shipyard.registry.flavors import file_code_digest, load_model
    from shipyard.registry.flavors.code import CodeNotApprovedError
    from shipyard.registry.signatures import Signature

    try:
        load_model(path)  # the archive's parts and manifest are checked; the code never runs
    except CodeNotApprovedError:
        pass
    except InvalidInputError as exc:
        message = exc.message.replace(str(path), "the uploaded file")
        raise InvalidInputError(f"cannot register model '{name}': {message}") from None
    digest = file_code_digest(path)
    assert digest is not None  # a code archive, which load_model checked
    if signature is None:
        raise InvalidInputError(
            f"cannot register model '{name}': it is custom Python code, which the server does "
            "not run before an approver approves it, so its signature comes with it (the "
            "client's log_model infers it by running the model on the input example)"
        )
    try:
        checked = Signature.from_dict(dict(signature)).to_dict()
    except InvalidInputError as exc:
        raise InvalidInputError(
            f"cannot register model '{name}': the signature given is not one: {exc.message}"
        ) from None
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"cannot register model '{name}': the signature given is not one ({exc})"
        ) from None
    from shipyard.registry.flavors.bundle import read_bundle
    from shipyard.registry.flavors.code import code_format

    return digest, checked, code_format(read_bundle(path.read_bytes(), "the uploaded file"))


def _signature(model: Any, input_example: Any) -> dict[str, Any] | None:
    """The signature of a model to register: inferred from ``input_example``, else the one
    an ONNX graph with one input per column describes, else None."""
    from shipyard.registry.flavors.onnx import OnnxModel
    from shipyard.registry.signatures import infer_signature

    if input_example is not None:
        return infer_signature(model, input_example).to_dict()
    if isinstance(model, OnnxModel):
        found = model.signature()
        return None if found is None else found.to_dict()
    return None


def _load_checked(path: Path, name: str, source: str) -> Any:
    """The model in the file ``path`` (any flavor), loaded with the trusted-type check; a refusal
    names the model and ``source``, not a temporary copy."""
    from shipyard.registry.flavors import UntrustedModelError, load_model

    try:
        return load_model(path)
    except UntrustedModelError as exc:
        raise _untrusted(name, source, exc.details.get("untrusted_types", [])) from None
    except InvalidInputError as exc:
        message = exc.message.replace(str(path), source)
        raise InvalidInputError(f"cannot register model '{name}': {message}") from None


def _verified_chunks(copy: Any) -> Iterator[bytes]:
    """The bytes of a verified local copy (``ArtifactStore.local_copy``), which stays open
    until the last chunk is read or the iterator is closed."""
    with copy as path, open(path, "rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            yield chunk


def insert_version(
    tx: AuditedTransaction,
    name: str,
    digest: str,
    flavor: str,
    signature: dict[str, Any] | None,
    run_id: str | None,
    description: str,
    details: dict[str, Any],
) -> tuple[int, int]:
    """Insert the next version of model ``name`` (created if new) inside the caller's
    transaction, with its blob owner, run lineage and ``model.register`` event: the one way a
    version enters the registry (:class:`Models` and the MLflow registry protocol call it after
    their checks). Returns the model's id and the new version number."""
    now = datetime.now(UTC)
    model_id = ensure_model(tx, name, now)
    version = next_version(tx.conn, model_versions, model_versions.c.model_id == model_id)
    metrics: dict[str, float] = {}
    if run_id is not None:
        # JSON has no NaN or infinity: a run's non-finite metrics stay with the run.
        metrics = {
            r.key: value
            for r in tx.conn.execute(
                select(run_latest_metrics.c.key, run_latest_metrics.c.value).where(
                    run_latest_metrics.c.run_id == run_id
                )
            )
            if math.isfinite(value := float(r.value))
        }
    ref = f"{name}@{version}"
    tx.conn.execute(
        model_versions.insert().values(
            model_id=model_id,
            version=version,
            digest=digest,
            flavor=flavor,
            signature=signature,
            run_id=run_id,
            status="candidate",
            description=description,
            metrics=metrics,
            created_at=now,
            created_by=tx.actor,
            environment=details.get("versions"),
        )
    )
    tx.conn.execute(
        blob_refs.insert().values(digest=digest, owner_kind=KIND, owner=ref, role="model")
    )
    if run_id is not None:
        add_edge(tx.conn, ("run", run_id), (KIND, ref), "produced")
    tx.record(
        "model.register",
        KIND,
        ref,
        {"digest": digest, "flavor": flavor, "run_id": run_id, **details},
    )
    return model_id, version


def ensure_model(tx: AuditedTransaction, name: str, now: datetime) -> int:
    """The id of registered model ``name``, created (with its ``model.create`` event) inside
    the caller's transaction if it does not exist yet."""
    row = tx.conn.execute(
        select(registered_models.c.id).where(registered_models.c.name == name)
    ).first()
    if row is not None:
        return int(row.id)
    res = tx.conn.execute(
        registered_models.insert().values(name=name, created_at=now, created_by=tx.actor)
    )
    tx.record("model.create", KIND, name, {})
    return int(res.inserted_primary_key[0])  # type: ignore[index]
