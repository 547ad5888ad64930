"""Pure parsing and validation of Maven repository paths and uploaded files (no I/O besides the file given).

Layout: ``g/r/o/u/p/artifactId/version/artifactId-version[-classifier].extension`` plus ``.md5/.sha1/.sha256/.sha512``
checksum siblings, ``g/r/o/u/p/artifactId/maven-metadata.xml`` (artifact level) and
``.../artifactId/X-SNAPSHOT/maven-metadata.xml`` (SNAPSHOT version level). A SNAPSHOT version's files carry a
timestamp and build number instead of ``SNAPSHOT``: ``demo-1.0-20240101.120000-3.jar``.

Package names are ``groupId:artifactId``, case-sensitive as Maven coordinates are (``org.Foo:Bar`` and
``org.foo:bar`` are different packages, as on every Maven repository).
"""

from __future__ import annotations

import pyexpat
import re
import zipfile
import zlib
from dataclasses import dataclass
from typing import NewType
from xml.etree import ElementTree

__all__ = [
    "InvalidPath", "InvalidArtifact", "MavenName", "MavenPath", "ArtifactFile", "MetadataPath", "ChecksumPath",
    "parse_path", "parse_name", "check_pom", "check_archive", "parse_checksum", "parse_xml", "CHECKSUMS",
    "ZIP_EXTENSIONS", "SNAPSHOT",
]

SNAPSHOT = "-SNAPSHOT"
METADATA = "maven-metadata.xml"
CHECKSUMS = ("md5", "sha1", "sha256", "sha512")
_HEX_LEN = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
ZIP_EXTENSIONS = frozenset({"jar", "war", "ear", "aar", "zip", "rar", "sar", "hpi", "jpi", "nbm", "kar"})

# Maven's model validator: ids are [A-Za-z0-9_\-.]+ ; we also refuse leading/trailing dots and empty segments.
_ID = r"[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*"
_ID_RE = re.compile(f"^{_ID}$")
_SEGMENT_RE = re.compile(r"^[A-Za-z0-9_\-]+$")
_VERSION_RE = re.compile(r"^[A-Za-z0-9_+\-]+(?:\.[A-Za-z0-9_+\-]+)*$")
_EXT_RE = re.compile(r"^[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*$")
_CLASSIFIER_RE = re.compile(r"^[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*$")
_TIMESTAMP = r"(\d{8}\.\d{6})-(\d+)"

MavenName = NewType("MavenName", str)  # "groupId:artifactId", validated


class InvalidPath(ValueError):
    """Not a path of the Maven repository layout (answered 400 for writes, 404 for reads)."""


