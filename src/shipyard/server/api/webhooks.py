"""``/api/v1/webhooks``: subscriptions, their deliveries and attempts (admin only).

Secrets never travel through the API: a webhook names the file or environment variable on the
server that holds its secret, read when a delivery is sent.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from shipyard.collaboration.webhooks import Delivery, Webhook
from shipyard.project import Project
from shipyard.server.api._docs import returns
from shipyard.server.auth import acting_project

router = APIRouter(tags=["webhooks"])
Acting = Annotated[Project, Depends(acting_project)]

_WEBHOOK = {
    "id": 1,
    "url": "https://hooks.slack.com/services/…",
    "events": ["model.promoted", "approval.requested"],
    "format": "slack",
    "options": {},
    "secret": None,
    "enabled": True,
    "disabled_reason": None,
    "failures": 0,
    "created_at": "2026-05-03T10:00:00+00:00",
    "created_by": "alice",
}
_DELIVERY = {
    "id": "msg_5d1c0e9a7b3f4e2d8c6a1b0f9e8d7c6b",
    "webhook_id": 1,
    "event": "model.promoted",
    "status": "delivered",
    "attempts": [
        {
            "number": 1,
            "time": "2026-05-04T09:30:01+00:00",
            "status_code": 200,
            "latency_ms": 84.2,
            "response": "ok",
            "error": None,
            "outcome": "delivered",
        }
    ],
    "next_attempt_at": None,
    "created_at": "2026-05-04T09:30:00+00:00",
    "payload": {
        "type": "model.promoted",
        "timestamp": "2026-05-04T09:30:00+00:00",
        "data": {"model": "credit-risk@3", "alias": "production", "actor": "abe"},
    },
    "redelivery_of": None,
}


class WebhookIn(BaseModel):
    """A webhook to add."""

    url: str = Field(examples=["https://ci.example.com/shipyard"])
    events: list[str] = Field(examples=[["model.promoted", "approval.requested"]])
    format: str = Field("generic", examples=["generic"])
    secret_file: str | None = Field(None, description="a file on the server holding the secret")
    secret_env: str | None = Field(
        None, description="an environment variable of the server holding the secret"
    )
    options: dict[str, str] = Field(
        default_factory=dict,
        description="jira_project, jira_issue_type (jira); trello_list (trello)",
    )


@router.get(
    "/webhooks",
    summary="List webhooks (admin)",
    **returns(Webhook, many=True, example=[_WEBHOOK], errors=(401, 403)),
)
def list_webhooks(project: Acting) -> Any:
    return [h.to_dict() for h in project.webhooks.list()]


@router.post(
    "/webhooks",
    summary="Subscribe a URL to events (admin)",
    status_code=201,
    **returns(Webhook, example=_WEBHOOK, errors=(401, 403, 422), status=201),
)
def add_webhook(project: Acting, body: WebhookIn) -> Any:
    return project.webhooks.add(
        body.url,
        body.events,
        format=body.format,
        secret_file=body.secret_file,
        secret_env=body.secret_env,
        options=dict(body.options),
    ).to_dict()


@router.get(
    "/webhooks/{webhook_id}",
    summary="One webhook (admin)",
    **returns(Webhook, example=_WEBHOOK, errors=(401, 403, 404)),
)
def get_webhook(project: Acting, webhook_id: int) -> Any:
    return project.webhooks.get(webhook_id).to_dict()


@router.delete(
    "/webhooks/{webhook_id}",
    summary="Remove a webhook; its queued deliveries are cancelled (admin)",
    **returns(Webhook, example={**_WEBHOOK, "enabled": False}, errors=(401, 403, 404)),
)
def remove_webhook(project: Acting, webhook_id: int) -> Any:
    return project.webhooks.remove(webhook_id).to_dict()


@router.post(
    "/webhooks/{webhook_id}/enable",
    summary="Enable a webhook again (admin)",
    **returns(Webhook, example=_WEBHOOK, errors=(401, 403, 404)),
)
def enable_webhook(project: Acting, webhook_id: int) -> Any:
    return project.webhooks.enable(webhook_id).to_dict()


@router.post(
    "/webhooks/{webhook_id}/test",
    summary="Send a webhook.test event now; returns the delivery and its attempt (admin)",
    **returns(Delivery, example=_DELIVERY, errors=(401, 403, 404)),
)
def test_webhook(project: Acting, webhook_id: int) -> Any:
    return project.webhooks.test(webhook_id).to_dict()


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    summary="A webhook's latest deliveries with their attempts, newest first (admin)",
    **returns(Delivery, many=True, example=[_DELIVERY], errors=(401, 403, 404)),
)
def list_deliveries(
    project: Acting, webhook_id: int, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> Any:
    return [d.to_dict() for d in project.webhooks.deliveries(webhook_id, limit=limit)]


@router.post(
    "/webhook-deliveries/{delivery_id}/redeliver",
    summary="Queue a delivery's event again and try it now (admin)",
    **returns(Delivery, example=_DELIVERY, errors=(401, 403, 404)),
)
def redeliver(project: Acting, delivery_id: str) -> Any:
    return project.webhooks.redeliver(delivery_id).to_dict()
