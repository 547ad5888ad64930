"""Request metrics of a single serving process: plain counters exposed as the prometheus_client objects would."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from wharf.observability import LATENCY_BUCKETS, Metrics

# on and around the bucket bounds (a bound is inclusive: `le`), below the first, above the last
OBSERVED = [("python", "GET", 200, s) for s in (0.0, 0.0004, 0.001, 0.0010001, 0.0025, 0.3, 1.0, 2.5, 9.99, 10.0, 11.0)]
OBSERVED += [("api", "POST", 201, 0.02), ("api", "POST", 400, 0.004), ("python", "HEAD", 304, 0.0001)]


def _samples(text: bytes) -> dict[str, float]:
    out = {}
    for line in text.decode().splitlines():
        m = re.match(r"^(wharf_http_\w+?)(\{.*\})? ([0-9.e+-]+)$", line)
        if m and not m.group(1).endswith("_created"):
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def test_requests_and_latency_match_what_prometheus_client_would_expose(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics = Metrics()
    reference = CollectorRegistry()
    requests = Counter("wharf_http_requests_total", "HTTP requests", ["route", "method", "status"], registry=reference)
    latency = Histogram("wharf_http_request_duration_seconds", "HTTP request latency", ["route"], registry=reference,
                        buckets=LATENCY_BUCKETS)
    for route, method, status, seconds in OBSERVED:
        metrics.observe(route, method, status, seconds)
        requests.labels(route, method, str(status)).inc()
        latency.labels(route).observe(seconds)

    ours, theirs = _samples(metrics.render()), _samples(generate_latest(reference))
    assert ours.keys() == theirs.keys()
    for key, value in theirs.items():
        assert abs(ours[key] - value) < 1e-9, key
    assert ours['wharf_http_requests_total{method="GET",route="python",status="200"}'] == 11
    assert ours['wharf_http_request_duration_seconds_bucket{le="0.001",route="python"}'] == 4  # 0, .0004, .001, HEAD
    text = metrics.render().decode()
    assert "# TYPE wharf_http_requests_total counter" in text
    assert "# TYPE wharf_http_request_duration_seconds histogram" in text


def test_the_label_set_is_bounded(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics = Metrics()
    for status in range(3000):  # a client cannot grow the label set without bound
        metrics.observe("python", "GET", status, 0.001)
    assert len(_samples(metrics.render())) < 2000 + 50
