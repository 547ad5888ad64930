"""``wharf cp|mv|promote|resync|trail``: move packages between repositories by reference, show their trail,
re-verify proxied packages against their upstream."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from .client import JsonOpt, TokenOpt, UrlOpt, _check, _client, _emit, console

__all__ = ["register"]

AllOpt = Annotated[bool, typer.Option("--all", help="every package of the source repository (SRC is a repository)")]
QueryOpt = Annotated[Optional[str], typer.Option(
    "--query", "-q", help="packages matching e.g. 'name:acme-* version:1.*' (SRC is a repository)")]
SkipOpt = Annotated[bool, typer.Option("--skip-existing", help="leave out files that conflict with the destination")]


def split_target(target: str) -> tuple[str, str | None, str | None]:
    """``REPO[/PACKAGE[@VERSION]]`` -> (repo, package, version). Package names may hold '/' and start with '@'
    (npm scopes): the version is after the last '@' that is not the first character."""
    repo, _, rest = target.partition("/")
    if not repo:
        raise typer.BadParameter(f"expected REPO/PACKAGE[@VERSION], got {target!r}")
    if not rest:
        return repo, None, None
    at = rest.rfind("@")
    if at > 0:
        return repo, rest[:at], rest[at + 1:] or None
    return repo, rest, None


def _transfer(operation: str, source: str, destination: str | None, all_: bool, query: str | None,
              skip_existing: bool, url: str | None, token: str | None, as_json: bool) -> None:
    repo, package, version = split_target(source)
    bulk = all_ or query is not None
    if bulk and package:
        raise typer.BadParameter("with --all or --query, SRC is a repository name (no /PACKAGE)")
    if not bulk and not package:
        raise typer.BadParameter("name a package (SRC_REPO/PACKAGE[@VERSION]), or use --all or --query")
    body: dict[str, Any] = {"source": repo, "destination": destination, "operation": operation,
                            "skip_existing": skip_existing}
    with _client(url, token) as c:
        if not bulk:
            data = _check(c.post("/api/v1/promotions", json={**body, "package": package, "version": version}))
            if as_json:
                _emit(data, True)
                return
            _print_transfer(data)
            return
        plan = _check(c.post("/api/v1/promotions", json={**body, "all": all_, "query": query, "dry_run": True}))
        summary = _bulk(c, body, plan["items"])
    if as_json:
        _emit(summary, True)
    else:
        console.print(f"{operation}: {len(summary['copied'])} file(s) copied, {len(summary['identical'])} already "
                      f"there, {len(summary['skipped'])} skipped, {len(summary['failed'])} package version(s) failed "
                      f"({summary['items']} package version(s) from {repo} to {summary['destination'] or '-'})")
        for item in summary["failed"]:
            console.print(f"  [red]{item['name']} {item['version']}:[/red] {item['error']}", highlight=False)
    if summary["failed"]:
        raise typer.Exit(1)


def _bulk(c: Any, body: dict[str, Any], items: list[dict[str, Any]]) -> dict[str, Any]:
    """One request per package version, with a progress bar; failures are collected, not fatal."""
    summary: dict[str, Any] = {"operation": body["operation"], "source": body["source"],
                               "destination": body["destination"], "items": len(items), "copied": [],
                               "identical": [], "skipped": [], "failed": []}
    with Progress(SpinnerColumn(), TextColumn("[progress.description]{task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task(body["operation"], total=len(items))
        for item in items:
            progress.update(task, description=f"{item['name']} {item['version']}")
            resp = c.post("/api/v1/promotions", json={**body, "package": item["name"], "version": item["version"]})
            if resp.status_code >= 400:
                try:
                    error = resp.json().get("error") or resp.text
                except ValueError:
                    error = resp.text
                summary["failed"].append({"name": item["name"], "version": item["version"], "error": error,
                                          "status": resp.status_code})
            else:
                data = resp.json()
                summary["destination"] = data["destination"]
                for key, dest in (("added", "copied"), ("identical", "identical"), ("skipped", "skipped")):
                    summary[dest].extend(data[key])
            progress.advance(task)
        progress.update(task, description=body["operation"])
    return summary


def _print_transfer(data: dict[str, Any]) -> None:
    verb = {"copy": "copied", "move": "moved", "promote": "promoted"}[data["operation"]]
    console.print(f"{verb} {data['name']} from {data['source']} to {data['destination']}: "
                  f"{len(data['added'])} file(s) added, {len(data['identical'])} already there, "
                  f"{len(data['skipped'])} skipped" +
                  (f", {len(data['removed_from_source'])} removed from {data['source']}"
                   if data["operation"] == "move" else ""), highlight=False)
    for f in data["skipped"]:
        console.print(f"  skipped {f['key']}: {f['reason']}", highlight=False)
    for attr, value in data.get("state", {}).items():  # package state the format carried along (e.g. npm dist-tags)
        console.print(f"  {attr} in {data['destination']}: {json.dumps(value)}", highlight=False)


def cp(source: Annotated[str, typer.Argument(help="SRC_REPO/PACKAGE[@VERSION], or SRC_REPO with --all/--query")],
       destination: Annotated[str, typer.Argument(help="a hosted repository of the same format")],
       all_: AllOpt = False, query: QueryOpt = None, skip_existing: SkipOpt = False,
       url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Copy a package (or a version, or many) to another repository by reference: same files, same digests."""
    _transfer("copy", source, destination, all_, query, skip_existing, url, token, as_json)


