"""``wharf serve``: migrate, bootstrap, then run granian workers."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..config import Settings, load_settings

__all__ = ["serve", "prepare"]

from ..supervisor import SETTINGS_ENV, settings_json  # noqa: E402


def prepare(settings: Settings) -> str | None:
    """One-time work before workers start: schema upgrade, crash leftovers, first admin token, stale pages."""
    from ..core.services import Core
    from ..observability import setup_logging

    setup_logging(settings.log_level)
    core = Core(settings, migrate=True)
    try:
        core.blobs.cleanup_temp(older_than=0)
        secret = core.bootstrap()
        core.republish_stale()
        core.snapshots.schedule_retention()
        core.advisories.schedule()  # the first import from advisories_url, if set (each run queues the next)
        return secret
    finally:
        core.close()


def serve(
    data: Annotated[Optional[Path], typer.Option(help="data directory (env WHARF_DATA)")] = None,
    host: Annotated[Optional[str], typer.Option(help="address to listen on (env WHARF_HOST)")] = None,
    port: Annotated[Optional[int], typer.Option(help="port (env WHARF_PORT)")] = None,
    workers: Annotated[Optional[int], typer.Option(help="server processes (env WHARF_WORKERS)")] = None,
    database_url: Annotated[Optional[str], typer.Option(help="SQLAlchemy URL (env WHARF_DATABASE_URL)")] = None,
    config: Annotated[Optional[Path], typer.Option(help="TOML settings file (env WHARF_CONFIG)")] = None,
    tls_cert: Annotated[Optional[Path], typer.Option(help="serve HTTPS with this certificate (PEM)")] = None,
    tls_key: Annotated[Optional[Path], typer.Option(help="private key for --tls-cert (PEM)")] = None,
    access_log: Annotated[Optional[bool], typer.Option("--access-log/--no-access-log", help="JSON access log")] = None,
    max_upload_size: Annotated[Optional[int], typer.Option(help="default per-file upload limit in bytes")] = None,
) -> None:
    """Run the server (embedded defaults: SQLite and files under ./data)."""
    try:
        settings = load_settings(config, data=data, host=host, port=port, workers=workers, database_url=database_url,
                                 tls_cert=tls_cert, tls_key=tls_key, access_log=access_log,
                                 max_upload_size=max_upload_size)
    except (OSError, ValueError) as exc:  # unreadable/invalid TOML, unknown key, bad number in WHARF_*
        raise typer.BadParameter(str(exc), param_hint="settings (--config / WHARF_CONFIG / WHARF_*)")
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise typer.BadParameter("--tls-cert and --tls-key go together")
    settings.data.mkdir(parents=True, exist_ok=True)
    settings = settings.replace(data=settings.data.resolve())  # workers and download links need an absolute path
    secret = prepare(settings)
    if secret is not None:
        path = settings.data / "admin-token"
        if settings.bootstrap_token:  # the operator chose it: do not copy it into the log
            logging.getLogger("wharf.serve").info("admin token created from WHARF_BOOTSTRAP_TOKEN",
                                                  extra={"fields": {"file": str(path)}})
        else:
            typer.echo(f"\n  Wharf admin token (shown once; also written to {path}, mode 0600):\n\n    {secret}\n",
                       err=True)
    os.environ[SETTINGS_ENV] = settings_json(settings)
    if settings.workers > 1:
        prom = settings.data / "state" / "prometheus"
        shutil.rmtree(prom, ignore_errors=True)
        prom.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(prom)
    scheme = "https" if settings.tls_cert else "http"
    logging.getLogger("wharf.serve").info(
        f"Wharf listening on {scheme}://{settings.host}:{settings.port}/",
        extra={"fields": {"data": str(settings.data.resolve()), "database": settings.db_url.split("://")[0],
                          "workers": settings.workers}})
    sys.stdout.flush()
    sys.stderr.flush()
    # the supervisor starts afresh (without this process's imports) and forks the workers
    os.execv(sys.executable, [sys.executable, "-m", "wharf.supervisor"])
