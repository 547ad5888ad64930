"""Talking to upstream registries: one pooled client per proxy repository, with timeouts, auth, the system's
certificate store (plus an optional CA bundle), HTTP(S)_PROXY/NO_PROXY from the environment, and a circuit
breaker so a dead upstream fails fast instead of slowing every request."""

from __future__ import annotations

import functools
import os
import ssl
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from .errors import InvalidInput, WharfError

if TYPE_CHECKING:  # pragma: no cover
    import httpx

__all__ = ["UpstreamConfig", "Upstream", "UpstreamError", "parse_upstream_config"]


class UpstreamError(WharfError):
    """The upstream failed (unreachable, timed out, 5xx, bad data). 502, or 504 for time-outs."""

    status = 502
    reason = "upstream"

    def __init__(self, message: str, *, status: int = 502):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class UpstreamConfig:
    url: str
    auth: Mapping[str, str] | None = None  # {"type": "basic", "username", "password"} | {"type": "bearer", "token"}
    ca_bundle: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    index_ttl: float = 600.0  # seconds before cached index metadata is re-validated
    negative_ttl: float = 60.0  # seconds a "not found upstream" answer is remembered
    breaker_threshold: int = 3  # consecutive failures that open the circuit
    breaker_cooldown: float = 10.0  # seconds the circuit stays open


_DEFAULTS = UpstreamConfig(url="")


def parse_upstream_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the ``upstream`` part of a proxy repository's settings; returns the normalised dict."""
    url = raw.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise InvalidInput("a proxy repository needs an upstream URL (http:// or https://)")
    auth = raw.get("auth")
    parts = urlsplit(url)
    if "@" in parts.netloc:  # user:secret@ in the URL: keep the secret out of the URL (it is shown and logged)
        if auth is not None:
            raise InvalidInput("give upstream credentials either in the URL or as auth, not both")
        userinfo, _, hostport = parts.netloc.rpartition("@")
        user, _, password = userinfo.partition(":")
        auth = {"type": "basic", "username": unquote(user), "password": unquote(password)}
        url = urlunsplit(parts._replace(netloc=hostport))
    out: dict[str, Any] = {"url": url.rstrip("/") + "/"}
    if auth is not None:
        if not isinstance(auth, dict) or auth.get("type") not in ("basic", "bearer"):
            raise InvalidInput("upstream auth must be {'type': 'basic', 'username', 'password'} or {'type': 'bearer', 'token'}")
        need = ("username", "password") if auth["type"] == "basic" else ("token",)
        if not all(isinstance(auth.get(k), str) for k in need):
            raise InvalidInput(f"upstream {auth['type']} auth needs {', '.join(need)}")
        out["auth"] = {k: auth[k] for k in ("type", *need)}
    for key in ("ca_bundle",):
        if raw.get(key) is not None:
            if not isinstance(raw[key], str):
                raise InvalidInput(f"upstream {key} must be a path")
            out[key] = raw[key]
    for key in ("connect_timeout", "read_timeout", "index_ttl", "negative_ttl", "breaker_cooldown"):
        if raw.get(key) is not None:
            value = raw[key]
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise InvalidInput(f"upstream {key} must be a non-negative number of seconds")
            out[key] = float(value)
    if raw.get("breaker_threshold") is not None:
        if not isinstance(raw["breaker_threshold"], int) or raw["breaker_threshold"] < 1:
            raise InvalidInput("upstream breaker_threshold must be a positive integer")
        out["breaker_threshold"] = raw["breaker_threshold"]
    unknown = set(raw) - {"url", "auth", "ca_bundle", "connect_timeout", "read_timeout", "index_ttl", "negative_ttl",
                          "breaker_threshold", "breaker_cooldown"}
    if unknown:
        raise InvalidInput(f"unknown upstream setting(s): {', '.join(sorted(unknown))}")
    return out


def redact(config: Mapping[str, Any]) -> dict[str, Any]:
    """Settings as shown to people: upstream credentials never leave the server."""
    out = dict(config)
    up = out.get("upstream")
    if isinstance(up, dict) and "auth" in up:
        out["upstream"] = {**up, "auth": {"type": up["auth"].get("type"), "secret": "[hidden]"}}
    return out


