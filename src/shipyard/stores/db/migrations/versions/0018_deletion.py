"""Soft deletion: who deleted a dataset version, contract version or experiment, when and
why, and when a dataset version's content was purged (the row stays as a tombstone that keeps
its name, version and digest for the lineage).

Revision ID: 0018
Revises: 0017
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
    # Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+ and PostgreSQL): a batch copy of the table
    # would drop ``experiments``, which the runs' foreign keys refuse on SQLite.
    op.drop_column("dataset_versions", "purged_at")
    for table in _TABLES:
        op.drop_column(table, "deleted_reason")
        op.drop_column(table, "deleted_by")
        op.drop_column(table, "deleted_at")
