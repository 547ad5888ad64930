"""The long-running server process. ``wharf serve`` does the one-time preparation (migrations, first token,
republishing), then replaces itself with this module, so the supervisor holds little more than granian and the
workers it forks start small; each worker imports the application itself."""

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


def main() -> None:
    from granian.constants import Interfaces, Loops
    from granian.server import Server

    from .observability import granian_log_config

    s = json.loads(os.environ[SETTINGS_ENV])
    Server(
        "wharf.supervisor:app_factory", factory=True, address=s["host"], port=int(s["port"]),
        interface=Interfaces.ASGI, loop=Loops.uvloop, workers=int(s["workers"]), log_access=False, log_enabled=True,
        log_dictconfig=granian_log_config(),
        ssl_cert=Path(s["tls_cert"]) if s.get("tls_cert") else None,
        ssl_key=Path(s["tls_key"]) if s.get("tls_key") else None, backlog=2048,
    ).serve()


if __name__ == "__main__":
    main()
