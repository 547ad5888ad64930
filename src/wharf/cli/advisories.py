"""``wharf advisories import|status|show`` and the dependency audit of ``wharf audit FILE`` / ``wharf audit -r FILE``.

Everything goes through the server's API: imports through ``POST /api/v1/advisories/import`` (server admins), the
dependency audit through the OSV-compatible query API (``/-/osv/v1/querybatch`` and ``/-/osv/v1/vulns/<id>``).
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Any, Iterator

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TransferSpeedColumn
from rich.table import Table

from .client import JsonOpt, TokenOpt, UrlOpt, _check, _client, _emit, _requirement_lines, console

__all__ = ["advisories_app", "audit_dependencies", "is_dependency_file"]

advisories_app = typer.Typer(help="Vulnerability advisories (OSV data).", no_args_is_help=True)


# -- import ---------------------------------------------------------------------------------------------------------
@advisories_app.command("import")
def import_(
    source: Annotated[str, typer.Argument(help="an OSV zip (e.g. an ecosystem's all.zip), a directory or file of "
                                               "OSV JSON records, or an http(s) URL the server fetches")],
    url: UrlOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Load OSV records into the server, incrementally (unchanged records are skipped). Server admins only."""
    with _client(url, token) as c:
        c.timeout = None  # a large dump takes a while to import
        if source.startswith(("http://", "https://")):
            with console.status(f"the server is importing {source} ..."):
                report = _check(c.post("/api/v1/advisories/import", json={"url": source}))
        else:
            path = Path(source)
            if not path.exists():
                raise typer.BadParameter(f"no such file or directory: {source}")
            tmp = None
            try:
                if path.is_dir():
                    tmp = _zip_directory(path)
                    path, ctype = tmp, "application/zip"
                elif zipfile.is_zipfile(path):
                    ctype = "application/zip"
                else:
                    ctype = "application/json"
                report = _upload(c, path, ctype)
            finally:
                if tmp is not None:
                    tmp.unlink()
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    console.print(f"read {report['read']} records: {report['added']} added, {report['updated']} updated, "
                  f"{report['unchanged']} unchanged, {report['withdrawn']} withdrawn, {report['invalid']} invalid "
                  f"({report['seconds']} s)")
    changed = report["changed_results"]
    console.print(f"{report['packages_touched']} package names touched; {report['reevaluated']} stored package "
                  "versions " + (f"re-evaluated, {changed} results changed" if changed is not None
                                 else "queued for re-evaluation (background tasks)"))
    for err in report.get("errors") or ():
        console.print(f"[yellow]skipped[/yellow] {err}")


def _zip_directory(path: Path) -> Path:
    files = [p for p in sorted(path.rglob("*.json")) if p.is_file()]
    fd, name = tempfile.mkstemp(prefix="wharf-advisories-", suffix=".zip")
    os.close(fd)
    with Progress("zipping", BarColumn(), MofNCompleteColumn(), console=console) as progress, \
            zipfile.ZipFile(name, "w", zipfile.ZIP_DEFLATED) as zf:
        task = progress.add_task("zip", total=len(files))
        for p in files:
            zf.write(p, p.relative_to(path).as_posix())
            progress.advance(task)
    return Path(name)


def _upload(c: Any, path: Path, ctype: str) -> Any:
    size = path.stat().st_size
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=console) as progress:
        task = progress.add_task(path.name, total=size)

        def body() -> Iterator[bytes]:
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    progress.advance(task, len(chunk))
                    yield chunk

        resp = c.post("/api/v1/advisories/import", content=body(),
                      headers={"Content-Type": ctype, "Content-Length": str(size)})
    with console.status("the server is importing ..."):
        return _check(resp)


@advisories_app.command("status")
def status(url: UrlOpt = None, token: TokenOpt = None) -> None:
    """How many advisories are loaded, per ecosystem, and the scheduled source's state."""
    with _client(url, token) as c:
        _emit(_check(c.get("/api/v1/advisories")), True)


@advisories_app.command("show")
def show(advisory_id: str, url: UrlOpt = None, token: TokenOpt = None) -> None:
    """One OSV record as stored."""
    with _client(url, token) as c:
        _emit(_check(c.get(f"/api/v1/advisories/{advisory_id}")), True)


