"""Commands that talk to a running server over its API: repo, token, push, yank, audit, whoami.

Server URL and token come from ``--url``/``--token``, then ``WHARF_URL``/``WHARF_TOKEN``, then the config file
(``$WHARF_CLIENT_CONFIG`` or ``~/.config/wharf/client.toml`` with ``url`` and ``token``)."""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import tomllib
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

__all__ = ["repo_app", "token_app", "push", "yank", "audit", "whoami"]

repo_app = typer.Typer(help="Manage repositories.", no_args_is_help=True)
token_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
console = Console(stderr=True)

UrlOpt = Annotated[Optional[str], typer.Option("--url", help="server URL (env WHARF_URL)")]
TokenOpt = Annotated[Optional[str], typer.Option("--token", help="API token (env WHARF_TOKEN)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _config_file() -> dict[str, Any]:
    path = Path(os.environ.get("WHARF_CLIENT_CONFIG") or Path.home() / ".config" / "wharf" / "client.toml")
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}


def _client(url: str | None, token: str | None) -> httpx.Client:
    cfg = _config_file()
    base = url or os.environ.get("WHARF_URL") or cfg.get("url") or "http://127.0.0.1:8080"
    secret = token or os.environ.get("WHARF_TOKEN") or cfg.get("token")
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    ca_bundle = os.environ.get("WHARF_CA_BUNDLE") or cfg.get("ca_bundle")
    verify: Any = ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True
    return httpx.Client(base_url=base.rstrip("/"), headers=headers, timeout=httpx.Timeout(60.0, connect=10.0), verify=verify)


def _check(resp: httpx.Response) -> Any:
    if resp.status_code >= 400:
        try:
            message = resp.json().get("error") or resp.text
        except ValueError:
            message = resp.text
        console.print(f"[red]error {resp.status_code}:[/red] {message}")
        raise typer.Exit(1)
    if resp.status_code == 204 or not resp.content:
        return None
    try:
        return resp.json()
    except ValueError:
        return resp.text


def _emit(data: Any, as_json: bool, columns: list[str] | None = None) -> None:
    if as_json or columns is None:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    rows = data if isinstance(data, list) else [data]
    table = Table(*columns)
    for row in rows:
        table.add_row(*[str(row.get(c, "")) for c in columns])
    Console().print(table)


# -- repositories ------------------------------------------------------------------------------------------------
@repo_app.command("create")
def repo_create(
    name: str,
    format: Annotated[str, typer.Option("--format", "-f", help="python, npm, maven, cargo, generic")] = "python",
    kind: Annotated[str, typer.Option(help="hosted, proxy or group")] = "hosted",
    private: Annotated[bool, typer.Option("--private/--public", help="anonymous read allowed?")] = False,
    allow_overwrite: Annotated[bool, typer.Option(help="allow replacing files (not recommended)")] = False,
    max_upload_size: Annotated[Optional[int], typer.Option(help="per-file limit in bytes")] = None,
    upstream: Annotated[Optional[str], typer.Option(help="proxy: upstream URL, or a preset such as 'pypi'")] = None,
    upstream_user: Annotated[Optional[str], typer.Option(help="proxy: basic-auth user for the upstream")] = None,
    upstream_password: Annotated[Optional[str], typer.Option(help="proxy: basic-auth password (env WHARF_UPSTREAM_PASSWORD)", envvar="WHARF_UPSTREAM_PASSWORD")] = None,
    upstream_token: Annotated[Optional[str], typer.Option(help="proxy: bearer token for the upstream", envvar="WHARF_UPSTREAM_TOKEN")] = None,
    upstream_ca: Annotated[Optional[str], typer.Option(help="proxy: extra CA bundle (PEM) for the upstream's TLS")] = None,
    index_ttl: Annotated[Optional[float], typer.Option(help="proxy: seconds before index pages are re-validated")] = None,
    members: Annotated[Optional[str], typer.Option(help="group: comma-separated ordered members")] = None,
    default_member: Annotated[Optional[str], typer.Option(help="group: hosted member that takes uploads")] = None,
    reserved: Annotated[Optional[str], typer.Option(help="group: comma-separated name patterns never taken from proxies")] = None,
    guard: Annotated[bool, typer.Option("--guard/--no-guard", help="group: dependency-confusion guard")] = True,
    url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create a repository (hosted, proxy of an upstream, or group of members)."""
    config: dict[str, Any] = {}
    if kind == "proxy":
        if not upstream:
            raise typer.BadParameter("a proxy needs --upstream URL (or a preset such as 'pypi')")
        up: dict[str, Any] = {"url": upstream}
        if upstream_user:
            up["auth"] = {"type": "basic", "username": upstream_user, "password": upstream_password or ""}
        elif upstream_token:
            up["auth"] = {"type": "bearer", "token": upstream_token}
        if upstream_ca:
            up["ca_bundle"] = upstream_ca
        if index_ttl is not None:
            up["index_ttl"] = index_ttl
        config["upstream"] = up
    if kind == "group":
        if not members:
            raise typer.BadParameter("a group needs --members a,b,...")
        config["members"] = [m.strip() for m in members.split(",") if m.strip()]
        config["guard"] = guard
        if default_member:
            config["default_member"] = default_member
        if reserved:
            config["reserved"] = [p.strip() for p in reserved.split(",") if p.strip()]
    if allow_overwrite:
        config["allow_overwrite"] = True
    if max_upload_size:
        config["max_upload_size"] = max_upload_size
    with _client(url, token) as c:
        data = _check(c.post("/api/v1/repositories", json={"name": name, "format": format, "kind": kind,
                                                          "private": private, "config": config}))
    _emit(data, as_json, ["name", "format", "kind", "private", "url"])


@repo_app.command("list")
def repo_list(url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """List repositories you can read."""
    with _client(url, token) as c:
        data = _check(c.get("/api/v1/repositories"))
    _emit(data, as_json, ["name", "format", "kind", "private", "version"])


@repo_app.command("explain")
def repo_explain(group: str, package: str, url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """For a group: where each version of PACKAGE comes from, and what is hidden and why."""
    with _client(url, token) as c:
        data = _check(c.get(f"/api/v1/repositories/{group}/explain/{package}"))
    if as_json:
        _emit(data, True)
        return
    table = Table("member", "kind", "used", "versions", "reason")
    for m in data["members"]:
        versions = ", ".join(m["versions"]) or ", ".join(m.get("hidden_versions_cached", [])) and \
            "(hidden) " + ", ".join(m.get("hidden_versions_cached", []))
        table.add_row(m["member"], m["kind"], "yes" if m["used"] else "no", versions or "-", m["reason"] or "")
    Console().print(f"{data['name']} through {data['group']} (guard {'on' if data['guard'] else 'off'})")
    Console().print(table)


@repo_app.command("delete")
def repo_delete(name: str, yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
                url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Delete a repository and everything in it."""
    if not yes:
        typer.confirm(f"Delete repository {name!r} and all its content?", abort=True)
    with _client(url, token) as c:
        _check(c.delete(f"/api/v1/repositories/{name}"))
    console.print(f"deleted {name}")


@repo_app.command("prefetch", help=(
    "Warm a (proxy) repository's cache: download the newest matching version of each requirement through it.\n\n"
    "All files (wheels and sdists) of the newest non-yanked version matching each requirement are downloaded, "
    "verified and dropped. Dependencies are not resolved: list them too (a pinned requirements file does)."))
def repo_prefetch(
    repository: str,
    packages: Annotated[Optional[list[str]], typer.Argument(help="requirements such as 'requests>=2' (besides -r)")] = None,
    requirement: Annotated[Optional[list[Path]], typer.Option(
        "--requirement", "-r", exists=True, dir_okay=False, help="a requirements file (repeatable)")] = None,
    url: UrlOpt = None, token: TokenOpt = None,
) -> None:
    """Warm a (proxy) repository's cache: download the newest matching version of each requirement through it."""
    from packaging.requirements import InvalidRequirement, Requirement

    lines: list[tuple[str, str]] = [(line, "command line") for line in packages or []]
    for path in requirement or []:
        lines.extend(_requirement_lines(path, set()))
    if not lines:
        raise typer.BadParameter("nothing to prefetch: give requirements and/or -r requirements.txt")
    failures: list[str] = []
    chosen: dict[str, tuple[str, str | None, int | None]] = {}  # url -> (filename, sha256, size)
    fetched = total = 0
    with _client(url, token) as c:
        for line, origin in lines:
            try:
                req = Requirement(line)
            except InvalidRequirement as exc:
                failures.append(f"{line} ({origin}): not a requirement Wharf can prefetch: {str(exc).splitlines()[0]}")
                continue
            if req.url:
                console.print(f"skipped {line}: a direct URL, not from the repository")
                continue
            if req.marker is not None and not req.marker.evaluate():
                console.print(f"skipped {line}: its markers do not apply here")
                continue
            try:
                for file_url, filename, sha, size in _prefetch_choose(c, repository, req):
                    chosen.setdefault(file_url, (filename, sha, size))
            except _PrefetchError as exc:
                failures.append(f"{req}: {exc}")
        sizes = [size for _f, _s, size in chosen.values()]
        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                      console=console) as progress:
            task = progress.add_task("prefetch", total=sum(sizes) if None not in sizes else None)  # type: ignore[arg-type]
            for file_url, (filename, sha, _size) in chosen.items():
                progress.update(task, description=filename)
                try:
                    total += _prefetch_download(c, file_url, sha, lambda n: progress.advance(task, n))
                    fetched += 1
                except _PrefetchError as exc:
                    failures.append(f"{filename}: {exc}")
            progress.update(task, description="prefetch")
    console.print(f"fetched {fetched} file{'s' if fetched != 1 else ''}, {total} bytes through {repository}")
    if failures:
        console.print(f"[red]{len(failures)} failed:[/red]")
        for item in failures:
            console.print(f"  {item}", markup=False, highlight=False)
        raise typer.Exit(1)


class _PrefetchError(Exception):
    pass


def _requirement_lines(path: Path, seen: set[Path]) -> list[tuple[str, str]]:
    """Requirement strings of a pip requirements file: comments, blank lines and options are left out (nested
    ``-r`` files are read), line continuations are joined, per-requirement options (``--hash``) are dropped."""
    import re

    path = path.resolve()
    if path in seen:
        return []
    seen.add(path)
    out: list[tuple[str, str]] = []
    joined: list[tuple[int, str]] = []
    buf, start = "", 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not buf:
            start = number
        if raw.endswith("\\"):
            buf += raw[:-1] + " "
            continue
        joined.append((start, buf + raw))
        buf = ""
    if buf:
        joined.append((start, buf))
    for number, line in joined:
        line = re.sub(r"(^|\s+)#.*$", "", line).strip()
        if not line:
            continue
        if line.startswith("-"):
            m = re.match(r"^(-r|--requirement)(?:\s+|=)(\S+)", line)
            if m:
                out.extend(_requirement_lines(path.parent / m.group(2), seen))
            continue  # other options (-c, -e, --index-url, ...) name no package to fetch
        out.append((re.split(r"\s+--?[A-Za-z]", line, maxsplit=1)[0].strip(), f"{path.name}:{number}"))
    return out


def _prefetch_choose(c: httpx.Client, repository: str, req: Any) -> list[tuple[str, str, str | None, int | None]]:
    """(absolute URL, filename, sha256, size) of each file of the newest version of ``req`` the repository offers."""
    from urllib.parse import urljoin

    from packaging.utils import (InvalidSdistFilename, InvalidWheelFilename, canonicalize_name, parse_sdist_filename,
                                 parse_wheel_filename)
    from packaging.version import Version

    name = canonicalize_name(req.name)
    try:
        resp = c.get(f"/{repository}/simple/{name}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"},
                     follow_redirects=True)
    except httpx.HTTPError as exc:
        raise _PrefetchError(f"could not read its index page: {type(exc).__name__}: {exc}")
    if resp.status_code >= 400:
        raise _PrefetchError(_error_text(resp))
    try:
        files = resp.json()["files"]
    except (ValueError, KeyError, TypeError):
        raise _PrefetchError("the index page is not PEP 691 JSON")
    by_version: dict[Version, list[dict[str, Any]]] = {}
    for f in files:
        filename = f.get("filename", "")
        try:
            version = (parse_wheel_filename(filename)[1] if filename.endswith(".whl")
                       else parse_sdist_filename(filename)[1])
        except (InvalidWheelFilename, InvalidSdistFilename):
            continue  # eggs, installers, ...: pip does not install them from an index either
        by_version.setdefault(version, []).append(f)
    live = {v: [f for f in fs if not f.get("yanked")] for v, fs in by_version.items()}
    matching = list(req.specifier.filter([v for v, fs in live.items() if fs]))
    if matching:
        picked = live[max(matching)]
    else:
        # PEP 592: an exact pin may select a yanked release (pip installs it, with a warning)
        exact = any(s.operator in ("==", "===") and "*" not in s.version for s in req.specifier)
        pinned = list(req.specifier.filter(list(by_version), prereleases=True)) if exact else []
        if not pinned:
            offered = ", ".join(str(v) for v in sorted(live) if live[v]) or "none"
            raise _PrefetchError(f"no version matches '{req.specifier or 'any'}' (versions offered: {offered})")
        picked = by_version[max(pinned)]
    page_url = str(resp.url)
    out = []
    for f in picked:
        size = f.get("size")
        out.append((urljoin(page_url, f["url"]).split("#", 1)[0], f["filename"], (f.get("hashes") or {}).get("sha256"),
                    size if isinstance(size, int) else None))
    return out


