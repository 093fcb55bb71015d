"""The feature store's catalog: versioned entities and feature views, and the online reads
counted per view and client.

- ``feature_entities``, ``feature_views``: one row per version of a definition (its canonical
  JSON in ``spec``); changes are audited.
- ``feature_online_reads``: requests and entity rows read online, per feature view and client.

Revision ID: 0019
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shipyard.stores.db.tables import UTCDateTime

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("feature_entities", "feature_views"):
        op.create_table(
            table,
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(length=128), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("digest", sa.String(length=80), nullable=False),
            sa.Column("spec", sa.JSON(), nullable=False),
            sa.Column("created_at", UTCDateTime(), nullable=False),
            sa.Column("created_by", sa.String(length=128), nullable=False),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
            sa.UniqueConstraint("name", "version", name=f"uq_{table}_name_version"),
        )
    op.create_table(
        "feature_online_reads",
        sa.Column("view", sa.String(length=128), nullable=False),
        sa.Column("client", sa.String(length=128), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("first_at", UTCDateTime(), nullable=False),
        sa.Column("last_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("view", "client", name=op.f("pk_feature_online_reads")),
    )


def downgrade() -> None:
    op.drop_table("feature_online_reads")
    op.drop_table("feature_views")
    op.drop_table("feature_entities")
