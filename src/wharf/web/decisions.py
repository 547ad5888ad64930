"""The package page's policy decisions (see core/policy.py): per version, every logged decision with the policy and
its version, the event, the result, the message, the digest of the inputs and when; the inputs themselves (they
may name uploaders) for the repository's admins only, as in the API's decision log."""

from __future__ import annotations

import json
from html import escape
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..core.interfaces import RepoInfo
    from ..core.services import Core

__all__ = ["package_decisions", "decisions_table", "LIMIT"]

LIMIT = 1000  # the newest decisions of a package a page shows (the API pages through the rest)
_RESULT_STYLE = {"deny": "#c0392b", "quarantine": "#d68910", "error": "#8b0000", "allow": "#1e8449", "tag": "#0b5cad"}


def package_decisions(core: "Core", repo: "RepoInfo", name: str, *, admin: bool) -> dict[str | None, list[dict[str, Any]]]:
    """A package's logged decisions by version (None: decisions on the whole package), newest first. Decisions on a
    quarantined version (or a quarantined package) are for the repository's admins only: the page hides that
    version from everyone else, and a quarantine policy's message is its reason."""
    out: dict[str | None, list[dict[str, Any]]] = {}
    logged = core.policy.decisions(repository=repo.name, name=name, limit=LIMIT)
    for d in core.policy.visible(repo, logged, admin=admin):
        out.setdefault(d["version"], []).append(d)
    return out


def decisions_table(decisions: list[dict[str, Any]]) -> str:
    """The decisions of one version as a table ('' for none); an admin's decisions carry their inputs."""
    if not decisions:
        return ""
    rows = []
    for d in decisions:
        colour = _RESULT_STYLE.get(d["result"])
        result = f"<b style='color:{colour}'>{escape(d['result'])}</b>" if colour else escape(d["result"])
        inputs = ""
        if "inputs" in d:
            inputs = (f"<details><summary class='muted'>inputs</summary><pre><code>"
                      f"{escape(json.dumps(d['inputs'], indent=1, sort_keys=True, default=str))}</code></pre></details>")
        rows.append(f"<tr class='decision'><td class='muted'>{escape(str(d['at'] or '')[:19])}</td>"
                    f"<td>{escape(d['policy'])} <span class='muted'>v{d['policy_version']}</span></td>"
                    f"<td>{escape(d['event'])}</td><td>{result}</td><td>{escape(d['message'] or '')}</td>"
                    f"<td><code>sha256:{escape(d['inputs_digest'])}</code>{inputs}</td>"
                    f"<td class='muted'>{escape(d['actor'] or '')}</td></tr>")
    return ("<table class='decisions'><tr><th>when</th><th>policy</th><th>event</th><th>result</th><th>message</th>"
            "<th>inputs digest</th><th>by</th></tr>" + "".join(rows) + "</table>")
