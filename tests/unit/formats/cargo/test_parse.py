"""wharf.formats.cargo.parse: names, semver, the publish framing, metadata, the .crate file, index entries."""

from __future__ import annotations

import io
import json
import random
import struct

import pytest

from tests.support.cargo_crates import crate_bytes, malformed_publishes, manifest, metadata, publish_body
from wharf.formats.cargo.parse import (
    InvalidCrate, Limits, PublishFrame, check_crate_file, check_metadata, index_entry, index_path, normalize_name,
    parse_semver, semver_key, validate_name,
)


@pytest.mark.parametrize("name", ["a", "serde", "Cap_Demo", "foo-bar_baz", "x" * 64, "A1"])
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name, says", [
    ("", "empty"), ("1abc", "first character"), ("-abc", "first character"), ("_abc", "first character"),
    ("ab.c", "invalid character"), ("ab c", "invalid character"), ("ábc", "first character"),
    ("abé", "invalid character"), ("a" * 65, "too long"), ("nul", "reserved"), ("COM1", "reserved"), (None, "missing"),
])
def test_invalid_names(name, says):
    with pytest.raises(InvalidCrate) as exc:
        validate_name(name)
    assert exc.value.reason == "invalid-name" and says in exc.value.message


@pytest.mark.parametrize("a, b", [("Foo_Bar", "foo-bar"), ("foo-bar", "FOO_BAR"), ("serde", "Serde")])
def test_normalize_name_equates_case_and_separators(a, b):
    assert normalize_name(a) == normalize_name(b)


def test_normalize_name_keeps_other_names_apart():
    assert normalize_name("foobar") != normalize_name("foo-bar")


@pytest.mark.parametrize("name, path", [
    ("a", "1/a"), ("AB", "2/ab"), ("abc", "3/a/abc"), ("Cap_Demo", "ca/p_/cap_demo"), ("serde", "se/rd/serde"),
    ("abcd", "ab/cd/abcd"),
])
def test_index_path(name, path):
    assert index_path(name) == path


@pytest.mark.parametrize("version", ["0.0.0", "1.2.3", "1.0.0-alpha.1", "1.0.0+build.5", "1.0.0-rc.1+x-y",
                                     "10.20.30", "1.0.0-0A.is.legal"])
def test_valid_semver(version):
    assert parse_semver(version)


@pytest.mark.parametrize("version", ["1.0", "1", "01.0.0", "1.0.0-", "1.0.0+", "1.0.0-01", "v1.0.0", "1.0.0 ",
                                     "１.0.0", "", "1.0.0-a..b"])
def test_invalid_semver(version):
    with pytest.raises(InvalidCrate) as exc:
        parse_semver(version)
    assert exc.value.reason == "invalid-version"


def test_semver_ordering_follows_semver_org():
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
               "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "2.0.0"]
    shuffled = ordered[:]
    random.Random(4).shuffle(shuffled)
    assert sorted(shuffled, key=semver_key) == ordered


def test_build_metadata_is_ignored_for_identity():
    assert parse_semver("1.0.0+a").without_build == parse_semver("1.0.0+b").without_build == "1.0.0"
    assert parse_semver("1.0.0-rc.1+a").without_build == "1.0.0-rc.1"


# -- framing ---------------------------------------------------------------------------------------------------


def _frame(body: bytes, chunk: int, max_crate: int = 10_000_000, declared: bool = True) -> tuple[PublishFrame, bytes]:
    out = io.BytesIO()
    frame = PublishFrame(out.write, max_json=1_000_000, max_crate=max_crate, declared=len(body) if declared else None)
    for i in range(0, len(body), chunk):
        frame.feed(body[i:i + chunk])
    frame.finish()
    return frame, out.getvalue()


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1 << 20])
def test_frame_splits_json_and_crate_in_any_chunking(chunk):
    crate = crate_bytes("demo", "1.0.0")
    meta = metadata("demo", "1.0.0")
    frame, got = _frame(publish_body(meta, crate), chunk)
    assert json.loads(frame.json_bytes) == meta
    assert got == crate


@pytest.mark.parametrize("case", malformed_publishes("framed")[:6], ids=lambda c: c.id)
def test_frame_refuses_lying_lengths(case):
    with pytest.raises(InvalidCrate) as exc:
        frame, _ = _frame(case.body, 5)
        check_metadata(frame.json_bytes)
    assert case.says in exc.value.message


@pytest.mark.parametrize("cut, says", [(2, "too short"), (30, "inside the JSON"), (-10, "ended after")])
def test_frame_without_content_length_notices_a_short_body(cut, says):
    """Chunked requests have no Content-Length: truncation shows up at the end."""
    body = publish_body(metadata("demo", "1.0.0"), crate_bytes("demo", "1.0.0"))
    with pytest.raises(InvalidCrate) as exc:
        _frame(body[:cut], 7, declared=False)
    assert says in exc.value.message


def test_frame_without_content_length_refuses_trailing_bytes():
    body = publish_body(metadata("demo", "1.0.0"), crate_bytes("demo", "1.0.0")) + b"junk"
    with pytest.raises(InvalidCrate) as exc:
        _frame(body, 7, declared=False)
    assert "after the .crate" in exc.value.message


def test_frame_refuses_crate_over_limit_before_reading_it():
    body = publish_body(metadata("demo", "1.0.0"), b"x" * 10, crate_len=5000)
    seen = []
    frame = PublishFrame(seen.append, max_json=1000, max_crate=1000)
    with pytest.raises(InvalidCrate) as exc:
        frame.feed(body)
    assert exc.value.status == 413 and seen == []


