"""Maven paths, coordinates and uploaded files: what is accepted and what is refused (with which reason)."""

import io
import zipfile

import pytest

from wharf.formats.maven import parse
from wharf.formats.maven.parse import ArtifactFile, ChecksumPath, InvalidArtifact, InvalidPath, MetadataPath


@pytest.mark.parametrize("path,expected", [
    ("com/acme/lib/1.0/lib-1.0.jar", ArtifactFile("com.acme", "lib", "1.0", "lib-1.0.jar", None, "jar")),
    ("com/acme/lib/1.0/lib-1.0.pom", ArtifactFile("com.acme", "lib", "1.0", "lib-1.0.pom", None, "pom")),
    ("com/acme/lib/1.0/lib-1.0-sources.jar",
     ArtifactFile("com.acme", "lib", "1.0", "lib-1.0-sources.jar", "sources", "jar")),
    ("com/acme/lib/1.0/lib-1.0.jar.asc", ArtifactFile("com.acme", "lib", "1.0", "lib-1.0.jar.asc", None, "jar.asc")),
    ("com/acme/lib/1.0/lib-1.0-dist.tar.gz",
     ArtifactFile("com.acme", "lib", "1.0", "lib-1.0-dist.tar.gz", "dist", "tar.gz")),
    ("org/Acme/My_Lib/2.0-rc1/My_Lib-2.0-rc1.jar",
     ArtifactFile("org.Acme", "My_Lib", "2.0-rc1", "My_Lib-2.0-rc1.jar", None, "jar")),
    ("com/acme/lib/1.0-SNAPSHOT/lib-1.0-20240101.120000-3.jar",
     ArtifactFile("com.acme", "lib", "1.0-SNAPSHOT", "lib-1.0-20240101.120000-3.jar", None, "jar", "20240101.120000", 3)),
    ("com/acme/lib/1.0-SNAPSHOT/lib-1.0-20240101.120000-12-tests.jar",
     ArtifactFile("com.acme", "lib", "1.0-SNAPSHOT", "lib-1.0-20240101.120000-12-tests.jar", "tests", "jar",
                  "20240101.120000", 12)),
    ("com/acme/lib/1.0-SNAPSHOT/lib-1.0-SNAPSHOT.jar",
     ArtifactFile("com.acme", "lib", "1.0-SNAPSHOT", "lib-1.0-SNAPSHOT.jar", None, "jar")),
    ("com/acme/lib/maven-metadata.xml", MetadataPath("com.acme", "lib", None)),
    ("com/acme/lib/1.0-SNAPSHOT/maven-metadata.xml", MetadataPath("com.acme", "lib", "1.0-SNAPSHOT")),
])
def test_layout_paths(path, expected):
    parsed = parse.parse_path(path)
    assert parsed == expected
    assert parsed.path == path


def test_artifact_properties():
    f = parse.parse_path("com/acme/lib/1.0-SNAPSHOT/lib-1.0-20240101.120000-3-sources.jar")
    assert f.name == "com.acme:lib" and f.snapshot and f.file_version == "1.0-20240101.120000-3"
    assert not parse.parse_path("com/acme/lib/1.0/lib-1.0.jar").snapshot


@pytest.mark.parametrize("alg", parse.CHECKSUMS)
def test_checksum_paths(alg):
    p = parse.parse_path(f"com/acme/lib/1.0/lib-1.0.jar.{alg}")
    assert isinstance(p, ChecksumPath) and p.algorithm == alg and p.target.filename == "lib-1.0.jar"
    m = parse.parse_path(f"com/acme/lib/maven-metadata.xml.{alg}")
    assert isinstance(m, ChecksumPath) and m.target == MetadataPath("com.acme", "lib", None)


@pytest.mark.parametrize("path", [
    "", "/etc/passwd", "com/acme/../../etc/passwd", "com/acme/lib/1.0/..", "com/./lib/1.0/lib-1.0.jar",
    "com//lib/1.0/lib-1.0.jar", "com\\acme/lib/1.0/lib-1.0.jar", "com/acme/lib/1.0/lib-1.0.jar\x00",
    "lib/1.0/lib-1.0.jar",                                  # no groupId
    "com/acme/lib/1.0/other-1.0.jar",                       # artifactId mismatch
    "com/acme/lib/1.0/lib-2.0.jar",                         # version mismatch
    "com/acme/lib/1.0/lib-1.0",                             # no extension
    "com/acme/lib/1.0/lib-1.0-.jar",                        # empty classifier
    "com/acme/lib/1.0/lib-1.0-sources",                     # classifier without extension
    "com/acme/lib/1..0/lib-1..0.jar",                       # '..' inside a segment
    "com/acme/lib/1.0 beta/lib-1.0 beta.jar",               # space in version
    "com/ac:me/lib/1.0/lib-1.0.jar",                        # bad groupId segment
    "com/acme/li$b/1.0/li$b-1.0.jar",                       # bad artifactId
    "com/acme/lib/1.0-SNAPSHOT/lib-1.0-2024.jar",           # SNAPSHOT file without timestamp-build
    "com/acme/lib/1.0/lib-1.0.jar.sha1.md5",                # checksum of a checksum
    "maven-metadata.xml", "lib/maven-metadata.xml",         # metadata without group
])
def test_refused_paths(path):
    with pytest.raises(InvalidPath):
        parse.parse_path(path)


