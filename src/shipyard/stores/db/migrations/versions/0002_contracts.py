"""Data contracts, dataset bindings and validation results.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from shipyard.stores.db.tables import JSONType, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contracts",
        sa.Column("id", sa.Integer),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_contracts"),
        sa.UniqueConstraint("name", name="uq_contracts_name"),
    )
    op.create_table(
        "contract_versions",
        sa.Column("id", sa.Integer),
        sa.Column("contract_id", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("spec", JSONType, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_contract_versions"),
        sa.ForeignKeyConstraint(
            ["contract_id"], ["contracts.id"], name="fk_contract_versions_contract_id_contracts"
        ),
        sa.UniqueConstraint("contract_id", "version", name="uq_contract_versions_contract_version"),
    )
    with op.batch_alter_table("datasets") as batch:
        batch.add_column(sa.Column("contract", sa.String(300), nullable=True))
    with op.batch_alter_table("dataset_versions") as batch:
        batch.add_column(
            sa.Column("status", sa.String(16), nullable=False, server_default="unvalidated")
        )
        batch.add_column(sa.Column("validation", JSONType, nullable=True))
        batch.add_column(sa.Column("contract", sa.String(300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dataset_versions") as batch:
        batch.drop_column("contract")
        batch.drop_column("validation")
        batch.drop_column("status")
    with op.batch_alter_table("datasets") as batch:
        batch.drop_column("contract")
    op.drop_table("contract_versions")
    op.drop_table("contracts")
