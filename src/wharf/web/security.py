"""Security overview pages under ``/ui/-/security/`` (``-`` is never a repository name): every repository's scan
coverage, one repository's packages, one package's vulnerabilities, findings and release history."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..security import overview

if TYPE_CHECKING:  # pragma: no cover
    from ..core.services import Core

__all__ = ["security_routes"]

_SEV_STYLE = {"critical": "#8b0000", "high": "#c0392b", "medium": "#d68910", "low": "#2874a6", "info": "#667"}
_STATUS_STYLE = {"pass": "#1e8449", "warn": "#d68910", "fail": "#c0392b", "error": "#8b0000"}


def _sev(s: str | None) -> str:
    if not s:
        return "<span class='muted'>none</span>"
    return f"<b style='color:{_SEV_STYLE.get(s, '#333')}'>{escape(s)}</b>"


def _status(s: str | None) -> str:
    if not s:
        return "<span class='muted'>-</span>"
    return f"<span style='color:{_STATUS_STYLE.get(s, '#333')}'>{escape(s)}</span>"


def _counts(c: dict[str, int] | None) -> str:
    if not c:
        return "<span class='muted'>0</span>"
    return ", ".join(f"{_sev(k)} {v}" for k, v in c.items())


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "<span class='muted'>never</span>"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit} ago"
    return f"{seconds:.0f} s ago"


def security_routes(core: "Core", page: Callable[..., Response], visible_repo: Callable[[Request, str], Any],
                    principal: Callable[[Request], Any]) -> list[Route]:
    base = "/ui/-/security"

    async def index(request: Request) -> Response:
        p = await run_in_threadpool(principal, request)
        repos = [r for r in await run_in_threadpool(core.repos.list) if not r.private or (p and p.can("read", r.name))]
        docs = [await run_in_threadpool(overview.repository_overview, core, r) for r in repos]
        rows = "".join(
            f"<tr><td><a href='{base}/{escape(d['repository'])}/'>{escape(d['repository'])}</a></td><td>{d['format']}</td>"
            f"<td>{d['versions']['scanned']} / {d['versions']['total']}</td><td>{d['versions']['not_scanned']}</td>"
            f"<td>{_sev(d['max_severity'])}</td><td>{_counts(d['severity_counts'])}</td></tr>" for d in docs)
        note = "" if core.settings.vetting else "<p><b>Vetting is off</b> (setting <code>vetting</code>): nothing new is scanned.</p>"
        return page("Security overview", note + "<table><tr><th>repository</th><th>format</th><th>versions scanned</th>"
                    f"<th>not scanned</th><th>max severity</th><th>findings by severity</th></tr>{rows}</table>",
                    [("security", f"{base}/")])

    async def repository(request: Request) -> Response:
        name = request.path_params["repo"]
        repo = await run_in_threadpool(visible_repo, request, name)
        if repo is None:
            return Response(f"no repository named {name}", status_code=404)
        d = await run_in_threadpool(overview.repository_overview, core, repo)
        analyzers = d["analyzers"]
        head = "".join(f"<th>{escape(a)}</th>" for a in analyzers)
        rows = []
        for pkg in d["packages"]:
            latest = pkg["latest"]
            cells = "".join(f"<td>{_status(latest['status'].get(a))}</td>" for a in analyzers)
            rows.append(f"<tr><td><a href='{base}/{escape(repo.name)}/{quote(pkg['name'])}/'>{escape(pkg['name'])}</a></td>"
                        f"<td>{escape(latest['version'])}</td><td>{pkg['scanned_versions']} / {pkg['versions']}</td>"
                        f"<td>{_age(latest['scan_age_seconds'])}</td>{cells}<td>{_sev(latest['max_severity'])}</td></tr>")
        by_analyzer = "".join(f"<li>{escape(a)}: " + ", ".join(f"{_status(s)} {n}" for s, n in sorted(c.items())) + "</li>"
                              for a, c in d["by_analyzer"].items())
        by_policy = ("<p class='muted'>no policy decisions</p>" if not d["by_policy"] else "<ul>" + "".join(
            f"<li>{escape(p)}: " + ", ".join(f"{escape(r)} {n}" for r, n in sorted(c.items())) + "</li>"
            for p, c in d["by_policy"].items()) + "</ul>")
        ages = d["scan_age_seconds"]
        body = (f"<p>{d['versions']['scanned']} of {d['versions']['total']} package versions scanned "
                f"({d['versions']['not_scanned']} not scanned) · {d['packages_total']} packages · "
                f"oldest scan {_age(ages['max'] if ages else None)} · max severity {_sev(d['max_severity'])} · "
                f"findings: {_counts(d['severity_counts'])}</p><h2>Analyzers</h2><ul>{by_analyzer}</ul>"
                f"<h2>Policies</h2>{by_policy}<h2>Packages</h2><table><tr><th>package</th><th>latest</th>"
                f"<th>scanned versions</th><th>last scan</th>{head}<th>max severity</th></tr>{''.join(rows)}</table>")
        return page(f"Security: {repo.name}", body, [("security", f"{base}/"), (repo.name, f"{base}/{repo.name}/")])

    async def package(request: Request) -> Response:
        name, pkg = request.path_params["repo"], request.path_params["package"].rstrip("/")
        repo = await run_in_threadpool(visible_repo, request, name)
        if repo is None:
            return Response("no such repository", status_code=404)
        norm = core.plugin(repo).normalize_name(pkg)
        d = await run_in_threadpool(overview.package_overview, core, repo, norm)
        if d is None:
            return Response(f"no package {pkg} in {name}", status_code=404)
        vulns = "".join(
            f"<tr><td>{escape(str(v['id']))}<br><span class='muted'>{escape(', '.join(v['aliases']))}</span></td>"
            f"<td>{_sev(v['severity'])}</td><td>{escape(v['summary'] or '')}</td>"
            f"<td>{escape(', '.join(v['fixed'])) or '<span class=muted>no fix</span>'}</td></tr>" for v in d["vulnerabilities"])
        vuln_part = (f"<table><tr><th>id</th><th>severity</th><th>summary</th><th>fixed in</th></tr>{vulns}</table>"
                     if vulns else "<p class='muted'>no known vulnerabilities in the latest version (or not scanned)</p>")
        history = "".join(
            f"<tr><td>{escape(r['version'])}</td><td class='muted'>{escape((r['added_at'] or '')[:19])}</td>"
            f"<td>{'-' if r['unresolved_vulnerabilities'] is None else r['unresolved_vulnerabilities']}</td>"
            f"<td>{_sev(r['max_severity'])}</td><td>"
            + ", ".join(f"{escape(a)} {_status(s)}" for a, s in r["status"].items()) + "</td></tr>"
            for r in reversed(d["releases"]))
        latest = d["versions"][0]
        findings = "".join(
            f"<tr><td>{escape(a)}</td><td>{_sev(f.get('severity'))}</td><td>{escape(str(f.get('rule') or f.get('id') or ''))}</td>"
            f"<td><code>{escape(str(f.get('file') or ''))}{':' + str(f['line']) if f.get('line') else ''}</code></td>"
            f"<td>{escape(str(f.get('message') or ''))}</td></tr>"
            for a, fs in latest.get("findings", {}).items() for f in fs if isinstance(f, dict))
        summary = latest.get("summary", {})
        lic = summary.get("licence", {})
        waiting = (f"<p class='muted'>not scanned yet: {escape(', '.join(latest['unscanned_files']))}</p>"
                   if latest["unscanned_files"] else "")
        body = (f"<p>latest {escape(d['latest'])} · scanned {_age(latest['scan_age_seconds'])} · max severity "
                f"{_sev(d['max_severity'])} · licence <code>{escape(str(lic.get('licence') or lic.get('licence_raw') or '?'))}</code></p>"
                f"{waiting}<h2>Vulnerabilities</h2>{vuln_part}<h2>Findings ({escape(latest['version'])})</h2>"
                + (f"<table><tr><th>analyzer</th><th>severity</th><th>rule</th><th>where</th><th>message</th></tr>{findings}</table>"
                   if findings else "<p class='muted'>none</p>")
                + "<h2>Releases</h2><table><tr><th>version</th><th>added</th><th>unresolved vulnerabilities</th>"
                f"<th>max severity</th><th>results</th></tr>{history}</table>")
        return page(f"Security: {norm}", body, [("security", f"{base}/"), (repo.name, f"{base}/{repo.name}/"),
                                               (norm, f"{base}/{repo.name}/{quote(norm)}/")])

    return [Route(f"{base}/", index), Route(base + "/{repo}/", repository), Route(base + "/{repo}/{package:path}", package)]