@pytest.mark.parametrize("name,ok", [("com.acme:lib", True), ("Org.X:Y_z-1.2", True), ("lib", False),
                                     ("com.acme:", False), (":lib", False), ("com..acme:lib", False),
                                     ("com.acme:lib:1.0", False), ("com acme:lib", False)])
def test_names(name, ok):
    if ok:
        assert parse.parse_name(name) == name
    else:
        with pytest.raises(InvalidPath):
            parse.parse_name(name)


@pytest.mark.parametrize("body,alg,expected", [
    (b"d41d8cd98f00b204e9800998ecf8427e", "md5", "d41d8cd98f00b204e9800998ecf8427e"),
    (b"DA39A3EE5E6B4B0D3255BFEF95601890AFD80709  lib-1.0.jar\n", "sha1", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
])
def test_checksum_bodies(body, alg, expected):
    assert parse.parse_checksum(body, alg) == expected


@pytest.mark.parametrize("body,alg", [(b"", "sha1"), (b"xyz", "md5"), (b"d41d8cd98f00b204e9800998ecf8427e", "sha1"),
                                      (b"\xff\xfe", "sha1"), (b"g" * 40, "sha1")])
def test_bad_checksum_bodies(body, alg):
    with pytest.raises(InvalidArtifact):
        parse.parse_checksum(body, alg)


# in an XML namespace as mvn writes them (any namespace: the parser matches local names; the e2e tests deploy real POMs)
POM = b"""<?xml version="1.0"?>
<project xmlns="http://example.com/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>com.acme</groupId><artifactId>lib</artifactId><version>1.0</version></project>"""
JAR = parse.parse_path("com/acme/lib/1.0/lib-1.0.pom")


def test_pom_accepted():
    assert parse.check_pom(POM, JAR)["packaging"] == "jar"


def test_pom_inherits_group_and_version_from_parent():
    pom = (b"<project><parent><groupId>com.acme</groupId><artifactId>parent</artifactId><version>1.0</version></parent>"
           b"<artifactId>lib</artifactId></project>")
    assert parse.check_pom(pom, JAR)["groupId"] == "com.acme"


@pytest.mark.parametrize("pom,reason", [
    (b"not xml at all", "not-xml"),
    (POM[:-20], "not-xml"),
    (b"<html><body/></html>", "not-a-pom"),
    (POM.replace(b"<version>1.0", b"<version>2.0"), "pom-mismatch"),
    (POM.replace(b"<groupId>com.acme", b"<groupId>com.evil"), "pom-mismatch"),
    (POM.replace(b"<artifactId>lib", b"<artifactId>other"), "pom-mismatch"),
    (POM.replace(b"<artifactId>lib</artifactId>", b""), "pom-mismatch"),
    (b'<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x "y">]><project>&x;</project>', "xml-dtd"),
    (b'<!DOCTYPE p SYSTEM "file:///etc/passwd"><project/>', "xml-dtd"),
])
def test_pom_refused(pom, reason):
    with pytest.raises(InvalidArtifact) as exc:
        parse.check_pom(pom, JAR)
    assert exc.value.reason == reason


def _jar(tmp_path, data: bytes | None = None):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n" * 50)
        zf.writestr("a/A.class", b"\xca\xfe\xba\xbe" * 100)
    path = tmp_path / "lib-1.0.jar"
    path.write_bytes(data(buf.getvalue()) if data else buf.getvalue())
    return str(path)


def test_archive_accepted(tmp_path):
    parse.check_archive(_jar(tmp_path), parse.parse_path("com/acme/lib/1.0/lib-1.0.jar"))


@pytest.mark.parametrize("damage", [lambda b: b[: len(b) // 2], lambda b: b"PK\x03\x04garbage",
                                    lambda b: b[:60] + bytes(x ^ 0xFF for x in b[60:90]) + b[90:]],
                         ids=["truncated", "garbage", "flipped-bytes"])
def test_archive_refused(tmp_path, damage):
    with pytest.raises(InvalidArtifact) as exc:
        parse.check_archive(_jar(tmp_path, damage), parse.parse_path("com/acme/lib/1.0/lib-1.0.jar"))
    assert exc.value.reason == "corrupt-archive"