def _error_text(resp: httpx.Response) -> str:
    try:
        message = resp.json().get("error") or resp.text
    except ValueError:
        message = resp.text
    return f"{resp.status_code} {message}".strip()


def _prefetch_download(c: httpx.Client, file_url: str, sha: str | None, advance: Any) -> int:
    """Download one file through the repository (the bytes are verified, then dropped); returns its size."""
    request = c.build_request("GET", file_url)
    if (request.url.scheme, request.url.host, request.url.port) != (c.base_url.scheme, c.base_url.host, c.base_url.port):
        request.headers.pop("Authorization", None)  # the token is for this server only
    digest = hashlib.sha256()
    size = 0
    try:
        resp = c.send(request, stream=True, follow_redirects=True)
        try:
            if resp.status_code >= 400:
                resp.read()
                raise _PrefetchError(_error_text(resp))
            for chunk in resp.iter_bytes():
                digest.update(chunk)
                size += len(chunk)
                advance(len(chunk))
        finally:
            resp.close()
    except httpx.HTTPError as exc:
        raise _PrefetchError(f"download failed: {type(exc).__name__}: {exc}")
    if sha and digest.hexdigest() != sha.lower():
        raise _PrefetchError(f"sha256 {digest.hexdigest()} differs from the index's {sha}")
    return size


