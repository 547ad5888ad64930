"""The package page's trail section: where the package's files came from and went (see core/promotion.py)."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..core.interfaces import RepoInfo
    from ..core.services import Core

__all__ = ["trail_section"]

_VERBS = {"upload": "uploaded to", "proxy-fetch": "cached by", "copy": "copied", "move": "moved",
          "promote": "promoted", "removal": "removed from"}


def trail_section(core: "Core", repo: "RepoInfo", name: str, principal: Any) -> str:
    def visible(repo_name: str) -> bool:
        info = core.repos.get(repo_name)
        if info is None:
            return principal is not None and principal.can("read", None)
        return not info.private or (principal is not None and principal.can("read", repo_name))

    trail = core.promotions.trail(repo.format, name, visible=visible)  # type: ignore[attr-defined]
    rows = []
    for e in trail["events"]:
        if e["event"] in ("copy", "move", "promote"):
            src = e.get("source")
            where = (f"{_link(src, name) if src else '<span class=muted>(hidden)</span>'} &rarr; "
                     f"{_link(e['destination'], name)}")
        else:
            where = _link(e["repository"], name)
        files = "<br>".join(f"{escape(f['filename'])} <code>sha256:{f['sha256']}</code>" for f in e["files"])
        decisions = ""
        if e.get("decisions"):
            decisions = "<br><span class=muted>policy: " + escape(", ".join(_decision(d) for d in e["decisions"])) \
                + "</span>"
        rows.append(f"<tr><td class='muted'>{escape(str(e.get('at') or '')[:19])}</td>"
                    f"<td>{escape(_VERBS.get(e['event'], e['event']))}</td><td>{escape(e.get('version') or '')}</td>"
                    f"<td>{where}</td><td class='muted'>{escape(e.get('actor') or '')}{decisions}</td>"
                    f"<td>{files}</td></tr>")
    if not rows:
        return ""
    return ("<h2 id='trail'>Trail</h2><table class='trail'><tr><th>when</th><th>what</th><th>version</th>"
            "<th>where</th><th>who</th><th>files</th></tr>" + "".join(rows) + "</table>")


def _decision(d: Any) -> str:
    if not isinstance(d, dict):
        return str(d)
    if d.get("incomplete"):
        return "(stopped before every file was copied)"
    text = f"{d.get('policy') or '?'} v{d.get('policy_version')}: {d.get('result')}"
    return text + (f" ({d['message']})" if d.get("message") else "") + (f" #{d['id']}" if d.get("id") else "")


def _link(repo_name: str, name: str) -> str:
    return f"<a href='/ui/{escape(repo_name)}/{escape(name)}/'>{escape(repo_name)}</a>"
