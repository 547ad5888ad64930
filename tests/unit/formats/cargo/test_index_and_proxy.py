"""Index-file rendering and reading, the dl template, and the checks on an upstream's index files."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from wharf.core.pages import Page
from wharf.core.proxying import UnreadableUpstream
from wharf.formats.cargo.index import index_lines, lookup_version, page_key, render_lines
from wharf.formats.cargo.proxy import expand_dl, parse_index_file


def _file(line: dict, yanked: bool = False):
    return SimpleNamespace(meta={"index": json.dumps(line, separators=(",", ":"))}, yanked=yanked)


def test_index_lines_carry_the_current_yanked_flag():
    a = {"name": "Demo", "vers": "1.0.0", "deps": [], "cksum": "a" * 64, "features": {}, "yanked": False,
         "links": None}
    b = {**a, "vers": "1.1.0", "cksum": "b" * 64}
    body = render_lines(index_lines([_file(a), _file(b, yanked=True)]))
    parsed = [json.loads(x) for x in body.decode().splitlines()]
    assert [(p["vers"], p["yanked"]) for p in parsed] == [("1.0.0", False), ("1.1.0", True)]
    assert body.endswith(b"\n") and body.count(b"\n") == 2


def test_page_key_is_the_same_for_every_spelling():
    assert page_key("Foo_Bar") == page_key("foo-bar") == "index/fo/o-/foo-bar"
    assert page_key("ab") == "index/2/ab"


def test_lookup_version_reads_a_page_once_per_etag():
    body = b'{"name":"x1","vers":"1.0.0","cksum":"' + b"c" * 64 + b'"}\n\n{"name":"x1","vers":"2.0.0","cksum":"d"}\n'
    page = Page(1, {"text": (b'"etag-1"', body)})
    assert lookup_version(page, "unit", "1.0.0")["cksum"] == "c" * 64
    assert lookup_version(page, "unit", "2.0.0")["cksum"] == "d"
    assert lookup_version(page, "unit", "3.0.0") is None


@pytest.mark.parametrize("dl, url", [
    ("http://127.0.0.1:9/api/v1/crates", "http://127.0.0.1:9/api/v1/crates/Serde_X/1.0.0/download"),
    ("http://127.0.0.1:9/api/v1/crates/", "http://127.0.0.1:9/api/v1/crates/Serde_X/1.0.0/download"),
    ("http://127.0.0.1:9/{crate}/{version}", "http://127.0.0.1:9/Serde_X/1.0.0"),
    ("http://127.0.0.1:9/{prefix}/{lowerprefix}/{crate}-{version}.crate", "http://127.0.0.1:9/Se/rd/se/rd/Serde_X-1.0.0.crate"),
    ("http://127.0.0.1:9/c/{sha256-checksum}", "http://127.0.0.1:9/c/" + "e" * 64),
])
def test_expand_dl(dl, url):
    assert expand_dl(dl, "Serde_X", "1.0.0", "e" * 64) == url


@pytest.mark.parametrize("name, prefix", [("a", "1"), ("Ab", "2"), ("Abc", "3/A"), ("ABCD", "AB/CD")])
def test_expand_dl_prefix_of_short_names(name, prefix):
    assert expand_dl("http://127.0.0.1:9/{prefix}/{lowerprefix}", name, "1.0.0", "0" * 64) == f"http://127.0.0.1:9/{prefix}/{prefix.lower()}"


def test_parse_index_file_keeps_valid_lines_and_the_upstream_spelling():
    line = json.dumps({"name": "Serde_X", "vers": "1.0.0", "cksum": "f" * 64, "deps": []}).encode()
    body, spelled = parse_index_file(line + b"\n\n" + line + b"\n", "serde_x")
    assert spelled == "Serde_X" and body == line + b"\n" + line + b"\n"


@pytest.mark.parametrize("body, says", [
    (b"{nope\n", "not JSON"),
    (b"[1]\n", "not an object"),
    (b'{"name":"other","vers":"1.0.0","cksum":"' + b"f" * 64 + b'"}\n', "lists the crate `other`"),
    (b'{"name":"demo","vers":"1.0.0","cksum":"xyz"}\n', "no sha256 cksum"),
    (b'{"name":"demo","vers":"1.0","cksum":"' + b"f" * 64 + b'"}\n', "not a valid semver"),
    (b"\n", "is empty"),
])
def test_parse_index_file_refuses_garbage(body, says):
    with pytest.raises(UnreadableUpstream) as exc:
        parse_index_file(body, "demo")
    assert says in str(exc.value)
