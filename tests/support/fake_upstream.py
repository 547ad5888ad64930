"""A scripted upstream index on loopback, for the faults a real server cannot be made to produce.

Each path gets a behaviour set by the test; every request is counted and its headers recorded::

    up = FakeUpstream().start()
    up.project("demo", {"demo-1.0-py3-none-any.whl": wheel_bytes})   # PEP 691 page + the files
    up.set("/simple/demo/", Fault.status(500))                        # now the page fails
    up.count("/simple/demo/"); up.requests("/simple/demo/")[-1]["if-none-match"]
    up.stop()

Every response says ``Connection: close``, so stopping the server really makes the upstream unreachable (no
kept-alive connection keeps answering).
"""

from __future__ import annotations

import hashlib
import json
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Mapping

__all__ = ["FakeUpstream", "Fault", "Behaviour"]

JSON_TYPE = "application/vnd.pypi.simple.v1+json"


@dataclass
class Behaviour:
    """What one path answers. ``kind``: body | status | garbage | slow | reset | reset_mid."""

    kind: str = "body"
    body: bytes = b""
    status: int = 200
    content_type: str = "application/octet-stream"
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None  # with etag/last_modified, conditional requests that match get a 304
    last_modified: str | None = None
    delay: float = 0.0  # slow: seconds between chunks
    chunk: int = 64
    send_length: bool = True


class Fault:
    """Shorthands for the faulty behaviours."""

    @staticmethod
    def status(code: int, body: bytes = b"upstream says no") -> Behaviour:
        return Behaviour("status", body=body, status=code, content_type="text/plain")

    @staticmethod
    def garbage(content_type: str = JSON_TYPE, body: bytes = b"\x8b\x00<not an index>\xff{[") -> Behaviour:
        return Behaviour("garbage", body=body, content_type=content_type)

    @staticmethod
    def slow(body: bytes, delay: float, chunk: int = 64, content_type: str = "application/octet-stream") -> Behaviour:
        """Headers at once, then ``chunk`` bytes every ``delay`` seconds."""
        return Behaviour("slow", body=body, delay=delay, chunk=chunk, content_type=content_type)

    @staticmethod
    def reset() -> Behaviour:
        """Read the request, then reset the connection without answering."""
        return Behaviour("reset")

    @staticmethod
    def reset_mid(body: bytes, content_type: str = "application/octet-stream") -> Behaviour:
        """Headers (with the full Content-Length) and half the body, then a TCP reset."""
        return Behaviour("reset_mid", body=body, content_type=content_type)


