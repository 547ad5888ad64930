"""``wharf quarantine ...`` and ``wharf policy ...``: talk to the server's API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from .client import JsonOpt, TokenOpt, UrlOpt, _check, _client, _emit

__all__ = ["register", "quarantine_app", "policy_app"]

quarantine_app = typer.Typer(help="Withhold packages from downloads and indexes (with a reason).", no_args_is_help=True)
policy_app = typer.Typer(help="Policies in CEL that decide on upload, proxy fetch, promotion and scans.",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(quarantine_app, name="quarantine")
    app.add_typer(policy_app, name="policy")


def _target(target: str, *, version_required: bool = False) -> tuple[str, str, str | None]:
    """REPO/PACKAGE[@VERSION]; npm scopes work (dev/@scope/name@1.0)."""
    repo, _, rest = target.partition("/")
    at = rest.rfind("@")
    package, version = (rest[:at], rest[at + 1:]) if at > 0 else (rest, None)
    if not (repo and package) or (version is not None and not version) or (version_required and not version):
        raise typer.BadParameter("expected REPO/PACKAGE[@VERSION]")
    return repo, package, version


# -- quarantine ------------------------------------------------------------------------------------------------------
@quarantine_app.command("add")
def quarantine_add(
    target: Annotated[str, typer.Argument(help="REPO/PACKAGE[@VERSION] (no version: every version)")],
    reason: Annotated[str, typer.Option("--reason", help="why (returned with every refused download)")],
    url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Quarantine a package version (or a whole package): 403 on download, hidden from indexes."""
    repo, package, version = _target(target)
    with _client(url, token) as c:
        data = _check(c.post("/api/v1/quarantine", json={"repository": repo, "package": package, "version": version,
                                                          "reason": reason}))
    if as_json:
        return _emit(data, True)
    what = f"{package} {version}" if version else f"{package} (every version)"
    Console().print(f"quarantined {what} in {repo}: {len(data['files'])} file(s) withheld")


@quarantine_app.command("remove")
def quarantine_remove(
    target: Annotated[str, typer.Argument(help="REPO/PACKAGE[@VERSION]")],
    reason: Annotated[Optional[str], typer.Option("--reason", help="why it is released (audited)")] = None,
    url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Release a quarantine: the files are listed and downloadable again."""
    repo, package, version = _target(target)
    with _client(url, token) as c:
        data = _check(c.post("/api/v1/quarantine/release", json={"repository": repo, "package": package,
                                                                  "version": version, "reason": reason}))
    if as_json:
        return _emit(data, True)
    Console().print(f"released {package}{' ' + version if version else ''} in {repo}")


@quarantine_app.command("list")
def quarantine_list(
    repository: Annotated[Optional[str], typer.Argument(help="a repository (default: every one; needs scope '*')")] = None,
    all_: Annotated[bool, typer.Option("--all", help="include released quarantines")] = False,
    url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Quarantined packages with their reason and files."""
    params: dict[str, Any] = {"all": all_}
    if repository:
        params["repository"] = repository
    with _client(url, token) as c:
        data = _check(c.get("/api/v1/quarantine", params=params))
    if as_json:
        return _emit(data, True)
    table = Table("repository", "package", "version", "reason", "files", "by", "since", "released")
    for q in data:
        table.add_row(q["repository"], q["package"], q["version"] or "(all)", q["reason"], str(len(q["files"])),
                      q["created_by"] or "", str(q["created_at"])[:19], str(q["released_at"] or "")[:19])
    Console().print(table)


# -- policies --------------------------------------------------------------------------------------------------------
def _spec(expr: str | None, action: str | None, events: str | None, repos: str | None, message: str | None,
          tags: str | None, enabled: bool | None, priority: int | None, description: str | None,
          file: Path | None) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(file.read_text()) if file else {}
    for key, value in (("expression", expr), ("action", action), ("message", message), ("enabled", enabled),
                       ("priority", priority), ("description", description)):
        if value is not None:
            spec[key] = value
    if events is not None:
        spec["events"] = [e.strip() for e in events.split(",") if e.strip()]
    if repos is not None:
        spec["repositories"] = None if repos.strip() in ("", "*") else [r.strip() for r in repos.split(",") if r.strip()]
    if tags is not None:
        spec["tags"] = [t.strip() for t in tags.split(",") if t.strip()]
    return spec


ExprOpt = Annotated[Optional[str], typer.Option("--expr", "-e", help="CEL expression (true: the action applies)")]
ActionOpt = Annotated[Optional[str], typer.Option("--action", "-a", help="deny | quarantine | tag | allow")]
EventsOpt = Annotated[Optional[str], typer.Option("--events", help="comma-separated: upload,proxy_fetch,promotion,scan")]
ReposOpt = Annotated[Optional[str], typer.Option("--repos", help="comma-separated repositories ('*': every one)")]
MessageOpt = Annotated[Optional[str], typer.Option("--message", "-m", help="shown to the client on deny; the "
                                                                             "quarantine reason")]
TagsOpt = Annotated[Optional[str], typer.Option("--tags", help="comma-separated tags (action tag)")]
PriorityOpt = Annotated[Optional[int], typer.Option("--priority", help="lower runs first (default 100)")]
DescOpt = Annotated[Optional[str], typer.Option("--description")]
FileOpt = Annotated[Optional[Path], typer.Option("--file", "-f", help="a JSON policy document (flags override it)")]


@policy_app.command("create")
def policy_create(
    name: Annotated[str, typer.Argument()],
    expr: ExprOpt = None, action: ActionOpt = None, events: EventsOpt = None, repos: ReposOpt = None,
    message: MessageOpt = None, tags: TagsOpt = None, priority: PriorityOpt = None, description: DescOpt = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="store it without enforcing it (dry-run first)")] = False,
    file: FileOpt = None, url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create a policy (version 1)."""
    spec = _spec(expr, action, events, repos, message, tags, False if disabled else None, priority, description, file)
    spec["name"] = name
    with _client(url, token) as c:
        data = _check(c.post("/api/v1/policies", json=spec))
    _show(data, as_json)


@policy_app.command("update")
def policy_update(
    name: Annotated[str, typer.Argument()],
    expr: ExprOpt = None, action: ActionOpt = None, events: EventsOpt = None, repos: ReposOpt = None,
    message: MessageOpt = None, tags: TagsOpt = None, priority: PriorityOpt = None, description: DescOpt = None,
    enable: Annotated[Optional[bool], typer.Option("--enable/--disable")] = None,
    file: FileOpt = None, url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Change a policy: makes a new version."""
    spec = _spec(expr, action, events, repos, message, tags, enable, priority, description, file)
    with _client(url, token) as c:
        data = _check(c.patch(f"/api/v1/policies/{name}", json=spec))
    _show(data, as_json)


