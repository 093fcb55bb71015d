"""Prediction log segments own their blobs: ``shipyard gc`` keeps them, ``verify`` names them.

Segments written before this revision had no ``blob_refs`` row; this adds one for each.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "INSERT INTO blob_refs (digest, owner_kind, owner, role) "
        "SELECT s.digest, 'prediction_segment', s.deployment || '#' || CAST(s.id AS VARCHAR(20)), "
        "'predictions' FROM prediction_segments s WHERE NOT EXISTS ("
        "SELECT 1 FROM blob_refs b WHERE b.owner_kind = 'prediction_segment' "
        "AND b.owner = s.deployment || '#' || CAST(s.id AS VARCHAR(20)))"
    )


def downgrade() -> None:
    op.execute("DELETE FROM blob_refs WHERE owner_kind = 'prediction_segment'")
