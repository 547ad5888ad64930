"""The web package page shows every policy decision per version (policy and version, event, result, message,
inputs digest, when) to whoever may read the repository: uploads with twine to a private repository under tag,
quarantine and deny policies, then the page as an anonymous visitor, a reader and an admin (SQLite, PostgreSQL)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.conftest import unique
from tests.support import artifacts
from tests.support.clients import twine_upload


def _page(server, repo: str, package: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{server.url}/ui/{repo}/{package}/", headers=headers, timeout=30)


def _section(html: str, version: str) -> str:
    m = re.search(rf"<section class='version' id='version-{re.escape(version)}'>(.*?)</section>", html, re.S)
    assert m, f"no section for version {version} on the page"
    return m.group(1)


def _policy(server, name: str, repo: str, action: str, expression: str, **extra) -> None:
    r = server.api("POST", "/api/v1/policies", json={"name": name, "events": ["upload"], "repositories": [repo],
                                                     "action": action, "expression": expression, **extra})
    assert r.status_code == 201, r.text


def test_package_page_shows_policy_decisions_per_version(server, tmp_path: Path):
    dev = unique("pagedev")
    server.create_repo(dev, private=True)
    tagger, holder, denier = unique("tag-all"), unique("hold-2"), unique("deny-3")
    _policy(server, tagger, dev, "tag", 'name == "pagepkg"', tags=["reviewed"])
    _policy(server, holder, dev, "quarantine", 'version == "2.0"', message="2.0 waits for review")
    _policy(server, denier, dev, "deny", 'version == "3.0"', message="3.0 was withdrawn")
    r = server.api("PATCH", f"/api/v1/policies/{tagger}", json={"tags": ["reviewed", "page"]})
    assert r.status_code == 200 and r.json()["current_version"] == 2  # the page names the version that decided
    for version in ("1.0", "2.0", "3.0"):
        (tmp_path / version).mkdir()
        wheel = artifacts.make_wheel(tmp_path / version, "pagepkg", version)
        res = twine_upload(tmp_path, f"{server.url}/{dev}/legacy/", [wheel], token=server.token)
        assert res.ok == (version != "3.0"), res
    reader = server.create_token(unique("page-reader"), {dev: "read"})
    log = server.api("GET", "/api/v1/policy-decisions", params={"repository": dev, "package": "pagepkg"}).json()
    digest = {(d["policy"], d["version"]): d["inputs_digest"] for d in log}

    # a private repository: no page without read access
    assert _page(server, dev, "pagepkg", None).status_code == 401

    html = _page(server, dev, "pagepkg", reader).text
    one = _section(html, "1.0")
    assert f"{tagger} <span class='muted'>v2</span>" in one and ">upload<" in one and ">tag<" in one
    assert f"sha256:{digest[(tagger, '1.0')]}" in one and f"sha256:{digest[(holder, '1.0')]}" in one
    assert f"{holder} <span class='muted'>v1</span>" in one  # not matched: logged as "none", shown too
    assert re.search(r"<td class='muted'>\d{4}-\d\d-\d\d.\d\d:\d\d:\d\d</td>", one)  # when
    refused = _section(html, "3.0")  # refused: no file, the decision stays visible
    assert "3.0 was withdrawn" in refused and ">deny<" in refused and f"sha256:{digest[(denier, '3.0')]}" in refused
    # 2.0 is quarantined: hidden from readers with its decisions (a quarantine policy's message is its reason) ...
    assert "id='version-2.0'" not in html and "2.0 waits for review" not in html
    assert "<summary" not in html  # ... and decision inputs (they may name uploaders) are for admins

    # the API's decision log shows a reader the same: no inputs, nothing about the quarantined version
    seen = httpx.get(f"{server.url}/api/v1/policy-decisions", params={"repository": dev, "package": "pagepkg"},
                     headers={"Authorization": f"Bearer {reader}"}, timeout=30).json()
    assert {d["version"] for d in seen} == {"1.0", "3.0"} and all("inputs" not in d for d in seen)
    assert {d["version"] for d in log} == {"1.0", "2.0", "3.0"} and all("inputs" in d for d in log)  # the admin's

    html = _page(server, dev, "pagepkg", server.token).text
    two = _section(html, "2.0")
    assert "quarantined: 2.0 waits for review" in two
    assert ">quarantine<" in two and f"sha256:{digest[(holder, '2.0')]}" in two
    assert "<summary class='muted'>inputs</summary>" in _section(html, "1.0")

    for name in (tagger, holder, denier):
        assert server.api("DELETE", f"/api/v1/policies/{name}").status_code == 204
