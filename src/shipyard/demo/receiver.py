"""The demo's webhook receiver: a small HTTP server on 127.0.0.1 that checks each message's
Standard Webhooks signature, as a team's own receiver would, and keeps what it accepted."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Message", "Receiver"]


@dataclass(frozen=True)
class Message:
    """One accepted delivery: its event type and body."""

    type: str
    body: dict[str, Any]


@dataclass
class Receiver:
    """Listens on a free port of 127.0.0.1 until closed; ``url`` is where to send.

    Messages whose signature does not verify with ``secret`` are answered 401 and not kept.
    """

    secret: str
    messages: list[Message] = field(default_factory=list)
    refused: int = 0
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError

        verifier = Webhook(self.secret)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                try:
                    verifier.verify(body, {k.lower(): v for k, v in self.headers.items()})
                    doc = json.loads(body)
                except (WebhookVerificationError, ValueError):
                    with receiver._arrived:
                        receiver.refused += 1
                    self.send_response(401)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                with receiver._arrived:
                    receiver.messages.append(Message(str(doc.get("type", "")), doc))
                    receiver._arrived.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/alerts"

    def wait_for(self, event_type: str, timeout: float = 10.0) -> Message | None:
        """The first accepted message of ``event_type``, waiting up to ``timeout`` seconds."""
        with self._arrived:
            self._arrived.wait_for(
                lambda: any(m.type == event_type for m in self.messages), timeout
            )
            return next((m for m in self.messages if m.type == event_type), None)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
