"""The long-running server process. ``wharf serve`` does the one-time preparation (migrations, first token,
republishing), then replaces itself with this module. With one worker (the default) the application runs in this
process under granian's embedded server; with ``--workers N`` this process is granian's supervisor, holding little
more than granian, and each worker it forks imports the application itself."""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["main", "app_factory", "settings_from_env", "settings_json", "SETTINGS_ENV"]

SETTINGS_ENV = "WHARF_SETTINGS_JSON"


def settings_json(settings) -> str:  # type: ignore[no-untyped-def]
    """The settings as the processes ``wharf serve`` starts read them (never the bootstrap token)."""
    import dataclasses

    values = {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(settings).items()}
    values["bootstrap_token"] = None
    return json.dumps(values)


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


def _granian_options(s: dict) -> dict:  # type: ignore[type-arg]
    from granian.constants import Interfaces

    from .observability import granian_log_config

    return dict(address=s["host"], port=int(s["port"]), interface=Interfaces.ASGI, log_access=False,
                log_enabled=True, log_dictconfig=granian_log_config(),
                ssl_cert=Path(s["tls_cert"]) if s.get("tls_cert") else None,
                ssl_key=Path(s["tls_key"]) if s.get("tls_key") else None, backlog=2048)


def main() -> None:
    s = json.loads(os.environ[SETTINGS_ENV])
    if int(s["workers"]) == 1:
        return _serve_embedded(s)
    from granian.constants import Loops
    from granian.server import Server

    Server("wharf.supervisor:app_factory", factory=True, loop=Loops.uvloop, workers=int(s["workers"]),
           **_granian_options(s)).serve()


def _serve_embedded(s: dict) -> None:  # type: ignore[type-arg]
    """One server process: granian serves from this process's own (uvloop) event loop instead of forking a worker
    from a supervisor that would hold a second interpreter (~28 MB) with nothing to supervise. Measured against
    the forked worker, interleaved: pages (c=1 and c=16), the 50 MB file and uploads within run-to-run spread,
    25 MB less memory."""
    serve_embedded(app_factory(), _granian_options(s))


def serve_embedded(app: object, options: dict) -> None:  # type: ignore[type-arg]
    """Serve an ASGI app with granian's embedded server on a uvloop loop in this process until SIGTERM/SIGINT
    (also how bench/ceiling.py runs its bare app, so the two are served alike)."""
    import asyncio
    import signal

    import uvloop
    from granian.server.embed import Server

    async def run() -> None:
        server = Server(app, **options)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, server.stop)
        await server.serve()

    uvloop.run(run())


if __name__ == "__main__":
    main()
