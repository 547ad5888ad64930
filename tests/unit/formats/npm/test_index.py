"""Packument rendering, per-request host substitution, dist-tag rules, upstream packument parsing, the preset."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from wharf.core.proxying import UnreadableUpstream
from wharf.formats.npm import NpmFormat
from wharf.formats.npm.index import clean_tags, localize, pick_latest, render_packument, tarball_path
from wharf.formats.npm.proxy import parse_upstream_packument
from wharf.formats.npm.routes import split_package_path, wants_abbreviated


def _versions(name, *vs, **extra):
    return {v: {"name": name, "version": v, "dependencies": {"x": "^1"}, "readme": "long", "scripts": {"t": "x"},
                "dist": {"integrity": "sha512-AAAA", "shasum": "00", "tarball": tarball_path(name, v)}, **extra}
            for v in vs}


def test_render_full_and_abbreviated():
    out = render_packument("@acme/x", _versions("@acme/x", "1.0.0", "1.1.0", "2.0.0-rc.1"),
                           {"1.0.0": "2026-01-01T00:00:00.000Z", "1.1.0": "2026-02-01T00:00:00.000Z"},
                           {"next": "2.0.0-rc.1", "gone": "9.9.9"}, "3-abc")
    full, abbr = json.loads(out["full"]), json.loads(out["abbr"])
    assert full["dist-tags"] == {"latest": "1.1.0", "next": "2.0.0-rc.1"}  # latest: highest release; dangling dropped
    assert full["_rev"] == "3-abc" and full["time"]["created"] == "2026-01-01T00:00:00.000Z"
    assert full["time"]["modified"] == "2026-02-01T00:00:00.000Z"
    assert set(abbr) == {"name", "modified", "dist-tags", "versions"}
    assert set(abbr["versions"]["1.0.0"]) == {"name", "version", "dependencies", "dist"}  # no readme, no scripts
    assert abbr["versions"]["1.0.0"]["dist"]["tarball"] == "/@acme/x/-/x-1.0.0.tgz"


def test_localize_rewrites_only_tarball_urls_and_varies_the_etag():
    body = render_packument("x", _versions("x", "1.0.0", description='"tarball":"/evil'), {}, {}, "1")["full"]
    etag = b'"0123456789abcdef0123456789abcdef"'
    tag_a, a = localize(etag, body, b"http://a.example.com:1/repo")
    tag_b, b = localize(etag, body, b"https://b.example.com/wharf/group")
    assert tag_a != tag_b and tag_a.startswith(b'"0123') and tag_a.endswith(b'"')
    assert json.loads(a)["versions"]["1.0.0"]["dist"]["tarball"] == "http://a.example.com:1/repo/x/-/x-1.0.0.tgz"
    assert json.loads(b)["versions"]["1.0.0"]["dist"]["tarball"] == "https://b.example.com/wharf/group/x/-/x-1.0.0.tgz"
    assert json.loads(a)["versions"]["1.0.0"]["description"] == '"tarball":"/evil'  # user text is JSON-escaped
    big = render_packument("y", _versions("y", *[f"1.0.{i}" for i in range(400)]), {}, {}, "1")["full"]
    assert len(big) > 16 * 1024
    first = localize(b'"e"', big, b"http://h.example.com")
    assert localize(b'"e"', big, b"http://h.example.com") is first  # memoised
    assert json.loads(first[1])["versions"]["1.0.399"]["dist"]["tarball"] == "http://h.example.com/y/-/y-1.0.399.tgz"


@pytest.mark.parametrize("versions, proposed, want", [
    (["1.0.0", "2.0.0-beta.1"], None, "1.0.0"),
    (["2.0.0-beta.1", "2.0.0-beta.2"], None, "2.0.0-beta.2"),
    (["1.0.0", "1.10.0", "1.9.0"], None, "1.10.0"),
    (["1.0.0", "2.0.0"], "1.0.0", "1.0.0"),
    (["1.0.0"], "3.0.0", "1.0.0"),
    ([], None, None),
])
def test_pick_latest(versions, proposed, want):
    assert pick_latest(versions, proposed) == want


def test_clean_tags():
    assert clean_tags({"beta": "2.0.0", "latest": "9.9.9", "x": 5}, ["1.0.0", "2.0.0"]) == {"latest": "2.0.0",
                                                                                            "beta": "2.0.0"}
    assert clean_tags({"beta": "1.0.0"}, []) == {}


@pytest.mark.parametrize("subpath, want", [
    ("lodash", ("lodash", [])),
    ("@acme/x", ("@acme/x", [])),
    ("@acme/x/", ("@acme/x", [])),
    ("@acme/x/-/x-1.0.0.tgz", ("@acme/x", ["-", "x-1.0.0.tgz"])),
    ("x/-rev/3-abc", ("x", ["-rev", "3-abc"])),
    ("x/1.0.0", ("x", ["1.0.0"])),
])
def test_split_package_path(subpath, want):
    assert split_package_path(subpath) == want


def test_accept():
    assert wants_abbreviated(b"application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*")
    assert not wants_abbreviated(b"application/json")
    assert not wants_abbreviated(None)


def test_parse_upstream_packument():
    doc = {"name": "up", "_rev": "9-x", "dist-tags": {"latest": "1.1.0"}, "time": {"1.0.0": "T1"}, "versions": {
        "1.0.0": {"name": "up", "version": "1.0.0",
                  "dist": {"integrity": "sha512-" + "A" * 86 + "==", "tarball": "https://elsewhere.example.com/up/-/up-1.0.0.tgz"}},
        "1.1.0": {"name": "up", "version": "1.1.0", "dist": {"shasum": "a" * 40, "tarball": "../up-1.1.0.tgz"}},
        "1.2.0": {"name": "up", "version": "1.2.0", "dist": {"tarball": "https://elsewhere.example.com/x.tgz"}},   # no digest
        "not-semver": {"name": "up", "version": "not-semver", "dist": {"shasum": "a" * 40, "tarball": "t"}},
    }}
    variants, meta = parse_upstream_packument("up", json.dumps(doc).encode(), "http://127.0.0.1:1/reg/up")
    full = json.loads(variants["full"])
    assert sorted(full["versions"]) == ["1.0.0", "1.1.0"]
    assert full["versions"]["1.1.0"]["dist"]["tarball"] == "/up/-/up-1.1.0.tgz"
    src = meta["upstream"]
    assert src["up-1.0.0.tgz"] == ["https://elsewhere.example.com/up/-/up-1.0.0.tgz", {"sha512": "00" * 64}, "1.0.0"]
    assert src["up-1.1.0.tgz"] == ["http://127.0.0.1:1/up-1.1.0.tgz", {"sha1": "a" * 40}, "1.1.0"]
    for bad in (b"<html>", b"[1]", json.dumps({"name": "other", "versions": {}}).encode()):
        with pytest.raises(UnreadableUpstream):
            parse_upstream_packument("up", bad, "http://127.0.0.1:1/")


def test_config_validation():
    fmt = NpmFormat()
    assert fmt.validate_config("hosted", {}) == {}
    assert fmt.validate_config("hosted", {"unpublish": "write"}) == {"unpublish": "write"}
    from wharf.core.errors import InvalidInput
    for kind, cfg in (("hosted", {"unpublish": "sometimes"}), ("proxy", {"unpublish": "admin"}), ("hosted", {"x": 1})):
        with pytest.raises(InvalidInput):
            fmt.validate_config(kind, cfg)


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm not installed")
def test_preset_asks_npm_for_its_default_registry(monkeypatch):
    monkeypatch.delenv("WHARF_PRESET_NPM", raising=False)
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/not-the-default/")  # ignored: npm_config_* dropped
    url = NpmFormat().upstream_preset("npm")
    assert url is not None and url.startswith("https://") and url.endswith("/") and "127.0.0.1" not in url
    monkeypatch.setenv("WHARF_PRESET_NPM", "http://127.0.0.1:9/x/")
    assert NpmFormat().upstream_preset("npm") == "http://127.0.0.1:9/x/"
    assert NpmFormat().upstream_preset("pypi") is None
    assert os.environ["npm_config_registry"]  # untouched
