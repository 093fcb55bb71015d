"""What the scheduler already handled per trigger.

- ``scheduler_triggers``: one row per trigger of the schedule file: the last dataset version,
  alert id or cron fire it handled, and the pipeline run it last started.

Revision ID: 0022
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduler_triggers",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("seen", sa.Text(), nullable=True),
        sa.Column("pipeline_run_id", sa.String(length=32), nullable=True),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_triggers")),
    )


def downgrade() -> None:
    op.drop_table("scheduler_triggers")
