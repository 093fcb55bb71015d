"""Governance: evaluation reports, policies, approvals, model card sections, risk tiers.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shipyard.stores.db.tables import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=80), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policies")),
        sa.UniqueConstraint("name", "version", name="uq_policies_name_version"),
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("approver", sa.String(length=128), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name=op.f("fk_approvals_model_id_registered_models"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approvals")),
    )
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.create_index("ix_approvals_model_version", ["model_id", "version"], unique=False)

    op.create_table(
        "card_sections",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("section", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author", sa.String(length=128), nullable=False),
        sa.Column("time", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name=op.f("fk_card_sections_model_id_registered_models"),
        ),
        sa.PrimaryKeyConstraint("model_id", "version", "section", name=op.f("pk_card_sections")),
    )
    op.create_table(
        "evaluation_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("dataset", sa.String(length=300), nullable=False),
        sa.Column("dataset_digest", sa.String(length=80), nullable=False),
        sa.Column("label", sa.String(length=250), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name=op.f("fk_evaluation_reports_model_id_registered_models"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluation_reports")),
    )
    with op.batch_alter_table("evaluation_reports", schema=None) as batch_op:
        batch_op.create_index(
            "ix_evaluation_reports_model_version", ["model_id", "version"], unique=False
        )

    with op.batch_alter_table("registered_models", schema=None) as batch_op:
        batch_op.add_column(sa.Column("risk_tier", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("registered_models", schema=None) as batch_op:
        batch_op.drop_column("risk_tier")

    with op.batch_alter_table("evaluation_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_evaluation_reports_model_version")

    op.drop_table("evaluation_reports")
    op.drop_table("card_sections")
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.drop_index("ix_approvals_model_version")

    op.drop_table("approvals")
    op.drop_table("policies")
