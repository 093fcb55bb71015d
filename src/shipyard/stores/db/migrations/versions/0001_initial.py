"""Initial schema: users, audit log, datasets, blob owners, lineage.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shipyard.stores.db.tables import GENESIS_HASH, JSONType, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_users"),
    )
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(80), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    head = sa.table("audit_head", sa.column("id", sa.Integer), sa.column("seq"), sa.column("hash"))
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS_HASH}])
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger, autoincrement=False),
        sa.Column("time", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("entity_kind", sa.String(32), nullable=False),
        sa.Column("entity", sa.String(300), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(80), nullable=False),
        sa.Column("hash", sa.String(80), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_entity", "audit_events", ["entity_kind", "entity"])
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_datasets"),
        sa.UniqueConstraint("name", name="uq_datasets_name"),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.Integer),
        sa.Column("dataset_id", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=True),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("columns", JSONType, nullable=False),
        sa.Column("schema", JSONType, nullable=False),
        sa.Column("profile", JSONType, nullable=False),
        sa.Column("source", JSONType, nullable=False),
        sa.Column("source_digest", sa.String(80), nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("tags", JSONType, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_versions"),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name="fk_dataset_versions_dataset_id_datasets"
        ),
        sa.UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_dataset_version"),
    )
    op.create_index("ix_dataset_versions_digest", "dataset_versions", ["dataset_id", "digest"])
    op.create_index("ix_dataset_versions_source_digest", "dataset_versions", ["source_digest"])
    op.create_table(
        "blob_refs",
        sa.Column("digest", sa.String(80)),
        sa.Column("owner_kind", sa.String(32)),
        sa.Column("owner", sa.String(300)),
        sa.Column("role", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("digest", "owner_kind", "owner", name="pk_blob_refs"),
    )
    op.create_table(
        "lineage_edges",
        sa.Column("id", sa.Integer),
        sa.Column("parent_kind", sa.String(32), nullable=False),
        sa.Column("parent", sa.String(300), nullable=False),
        sa.Column("child_kind", sa.String(32), nullable=False),
        sa.Column("child", sa.String(300), nullable=False),
        sa.Column("relation", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_lineage_edges"),
    )
    op.create_index("ix_lineage_edges_parent", "lineage_edges", ["parent_kind", "parent"])
    op.create_index("ix_lineage_edges_child", "lineage_edges", ["child_kind", "child"])


def downgrade() -> None:
    for table in (
        "lineage_edges",
        "blob_refs",
        "dataset_versions",
        "datasets",
        "audit_events",
        "audit_head",
        "users",
    ):
        op.drop_table(table)
