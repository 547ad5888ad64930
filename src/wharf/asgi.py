"""Small pure-ASGI helpers for the hot paths: bytes, JSON, errors, files (pathsend, Range, ETag/304)."""

from __future__ import annotations

import json
import os
import time
from collections import OrderedDict
from email.utils import formatdate
from typing import Any, Awaitable, Callable, MutableMapping

__all__ = [
    "Scope", "Receive", "Send", "ASGIApp", "HTTPError",
    "header", "send_bytes", "send_json", "send_error", "send_redirect", "send_file", "etag_matches",
    "ResponseMemo", "MEMO_SLOT", "remember",
]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_FILE_CHUNK = 1024 * 1024
# Below this size a file is read and sent as one body: measured here, granian's zero-copy pathsend costs more per
# request than it saves for small files (14k vs 23k req/s for 3 KB); above it, pathsend keeps memory flat.
_SMALL_FILE = 256 * 1024
_HTTP_DATES: dict[int, bytes] = {}
_SMALL_CACHE_BYTES = 16 * 1024 * 1024


class _SmallFiles:
    """Recently served small files by (inode, mtime, size): saves open/read/close on hot downloads. Bounded."""

    def __init__(self, budget: int):
        self.budget = budget
        self.used = 0
        self.items: OrderedDict[tuple[int, int, int], bytes] = OrderedDict()

    def get(self, path: str, key: tuple[int, int, int], length: int) -> bytes:
        data = self.items.get(key)
        if data is not None:
            self.items.move_to_end(key)
            return data
        with open(path, "rb") as fh:
            data = fh.read(length)
        self.items[key] = data
        self.used += len(data)
        while self.used > self.budget:
            _k, old = self.items.popitem(last=False)
            self.used -= len(old)
        return data


_SMALL_FILES = _SmallFiles(_SMALL_CACHE_BYTES)

MEMO_SLOT = "wharf.memo"  # scope key: (memo, key, token) while the response being made may be remembered
# a request with any of these is answered by the full path: credentials, or an answer that depends on the request
_NOT_MEMO = frozenset((b"authorization", b"if-none-match", b"if-modified-since", b"range", b"if-range", b"cookie"))


class ResponseMemo:
    """Whole answers to plain anonymous GETs that depend on nothing but the path, the Accept header and published
    state (a public repository's index pages), each kept with the ``token`` it was made under (the values of the
    change signals that every change of settings, access or pages replaces) and the time it is good ``until`` (a
    proxy's page is due for revalidation then). While both hold, a request is answered from here without routing
    (like nginx's open-file cache in front of static pages); a request with credentials, a condition or a range,
    and every other method, takes the full path. Bounded by entries and by body bytes (the bodies are mostly the
    page cache's own objects); cleared when full: a memo of the hot set."""

    def __init__(self, entries: int = 4096, body_bytes: int = 8 * 1024 * 1024):
        self.entries = entries
        self.body_bytes = body_bytes
        self._items: dict[tuple[str, bytes | None], tuple[Any, int, dict[str, Any], dict[str, Any], str, float]] = {}
        self._bytes = 0

    def lookup(self, scope: Scope, token: Any) -> tuple[Any, int, dict[str, Any], dict[str, Any], str, float] | None:
        """The remembered answer to this GET (None: take the full path, which may remember its answer)."""
        accept = None
        for k, v in scope["headers"]:
            if k == b"accept":
                accept = v
            elif k in _NOT_MEMO:
                return None
        key = (scope["path"], accept)
        hit = self._items.get(key)
        if hit is not None and hit[0] == token and hit[5] > time.time():
            return hit
        scope[MEMO_SLOT] = (self, key, token)
        return None

    def store(self, key: tuple[str, bytes | None], token: Any, status: int, headers: list[tuple[bytes, bytes]],
              body: bytes, route: str, until: float = float("inf")) -> None:
        if len(body) > self.body_bytes // 16 or until <= time.time():
            return
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= len(old[3]["body"])
        if len(self._items) >= self.entries or self._bytes + len(body) > self.body_bytes:
            self._items.clear()
            self._bytes = 0
        self._items[key] = (token, status, {"type": "http.response.start", "status": status, "headers": headers},
                            {"type": "http.response.body", "body": body}, route, until)
        self._bytes += len(body)

    def __len__(self) -> int:
        return len(self._items)


def remember(scope: Scope, status: int, headers: list[tuple[bytes, bytes]], body: bytes, route: str,
             until: float = float("inf")) -> None:
    """Offer a complete answer to the memo, good until the wall-clock time ``until`` at most, if the dispatcher found
    this request eligible (see ResponseMemo)."""
    slot = scope.get(MEMO_SLOT)
    if slot is not None:
        slot[0].store(slot[1], slot[2], status, headers, body, route, until)


def _http_date(mtime: float) -> bytes:
    key = int(mtime)
    value = _HTTP_DATES.get(key)
    if value is None:
        if len(_HTTP_DATES) > 4096:
            _HTTP_DATES.clear()
        value = _HTTP_DATES[key] = formatdate(key, usegmt=True).encode()
    return value


