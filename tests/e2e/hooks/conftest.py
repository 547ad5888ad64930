"""One server per database backend for this folder (tests use unique names) that trusts 127.0.0.1 as a reverse proxy (so tests can play clients
from other addresses with X-Forwarded-For), writes entitlement counts often and retries webhooks quickly."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.support.server import WharfServer, backend_server

HOOKS_ENV = {
    "WHARF_TRUSTED_PROXIES": "127.0.0.1/32",
    "WHARF_ENTITLEMENT_FLUSH": "0.2",
    "WHARF_WEBHOOK_BACKOFF": "0.1",
}


@pytest.fixture(scope="package", params=["sqlite", "postgres"])
def hooks_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WharfServer]:
    with backend_server(request, tmp_path_factory, "hooks", env=HOOKS_ENV) as srv:
        yield srv


def from_addr(addr: str) -> dict[str, str]:
    """Headers of a request that reached Wharf through the (trusted) proxy on 127.0.0.1 from ``addr``."""
    return {"X-Forwarded-For": addr}


sqlite_only = pytest.mark.parametrize("hooks_server", ["sqlite"], indirect=True)
"""For tests whose subject does not depend on the database (the main flows run on both backends)."""
