"""``wharf webhook``, ``wharf entitlement`` and ``wharf access`` (repository IP allowlists)."""

from __future__ import annotations

import time
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from .client import JsonOpt, TokenOpt, UrlOpt, _check, _client, _emit, console

__all__ = ["register"]

webhook_app = typer.Typer(help="Webhooks: signed event deliveries to your URLs.", no_args_is_help=True)
entitlement_app = typer.Typer(help="Download-only tokens for customers.", no_args_is_help=True)
access_app = typer.Typer(help="Per-repository IP allowlists (CIDR) for read and write.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(webhook_app, name="webhook")
    app.add_typer(entitlement_app, name="entitlement")
    app.add_typer(access_app, name="access")


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


# -- webhooks ----------------------------------------------------------------------------------------------------
@webhook_app.command("create")
def webhook_create(
    hook_url: Annotated[str, typer.Option("--url", help="receiver URL (http/https)")],
    repo: Annotated[Optional[str], typer.Option("--repo", help="only this repository's events (default: all)")] = None,
    events: Annotated[Optional[str], typer.Option(help="comma-separated event types (default: all)")] = None,
    secret: Annotated[Optional[str], typer.Option(help="signing secret (default: generated)", envvar="WHARF_WEBHOOK_SECRET")] = None,
    max_attempts: Annotated[int, typer.Option(help="attempts before a delivery is marked failed")] = 5,
    timeout: Annotated[float, typer.Option(help="seconds per attempt")] = 10.0,
    description: Annotated[Optional[str], typer.Option(help="a note for people")] = None,
    server: Annotated[Optional[str], typer.Option("--server", help="Wharf server URL (env WHARF_URL)")] = None,
    token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Subscribe a URL to events. The secret is printed once: store it now."""
    body: dict[str, Any] = {"url": hook_url, "repository": repo, "events": _split(events), "max_attempts": max_attempts,
                            "timeout": timeout, "description": description}
    if secret:
        body["secret"] = secret
    with _client(server, token) as c:
        data = _check(c.post("/api/v1/webhooks", json=body))
    if as_json:
        _emit(data, True)
        return
    _emit(data, False, ["id", "url", "repository", "events"])
    console.print(f"secret (shown only now): [bold]{data['secret']}[/bold]")


@webhook_app.command("list")
def webhook_list(server: Annotated[Optional[str], typer.Option("--server", help="Wharf server URL (env WHARF_URL)")] = None,
                 token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """List webhooks (never their secrets)."""
    with _client(server, token) as c:
        data = _check(c.get("/api/v1/webhooks"))
    _emit(data, as_json, ["id", "url", "repository", "events", "active", "max_attempts"])


@webhook_app.command("delete")
def webhook_delete(hook_id: int, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Delete a webhook (its delivery log goes with it)."""
    with _client(url, token) as c:
        _check(c.delete(f"/api/v1/webhooks/{hook_id}"))
    console.print(f"deleted webhook {hook_id}")


@webhook_app.command("ping")
def webhook_ping(hook_id: int,
                 wait: Annotated[float, typer.Option(help="seconds to wait for the outcome (0: just queue it)")] = 10.0,
                 url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Send a test delivery (event 'ping') and show how the receiver answered."""
    with _client(url, token) as c:
        data = _check(c.post(f"/api/v1/webhooks/{hook_id}/ping"))
        deadline = time.monotonic() + wait
        with console.status(f"delivering {data['uuid']} ..."):
            while wait > 0 and data["status"] in ("pending", "retrying") and time.monotonic() < deadline:
                time.sleep(0.2)
                data = _check(c.get(f"/api/v1/webhooks/deliveries/{data['uuid']}"))
    if as_json:
        _emit(data, True)
    else:
        _print_deliveries([data])
    if data["status"] == "failed":
        raise typer.Exit(1)


@webhook_app.command("deliveries")
def webhook_deliveries(hook_id: int, limit: Annotated[int, typer.Option(help="newest N")] = 20,
                       url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """The delivery log: each delivery with every attempt's response code, duration and error."""
    with _client(url, token) as c:
        data = _check(c.get(f"/api/v1/webhooks/{hook_id}/deliveries", params={"limit": limit}))
    if as_json:
        _emit(data, True)
        return
    _print_deliveries(data)


def _print_deliveries(rows: list[dict[str, Any]]) -> None:
    table = Table("delivery", "event", "status", "attempt", "at", "code", "ms", "error")
    for d in rows:
        attempts = d["log"] or [{"attempt": "-", "at": d["created_at"], "response_code": None, "duration_ms": None,
                                 "error": None}]
        for i, a in enumerate(attempts):
            table.add_row(d["uuid"] if i == 0 else "", d["event"] if i == 0 else "", d["status"] if i == 0 else "",
                          str(a["attempt"]), str(a["at"])[:19], str(a["response_code"] or "-"),
                          "-" if a["duration_ms"] is None else f"{a['duration_ms']:.0f}", a["error"] or "")
    Console().print(table)


# -- entitlements ------------------------------------------------------------------------------------------------
@entitlement_app.command("create")
def entitlement_create(
    name: str,
    repo: Annotated[list[str], typer.Option("--repo", "-r", help="repository (repeatable; '*' for all)")],
    package: Annotated[Optional[list[str]], typer.Option("--package", "-p", help="package-name glob (repeatable)")] = None,
    expires_in_days: Annotated[Optional[float], typer.Option(help="days until it stops working")] = None,
    url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create a download-only token for a customer. The token is printed once."""
    body = {"name": name, "repositories": repo, "packages": package or [], "expires_in_days": expires_in_days}
    with _client(url, token) as c:
        data = _check(c.post("/api/v1/entitlements", json=body))
    if as_json:
        _emit(data, True)
        return
    _emit(data, False, ["id", "name", "repositories", "packages", "expires_at"])
    console.print(f"token (shown only now): [bold]{data['token']}[/bold]")


@entitlement_app.command("list")
def entitlement_list(url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Entitlements with their download counts."""
    with _client(url, token) as c:
        data = _check(c.get("/api/v1/entitlements"))
    _emit(data, as_json, ["id", "name", "prefix", "repositories", "packages", "downloads", "expires_at", "revoked_at"])


@entitlement_app.command("revoke")
def entitlement_revoke(ent_id: int, url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Revoke an entitlement: its token stops working at once."""
    with _client(url, token) as c:
        data = _check(c.delete(f"/api/v1/entitlements/{ent_id}"))
    _emit(data, as_json, ["id", "name", "revoked_at", "downloads"])


# -- access ------------------------------------------------------------------------------------------------------
@access_app.command("show")
def access_show(repository: str, url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """A repository's allow_read / allow_write lists (absent: any address)."""
    with _client(url, token) as c:
        cfg = _check(c.get(f"/api/v1/repositories/{repository}"))["config"]
    data = {"repository": repository, "allow_read": cfg.get("allow_read"), "allow_write": cfg.get("allow_write")}
    _emit(data, as_json, ["repository", "allow_read", "allow_write"])


@access_app.command("set")
def access_set(
    repository: str,
    read: Annotated[Optional[str], typer.Option("--read", help="comma-separated CIDRs allowed to read ('' : nobody)")] = None,
    write: Annotated[Optional[str], typer.Option("--write", help="comma-separated CIDRs allowed to write ('' : nobody)")] = None,
    clear_read: Annotated[bool, typer.Option("--clear-read", help="remove the read list (any address)")] = False,
    clear_write: Annotated[bool, typer.Option("--clear-write", help="remove the write list (any address)")] = False,
    url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Set or clear a repository's IP allowlists."""
    config: dict[str, Any] = {}
    if read is not None:
        config["allow_read"] = _split(read)
    if write is not None:
        config["allow_write"] = _split(write)
    if clear_read:
        config["allow_read"] = None
    if clear_write:
        config["allow_write"] = None
    if not config:
        raise typer.BadParameter("give --read and/or --write (or --clear-read/--clear-write)")
    with _client(url, token) as c:
        cfg = _check(c.patch(f"/api/v1/repositories/{repository}", json={"config": config}))["config"]
    data = {"repository": repository, "allow_read": cfg.get("allow_read"), "allow_write": cfg.get("allow_write")}
    _emit(data, as_json, ["repository", "allow_read", "allow_write"])
