"""Pure parsing for generic repositories: artifact paths and checksum headers. No I/O.

A generic repository stores files under paths. A path is validated segment by segment and stored in its normal
form (no leading/trailing slash, segments joined by ``/``). The *package* of a file is its directory: the file
``tools/cli/1.4/cli-linux.tar.gz`` belongs to the package ``tools/cli/1.4`` (version ``""``); files at the root
belong to the package ``/``. Promotion, quarantine and vetting address a directory (a release) by that name.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = [
    "InvalidPath", "InvalidChecksum", "ArtifactPath", "parse_path", "parse_dir", "normalize_name", "ROOT",
    "CHECKSUM_HEADERS", "parse_checksum", "MAX_PATH", "MAX_DIR", "MAX_SEGMENT", "MAX_DEPTH",
]

ROOT = "/"  # the package name of files at the top of a repository
MAX_PATH = 500  # characters in a whole path (the database key)
MAX_DIR = 255  # characters in its directory part (the package name)
MAX_SEGMENT = 255  # UTF-8 bytes in one segment (what filesystems allow in a file name)
MAX_DEPTH = 64  # segments

# what a decoded segment may not contain: a percent-escape left over means the client encoded twice
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


class InvalidPath(ValueError):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


class InvalidChecksum(ValueError):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class ArtifactPath:
    """A validated file path: ``key`` is the normal form, ``directory`` the package name, ``filename`` the last segment."""

    key: str
    directory: str
    filename: str

    @property
    def package(self) -> str:
        return self.directory or ROOT


def _check_segment(seg: str, shown: str) -> None:
    if seg == "":
        raise InvalidPath("empty-segment", f"path '{shown}' has an empty segment ('//'); remove the extra slash")
    if seg in (".", ".."):
        raise InvalidPath("traversal", f"path '{shown}' contains a '{seg}' segment; relative segments are not allowed")
    if "\\" in seg:
        raise InvalidPath("backslash", f"path '{shown}' contains a backslash; use '/' between directories")
    for ch in seg:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") and ch != " ":
            raise InvalidPath("control-character",
                              f"path contains a control or invisible character (U+{ord(ch):04X}); "
                              "only printable characters are allowed in file names")
    if _ESCAPE.search(seg):
        raise InvalidPath("encoded", f"path '{shown}' contains a percent-escape after decoding "
                                     f"('{_ESCAPE.search(seg).group(0)}'): the URL was encoded twice")  # type: ignore[union-attr]
    if len(seg.encode("utf-8", "surrogatepass")) > MAX_SEGMENT:
        raise InvalidPath("too-long", f"a path segment is longer than {MAX_SEGMENT} bytes")


def _segments(raw: str) -> list[str]:
    shown = raw if len(raw) <= 120 else raw[:117] + "..."
    shown = "".join(c if c.isprintable() else "?" for c in shown)
    text = raw.strip("/")
    if text == "":
        return []
    if len(text) > MAX_PATH:
        raise InvalidPath("too-long", f"path is longer than {MAX_PATH} characters")
    segs = text.split("/")
    if len(segs) > MAX_DEPTH:
        raise InvalidPath("too-deep", f"path has more than {MAX_DEPTH} segments")
    for seg in segs:
        _check_segment(seg, shown)
    if segs[0].startswith("~"):
        raise InvalidPath("reserved", f"path '{shown}' starts with '~': /<repository>/~<name>/ is where snapshots "
                                      "of the repository are served; choose another top-level directory name")
    return segs


def parse_path(raw: str) -> ArtifactPath:
    """A file path as the client sent it (already percent-decoded) -> its validated normal form.

    A leading slash is ignored; a trailing slash means a directory, which is not a file path."""
    if raw.endswith("/"):
        raise InvalidPath("directory", f"'{raw[:120]}' ends with '/', which names a directory; "
                                       "give the file's full path (e.g. dir/file.tar.gz)")
    segs = _segments(raw)
    if not segs:
        raise InvalidPath("empty", "no file path given: use /<repository>/<path/to/file>")
    directory = "/".join(segs[:-1])
    if len(directory) > MAX_DIR:
        raise InvalidPath("too-long", f"the directory part of the path is longer than {MAX_DIR} characters")
    return ArtifactPath("/".join(segs), directory, segs[-1])


def parse_dir(raw: str) -> str:
    """A directory path -> its normal form ("" is the repository's root)."""
    segs = _segments(raw)
    directory = "/".join(segs)
    if len(directory) > MAX_DIR:
        raise InvalidPath("too-long", f"directory path is longer than {MAX_DIR} characters")
    return directory


def normalize_name(name: str) -> str:
    """A package name (a directory) in normal form: ``"/a//b/"`` is not valid, ``"/a/b/"`` -> ``"a/b"``,
    the root -> ``"/"``. Idempotent."""
    if name == ROOT:
        return ROOT
    return parse_dir(name) or ROOT


# -- checksum headers --------------------------------------------------------------------------------------------
# header -> (algorithm, hex length); X-Checksum-Deploy-Sha1 etc. are Artifactory's "deploy by checksum", not here
CHECKSUM_HEADERS: dict[bytes, tuple[str, int]] = {
    b"x-checksum-sha256": ("sha256", 64),
    b"x-checksum-sha1": ("sha1", 40),
    b"x-checksum-md5": ("md5", 32),
    b"x-checksum": ("sha1", 40),  # Artifactory's older name for the SHA-1 header
}
_HEX = re.compile(r"^[0-9a-fA-F]+$")


def parse_checksum(header: bytes, value: bytes) -> tuple[str, str]:
    """One checksum header -> (algorithm, lowercase hex). Wrong length or non-hex -> InvalidChecksum."""
    algorithm, length = CHECKSUM_HEADERS[header]
    text = value.decode("latin-1").strip()
    name = "-".join(p.capitalize() for p in header.decode().split("-"))
    if not _HEX.match(text):
        raise InvalidChecksum(f"header {name} is not a hexadecimal {algorithm} digest: '{text[:80]}'")
    if len(text) != length:
        raise InvalidChecksum(f"header {name} has {len(text)} hex digits; a {algorithm} digest has {length}")
    return algorithm, text.lower()
