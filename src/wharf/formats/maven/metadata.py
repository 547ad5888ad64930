"""``maven-metadata.xml``: rendered by the server from what is stored, read from uploads and upstreams, merged.

Artifact level (``g/a/maven-metadata.xml``): every version in Maven order, ``latest`` (highest, SNAPSHOTs included),
``release`` (highest non-SNAPSHOT), ``lastUpdated``. SNAPSHOT version level (``g/a/1.0-SNAPSHOT/maven-metadata.xml``):
the newest build (``snapshot/timestamp`` + ``buildNumber``) and, per classifier and extension, the newest file
(``snapshotVersions``), which is what Maven resolves ``1.0-SNAPSHOT`` to.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Iterable
from xml.sax.saxutils import escape

from .parse import SNAPSHOT, InvalidArtifact, MetadataPath, parse_xml
from .versions import sort_versions

__all__ = ["ArtifactMetadata", "SnapshotMetadata", "SnapshotFile", "render_artifact", "render_snapshot",
           "read_artifact_metadata", "read_snapshot_metadata", "merge_artifact", "check_uploaded", "checksum_variants"]


@dataclass(slots=True)
class ArtifactMetadata:
    group_id: str
    artifact_id: str
    versions: list[str]  # Maven order, oldest first
    last_updated: str  # yyyyMMddHHmmss (UTC)

    @property
    def latest(self) -> str | None:
        return self.versions[-1] if self.versions else None

    @property
    def release(self) -> str | None:
        return next((v for v in reversed(self.versions) if not v.endswith(SNAPSHOT)), None)


@dataclass(frozen=True, slots=True)
class SnapshotFile:
    classifier: str | None
    extension: str
    value: str  # "1.0-20240101.120000-3"
    updated: str  # yyyyMMddHHmmss


@dataclass(slots=True)
class SnapshotMetadata:
    group_id: str
    artifact_id: str
    version: str  # "1.0-SNAPSHOT"
    timestamp: str | None  # newest build "20240101.120000" (None: only non-unique "-SNAPSHOT" files)
    build_number: int | None
    last_updated: str
    files: list[SnapshotFile] = field(default_factory=list)


def _el(tag: str, value: str | None, indent: str) -> str:
    return f"{indent}<{tag}>{escape(value)}</{tag}>\n" if value is not None else ""


def render_artifact(md: ArtifactMetadata) -> bytes:
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<metadata>\n',
           _el("groupId", md.group_id, "  "), _el("artifactId", md.artifact_id, "  "),
           "  <versioning>\n", _el("latest", md.latest, "    "), _el("release", md.release, "    "),
           "    <versions>\n"]
    out.extend(_el("version", v, "      ") for v in md.versions)
    out += ["    </versions>\n", _el("lastUpdated", md.last_updated, "    "), "  </versioning>\n</metadata>\n"]
    return "".join(out).encode()


def render_snapshot(md: SnapshotMetadata) -> bytes:
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<metadata modelVersion="1.1.0">\n',
           _el("groupId", md.group_id, "  "), _el("artifactId", md.artifact_id, "  "),
           _el("version", md.version, "  "), "  <versioning>\n"]
    if md.timestamp is not None:
        out += ["    <snapshot>\n", _el("timestamp", md.timestamp, "      "),
                _el("buildNumber", str(md.build_number), "      "), "    </snapshot>\n"]
    else:
        out += ["    <snapshot>\n      <localCopy>true</localCopy>\n    </snapshot>\n"]
    out += [_el("lastUpdated", md.last_updated, "    "), "    <snapshotVersions>\n"]
    for f in md.files:
        out += ["      <snapshotVersion>\n", _el("classifier", f.classifier, "        "),
                _el("extension", f.extension, "        "), _el("value", f.value, "        "),
                _el("updated", f.updated, "        "), "      </snapshotVersion>\n"]
    out += ["    </snapshotVersions>\n  </versioning>\n</metadata>\n"]
    return "".join(out).encode()


def checksum_variants(body: bytes, variant: str = "xml") -> dict[str, bytes]:
    """A metadata document and its checksum files, as the variants of one page."""
    out = {variant: body}
    for alg in ("md5", "sha1", "sha256", "sha512"):
        out[alg] = hashlib.new(alg, body).hexdigest().encode()
    return out


def _text(el, tag: str) -> str | None:  # type: ignore[no-untyped-def]
    if el is None:
        return None
    child = el.find(tag)
    return child.text.strip() if child is not None and child.text and child.text.strip() else None


def read_artifact_metadata(data: bytes, where: str) -> ArtifactMetadata:
    """Versions and lastUpdated of an artifact-level document (an upstream's or a member's)."""
    root = parse_xml(data, where)
    if root.tag != "metadata":
        raise InvalidArtifact("not-metadata", f"{where} is not Maven metadata (root <{root.tag}>)")
    versioning = root.find("versioning")
    versions = [v.text.strip() for v in (versioning.iter("version") if versioning is not None else [])
                if v.text and v.text.strip()]
    return ArtifactMetadata(_text(root, "groupId") or "", _text(root, "artifactId") or "", sort_versions(versions),
                            _text(versioning, "lastUpdated") or "")


def read_snapshot_metadata(data: bytes, where: str) -> SnapshotMetadata:
    root = parse_xml(data, where)
    if root.tag != "metadata":
        raise InvalidArtifact("not-metadata", f"{where} is not Maven metadata (root <{root.tag}>)")
    versioning = root.find("versioning")
    snap = versioning.find("snapshot") if versioning is not None else None
    build = _text(snap, "buildNumber")
    files = []
    svs = versioning.find("snapshotVersions") if versioning is not None else None
    for sv in (svs.findall("snapshotVersion") if svs is not None else []):
        ext, value = _text(sv, "extension"), _text(sv, "value")
        if ext and value:
            files.append(SnapshotFile(_text(sv, "classifier"), ext, value, _text(sv, "updated") or ""))
    return SnapshotMetadata(_text(root, "groupId") or "", _text(root, "artifactId") or "", _text(root, "version") or "",
                            _text(snap, "timestamp"), int(build) if build and build.isdigit() else None,
                            _text(versioning, "lastUpdated") or "", files)


def check_uploaded(data: bytes, at: MetadataPath) -> None:
    """An uploaded ``maven-metadata.xml`` must be metadata for the coordinates of its path (it is then not stored:
    the server serves its own rendering)."""
    where = f"the uploaded {at.path}"
    root = parse_xml(data, where)
    if root.tag != "metadata":
        raise InvalidArtifact("not-metadata", f"{where} is not Maven metadata (root element <{root.tag}>)")
    group, artifact, version = _text(root, "groupId"), _text(root, "artifactId"), _text(root, "version")
    if group is not None and group != at.group_id:
        raise InvalidArtifact("metadata-mismatch", f"{where} names groupId '{group}', the path says '{at.group_id}'")
    if artifact is not None and artifact != at.artifact_id:
        raise InvalidArtifact("metadata-mismatch",
                              f"{where} names artifactId '{artifact}', the path says '{at.artifact_id}'")
    if at.version is not None and version is not None and version != at.version:
        raise InvalidArtifact("metadata-mismatch", f"{where} names version '{version}', the path says '{at.version}'")
    if group is None and artifact is None and root.find("plugins") is None:
        raise InvalidArtifact("metadata-mismatch", f"{where} names neither groupId nor artifactId")


def merge_artifact(group_id: str, artifact_id: str, docs: Iterable[ArtifactMetadata]) -> ArtifactMetadata:
    """The union of members' versions (Maven order); latest/release follow from it; the newest lastUpdated."""
    docs = list(docs)
    versions = sort_versions(v for d in docs for v in d.versions)
    last = max((d.last_updated for d in docs if d.last_updated), default="")
    return ArtifactMetadata(group_id, artifact_id, versions, last)
