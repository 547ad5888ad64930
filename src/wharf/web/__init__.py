"""A minimal read-only browser view: repositories, packages, versions, files and digests."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ..core.auth import credentials_from_header
from ..core.errors import WharfError
from .decisions import decisions_table, package_decisions
from .trail import trail_section

if TYPE_CHECKING:  # pragma: no cover
    from ..core.services import Core

__all__ = ["build_web"]

_CSS = """body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#1b1f24}
table{border-collapse:collapse;width:100%}td,th{padding:.3rem .6rem;border-bottom:1px solid #ddd;text-align:left}
code{font-size:12px;word-break:break-all}a{color:#0b5cad}.muted{color:#667}.tag{background:#eee;border-radius:3px;padding:0 .3rem}"""


def _page(title: str, body: str, crumbs: list[tuple[str, str]] | None = None) -> HTMLResponse:
    nav = " / ".join(f'<a href="{escape(h)}">{escape(t)}</a>' for t, h in (crumbs or []))
    return HTMLResponse(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)} · Wharf</title>"
                        f"<style>{_CSS}</style></head><body><p class='muted'><a href='/ui/'>Wharf</a>"
                        f"{' / ' + nav if nav else ''}</p><h1>{escape(title)}</h1>{body}</body></html>")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)  # pragma: no cover


def _version_section(version: str, body: str) -> str:
    return f"<section class='version' id='version-{escape(version)}'>{body}</section>"


def build_web(core: "Core") -> Starlette:
    def principal(request: Request) -> Any:
        secret = credentials_from_header(request.headers.get("authorization", "").encode("latin-1") or None)
        return core.tokens.authenticate(secret) if secret else None

    def visible_repo(request: Request, name: str) -> Any:
        repo = core.repos.get(name)
        if repo is None:
            return None
        if repo.private:
            p = principal(request)
            if p is None or not p.can("read", repo.name):
                raise _NeedAuth()
        return repo

    async def home(request: Request) -> Response:
        p = await run_in_threadpool(principal, request)
        repos = [r for r in await run_in_threadpool(core.repos.list) if not r.private or (p and p.can("read", r.name))]
        rows = "".join(f"<tr><td><a href='/ui/{escape(r.name)}/'>{escape(r.name)}</a></td><td>{r.format}</td>"
                       f"<td>{r.kind}</td><td>{'private' if r.private else 'public'}</td></tr>" for r in repos)
        return _page("Repositories", f"<table><tr><th>name</th><th>format</th><th>kind</th><th>access</th></tr>{rows}</table>"
                     "<p class='muted'>API: <a href='/api/v1/docs'>/api/v1/docs</a> · "
                     "<a href='/ui/-/security/'>security overview</a></p>")

    async def repository(request: Request) -> Response:
        name = request.path_params["repo"]
        repo = await run_in_threadpool(visible_repo, request, name)
        if repo is None:
            return Response(f"no repository named {name}", status_code=404)
        names, counts = await run_in_threadpool(lambda: (core.content.names(repo.id), core.content.counts(repo.id)))
        rows = "".join(f"<li><a href='/ui/{escape(repo.name)}/{escape(n)}/'>{escape(n)}</a></li>" for n in names)
        index = f"/{repo.name}/{getattr(core.plugin(repo), 'index_path', '')}"
        return _page(repo.name, f"<p>{repo.format} · {repo.kind} · {'private' if repo.private else 'public'} · "
                     f"{counts['packages']} packages, {counts['files']} files, {_size(counts['bytes'])} · "
                     f"index: <a href='{escape(index)}'>{escape(index)}</a></p><ul>{rows}</ul>", [(repo.name, f"/ui/{repo.name}/")])

    async def package(request: Request) -> Response:
        name, pkg = request.path_params["repo"], request.path_params["package"]
        repo = await run_in_threadpool(visible_repo, request, name)
        if repo is None:
            return Response("no such repository", status_code=404)
        norm = core.plugin(repo).normalize_name(pkg)
        if norm != pkg:
            return RedirectResponse(f"/ui/{repo.name}/{norm}/", status_code=301)
        p = await run_in_threadpool(principal, request)
        admin = p is not None and p.can("admin", repo.name)  # quarantined files and decision inputs: admins only
        files, decisions = await run_in_threadpool(lambda: (
            core.content.files(repo.id, norm, include_hidden=admin),
            package_decisions(core, repo, norm, admin=admin)))
        if not files and not decisions:
            return Response(f"no package {pkg} in {name}", status_code=404)
        by_version: dict[str, list[Any]] = {}
        for f in files:
            by_version.setdefault(f.version, []).append(f)
        parts = []
        for version in reversed(list(by_version)):
            quarantined = core.policy.quarantine.reason(repo.id, norm, version) if admin else None
            rows = "".join(
                f"<tr><td><a href='/{escape(repo.name)}/files/{f.sha256}/{escape(f.filename)}'>{escape(f.filename)}</a>"
                f"{' <span class=tag>yanked: ' + escape(f.yanked_reason or '') + '</span>' if f.yanked else ''}</td>"
                f"<td>{_size(f.size)}</td><td><code>sha256:{f.sha256}</code></td>"
                f"<td class='muted'>{escape(str(f.added_at)[:19])}<br>{escape(f.uploaded_by or '')}</td></tr>"
                for f in by_version[version])
            mark = f" <span class=tag>quarantined: {escape(quarantined)}</span>" if quarantined is not None else ""
            parts.append(_version_section(version, f"<h2>{escape(version)}{mark}</h2><table>{rows}</table>"
                                          + decisions_table(decisions.get(version, []))))
        elsewhere = [v for v in decisions if v is not None and v not in by_version]
        if elsewhere:  # refused (a deny stores nothing), or removed since
            parts.append("<h2 id='decisions-elsewhere'>Policy decisions on versions not in this repository</h2>")
            parts.extend(_version_section(v, f"<h3>{escape(v)}</h3>" + decisions_table(decisions[v])) for v in elsewhere)
        if decisions.get(None):
            parts.append("<h2 id='decisions-package'>Policy decisions on the whole package</h2>"
                         + decisions_table(decisions[None]))
        summary = next((f.meta.get("summary") for f in files if f.meta.get("summary")), "") or ""
        parts.append(await run_in_threadpool(trail_section, core, repo, norm, p))
        return _page(norm, f"<p>{escape(summary)}</p>" + "".join(parts),
                     [(repo.name, f"/ui/{repo.name}/"), (norm, f"/ui/{repo.name}/{norm}/")])

    async def _auth(_r: Request, _e: Exception) -> Response:
        return Response("authentication required", status_code=401, headers={"WWW-Authenticate": 'Basic realm="wharf"'})

    async def _err(_r: Request, e: Exception) -> Response:
        assert isinstance(e, WharfError)
        headers = {"WWW-Authenticate": 'Basic realm="wharf"'} if e.status == 401 else None
        return Response(e.message, status_code=e.status, headers=headers)

    from .security import security_routes

    return Starlette(routes=[
        *security_routes(core, _page, visible_repo, principal),
        Route("/ui/", home), Route("/ui/{repo}/", repository), Route("/ui/{repo}/{package}/", package),
        Route("/favicon.ico", lambda r: Response(status_code=404)),
    ], exception_handlers={_NeedAuth: _auth, WharfError: _err})


class _NeedAuth(Exception):
    pass