class InvalidArtifact(ValueError):
    """An uploaded file that does not belong at its path or is not what its extension says."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class ArtifactFile:
    group_id: str
    artifact_id: str
    version: str  # the directory version: "1.0" or "1.0-SNAPSHOT"
    filename: str
    classifier: str | None
    extension: str
    timestamp: str | None = None  # SNAPSHOT builds: "20240101.120000"
    build_number: int | None = None

    @property
    def name(self) -> MavenName:
        return MavenName(f"{self.group_id}:{self.artifact_id}")

    @property
    def path(self) -> str:
        return f"{self.group_id.replace('.', '/')}/{self.artifact_id}/{self.version}/{self.filename}"

    @property
    def snapshot(self) -> bool:
        return self.version.endswith(SNAPSHOT)

    @property
    def file_version(self) -> str:
        """The version written in the filename (a SNAPSHOT build's is timestamped)."""
        if self.timestamp is not None:
            return f"{self.version[:-len(SNAPSHOT)]}-{self.timestamp}-{self.build_number}"
        return self.version


@dataclass(frozen=True, slots=True)
class MetadataPath:
    group_id: str
    artifact_id: str
    version: str | None  # set for SNAPSHOT version-level metadata

    @property
    def name(self) -> MavenName:
        return MavenName(f"{self.group_id}:{self.artifact_id}")

    @property
    def path(self) -> str:
        base = f"{self.group_id.replace('.', '/')}/{self.artifact_id}"
        return f"{base}/{self.version}/{METADATA}" if self.version else f"{base}/{METADATA}"


@dataclass(frozen=True, slots=True)
class ChecksumPath:
    target: "ArtifactFile | MetadataPath"
    algorithm: str  # one of CHECKSUMS


MavenPath = ArtifactFile | MetadataPath | ChecksumPath


def _check_segments(path: str) -> list[str]:
    if not path or path.startswith("/") or "\\" in path or any(ord(c) < 0x20 or c == "\x7f" for c in path):
        raise InvalidPath(f"'{path}' is not a relative repository path")
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", "..") or ".." in part:
            raise InvalidPath(f"'{path}' is not a valid repository path (empty, '.' or '..' segment)")
    return parts


def parse_name(name: str) -> MavenName:
    """``groupId:artifactId`` -> itself, validated (case is kept: Maven coordinates are case-sensitive)."""
    group, sep, artifact = name.partition(":")
    if not sep or not _ID_RE.match(group) or not _ID_RE.match(artifact):
        raise InvalidPath(f"'{name}' is not a Maven package name (groupId:artifactId, letters, digits, '_', '-', '.')")
    return MavenName(name)


def _group(parts: list[str], path: str) -> str:
    if not parts:
        raise InvalidPath(f"'{path}' has no groupId directories")
    for p in parts:
        if not _SEGMENT_RE.match(p):
            raise InvalidPath(f"'{p}' in '{path}' is not a valid groupId segment (letters, digits, '_', '-')")
    return ".".join(parts)


def _artifact_id(value: str, path: str) -> str:
    if not _ID_RE.match(value):
        raise InvalidPath(f"'{value}' in '{path}' is not a valid artifactId (letters, digits, '_', '-', '.')")
    return value


def _version(value: str, path: str) -> str:
    if not _VERSION_RE.match(value) or len(value) > 128:
        raise InvalidPath(f"'{value}' in '{path}' is not a valid version (letters, digits, '.', '_', '+', '-')")
    return value


def parse_path(path: str) -> MavenPath:
    """A repository path -> what it names; raises InvalidPath for anything outside the layout."""
    parts = _check_segments(path)
    last = parts[-1]
    for alg in CHECKSUMS:
        if last.endswith("." + alg) and len(last) > len(alg) + 1:
            target = parse_path("/".join(parts[:-1] + [last[:-len(alg) - 1]]))
            if isinstance(target, ChecksumPath):
                raise InvalidPath(f"'{path}' is a checksum of a checksum")
            return ChecksumPath(target, alg)
    if last == METADATA:
        if len(parts) >= 4 and parts[-2].endswith(SNAPSHOT):
            return MetadataPath(_group(parts[:-3], path), _artifact_id(parts[-3], path), _version(parts[-2], path))
        if len(parts) < 3:
            raise InvalidPath(f"'{path}': metadata lives at <group path>/<artifactId>/{METADATA}")
        return MetadataPath(_group(parts[:-2], path), _artifact_id(parts[-2], path), None)
    if len(parts) < 4:
        raise InvalidPath(f"'{path}' is not <group path>/<artifactId>/<version>/<file>")
    group = _group(parts[:-3], path)
    artifact = _artifact_id(parts[-3], path)
    version = _version(parts[-2], path)
    return _parse_filename(group, artifact, version, last, path)


def _parse_filename(group: str, artifact: str, version: str, filename: str, path: str) -> ArtifactFile:
    expected = f"{artifact}-{version}[-classifier].extension"
    if not filename.startswith(artifact + "-"):
        raise InvalidPath(f"file name '{filename}' does not match its directory: expected {expected}")
    rest = filename[len(artifact) + 1:]
    timestamp = build = None
    if rest.startswith(version):
        rest = rest[len(version):]
    elif version.endswith(SNAPSHOT) and (m := re.match(re.escape(version[:-len(SNAPSHOT)]) + "-" + _TIMESTAMP, rest)):
        timestamp, build = m.group(1), int(m.group(2))
        rest = rest[m.end():]
    else:
        raise InvalidPath(f"file name '{filename}' does not match its directory: expected {expected}")
    classifier = None
    if rest.startswith("-"):
        classifier, dot, ext = rest[1:].partition(".")
        if not dot or not _CLASSIFIER_RE.match(classifier):
            raise InvalidPath(f"file name '{filename}' has no valid classifier and extension: expected {expected}")
    elif rest.startswith("."):
        ext = rest[1:]
    else:
        raise InvalidPath(f"file name '{filename}' does not match its directory: expected {expected}")
    if not _EXT_RE.match(ext):
        raise InvalidPath(f"file name '{filename}' has no valid extension")
    return ArtifactFile(group, artifact, version, filename, classifier, ext, timestamp, build)


def parse_checksum(body: bytes, algorithm: str) -> str:
    """The hex digest in an uploaded checksum file (``HEX`` or ``HEX  filename``), lower-cased."""
    try:
        text = body.decode("ascii").strip()
    except UnicodeDecodeError:
        text = ""
    token = text.split()[0].lower() if text else ""
    if len(token) != _HEX_LEN[algorithm] or any(c not in "0123456789abcdef" for c in token):
        raise InvalidArtifact("bad-checksum-file", f"the uploaded {algorithm} file does not hold a {algorithm} "
                                                   f"digest ({_HEX_LEN[algorithm]} hex digits)")
    return token


# -- XML ---------------------------------------------------------------------------------------------------------
def parse_xml(data: bytes, what: str) -> ElementTree.Element:
    """Parse XML refusing DTDs (so no entity expansion, no external entities); namespace prefixes dropped."""
    parser = pyexpat.ParserCreate()
    builder = ElementTree.TreeBuilder()

    def refuse(*_a: object) -> None:
        raise InvalidArtifact("xml-dtd", f"{what} must not contain a DOCTYPE or entity declarations")

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.StartElementHandler = lambda tag, attrs: builder.start(tag.rpartition(":")[2], attrs)
    parser.EndElementHandler = lambda tag: builder.end(tag.rpartition(":")[2])
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
        return builder.close()
    except (pyexpat.ExpatError, AssertionError) as exc:
        raise InvalidArtifact("not-xml", f"{what} is not well-formed XML: {exc}")


def _text(el: ElementTree.Element | None, tag: str) -> str | None:
    if el is None:
        return None
    child = el.find(tag)
    return child.text.strip() if child is not None and child.text else None


def check_pom(data: bytes, file: ArtifactFile) -> dict[str, str | None]:
    """The POM must be a Maven project whose coordinates are the path's. Returns groupId/artifactId/version/packaging.

    A coordinate given as a property expression (``${revision}``) cannot be checked without the build and is let
    through; a literal that disagrees with the path is refused."""
    root = parse_xml(data, f"the POM '{file.filename}'")
    if root.tag != "project":
        raise InvalidArtifact("not-a-pom", f"'{file.filename}' is not a Maven POM (root element <{root.tag}>, "
                                           "expected <project>)")
    parent = root.find("parent")
    found = {
        "groupId": _text(root, "groupId") or _text(parent, "groupId"),
        "artifactId": _text(root, "artifactId"),
        "version": _text(root, "version") or _text(parent, "version"),
        "packaging": _text(root, "packaging") or "jar",
    }
    expected = {"groupId": file.group_id, "artifactId": file.artifact_id, "version": file.version}
    for field, want in expected.items():
        got = found[field]
        if got is None:
            raise InvalidArtifact("pom-mismatch", f"the POM '{file.filename}' has no {field} (the path says '{want}')")
        if got != want and "${" not in got:
            raise InvalidArtifact("pom-mismatch", f"the POM's {field} '{got}' does not match the path, which says "
                                                  f"'{want}'")
    return found


def check_archive(path: str, file: ArtifactFile, *, crc_limit: int = 64 * 1024 * 1024) -> None:
    """A jar/war/... must be a readable zip (central directory intact; member CRCs checked up to ``crc_limit``)."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            total = sum(i.file_size for i in infos)
            if total <= crc_limit:
                bad = zf.testzip()
                if bad is not None:
                    raise InvalidArtifact("corrupt-archive", f"'{file.filename}' is corrupt: member '{bad}' fails its "
                                                             "CRC check")
    except InvalidArtifact:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, ValueError) as exc:
        raise InvalidArtifact("corrupt-archive", f"'{file.filename}' is not a readable {file.extension} (zip) archive "
                                                 f"(truncated or corrupt): {exc}")
