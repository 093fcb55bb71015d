"""The metadata schema, as SQLAlchemy Core tables.

The Alembic migrations under ``migrations/versions`` create exactly these tables; a test
compares the two so that they cannot drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)

__all__ = [
    "alerts",
    "alias_events",
    "api_tokens",
    "approvals",
    "audit_events",
    "audit_head",
    "blob_refs",
    "card_sections",
    "code_approvals",
    "comment_revisions",
    "comments",
    "contract_versions",
    "contracts",
    "dataset_versions",
    "datasets",
    "deployment_events",
    "deployments",
    "drift_references",
    "evaluation_reports",
    "experiments",
    "feature_entities",
    "feature_online_reads",
    "feature_views",
    "feedback",
    "kpi_events",
    "lineage_edges",
    "logged_models",
    "metadata",
    "model_aliases",
    "model_tags",
    "model_version_sources",
    "model_versions",
    "monitor_results",
    "monitors",
    "pipeline_runs",
    "pipeline_steps",
    "policies",
    "prediction_segments",
    "predictions",
    "registered_models",
    "run_artifacts",
    "run_inputs",
    "run_latest_metrics",
    "run_metric_blocks",
    "run_metrics",
    "run_params",
    "run_tags",
    "runs",
    "scheduler_triggers",
    "users",
    "webhook_attempts",
    "webhook_cursor",
    "webhook_deliveries",
    "webhooks",
]


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the metadata store; use UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


# The prev_hash of the first audit event.
GENESIS_HASH = "blake3:" + "0" * 64

JSONType = JSON()

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(128), nullable=False),
)

# API tokens of the team server: the secret is kept only as a salted scrypt hash.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user", String(128), nullable=False),
    Column("label", String(128), nullable=False),
    Column("salt", String(64), nullable=False),
    Column("hash", String(128), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("revoked_by", String(128), nullable=True),
    Index("ix_api_tokens_user", "user"),
)

# One row that every mutating transaction updates: it serialises writers on the audit chain
# (a row lock on PostgreSQL, the database write lock on SQLite) so the chain never forks.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(80), nullable=False),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("time", String(40), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("entity_kind", String(32), nullable=False),
    Column("entity", String(300), nullable=False),
    Column("payload", Text, nullable=False),
    Column("prev_hash", String(80), nullable=False),
    Column("hash", String(80), nullable=False),
    # The API token the change was made with (team server); part of the hash when set.
    Column("token_id", String(32), nullable=True),
    Index("ix_audit_events_entity", "entity_kind", "entity"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(128), nullable=False),
    # The contract every new version is validated against: NAME (its latest) or NAME@N.
    Column("contract", String(300), nullable=True),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("kind", String(16), nullable=False),  # "table" | "files"
    Column("rows", BigInteger, nullable=True),
    Column("size_bytes", BigInteger, nullable=False),
    Column("columns", JSONType, nullable=False),
    Column("schema", JSONType, nullable=False),
    Column("profile", JSONType, nullable=False),
    Column("source", JSONType, nullable=False),
    Column("source_digest", String(80), nullable=True),
    Column("message", Text, nullable=False, default=""),
    Column("tags", JSONType, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(128), nullable=False),
    # "unvalidated", "valid" or "invalid" (stored with --allow-invalid).
    Column("status", String(16), nullable=False, server_default="unvalidated"),
    Column("validation", JSONType, nullable=True),  # the latest ValidationReport
    Column("contract", String(300), nullable=True),  # the contract version it was checked with
    # Soft deletion (migration 0018): hidden from listings and from "latest"; restorable.
    Column("deleted_at", UTCDateTime(), nullable=True),
    Column("deleted_by", String(128), nullable=True),
    Column("deleted_reason", Text, nullable=True),
    # When its blobs were removed from the artifact store: the row stays as a tombstone.
    Column("purged_at", UTCDateTime(), nullable=True),
    UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_dataset_version"),
    Index("ix_dataset_versions_digest", "dataset_id", "digest"),
    Index("ix_dataset_versions_source_digest", "source_digest"),
)

# The drift reference of a table version (shipyard.monitoring.reference): computed when the
# version is added, or on first use for versions older than this table. Derived from the
# version's stored bytes, so it is not audited (like the column profile).
drift_references = Table(
    "drift_references",
    metadata,
    Column("dataset_version_id", Integer, ForeignKey("dataset_versions.id"), primary_key=True),
    # ReferenceProfile.to_json() as JSON text: written with orjson, 40 times faster than the
    # JSON type's json.dumps on a reference's 20,000 sample values (nothing queries inside it).
    Column("reference", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

contracts = Table(
    "contracts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(128), nullable=False),
)

contract_versions = Table(
    "contract_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("contract_id", Integer, ForeignKey("contracts.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("spec", JSONType, nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(128), nullable=False),
    # Soft deletion (migration 0018): hidden from listings and from "latest"; restorable.
    Column("deleted_at", UTCDateTime(), nullable=True),
    Column("deleted_by", String(128), nullable=True),
    Column("deleted_reason", Text, nullable=True),
    UniqueConstraint("contract_id", "version", name="uq_contract_versions_contract_version"),
)

# -- experiment tracking ------------------------------------------------------------------------

experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(128), nullable=False),
    # Soft deletion (migration 0018): hidden from listings and from "latest"; restorable.
    Column("deleted_at", UTCDateTime(), nullable=True),
    Column("deleted_by", String(128), nullable=True),
    Column("deleted_reason", Text, nullable=True),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),  # uuid4 hex
    Column("experiment_id", Integer, ForeignKey("experiments.id"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("status", String(16), nullable=False),  # RUNNING, FINISHED, FAILED, KILLED
    Column("lifecycle", String(16), nullable=False, server_default="active"),  # or deleted
    Column("start_time", BigInteger, nullable=False),  # milliseconds since the epoch
    Column("end_time", BigInteger, nullable=True),
    Column("created_by", String(128), nullable=False),
    Column("error", Text, nullable=True),
    Column("code", JSONType, nullable=False),  # git commit, dirty flag, diff digest
    Column("environment", JSONType, nullable=False),  # python, packages, host, command
    Index("ix_runs_experiment", "experiment_id", "start_time"),
)

run_params = Table(
    "run_params",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

run_tags = Table(
    "run_tags",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

# Every logged point. No primary key beyond the row id: points are only appended.
run_metrics = Table(
    "run_metrics",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", String(32), nullable=False),
    Column("key", String(250), nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),  # milliseconds since the epoch
    Column("value", Float, nullable=False),
    # A series comes out in (step, timestamp, id) order without a sort, and is read (and
    # downsampled by the database, see tracking/series.py) from the index alone.
    Index("ix_run_metrics_series", "run_id", "key", "step", "timestamp", "id", "value"),
)

# The last point of each metric (highest step, then latest time) and its range: what filters
# and ordering use, so that searching many runs never scans every point.
run_latest_metrics = Table(
    "run_latest_metrics",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("step", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("value", Float, nullable=False),
    # The lowest and highest value of every point logged so far (kept at write time).
    Column("min_value", Float, nullable=False),
    Column("max_value", Float, nullable=False),
    Index("ix_run_latest_metrics_key_value", "key", "value"),
)

# Each metric series rolled up at write time into aligned blocks of 2**level steps (block
# ``b`` of a level holds steps ``b * 2**level`` to ``(b + 1) * 2**level - 1``): how many points
# fell in it, and its first lowest and first highest point (in step, timestamp, logging
# order). A chart of a long series reads a thousand or so blocks instead of every point; see
# tracking/blocks.py. No rowid on SQLite: the key is the table.
run_metric_blocks = Table(
    "run_metric_blocks",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("key", String(250), primary_key=True),
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("block", BigInteger, primary_key=True, autoincrement=False),
    Column("points", BigInteger, nullable=False),
    Column("min_step", BigInteger, nullable=False),
    Column("min_timestamp", BigInteger, nullable=False),
    Column("min_value", Float, nullable=False),
    Column("max_step", BigInteger, nullable=False),
    Column("max_timestamp", BigInteger, nullable=False),
    Column("max_value", Float, nullable=False),
    sqlite_with_rowid=False,
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("dataset", String(300), primary_key=True),  # name@version
    Column("context", String(64), primary_key=True),  # train, valid, test, ...
    Column("digest", String(80), nullable=False),
)

run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("digest", String(80), nullable=False),
    Column("size", BigInteger, nullable=False),
)

# -- model registry -------------------------------------------------------------------------------

registered_models = Table(
    "registered_models",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("description", Text, nullable=False, server_default=""),
    Column("risk_tier", String(16), nullable=True),  # selects risk_tiers rules of the policy
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(128), nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("registered_models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(80), nullable=False),  # the serialized model blob
    Column("flavor", String(32), nullable=False),
    Column("signature", JSONType, nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("status", String(16), nullable=False),  # candidate, approved, rejected, archived
    Column("description", Text, nullable=False, server_default=""),
    Column("metrics", JSONType, nullable=False),  # the source run's latest metrics
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(128), nullable=False),
    # The library versions the model was saved with ({"sklearn": "1.6.1", ...}); checked at load.
    Column("environment", JSONType, nullable=True),
    UniqueConstraint("model_id", "version", name="uq_model_versions_model_version"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id"), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
)

# Free-form key/value tags of registered models (version 0) and model versions, as the MLflow
# registry has them; shipyard's own state (status, aliases) never lives here.
model_tags = Table(
    "model_tags",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id"), primary_key=True),
    Column("version", Integer, primary_key=True),  # 0: the registered model itself
    Column("key", String(250), primary_key=True),
    Column("value", Text, nullable=False),
)

# Where a version registered through the MLflow protocol came from: the client's source URI,
# its MLflow logged model, and the MLflow model directory (a path of the MLflow artifact tree,
# ``<experiment>/models/<model id>/artifacts``) that the client downloads it from.
model_version_sources = Table(
    "model_version_sources",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("source", Text, nullable=False),
    Column("logged_model_id", String(40), nullable=True),
    Column("artifact_path", String(1024), nullable=False),
)

# MLflow 3 logged models: a model logged (usually by a run) before, or without, registration.
# Its files are in the MLflow artifact tree under ``<experiment id>/models/<id>/artifacts``.
logged_models = Table(
    "logged_models",
    metadata,
    Column("id", String(40), primary_key=True),  # m-<32 hex>
    Column("experiment_id", Integer, ForeignKey("experiments.id"), nullable=False),
    Column("run_id", String(32), ForeignKey("runs.id"), nullable=True),
    Column("name", String(256), nullable=False),
    Column("model_type", String(128), nullable=False, server_default=""),
    Column("status", String(16), nullable=False),  # PENDING, READY, UPLOAD_FAILED
    Column("status_message", Text, nullable=False, server_default=""),
    Column("params", JSONType, nullable=False),
    Column("tags", JSONType, nullable=False),
    Column("created_at", BigInteger, nullable=False),  # milliseconds since the epoch
    Column("updated_at", BigInteger, nullable=False),
    Column("created_by", String(128), nullable=False),
    Index("ix_logged_models_run", "run_id"),
)

# Every move of every alias, so "what was in production on 3 May?" has an answer.
alias_events = Table(
    "alias_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("registered_models.id"), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("from_version", Integer, nullable=True),
    Column("to_version", Integer, nullable=True),  # None when the alias was removed
    Column("actor", String(128), nullable=False),
    Column("time", UTCDateTime(), nullable=False),
    Column("reason", String(32), nullable=False),  # set, promote, rollback, remove
    Column("comment", Text, nullable=False, server_default=""),
    Index("ix_alias_events_model_alias", "model_id", "alias", "time"),
)

# -- governance -----------------------------------------------------------------------------------

evaluation_reports = Table(
    "evaluation_reports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("registered_models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("dataset", String(300), nullable=False),  # name@version
    Column("dataset_digest", String(80), nullable=False),
    Column("label", String(250), nullable=False),
    Column("report", JSONType, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(128), nullable=False),
    Index("ix_evaluation_reports_model_version", "model_id", "version"),
)

# A policy per model name, and the project default under the name "*". Versioned.
policies = Table(
    "policies",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("spec", JSONType, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(128), nullable=False),
    UniqueConstraint("name", "version", name="uq_policies_name_version"),
)

# An approver's approval of a custom model's code (by the digest of its source): the code
# runs when such a model loads, so it loads only once approved. Like a decision on a version,
# it counts only when its audit event confirms it.
code_approvals = Table(
    "code_approvals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("digest", String(80), nullable=False),
    Column("model", String(300), nullable=False),  # name@version it was approved through
    Column("approver", String(128), nullable=False),
    Column("comment", Text, nullable=False),
    Column("time", UTCDateTime(), nullable=False),
    Column("event_seq", BigInteger, nullable=True),
    Index("ix_code_approvals_digest", "digest"),
)

approvals = Table(
    "approvals",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("model_id", Integer, ForeignKey("registered_models.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("approver", String(128), nullable=False),
    Column("decision", String(16), nullable=False),  # approve | reject
    Column("comment", Text, nullable=False),
    Column("time", UTCDateTime(), nullable=False),
    # The audit event that recorded this decision: an approval counts only when its event
    # confirms it (a row edited or inserted by hand does not).
    Column("event_seq", BigInteger, nullable=True),
    Index("ix_approvals_model_version", "model_id", "version"),
)

# The human-written sections of a model card (the latest text; earlier texts are in the audit
# log).
card_sections = Table(
    "card_sections",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("section", String(64), primary_key=True),
    Column("text", Text, nullable=False),
    Column("author", String(128), nullable=False),
    Column("time", UTCDateTime(), nullable=False),
)

# A deployment: what serves behind a name, the only thing a model server reads. ``routes`` maps
# aliases to traffic weights; every alias it routes to or shadows is protected.
deployments = Table(
    "deployments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("model_id", Integer, ForeignKey("registered_models.id"), nullable=False),
    Column("routes", JSONType, nullable=False),  # {alias: weight}
    Column("shadow", String(64), nullable=True),
    Column("version", Integer, nullable=False),  # 1, 2, ... one per change
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("updated_by", String(128), nullable=False),
)

# Every change of every deployment: who, when, from what to what.
deployment_events = Table(
    "deployment_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("deployment_id", Integer, ForeignKey("deployments.id"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("from_routes", JSONType, nullable=True),
    Column("to_routes", JSONType, nullable=False),
    Column("from_shadow", String(64), nullable=True),
    Column("to_shadow", String(64), nullable=True),
    Column("actor", String(128), nullable=False),
    Column("time", UTCDateTime(), nullable=False),
    Column("comment", Text, nullable=False, server_default=""),
    UniqueConstraint("deployment_id", "version", name="uq_deployment_events_deployment_version"),
)

# -- serving --------------------------------------------------------------------------------------

# One row per prediction (the slim index: what was answered, when, by which version); the full
# inputs are in Parquet segments in the artifact store.
predictions = Table(
    "predictions",
    metadata,
    Column("request_id", String(32), primary_key=True),
    Column("deployment", String(128), nullable=False),
    Column("model", String(300), nullable=False),  # name@version that answered (or shadowed)
    Column("shadow", Boolean, nullable=False, server_default=text("false")),
    Column("prediction", Text, nullable=False),  # JSON
    Column("time", BigInteger, nullable=False),  # milliseconds since the epoch
    Column("latency_ms", Float, nullable=False),
    Index("ix_predictions_deployment_time", "deployment", "time"),
)

prediction_segments = Table(
    "prediction_segments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("deployment", String(128), nullable=False),
    Column("digest", String(80), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("first_time", BigInteger, nullable=False),
    Column("last_time", BigInteger, nullable=False),
    Index("ix_prediction_segments_deployment_time", "deployment", "last_time"),
)

# One label per request id: the first is kept unless a client replaces it on purpose, which is
# recorded (the label it replaced, and when).
feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("request_id", String(32), nullable=False),
    Column("deployment", String(128), nullable=False),
    Column("label", Text, nullable=False),  # JSON
    Column("time", BigInteger, nullable=False),
    Column("replaced_label", Text, nullable=True),  # JSON of the label this one replaced
    Column("replaced_at", BigInteger, nullable=True),
    Index("ix_feedback_request", "request_id", unique=True),
    Index("ix_feedback_deployment_time", "deployment", "time"),
)

kpi_events = Table(
    "kpi_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("deployment", String(128), nullable=False),
    Column("name", String(128), nullable=False),
    Column("value", Float, nullable=False),
    Column("request_id", String(32), nullable=True),
    Column("time", BigInteger, nullable=False),
    Index("ix_kpi_events_deployment_time", "deployment", "time"),
)

# Which stored blobs belong to which entity, so an integrity error can name its owner.
blob_refs = Table(
    "blob_refs",
    metadata,
    Column("digest", String(80), primary_key=True),
    Column("owner_kind", String(32), primary_key=True),
    Column("owner", String(300), primary_key=True),
    Column("role", String(32), nullable=False),  # "data", "manifest", "file", ...
)

# Directed edges of the lineage graph between any two entities.
lineage_edges = Table(
    "lineage_edges",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("parent_kind", String(32), nullable=False),
    Column("parent", String(300), nullable=False),
    Column("child_kind", String(32), nullable=False),
    Column("child", String(300), nullable=False),
    Column("relation", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_lineage_edges_parent", "parent_kind", "parent"),
    Index("ix_lineage_edges_child", "child_kind", "child"),
)


# Comments on an entity (a dataset version, run, model version or deployment), by its kind and
# canonical reference. ``text`` is the latest Markdown, stored raw; every text it has had, the
# first included, is a row of ``comment_revisions``.
comments = Table(
    "comments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("entity_kind", String(32), nullable=False),
    Column("entity", String(300), nullable=False),
    Column("author", String(128), nullable=False),
    Column("text", Text, nullable=False),
    Column("mentions", JSONType, nullable=False),  # user names, in order of first mention
    Column("created_at", UTCDateTime(), nullable=False),
    Column("edited_at", UTCDateTime(), nullable=True),
    Column("revisions", Integer, nullable=False),
    Index("ix_comments_entity", "entity_kind", "entity"),
)

comment_revisions = Table(
    "comment_revisions",
    metadata,
    Column("comment_id", Integer, ForeignKey("comments.id"), primary_key=True),
    Column("revision", Integer, primary_key=True, autoincrement=False),
    Column("text", Text, nullable=False),
    Column("mentions", JSONType, nullable=False),
    Column("time", UTCDateTime(), nullable=False),
    Column("editor", String(128), nullable=False),
)

# Webhook subscriptions. Secrets are never stored: only the file or environment variable to
# read them from when sending. ``after_seq``: the audit event a subscription starts after.
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", Text, nullable=False),
    Column("events", JSONType, nullable=False),
    Column("format", String(16), nullable=False),  # generic | slack | jira | trello
    Column("options", JSONType, nullable=False),  # Jira project and issue type, Trello list
    Column("secret_file", Text, nullable=True),
    Column("secret_env", String(128), nullable=True),
    Column("after_seq", BigInteger, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", Text, nullable=True),
    Column("failures", Integer, nullable=False),  # consecutive deliveries that failed
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("removed_at", UTCDateTime(), nullable=True),
)

# The durable delivery queue: one row per (subscription, event); a claim (``claim``,
# ``lease_until``) lets one worker at a time send it, whatever the number of workers.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),  # also the webhook-id header (msg_...)
    Column("webhook_id", Integer, ForeignKey("webhooks.id"), nullable=False),
    Column("event", String(64), nullable=False),
    Column("event_seq", BigInteger, nullable=True),  # the audit event; None for tests, redeliveries
    Column("payload", JSONType, nullable=False),  # {"type", "timestamp", "data"}
    Column("status", String(16), nullable=False),  # pending | sending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("claim", String(32), nullable=True),
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("redelivery_of", String(40), nullable=True),
    UniqueConstraint("webhook_id", "event_seq", "event", name="uq_webhook_deliveries_event"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_webhook", "webhook_id", "created_at"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("delivery_id", String(40), ForeignKey("webhook_deliveries.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("time", UTCDateTime(), nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Float, nullable=False),
    Column("response", Text, nullable=False),  # the first 1 KB of the response body
    Column("error", Text, nullable=True),
    Column("outcome", String(16), nullable=False),  # delivered | retry | failed
    Index("ix_webhook_attempts_delivery", "delivery_id", "number"),
)

# How far the webhook dispatcher has read the audit log (one row, id 1).
webhook_cursor = Table(
    "webhook_cursor",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
)


# -- monitoring -----------------------------------------------------------------------------------

# A monitor: a check of one deployment's windows (``window_seconds`` long, one ending every
# ``every_seconds``) against ``thresholds`` (``[{"metric", "min"|"max"}]``); ``notify`` holds the
# webhook ids its alerts go to (empty: every webhook subscribed to alert events).
monitors = Table(
    "monitors",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("deployment", String(128), nullable=False),
    Column("kind", String(16), nullable=False),  # drift | quality | performance | kpi
    Column("window_seconds", Integer, nullable=False),
    Column("every_seconds", Integer, nullable=False),
    Column("thresholds", JSONType, nullable=False),
    Column("consecutive", Integer, nullable=False),
    Column("cooldown_seconds", Integer, nullable=False),
    Column("notify", JSONType, nullable=False),
    Column("options", JSONType, nullable=False),  # kpi name and aggregation, min rows, reference
    Column("enabled", Boolean, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(128), nullable=False),
)

# One result per monitor and window (the window's end is unique per monitor).
monitor_results = Table(
    "monitor_results",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("monitor_id", Integer, ForeignKey("monitors.id"), nullable=False),
    Column("window_start", UTCDateTime(), nullable=False),
    Column("window_end", UTCDateTime(), nullable=False),
    Column("status", String(24), nullable=False),  # ok | breach | insufficient data | error
    Column("breached", Boolean, nullable=False),
    Column("rows", Integer, nullable=False),
    Column("values", JSONType, nullable=False),  # metric -> value, and the details
    Column("message", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("monitor_id", "window_end", name="uq_monitor_results_window"),
)

# An alert a monitor opened; kept with the monitor's name after the monitor is removed.
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("monitor_id", Integer, nullable=False),
    Column("monitor", String(128), nullable=False),
    Column("deployment", String(128), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # open | resolved
    Column("opened_at", UTCDateTime(), nullable=False),
    Column("resolved_at", UTCDateTime(), nullable=True),
    Column("first_result_id", Integer, nullable=False),
    Column("last_result_id", Integer, nullable=False),
    Column("summary", Text, nullable=False),
    Column("details", JSONType, nullable=False),
    Index("ix_alerts_monitor_status", "monitor_id", "status"),
)

# A run of a pipeline; its id is the id of the tracked run that records it (params, code,
# environment), so a pipeline run is found among runs as well.
pipeline_runs = Table(
    "pipeline_runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("pipeline", String(128), nullable=False),
    Column("source", Text, nullable=False),  # FILE:NAME, relative to the project root
    Column("status", String(16), nullable=False),  # running | succeeded | failed
    Column("executor", String(128), nullable=False),
    Column("params", JSONType, nullable=False),
    Column("dag", JSONType, nullable=False),  # steps and their upstream steps
    Column("resumed_from", String(32), nullable=True),
    Column("started_at", BigInteger, nullable=False),  # milliseconds since the epoch
    Column("ended_at", BigInteger, nullable=True),
    Column("created_by", String(128), nullable=False),
    Column("error", Text, nullable=True),
    Index("ix_pipeline_runs_pipeline", "pipeline", "started_at"),
)

# One step of a pipeline run: its state, cache result and key (with the components the key
# hashes, for `pipeline explain`), the tracked run that computed its outputs (on a cache hit,
# the earlier run whose outputs it reused), and the output record.
pipeline_steps = Table(
    "pipeline_steps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("pipeline_run_id", String(32), ForeignKey("pipeline_runs.id"), nullable=False),
    Column("name", String(256), nullable=False),
    Column("status", String(16), nullable=False),  # pending | succeeded | failed | skipped
    Column("cache", String(16), nullable=False),  # hit | miss | volatile | disabled | resumed
    Column("cache_key", String(80), nullable=True),
    Column("components", JSONType, nullable=False),
    Column("run_id", String(32), nullable=True),
    Column("outputs", JSONType, nullable=True),
    Column("attempts", Integer, nullable=False),
    Column("started_at", BigInteger, nullable=True),
    Column("ended_at", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
    UniqueConstraint("pipeline_run_id", "name", name="uq_pipeline_steps_name"),
    Index("ix_pipeline_steps_key", "cache_key", "status"),
)

# -- feature store ------------------------------------------------------------------------------

# Versions of entities and feature views (shipyard.features.definitions): the whole definition
# as canonical JSON in ``spec``, a new version only when it changes (``features apply``).
feature_entities = Table(
    "feature_entities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("spec", JSONType, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(128), nullable=False),
    UniqueConstraint("name", "version", name="uq_feature_entities_name_version"),
)

feature_views = Table(
    "feature_views",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("spec", JSONType, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(128), nullable=False),
    UniqueConstraint("name", "version", name="uq_feature_views_name_version"),
)

# Online reads, counted per feature view and client (the access log of the online store: one
# row per pair, not one event per read): requests, entity rows looked up, first and last read.
feature_online_reads = Table(
    "feature_online_reads",
    metadata,
    Column("view", String(128), primary_key=True),
    Column("client", String(128), primary_key=True),
    Column("requests", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("first_at", UTCDateTime(), nullable=False),
    Column("last_at", UTCDateTime(), nullable=False),
)

# What the scheduler already did for each trigger (the last dataset version, alert id or cron
# fire it handled, as text), so that a restart or a second scheduler does not run it again:
# a trigger fires only for the process whose compare-and-set of ``seen`` succeeds.
scheduler_triggers = Table(
    "scheduler_triggers",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("kind", String(16), nullable=False),  # cron | dataset | alert
    Column("seen", Text, nullable=True),
    Column("pipeline_run_id", String(32), nullable=True),  # the last run it started
    Column("updated_at", BigInteger, nullable=False),  # milliseconds since the epoch
)
