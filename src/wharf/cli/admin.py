"""Server-side maintenance commands that work on the data directory directly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..config import load_settings

__all__ = ["check", "worker"]


def check(
    data: Annotated[Optional[Path], typer.Option(help="data directory (env WHARF_DATA)")] = None,
    database_url: Annotated[Optional[str], typer.Option(help="SQLAlchemy URL (env WHARF_DATABASE_URL)")] = None,
    repair: Annotated[bool, typer.Option("--repair", help="fix what can be fixed")] = False,
    verify: Annotated[bool, typer.Option("--verify", help="re-hash every blob (slow)")] = False,
    grace: Annotated[float, typer.Option(help="--repair deletes orphan blobs older than this many seconds")] = 600.0,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Verify blobs against the database: missing files, orphan blobs, crash leftovers, stale published pages."""
    from ..core.check import run_check
    from ..core.services import Core

    try:
        settings = load_settings(None, data=data, database_url=database_url)
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="settings (WHARF_CONFIG / WHARF_*)")
    core = Core(settings, migrate=True)
    try:
        report = run_check(core, repair=repair, verify=verify, orphan_grace=grace)
    finally:
        core.close()
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            if isinstance(value, list):
                typer.echo(f"{key}: {len(value)}")
                for item in value[:50]:
                    typer.echo(f"  {item}")
            else:
                typer.echo(f"{key}: {value}")
    if report["problems"] and not repair:
        raise typer.Exit(1)


def worker(
    data: Annotated[Optional[Path], typer.Option(help="data directory (env WHARF_DATA)")] = None,
    database_url: Annotated[Optional[str], typer.Option(help="SQLAlchemy URL (env WHARF_DATABASE_URL)")] = None,
    once: Annotated[bool, typer.Option("--once", help="run what is due now, then exit")] = False,
) -> None:
    """Run background tasks (webhook deliveries, scans, resyncs, ...) without serving requests. Server processes
    run them too unless started with WHARF_WORKER=0."""
    import signal
    import threading

    from ..core.services import Core
    from ..tasks import Worker

    settings = load_settings(None, data=data, database_url=database_url)
    core = Core(settings, migrate=True)
    try:
        if once:
            typer.echo(f"ran {core.tasks.run_pending(core)} task(s)")
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        runner = Worker(core, poll=settings.worker_poll)
        runner.start()
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        runner.stop()
    finally:
        core.close()
