"""The ``wharf`` command."""

from __future__ import annotations

import sys

import typer

from . import admin, advisories, client, hooks, policy, promotion, security, serve, snapshots

app = typer.Typer(help="Wharf: a self-hosted artifact repository.", no_args_is_help=True, add_completion=False)
app.command("serve")(serve.serve)
app.command("check")(admin.check)
app.command("worker")(admin.worker)
app.add_typer(client.repo_app, name="repo")
app.add_typer(client.token_app, name="token")
app.command("push")(client.push)
app.command("yank")(client.yank)
app.command("audit")(client.audit)
app.command("whoami")(client.whoami)
snapshots.register(app)
promotion.register(app)
policy.register(app)  # wharf quarantine ..., wharf policy ...
hooks.register(app)
app.add_typer(advisories.advisories_app, name="advisories")
app.add_typer(security.security_app, name="security")


def main() -> None:
    import httpx

    try:
        app()
    except httpx.TransportError as exc:  # unreachable server, TLS failure, timeout: one line, not a traceback
        try:
            where = f" {exc.request.url.scheme}://{exc.request.url.netloc.decode()}"
        except RuntimeError:
            where = ""
        sys.stderr.write(f"error: cannot talk to the server{where}: {exc}\n")
        raise SystemExit(1)
