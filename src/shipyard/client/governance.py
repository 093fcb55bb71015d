"""Governance, audit, users and tokens through the team server: the same verbs and read
models as the local services, the role checks made by the server's services."""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from shipyard._internal.decode import decode, decode_many
from shipyard.client.connection import ServerConnection, segment
from shipyard.client.unsupported import not_available
from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.governance.access import User
from shipyard.governance.approvals import Approval
from shipyard.governance.deployments import Deployment, DeploymentChange, DeploymentStatus
from shipyard.governance.policy_registry import StoredPolicy
from shipyard.governance.tokens import NewToken, Token
from shipyard.refs import parse_ref
from shipyard.stores.audit import AuditEvent, ChainReport

__all__ = [
    "RemoteApprovals",
    "RemoteAudit",
    "RemoteDeployments",
    "RemotePolicies",
    "RemotePromotions",
    "RemoteTokens",
    "RemoteUsers",
]


class RemoteApprovals:
    """Approvals on the server: ``approve``, ``reject``, ``list``."""

    def __init__(self, conn: ServerConnection) -> None:
        self._conn = conn

    def approve(self, ref: str, *, comment: str = "") -> Approval:
        doc = self._conn.json(
            "POST", f"/models/{segment(ref)}/approve", json_body={"comment": comment}
        )
        return decode(Approval, doc)

    def reject(self, ref: str, *, comment: str = "") -> Approval:
        doc = self._conn.json(
            "POST", f"/models/{segment(ref)}/reject", json_body={"comment": comment}
        )
        return decode(Approval, doc)

    def list(self, ref: str) -> builtins.list[Approval]:
        return decode_many(Approval, self._conn.json("GET", f"/models/{segment(ref)}/approvals"))


class RemotePromotions:
    """Promotion, rollback and the CI gate, checked on the server."""

    def __init__(self, conn: ServerConnection) -> None:
        self._conn = conn

    def gate(self, ref: str, *, for_alias: str = "production") -> dict[str, Any]:
        """The training data's contracts and the policy (``shipyard check``); ``passed`` is
        False when a check fails (the answer is still a success)."""
        doc: dict[str, Any] = self._conn.json(
            "POST", "/check", json_body={"ref": ref, "alias": for_alias}
        )
        return doc

    def promote(self, ref: str, *, to: str = "production", comment: str = "") -> dict[str, Any]:
        """Move ``to`` to this version if every check passes.

        Raises:
            CheckFailedError: a check failed (``details`` lists every check).
        """
        name = parse_ref(ref).name
        # A bare NAME means its latest version, as everywhere else.
        body = {"version": ref if "@" in ref else f"{name}@latest", "to": to, "comment": comment}
        doc: dict[str, Any] = self._conn.json(
            "POST", f"/models/{segment(name)}/promote", json_body=body
        )
        return doc

    def rollback(
        self, name: str, *, alias: str = "production", comment: str = ""
    ) -> dict[str, Any]:
        """Move ``alias`` back to its previous holder (re-checked)."""
        doc: dict[str, Any] = self._conn.json(
            "POST",
            f"/models/{segment(name)}/rollback",
            json_body={"alias": alias, "comment": comment},
        )
        return doc


class RemotePolicies:
    """Stored policies on the server: ``set``, ``get``, ``list``."""

    def __init__(self, conn: ServerConnection) -> None:
        self._conn = conn

    def set(self, name: str, policy: str | os.PathLike[str] | dict[str, Any]) -> StoredPolicy:
        if isinstance(policy, dict):
            import yaml

            text = yaml.safe_dump(policy, sort_keys=False)
        else:
            text = Path(policy).read_text(encoding="utf-8")
        doc = self._conn.json(
            "PUT",
            f"/policies/{segment(name)}",
            content=text.encode(),
            headers={"Content-Type": "text/yaml"},
        )
        return decode(StoredPolicy, doc)

    def get(self, name: str) -> StoredPolicy | None:
        try:
            return decode(StoredPolicy, self._conn.json("GET", f"/policies/{segment(name)}"))
        except NotFoundError:
            return None

    def list(self) -> builtins.list[StoredPolicy]:
        return decode_many(StoredPolicy, self._conn.json("GET", "/policies"))