# -- tokens ------------------------------------------------------------------------------------------------------
@token_app.command("create")
def token_create(
    name: str,
    scope: Annotated[list[str], typer.Option("--scope", "-s", help="REPO:ACTION, e.g. dev:write or '*:admin' (repeatable)")],
    expires_in_days: Annotated[Optional[float], typer.Option(help="expiry in days")] = None,
    url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create a token; its secret is printed once."""
    scopes: dict[str, list[str]] = {}
    for item in scope:
        repo, sep, action = item.rpartition(":")
        if not sep or not repo:
            raise typer.BadParameter(f"scope {item!r} is not REPO:ACTION")
        scopes.setdefault(repo, []).append(action)
    body = {"name": name, "scopes": [{"repository": r, "actions": a} for r, a in scopes.items()],
            "expires_in_days": expires_in_days}
    with _client(url, token) as c:
        data = _check(c.post("/api/v1/tokens", json=body))
    if as_json:
        _emit(data, True)
    else:
        console.print(f"token {data['name']}#{data['id']} created; the secret is shown only now:")
        typer.echo(data["token"])


@token_app.command("list")
def token_list(url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """List tokens (never their secrets)."""
    with _client(url, token) as c:
        data = _check(c.get("/api/v1/tokens"))
    _emit(data, as_json, ["id", "name", "prefix", "scopes", "expires_at", "revoked_at"])


@token_app.command("revoke")
def token_revoke(token_id: int, url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Revoke a token by id."""
    with _client(url, token) as c:
        data = _check(c.delete(f"/api/v1/tokens/{token_id}"))
    _emit(data, as_json, ["id", "name", "revoked_at"])


# -- files -------------------------------------------------------------------------------------------------------
def _python_form(path: Path) -> dict[str, str]:
    from packaging.utils import parse_sdist_filename, parse_wheel_filename

    if path.name.endswith(".whl"):
        name, version, _b, tags = parse_wheel_filename(path.name)
        return {"name": name, "version": str(version), "filetype": "bdist_wheel",
                "pyversion": sorted({t.interpreter for t in tags})[0]}
    name, version = parse_sdist_filename(path.name)
    return {"name": name, "version": str(version), "filetype": "sdist", "pyversion": "source"}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1024 * 1024):
            h.update(chunk)
    return h.hexdigest()


