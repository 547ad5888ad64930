"""Parse and validate an uploaded Python distribution (wheel or sdist).

Pure: reads only the file it is given, no database, no HTTP. The checks follow what the
public index (Warehouse) does on upload, as a list of small named steps; every refusal is
an :class:`InvalidArtifact` carrying a short ``reason`` code (for the ``reason:`` metric tag)
and a ``message`` a person can act on.

Typical use by the upload route::

    verify_digests(form, computed)          # cheap, before opening the file
    artifact = parse_artifact(path, form["content"].filename)
    check_form(artifact, form)
"""

from __future__ import annotations

import email.parser
import email.policy
import hmac
import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from packaging.metadata import InvalidMetadata, Metadata, RawMetadata, parse_email
from packaging.utils import (
    InvalidName,
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from ._archive import ArchiveError, ZipArchive, scan_tar

__all__ = [
    "InvalidArtifact",
    "Limits",
    "PythonArtifact",
    "check_form",
    "parse_artifact",
    "parse_filename",
    "verify_digests",
]

SDIST = "sdist"
WHEEL = "bdist_wheel"
# Metadata-Version values the public index accepts (2.0 was never a real version).
_METADATA_VERSIONS = frozenset({"1.0", "1.1", "1.2", "2.1", "2.2", "2.3", "2.4", "2.5"})
_MAX_SUMMARY = 512
# Form field -> key of the ``computed`` digests mapping.
_DIGEST_FIELDS = {"md5_digest": "md5", "sha256_digest": "sha256", "blake2_256_digest": "blake2_256"}
# Email header names of core metadata fields: unparsed values of these are errors, other
# (unknown) headers are ignored. Derived from the public RawMetadata keys; the plural keys
# whose header name is singular are spelled out.
_CORE_HEADERS = frozenset(
    {key.replace("_", "-") for key in RawMetadata.__optional_keys__ | RawMetadata.__required_keys__}
    | {"classifier", "platform", "supported-platform", "project-url", "license-file", "import-name", "import-namespace"}
)


class InvalidArtifact(ValueError):
    """An upload Wharf refuses. ``reason`` is a short code, ``message`` a sentence for people."""

    reason: str
    message: str

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __reduce__(self) -> tuple[type[InvalidArtifact], tuple[str, str]]:
        return (self.__class__, (self.reason, self.message))


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource bounds for reading one upload."""

    max_uncompressed: int = 64 * 1024 * 1024  # refused if expanded size > this AND ratio > max_ratio
    max_ratio: int = 50
    max_members: int = 100_000
    max_metadata_size: int = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PythonArtifact:
    filename: str
    name: NormalizedName  # PEP 503 canonical name
    display_name: str  # Name as written in the file's metadata
    version: str  # normalized PEP 440 version
    packagetype: str  # "sdist" | "bdist_wheel"
    python_version: str  # "source" for sdists, the wheel's python tag(s) otherwise
    requires_python: str | None
    metadata_version: str
    summary: str | None
    metadata: dict[str, Any]  # JSON-serialisable, keys as in the PyPI JSON API "info"
    metadata_bytes: bytes | None  # a wheel's METADATA, served as PEP 658 ``.metadata``


class _Filename(NamedTuple):
    name: NormalizedName
    version: Version
    packagetype: str
    name_part: str  # as written in the filename
    version_part: str
    python_tag: str


# -- filename -----------------------------------------------------------------------------


def parse_filename(filename: str) -> tuple[NormalizedName, str, str]:
    """Return ``(canonical name, normalized version, packagetype)`` for an upload's filename."""
    parsed = _parse_filename(filename)
    return parsed.name, str(parsed.version), parsed.packagetype


def _parse_filename(filename: str) -> _Filename:
    if not filename or any(unicodedata.category(char) == "Cc" for char in filename):
        raise InvalidArtifact("invalid-filename", f"Filename {filename!r} is empty or contains control characters.")
    if "/" in filename or "\\" in filename:
        raise InvalidArtifact("invalid-filename", f"Filename {filename!r} must not contain '/' or '\\'.")
    if filename.endswith(".whl"):
        parsed = _parse_wheel_name(filename)
    elif filename.endswith(".tar.gz"):
        parsed = _parse_sdist_name(filename)
    elif filename.endswith(".zip"):
        raise InvalidArtifact(
            "invalid-filename", f"Filename {filename!r}: .zip sdists are no longer accepted; upload a .tar.gz sdist."
        )
    else:
        raise InvalidArtifact(
            "invalid-filename", f"Filename {filename!r} is not a wheel (.whl) or an sdist (.tar.gz)."
        )
    if parsed.version.local is not None:
        raise InvalidArtifact(
            "local-version",
            f"Filename {filename!r} has the local version {parsed.version}; "
            "local versions ('+...') cannot be uploaded to an index.",
        )
    return parsed


def _parse_wheel_name(filename: str) -> _Filename:
    parts = filename[: -len(".whl")].split("-")
    try:
        name, version, _build, _tags = parse_wheel_filename(filename)
        canonicalize_name(parts[0], validate=True)
    except (InvalidWheelFilename, InvalidName) as exc:
        raise _bad_filename(filename, "wheel", parts[0], parts[1] if len(parts) > 1 else "", exc) from exc
    return _Filename(name, version, WHEEL, parts[0], parts[1], parts[-3])


def _parse_sdist_name(filename: str) -> _Filename:
    name_part, _, version_part = filename[: -len(".tar.gz")].rpartition("-")
    try:
        name, version = parse_sdist_filename(filename)
        canonicalize_name(name_part, validate=True)
    except (InvalidSdistFilename, InvalidName) as exc:
        raise _bad_filename(filename, "sdist", name_part, version_part, exc) from exc
    return _Filename(name, version, SDIST, name_part, version_part, "source")


def _bad_filename(filename: str, kind: str, name_part: str, version_part: str, exc: Exception) -> InvalidArtifact:
    """Say which part of a filename packaging refused: the name, the version, or the shape."""
    if name_part and version_part:
        try:
            canonicalize_name(name_part, validate=True)
        except InvalidName:
            return InvalidArtifact("invalid-name", f"Filename {filename!r}: {name_part!r} is not a valid project name.")
        try:
            Version(version_part)
        except InvalidVersion:
            return InvalidArtifact(
                "invalid-version", f"Filename {filename!r}: {version_part!r} is not a valid PEP 440 version."
            )
    return InvalidArtifact("invalid-filename", f"Filename {filename!r} is not a valid {kind} filename: {exc}")


def _same_release(stem: str, parsed: _Filename) -> bool:
    """Does ``name-version`` (a directory name) denote the same release as the filename?"""
    name_part, _, version_part = stem.rpartition("-")
    try:
        return canonicalize_name(name_part) == parsed.name and Version(version_part) == parsed.version
    except InvalidVersion:
        return False


# -- archive ------------------------------------------------------------------------------


def parse_artifact(path: str, filename: str, *, limits: Limits = Limits()) -> PythonArtifact:
    """Open the uploaded bytes at ``path`` (named ``filename`` by the client) and validate them."""
    parsed = _parse_filename(filename)
    if os.path.getsize(path) == 0:
        raise InvalidArtifact("empty-file", f"The uploaded file {filename!r} is empty.")
    try:
        if parsed.packagetype == WHEEL:
            where, raw_metadata, files, license_dir = _read_wheel(path, parsed, limits)
        else:
            where, raw_metadata, files, license_dir = _read_sdist(path, parsed, limits)
    except ArchiveError as exc:
        raise InvalidArtifact(exc.reason, f"Invalid distribution file {filename!r}: {exc.message}.") from exc
    metadata, raw = _parse_metadata(raw_metadata, where, filename)
    _check_matches_filename(metadata, parsed, where, filename)
    for license_file in metadata.license_files or ():
        if license_dir + license_file not in files:
            raise InvalidArtifact(
                "missing-license-file",
                f"License-File {license_file!r} is declared in {where} but {filename!r} "
                f"has no {license_dir + license_file!r}.",
            )
    return PythonArtifact(
        filename=filename,
        name=parsed.name,
        display_name=metadata.name,
        version=str(parsed.version),
        packagetype=parsed.packagetype,
        python_version=parsed.python_tag,
        requires_python=raw.get("requires_python"),
        metadata_version=metadata.metadata_version,
        summary=raw.get("summary"),
        metadata=_info(metadata, raw),
        metadata_bytes=raw_metadata if parsed.packagetype == WHEEL else None,
    )


def _read_wheel(path: str, parsed: _Filename, limits: Limits) -> tuple[str, bytes, frozenset[str], str]:
    with ZipArchive(path, limits) as archive:
        dist_info = _find_dist_info(archive.files, parsed)
        for required in ("METADATA", "WHEEL", "RECORD"):
            if f"{dist_info}/{required}" not in archive.files:
                raise ArchiveError("missing-metadata", f"the wheel has no {dist_info}/{required}")
        metadata = archive.read(f"{dist_info}/METADATA", limits.max_metadata_size)
        wheel = archive.read(f"{dist_info}/WHEEL", limits.max_metadata_size)
        files = archive.files
    wheel_version = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(wheel).get("Wheel-Version")
    if str(wheel_version or "").strip().split(".")[0] != "1":
        raise ArchiveError(
            "invalid-metadata", f"{dist_info}/WHEEL has Wheel-Version {wheel_version!r}; only 1.x is supported"
        )
    return f"{dist_info}/METADATA", metadata, files, f"{dist_info}/licenses/"


def _find_dist_info(files: frozenset[str], parsed: _Filename) -> str:
    expected = f"{parsed.name_part}-{parsed.version_part}.dist-info"
    found = {name.split("/", 1)[0] for name in files if name.split("/", 1)[0].endswith(".dist-info")}
    if expected in found:
        return expected
    # Tolerate a wheel renamed to a normalized filename whose .dist-info kept the old spelling.
    matches = [d for d in found if _same_release(d[: -len(".dist-info")], parsed)]
    if len(matches) == 1:
        return matches[0]
    raise ArchiveError(
        "missing-metadata", f"the wheel has no {expected}/ directory (found: {', '.join(sorted(found)) or 'none'})"
    )


def _read_sdist(path: str, parsed: _Filename, limits: Limits) -> tuple[str, bytes, frozenset[str], str]:
    scan = scan_tar(path, limits)
    if len(scan.top_dirs) != 1:
        raise ArchiveError(
            "bad-archive",
            "an sdist must contain exactly one top-level directory, found " + ", ".join(map(repr, sorted(scan.top_dirs))),
        )
    (top,) = scan.top_dirs
    if not _same_release(top, parsed):
        raise ArchiveError(
            "bad-archive",
            f"its top-level directory {top!r} does not match the filename "
            f"(expected '{parsed.name_part}-{parsed.version_part}')",
        )
    if scan.pkg_info is None:
        raise ArchiveError("missing-metadata", f"the sdist has no {top}/PKG-INFO file")
    return f"{top}/PKG-INFO", scan.pkg_info, scan.files, f"{top}/"


# -- metadata -----------------------------------------------------------------------------


def _parse_metadata(data: bytes, where: str, filename: str) -> tuple[Metadata, RawMetadata]:
    """Lenient parse, then strict validation that collects every error into one message."""
    raw, unparsed = parse_email(data)
    errors = [
        InvalidMetadata(key, f"{key!r} has invalid data or appears more than once")
        for key in sorted(unparsed)
        if key in _CORE_HEADERS
    ]
    _drop_unknown_values(raw)
    if raw.get("metadata_version") in {"1.0", "1.1", "1.2", "2.1", "2.2", "2.3"}:
        # setuptools wrote License-File before Metadata-Version 2.4 defined it; ignore it there.
        raw.pop("license_files", None)
    metadata: Metadata | None = None
    try:
        metadata = Metadata.from_raw(raw, validate=True)
    except ExceptionGroup as group:
        errors.extend(exc for exc in group.exceptions if isinstance(exc, InvalidMetadata))
    if metadata is not None:
        errors.extend(_index_rules(metadata))
    if errors or metadata is None:
        detail = "; ".join(str(exc) for exc in errors)
        raise InvalidArtifact(
            "invalid-metadata", f"Invalid metadata in {where} of {filename!r}: {detail}."
        ) from ExceptionGroup("invalid metadata", errors or [InvalidMetadata("metadata", "unreadable")])
    return metadata, raw


def _drop_unknown_values(raw: RawMetadata) -> None:
    """Old tools wrote the placeholder "UNKNOWN" for empty fields; the index drops them."""
    values: dict[str, Any] = raw  # type: ignore[assignment]
    for key in list(values):
        value = values[key]
        if key in {"metadata_version", "name", "version"}:
            continue
        if isinstance(value, str) and value.strip() == "UNKNOWN":
            del values[key]
        elif isinstance(value, list):
            kept = [item for item in value if item.strip() != "UNKNOWN"]
            if kept:
                values[key] = kept
            else:
                del values[key]


def _index_rules(metadata: Metadata) -> list[InvalidMetadata]:
    """Checks the public index adds on top of the core metadata spec."""
    errors = []
    if metadata.metadata_version not in _METADATA_VERSIONS:
        errors.append(
            InvalidMetadata(
                "metadata-version",
                f"Metadata-Version {metadata.metadata_version!r} is not accepted "
                f"(use one of {', '.join(sorted(_METADATA_VERSIONS))})",
            )
        )
    if metadata.summary is not None and len(metadata.summary) > _MAX_SUMMARY:
        errors.append(InvalidMetadata("summary", f"'summary' must be {_MAX_SUMMARY} characters or less"))
    for requirement in metadata.requires_dist or ():
        if requirement.url is not None:
            errors.append(InvalidMetadata("requires-dist", f"Can't have direct dependency: {str(requirement)!r}"))
    if metadata.license is not None and metadata.license_expression is not None:
        errors.append(
            InvalidMetadata("license", "'license' and 'license-expression' are mutually exclusive; keep only the latter")
        )
    return errors


def _check_matches_filename(metadata: Metadata, parsed: _Filename, where: str, filename: str) -> None:
    if canonicalize_name(metadata.name) != parsed.name:
        raise InvalidArtifact(
            "metadata-mismatch",
            f"Name {metadata.name!r} in {where} does not match the filename {filename!r} (project {parsed.name!r}).",
        )
    if metadata.version != parsed.version:
        raise InvalidArtifact(
            "metadata-mismatch",
            f"Version {str(metadata.version)!r} in {where} does not match the filename {filename!r} "
            f"(version {str(parsed.version)!r}).",
        )


def _info(metadata: Metadata, raw: RawMetadata) -> dict[str, Any]:
    """Core metadata in the shape of the PyPI JSON API ``info`` object (raw strings, as written)."""
    keywords = raw.get("keywords")
    platforms = raw.get("platforms")
    license_expression = metadata.license_expression
    return {
        "name": metadata.name,
        "version": str(metadata.version),
        "summary": raw.get("summary"),
        "description": raw.get("description"),
        "description_content_type": raw.get("description_content_type"),
        "author": raw.get("author"),
        "author_email": raw.get("author_email"),
        "maintainer": raw.get("maintainer"),
        "maintainer_email": raw.get("maintainer_email"),
        "license": raw.get("license"),
        "license_expression": None if license_expression is None else str(license_expression),
        "license_files": list(raw["license_files"]) if "license_files" in raw else None,
        "home_page": raw.get("home_page"),
        "download_url": raw.get("download_url"),
        "keywords": ",".join(keywords) if keywords else None,
        "classifiers": list(raw.get("classifiers", [])),
        "platform": ", ".join(platforms) if platforms else None,
        "requires_dist": list(raw["requires_dist"]) if "requires_dist" in raw else None,
        "requires_python": raw.get("requires_python"),
        "project_urls": dict(raw.get("project_urls", {})),
        "provides_extra": list(raw.get("provides_extra", [])),
        "dynamic": list(raw["dynamic"]) if "dynamic" in raw else None,
    }


# -- upload form --------------------------------------------------------------------------


def check_form(artifact: PythonArtifact, form: Mapping[str, str]) -> None:
    """Check the legacy-upload form fields against the parsed file; raise on the first mismatch."""
    action = form.get(":action")
    if action != "file_upload":
        raise InvalidArtifact("bad-action", f"Unsupported ':action' {action!r}; only 'file_upload' is accepted.")
    protocol = form.get("protocol_version", "1")
    if protocol != "1":
        raise InvalidArtifact("bad-protocol", f"Unknown protocol_version {protocol!r}; only '1' is supported.")
    for field in ("name", "version", "filetype"):
        if not form.get(field):
            raise InvalidArtifact("missing-field", f"The upload form has no {field!r} field.")
    if canonicalize_name(form["name"]) != artifact.name:
        raise InvalidArtifact(
            "form-mismatch",
            f"Form name {form['name']!r} does not match the file {artifact.filename!r} (project {artifact.name!r}).",
        )
    try:
        version = Version(form["version"])
    except InvalidVersion:
        raise InvalidArtifact(
            "invalid-version", f"Form version {form['version']!r} is not a valid PEP 440 version."
        ) from None
    if version != Version(artifact.version):
        raise InvalidArtifact(
            "form-mismatch",
            f"Form version {form['version']!r} does not match the file {artifact.filename!r} "
            f"(version {artifact.version!r}).",
        )
    if form["filetype"] != artifact.packagetype:
        raise InvalidArtifact(
            "filetype-mismatch",
            f"Form filetype {form['filetype']!r} does not match the file {artifact.filename!r}, "
            f"which is a {artifact.packagetype} (accepted: {SDIST!r}, {WHEEL!r}).",
        )


def verify_digests(form: Mapping[str, str], computed: Mapping[str, str]) -> None:
    """Every digest the client supplied must match the uploaded bytes; at least one is required."""
    supplied = {field: form[field].strip() for field in _DIGEST_FIELDS if form.get(field, "").strip()}
    if not supplied:
        raise InvalidArtifact(
            "missing-digest", "Include at least one message digest (md5_digest, sha256_digest or blake2_256_digest)."
        )
    for field, value in supplied.items():
        expected = computed[_DIGEST_FIELDS[field]].lower()
        if not value.isascii() or not hmac.compare_digest(value.lower(), expected):
            raise InvalidArtifact(
                "digest-mismatch", "The digest supplied does not match a digest calculated from the uploaded file."
            )
