"""maven-metadata.xml: rendering, reading back (round trip), merging, checking uploads."""

import pytest

from wharf.formats.maven import metadata as md
from wharf.formats.maven.parse import InvalidArtifact, MetadataPath


def test_artifact_round_trip_and_latest_release():
    doc = md.ArtifactMetadata("com.acme", "lib", ["1.0", "1.1", "2.0-SNAPSHOT"], "20240101120000")
    body = md.render_artifact(doc)
    assert b"<latest>2.0-SNAPSHOT</latest>" in body and b"<release>1.1</release>" in body
    back = md.read_artifact_metadata(body, "test")
    assert (back.group_id, back.artifact_id, back.versions, back.last_updated) == (
        "com.acme", "lib", ["1.0", "1.1", "2.0-SNAPSHOT"], "20240101120000")


def test_only_snapshots_have_no_release():
    doc = md.ArtifactMetadata("g", "a", ["1.0-SNAPSHOT"], "20240101120000")
    assert doc.release is None and b"<release>" not in md.render_artifact(doc)


def test_snapshot_round_trip():
    doc = md.SnapshotMetadata("com.acme", "lib", "1.0-SNAPSHOT", "20240101.120000", 3, "20240101120000", [
        md.SnapshotFile(None, "jar", "1.0-20240101.120000-3", "20240101120000"),
        md.SnapshotFile("sources", "jar", "1.0-20240101.120000-3", "20240101120000"),
    ])
    back = md.read_snapshot_metadata(md.render_snapshot(doc), "test")
    assert back == doc


def test_merge_union_in_maven_order():
    a = md.ArtifactMetadata("g", "a", ["1.0", "1.10"], "20240101000000")
    b = md.ArtifactMetadata("g", "a", ["1.2", "1.0", "2.0-SNAPSHOT"], "20250101000000")
    merged = md.merge_artifact("g", "a", [a, b])
    assert merged.versions == ["1.0", "1.2", "1.10", "2.0-SNAPSHOT"]
    assert (merged.latest, merged.release, merged.last_updated) == ("2.0-SNAPSHOT", "1.10", "20250101000000")


def test_checksum_variants():
    v = md.checksum_variants(b"abc")
    assert v["sha1"] == b"a9993e364706816aba3e25717850c26c9cd0d89d" and v["xml"] == b"abc" and len(v["sha512"]) == 128


AT = MetadataPath("com.acme", "lib", None)


def test_uploaded_metadata_accepted():
    md.check_uploaded(md.render_artifact(md.ArtifactMetadata("com.acme", "lib", ["1.0"], "1")), AT)


@pytest.mark.parametrize("body", [b"nope", b"<project/>", b"<metadata><groupId>com.evil</groupId></metadata>",
                                  b"<metadata><artifactId>other</artifactId></metadata>", b"<metadata/>"])
def test_uploaded_metadata_refused(body):
    with pytest.raises(InvalidArtifact):
        md.check_uploaded(body, AT)


def test_uploaded_snapshot_metadata_version_must_match():
    at = MetadataPath("com.acme", "lib", "1.0-SNAPSHOT")
    with pytest.raises(InvalidArtifact):
        md.check_uploaded(b"<metadata><groupId>com.acme</groupId><artifactId>lib</artifactId>"
                          b"<version>2.0-SNAPSHOT</version></metadata>", at)
