"""Serving: the prediction index and its Parquet segments, feedback, business KPI events.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("deployment", sa.String(length=128), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index("ix_feedback_deployment_time", ["deployment", "time"], unique=False)
        batch_op.create_index("ix_feedback_request", ["request_id"], unique=False)

    op.create_table(
        "kpi_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("request_id", sa.String(length=32), nullable=True),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kpi_events")),
    )
    with op.batch_alter_table("kpi_events", schema=None) as batch_op:
        batch_op.create_index("ix_kpi_events_deployment_time", ["deployment", "time"], unique=False)

    op.create_table(
        "prediction_segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment", sa.String(length=128), nullable=False),
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("first_time", sa.BigInteger(), nullable=False),
        sa.Column("last_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prediction_segments")),
    )
    with op.batch_alter_table("prediction_segments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_prediction_segments_deployment_time", ["deployment", "last_time"], unique=False
        )

    op.create_table(
        "predictions",
        sa.Column("request_id", sa.String(length=32), nullable=False),
        sa.Column("deployment", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=False),
        sa.Column("shadow", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("prediction", sa.Text(), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_predictions")),
    )
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_predictions_deployment_time", ["deployment", "time"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_index("ix_predictions_deployment_time")

    op.drop_table("predictions")
    with op.batch_alter_table("prediction_segments", schema=None) as batch_op:
        batch_op.drop_index("ix_prediction_segments_deployment_time")

    op.drop_table("prediction_segments")
    with op.batch_alter_table("kpi_events", schema=None) as batch_op:
        batch_op.drop_index("ix_kpi_events_deployment_time")

    op.drop_table("kpi_events")
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index("ix_feedback_request")
        batch_op.drop_index("ix_feedback_deployment_time")

    op.drop_table("feedback")
