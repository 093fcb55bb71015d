"""Governed deployments, approvals tied to their audit events, library versions of saved
models, and one feedback label per request id.

- ``deployments`` and ``deployment_events``: what serves behind a name, and every change.
- ``approvals.event_seq``: the audit event that recorded each decision, filled in for earlier
  decisions by matching their ``model.approve`` / ``model.reject`` events in order.
- ``model_versions.environment``: the library versions a model was saved with, filled in from
  the ``model.register`` events that recorded them.
- ``feedback``: a request id has one label (duplicates from before are reduced to the newest,
  which records the one before it as replaced), and a replaced label is kept beside the one
  that replaced it.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import json
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("routes", sa.JSON(), nullable=False),
        sa.Column("shadow", sa.String(length=64), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name=op.f("fk_deployments_model_id_registered_models"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
        sa.UniqueConstraint("name", name=op.f("uq_deployments_name")),
    )
    op.create_table(
        "deployment_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("from_routes", sa.JSON(), nullable=True),
        sa.Column("to_routes", sa.JSON(), nullable=False),
        sa.Column("from_shadow", sa.String(length=64), nullable=True),
        sa.Column("to_shadow", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_deployment_events_deployment_id_deployments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_events")),
        sa.UniqueConstraint(
            "deployment_id", "version", name="uq_deployment_events_deployment_version"
        ),
    )
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_seq", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("environment", sa.JSON(), nullable=True))
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replaced_label", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("replaced_at", sa.BigInteger(), nullable=True))
    _one_label_per_request()
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index("ix_feedback_request")
        batch_op.create_index("ix_feedback_request", ["request_id"], unique=True)
    _link_approvals_to_events()
    _record_environments()


def _one_label_per_request() -> None:
    """A request id labelled several times keeps its newest label (a second label was a
    correction), recorded as replacing the one before it, at the time it came; the row keeps
    the time the first label came, as a replacement does from now on."""
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT id, request_id, label, time FROM feedback WHERE request_id IN "
            "(SELECT request_id FROM feedback GROUP BY request_id HAVING COUNT(*) > 1) "
            "ORDER BY request_id, id"
        )
    ).all()
    by_request: dict[str, list[sa.Row[tuple[int, str, str, int]]]] = defaultdict(list)
    for row in rows:
        by_request[row.request_id].append(row)
    for labels in by_request.values():
        *earlier, newest = labels
        conn.execute(
            sa.text(
                "UPDATE feedback SET time = :first, replaced_label = :before, "
                "replaced_at = :at WHERE id = :id"
            ),
            {
                "first": earlier[0].time,
                "before": earlier[-1].label,
                "at": newest.time,
                "id": newest.id,
            },
        )
        for row in earlier:
            conn.execute(sa.text("DELETE FROM feedback WHERE id = :id"), {"id": row.id})


def _link_approvals_to_events() -> None:
    """Each earlier approval gets the seq of the decision event that recorded it: the n-th
    decision on ``name@version`` (by id) is the n-th such event (by seq)."""
    conn = op.get_bind()
    events: dict[str, list[int]] = defaultdict(list)
    for seq, entity in conn.execute(
        sa.text(
            "SELECT seq, entity FROM audit_events "
            "WHERE action IN ('model.approve', 'model.reject') ORDER BY seq"
        )
    ):
        events[entity].append(int(seq))
    rows = conn.execute(
        sa.text(
            "SELECT a.id, m.name, a.version FROM approvals a "
            "JOIN registered_models m ON m.id = a.model_id ORDER BY a.id"
        )
    ).all()
    taken: dict[str, int] = defaultdict(int)
    for approval_id, name, version in rows:
        entity = f"{name}@{version}"
        position = taken[entity]
        taken[entity] += 1
        if position < len(events[entity]):
            conn.execute(
                sa.text("UPDATE approvals SET event_seq = :seq WHERE id = :id"),
                {"seq": events[entity][position], "id": approval_id},
            )


def _record_environments() -> None:
    conn = op.get_bind()
    found: dict[str, dict[str, str]] = {}
    for entity, payload in conn.execute(
        sa.text("SELECT entity, payload FROM audit_events WHERE action = 'model.register'")
    ):
        try:
            versions = json.loads(payload).get("versions")
        except (ValueError, AttributeError):
            continue
        if isinstance(versions, dict):
            found[entity] = versions
    rows = conn.execute(
        sa.text(
            "SELECT v.id, m.name, v.version FROM model_versions v "
            "JOIN registered_models m ON m.id = v.model_id"
        )
    ).all()
    table = sa.table("model_versions", sa.column("id"), sa.column("environment", sa.JSON()))
    for version_id, name, version in rows:
        environment = found.get(f"{name}@{version}")
        if environment is not None:
            conn.execute(
                table.update().where(table.c.id == version_id).values(environment=environment)
            )


def downgrade() -> None:
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index("ix_feedback_request")
        batch_op.create_index("ix_feedback_request", ["request_id"], unique=False)
        batch_op.drop_column("replaced_at")
        batch_op.drop_column("replaced_label")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_column("environment")
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.drop_column("event_seq")
    op.drop_table("deployment_events")
    op.drop_table("deployments")
