"""Settings: defaults < TOML file < environment (WHARF_*) < command-line flags."""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Settings", "load_settings"]


@dataclass(frozen=True)
class Settings:
    data: Path = Path("./data")
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    database_url: str | None = None  # default: sqlite:///DATA/wharf.db
    storage_backend: str = "local"
    max_upload_size: int = 100 * 1024 * 1024
    public_url: str | None = None  # external base URL if behind a reverse proxy
    tls_cert: Path | None = None
    tls_key: Path | None = None
    access_log: bool = True
    access_log_flush: float = 0.5  # seconds a line may wait to be written with others (0: one write per line)
    log_level: str = "info"
    token_cache_ttl: float = 5.0
    worker: bool = True  # run background tasks in a thread of every server process (off: only `wharf worker`)
    worker_poll: float = 1.0  # seconds an idle worker waits before looking for due tasks again
    # CPU-heavy background tasks (scans) in a niced helper process the server starts while they are due (off: in the
    # server's worker thread); it exits after task_helper_idle seconds with nothing due
    task_helper: bool = True
    task_helper_idle: float = 30.0
    vetting: bool = True  # scan every new package version in background work
    vetting_popular_dir: Path | None = None  # extra popular-name lists for typosquatting: <dir>/<list>.txt
    bootstrap_token: str | None = field(default=None, repr=False)
    # CIDR ranges of reverse proxies whose X-Forwarded-For is believed (empty: the TCP peer is the client)
    trusted_proxies: tuple[str, ...] = ()
    entitlement_flush: float = 10.0  # seconds between writes of entitlement download counters
    webhook_backoff: float = 2.0  # seconds; a failed webhook delivery is retried after backoff * 2**attempt
    advisories_url: str | None = None  # OSV dump (zip or JSON) re-imported every advisories_interval seconds
    advisories_interval: float = 86400.0
    retention_interval: float = 3600.0  # seconds between scheduled retention runs (repositories' retention policies)
    # behind nginx: the URI prefix of an `internal` location aliasing DATA/pages/, e.g. /-/accel/ (under /-/, never a
    # repository's name; contrib/nginx/wharf.conf). Downloads asked for by a proxy that sends `X-Sendfile-Type:
    # X-Accel-Redirect` are answered with an X-Accel-Redirect there, and nginx sends the file
    accel_redirect: str | None = None

    def __post_init__(self) -> None:
        if self.retention_interval <= 0:
            raise ValueError(f"retention_interval must be a positive number of seconds, not {self.retention_interval}")
        if self.accel_redirect is not None and not re.fullmatch(r"/([A-Za-z0-9_-][A-Za-z0-9._~-]*/)+", self.accel_redirect):
            raise ValueError(f"accel_redirect must be a URI path that starts and ends with '/' (e.g. /-/accel/), "
                             f"not {self.accel_redirect!r}")

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data / 'wharf.db').resolve()}"

    def replace(self, **changes: object) -> "Settings":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


_ENV = {
    "data": ("WHARF_DATA", Path),
    "host": ("WHARF_HOST", str),
    "port": ("WHARF_PORT", int),
    "workers": ("WHARF_WORKERS", int),
    "database_url": ("WHARF_DATABASE_URL", str),
    "max_upload_size": ("WHARF_MAX_UPLOAD_SIZE", int),
    "public_url": ("WHARF_PUBLIC_URL", str),
    "tls_cert": ("WHARF_TLS_CERT", Path),
    "tls_key": ("WHARF_TLS_KEY", Path),
    "log_level": ("WHARF_LOG_LEVEL", str),
    "bootstrap_token": ("WHARF_BOOTSTRAP_TOKEN", str),
    "token_cache_ttl": ("WHARF_TOKEN_CACHE_TTL", float),
    "access_log_flush": ("WHARF_ACCESS_LOG_FLUSH", float),
    "trusted_proxies": ("WHARF_TRUSTED_PROXIES", str),
    "entitlement_flush": ("WHARF_ENTITLEMENT_FLUSH", float),
    "webhook_backoff": ("WHARF_WEBHOOK_BACKOFF", float),
    "worker_poll": ("WHARF_WORKER_POLL", float),
    "task_helper_idle": ("WHARF_TASK_HELPER_IDLE", float),
    "advisories_url": ("WHARF_ADVISORIES_URL", str),
    "advisories_interval": ("WHARF_ADVISORIES_INTERVAL", float),
    "retention_interval": ("WHARF_RETENTION_INTERVAL", float),
    "vetting_popular_dir": ("WHARF_VETTING_POPULAR_DIR", Path),
    "accel_redirect": ("WHARF_ACCEL_REDIRECT", str),
}
_BOOLS = ("access_log", "worker", "vetting", "task_helper")
_TYPES = {f.name: f.type for f in dataclasses.fields(Settings)}


def _coerce(name: str, value: object) -> object:
    if value is None:
        return None
    typ = _ENV[name][1] if name in _ENV else None
    if typ in (Path, int, float):
        return typ(str(value) if typ is Path else value)  # type: ignore[arg-type]
    if name == "trusted_proxies":
        items = value.split(",") if isinstance(value, str) else list(value)  # type: ignore[call-overload]
        return tuple(str(v).strip() for v in items if str(v).strip())
    if name in _BOOLS and isinstance(value, str):
        return value.lower() not in ("0", "false", "no", "off")
    return value


def load_settings(config_file: Path | None = None, environ: dict[str, str] | None = None, **flags: object) -> Settings:
    """Build settings from a TOML file (``[server]`` table or top level), the environment, then flags."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    path = config_file or (Path(env["WHARF_CONFIG"]) if env.get("WHARF_CONFIG") else None)
    if path is not None:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
        table = doc.get("server", doc)
        for key, value in table.items():
            key = key.replace("-", "_")
            if key not in _TYPES:
                raise ValueError(f"unknown setting {key!r} in {path}")
            values[key] = _coerce(key, value)
    for key, (var, _typ) in _ENV.items():
        if var in env and env[var] != "":
            values[key] = _coerce(key, env[var])
    for key in _BOOLS:
        if f"WHARF_{key.upper()}" in env:
            values[key] = _coerce(key, env[f"WHARF_{key.upper()}"])
    for key, value in flags.items():
        if value is not None:
            values[key] = _coerce(key, value)
    return Settings(**values)  # type: ignore[arg-type]
