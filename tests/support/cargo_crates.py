"""Build .crate files and cargo publish bodies for tests, including a corpus of malformed ones."""

from __future__ import annotations

import gzip
import io
import json
import struct
import tarfile
from dataclasses import dataclass
from typing import Any, Iterable

__all__ = ["Bad", "crate_bytes", "manifest", "metadata", "publish_body", "malformed_publishes", "tar_gz"]


def manifest(name: str, version: str, extra: str = "") -> str:
    return f'[package]\nname = "{name}"\nversion = "{version}"\nedition = "2021"\n{extra}'


def tar_gz(members: Iterable[tuple[str, bytes | None, bytes]], *, mtime: int = 1_700_000_000) -> bytes:
    """members: (name, type (tarfile.REGTYPE, SYMTYPE, ...; None = regular), data or link target)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            info.mtime = mtime
            info.mode = 0o644
            if kind in (None, tarfile.REGTYPE):
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.type = kind
                info.linkname = data.decode()
                tar.addfile(info)
    return gzip.compress(raw.getvalue(), mtime=0)


def crate_bytes(name: str, version: str, *, toml: str | None = None, files: dict[str, bytes] | None = None,
                top: str | None = None) -> bytes:
    top = top or f"{name}-{version}"
    members = {"Cargo.toml": (toml if toml is not None else manifest(name, version)).encode(),
               "src/lib.rs": b"pub fn hello() -> u32 { 42 }\n", **(files or {})}
    return tar_gz([(f"{top}/{path}", None, data) for path, data in members.items()])


def metadata(name: str, version: str, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name, "vers": version, "deps": [], "features": {}, "authors": [], "description": f"{name} for tests",
        "documentation": None, "homepage": None, "readme": None, "readme_file": None, "keywords": [],
        "categories": [], "license": "MIT", "license_file": None, "repository": None, "badges": {}, "links": None,
        "rust_version": None,
    }
    meta.update(extra)
    return meta


def publish_body(meta: dict[str, Any] | bytes, crate: bytes, *, json_len: int | None = None,
                 crate_len: int | None = None) -> bytes:
    raw = meta if isinstance(meta, bytes) else json.dumps(meta).encode()
    return (struct.pack("<I", len(raw) if json_len is None else json_len) + raw
            + struct.pack("<I", len(crate) if crate_len is None else crate_len) + crate)


@dataclass(frozen=True)
class Bad:
    id: str
    body: bytes
    status: int
    says: str  # a fragment of the error detail


def malformed_publishes(name: str, version: str = "1.0.0") -> list[Bad]:
    """Publish bodies that must be refused with a 4xx, each with what the message must mention. ``name`` is a
    fresh crate name (nothing may be stored under it afterwards)."""
    good_crate = crate_bytes(name, version)
    meta = metadata(name, version)
    raw = json.dumps(meta).encode()
    cases = [
        Bad("empty-body", b"", 400, "too short"),
        Bad("json-length-past-end", struct.pack("<I", 10_000) + raw, 400, "whole publish body"),
        Bad("json-length-short", publish_body(meta, good_crate, json_len=len(raw) - 5), 400, "length fields"),
        Bad("crate-length-past-end", publish_body(meta, good_crate, crate_len=len(good_crate) + 100), 400,
            "length fields"),
        Bad("crate-length-short", publish_body(meta, good_crate, crate_len=len(good_crate) - 100), 400,
            "length fields"),
        Bad("no-crate-length", struct.pack("<I", len(raw)) + raw, 400, "whole publish body"),
        Bad("json-not-object", publish_body(b"[1, 2, 3]", good_crate), 400, "must be a JSON object"),
        Bad("json-garbage", publish_body(b"{not json", good_crate), 400, "not valid JSON"),
        Bad("missing-vers", publish_body({k: v for k, v in meta.items() if k != "vers"}, good_crate), 400,
            "no `vers`"),
        Bad("missing-deps", publish_body({k: v for k, v in meta.items() if k != "deps"}, good_crate), 400,
            "no `deps`"),
        Bad("dep-not-object", publish_body({**meta, "deps": ["serde"]}, good_crate), 400, "dependency #1"),
        Bad("dep-bad-kind", publish_body({**meta, "deps": [{"name": "other", "version_req": "^1", "kind": "weird",
                                                            "features": [], "optional": False,
                                                            "default_features": True, "target": None}]},
                                         good_crate), 400, "kind"),
        Bad("crate-not-gzip", publish_body(meta, b"PK\x03\x04 this is a zip, not a crate" * 10), 400,
            "not gzip"),
        Bad("crate-truncated", publish_body(meta, good_crate[: len(good_crate) // 2]), 400, "not a readable"),
        Bad("crate-gzip-not-tar", publish_body(meta, gzip.compress(b"hello, not a tar file" * 50)), 400,
            "not a readable"),
        Bad("empty-crate", publish_body(meta, b""), 400, "not gzip"),
        Bad("name-mismatch", publish_body(meta, crate_bytes(name, version, toml=manifest(name + "-x", version),
                                                            top=f"{name}-{version}")), 400, "names the package"),
        Bad("version-mismatch", publish_body(meta, crate_bytes(name, version, toml=manifest(name, "9.9.9"))), 400,
            "has version `9.9.9`"),
        Bad("wrong-top-dir", publish_body(meta, crate_bytes(name, version, top=f"other-{version}")), 400,
            "outside its directory"),
        Bad("no-cargo-toml", publish_body(meta, tar_gz([(f"{name}-{version}/src/lib.rs", None, b"")])), 400,
            "has no"),
        Bad("bad-toml", publish_body(meta, crate_bytes(name, version, toml="[package\nname=")), 400,
            "not valid TOML"),
        Bad("path-traversal", publish_body(meta, tar_gz([
            (f"{name}-{version}/Cargo.toml", None, manifest(name, version).encode()),
            (f"{name}-{version}/../../etc/evil", None, b"x")])), 400, "unsafe path"),
        Bad("absolute-path", publish_body(meta, tar_gz([
            (f"{name}-{version}/Cargo.toml", None, manifest(name, version).encode()),
            ("/etc/evil", None, b"x")])), 400, "unsafe path"),
        Bad("symlink-member", publish_body(meta, tar_gz([
            (f"{name}-{version}/Cargo.toml", None, manifest(name, version).encode()),
            (f"{name}-{version}/link", tarfile.SYMTYPE, b"/etc/passwd")])), 400, "link or special"),
        Bad("invalid-name", publish_body(metadata("9lives", version), crate_bytes("9lives", version)), 400,
            "first character"),
        Bad("invalid-name-chars", publish_body(metadata("na.me", version), crate_bytes("na.me", version)), 400,
            "invalid character"),
        Bad("name-too-long", publish_body(metadata("a" * 65, version), crate_bytes("a" * 65, version)), 400,
            "too long"),
        Bad("invalid-version", publish_body(metadata(name, "1.0"), crate_bytes(name, "1.0")), 400,
            "not a valid semver"),
        Bad("invalid-version-leading-zero", publish_body(metadata(name, "01.0.0"), crate_bytes(name, "01.0.0")),
            400, "not a valid semver"),
    ]
    return cases