# -- dependency audit -----------------------------------------------------------------------------------------------
def is_dependency_file(value: str | None) -> bool:
    return bool(value) and Path(value).is_file()  # type: ignore[arg-type]


def _lock_packages(path: Path) -> list[tuple[str, str]]:
    """(name, version) of every installed package of an npm lockfile (v1, v2 or v3)."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    found: set[tuple[str, str]] = set()
    for key, entry in (doc.get("packages") or {}).items():
        if not key or not isinstance(entry, dict) or entry.get("link") or not isinstance(entry.get("version"), str):
            continue
        name = entry.get("name") or key.rsplit("node_modules/", 1)[-1]
        found.add((name, entry["version"]))

    def walk(deps: dict[str, Any]) -> None:
        for name, entry in (deps or {}).items():
            if isinstance(entry, dict) and isinstance(entry.get("version"), str):
                found.add((name, entry["version"]))
                walk(entry.get("dependencies") or {})

    if not doc.get("packages"):
        walk(doc.get("dependencies") or {})
    return sorted(found)


def _requirements(path: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """Pinned (``==``) requirements as (name, version); the others are reported as not checked."""
    from packaging.requirements import InvalidRequirement, Requirement

    pinned, skipped = [], []
    for text, where in _requirement_lines(path, set()):
        try:
            req = Requirement(text)
        except InvalidRequirement:
            skipped.append(f"{where}: {text} (not a requirement)")
            continue
        specs = list(req.specifier)
        if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
            pinned.append((req.name, specs[0].version))
        else:
            skipped.append(f"{where}: {text} (not pinned with ==)")
    return pinned, skipped


def audit_dependencies(path: Path, *, requirements: bool, url: str | None, token: str | None, as_json: bool) -> None:
    """Report the known vulnerabilities of a dependency set; exit 1 when any matches."""
    from packaging.utils import canonicalize_name

    from ..security.advisories import osv

    if requirements or not path.name.endswith(".json"):
        ecosystem, normalize = "PyPI", canonicalize_name
        packages, skipped = _requirements(path)
    else:
        ecosystem, normalize = "npm", (lambda n: n)
        packages, skipped = _lock_packages(path), []
    rows: list[dict[str, Any]] = []
    with _client(url, token) as c:
        records: dict[str, Any] = {}
        for i in range(0, len(packages), 1000):
            part = packages[i:i + 1000]
            queries = [{"package": {"ecosystem": ecosystem, "name": n}, "version": v} for n, v in part]
            answer = _check(c.post("/-/osv/v1/querybatch", json={"queries": queries}))
            for (name, version), result in zip(part, answer["results"]):
                for hit in result.get("vulns") or ():
                    if hit["id"] not in records:
                        records[hit["id"]] = _check(c.get(f"/-/osv/v1/vulns/{hit['id']}"))
                    doc = records[hit["id"]]
                    entries = osv.affected_entries(doc, ecosystem, normalize(name), normalize)
                    score, level = osv.severity_of(doc)
                    rows.append({"name": name, "version": version, "id": doc["id"], "aliases": doc.get("aliases") or [],
                                 "summary": doc.get("summary"), "severity": level, "score": score,
                                 "fixed": osv.fixed_versions(entries)})
    if as_json:
        typer.echo(json.dumps({"ecosystem": ecosystem, "checked": len(packages), "vulnerabilities": rows,
                               "not_checked": skipped}, indent=2))
    else:
        for line in skipped:
            console.print(f"[yellow]not checked[/yellow] {line}")
        if rows:
            table = Table("package", "version", "id", "aliases", "severity", "fixed in", "summary")
            for r in rows:
                table.add_row(r["name"], r["version"], r["id"], ", ".join(r["aliases"]),
                              f"{r['severity'] or '?'}" + (f" ({r['score']})" if r["score"] is not None else ""),
                              ", ".join(r["fixed"]) or "no fix", r["summary"] or "")
            Console().print(table)
        affected = len({(r["name"], r["version"]) for r in rows})
        console.print(f"{len(packages)} packages checked: {len(rows)} known vulnerabilities in {affected} of them")
    if rows:
        raise typer.Exit(1)
