"""``wharf snapshot create|list|delete``, ``wharf repo versions|diff|rollback|prune`` and ``wharf gc``."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from .client import JsonOpt, TokenOpt, UrlOpt, _check, _client, _emit, console, repo_app

__all__ = ["snapshot_app", "gc", "register"]

snapshot_app = typer.Typer(help="Named snapshots: read-only views of a repository version at /<repo>/~<name>/.",
                           no_args_is_help=True)


@snapshot_app.command("create")
def snapshot_create(
    repo: str,
    name: Annotated[str, typer.Option("--name", help="the snapshot's name (served at /<repo>/~<name>/)")],
    version: Annotated[Optional[int], typer.Option("--version", help="version to pin (default: current)")] = None,
    description: Annotated[Optional[str], typer.Option("--description")] = None,
    url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Pin a repository version under a name."""
    body: dict[str, Any] = {"name": name}
    if version is not None:
        body["version"] = version
    if description:
        body["description"] = description
    with _client(url, token) as c, console.status(f"creating snapshot {name} of {repo} ..."):
        data = _check(c.post(f"/api/v1/repositories/{repo}/snapshots", json=body))
    if as_json:
        _emit(data, True)
        return
    console.print(f"snapshot [bold]{data['name']}[/bold] of {repo} pins version {data['version']}: "
                  f"{str(c.base_url).rstrip('/')}{data['url']}")


@snapshot_app.command("list")
def snapshot_list(repo: str, url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """A repository's named snapshots."""
    with _client(url, token) as c:
        data = _check(c.get(f"/api/v1/repositories/{repo}/snapshots"))
    _emit(data, as_json, ["name", "version", "created_at", "created_by", "url"])


@snapshot_app.command("delete")
def snapshot_delete(repo: str, name: str, url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Delete a named snapshot (its version becomes subject to retention again)."""
    with _client(url, token) as c:
        data = _check(c.delete(f"/api/v1/repositories/{repo}/snapshots/{name}"))
    if as_json:
        _emit(data, True)
        return
    console.print(f"deleted snapshot {name} of {repo} (version {data['version']})")


@repo_app.command("versions")
def repo_versions(repo: str, limit: Annotated[int, typer.Option()] = 50, url: UrlOpt = None,
                  token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """A repository's versions, newest first (who, when, what, snapshots)."""
    with _client(url, token) as c:
        data = _check(c.get(f"/api/v1/repositories/{repo}/versions", params={"limit": limit}))
    for row in data:
        row["snapshots"] = ", ".join(row["snapshots"])
    _emit(data, as_json, ["number", "created_at", "actor", "summary", "snapshots"])


@repo_app.command("diff")
def repo_diff(repo: str, a: Annotated[str, typer.Argument(help="version number or snapshot name")],
              b: Annotated[str, typer.Argument(help="version number or snapshot name")],
              url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Files added and removed between two versions, with their sha256."""
    with _client(url, token) as c:
        data = _check(c.get(f"/api/v1/repositories/{repo}/diff", params={"from": a, "to": b}))
    if as_json:
        _emit(data, True)
        return
    table = Table("", "key", "version", "sha256", "size")
    for sign, rows in (("+", data["added"]), ("-", data["removed"])):
        for f in rows:
            table.add_row(sign, f["key"], f["version"], f["sha256"], str(f["size"]))
    Console().print(f"{repo}: version {data['from']} -> {data['to']}: {len(data['added'])} added, "
                    f"{len(data['removed'])} removed")
    Console().print(table)


@repo_app.command("rollback")
def repo_rollback(repo: str, to: Annotated[str, typer.Option("--to", help="version number or snapshot name")],
                  url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Make a new version whose contents equal an earlier one."""
    with _client(url, token) as c, console.status(f"rolling {repo} back to {to} ..."):
        data = _check(c.post(f"/api/v1/repositories/{repo}/rollback", json={"to": to}))
    if as_json:
        _emit(data, True)
        return
    console.print(f"{repo}: version {data['version']} has the contents of version {data['to']} "
                  f"({data['removed']} file(s) removed, {data['added']} restored)")


@repo_app.command("retention")
def repo_retention(
    repo: str,
    keep_last: Annotated[Optional[int], typer.Option("--keep-last", help="keep the last N versions")] = None,
    keep_days: Annotated[Optional[int], typer.Option("--keep-days", help="keep versions younger than D days")] = None,
    off: Annotated[bool, typer.Option("--off", help="remove the policy (keep every version)")] = False,
    url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Set a repository's retention policy (named snapshots are always kept) and show what it would prune now."""
    if off == (keep_last is not None or keep_days is not None):
        raise typer.BadParameter("give --keep-last and/or --keep-days, or --off")
    policy: Any = None if off else {k: v for k, v in (("keep_last", keep_last), ("keep_days", keep_days))
                                    if v is not None}
    with _client(url, token) as c:
        _check(c.patch(f"/api/v1/repositories/{repo}", json={"config": {"retention": policy}}))
        data = _check(c.post(f"/api/v1/repositories/{repo}/prune", params={"apply": False}))
    if as_json:
        _emit(data, True)
        return
    if off:
        console.print(f"{repo}: no retention policy; every version is kept")
        return
    console.print(f"{repo}: retention {policy}; pruning now would remove {len(data['pruned_versions'])} version(s) "
                  "(pruning runs in the background hourly, or `wharf repo prune --apply`)")


@repo_app.command("prune")
def repo_prune(repo: str, apply: Annotated[bool, typer.Option("--apply", help="really prune (default: dry run)")] = False,
               url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Apply the repository's retention policy (keep_last / keep_days; named snapshots are kept)."""
    with _client(url, token) as c:
        data = _check(c.post(f"/api/v1/repositories/{repo}/prune", params={"apply": apply}))
    _emit(data, True)


def gc(apply: Annotated[bool, typer.Option("--apply", help="delete (default: dry run, list only)")] = False,
       grace: Annotated[float, typer.Option("--grace", help="never delete a blob touched in the last SECONDS")] = 600.0,
       no_prune: Annotated[bool, typer.Option("--no-prune", help="do not apply retention policies first")] = False,
       url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Garbage-collect blobs that no kept repository version references (dry run by default)."""
    params = {"apply": apply, "grace": grace, "prune": not no_prune}
    with _client(url, token) as c:
        c.timeout = c.timeout.__class__(3600.0, connect=10.0)
        with console.status("collecting garbage ..." if apply else "looking for garbage (dry run) ..."):
            data = _check(c.post("/api/v1/gc", params=params))
    if as_json:
        _emit(data, True)
        return
    for p in data.get("pruned", []):
        console.print(f"{p['repository']}: {'pruned' if apply else 'would prune'} {len(p['pruned_versions'])} "
                      f"version(s), {p['rows_deleted']} row(s)")
    if apply:
        console.print(f"deleted {len(data['deleted'])} blob(s), {data['bytes_freed']} bytes; "
                      f"{len(data['kept_young_or_referenced'])} kept (in use or touched within {grace:g}s)")
    else:
        for sha in data["blobs"]:
            typer.echo(sha)
        console.print(f"{len(data['blobs'])} blob(s), {data['bytes']} bytes would be deleted "
                      f"({len(data['young'])} younger than {grace:g}s skipped); run with --apply to delete")


def register(app: typer.Typer) -> None:
    """``wharf snapshot ...`` and ``wharf gc`` (``wharf repo versions|diff|rollback|prune`` join ``repo`` on import)."""
    app.add_typer(snapshot_app, name="snapshot")
    app.command("gc")(gc)
