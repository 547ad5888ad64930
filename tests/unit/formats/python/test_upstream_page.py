"""Reading upstream index pages and proxy settings: hostile or broken input is refused or left out, never trusted."""

from __future__ import annotations

import json

import pytest

from wharf.core.errors import InvalidInput
from wharf.core.upstream import parse_upstream_config, redact
from wharf.formats.python.upstream import UnreadablePage, parse_upstream_page

SHA = "ab" * 32
PAGE = "http://127.0.0.1:9/simple/demo/"
JSON = "application/vnd.pypi.simple.v1+json"


def _json(files, **doc):  # noqa: ANN001, ANN003, ANN202
    return json.dumps({"meta": {"api-version": "1.1"}, "name": "demo", "files": files, **doc}).encode()


def test_json_entries_are_read_and_urls_made_absolute():
    entries, versions = parse_upstream_page(_json([{"filename": "demo-1.0.tar.gz", "url": "../../f/demo-1.0.tar.gz",
                                                    "hashes": {"sha256": SHA.upper()}, "core-metadata": {"sha256": SHA}}],
                                                  versions=["1.0"]), JSON, PAGE)
    assert versions == ["1.0"]
    assert entries[0]["upstream"] == "http://127.0.0.1:9/f/demo-1.0.tar.gz"
    assert entries[0]["sha256"] == SHA and entries[0]["core-metadata"] == {"sha256": SHA}


@pytest.mark.parametrize("body", [
    b"\x00garbage", b"[]", b'{"files": 5}', b'{"files": "x"}', b'{"files": [{"url": "x"}]}',
    b'{"files": [{"filename": 1, "url": "x"}]}', b'{"files": [], "versions": "1.0"}',
])
def test_unreadable_json_pages_are_refused(body):
    with pytest.raises(UnreadablePage):
        parse_upstream_page(body, JSON, PAGE)


def test_entries_that_cannot_be_addressed_safely_are_left_out():
    files = [
        {"filename": "no-hash-1.0.tar.gz", "url": "a"},
        {"filename": "list-hashes-1.0.tar.gz", "url": "a", "hashes": ["x"]},
        {"filename": "short-1.0.tar.gz", "url": "a", "hashes": {"sha256": "abc"}},
        {"filename": "path-1.0.tar.gz", "url": "a", "hashes": {"sha256": "../../" + "a" * 58}},
        {"filename": "../evil-1.0.tar.gz", "url": "a", "hashes": {"sha256": SHA}},
        {"filename": "ok-1.0.tar.gz", "url": "a", "hashes": {"sha256": SHA}, "requires-python": 3, "yanked": ["x"],
         "size": "big", "core-metadata": {"sha256": '"><script>'}},
    ]
    entries, _ = parse_upstream_page(_json(files), JSON, PAGE)
    assert [e["filename"] for e in entries] == ["ok-1.0.tar.gz"]
    e = entries[0]
    assert e["requires-python"] is None and e["yanked"] is False and e["size"] is None and e["core-metadata"] is True


def test_html_links_are_unquoted_and_checked():
    body = (f'<a href="../../f/demo-1.0%2Blocal-py3-none-any.whl#sha256={SHA}" data-requires-python="&gt;=3.8">x</a>'
            f'<a href="../../f/bad-1.0.tar.gz#sha256=nothex">y</a><a href="../../f/%2E%2E#sha256={SHA}">z</a>').encode()
    entries, versions = parse_upstream_page(body, "text/html", PAGE)
    assert versions is None
    assert [e["filename"] for e in entries] == ["demo-1.0+local-py3-none-any.whl"]
    assert entries[0]["requires-python"] == ">=3.8"


def test_credentials_in_the_upstream_url_become_auth_and_are_redacted():
    userinfo = "al%40ice:p%3Ass"
    cfg = parse_upstream_config({"url": f"http://{userinfo}@127.0.0.1:9/simple"})
    assert cfg["url"] == "http://127.0.0.1:9/simple/"
    assert cfg["auth"] == {"type": "basic", "username": "al@ice", "password": "p:ss"}
    assert "p:ss" not in json.dumps(redact({"upstream": cfg}))
    with pytest.raises(InvalidInput):
        parse_upstream_config({"url": f"http://{'u:p'}@127.0.0.1:9/", "auth": {"type": "bearer", "token": "t"}})
