"""Metric series rolled up into aligned step blocks at write time (``run_metric_blocks``, see
tracking/blocks.py), so that a chart of a long series reads its blocks instead of every
point: a comparison of 5 runs of 100,000 steps reads about 10,000 rows instead of 500,000.

Existing series are back-filled here, level by level: the finest level from the points (per
block, the first lowest and the first highest point in (step, timestamp, id) order, picked
with ROW_NUMBER), each next level from the one below it.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import itertools

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# As in tracking/blocks.py at this revision (a migration keeps its own copy).
FIRST_LEVEL = 5
LEVELS = tuple(range(FIRST_LEVEL, 42, 2))
_COLUMNS = (
    "run_id, key, level, block, points, min_step, min_timestamp, min_value, "
    "max_step, max_timestamp, max_value"
)


def upgrade() -> None:
    op.create_table(
        "run_metric_blocks",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("block", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("min_step", sa.BigInteger(), nullable=False),
        sa.Column("min_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("min_value", sa.Float(), nullable=False),
        sa.Column("max_step", sa.BigInteger(), nullable=False),
        sa.Column("max_timestamp", sa.BigInteger(), nullable=False),
        sa.Column("max_value", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "run_id", "key", "level", "block", name=op.f("pk_run_metric_blocks")
        ),
        sqlite_with_rowid=False,
    )
    # The finest level from the points; in each block, the first lowest and first highest
    # point in (step, timestamp, id) order.
    op.execute(
        _fill(
            "SELECT run_id, key, step >> {shift} AS block, step AS s1, timestamp AS t1, "
            "value AS v1, step AS s2, timestamp AS t2, value AS v2, 1 AS n, id "
            "FROM run_metrics",
            FIRST_LEVEL,
            FIRST_LEVEL,
        )
    )
    for below, level in itertools.pairwise(LEVELS):
        op.execute(
            _fill(
                "SELECT run_id, key, block >> {shift} AS block, min_step AS s1, "
                "min_timestamp AS t1, min_value AS v1, max_step AS s2, max_timestamp AS t2, "
                "max_value AS v2, points AS n, 0 AS id "
                f"FROM run_metric_blocks WHERE level = {below}",
                level,
                level - below,
            )
        )


def _fill(source: str, level: int, shift: int) -> str:
    """The INSERT of ``level``'s blocks from ``source`` (rows with a block, a lowest and a
    highest point each, a count and an id that breaks full ties)."""
    src = source.format(shift=shift)
    return (
        f"INSERT INTO run_metric_blocks ({_COLUMNS}) "
        f"SELECT lo.run_id, lo.key, {level}, lo.block, c.n, lo.s1, lo.t1, lo.v1, "
        "hi.s2, hi.t2, hi.v2 FROM "
        "(SELECT run_id, key, block, s1, t1, v1, ROW_NUMBER() OVER (PARTITION BY run_id, key, "
        f"block ORDER BY v1, s1, t1, id) AS r FROM ({src}) AS a) AS lo "
        "JOIN (SELECT run_id, key, block, s2, t2, v2, ROW_NUMBER() OVER (PARTITION BY run_id, "
        f"key, block ORDER BY v2 DESC, s2, t2, id) AS r FROM ({src}) AS b) AS hi "
        "ON hi.run_id = lo.run_id AND hi.key = lo.key AND hi.block = lo.block AND hi.r = 1 "
        "JOIN (SELECT run_id, key, block, SUM(n) AS n FROM "
        f"({src}) AS c GROUP BY run_id, key, block) AS c "
        "ON c.run_id = lo.run_id AND c.key = lo.key AND c.block = lo.block "
        "WHERE lo.r = 1"
    )


def downgrade() -> None:
    op.drop_table("run_metric_blocks")
