"""Drift references: per table version, the reference profile that drift is measured against
(quantile-bin counts, moments and a sample per numeric column, top-value counts per
categorical one), stored once instead of read from the data at every comparison.

Versions added before this revision get theirs on first use.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shipyard.stores.db.tables import UTCDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drift_references",
        sa.Column("dataset_version_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_version_id"],
            ["dataset_versions.id"],
            name=op.f("fk_drift_references_dataset_version_id_dataset_versions"),
        ),
        sa.PrimaryKeyConstraint("dataset_version_id", name=op.f("pk_drift_references")),
    )


def downgrade() -> None:
    op.drop_table("drift_references")
