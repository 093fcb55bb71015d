"""Fixtures for comments and webhooks: a real HTTP receiver on 127.0.0.1 whose answers a test
scripts, a clock a test moves, and projects whose webhooks may reach 127.0.0.1 only, with a
1-second HTTP timeout."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

#: The longest a scripted "hang" keeps a request open (longer than the 1 s test timeout).
HANG_SECONDS = 3.0


@pytest.fixture(autouse=True)
def webhook_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Webhooks may reach 127.0.0.1 (and nothing else private) and give up after 1 s."""
    monkeypatch.setenv("SHIPYARD_WEBHOOKS_ALLOW", "127.0.0.1")
    monkeypatch.setenv("SHIPYARD_WEBHOOKS_TIMEOUT", "1")


@dataclass
class Received:
    """One request the receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A local HTTP server: ``script`` holds the answers to give, in order, as
    ``(status, headers, body)`` or ``"hang"``; once it is used up, it answers 200."""

    url: str
    received: list[Received] = field(default_factory=list)
    script: list[Any] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def answer(self) -> Any:
        return self.script.pop(0) if self.script else (200, {}, b"ok")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A scripted receiver listening on a free port of 127.0.0.1."""
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec = state["r"]
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            rec.received.append(
                Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            answer = rec.answer()
            if answer == "hang":
                rec.release.wait(HANG_SECONDS)
                return
            status, headers, text = answer
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("content-length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state["r"] = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["r"]
    finally:
        state["r"].release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


class FakeClock:
    """A clock a test moves forward (it starts at the real time)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
