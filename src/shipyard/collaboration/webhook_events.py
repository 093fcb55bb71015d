"""The events a webhook can subscribe to, read from the audit log.

Every change shipyard makes is an audit event committed with the change, so the audit log is
the outbox: :func:`events_of` turns one audit event into the webhook events it means (none
for most), with the data a receiver gets and a one-line summary for chat and issue trackers.
An event may name the only webhooks it goes to (a monitor's ``--notify`` list: its alerts go
there whatever those webhooks subscribe to); others go to the webhooks subscribed to them.

>>> from shipyard.stores.audit import AuditEvent
>>> e = AuditEvent(7, "2026-05-04T09:30:00+00:00", "abe", "model.promote", "model",
...                "credit-risk@3", {"alias": "production"}, "", "")
>>> [(w.type, w.summary) for w in events_of(e)]
[('model.promoted', 'abe promoted model credit-risk@3 to production')]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shipyard.errors import InvalidInputError
from shipyard.stores.audit import AuditEvent

__all__ = ["EVENTS", "TEST_EVENT", "WebhookEvent", "check_events", "events_of"]

#: Every event a webhook can subscribe to, with what it means.
EVENTS: dict[str, str] = {
    "dataset.created": "a dataset version was added",
    "dataset.validation_failed": "a dataset version failed its contract",
    "model.registered": "a model version was registered",
    "approval.requested": "someone asked approvers to review a model version",
    "approval.given": "an approver approved a model version",
    "approval.rejected": "an approver rejected a model version",
    "model.promoted": "a model version was promoted to a protected alias",
    "model.rolled_back": "an alias was rolled back to its previous version",
    "deployment.changed": "a deployment's routes or shadow changed",
    "comment.mention": "a comment mentioned a user",
    "alert.opened": "a monitor opened an alert (its windows stayed beyond a threshold)",
    "alert.resolved": "a monitor's alert resolved (a window within its thresholds again)",
}
#: Sent by ``webhooks test`` to one webhook, whatever it subscribes to.
TEST_EVENT = "webhook.test"


@dataclass(frozen=True)
class WebhookEvent:
    """One webhook event: its ``type``, the ``data`` receivers get, and a ``summary`` line.
    ``webhooks``, when set, names the only webhooks it goes to, whatever they subscribe to
    (a monitor's ``--notify`` list); otherwise it goes to those subscribed to ``type``."""

    type: str
    data: dict[str, Any]
    summary: str
    webhooks: tuple[int, ...] | None = None

    def goes_to(self, webhook_id: int, subscribed: Any) -> bool:
        """Whether the webhook ``webhook_id``, subscribed to ``subscribed``, gets it."""
        if self.webhooks is not None:
            return webhook_id in self.webhooks
        return self.type in subscribed


def check_events(names: list[str]) -> list[str]:
    """``names`` as a list of known event names, without repeats (``*`` means all).

    Raises:
        InvalidInputError: none given, or a name is not an event.
    """
    cleaned = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    if cleaned == ["*"]:
        return list(EVENTS)
    unknown = [n for n in cleaned if n not in EVENTS]
    if unknown or not cleaned:
        raise InvalidInputError(
            ("no events given" if not cleaned else f"unknown webhook events {unknown}")
            + f": choose from {', '.join(EVENTS)} (or * for all)"
        )
    return cleaned


def events_of(event: AuditEvent) -> list[WebhookEvent]:
    """The webhook events an audit event means (usually none)."""
    action, who, what, p = event.action, event.actor, event.entity, event.payload
    base: dict[str, Any] = {"actor": who, "audit_seq": event.seq, "time": event.time}
    out: list[WebhookEvent] = []

    def emit(kind: str, summary: str, **data: Any) -> None:
        out.append(WebhookEvent(kind, {**base, **data}, summary))

    if action in ("alert.open", "alert.resolve"):
        targets = tuple(int(i) for i in p.get("notify") or ())
        data = {
            "alert_id": int(what),
            "monitor": p.get("monitor"),
            "deployment": p.get("deployment"),
            "kind": p.get("kind"),
            "details": p.get("details") or {},
        }
        if action == "alert.resolve":
            data["opened_at"] = p.get("opened_at")
        opened = action == "alert.open"
        out.append(
            WebhookEvent(
                "alert.opened" if opened else "alert.resolved",
                {**base, **data},
                f"{'ALERT' if opened else 'RESOLVED'} {p.get('summary')}",
                targets or None,
            )
        )
        return out

    if action == "dataset.add":
        emit(
            "dataset.created",
            f"{who} added dataset {what} ({p.get('rows')} rows)",
            dataset=what,
            digest=p.get("digest"),
            rows=p.get("rows"),
            message=p.get("message"),
        )
        if p.get("status") == "invalid":
            emit(
                "dataset.validation_failed",
                f"dataset {what} failed contract {p.get('contract')}",
                dataset=what,
                contract=p.get("contract"),
            )
    elif action == "dataset.validate" and p.get("passed") is False:
        emit(
            "dataset.validation_failed",
            f"dataset {what} failed contract {p.get('contract')} "
            f"({p.get('failures')} failing checks)",
            dataset=what,
            contract=p.get("contract"),
            failures=p.get("failures"),
        )
    elif action == "model.register":
        emit(
            "model.registered",
            f"{who} registered model {what}",
            model=what,
            digest=p.get("digest"),
            flavor=p.get("flavor"),
            run_id=p.get("run_id"),
        )
    elif action == "model.approval_request":
        emit(
            "approval.requested",
            f"{who} asks for a review of model {what}",
            model=what,
            comment=p.get("comment", ""),
        )
    elif action in ("model.approve", "model.reject"):
        given = action == "model.approve"
        emit(
            "approval.given" if given else "approval.rejected",
            f"{who} {'approved' if given else 'rejected'} model {what}",
            model=what,
            comment=p.get("comment", ""),
        )
    elif action == "model.promote":
        emit(
            "model.promoted",
            f"{who} promoted model {what} to {p.get('alias')}",
            model=what,
            alias=p.get("alias"),
        )
    elif action == "model.alias.rollback":
        name = what.rpartition("@")[0]
        emit(
            "model.rolled_back",
            f"{who} rolled {name}@{p.get('alias')} back from version {p.get('from')} to "
            f"version {p.get('to')}",
            model=what,
            alias=p.get("alias"),
            from_version=p.get("from"),
            to_version=p.get("to"),
            comment=p.get("comment", ""),
        )
    elif action == "deployment.set":
        routes = p.get("routes") or {}
        shown = ", ".join(f"{a}={w}" for a, w in routes.items())
        emit(
            "deployment.changed",
            f"{who} set deployment {what} of {p.get('model')} to {shown}"
            + (f" (shadow {p.get('shadow')})" if p.get("shadow") else ""),
            deployment=what,
            model=p.get("model"),
            routes=routes,
            shadow=p.get("shadow"),
            from_routes=p.get("from_routes"),
            from_shadow=p.get("from_shadow"),
        )
    elif action in ("comment.add", "comment.edit") and p.get("new_mentions"):
        mentioned = list(p["new_mentions"])
        emit(
            "comment.mention",
            f"{who} mentioned {', '.join('@' + m for m in mentioned)} on {p.get('on')}",
            comment_id=int(what),
            on=p.get("on"),
            mentions=mentioned,
            text=p.get("text", ""),
        )
    return out