def push(
    repository: str,
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, help="wheels and sdists")],
    skip_existing: Annotated[bool, typer.Option(help="treat 'already exists' as success")] = False,
    url: UrlOpt = None, token: TokenOpt = None,
) -> None:
    """Upload package files to a repository, with a progress bar."""
    failed = 0
    with _client(url, token) as c, Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                                           TransferSpeedColumn(), console=console) as progress:
        for path in files:
            try:
                fields = _python_form(path)
            except ValueError as exc:
                console.print(f"[red]{path.name}:[/red] {exc}")
                failed += 1
                continue
            fields.update({":action": "file_upload", "protocol_version": "1", "sha256_digest": _sha256(path),
                           "metadata_version": "2.1"})
            task = progress.add_task(path.name, total=path.stat().st_size)
            boundary = os.urandom(16).hex()
            body = _multipart(fields, path, boundary, lambda n, t=task: progress.advance(t, n))
            resp = c.post(f"/{repository}/legacy/", content=body,
                          headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
            if resp.status_code == 400 and skip_existing and "already exist" in resp.text:
                console.print(f"skipped {path.name} (already exists)")
            elif resp.status_code >= 400:
                failed += 1
                try:
                    msg = resp.json().get("error")
                except ValueError:
                    msg = resp.text
                console.print(f"[red]{path.name}: {resp.status_code}[/red] {msg}")
    if failed:
        raise typer.Exit(1)


def _multipart(fields: dict[str, str], path: Path, boundary: str, advance: Any) -> Iterator[bytes]:
    for key, value in fields.items():
        yield (f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n').encode()
    yield (f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{path.name}"\r\n'
           f"Content-Type: application/octet-stream\r\n\r\n").encode()
    with open(path, "rb") as fh:
        while chunk := fh.read(256 * 1024):
            advance(len(chunk))
            yield chunk
    yield f"\r\n--{boundary}--\r\n".encode()


def yank(
    target: Annotated[str, typer.Argument(help="REPO/PACKAGE@VERSION")],
    reason: Annotated[Optional[str], typer.Option(help="why (shown to installers)")] = None,
    undo: Annotated[bool, typer.Option("--undo", help="un-yank")] = False,
    url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Yank (PEP 592) or un-yank a release."""
    repo, _, rest = target.partition("/")
    package, _, version = rest.partition("@")
    if not (repo and package and version):
        raise typer.BadParameter("expected REPO/PACKAGE@VERSION")
    path = f"/api/v1/repositories/{repo}/packages/{package}/versions/{version}/yank"
    with _client(url, token) as c:
        data = _check(c.delete(path) if undo else c.post(path, json={"reason": reason}))
    _emit(data, True)


def audit(
    dependencies: Annotated[Optional[Path], typer.Argument(
        help="a package-lock.json or requirements file: report its known vulnerabilities instead", dir_okay=False,
        exists=True)] = None,
    repository: Annotated[Optional[str], typer.Option(
        "--repository", "-r", help="the audit log of this repository; or, when it names a file, "
                                   "a requirements file to check for known vulnerabilities")] = None,
    action: Annotated[Optional[str], typer.Option()] = None,
    limit: Annotated[int, typer.Option()] = 50,
    url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Show the audit log (newest first); or, given a dependency file (wharf audit package-lock.json,
    wharf audit -r requirements.txt), its known vulnerabilities with fixed versions (exit code 1 when any)."""
    if dependencies is not None or (repository and Path(repository).is_file()):
        from .advisories import audit_dependencies

        requirements = dependencies is None
        audit_dependencies(dependencies or Path(repository or ""), requirements=requirements, url=url, token=token,
                           as_json=as_json)
        return
    params: dict[str, Any] = {"limit": limit}
    if repository:
        params["repository"] = repository
    if action:
        params["action"] = action
    with _client(url, token) as c:
        data = _check(c.get("/api/v1/audit", params=params))
    _emit(data, as_json, ["id", "at", "actor", "action", "repository", "subject", "remote_addr"])


def whoami(url: UrlOpt = None, token: TokenOpt = None) -> None:
    """Show who the token is and what it may do."""
    with _client(url, token) as c:
        _emit(_check(c.get("/api/v1/whoami")), True)
