"""Small network helpers for tests: free loopback ports and waiting for HTTP servers.

Only loopback addresses are meant to be used with these helpers.
"""

from __future__ import annotations

import socket
import ssl
import time
import urllib.error
import urllib.request
from typing import Callable, TypeVar

__all__ = ["free_port", "wait_http", "wait_port"]

T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that was free a moment ago (the OS picks it).

    There is an unavoidable race between closing the probe socket and the caller binding
    the port; callers that start servers should be ready to retry with another port.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_port(host: str, port: int, timeout: float = 30.0, interval: float = 0.05) -> None:
    """Poll until a TCP connection to ``host:port`` succeeds; raise ``TimeoutError`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            with socket.create_connection((host, port), timeout=min(2.0, timeout)):
                return
        except OSError as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{host}:{port} did not accept connections within {timeout}s (last error: {last!r})")
        time.sleep(interval)


# No proxies for loopback polling, whatever http_proxy/https_proxy say.
_NO_PROXY = urllib.request.ProxyHandler({})


def wait_http(
    url: str,
    timeout: float = 30.0,
    *,
    interval: float = 0.05,
    ssl_context: ssl.SSLContext | None = None,
) -> int:
    """Poll ``url`` with GET until the server answers with any status below 500.

    Returns that status code.  Connection errors, timeouts and 5xx answers are retried
    every ``interval`` seconds; after ``timeout`` seconds ``TimeoutError`` is raised,
    naming the last error.  For https with a test CA pass ``ssl_context``.
    Redirects are not followed (a 3xx counts as up).
    """
    handlers: list[urllib.request.BaseHandler] = [_NO_PROXY, _NoRedirect()]
    if ssl_context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=ssl_context))
    opener = urllib.request.build_opener(*handlers)
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        remaining = deadline - time.monotonic()
        try:
            with opener.open(urllib.request.Request(url, method="GET"), timeout=max(0.5, min(5.0, remaining))) as resp:
                status = int(resp.status)
            if status < 500:
                return status
            last = f"HTTP {status}"
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code < 500:
                return int(exc.code)
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError, ConnectionError) as exc:  # refused, reset, timeout
            last = exc
        except Exception as exc:  # e.g. http.client.RemoteDisconnected / BadStatusLine while starting
            last = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{url} not up within {timeout}s (last: {last!r})")
        time.sleep(interval)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001
        return None  # makes urllib raise HTTPError(3xx), which wait_http counts as "up"


def wait_until(cond: "Callable[[], T]", what: str, timeout: float = 30.0, interval: float = 0.05) -> "T":
    """Poll ``cond`` until it returns something truthy (returned); AssertionError naming ``what`` on timeout.
    For work a server finishes in the background (scans, webhook deliveries, promotions by a receiver)."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def with_credentials(url: str, user: str, secret: str) -> str:
    """``url`` with ``user:secret`` in its authority, the way pip takes credentials in an index URL."""
    from urllib.parse import quote, urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}:{quote(secret, safe='')}@{parts.netloc}"))
