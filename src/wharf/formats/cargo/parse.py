"""Parse and validate what ``cargo publish`` sends, and translate it into a sparse-index entry.

Pure: no database, no HTTP. Every refusal is an :class:`InvalidCrate` with a short ``reason`` code (metrics tag)
and a ``message`` a person can act on; the routes answer it in cargo's error shape ``{"errors":[{"detail"}]}``.

The publish body (cargo's registry web API)::

    u32 LE  json length | JSON metadata | u32 LE  crate length | .crate bytes (a .tar.gz)

:class:`PublishFrame` reads that framing incrementally (the .crate part is streamed to a blob writer),
:func:`check_metadata` validates the JSON, :func:`check_crate_file` opens the tarball and compares its
``<name>-<version>/Cargo.toml`` with the metadata, and :func:`index_entry` builds the index line.
"""

from __future__ import annotations

import gzip
import json
import re
import struct
import tarfile
import tomllib
import zlib
from dataclasses import dataclass
from typing import Any, Callable, NewType

__all__ = [
    "CrateName", "InvalidCrate", "Limits", "PublishFrame", "Semver", "check_crate_file", "check_metadata",
    "index_entry", "index_path", "normalize_name", "parse_semver", "validate_name",
]

CrateName = NewType("CrateName", str)  # lower case, '_' written as '-': how names are stored and compared

_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}", re.ASCII)
MAX_NAME = 64
# Names Windows cannot create as files (cargo refuses them too): a crate called `nul` would break checkouts.
_RESERVED = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))})
# semver.org's regular expression (ASCII digits only)
_SEMVER_RE = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?", re.ASCII)
_DEP_KINDS = ("normal", "dev", "build")
_FEATURE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_+.:/?-]*", re.ASCII)


