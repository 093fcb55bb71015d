"""What a delivery sends, per format: the HTTP request for one event.

- ``generic``: the event as JSON ``{"type", "timestamp", "data"}``, signed per the Standard
  Webhooks spec (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``) with the
  ``whsec_…`` secret, through the ``standardwebhooks`` package, so receivers verify it with
  the same library (or any implementation of the spec).
- ``slack``: ``{"text", "blocks"}`` for a Slack incoming webhook (its URL is the credential).
- ``jira``: a new issue through Jira's REST API, ``POST {url}/rest/api/2/issue``, with basic
  auth from the secret ``email:api-token``.
- ``trello``: a new card, ``POST {url}/1/cards``, with the secret ``key:token``.

Secrets are read from the file or environment variable named when the webhook was added, at
send time, and go only into the request: never into a message, a log or an attempt record.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from shipyard.errors import InvalidInputError

__all__ = [
    "FORMATS",
    "SECRET_ENV_PREFIX",
    "OutboundRequest",
    "SecretUnavailableError",
    "check_options",
    "read_secret",
    "render_request",
    "secret_source_problem",
    "signature_headers",
]

FORMATS = ("generic", "slack", "jira", "trello")
#: Which formats need a secret, and what it holds.
SECRET_NEEDED = {
    "generic": "a signing secret whsec_<base64>",
    "jira": "EMAIL:API_TOKEN",
    "trello": "KEY:TOKEN",
}
_TITLE_CHARS = 250  # Jira's summary holds 255 characters; Trello card names are short too


class SecretUnavailableError(Exception):
    """The secret cannot be read; the message names where it was looked for, never a value."""


@dataclass(frozen=True)
class OutboundRequest:
    """One HTTP request to send (``body`` is bytes: what was signed is what is sent)."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def check_options(fmt: str, options: dict[str, Any], has_secret: bool) -> dict[str, Any]:
    """The options a format needs, checked when the webhook is added.

    Raises:
        InvalidInputError: an unknown format, a missing option or a missing secret.
    """
    if fmt not in FORMATS:
        raise InvalidInputError(f"unknown webhook format {fmt!r}: choose {', '.join(FORMATS)}")
    if fmt in SECRET_NEEDED and not has_secret:
        raise InvalidInputError(
            f"a {fmt} webhook needs {SECRET_NEEDED[fmt]}: name the file that holds it with "
            "--secret-file FILE or the environment variable with --secret-env VAR"
        )
    out: dict[str, Any] = {}
    if fmt == "jira":
        if not options.get("jira_project"):
            raise InvalidInputError("a jira webhook needs --jira-project KEY (e.g. MLOPS)")
        out["jira_project"] = str(options["jira_project"])
        out["jira_issue_type"] = str(options.get("jira_issue_type") or "Task")
    if fmt == "trello":
        if not options.get("trello_list"):
            raise InvalidInputError("a trello webhook needs --trello-list LIST_ID")
        out["trello_list"] = str(options["trello_list"])
    return out


#: A webhook's secret variable is named so; it can never name another of the server's
#: variables (a database URL, cloud keys) and send it to the webhook's URL.
SECRET_ENV_PREFIX = "SHIPYARD_WEBHOOK_"


def secret_source_problem(
    secret_file: str | None, secret_env: str | None, allowed_dirs: Sequence[Path]
) -> str | None:
    """Why a secret source may not be used, or None. A secret file must be in one of
    ``allowed_dirs`` (``Settings.webhook_secret_dirs``) and a variable named
    ``SHIPYARD_WEBHOOK_…``: an admin (through the server, too) names where a secret is read,
    and it is sent to the webhook's URL, so it must not be any file or variable the server can
    read."""
    if secret_env is not None and not (
        secret_env.startswith(SECRET_ENV_PREFIX) and secret_env[len(SECRET_ENV_PREFIX) :]
    ):
        return (
            f"a webhook's secret variable must be named {SECRET_ENV_PREFIX}… (e.g. "
            f"{SECRET_ENV_PREFIX}JIRA), not {secret_env!r}"
        )
    if secret_file is not None:
        path = Path(secret_file).resolve()
        if not any(path.is_relative_to(d) for d in allowed_dirs):
            where = ", ".join(str(d) for d in allowed_dirs)
            return (
                f"a webhook's secret file must be in {where} (add folders with [webhooks] "
                f"secret_dirs in shipyard.toml or SHIPYARD_WEBHOOKS_SECRET_DIRS), not {path}"
            )
    return None


