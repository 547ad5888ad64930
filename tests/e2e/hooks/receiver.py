"""A webhook receiver for tests: a real HTTP server on 127.0.0.1 that records what it gets and answers per path:
``/ok`` 200, ``/flaky`` 500 for the first ``fail_first`` attempts of each delivery then 200, ``/slow`` holds the answer until
``release`` is set (or its own limit)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.net import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    fail_first: int = 2
    slow_limit: float = 60.0
    requests: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    slow_started: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    delivery = self.headers.get("X-Wharf-Delivery")
                    flaky_seen = sum(1 for r in receiver.requests
                                     if r.path == "/flaky" and r.headers.get("x-wharf-delivery") == delivery)
                if self.path == "/slow":
                    receiver.slow_started.set()
                    receiver.release.wait(receiver.slow_limit)
                status = 500 if self.path == "/flaky" and flaky_seen <= receiver.fail_first else 200
                payload = b"thanks" if status == 200 else b"receiver is having a bad day " + b"x" * 4000
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the sender gave up (time-out): fine
                    pass

        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def close(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
