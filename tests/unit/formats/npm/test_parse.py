"""wharf.formats.npm.parse: names, versions, publish documents, digests and tarballs."""

from __future__ import annotations

import copy
import gzip
import hashlib
import io
import tarfile

import pytest

from tests.support.npm_clients import pack_tarball, publish_document
from wharf.formats.npm.parse import (InvalidPackage, Limits, check_name, check_tag, check_tarball_matches,
                                     check_version, decode_attachment, is_semver, parse_integrity, parse_publish,
                                     read_tarball, semver_key, sha_digests, split_name, tarball_filename, tarball_key,
                                     verify_dist)


@pytest.mark.parametrize("name", ["lodash", "@acme/utils", "a", "my-pkg.js", "x_y", "@a.b/c-d", "a" * 214])
def test_valid_names(name):
    assert check_name(name) == name


@pytest.mark.parametrize("name, words", [
    ("", "non-empty"),
    ("Uppercase", "capital"),
    ("@Acme/x", "capital"),
    ("..", "period"),
    (".hidden", "period"),
    ("_private", "underscore"),
    ("-dash", "hyphen"),
    ("a" * 215, "214"),
    ("../etc/passwd", "URL-friendly"),
    ("a/b", "URL-friendly"),
    ("@scope/../x", "URL-friendly"),
    ("@/x", "@scope/name"),
    ("@scope/", "@scope/name"),
    ("node_modules", "not a valid"),
    (" space", "spaces"),
    ("with space", "URL-friendly"),
    ("a%2fb", "URL-friendly"),
    ("crazy!", "~'!()*"),
])
def test_invalid_names(name, words):
    with pytest.raises(InvalidPackage) as exc:
        check_name(name)
    assert words in exc.value.message
    assert exc.value.reason == "invalid-name"


def test_old_names_with_capitals_are_readable():
    assert check_name("JSONStream", new=False) == "JSONStream"
    with pytest.raises(InvalidPackage):
        check_name("JSONStream")


@pytest.mark.parametrize("v", ["1.0.0", "0.0.1", "1.2.3-beta.1", "1.0.0-rc.1+build.5", "10.20.30", "1.0.0-0A.is.legal"])
def test_semver_valid(v):
    assert is_semver(v) and check_version(v) == v


@pytest.mark.parametrize("v", ["1.0", "v1.0.0", "01.0.0", "1.0.0-", "1.0.0+", "latest", "", None, 1, "1.0.0-01",
                               "1.0.0/../../x", "1." * 200 + "0"])
def test_semver_invalid(v):
    assert not is_semver(v)
    with pytest.raises(InvalidPackage) as exc:
        check_version(v)
    assert "semver" in exc.value.message


def test_semver_order():
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
               "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0", "10.0.0"]
    assert sorted(reversed(ordered), key=semver_key) == ordered


def test_names_and_keys():
    assert split_name("@acme/x") == ("acme", "x")
    assert split_name("x") == (None, "x")
    assert tarball_filename("@acme/x", "1.0.0") == "x-1.0.0.tgz"
    assert tarball_key("@acme/x", "1.0.0") == "@acme/x/-/x-1.0.0.tgz"
    assert tarball_key("x", "2.0.0-rc.1") == "x/-/x-2.0.0-rc.1.tgz"


@pytest.mark.parametrize("tag", ["latest", "next", "beta-2", "v2-lts"])
def test_tags(tag):
    assert check_tag(tag) == tag


@pytest.mark.parametrize("tag", ["1.0.0", "v1.0.0", "", "-x", "a/b", "x" * 200, None])
def test_bad_tags(tag):
    with pytest.raises(InvalidPackage):
        check_tag(tag)


# -- publish documents -------------------------------------------------------------------------------------------
def _doc(name="@acme/pkg", version="1.0.0"):
    tgz = pack_tarball({"name": name, "version": version})
    return publish_document(name, version, tgz), tgz


def test_parse_publish_ok():
    doc, tgz = _doc()
    req = parse_publish(doc, "@acme/pkg")
    assert (req.name, req.version, req.tags, req.attachment) == ("@acme/pkg", "1.0.0", {"latest": "1.0.0"},
                                                                  "@acme/pkg-1.0.0.tgz")
    assert decode_attachment(req.data, req.length) == tgz
    verify_dist(req.manifest["dist"], sha_digests(tgz))


def _mutate(fn):
    doc, _ = _doc()
    doc = copy.deepcopy(doc)
    fn(doc)
    return doc


V = "1.0.0"
BAD_DOCS = {
    "url-name": (lambda d: d.update(name="@acme/other"), "name-mismatch"),
    "id": (lambda d: d.update(_id="x"), "name-mismatch"),
    "no-versions": (lambda d: d.update(versions={}), "no-version"),
    "two-versions": (lambda d: d["versions"].update({"2.0.0": {**d["versions"][V], "version": "2.0.0"}}),
                     "several-versions"),
    "bad-semver": (lambda d: d.update(versions={"1.0": {**d["versions"][V], "version": "1.0"}}), "invalid-version"),
    "manifest-name": (lambda d: d["versions"][V].update(name="@acme/evil"), "name-mismatch"),
    "manifest-version": (lambda d: d["versions"][V].update(version="1.0.1"), "version-mismatch"),
    "no-dist": (lambda d: d["versions"][V].pop("dist"), "no-dist"),
    "no-attachments": (lambda d: d.pop("_attachments"), "no-attachment"),
    "two-attachments": (lambda d: d["_attachments"].update({"@acme/pkg-2.0.0.tgz": d["_attachments"]["@acme/pkg-1.0.0.tgz"]}),
                        "several-attachments"),
    "attachment-name": (lambda d: d.update(_attachments={"../../x.tgz": d["_attachments"]["@acme/pkg-1.0.0.tgz"]}),
                        "name-mismatch"),
    "no-data": (lambda d: d["_attachments"]["@acme/pkg-1.0.0.tgz"].pop("data"), "no-attachment"),
    "bad-length-type": (lambda d: d["_attachments"]["@acme/pkg-1.0.0.tgz"].update(length="12"), "bad-length"),
    "tag-other-version": (lambda d: d.update({"dist-tags": {"latest": "9.9.9"}}), "bad-tag"),
    "tag-is-version": (lambda d: d.update({"dist-tags": {"1.0.0": "1.0.0"}}), "bad-tag"),
}