def read_secret(
    secret_file: str | None, secret_env: str | None, allowed_dirs: Sequence[Path]
) -> str | None:
    """The secret from its file (stripped of surrounding white space) or environment variable;
    None when the webhook has neither. The source is checked again
    (:func:`secret_source_problem`), as the allowed folders may have changed since.

    Raises:
        SecretUnavailableError: the source is not allowed, the file cannot be read, or the
            variable is unset or empty.
    """
    problem = secret_source_problem(secret_file, secret_env, allowed_dirs)
    if problem is not None:
        raise SecretUnavailableError(problem)
    if secret_file:
        try:
            value = Path(secret_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretUnavailableError(
                f"cannot read the webhook secret file {secret_file}: {exc.strerror}"
            ) from None
        if not value:
            raise SecretUnavailableError(f"the webhook secret file {secret_file} is empty")
        return value
    if secret_env:
        value = os.environ.get(secret_env, "").strip()
        if not value:
            raise SecretUnavailableError(
                f"the environment variable {secret_env} that holds the webhook secret is not "
                "set in the process that sends deliveries"
            )
        return value
    return None


def render_request(
    fmt: str,
    url: str,
    options: dict[str, Any],
    *,
    message_id: str,
    payload: dict[str, Any],
    secret: str | None,
    now: datetime,
) -> OutboundRequest:
    """The request that delivers ``payload`` (``{"type", "timestamp", "data"}``) in ``fmt``.

    Raises:
        SecretUnavailableError: the secret is not in the form the format needs.
    """
    headers = {"content-type": "application/json", "user-agent": "shipyard-webhooks"}
    if fmt == "generic":
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str)
        headers.update(signature_headers(secret, message_id, now, body))
        return OutboundRequest("POST", url, headers, body.encode())
    summary = str(payload["data"].get("summary") or payload["type"])
    details = _details(payload)
    if fmt == "slack" and isinstance(payload["data"].get("slack"), dict):
        # A message the project composed for Slack itself (the digest).
        return OutboundRequest("POST", url, headers, _json(payload["data"]["slack"]))
    if fmt == "slack":
        doc: dict[str, Any] = {
            "text": summary,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": f"*{summary}*"}},
                {
                    "type": "context",
                    "elements": [
                        {"type": "mrkdwn", "text": f"`{payload['type']}` · {payload['timestamp']}"}
                    ],
                },
            ],
        }
        return OutboundRequest("POST", url, headers, _json(doc))
    if fmt == "jira":
        user, token = _pair(secret, "jira", "EMAIL:API_TOKEN")
        basic = base64.b64encode(f"{user}:{token}".encode()).decode()
        headers["authorization"] = f"Basic {basic}"
        doc = {
            "fields": {
                "project": {"key": options["jira_project"]},
                "issuetype": {"name": options.get("jira_issue_type", "Task")},
                "summary": summary[:_TITLE_CHARS],
                "description": f"{summary}\n\n{details}",
            }
        }
        return OutboundRequest("POST", _join(url, "/rest/api/2/issue"), headers, _json(doc))
    if fmt == "trello":
        key, token = _pair(secret, "trello", "KEY:TOKEN")
        doc = {
            "idList": options["trello_list"],
            "name": summary[:_TITLE_CHARS],
            "desc": details,
            "key": key,
            "token": token,
        }
        return OutboundRequest("POST", _join(url, "/1/cards"), headers, _json(doc))
    raise InvalidInputError(f"unknown webhook format {fmt!r}")


def signature_headers(
    secret: str | None, message_id: str, now: datetime, body: str
) -> dict[str, str]:
    """The Standard Webhooks headers for ``body``: ``webhook-id``, ``webhook-timestamp``
    (``now`` in seconds) and ``webhook-signature`` (``v1,`` and the base64 HMAC-SHA256 of
    ``id.timestamp.body`` with the secret).

    Raises:
        SecretUnavailableError: no secret, or not ``whsec_<base64>``.
    """
    from standardwebhooks import Webhook

    if not secret:
        raise SecretUnavailableError("a generic webhook needs a signing secret")
    try:
        signer = Webhook(secret)
    except Exception:  # a secret that is not base64: say so without echoing it
        raise SecretUnavailableError(
            "the webhook signing secret is not whsec_<base64>; make one with "
            "`shipyard webhooks new-secret`"
        ) from None
    timestamp = int(now.timestamp())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signer.sign(message_id, now, body),
    }


def _pair(secret: str | None, fmt: str, shape: str) -> tuple[str, str]:
    first, sep, second = (secret or "").partition(":")
    if not sep or not first or not second:
        raise SecretUnavailableError(f"the {fmt} webhook secret must have the form {shape}")
    return first, second


def _details(payload: dict[str, Any]) -> str:
    data = {
        k: v
        for k, v in payload["data"].items()
        if k not in ("summary", "slack") and v not in (None, "")
    }
    lines = [f"event: {payload['type']}", f"time: {payload['timestamp']}"]
    lines += [
        f"{k}: {json.dumps(v, default=str) if not isinstance(v, str) else v}"
        for k, v in data.items()
    ]
    return "\n".join(lines)


def _json(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), default=str).encode()


def _join(base: str, path: str) -> str:
    return base.rstrip("/") + path
