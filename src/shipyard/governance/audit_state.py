"""The governance state rebuilt from the audit chain, compared with the tables.

The chain is the source of truth for governance: who is which role, which dataset versions are
deleted or purged, the registered model versions and their statuses, approvals and rejections,
where each alias points and every move it made, risk tiers, model card sections, policies,
deployments, approvals of custom model code, API tokens (a token row added, re-hashed or
un-revoked with SQL would let someone act as another user), and which contract versions and
experiments are deleted. Each of these changes is an audit
event written in the same transaction as the rows. :func:`check_state` replays those events in
order and reports every row that differs from what they say, so an edit of the tables by
someone with database access (an approvals row added by hand, an alias moved with SQL) is
caught even though the chain itself still verifies.

A rewritten chain (events edited and every later hash recomputed) is the other half of the
threat; signed checkpoints (:mod:`shipyard.stores.checkpoints`) catch that.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from shipyard._internal.hashing import canonical_json, digest_bytes
from shipyard.governance.approvals import standing_of
from shipyard.governance.tokens import token_fingerprint
from shipyard.stores.audit import StateMismatch
from shipyard.stores.db.tables import (
    alias_events,
    api_tokens,
    approvals,
    audit_events,
    card_sections,
    code_approvals,
    contract_versions,
    contracts,
    dataset_versions,
    datasets,
    deployment_events,
    deployments,
    experiments,
    feature_entities,
    feature_views,
    model_aliases,
    model_versions,
    policies,
    registered_models,
    users,
)

__all__ = ["check_state"]

_ACTIONS = (
    "user.add",
    "user.role",
    "user.remove",
    "dataset.delete",
    "dataset.restore",
    "dataset.purge",
    "contract.delete",
    "contract.restore",
    "experiment.delete",
    "experiment.restore",
    "model.create",
    "model.register",
    "model.approve",
    "model.reject",
    "model.archived",
    "model.risk_tier",
    "model.card",
    "policy.set",
    "feature_entity.apply",
    "feature_view.apply",
    "deployment.set",
    "token.create",
    "token.revoke",
    "code.approve",
)


@dataclass
class _State:
    """What the events say, keyed as :func:`check_state` compares it."""

    users: dict[str, str]
    models: set[str]
    versions: dict[str, dict[str, Any]]
    decisions: dict[str, list[tuple[str, str, str]]]
    aliases: dict[str, int]
    moves: dict[str, list[tuple[str, int | None, int | None, str, str, str]]]
    tiers: dict[str, str | None]
    cards: dict[str, tuple[str, str]]
    policies: dict[str, str]
    deployments: dict[str, dict[str, Any]]
    changes: dict[str, list[tuple[Any, ...]]]
    tokens: dict[str, dict[str, Any]]
    deleted: dict[str, dict[str, bool]]
    # contract versions ("NAME@N") and experiments ("NAME") deleted: True, restored: False
    contracts_deleted: dict[str, bool] = field(default_factory=dict)
    experiments_deleted: dict[str, bool] = field(default_factory=dict)
    # feature definitions: "feature_views/NAME@N" (or feature_entities/...) -> digest
    features: dict[str, str] = field(default_factory=dict)
    # approvals of custom model code: "DIGEST#ROW_ID" -> what the approval says
    code: dict[str, dict[str, Any]] = field(default_factory=dict)


def _replay(conn: Connection) -> _State:
    state = _State(
        {}, set(), {}, defaultdict(list), {}, defaultdict(list), {}, {}, {}, {}, {}, {}, {}
    )
    state.changes = defaultdict(list)
    rows = conn.execute(
        select(audit_events)
        .where(
            or_(audit_events.c.action.in_(_ACTIONS), audit_events.c.action.like("model.alias.%"))
        )
        .order_by(audit_events.c.seq)
    )
    for row in rows:
        try:
            payload = json.loads(row.payload)
        except ValueError:
            continue
        if not isinstance(payload, dict):
            continue
        action, entity, actor = row.action, row.entity, row.actor
        if action == "user.add":
            state.users[entity] = payload.get("role", "viewer")
        elif action == "user.role":
            state.users[entity] = str(payload.get("to"))
        elif action == "user.remove":
            state.users.pop(entity, None)
        elif action in ("dataset.delete", "dataset.restore", "dataset.purge"):
            gone = state.deleted.setdefault(entity, {"deleted": False, "purged": False})
            gone["deleted"] = action != "dataset.restore"
            gone["purged"] = gone["purged"] or action == "dataset.purge"
        elif action in ("contract.delete", "contract.restore"):
            state.contracts_deleted[entity] = action == "contract.delete"
        elif action in ("experiment.delete", "experiment.restore"):
            state.experiments_deleted[entity] = action == "experiment.delete"
        elif action == "model.create":
            state.models.add(entity)
        elif action == "model.register":
            state.models.add(entity.rsplit("@", 1)[0])
            state.versions[entity] = {
                "digest": payload.get("digest"),
                "flavor": payload.get("flavor"),
                "run_id": payload.get("run_id"),
                "created_by": actor,
                "status": "candidate",
            }
        elif action in ("model.approve", "model.reject"):
            decision = action.split(".", 1)[1]
            state.decisions[entity].append((actor, decision, payload.get("comment", "")))
            version = state.versions.get(entity)
            if version is not None and version["status"] != "archived":
                standing = standing_of((a, d) for a, d, _ in state.decisions[entity])
                version["status"] = "candidate" if standing == "pending" else standing
        elif action == "model.archived":
            if entity in state.versions:
                state.versions[entity]["status"] = "archived"
        elif action.startswith("model.alias."):
            reason = action.rsplit(".", 1)[1]
            name = entity.rsplit("@", 1)[0]
            alias = str(payload.get("alias"))
            to = payload.get("to") if reason != "remove" else None
            key = f"{name}/{alias}"
            if to is None:
                state.aliases.pop(key, None)
            else:
                state.aliases[key] = int(to)
            state.moves[name].append(
                (alias, payload.get("from"), to, actor, reason, payload.get("comment", ""))
            )
        elif action == "model.risk_tier":
            state.tiers[entity] = payload.get("tier")
        elif action == "model.card":
            state.cards[f"{entity}/{payload.get('section')}"] = (payload.get("text", ""), actor)
        elif action == "policy.set":
            state.policies[entity] = str(payload.get("digest"))
        elif action in ("feature_entity.apply", "feature_view.apply"):
            table = "feature_entities" if action == "feature_entity.apply" else "feature_views"
            state.features[f"{table}/{entity}"] = str(payload.get("digest"))
        elif action == "deployment.set":
            state.deployments[entity] = {
                "model": payload.get("model"),
                "routes": payload.get("routes"),
                "shadow": payload.get("shadow"),
                "version": payload.get("version"),
            }
            state.changes[entity].append(
                (
                    payload.get("version"),
                    payload.get("from_routes"),
                    payload.get("routes"),
                    payload.get("from_shadow"),
                    payload.get("shadow"),
                    actor,
                    payload.get("comment", ""),
                )
            )
        elif action == "token.create":
            state.tokens[entity] = {
                "user": payload.get("user"),
                "label": payload.get("label"),
                "expires_at": payload.get("expires_at"),
                "fingerprint": payload.get("fingerprint"),
                "revoked": False,
            }
        elif action == "token.revoke" and entity in state.tokens:
            state.tokens[entity]["revoked"] = True
        elif action == "code.approve":
            state.code[f"{entity}#{payload.get('id')}"] = {
                "model": payload.get("model"),
                "approver": actor,
                "comment": payload.get("comment", ""),
                "event_seq": int(row.seq),
            }
    return state


def check_state(conn: Connection) -> list[StateMismatch]:
    """Every governance row that differs from what the audit events say, table by table."""
    state = _replay(conn)
    out: list[StateMismatch] = []
    model_names = {int(r.id): r.name for r in conn.execute(select(registered_models))}

    def compare(table: str, expected: dict[str, Any], found: dict[str, Any]) -> None:
        for key in sorted(set(expected) | set(found)):
            want, have = expected.get(key), found.get(key)
            if key not in found:
                out.append(StateMismatch(table, key, "missing from the table", want, None))
            elif key not in expected:
                out.append(StateMismatch(table, key, "not in the audit log", None, have))
            elif want != have:
                out.append(StateMismatch(table, key, "differs from the audit log", want, have))

    compare("users", state.users, {r.name: r.role for r in conn.execute(select(users))})
    compare(
        "dataset_versions",
        {k: v for k, v in state.deleted.items() if v["deleted"] or v["purged"]},
        {
            f"{r.name}@{r.version}": {
                "deleted": r.deleted_at is not None,
                "purged": r.purged_at is not None,
            }
            for r in conn.execute(
                select(
                    datasets.c.name,
                    dataset_versions.c.version,
                    dataset_versions.c.deleted_at,
                    dataset_versions.c.purged_at,
                )
                .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
                .where(
                    dataset_versions.c.deleted_at.is_not(None)
                    | dataset_versions.c.purged_at.is_not(None)
                )
            )
        },
    )
    compare(
        "contract_versions",
        {k: {"deleted": True} for k, v in state.contracts_deleted.items() if v},
        {
            f"{r.name}@{r.version}": {"deleted": True}
            for r in conn.execute(
                select(contracts.c.name, contract_versions.c.version)
                .join(contracts, contracts.c.id == contract_versions.c.contract_id)
                .where(contract_versions.c.deleted_at.is_not(None))
            )
        },
    )
    compare(
        "experiments",
        {k: {"deleted": True} for k, v in state.experiments_deleted.items() if v},
        {
            r.name: {"deleted": True}
            for r in conn.execute(
                select(experiments.c.name).where(experiments.c.deleted_at.is_not(None))
            )
        },
    )
    compare(
        "registered_models",
        {name: {"risk_tier": state.tiers.get(name)} for name in state.models},
        {r.name: {"risk_tier": r.risk_tier} for r in conn.execute(select(registered_models))},
    )
    compare(
        "model_versions",
        state.versions,
        {
            f"{model_names.get(r.model_id)}@{r.version}": {
                "digest": r.digest,
                "flavor": r.flavor,
                "run_id": r.run_id,
                "created_by": r.created_by,
                "status": r.status,
            }
            for r in conn.execute(select(model_versions))
        },
    )
    found_decisions: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for r in conn.execute(select(approvals).order_by(approvals.c.id)):
        key = f"{model_names.get(r.model_id)}@{r.version}"
        found_decisions[key].append((r.approver, r.decision, r.comment))
    compare("approvals", _listed(state.decisions), _listed(found_decisions))
    compare(
        "model_aliases",
        state.aliases,
        {
            f"{model_names.get(r.model_id)}/{r.alias}": int(r.version)
            for r in conn.execute(select(model_aliases))
        },
    )
    found_moves: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for r in conn.execute(select(alias_events).order_by(alias_events.c.id)):
        found_moves[str(model_names.get(r.model_id))].append(
            (r.alias, r.from_version, r.to_version, r.actor, r.reason, r.comment)
        )
    compare("alias_events", _listed(state.moves), _listed(found_moves))
    compare(
        "card_sections",
        state.cards,
        {
            f"{model_names.get(r.model_id)}@{r.version}/{r.section}": (r.text, r.author)
            for r in conn.execute(select(card_sections))
        },
    )
    found_policies: dict[str, str] = {}
    for r in conn.execute(select(policies)):
        key = f"{r.name}@{r.version}"
        recomputed = digest_bytes(canonical_json(r.spec))
        # The spec itself is checked too: a row whose spec was edited no longer has its digest.
        found_policies[key] = r.digest if recomputed == r.digest else f"{r.digest} (spec edited)"
    compare("policies", state.policies, found_policies)
    found_features: dict[str, str] = {}
    for table in (feature_entities, feature_views):
        for r in conn.execute(select(table)):
            recomputed = digest_bytes(canonical_json(r.spec))
            edited = "" if recomputed == r.digest else " (spec edited)"
            found_features[f"{table.name}/{r.name}@{r.version}"] = r.digest + edited
    compare("feature definitions", state.features, found_features)
    compare(
        "deployments",
        state.deployments,
        {
            r.name: {
                "model": model_names.get(r.model_id),
                "routes": dict(r.routes),
                "shadow": r.shadow,
                "version": int(r.version),
            }
            for r in conn.execute(select(deployments))
        },
    )
    names = {int(r.id): r.name for r in conn.execute(select(deployments.c.id, deployments.c.name))}
    found_changes: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for r in conn.execute(select(deployment_events).order_by(deployment_events.c.id)):
        found_changes[str(names.get(r.deployment_id))].append(
            (
                int(r.version),
                None if r.from_routes is None else dict(r.from_routes),
                dict(r.to_routes),
                r.from_shadow,
                r.to_shadow,
                r.actor,
                r.comment,
            )
        )
    compare("deployment_events", _listed(state.changes), _listed(found_changes))
    compare(
        "code_approvals",
        state.code,
        {
            f"{r.digest}#{r.id}": {
                "model": r.model,
                "approver": r.approver,
                "comment": r.comment,
                "event_seq": None if r.event_seq is None else int(r.event_seq),
            }
            for r in conn.execute(select(code_approvals))
        },
    )
    compare(
        "api_tokens",
        state.tokens,
        {
            r.id: {
                "user": r.user,
                "label": r.label,
                "expires_at": None if r.expires_at is None else r.expires_at.isoformat(),
                "fingerprint": token_fingerprint(r.salt, r.hash),
                "revoked": r.revoked_at is not None,
            }
            for r in conn.execute(select(api_tokens))
        },
    )
    return out


def _listed(items: dict[str, list[tuple[Any, ...]]]) -> dict[str, Any]:
    """Ordered histories keyed ``name#index``, so a single row that differs is named."""
    out: dict[str, Any] = {}
    for key, history in items.items():
        for i, entry in enumerate(history, start=1):
            out[f"{key}#{i}"] = list(entry)
    return out
