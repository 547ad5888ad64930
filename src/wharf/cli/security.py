"""``wharf security``: the security overview of a repository and of one package, and rescans."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import typer
from rich.console import Console
from rich.table import Table

from .client import JsonOpt, TokenOpt, UrlOpt, _check, _client, _emit

security_app = typer.Typer(help="Vetting results: licences, malware heuristics, typosquatting, vulnerabilities.",
                           no_args_is_help=True)


def _split(ref: str) -> tuple[str, str, str | None]:
    repo, _, rest = ref.partition("/")
    if not repo or not rest:
        raise typer.BadParameter("expected REPO/PACKAGE[@VERSION]")
    package, _, version = rest.rpartition("@") if "@" in rest.lstrip("@") else (rest, "", "")
    return repo, package, version or None


@security_app.command("overview")
def overview(repository: str, url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Scan coverage, results per analyzer and severities of REPOSITORY's packages."""
    with _client(url, token) as c:
        data = _check(c.get("/api/v1/security/overview", params={"repository": repository}))
    if as_json:
        _emit(data, True)
        return
    v = data["versions"]
    Console().print(f"{data['repository']}: {v['scanned']}/{v['total']} versions scanned, max severity "
                    f"{data['max_severity'] or 'none'}, findings {data['severity_counts'] or {}}")
    table = Table("package", "latest", "scanned", *data["analyzers"], "max severity")
    for p in data["packages"]:
        latest: dict[str, Any] = p["latest"]
        table.add_row(p["name"], latest["version"], f"{p['scanned_versions']}/{p['versions']}",
                      *[latest["status"].get(a, "-") for a in data["analyzers"]], latest["max_severity"] or "-")
    Console().print(table)


@security_app.command("show")
def show(ref: str, url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Findings and vulnerabilities of REPO/PACKAGE (its latest version, or @VERSION)."""
    repo, package, version = _split(ref)
    with _client(url, token) as c:
        data = _check(c.get(f"/api/v1/security/packages/{repo}/{quote(package, safe='@/')}"))
    entry = next((e for e in data["versions"] if version is None or e["version"] == version), None)
    if entry is None:
        typer.echo(f"no version {version} of {package} in {repo}", err=True)
        raise typer.Exit(1)
    if as_json:
        _emit(entry, True)
        return
    Console().print(f"{data['name']} {entry['version']}: " + ", ".join(f"{a} {s}" for a, s in entry["status"].items()))
    table = Table("analyzer", "severity", "rule", "where", "message")
    for analyzer, findings in entry.get("findings", {}).items():
        for f in findings:
            where = f"{f.get('file') or ''}{':' + str(f['line']) if f.get('line') else ''}"
            table.add_row(analyzer, str(f.get("severity") or ""), str(f.get("rule") or f.get("id") or ""), where,
                          str(f.get("message") or ""))
    Console().print(table)


@security_app.command("scan")
def scan(ref: str, url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Run every analyzer on REPO/PACKAGE@VERSION now (admin on the repository)."""
    repo, package, version = _split(ref)
    if version is None:
        raise typer.BadParameter("expected REPO/PACKAGE@VERSION")
    with _client(url, token) as c:
        data = _check(c.post(f"/api/v1/security/packages/{repo}/{package}/{version}/scan"))
    _emit({a: r["status"] for a, r in data["results"].items()} if not as_json else data, True)