def test_frame_refuses_huge_json_length():
    frame = PublishFrame(lambda b: None, max_json=1000, max_crate=1000)
    with pytest.raises(InvalidCrate) as exc:
        frame.feed(struct.pack("<I", 2**31))
    assert exc.value.status == 413


# -- metadata and index entry --------------------------------------------------------------------------------

CAPTURED = {  # what cargo 1.95 sent for a crate with a renamed, optional dependency and dep:/?/ features
    "name": "Cap_Demo", "vers": "0.1.0+build5",
    "deps": [{"optional": True, "default_features": False, "name": "real-other", "features": ["x"],
              "version_req": "^1.2", "target": None, "kind": "normal", "explicit_name_in_toml": "other"}],
    "features": {"default": [], "f2": ["other?/x"], "feat": ["dep:other"], "plain": []},
    "authors": [], "description": "demo", "documentation": None, "homepage": None, "readme": None,
    "readme_file": None, "keywords": [], "categories": [], "license": "MIT", "license_file": None,
    "repository": None, "badges": {}, "links": None, "rust_version": "1.70",
}


def test_index_entry_translates_publish_metadata():
    meta = check_metadata(json.dumps(CAPTURED).encode())
    entry = index_entry(meta, "ab" * 32)
    assert entry == {
        "name": "Cap_Demo", "vers": "0.1.0+build5",
        "deps": [{"name": "other", "req": "^1.2", "features": ["x"], "optional": True, "default_features": False,
                  "target": None, "kind": "normal", "package": "real-other"}],
        "cksum": "ab" * 32, "features": {"default": [], "plain": []}, "yanked": False, "links": None,
        "features2": {"f2": ["other?/x"], "feat": ["dep:other"]}, "v": 2, "rust_version": "1.70",
    }


def test_index_entry_plain_dependency_keeps_its_name_and_registry():
    meta = metadata("demo", "1.0.0", deps=[{"name": "base", "version_req": "^0.1", "features": [],
                                            "optional": False, "default_features": True, "target": "cfg(unix)",
                                            "kind": "dev", "registry": "sparse+http://127.0.0.1:1/other/index/"}])
    entry = index_entry(check_metadata(json.dumps(meta).encode()), "0" * 64)
    dep = entry["deps"][0]
    assert dep["name"] == "base" and "package" not in dep and dep["kind"] == "dev" and dep["target"] == "cfg(unix)"
    assert dep["registry"].endswith("/other/index/")
    assert "v" not in entry and "features2" not in entry and "rust_version" not in entry


@pytest.mark.parametrize("mutate, says", [
    (lambda m: m.update(rust_version="latest"), "rust_version"),
    (lambda m: m.update(features={"x": "dep:y"}), "feature `x`"),
    (lambda m: m.update(features={"bad name": []}), "invalid feature name"),
    (lambda m: m.update(deps=[{"name": "ok", "version_req": "^1; rm -rf"}]), "invalid version requirement"),
    (lambda m: m.update(deps=[{"name": "ok", "version_req": "^1", "optional": "yes"}]), "true or false"),
    (lambda m: m.update(deps=[{"name": "1bad", "version_req": "^1"}]), "dependency name"),
    (lambda m: m.update(keywords="a,b"), "`keywords`"),
    (lambda m: m.update(links=5), "`links`"),
])
def test_invalid_metadata(mutate, says):
    meta = metadata("demo", "1.0.0")
    mutate(meta)
    with pytest.raises(InvalidCrate) as exc:
        check_metadata(json.dumps(meta).encode())
    assert says in exc.value.message


# -- the .crate ----------------------------------------------------------------------------------------------


def test_check_crate_file_accepts_a_good_crate(tmp_path):
    path = tmp_path / "demo.crate"
    path.write_bytes(crate_bytes("Demo_x", "1.0.0-rc.1", toml=manifest("Demo_x", "1.0.0-rc.1", 'license = "MIT"\n')))
    toml = check_crate_file(str(path), "Demo_x", "1.0.0-rc.1")
    assert toml["package"]["license"] == "MIT"


@pytest.mark.parametrize("case", [c for c in malformed_publishes("demo") if c.id.startswith(
    ("crate-", "empty-crate", "name-mismatch", "version-mismatch", "wrong-top", "no-cargo", "bad-toml", "path-",
     "absolute", "symlink"))], ids=lambda c: c.id)
def test_check_crate_file_refuses_corpus(tmp_path, case):
    out = io.BytesIO()
    frame = PublishFrame(out.write, max_json=1 << 20, max_crate=1 << 24, declared=len(case.body))
    with pytest.raises(InvalidCrate) as exc:
        frame.feed(case.body)
        frame.finish()
        meta = check_metadata(frame.json_bytes)
        path = tmp_path / "c.crate"
        path.write_bytes(out.getvalue())
        check_crate_file(str(path), meta["name"], meta["vers"])
    assert case.says in exc.value.message, exc.value.message


def test_check_crate_file_refuses_decompression_bomb(tmp_path):
    path = tmp_path / "bomb.crate"
    path.write_bytes(crate_bytes("demo", "1.0.0", files={"big": b"\0" * 3_000_000}))
    with pytest.raises(InvalidCrate) as exc:
        check_crate_file(str(path), "demo", "1.0.0", limits=Limits(max_unpacked=1_000_000))
    assert "expands to more than" in exc.value.message


def test_malformed_corpus_ids_are_unique():
    ids = [c.id for c in malformed_publishes("demo")]
    assert len(ids) == len(set(ids))