@pytest.mark.parametrize("case", sorted(BAD_DOCS))
def test_parse_publish_refuses(case):
    fn, reason = BAD_DOCS[case]
    with pytest.raises(InvalidPackage) as exc:
        parse_publish(_mutate(fn), "@acme/pkg")
    assert exc.value.reason == reason, exc.value.message


def test_parse_publish_not_an_object():
    with pytest.raises(InvalidPackage):
        parse_publish([1], "x")


def test_attachment_length_lies():
    doc, tgz = _doc()
    with pytest.raises(InvalidPackage) as exc:
        decode_attachment(doc["_attachments"]["@acme/pkg-1.0.0.tgz"]["data"], len(tgz) + 1)
    assert exc.value.reason == "bad-length"
    with pytest.raises(InvalidPackage) as exc:
        decode_attachment("not base64!!", None)
    assert exc.value.reason == "bad-attachment"


def test_digests():
    tgz = pack_tarball({"name": "x", "version": "1.0.0"})
    good = publish_document("x", "1.0.0", tgz)["versions"]["1.0.0"]["dist"]
    d = sha_digests(tgz)
    verify_dist(good, d)
    verify_dist({"shasum": good["shasum"]}, d)
    verify_dist({"integrity": good["integrity"]}, d)
    other = publish_document("x", "1.0.0", tgz + b"x")["versions"]["1.0.0"]["dist"]
    for dist in ({"integrity": other["integrity"]}, {"shasum": other["shasum"]},
                 {"integrity": good["integrity"], "shasum": other["shasum"]}):
        with pytest.raises(InvalidPackage) as exc:
            verify_dist(dist, d)
        assert exc.value.reason == "digest-mismatch"
    with pytest.raises(InvalidPackage):
        verify_dist({}, d)
    with pytest.raises(InvalidPackage):
        verify_dist({"integrity": "md5-AAAA"}, d)
    assert parse_integrity("sha512-" + good["integrity"][7:] + " sha1-AAA=") == {
        "sha512": [hashlib.sha512(tgz).hexdigest()], "sha1": ["0000"]}


# -- tarballs ------------------------------------------------------------------------------------------------------
def _write(tmp_path, data: bytes):
    p = tmp_path / "t.tgz"
    p.write_bytes(data)
    return str(p)


def test_read_tarball(tmp_path):
    tgz = pack_tarball({"name": "x", "version": "1.0.0"}, members=[("package/index.js", b"1")])
    pkg = read_tarball(_write(tmp_path, tgz))
    assert pkg == {"name": "x", "version": "1.0.0"}
    check_tarball_matches(pkg, "x", "1.0.0")
    with pytest.raises(InvalidPackage) as exc:
        check_tarball_matches(pkg, "y", "1.0.0")
    assert exc.value.reason == "name-mismatch"
    with pytest.raises(InvalidPackage) as exc:
        check_tarball_matches(pkg, "x", "1.0.1")
    assert exc.value.reason == "version-mismatch"


def _symlink_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        raw = b'{"name":"x","version":"1.0.0"}'
        info = tarfile.TarInfo("package/package.json")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
        link = tarfile.TarInfo("package/evil")
        link.type = tarfile.SYMTYPE
        link.linkname = "../../../etc/passwd"
        tar.addfile(link)
    return gzip.compress(buf.getvalue())


TARBALLS = {
    "truncated": (lambda: pack_tarball({"name": "x", "version": "1.0.0"}, members=[("package/a", b"a" * 5000)])[:-30],
                  "bad-tarball"),
    "not-gzip": (lambda: b"PK\x03\x04 this is a zip", "bad-tarball"),
    "gzip-not-tar": (lambda: gzip.compress(b"hello world" * 100), "bad-tarball"),
    "no-package-json": (lambda: pack_tarball(None, members=[("package/index.js", b"1")]), "no-package-json"),
    "bad-json": (lambda: pack_tarball(b"{not json"), "bad-package-json"),
    "json-array": (lambda: pack_tarball(b"[1,2]"), "bad-package-json"),
    "traversal": (lambda: pack_tarball({"name": "x", "version": "1.0.0"}, members=[("package/../../evil", b"1")]),
                  "unsafe-path"),
    "absolute": (lambda: pack_tarball({"name": "x", "version": "1.0.0"}, members=[("/etc/evil", b"1")]),
                 "unsafe-path"),
    "symlink-out": (_symlink_tar, "unsafe-path"),
}


@pytest.mark.parametrize("case", sorted(TARBALLS))
def test_bad_tarballs(tmp_path, case):
    make, reason = TARBALLS[case]
    with pytest.raises(InvalidPackage) as exc:
        read_tarball(_write(tmp_path, make()))
    assert exc.value.reason == reason, exc.value.message


def test_tar_bomb(tmp_path):
    tgz = pack_tarball({"name": "x", "version": "1.0.0"}, members=[("package/zeros", b"\0" * 2_000_000)])
    with pytest.raises(InvalidPackage) as exc:
        read_tarball(_write(tmp_path, tgz), Limits(max_unpacked=1_000_000, max_ratio=10))
    assert exc.value.reason == "tar-bomb"