class InvalidCrate(ValueError):
    """A publish Wharf refuses. ``reason`` is a short code, ``message`` a sentence for people."""

    def __init__(self, reason: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status

    def __reduce__(self) -> tuple[type["InvalidCrate"], tuple[str, str, int]]:
        return (self.__class__, (self.reason, self.message, self.status))


@dataclass(frozen=True, slots=True)
class Limits:
    max_json: int = 8 * 1024 * 1024  # publish metadata
    max_manifest: int = 1024 * 1024  # Cargo.toml inside the crate
    max_unpacked: int = 512 * 1024 * 1024  # what the .crate may expand to (the public crate registry's default)
    max_members: int = 100_000


# -- names and versions ---------------------------------------------------------------------------------------


def validate_name(name: object, what: str = "crate name") -> str:
    """A crate name as cargo and the public registry accept it: ASCII letters, digits, '-' and '_', starting with a
    letter, at most 64 characters. Returns it unchanged."""
    if not isinstance(name, str) or not name:
        raise InvalidCrate("invalid-name", f"the {what} is missing or empty")
    if len(name) > MAX_NAME:
        raise InvalidCrate("invalid-name", f"the {what} `{name[:80]}` is too long (at most {MAX_NAME} characters)")
    if not _NAME_RE.fullmatch(name):
        if not name[0].isascii() or not name[0].isalpha():
            raise InvalidCrate("invalid-name", f"invalid character in {what} `{name}`: the first character must be "
                                               "an ASCII letter")
        raise InvalidCrate("invalid-name", f"invalid character in {what} `{name}`: only ASCII letters, digits, "
                                           "`-` and `_` are allowed")
    if name.lower() in _RESERVED:
        raise InvalidCrate("invalid-name", f"the {what} `{name}` is reserved (a Windows device name)")
    return name


def normalize_name(name: str) -> CrateName:
    """Names are compared case-insensitively with '-' and '_' equivalent (as the public registry does)."""
    return CrateName(name.lower().replace("_", "-"))


def index_path(name: str) -> str:
    """The sparse-index path of a crate: ``1/a``, ``2/ab``, ``3/a/abc``, ``ab/cd/abcd...`` (lower case)."""
    lower = name.lower()
    n = len(lower)
    if n <= 2:
        return f"{n}/{lower}"
    if n == 3:
        return f"3/{lower[0]}/{lower}"
    return f"{lower[:2]}/{lower[2:4]}/{lower}"


@dataclass(frozen=True, slots=True, order=False)
class Semver:
    major: int
    minor: int
    patch: int
    pre: tuple[str, ...]
    build: str

    def key(self) -> tuple[Any, ...]:
        """Precedence (semver.org section 11): a release sorts after its pre-releases; build metadata is ignored."""
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 1 if not self.pre else 0, pre)

    @property
    def without_build(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return core + ("-" + ".".join(self.pre) if self.pre else "")


def parse_semver(version: object) -> Semver:
    if not isinstance(version, str) or not version:
        raise InvalidCrate("invalid-version", "the version is missing or empty")
    m = _SEMVER_RE.fullmatch(version)
    if m is None or len(version) > 256:
        raise InvalidCrate("invalid-version", f"`{version[:100]}` is not a valid semver version "
                                              "(expected MAJOR.MINOR.PATCH, e.g. 1.0.0 or 1.0.0-beta.1)")
    return Semver(int(m[1]), int(m[2]), int(m[3]), tuple(m[4].split(".")) if m[4] else (), m[5] or "")


def semver_key(version: str) -> tuple[Any, ...]:
    """Sort key for stored versions (all valid semver); anything else sorts first."""
    try:
        return (1, parse_semver(version).key())
    except InvalidCrate:
        return (0, version)


# -- the publish body ----------------------------------------------------------------------------------------


class PublishFrame:
    """Incremental reader of the publish body: ``feed(chunk)`` each piece, ``finish()`` at the end.

    The JSON is kept (bounded by ``max_json``); the .crate bytes go to ``sink`` as they arrive. Lengths that
    point past the end of the body, or a body longer than the two parts, are refused with the numbers."""

    def __init__(self, sink: Callable[[bytes], Any], *, max_json: int, max_crate: int, declared: int | None = None):
        self._sink = sink
        self._declared = declared  # the request's Content-Length, when it has one
        self._max_json = max_json
        self._max_crate = max_crate
        self._buf = bytearray()
        self._state = "json-len"
        self.json_length: int | None = None
        self.crate_length: int | None = None
        self.json_bytes = b""
        self._crate_seen = 0
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        view = memoryview(chunk)
        while view:
            if self._state == "crate":
                take = min(len(view), self.crate_length - self._crate_seen)  # type: ignore[operator]
                if take:
                    self._sink(bytes(view[:take]))
                    self._crate_seen += take
                    view = view[take:]
                if self._crate_seen == self.crate_length:
                    self._state = "done"
                continue
            if self._state == "done":
                raise InvalidCrate("bad-framing", f"the publish body has {len(view)}+ bytes after the .crate file; "
                                                  f"the crate length field says {self.crate_length} bytes")
            need = 4 if self._state in ("json-len", "crate-len") else self.json_length
            take = min(len(view), need - len(self._buf))  # type: ignore[operator]
            self._buf += view[:take]
            view = view[take:]
            if len(self._buf) == need:
                self._advance()

    def _advance(self) -> None:
        data = bytes(self._buf)
        self._buf.clear()
        if self._state == "json-len":
            self.json_length = struct.unpack("<I", data)[0]
            if self._declared is not None and 8 + self.json_length > self._declared:
                raise InvalidCrate("bad-framing", f"the JSON length field says {self.json_length} bytes, but the "
                                                  f"whole publish body is {self._declared} bytes")
            if self.json_length > self._max_json:
                raise InvalidCrate("too-large", f"the publish metadata is {self.json_length} bytes; at most "
                                                f"{self._max_json} are allowed", 413)
            self._state = "json" if self.json_length else "crate-len"
        elif self._state == "json":
            self.json_bytes = data
            self._state = "crate-len"
        else:
            self.crate_length = struct.unpack("<I", data)[0]
            expected = 8 + (self.json_length or 0) + self.crate_length
            if self._declared is not None and expected != self._declared:
                raise InvalidCrate("bad-framing", f"the publish body is {self._declared} bytes, but its length fields "
                                                  f"add up to {expected} (JSON {self.json_length} bytes, .crate "
                                                  f"{self.crate_length} bytes)")
            if self.crate_length > self._max_crate:
                raise InvalidCrate("too-large", f"the .crate file is {self.crate_length} bytes; the limit of this "
                                                f"repository is {self._max_crate} bytes", 413)
            self._state = "crate" if self.crate_length else "done"

    def finish(self) -> None:
        """The body ended: every declared part must be complete."""
        if self._state == "done":
            return
        if self._state == "json-len":
            raise InvalidCrate("bad-framing", f"the publish body is {self.total} bytes: too short for the 4-byte "
                                              "JSON length (cargo sends: u32 LE json length, JSON, u32 LE crate "
                                              "length, .crate)")
        if self._state == "json":
            raise InvalidCrate("bad-framing", f"the publish body ended after {self.total} bytes, inside the JSON "
                                              f"metadata (its length field says {self.json_length} bytes)")
        if self._state == "crate-len":
            raise InvalidCrate("bad-framing", "the publish body ended before the 4-byte .crate length "
                                              f"(body {self.total} bytes, JSON {self.json_length} bytes)")
        raise InvalidCrate("bad-framing", f"the publish body ended after {self._crate_seen} of the "
                                          f"{self.crate_length} .crate bytes its length field announces")


# -- metadata --------------------------------------------------------------------------------------------------


def _opt_str(meta: dict[str, Any], key: str, where: str) -> str | None:
    value = meta.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidCrate("invalid-metadata", f"`{key}` of {where} must be a string or null")
    return value


def _str_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidCrate("invalid-metadata", f"{what} must be a list of strings")
    return value


def check_metadata(raw: bytes) -> dict[str, Any]:
    """Validate cargo's publish metadata and return it (a dict with checked ``name``, ``vers``, ``deps``,
    ``features``, ``links``, ``rust_version`` and the descriptive fields)."""
    try:
        meta = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidCrate("invalid-metadata", f"the publish metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise InvalidCrate("invalid-metadata", f"the publish metadata must be a JSON object, not "
                                               f"{type(meta).__name__}")
    for key in ("name", "vers", "deps", "features"):
        if key not in meta:
            raise InvalidCrate("invalid-metadata", f"the publish metadata has no `{key}` field")
    validate_name(meta["name"])
    parse_semver(meta["vers"])
    deps = meta["deps"]
    if not isinstance(deps, list):
        raise InvalidCrate("invalid-metadata", "`deps` must be a list")
    for i, dep in enumerate(deps):
        _check_dep(dep, i)
    _check_features(meta["features"])
    for key in ("links", "rust_version", "description", "license", "repository", "homepage", "documentation"):
        _opt_str(meta, key, "the publish metadata")
    if meta.get("rust_version") is not None and not re.fullmatch(r"\d+(\.\d+){0,2}", meta["rust_version"]):
        raise InvalidCrate("invalid-metadata", f"`rust_version` {meta['rust_version']!r} is not a Rust version "
                                               "(e.g. 1.70)")
    _str_list(meta.get("keywords"), "`keywords`")
    _str_list(meta.get("categories"), "`categories`")
    _str_list(meta.get("authors"), "`authors`")
    return meta


def _check_dep(dep: Any, i: int) -> None:
    if not isinstance(dep, dict):
        raise InvalidCrate("invalid-metadata", f"dependency #{i + 1} must be a JSON object")
    where = f"dependency `{dep.get('name')}`" if isinstance(dep.get("name"), str) else f"dependency #{i + 1}"
    for key in ("name", "version_req"):
        if not isinstance(dep.get(key), str) or not dep[key]:
            raise InvalidCrate("invalid-metadata", f"{where} has no `{key}`")
    validate_name(dep["name"], "dependency name")
    if dep.get("explicit_name_in_toml") is not None:
        validate_name(dep["explicit_name_in_toml"], "dependency's name in Cargo.toml")
    if not re.fullmatch(r"[0-9A-Za-z^~=<>*.,+ -]{1,256}", dep["version_req"]):
        raise InvalidCrate("invalid-metadata", f"{where} has an invalid version requirement {dep['version_req']!r}")
    _str_list(dep.get("features"), f"`features` of {where}")
    for key in ("optional", "default_features"):
        if key in dep and not isinstance(dep[key], bool):
            raise InvalidCrate("invalid-metadata", f"`{key}` of {where} must be true or false")
    for key in ("target", "registry", "explicit_name_in_toml"):
        _opt_str(dep, key, where)
    if dep.get("kind") is not None and dep["kind"] not in _DEP_KINDS:
        raise InvalidCrate("invalid-metadata", f"`kind` of {where} must be one of {', '.join(_DEP_KINDS)}")


def _check_features(features: Any) -> None:
    if not isinstance(features, dict):
        raise InvalidCrate("invalid-metadata", "`features` must be an object mapping feature names to lists")
    for name, values in features.items():
        if not _FEATURE_RE.fullmatch(name) or len(name) > 256:
            raise InvalidCrate("invalid-metadata", f"invalid feature name {name!r}")
        _str_list(values, f"feature `{name}`")


def index_entry(meta: dict[str, Any], cksum: str) -> dict[str, Any]:
    """The sparse-index line of a checked publish: ``version_req`` -> ``req``, a renamed dependency's
    ``explicit_name_in_toml`` -> ``name`` with the real crate in ``package``; features using ``dep:`` or ``?/``
    go to ``features2`` with ``v: 2`` (so older cargo versions skip what they cannot read)."""
    deps = []
    for dep in meta["deps"]:
        explicit = dep.get("explicit_name_in_toml")
        entry: dict[str, Any] = {
            "name": explicit or dep["name"],
            "req": dep["version_req"],
            "features": list(dep.get("features") or []),
            "optional": bool(dep.get("optional", False)),
            "default_features": bool(dep.get("default_features", True)),
            "target": dep.get("target"),
            "kind": dep.get("kind") or "normal",
        }
        if dep.get("registry") is not None:
            entry["registry"] = dep["registry"]
        if explicit:
            entry["package"] = dep["name"]
        deps.append(entry)
    features1: dict[str, list[str]] = {}
    features2: dict[str, list[str]] = {}
    for name, values in meta["features"].items():
        target = features2 if any(v.startswith("dep:") or "?/" in v for v in values) else features1
        target[name] = list(values)
    out: dict[str, Any] = {"name": meta["name"], "vers": meta["vers"], "deps": deps, "cksum": cksum,
                           "features": features1, "yanked": False, "links": meta.get("links")}
    if features2:
        out["features2"] = features2
        out["v"] = 2
    if meta.get("rust_version"):
        out["rust_version"] = meta["rust_version"]
    return out


# -- the .crate file -------------------------------------------------------------------------------------------

_CORRUPT: tuple[type[BaseException], ...] = (OSError, EOFError, ValueError, tarfile.TarError, zlib.error,
                                             struct.error, UnicodeDecodeError, OverflowError)


class _Budget:
    def __init__(self, raw: Any, budget: int) -> None:
        self._raw, self._budget, self.seen = raw, budget, 0

    def read(self, size: int = -1) -> bytes:
        allowed = self._budget - self.seen + 1
        data = self._raw.read(allowed if size is None or size < 0 else min(size, allowed))
        self.seen += len(data)
        if self.seen > self._budget:
            raise InvalidCrate("too-large-unpacked", f"the .crate expands to more than {self._budget} bytes")
        return data


def check_crate_file(path: str, name: str, version: str, *, limits: Limits = Limits()) -> dict[str, Any]:
    """Open the .crate at ``path``: a readable .tar.gz whose members all live under ``<name>-<version>/`` (no
    absolute paths, no '..', no links or devices) and whose ``Cargo.toml`` names the same crate and version.
    Returns the parsed Cargo.toml."""
    prefix = f"{name}-{version}/"
    manifest: bytes | None = None
    try:
        with open(path, "rb") as fh:
            if fh.read(2) != b"\x1f\x8b":
                raise InvalidCrate("bad-archive", "the .crate file is not gzip-compressed (a .crate is a .tar.gz)")
            fh.seek(0)
            with gzip.GzipFile(fileobj=fh, mode="rb") as gz:
                reader = _Budget(gz, limits.max_unpacked)
                with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
                    for count, member in enumerate(tar, start=1):
                        if count > limits.max_members:
                            raise InvalidCrate("bad-archive", f"the .crate has more than {limits.max_members} files")
                        _check_member(member, prefix)
                        if member.name == prefix + "Cargo.toml" and member.isreg():
                            if member.size > limits.max_manifest:
                                raise InvalidCrate("bad-archive", f"{member.name} is {member.size} bytes; at most "
                                                                  f"{limits.max_manifest} are allowed")
                            handle = tar.extractfile(member)
                            assert handle is not None
                            manifest = handle.read()
                while reader.read(1024 * 1024):  # reach the gzip trailer: truncation and bad CRCs show up here
                    pass
    except InvalidCrate:
        raise
    except _CORRUPT as exc:
        raise InvalidCrate("bad-archive", f"the .crate file is not a readable .tar.gz archive ({exc})") from None
    if manifest is None:
        raise InvalidCrate("bad-archive", f"the .crate has no {prefix}Cargo.toml")
    try:
        toml = tomllib.loads(manifest.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidCrate("bad-manifest", f"{prefix}Cargo.toml in the .crate is not valid TOML ({exc})") from None
    package = toml.get("package") if isinstance(toml.get("package"), dict) else toml.get("project")
    if not isinstance(package, dict):
        raise InvalidCrate("bad-manifest", f"{prefix}Cargo.toml in the .crate has no [package] table")
    if package.get("name") != name:
        raise InvalidCrate("metadata-mismatch", f"the .crate's Cargo.toml names the package "
                                                f"`{package.get('name')}`, but the publish metadata says `{name}`")
    if package.get("version") != version:
        raise InvalidCrate("metadata-mismatch", f"the .crate's Cargo.toml has version `{package.get('version')}`, "
                                                f"but the publish metadata says `{version}`")
    return toml


def _check_member(member: tarfile.TarInfo, prefix: str) -> None:
    name = member.name
    parts = name.split("/")
    if (not name or "\x00" in name or "\\" in name or name.startswith("/") or ".." in parts
            or (len(name) > 1 and name[1] == ":")):
        raise InvalidCrate("unsafe-path", f"the .crate contains the unsafe path {name!r} (absolute or with '..')")
    if not (name + "/").startswith(prefix):
        raise InvalidCrate("bad-archive", f"the .crate contains {name!r}, outside its directory {prefix!r}")
    if not (member.isreg() or member.isdir()):
        raise InvalidCrate("bad-archive", f"the .crate member {name!r} is a link or special file; a .crate "
                                          "holds regular files only")
