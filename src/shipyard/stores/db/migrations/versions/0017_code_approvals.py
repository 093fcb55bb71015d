"""Approvals of custom model code.

- ``code_approvals``: an approver's approval of the source code of a custom model (the code
  flavor), by the digest of that code; a model of that flavor loads only once its code is
  approved.

Revision ID: 0017
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shipyard.stores.db.tables import UTCDateTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "code_approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("model", sa.String(length=300), nullable=False),
        sa.Column("approver", sa.String(length=128), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.Column("event_seq", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_code_approvals")),
    )
    with op.batch_alter_table("code_approvals", schema=None) as batch_op:
        batch_op.create_index("ix_code_approvals_digest", ["digest"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("code_approvals", schema=None) as batch_op:
        batch_op.drop_index("ix_code_approvals_digest")
    op.drop_table("code_approvals")