@policy_app.command("list")
def policy_list(url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Policies (current versions)."""
    with _client(url, token) as c:
        data = _check(c.get("/api/v1/policies"))
    if as_json:
        return _emit(data, True)
    table = Table("name", "version", "enabled", "events", "repositories", "action", "expression")
    for p in data:
        table.add_row(p["name"], str(p["current_version"]), "yes" if p["enabled"] else "no", ",".join(p["events"]),
                      ",".join(p["repositories"] or ["*"]), p["action"], p["expression"])
    Console().print(table)


@policy_app.command("show")
def policy_show(
    name: Annotated[str, typer.Argument()],
    version: Annotated[Optional[int], typer.Option("--version", help="a past version")] = None,
    history: Annotated[bool, typer.Option("--history", help="every version")] = False,
    url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """One policy (current or a past version)."""
    params: dict[str, Any] = {"history": history}
    if version:
        params["version"] = version
    with _client(url, token) as c:
        data = _check(c.get(f"/api/v1/policies/{name}", params=params))
    _show(data, as_json or history)


@policy_app.command("delete")
def policy_delete(name: Annotated[str, typer.Argument()], url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Delete a policy (its versions and decisions stay on record)."""
    with _client(url, token) as c:
        _check(c.delete(f"/api/v1/policies/{name}"))
    Console().print(f"deleted policy {name}")


@policy_app.command("dry-run")
def policy_dry_run(
    name: Annotated[str, typer.Argument()],
    repository: Annotated[str, typer.Option("--repo", "-r", help="the repository to evaluate over")],
    event: Annotated[Optional[str], typer.Option("--event", help="default: the policy's first event")] = None,
    version: Annotated[Optional[int], typer.Option("--version", help="a past policy version")] = None,
    url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """What a policy would do to every package version of a repository (nothing is done)."""
    with _client(url, token) as c:
        with Console(stderr=True).status(f"evaluating {name} over {repository} ..."):
            data = _check(c.post(f"/api/v1/policies/{name}/dry-run",
                                 json={"repository": repository, "event": event, "version": version}))
    if as_json:
        return _emit(data, True)
    table = Table("package", "version", "would", "message", "error")
    for r in data["results"]:
        if r["matched"] or r["error"]:
            table.add_row(r["package"], r["version"], r["would"], r["message"] or "", r["error"] or "")
    console = Console()
    console.print(table)
    console.print(f"{data['policy']} v{data['policy_version']} on {data['repository']} ({data['event']}): "
                  f"{data['evaluated']} package version(s) evaluated, {data['summary']}")


@policy_app.command("decisions")
def policy_decisions(
    target: Annotated[str, typer.Argument(help="REPO[/PACKAGE[@VERSION]]")],
    limit: Annotated[int, typer.Option()] = 50,
    url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """The decision log of a repository or package (newest first)."""
    repo, _, rest = target.partition("/")
    params: dict[str, Any] = {"repository": repo, "limit": limit}
    if rest:
        _r, package, version = _target(target)
        params["package"] = package
        if version:
            params["version"] = version
    with _client(url, token) as c:
        data = _check(c.get("/api/v1/policy-decisions", params=params))
    if as_json:
        return _emit(data, True)
    table = Table("at", "policy", "v", "event", "package", "version", "result", "message", "inputs")
    for d in data:
        table.add_row(str(d["at"])[:19], d["policy"], str(d["policy_version"]), d["event"], d["package"],
                      d["version"] or "", d["result"], d["message"] or "", d["inputs_digest"][:12])
    Console().print(table)


def _show(data: Any, as_json: bool) -> None:
    if as_json:
        return _emit(data, True)
    console = Console()
    console.print(f"[bold]{data['name']}[/bold] version {data['version']} (current {data['current_version']}), "
                  f"{'enabled' if data['enabled'] else 'disabled'}")
    console.print(f"  on {', '.join(data['events'])} in {', '.join(data['repositories'] or ['every repository'])}")
    console.print(f"  when {data['expression']}")
    extra = f": {data['message']}" if data.get("message") else ""
    extra += f" {data['tags']}" if data.get("tags") else ""
    console.print(f"  then {data['action']}{extra}")