def json_page(name: str, files: Mapping[str, bytes], *, base: str = "../../files/", versions: list[str] | None = None,
              digests: Mapping[str, str] | None = None) -> bytes:
    """A PEP 691 project page listing ``files`` (filename -> bytes) with their sha256 (or ``digests`` overrides)."""
    entries = []
    for filename, data in files.items():
        sha = (digests or {}).get(filename) or hashlib.sha256(data).hexdigest()
        entries.append({"filename": filename, "url": f"{base}{filename}", "hashes": {"sha256": sha},
                        "requires-python": None, "yanked": False, "size": len(data)})
    doc: dict[str, Any] = {"meta": {"api-version": "1.1"}, "name": name, "files": entries}
    if versions is not None:
        doc["versions"] = versions
    return json.dumps(doc).encode()


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        fake = self.server.fake
        path = self.path.split("?", 1)[0]
        beh = fake._record(path, {k.lower(): v for k, v in self.headers.items()})
        self.close_connection = True
        if fake.expect_auth is not None and self.headers.get("Authorization") != fake.expect_auth:
            return self._send(401, b"unauthorized", "text/plain", {"WWW-Authenticate": 'Basic realm="fake"'})
        if beh is None:
            return self._send(404, b"not found", "text/plain")
        if beh.kind == "reset":
            return self._reset()
        if beh.kind == "status":
            return self._send(beh.status, beh.body, beh.content_type)
        if beh.etag or beh.last_modified:
            inm, ims = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
            if (beh.etag and inm == beh.etag) or (not beh.etag and beh.last_modified and ims == beh.last_modified):
                return self._send(304, b"", None, self._validators(beh))
        if beh.kind in ("body", "garbage"):
            return self._send(beh.status, beh.body, beh.content_type, {**beh.headers, **self._validators(beh)})
        if beh.kind == "slow":
            self.send_response(200)
            self.send_header("Content-Type", beh.content_type)
            self.send_header("Content-Length", str(len(beh.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                for i in range(0, len(beh.body), beh.chunk):
                    self.wfile.write(beh.body[i:i + beh.chunk])
                    self.wfile.flush()
                    if fake._stopping.wait(beh.delay):
                        return
            except OSError:
                pass  # the proxy gave up on us
            return
        if beh.kind == "reset_mid":
            self.send_response(200)
            self.send_header("Content-Type", beh.content_type)
            self.send_header("Content-Length", str(len(beh.body)))
            self.end_headers()
            self.wfile.write(beh.body[: len(beh.body) // 2])
            self.wfile.flush()
            time.sleep(0.05)
            return self._reset()
        raise AssertionError(f"unknown behaviour {beh.kind}")

    @staticmethod
    def _validators(beh: Behaviour) -> dict[str, str]:
        out = {}
        if beh.etag:
            out["ETag"] = beh.etag
        if beh.last_modified:
            out["Last-Modified"] = beh.last_modified
        return out

    def _send(self, status: int, body: bytes, content_type: str | None, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if status != 304 and self.command != "HEAD":
            self.wfile.write(body)

    def _reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0), no response."""
        try:
            self.wfile.flush()
        except OSError:
            pass
        sock = self.connection
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
        self.close_connection = True
        self.wfile = _Sink()  # the base class flushes wfile after the handler; the socket is gone


class _Sink:
    def write(self, data: bytes) -> int:
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    closed = False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: "FakeUpstream"):
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:  # resets are expected here
        pass


class FakeUpstream:
    """A threaded HTTP server on 127.0.0.1 (a free port) whose answers the test scripts per path."""

    def __init__(self) -> None:
        self.routes: dict[str, Behaviour | list[Behaviour]] = {}
        self.counts: Counter[str] = Counter()
        self.log: list[tuple[str, dict[str, str]]] = []
        self.expect_auth: str | None = None  # when set, requests without exactly this Authorization get a 401
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- lifecycle --------------------------------------------------------------------------------------------
    def start(self) -> "FakeUpstream":
        self._stopping.clear()
        self._server = _Server(self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering: new connections are refused (the port is closed)."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "FakeUpstream":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def index_url(self) -> str:
        return f"{self.url}/simple/"

    # -- scripting --------------------------------------------------------------------------------------------
    def set(self, path: str, behaviour: Behaviour | list[Behaviour] | None) -> None:
        """Answer ``path`` with ``behaviour`` (a list is played in order, its last item then repeats); None -> 404."""
        with self._lock:
            if behaviour is None:
                self.routes.pop(path, None)
            else:
                self.routes[path] = list(behaviour) if isinstance(behaviour, list) else behaviour

    def project(self, name: str, files: Mapping[str, bytes], *, digests: Mapping[str, str] | None = None,
                etag: str | None = None, last_modified: str | None = None, serve_files: bool = True,
                absolute: bool = False) -> bytes:
        """Serve ``/simple/<name>/`` as a PEP 691 page listing ``files`` and (unless told not to) the files under
        ``/files/`` (linked relatively, or by absolute URL). Returns the page body."""
        page = json_page(name, files, digests=digests, base=f"{self.url}/files/" if absolute else "../../files/")
        self.set(f"/simple/{name}/", Behaviour("body", body=page, content_type=JSON_TYPE, etag=etag,
                                               last_modified=last_modified))
        if serve_files:
            for filename, data in files.items():
                self.set(f"/files/{filename}", Behaviour("body", body=data))
        return page

    # -- observation ------------------------------------------------------------------------------------------
    def count(self, path: str) -> int:
        with self._lock:
            return self.counts[path]

    def requests(self, path: str) -> list[dict[str, str]]:
        """Headers (lower-cased names) of each request to ``path``, oldest first."""
        with self._lock:
            return [h for p, h in self.log if p == path]

    def _record(self, path: str, headers: dict[str, str]) -> Behaviour | None:
        with self._lock:
            self.counts[path] += 1
            self.log.append((path, headers))
            beh = self.routes.get(path)
            if isinstance(beh, list):
                return beh.pop(0) if len(beh) > 1 else (beh[0] if beh else None)
            return beh
