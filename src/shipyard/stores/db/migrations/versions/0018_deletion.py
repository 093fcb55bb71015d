"""Soft deletion: who deleted a dataset version, contract version or experiment, when and
why, and when a dataset version's content was purged (the row stays as a tombstone that keeps
its name, version and digest for the lineage).

Revision ID: 0018
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shipyard.stores.db.tables import UTCDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_TABLES = ("dataset_versions", "contract_versions", "experiments")


def upgrade() -> None:
    for table in _TABLES:
        op.add_column(table, sa.Column("deleted_at", UTCDateTime(), nullable=True))
        op.add_column(table, sa.Column("deleted_by", sa.String(length=128), nullable=True))
        op.add_column(table, sa.Column("deleted_reason", sa.Text(), nullable=True))
    op.add_column("dataset_versions", sa.Column("purged_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dataset_versions") as batch:
        batch.drop_column("purged_at")
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("deleted_reason")
            batch.drop_column("deleted_by")
            batch.drop_column("deleted_at")