class RemoteDeployments:
    """Deployments on the server: ``set``, ``get``, ``show``, ``list``, ``history``."""

    def __init__(self, conn: ServerConnection) -> None:
        self._conn = conn

    def set(
        self,
        name: str,
        routes: Mapping[str, int],
        *,
        shadow: str | None = None,
        model: str | None = None,
        comment: str = "",
    ) -> Deployment:
        body = {"routes": dict(routes), "shadow": shadow, "model": model, "comment": comment}
        return decode(
            Deployment, self._conn.json("PUT", f"/deployments/{segment(name)}", json_body=body)
        )

    def show(self, name: str) -> DeploymentStatus:
        """What serves behind ``name`` now: the deployment and each alias's holder."""
        doc = self._conn.json("GET", f"/deployments/{segment(name)}")
        return decode(DeploymentStatus, doc)

    def get(self, name: str) -> Deployment:
        return self.show(name).deployment

    def list(self) -> builtins.list[Deployment]:
        return decode_many(Deployment, self._conn.json("GET", "/deployments"))

    def history(self, name: str) -> builtins.list[DeploymentChange]:
        docs = self._conn.json("GET", f"/deployments/{segment(name)}/history")
        return decode_many(DeploymentChange, docs)


class RemoteAudit:
    """The audit log on the server: ``list`` and ``verify``."""

    def __init__(self, conn: ServerConnection) -> None:
        self._conn = conn

    def list(
        self,
        *,
        entity: str | None = None,
        entity_kind: str | None = None,
        action: str | None = None,
        actor: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> builtins.list[AuditEvent]:
        params = {
            "entity": entity,
            "entity_kind": entity_kind,
            "action": action,
            "actor": actor,
            "limit": limit,
            "newest_first": newest_first,
        }
        return decode_many(AuditEvent, self._conn.json("GET", "/audit", params=params))

    def verify(self, *, checkpoint: str | os.PathLike[str] | None = None) -> ChainReport:
        """The server recomputes the chain and rebuilds the governance state from it.

        Raises:
            NotAvailableRemotelyError: with ``checkpoint`` (a signed checkpoint is checked
                where its file and key are).
        """
        if checkpoint is not None:
            raise not_available("shipyard audit verify --checkpoint", self._conn.url)
        return decode(ChainReport, self._conn.json("GET", "/audit/verify"))


class RemoteUsers:
    """Users on the server: ``add``, ``list``, ``whoami``."""

    def __init__(self, conn: ServerConnection) -> None:
        self._conn = conn

    def add(self, name: str, role: str) -> User:
        return decode(
            User, self._conn.json("POST", "/users", json_body={"name": name, "role": role})
        )

    def list(self) -> builtins.list[User]:
        return decode_many(User, self._conn.json("GET", "/users"))

    def whoami(self) -> User:
        return decode(User, self._conn.json("GET", "/users/me"))


class RemoteTokens:
    """API tokens on the server: ``create``, ``get``, ``list``, ``revoke``."""

    def __init__(self, conn: ServerConnection) -> None:
        self._conn = conn

    def create(
        self, user: str | None = None, *, expires: str | timedelta | None = None, label: str = ""
    ) -> NewToken:
        if isinstance(expires, timedelta):
            seconds = expires.total_seconds()
            if seconds <= 0 or seconds != int(seconds):
                raise InvalidInputError("a token lifetime must be a whole number of seconds > 0")
            expires = f"{int(seconds)}s"
        body = {"user": user, "expires": expires, "label": label}
        return decode(NewToken, self._conn.json("POST", "/tokens", json_body=body))

    def get(self, token_id: str) -> Token:
        return decode(Token, self._conn.json("GET", f"/tokens/{segment(token_id)}"))

    def list(self, user: str | None = None, *, all_users: bool = False) -> builtins.list[Token]:
        params = {"user": user, "all": all_users}
        return decode_many(Token, self._conn.json("GET", "/tokens", params=params))

    def revoke(self, token_id: str) -> Token:
        return decode(Token, self._conn.json("DELETE", f"/tokens/{segment(token_id)}"))
