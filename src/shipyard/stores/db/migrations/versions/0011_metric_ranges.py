"""The range of every metric: ``run_latest_metrics`` keeps each (run, key)'s lowest and
highest value beside its last point, so that a runs table sorts on a metric's minimum or
maximum without reading every point.

Existing rows are back-filled from ``run_metrics``, then the columns become NOT NULL.
The index of ``run_metrics`` gains the timestamp, so that a series is read in (step,
timestamp, id) order without sorting it (a chart of 100,000 points read twice as fast).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("run_latest_metrics", schema=None) as batch_op:
        batch_op.add_column(sa.Column("min_value", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("max_value", sa.Float(), nullable=True))
    # One statement for every row (correlated aggregates over the (run_id, key, step) index);
    # a row without points (which logging never leaves) keeps its last value as its range.
    op.execute(
        "UPDATE run_latest_metrics SET "
        "min_value = COALESCE((SELECT MIN(m.value) FROM run_metrics m "
        "WHERE m.run_id = run_latest_metrics.run_id AND m.key = run_latest_metrics.key), value), "
        "max_value = COALESCE((SELECT MAX(m.value) FROM run_metrics m "
        "WHERE m.run_id = run_latest_metrics.run_id AND m.key = run_latest_metrics.key), value)"
    )
    with op.batch_alter_table("run_latest_metrics", schema=None) as batch_op:
        batch_op.alter_column("min_value", existing_type=sa.Float(), nullable=False)
        batch_op.alter_column("max_value", existing_type=sa.Float(), nullable=False)
    with op.batch_alter_table("run_metrics", schema=None) as batch_op:
        batch_op.create_index(
            "ix_run_metrics_run_key_step_time", ["run_id", "key", "step", "timestamp"]
        )
        batch_op.drop_index("ix_run_metrics_run_key_step")


def downgrade() -> None:
    with op.batch_alter_table("run_metrics", schema=None) as batch_op:
        batch_op.create_index("ix_run_metrics_run_key_step", ["run_id", "key", "step"])
        batch_op.drop_index("ix_run_metrics_run_key_step_time")
    with op.batch_alter_table("run_latest_metrics", schema=None) as batch_op:
        batch_op.drop_column("max_value")
        batch_op.drop_column("min_value")