class HTTPError(Exception):
    """Raised anywhere below a route; turned into a response with a clear message."""

    def __init__(self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None, reason: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []
        self.reason = reason  # machine code (metrics tag)


def header(scope: Scope, name: bytes) -> bytes | None:
    for k, v in scope["headers"]:
        if k == name:
            return v
    return None


async def send_bytes(send: Send, status: int, body: bytes, content_type: bytes, headers: list[tuple[bytes, bytes]] | None = None, *, head: bool = False) -> list[tuple[bytes, bytes]]:
    """Send a whole answer; returns the headers it was sent with."""
    h = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if headers:
        h.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": h})
    await send({"type": "http.response.body", "body": b"" if head else body})
    return h


async def send_json(send: Send, status: int, obj: Any, headers: list[tuple[bytes, bytes]] | None = None, *, head: bool = False) -> None:
    body = json.dumps(obj, separators=(",", ":"), default=str).encode()
    await send_bytes(send, status, body, b"application/json", headers, head=head)


async def send_error(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """Errors are JSON ``{"error": ..., "status": ...}``; clients that show the body show the sentence."""
    await send_json(send, status, {"error": message, "status": status}, headers)


async def send_redirect(send: Send, location: str, status: int = 301) -> None:
    await send_bytes(send, status, b"", b"text/plain", [(b"location", location.encode())])


def etag_matches(scope: Scope, etag: bytes) -> bool:
    inm = header(scope, b"if-none-match")
    if inm is None:
        return False
    if inm.strip() == b"*":
        return True
    return any(t.strip().removeprefix(b"W/") == etag for t in inm.split(b","))


def _parse_range(value: bytes, size: int) -> tuple[int, int] | None | bool:
    """Single byte range -> (start, end inclusive); None when unsatisfiable; False when not understood (ignore)."""
    try:
        unit, _, spec = value.decode("latin-1").partition("=")
        if unit.strip() != "bytes" or "," in spec:
            return False
        first, _, last = spec.strip().partition("-")
        if first == "":
            n = int(last)
            if n <= 0:
                return None
            return (max(0, size - n), size - 1)
        start = int(first)
        end = int(last) if last else size - 1
        if start >= size or end < start:
            return None
        return (start, min(end, size - 1))
    except ValueError:
        return False


async def send_file(scope: Scope, send: Send, path: str, *, content_type: bytes, etag: bytes, size: int | None = None,
                    mtime: float | None = None, immutable: bool = True, filename: str | None = None,
                    stat: os.stat_result | None = None, headers: list[tuple[bytes, bytes]] | None = None,
                    accel: bytes | None = None) -> None:
    """Serve a file by path: ETag/304, single Range (206/416), Content-Length always, zero-copy pathsend when offered.
    ``headers`` are added to every answer (e.g. checksum headers). With ``accel`` (a URI of the fronting nginx's
    internal location for this file), a 200 or 206 is left to nginx: the answer carries the headers and
    ``X-Accel-Redirect`` and no body, and nginx sends the file (and the range) itself."""
    extra = headers or []
    if stat is None and (size is None or mtime is None):
        stat = os.stat(path)
    if stat is not None:
        size, mtime = stat.st_size, stat.st_mtime
    assert size is not None and mtime is not None
    head = scope["method"] == "HEAD"
    headers = [
        (b"etag", etag),
        (b"accept-ranges", b"bytes"),
        (b"last-modified", _http_date(mtime)),
        (b"cache-control", b"public, max-age=31536000, immutable" if immutable else b"public, max-age=60"),
        (b"content-type", content_type),
    ]
    if filename:
        headers.append((b"content-disposition", b'attachment; filename="%s"' % filename.encode("utf-8", "replace").replace(b'"', b"")))
    if etag_matches(scope, etag):
        await send({"type": "http.response.start", "status": 304, "headers": headers[:4] + extra})
        await send({"type": "http.response.body", "body": b""})
        return
    if accel is not None:
        headers += [(b"x-accel-redirect", accel), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 200, "headers": headers + extra})
        await send({"type": "http.response.body", "body": b""})
        return
    start, end, status = 0, size - 1, 200
    rng = header(scope, b"range")
    if rng is not None:
        if_range = header(scope, b"if-range")
        if if_range is None or if_range == etag:
            parsed = _parse_range(rng, size)
            if parsed is None:
                await send({"type": "http.response.start", "status": 416,
                            "headers": [(b"content-range", b"bytes */%d" % size), (b"content-length", b"0")]})
                await send({"type": "http.response.body", "body": b""})
                return
            if parsed is not False:
                start, end = parsed  # type: ignore[misc]
                status = 206
                headers.append((b"content-range", b"bytes %d-%d/%d" % (start, end, size)))
    length = end - start + 1 if size else 0
    headers.append((b"content-length", str(length).encode()))
    headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if head or length == 0:
        await send({"type": "http.response.body", "body": b""})
        return
    if status == 200 and length <= _SMALL_FILE:
        if stat is not None:
            body = _SMALL_FILES.get(path, (stat.st_ino, stat.st_mtime_ns, length), length)
        else:
            with open(path, "rb") as fh:
                body = fh.read(length)
        await send({"type": "http.response.body", "body": body})
        return
    if status == 200 and "http.response.pathsend" in scope.get("extensions", {}):
        await send({"type": "http.response.pathsend", "path": path})
        return
    with open(path, "rb") as fh:
        fh.seek(start)
        remaining = length
        while remaining > 0:
            chunk = fh.read(min(_FILE_CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": remaining > 0})
