"""The long-running server process. ``wharf serve`` does the one-time preparation (migrations, first token,
republishing), then replaces itself with this module, which starts afresh without the command line's imports.

With one worker (the default) this process serves the application itself, with granian's embedded server on a
uvloop event loop: a supervisor process beside it would hold a second interpreter and granian (~28 MB) and add
nothing, since granian does not respawn a failed worker here either. With ``--workers N`` (N > 1) it is the
supervisor: it holds little more than granian and the workers it forks start small; each worker imports the
application itself."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "app_factory", "settings_from_env", "SETTINGS_ENV"]

SETTINGS_ENV = "WHARF_SETTINGS_JSON"


def settings_from_env():  # type: ignore[no-untyped-def]
    from .config import Settings, load_settings

    raw = os.environ.get(SETTINGS_ENV)
    if not raw:
        return load_settings()
    values = json.loads(raw)
    for key in ("data", "tls_cert", "tls_key"):
        if values.get(key):
            values[key] = Path(values[key])
    return Settings(**values)


def app_factory():  # type: ignore[no-untyped-def]
    """Entry point of each granian worker process."""
    from .app import create_app

    return create_app(settings_from_env())


def main() -> None:
    from granian.constants import Interfaces

    from .observability import granian_log_config

    s = json.loads(os.environ[SETTINGS_ENV])
    options = dict(
        address=s["host"], port=int(s["port"]), interface=Interfaces.ASGI, log_access=False, log_enabled=True,
        log_dictconfig=granian_log_config(), backlog=2048,
        ssl_cert=Path(s["tls_cert"]) if s.get("tls_cert") else None,
        ssl_key=Path(s["tls_key"]) if s.get("tls_key") else None,
    )
    if int(s["workers"]) == 1:
        import uvloop

        sys.exit(uvloop.run(_serve_here(options)))
    from granian.constants import Loops
    from granian.server import Server

    Server("wharf.supervisor:app_factory", factory=True, loop=Loops.uvloop, workers=int(s["workers"]),
           **options).serve()  # type: ignore[arg-type]


async def _serve_here(options: dict[str, Any]) -> int:
    """Serve the application in this process until SIGINT/SIGTERM; the exit status (1: the server stopped by
    itself, e.g. the application failed to start)."""
    from granian.server.embed import Server

    server = Server(app_factory, factory=True, **options)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, server.stop)
    await server.serve()
    return 1 if server.interrupt_children else 0


if __name__ == "__main__":
    main()
