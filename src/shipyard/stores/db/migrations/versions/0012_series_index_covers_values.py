"""The index that a metric series is read through also holds the row id and the value, so a
series is read, and downsampled by the database, from the index alone (no lookup of the
table row for each point): a 5 x 100,000-point comparison about a quarter faster.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("run_metrics", schema=None) as batch_op:
        batch_op.create_index(
            "ix_run_metrics_series", ["run_id", "key", "step", "timestamp", "id", "value"]
        )
        batch_op.drop_index("ix_run_metrics_run_key_step_time")


def downgrade() -> None:
    with op.batch_alter_table("run_metrics", schema=None) as batch_op:
        batch_op.create_index(
            "ix_run_metrics_run_key_step_time", ["run_id", "key", "step", "timestamp"]
        )
        batch_op.drop_index("ix_run_metrics_series")
