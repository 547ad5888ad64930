"""Structured JSON logs (never a secret) and Prometheus metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from bisect import bisect_left
from typing import Any, Callable

__all__ = ["JsonFormatter", "setup_logging", "granian_log_config", "Metrics", "AccessLog"]

_SECRET_KEYS = ("authorization", "password", "token", "secret")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if extra:
            doc.update({k: ("[redacted]" if any(s in k.lower() for s in _SECRET_KEYS) else v) for k, v in extra.items()})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("granian.access",):
        logging.getLogger(noisy).propagate = False
    # httpx logs every upstream request at INFO: the access log and the proxy's own warnings already tell the story
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def granian_log_config() -> dict[str, Any]:
    """A ``log_dictconfig`` for granian: its own lines (start, workers, shutdown) as JSON on stderr, like ours."""
    fmt = {"()": f"{__name__}.JsonFormatter"}
    return {
        "formatters": {"generic": fmt, "access": dict(fmt)},
        "handlers": {
            "console": {"formatter": "generic", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
            "access": {"formatter": "access", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
        },
    }


class AccessLog:
    """Access log lines in the same JSON shape as the application log, written in batches.

    The logging module costs ~16 us a request (record, lock, formatter); formatting here costs ~2.4 us (timeit). A
    ``write`` syscall per line cost another ~12 us a request on these machines' disks (a quarter of the index-page
    throughput), so, like nginx's ``access_log ... buffer= flush=``, lines are collected and written together once
    ``buffer_bytes`` are pending or ``flush_seconds`` after the first pending line (``flush_seconds=0``: a write per
    line). Lines pending when a worker is killed outright are lost; shutdown flushes. Only the fields below are
    written: never headers, so never credentials; query strings are dropped (they may carry secrets)."""

    def __init__(self, fd: int = 2, *, flush_seconds: float = 0.5, buffer_bytes: int = 64 * 1024) -> None:
        self._fd = fd
        self._sec = -1
        self._stamp = ""
        self._flush_s = flush_seconds
        self._limit = buffer_bytes
        self._pending: list[str] = []
        self._size = 0
        self._timer: Any = None

    def write(self, method: str, path: str, status: int, ms: float, remote: str | None, ua: str, route: str) -> None:
        now = time.time()
        sec = int(now)
        if sec != self._sec:
            self._sec = sec
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        line = (f'{{"ts":"{self._stamp}.{int((now - sec) * 1000):03d}Z","level":"info","logger":"wharf.access",'
                f'"msg":"request","method":"{method}","path":{json.dumps(path)},"status":{status},"ms":{ms:.3f},'
                f'"remote":{json.dumps(remote)},"ua":{json.dumps(ua)},"route":"{route}"}}\n')
        if self._flush_s <= 0:
            return self._emit(line)
        self._pending.append(line)
        self._size += len(line)
        if self._size >= self._limit:
            self.flush()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(self._flush_s, self.flush)
            except RuntimeError:  # no event loop (called from a thread): do not keep the line waiting
                self.flush()

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending:
            text, self._pending, self._size = "".join(self._pending), [], 0
            self._emit(text)

    def _emit(self, text: str) -> None:
        try:
            os.write(self._fd, text.encode("utf-8", "replace"))
        except OSError:  # pragma: no cover - a closed stderr must not break serving
            pass


LATENCY_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10)


class _RequestCollector:
    """Request counts and latencies of one serving process as plain integers and floats, exposed as the same
    ``wharf_http_requests_total`` counter and ``wharf_http_request_duration_seconds`` histogram when scraped.
    Requests are observed on the event loop's thread only (no lock); prometheus_client's own child objects cost
    a lock and three method calls per request on the hottest path."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, int], int] = {}
        self.buckets: dict[str, list[float]] = {}  # route -> [count per bucket..., +Inf count, sum]

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        n = self.counts.get(key)
        if n is None:
            if len(self.counts) >= 2000:  # a bounded label set, like the shared mode's children
                return
            n = 0
        self.counts[key] = n + 1
        b = self.buckets.get(route)
        if b is None:
            b = self.buckets[route] = [0] * (len(LATENCY_BUCKETS) + 2)
        b[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        b[-1] += seconds

    def collect(self):  # type: ignore[no-untyped-def]
        from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

        requests = CounterMetricFamily("wharf_http_requests", "HTTP requests", labels=["route", "method", "status"])
        for (route, method, status), n in list(self.counts.items()):
            requests.add_metric([route, method, str(status)], n)
        yield requests
        latency = HistogramMetricFamily("wharf_http_request_duration_seconds", "HTTP request latency",
                                        labels=["route"])
        for route, b in list(self.buckets.items()):
            b = list(b)
            cumulative, rows = 0, []
            for le, n in zip((*(str(float(x)) for x in LATENCY_BUCKETS), "+Inf"), b[:-1]):
                cumulative += n
                rows.append((le, cumulative))
            latency.add_metric([route], rows, b[-1])
        yield latency


class Metrics:
    """Request counters and latencies; aggregated across worker processes when PROMETHEUS_MULTIPROC_DIR is set."""

    # observe(route, method, status, seconds): count a request (bound per instance to the mode's own counters)
    observe: Callable[[str, str, int, float], None]

    def __init__(self) -> None:
        # imported here, not at the top: the supervisor reads this module for its log formatter only
        from prometheus_client import CollectorRegistry, Counter, Histogram

        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import values

            # prometheus_client picks its value class when first imported; `wharf serve` imports it before it sets
            # PROMETHEUS_MULTIPROC_DIR and forks the workers, which would then count in private memory only.
            if values.ValueClass is values.MutexValue:
                values.ValueClass = values.get_value_class()
        self.registry = CollectorRegistry()
        self.uploads_failed = Counter("wharf_upload_failed_total", "Rejected uploads", ["reason"], registry=self.registry)
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # several processes: prometheus_client's shared files
            self.requests = Counter("wharf_http_requests_total", "HTTP requests", ["route", "method", "status"],
                                    registry=self.registry)
            self.latency = Histogram("wharf_http_request_duration_seconds", "HTTP request latency", ["route"],
                                     registry=self.registry, buckets=LATENCY_BUCKETS)
            self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
            self.observe = self._observe_shared
        else:
            self._requests = _RequestCollector()
            self.registry.register(self._requests)  # type: ignore[arg-type]
            self.observe = self._requests.observe

    def _observe_shared(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count a request; label children are bound once per (route, method, status)."""
        key = (route, method, status)
        pair = self._children.get(key)
        if pair is None:
            pair = (self.requests.labels(route, method, str(status)), self.latency.labels(route))
            if len(self._children) < 2000:
                self._children[key] = pair
        pair[0].inc()
        pair[1].observe(seconds)

    def render(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest, multiprocess

        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            reg = CollectorRegistry()
            multiprocess.MultiProcessCollector(reg)
            return generate_latest(reg)
        return generate_latest(self.registry)
