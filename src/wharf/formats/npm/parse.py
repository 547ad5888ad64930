"""npm names, versions, publish documents and tarballs: pure validation, no I/O beyond reading a given file.

Every problem is an :class:`InvalidPackage` (a reason code for metrics + a sentence for people); the routes turn it
into a 400 and nothing is stored.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import hmac
import json
import re
import struct
import tarfile
import zlib
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import quote

__all__ = [
    "InvalidPackage", "PublishRequest", "Limits", "split_name", "check_name", "is_semver", "check_version",
    "tarball_filename", "tarball_key", "parse_publish", "decode_attachment", "verify_dist", "read_tarball",
    "parse_integrity", "ABBREVIATED_FIELDS", "abbreviate", "semver_key",
]

MAX_NAME_LENGTH = 214

_EXCLUDED = {"node_modules", "favicon.ico"}
# the part after "@scope/" (or the whole unscoped name) may only hold URL-safe characters, as npm's own validation
_URL_SAFE = re.compile(r"^[A-Za-z0-9._~!'()*-]+$")
_SPECIAL = re.compile(r"[~'!()*]")

# SemVer 2.0.0, the strict form `semver.valid()` accepts (no leading "v" or "=")
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
MAX_VERSION_LENGTH = 256

# the fields of a version in the abbreviated ("corgi") packument, as npm's registry documents them (+ newer ones
# npm 11 reads while installing: os/cpu/libc for platform checks, funding for `npm fund`)
ABBREVIATED_FIELDS = (
    "name", "version", "deprecated", "dependencies", "optionalDependencies", "devDependencies",
    "bundleDependencies", "bundledDependencies", "peerDependencies", "peerDependenciesMeta", "acceptDependencies",
    "bin", "directories", "dist", "engines", "_hasShrinkwrap", "hasInstallScript", "os", "cpu", "libc", "funding",
)


class InvalidPackage(ValueError):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class Limits:
    max_unpacked: int = 1024 * 1024 * 1024  # bytes a tarball may expand to (and ...
    max_ratio: int = 100                    # ... only beyond this compression ratio: refused when over both)
    max_members: int = 100_000
    max_package_json: int = 8 * 1024 * 1024


# -- names and versions -----------------------------------------------------------------------------------------
def split_name(name: str) -> tuple[str | None, str]:
    """``@scope/pkg`` -> ("scope", "pkg"); ``pkg`` -> (None, "pkg")."""
    if name.startswith("@") and "/" in name:
        scope, _, base = name[1:].partition("/")
        return scope, base
    return None, name


def check_name(name: Any, *, new: bool = True) -> str:
    """Raise InvalidPackage unless ``name`` is a valid npm package name (``new``: also the rules for new packages:
    no capital letters, no ``~'!()*``, at most 214 characters). Returns the name."""
    if not isinstance(name, str) or not name:
        raise InvalidPackage("invalid-name", "the package name must be a non-empty string")
    problems = []
    if name.strip() != name:
        problems.append("cannot contain leading or trailing spaces")
    if name.lower() in _EXCLUDED:
        problems.append(f"'{name}' is not a valid package name")
    scope, base = split_name(name)
    if name.startswith("@"):
        if scope is None or not scope or not base or "/" in base:
            problems.append("a scoped name has the form @scope/name")
        elif not _URL_SAFE.match(scope) or scope.startswith("."):
            problems.append("the scope may only contain URL-friendly characters and cannot start with a period")
    for part in (base,):
        if not part:
            continue
        if part.startswith("."):
            problems.append("cannot start with a period")
        if part.startswith("_"):
            problems.append("cannot start with an underscore")
        if part.startswith("-"):
            problems.append("cannot start with a hyphen")
        if part in (".", "..") or not _URL_SAFE.match(part):
            problems.append("can only contain URL-friendly characters (letters, digits, - . _ ~)")
    if new:
        if len(name) > MAX_NAME_LENGTH:
            problems.append(f"cannot be longer than {MAX_NAME_LENGTH} characters")
        if name.lower() != name:
            problems.append("cannot contain capital letters (new packages)")
        if _SPECIAL.search(base):
            problems.append("cannot contain the characters ~'!()*")
    elif len(name) > 4 * MAX_NAME_LENGTH:
        problems.append("is too long")
    if problems:
        shown = name if len(name) <= 80 else name[:77] + "..."
        raise InvalidPackage("invalid-name", f"invalid package name {shown!r}: " + "; ".join(dict.fromkeys(problems)))
    return name


_STORABLE = re.compile(r"^[A-Za-z0-9._~@/+-]+$")


def storable(name: str) -> bool:
    """Whether a (valid) name can key a stored page: old names with ``!'()*`` are not proxied or merged."""
    return _STORABLE.match(name) is not None


def is_semver(version: Any) -> bool:
    return isinstance(version, str) and len(version) <= MAX_VERSION_LENGTH and SEMVER.match(version) is not None


def check_version(version: Any) -> str:
    if not is_semver(version):
        shown = repr(version)[:80]
        raise InvalidPackage("invalid-version", f"invalid version {shown}: versions must be valid semver "
                                                "(MAJOR.MINOR.PATCH[-prerelease][+build], e.g. 1.2.3)")
    return version


def semver_key(version: str) -> tuple[Any, ...]:
    """Sort key in semver precedence (build metadata ignored); versions that do not parse sort first."""
    m = SEMVER.match(version)
    if m is None:
        return (0, version)
    pre = m.group(4)
    pre_key: tuple[Any, ...]
    if pre is None:
        pre_key = (1,)
    else:
        pre_key = (0, tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")))
    return (1, int(m.group(1)), int(m.group(2)), int(m.group(3)), pre_key)


def is_prerelease(version: str) -> bool:
    m = SEMVER.match(version)
    return bool(m and m.group(4))


def tarball_filename(name: str, version: str) -> str:
    """``@acme/pkg`` 1.0.0 -> ``pkg-1.0.0.tgz`` (the last part of the registry's tarball URL)."""
    return f"{split_name(name)[1]}-{version}.tgz"


def tarball_key(name: str, version: str) -> str:
    """The repository key of a version's tarball, also its path under ``/<repo>/``: ``@acme/pkg/-/pkg-1.0.0.tgz``."""
    return f"{name}/-/{tarball_filename(name, version)}"


def escaped(name: str) -> str:
    """How npm writes a name in a URL path: ``@acme%2fpkg``."""
    return quote(name, safe="@")


# -- publish documents ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PublishRequest:
    name: str
    version: str
    manifest: dict[str, Any]        # the version's package.json as the client sent it (dist checked separately)
    tags: dict[str, str]            # dist-tags to set to this version
    attachment: str                 # the attachment's key
    data: str                       # base64
    length: int | None              # the length the client declared


def parse_publish(doc: Any, path_name: str) -> PublishRequest:
    """Check the shape of a publish document (``PUT /<name>`` with ``_attachments``) sent for ``path_name``."""
    if not isinstance(doc, dict):
        raise InvalidPackage("bad-document", "the publish document must be a JSON object")
    name = doc.get("name")
    if name != path_name:
        raise InvalidPackage("name-mismatch", f"the document's name {str(name)[:100]!r} does not match the URL's "
                                              f"package name {path_name!r}")
    if doc.get("_id", name) != name:
        raise InvalidPackage("name-mismatch", f"the document's _id {str(doc.get('_id'))[:100]!r} is not its name")
    versions = doc.get("versions")
    if not isinstance(versions, dict) or not versions:
        raise InvalidPackage("no-version", "the publish document has no version in 'versions'")
    if len(versions) != 1:
        raise InvalidPackage("several-versions", f"publish one version at a time ({len(versions)} versions were sent)")
    (version, manifest), = versions.items()
    check_version(version)
    if not isinstance(manifest, dict):
        raise InvalidPackage("bad-document", f"versions[{version!r}] must be an object (the package.json)")
    if manifest.get("name") != name:
        raise InvalidPackage("name-mismatch", f"versions[{version!r}].name is {str(manifest.get('name'))[:100]!r}, "
                                              f"not {name!r}")
    if manifest.get("version") != version:
        raise InvalidPackage("version-mismatch", f"versions[{version!r}].version is "
                                                 f"{str(manifest.get('version'))[:100]!r}, not {version!r}")
    if manifest.get("_id", f"{name}@{version}") != f"{name}@{version}":
        raise InvalidPackage("name-mismatch", f"versions[{version!r}]._id must be '{name}@{version}'")
    if not isinstance(manifest.get("dist"), dict):
        raise InvalidPackage("no-dist", "the version has no 'dist' object (integrity and shasum of the tarball)")
    tags = doc.get("dist-tags") or {}
    if not isinstance(tags, dict) or any(not isinstance(t, str) or not isinstance(v, str) for t, v in tags.items()):
        raise InvalidPackage("bad-document", "'dist-tags' must map tag names to versions")
    for tag, v in tags.items():
        check_tag(tag)
        if v != version:
            raise InvalidPackage("bad-tag", f"dist-tag '{tag}' points to {v[:100]!r}, which is not the version "
                                            f"being published ({version})")
    attachments = doc.get("_attachments")
    if not isinstance(attachments, dict) or not attachments:
        raise InvalidPackage("no-attachment", f"the publish of {name}@{version} has no tarball in '_attachments'")
    expected = f"{name}-{version}.tgz"
    tgz = [k for k in attachments if k.endswith(".tgz")]
    others = [k for k in attachments if not k.endswith(".tgz") and k != f"{name}-{version}.sigstore"]
    if len(tgz) != 1 or others:
        raise InvalidPackage("several-attachments", f"the publish document must carry exactly one tarball "
                                                    f"attachment, '{expected}' (got: {', '.join(sorted(attachments))[:300]})")
    if tgz[0] != expected:
        raise InvalidPackage("name-mismatch", f"the attachment is named {tgz[0][:200]!r}; for {name}@{version} it "
                                              f"must be {expected!r}")
    att = attachments[expected]
    if not isinstance(att, dict) or not isinstance(att.get("data"), str) or not att["data"]:
        raise InvalidPackage("no-attachment", f"the attachment '{expected}' has no base64 'data'")
    length = att.get("length")
    if length is not None and (not isinstance(length, int) or isinstance(length, bool) or length < 0):
        raise InvalidPackage("bad-length", f"the attachment's length must be a non-negative integer, not {length!r}")
    return PublishRequest(name, version, manifest, dict(tags), expected, att["data"], length)


_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_tag(tag: Any) -> str:
    if not isinstance(tag, str) or not _TAG.match(tag) or is_semver(tag) or SEMVER.match(tag.lstrip("v=")):
        raise InvalidPackage("bad-tag", f"invalid dist-tag {str(tag)[:100]!r}: a tag is a word like 'latest', "
                                        "'next' or 'beta' (not a version)")
    return tag


def decode_attachment(data: str, declared: int | None) -> bytes:
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidPackage("bad-attachment", "the attachment's data is not valid base64")
    if declared is not None and declared != len(raw):
        raise InvalidPackage("bad-length", f"the attachment declares {declared} bytes but holds {len(raw)}")
    if not raw:
        raise InvalidPackage("empty-file", "the tarball is empty")
    return raw


def parse_integrity(value: Any) -> dict[str, list[str]]:
    """An SRI string (``sha512-<base64> sha1-<base64>``) -> {algorithm: [hex digests]}; unknown parts ignored."""
    out: dict[str, list[str]] = {}
    if not isinstance(value, str):
        return out
    for part in value.split():
        alg, sep, b64 = part.partition("-")
        if not sep or alg not in ("sha512", "sha384", "sha256", "sha1"):
            continue
        b64 = b64.split("?", 1)[0]
        try:
            out.setdefault(alg, []).append(base64.b64decode(b64, validate=True).hex())
        except (binascii.Error, ValueError):
            continue
    return out


def verify_dist(dist: Mapping[str, Any], digests: Mapping[str, str]) -> None:
    """The client's ``dist.integrity``/``dist.shasum`` must match the attachment (at least one must be given)."""
    integrity, shasum = dist.get("integrity"), dist.get("shasum")
    if integrity is None and shasum is None:
        raise InvalidPackage("no-digest", "dist.integrity or dist.shasum is required to check the tarball")
    if integrity is not None:
        parsed = parse_integrity(integrity)
        usable = {a: v for a, v in parsed.items() if a in digests}
        if not usable:
            raise InvalidPackage("bad-digest", f"dist.integrity {str(integrity)[:120]!r} has no sha512, sha256 or sha1 "
                                               "digest this registry can check")
        for alg, values in usable.items():
            if not any(hmac.compare_digest(v, digests[alg]) for v in values):
                raise InvalidPackage("digest-mismatch", f"dist.integrity does not match the attached tarball ({alg} "
                                                        f"of the tarball is {_sri(alg, digests[alg])})")
    if shasum is not None:
        if not isinstance(shasum, str) or not hmac.compare_digest(shasum.lower(), digests["sha1"]):
            raise InvalidPackage("digest-mismatch", f"dist.shasum {str(shasum)[:60]!r} does not match the attached "
                                                    f"tarball (its sha1 is {digests['sha1']})")


def _sri(alg: str, hexdigest: str) -> str:
    return f"{alg}-{base64.b64encode(bytes.fromhex(hexdigest)).decode()}"


def sri(alg: str, hexdigest: str) -> str:
    return _sri(alg, hexdigest)


# -- tarballs ---------------------------------------------------------------------------------------------------
_CORRUPT: tuple[type[BaseException], ...] = (
    OSError, EOFError, ValueError, tarfile.TarError, zlib.error, struct.error, NotImplementedError, RuntimeError,
    IndexError, KeyError, OverflowError, UnicodeError,
)


def _unsafe(path: str) -> bool:
    parts = path.replace("\\", "/").split("/")
    return (not path or "\x00" in path or path.startswith(("/", "\\")) or ".." in parts
            or (len(path) > 1 and path[1] == ":" and path[0].isalpha()))


def read_tarball(path: str, limits: Limits = Limits()) -> dict[str, Any]:
    """Check a package tarball (gzip'd tar, one top-level folder with package.json, safe member paths, bounded
    expansion) and return its package.json."""
    import os

    size = os.path.getsize(path)
    budget = max(limits.max_unpacked, limits.max_ratio * size)
    pkg: dict[str, Any] | None = None
    top: str | None = None
    members = 0
    expanded = 0
    try:
        with gzip.open(path, "rb") as gz:
            with tarfile.open(fileobj=gz, mode="r|") as tar:
                for m in tar:
                    members += 1
                    if members > limits.max_members:
                        raise InvalidPackage("too-many-files", f"the tarball has more than {limits.max_members} files")
                    if _unsafe(m.name) or (m.issym() or m.islnk()) and (_unsafe(m.linkname) or m.linkname.startswith("/")):
                        raise InvalidPackage("unsafe-path", f"the tarball member {m.name[:200]!r} has an absolute path "
                                                            "or a '..' component")
                    if m.ischr() or m.isblk() or m.isfifo() or (m.issparse() if hasattr(m, "issparse") else False):
                        raise InvalidPackage("bad-member", f"the tarball member {m.name[:200]!r} is a device, FIFO or "
                                                           "sparse file")
                    expanded += max(m.size, 0)
                    if expanded > budget:
                        raise InvalidPackage("tar-bomb", f"the tarball expands to more than {budget} bytes")
                    first, _, rest = m.name.lstrip("./").partition("/")
                    if top is None and first:
                        top = first
                    if rest == "package.json" and m.isfile() and first == top and pkg is None:
                        if m.size > limits.max_package_json:
                            raise InvalidPackage("bad-package-json", "package.json is too large")
                        fh = tar.extractfile(m)
                        raw = fh.read() if fh is not None else b""
                        try:
                            pkg = json.loads(raw.decode("utf-8-sig"))
                        except (ValueError, UnicodeError) as exc:
                            raise InvalidPackage("bad-package-json", f"package.json in the tarball is not valid JSON: "
                                                                     f"{str(exc)[:200]}")
                        if not isinstance(pkg, dict):
                            raise InvalidPackage("bad-package-json", "package.json in the tarball is not a JSON object")
                # read to the end of the compressed stream: a truncated tail is an error too
                while gz.read(1024 * 1024):
                    pass
    except InvalidPackage:
        raise
    except _CORRUPT as exc:
        raise InvalidPackage("bad-tarball", f"the tarball is not a readable .tgz (gzip'd tar): {str(exc)[:200] or type(exc).__name__}")
    if pkg is None:
        raise InvalidPackage("no-package-json", "the tarball has no package.json in its top-level folder "
                                                "(npm packs files under package/)")
    return pkg


def check_tarball_matches(pkg: Mapping[str, Any], name: str, version: str) -> None:
    if pkg.get("name") != name:
        raise InvalidPackage("name-mismatch", f"package.json in the tarball names {str(pkg.get('name'))[:100]!r}, "
                                              f"but the document publishes {name!r}")
    if pkg.get("version") != version:
        raise InvalidPackage("version-mismatch", f"package.json in the tarball has version "
                                                 f"{str(pkg.get('version'))[:100]!r}, but the document publishes {version!r}")


# -- packument shapes -------------------------------------------------------------------------------------------
def abbreviate(manifest: Mapping[str, Any]) -> dict[str, Any]:
    return {k: manifest[k] for k in ABBREVIATED_FIELDS if k in manifest}


def sha_digests(data: bytes) -> dict[str, str]:
    return {"sha512": hashlib.sha512(data).hexdigest(), "sha1": hashlib.sha1(data).hexdigest(),
            "sha256": hashlib.sha256(data).hexdigest()}