def mv(source: Annotated[str, typer.Argument(help="SRC_REPO/PACKAGE[@VERSION], or SRC_REPO with --all/--query")],
       destination: Annotated[str, typer.Argument(help="a hosted repository of the same format")],
       all_: AllOpt = False, query: QueryOpt = None, skip_existing: SkipOpt = False,
       url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Move: copy, then remove from the source what the destination now holds (needs admin on the source)."""
    _transfer("move", source, destination, all_, query, skip_existing, url, token, as_json)


def promote(source: Annotated[str, typer.Argument(help="SRC_REPO/PACKAGE[@VERSION], or SRC_REPO with --all/--query")],
            destination: Annotated[Optional[str], typer.Argument(
                help="default: the source's next stage (its setting promote_to)")] = None,
            all_: AllOpt = False, query: QueryOpt = None, skip_existing: SkipOpt = False,
            url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Promote to the next stage: a copy along the stage path (event package.promoted)."""
    _transfer("promote", source, destination, all_, query, skip_existing, url, token, as_json)


def trail(target: Annotated[str, typer.Argument(help="REPO/PACKAGE")],
          url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """A package's trail across repositories: uploads, proxy fetches, copies, moves, promotions, removals."""
    repo, package, _version = split_target(target)
    if not package:
        raise typer.BadParameter("expected REPO/PACKAGE")
    with _client(url, token) as c:
        data = _check(c.get(f"/api/v1/repositories/{repo}/trail/{package}"))
    if as_json:
        _emit(data, True)
        return
    table = Table("when", "event", "version", "where", "who", "files")
    for e in data["events"]:
        where = e["repository"] if e["event"] not in ("copy", "move", "promote") else \
            f"{e.get('source') or '(hidden)'} -> {e['destination']}"
        table.add_row(str(e.get("at") or "")[:19], e["event"], e.get("version") or "", where, e.get("actor") or "",
                      "\n".join(f"{f['filename']} sha256:{f['sha256'][:16]}…" for f in e["files"]))
    Console().print(f"{data['format']} {data['name']}: live in {', '.join(data['live_in']) or 'no repository'}")
    Console().print(table)


def resync(target: Annotated[str, typer.Argument(help="PROXY_REPO/PACKAGE[@VERSION]")],
           max_attempts: Annotated[int, typer.Option(help="attempts before giving up")] = 5,
           backoff: Annotated[float, typer.Option(help="seconds before the first retry, doubled for each next one")] = 2.0,
           wait: Annotated[bool, typer.Option("--wait/--no-wait", help="follow the job until it ends")] = True,
           timeout: Annotated[float, typer.Option(help="seconds to follow the job")] = 600.0,
           url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Re-fetch a proxied package's cached files from the upstream and re-verify their digests (retried with
    backoff). Exit 1 when a file differs upstream or the job failed."""
    repo, package, version = split_target(target)
    if not package:
        raise typer.BadParameter("expected PROXY_REPO/PACKAGE[@VERSION]")
    with _client(url, token) as c:
        job = _check(c.post(f"/api/v1/repositories/{repo}/resync",
                            json={"package": package, "version": version, "max_attempts": max_attempts,
                                  "backoff": backoff}))
        if wait:
            deadline = time.monotonic() + timeout
            with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                          console=console, transient=True) as progress:
                task = progress.add_task(f"resync {repo}/{package}")
                while job["status"] not in ("ok", "mismatch", "failed") and time.monotonic() < deadline:
                    time.sleep(0.2)
                    job = _check(c.get(f"/api/v1/resyncs/{job['id']}"))
                    progress.update(task, description=f"resync {repo}/{package}: {job['status']}, attempt "
                                                      f"{job['attempts']}/{job['max_attempts']}"
                                                      + (f" ({job['error']})" if job.get("error") else ""))
    if as_json:
        _emit(job, True)
    else:
        _print_job(job)
    if job["status"] in ("mismatch", "failed"):
        raise typer.Exit(1)


def _print_job(job: dict[str, Any]) -> None:
    console.print(f"resync #{job['id']} of {job['repository']}/{job['name']}: {job['status']} after "
                  f"{job['attempts']} attempt(s)" + (f": {job['error']}" if job.get("error") else ""), highlight=False)
    files = (job.get("report") or {}).get("files") or []
    if files:
        table = Table("file", "status", "sha256")
        for f in files:
            detail = f["sha256"] if f["status"] != "mismatch" else f"stored {f['sha256']}\nupstream {f['upstream_sha256']}"
            table.add_row(f["filename"], f["status"], detail)
        Console(stderr=True).print(table)


def register(app: typer.Typer) -> None:
    app.command("cp")(cp)
    app.command("mv")(mv)
    app.command("promote")(promote)
    app.command("trail")(trail)
    app.command("resync")(resync)