@functools.lru_cache(maxsize=32)
def _tls_context(ca_bundle: str | None, _mtime_ns: int | None) -> ssl.SSLContext:
    """The system's certificate store (corporate CAs installed on the machine work), plus a repository's own CA
    bundle; one per process and bundle (loading the store costs ~20 ms of CPU: not once per repository)."""
    ctx = ssl.create_default_context()
    if ca_bundle:
        ctx.load_verify_locations(cafile=ca_bundle)
    return ctx


def _mtime(path: str | None) -> int | None:
    """Part of the context's cache key: a bundle replaced on disk is read again."""
    try:
        return os.stat(path).st_mtime_ns if path else None
    except OSError:
        return None


class Upstream:
    def __init__(self, config: Mapping[str, Any], *, user_agent: str = "wharf"):
        import httpx  # only processes that proxy something pay for the HTTP client

        cfg = UpstreamConfig(**{k: v for k, v in config.items()})
        self.config = cfg
        self.base = cfg.url
        ctx = _tls_context(cfg.ca_bundle, _mtime(cfg.ca_bundle))
        auth: httpx.Auth | None = None
        headers = {"User-Agent": user_agent}
        if cfg.auth and cfg.auth.get("type") == "basic":
            auth = httpx.BasicAuth(cfg.auth["username"], cfg.auth["password"])
        elif cfg.auth and cfg.auth.get("type") == "bearer":
            headers["Authorization"] = f"Bearer {cfg.auth['token']}"
        self.client = httpx.AsyncClient(
            verify=ctx, auth=auth, headers=headers, trust_env=True, follow_redirects=True,
            timeout=httpx.Timeout(cfg.read_timeout, connect=cfg.connect_timeout),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )
        self._failures = 0
        self._open_until = 0.0

    @property
    def host(self) -> str:
        return urlsplit(self.base).hostname or self.base

    def url(self, path: str) -> str:
        return urljoin(self.base, path)

    # -- circuit breaker ------------------------------------------------------------------------------------------
    def check_circuit(self) -> None:
        if self._open_until > time.monotonic():
            raise UpstreamError(f"upstream {self.base} is unavailable (it failed {self._failures} times in a row; "
                                f"retrying after {self.config.breaker_cooldown:.0f} s)")

    def succeeded(self) -> None:
        self._failures = 0
        self._open_until = 0.0

    def failed(self) -> None:
        self._failures += 1
        if self._failures >= self.config.breaker_threshold:
            self._open_until = time.monotonic() + self.config.breaker_cooldown

    def error(self, exc: Exception, url: str) -> UpstreamError:
        """Turn a transport failure into a clear 502/504 naming the upstream (and count it for the breaker)."""
        import httpx

        self.failed()
        if isinstance(exc, httpx.TimeoutException):
            return UpstreamError(f"upstream {self.base} timed out fetching {url}", status=504)
        if isinstance(exc, UpstreamError):
            return exc
        return UpstreamError(f"upstream {self.base} failed fetching {url}: {type(exc).__name__}: {exc}")

    # -- requests -------------------------------------------------------------------------------------------------
    async def get(self, url: str, *, headers: Mapping[str, str] | None = None, max_bytes: int = 64 * 1024 * 1024) -> httpx.Response:
        """A small document (an index page). 5xx and transport errors raise UpstreamError; 2xx/3xx/4xx return."""
        import httpx

        self.check_circuit()
        try:
            async with self.client.stream("GET", url, headers=headers) as resp:
                chunks = []
                size = 0
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size > max_bytes:
                        raise UpstreamError(f"upstream {self.base} sent more than {max_bytes} bytes for {url}")
                    chunks.append(chunk)
                resp._content = b"".join(chunks)  # noqa: SLF001 - keep the body on the response object
        except (httpx.HTTPError, UpstreamError) as exc:
            raise self.error(exc, url)
        if resp.status_code >= 500:
            self.failed()
            raise UpstreamError(f"upstream {self.base} answered {resp.status_code} for {url}")
        self.succeeded()
        return resp

    def stream(self, url: str, *, headers: Mapping[str, str] | None = None) -> Any:
        self.check_circuit()
        return self.client.stream("GET", url, headers=headers)

    async def aclose(self) -> None:
        await self.client.aclose()
