"""Which addresses a webhook may reach: only global ones, unless the project allows more.

A webhook URL is checked when it is added and again before every attempt, after resolving
its host, so that a name that later resolves to a private address (or a URL that was added
before the allow-list shrank) is refused at send time too. Every address the name resolves
to must pass. The allow-list (``[webhooks] allow`` in ``shipyard.toml``,
``SHIPYARD_WEBHOOKS_ALLOW``) holds IP addresses, networks (``10.0.0.0/8``) or host names.

What this does not stop: a DNS answer that changes between the check and the connection
(rebinding within one attempt); the check narrows the window to milliseconds.

>>> check_url("http://127.0.0.1:9000/hook", allow=["127.0.0.1"])
'http://127.0.0.1:9000/hook'
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from shipyard.errors import InvalidInputError, PermissionDeniedError

__all__ = ["Resolver", "check_url", "display_url", "origin", "resolve_host"]

Resolver = Callable[[str, int], list[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver).

    Raises:
        InvalidInputError: the name does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise InvalidInputError(f"the webhook host {host!r} does not resolve: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_url(url: str, *, allow: Sequence[str], resolve: Resolver = resolve_host) -> str:
    """``url`` when it is an http(s) URL whose host resolves only to global addresses or
    to addresses (or a host name) on ``allow``.

    Raises:
        InvalidInputError: not an http(s) URL with a host, or the host does not resolve.
        PermissionDeniedError: it resolves to a private, loopback, link-local or otherwise
            non-global address that ``allow`` does not list.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidInputError(f"{display_url(url)} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError(
            f"{display_url(url)} is not an http(s) URL; a webhook needs one such as "
            "https://hooks.example.com/shipyard"
        )
    host = parts.hostname
    if parts.username is not None or parts.password is not None:
        raise InvalidInputError(
            "a webhook URL must not carry a user name or password; give credentials with "
            "--secret-file or --secret-env"
        )
    if _host_allowed(host, allow):
        return url
    port = port or (443 if parts.scheme == "https" else 80)
    for address in resolve(host, port):
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not ip.is_global and not _address_allowed(ip, allow):
            raise PermissionDeniedError(
                f"webhook host {host!r} resolves to {ip}, a private or local address that "
                "webhooks may not reach; an admin can allow it with [webhooks] allow = "
                f'["{ip}"] in shipyard.toml (or SHIPYARD_WEBHOOKS_ALLOW)',
                details={"host": host, "address": str(ip)},
            )
    return url


def display_url(url: str) -> str:
    """``url`` fit to show: no user info, no query, and a Slack incoming-webhook path (which
    is itself the credential) cut after ``/services/``.

    >>> display_url("https://hooks.slack.com/services/T0/B0/XyZ")
    'https://hooks.slack.com/services/…'
    >>> display_url("https://u:p@example.com/hook?token=s3cret")
    'https://example.com/hook?…'
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(an invalid URL)"
    path = parts.path
    if host.endswith("slack.com") and "/services/" in path:
        path = path[: path.index("/services/") + len("/services/")] + "…"
    shown_host = f"[{host}]" if ":" in host else host
    query = "?…" if parts.query else ""
    return f"{parts.scheme}://{shown_host}{port}{path}{query}"


def origin(url: str) -> str:
    """Only the scheme, host and port of ``url``: what the audit log (which every user reads)
    records of a webhook's URL, whose path may itself be a credential (Slack, Discord, Teams).

    >>> origin("https://discord.com/api/webhooks/123/t0ken")
    'https://discord.com/…'
    """
    shown = display_url(url)
    scheme, sep, rest = shown.partition("://")
    if not sep:
        return shown
    host = rest.split("/", 1)[0].split("?", 1)[0]
    return f"{scheme}://{host}/…"


def _host_allowed(host: str, allow: Sequence[str]) -> bool:
    return host.lower() in {a.strip().lower() for a in allow}


def _address_allowed(ip: IPAddress, allow: Sequence[str]) -> bool:
    for entry in allow:
        try:
            network = ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            continue  # a host name: matched by _host_allowed
        if ip.version == network.version and ip in network:
            return True
    return False
