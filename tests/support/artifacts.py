"""Build real Python distributions by hand, and a corpus of malformed uploads.

No network and no build backend: wheels are zipped by hand (METADATA, WHEEL, RECORD with
sha256 of every file) and pip installs them; sdists carry PKG-INFO, a setuptools
``pyproject.toml`` and the module. Everything is deterministic (fixed timestamps).

    wheel = make_wheel(tmp_path, "demo-pkg", "1.0", requires_dist=["attrs>=22"])
    form = upload_form(wheel, wheel.name, "demo-pkg", "1.0")   # what twine 7 sends
    cases = malformed_uploads(tmp_path)                        # list[Case]
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import random
import tarfile
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TypeVar

from packaging.utils import canonicalize_name
from packaging.version import Version

__all__ = [
    "Case",
    "TarEntry",
    "digests",
    "dist_name",
    "make_sdist",
    "make_wheel",
    "malformed_uploads",
    "metadata_text",
    "sdist_bytes",
    "sdist_entries",
    "upload_form",
    "wheel_bytes",
    "wheel_files",
    "write_tar_gz",
    "write_zip",
]

_EPOCH = (1980, 1, 1, 0, 0, 0)
_Target = TypeVar("_Target", Path, BinaryIO)  # a file path, or an open binary file
_MIB = 1024 * 1024


def dist_name(name: str) -> str:
    """The escaped name used in filenames, .dist-info dirs and the import package: ``Foo.Bar`` -> ``foo_bar``."""
    return canonicalize_name(name).replace("-", "_")


def metadata_text(
    name: str,
    version: str,
    *,
    summary: str | None = "A test package",
    requires_python: str | None = None,
    requires_dist: Iterable[str] = (),
    metadata_version: str = "2.1",
    fields: Mapping[str, str | None] | None = None,
) -> str:
    """Core metadata as an email message. ``fields`` replaces/adds headers; ``None`` removes one."""
    headers: list[tuple[str, str | None]] = [
        ("Metadata-Version", metadata_version),
        ("Name", name),
        ("Version", version),
        ("Summary", summary),
        ("Requires-Python", requires_python),
    ]
    headers += [("Requires-Dist", req) for req in requires_dist]
    headers.append(("Description-Content-Type", "text/markdown"))
    overrides = dict(fields or {})
    headers = [(key, overrides.pop(key, value)) for key, value in headers]
    headers += overrides.items()
    lines = [f"{key}: {value}" for key, value in headers if value is not None]
    return "\n".join(lines) + f"\n\n# {name}\n\nA package built by Wharf's tests.\n"


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def wheel_files(
    name: str,
    version: str,
    *,
    requires_python: str | None = None,
    requires_dist: Iterable[str] = (),
    summary: str | None = "A test package",
    extra_files: Mapping[str, bytes] | None = None,
    py_tag: str = "py3",
    module_code: str | None = None,
    metadata_fields: Mapping[str, str | None] | None = None,
) -> dict[str, bytes]:
    """Every member of a valid pure-Python wheel, RECORD last (``extra_files`` may replace any)."""
    stem = f"{dist_name(name)}-{Version(version)}"
    dist_info = f"{stem}.dist-info"
    module = dist_name(name)
    files: dict[str, bytes] = {
        f"{module}/__init__.py": f'__version__ = "{version}"\n{module_code or ""}'.encode(),
        f"{dist_info}/METADATA": metadata_text(
            name,
            str(Version(version)),
            summary=summary,
            requires_python=requires_python,
            requires_dist=requires_dist,
            fields=metadata_fields,
        ).encode(),
        f"{dist_info}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: wharf-tests\nRoot-Is-Purelib: true\nTag: {py_tag}-none-any\n"
        ).encode(),
        f"{dist_info}/top_level.txt": f"{module}\n".encode(),
    }
    files.update(extra_files or {})
    record = f"{dist_info}/RECORD"
    rows = [f"{path},{_record_hash(data)},{len(data)}" for path, data in files.items() if path != record]
    files[record] = ("\n".join([*rows, f"{record},,"]) + "\n").encode()
    return files


def write_zip(path: _Target, files: Mapping[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> _Target:
    """Write ``files`` verbatim (names are not sanitised, duplicates are allowed) with fixed dates."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns on duplicate names, which some cases want
        with zipfile.ZipFile(path, "w") as archive:
            for arcname, data in files.items():
                info = zipfile.ZipInfo(arcname, date_time=_EPOCH)
                info.compress_type = compression
                info.external_attr = 0o644 << 16
                archive.writestr(info, data)
    return path


def _wheel_filename(name: str, version: str, py_tag: str) -> str:
    return f"{dist_name(name)}-{Version(version)}-{py_tag}-none-any.whl"


def make_wheel(
    dir: Path,
    name: str,
    version: str,
    *,
    requires_python: str | None = None,
    requires_dist: Iterable[str] = (),
    summary: str | None = "A test package",
    extra_files: Mapping[str, bytes] | None = None,
    py_tag: str = "py3",
    module_code: str | None = None,
    metadata_fields: Mapping[str, str | None] | None = None,
    filename: str | None = None,
) -> Path:
    """Write ``{dist_name}-{version}-{py_tag}-none-any.whl`` into ``dir`` and return its path."""
    files = wheel_files(
        name,
        version,
        requires_python=requires_python,
        requires_dist=requires_dist,
        summary=summary,
        extra_files=extra_files,
        py_tag=py_tag,
        module_code=module_code,
        metadata_fields=metadata_fields,
    )
    path = Path(dir) / (filename or _wheel_filename(name, version, py_tag))
    write_zip(path, files)
    return path


def wheel_bytes(name: str, version: str, **kwargs: object) -> bytes:
    """The bytes of the wheel ``make_wheel`` would write (same keyword arguments)."""
    buffer = io.BytesIO()
    write_zip(buffer, wheel_files(name, version, **kwargs))  # type: ignore[arg-type]
    return buffer.getvalue()


@dataclass(frozen=True)
class TarEntry:
    """One tar member. ``zeros`` streams that many NUL bytes instead of ``data`` (cheap bombs)."""

    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    linkname: str = ""
    zeros: int = 0


class _Zeros:
    def __init__(self, size: int) -> None:
        self._left = size

    def read(self, size: int = -1) -> bytes:
        size = self._left if size < 0 else min(size, self._left)
        self._left -= size
        return bytes(size)


def write_tar_gz(path: _Target, entries: Iterable[TarEntry], *, fmt: int = tarfile.PAX_FORMAT) -> _Target:
    """Write a .tar.gz with exactly these members (names unsanitised), mtime 0, no owner names."""
    with ExitStack() as stack:
        raw = stack.enter_context(open(path, "wb")) if isinstance(path, (str, Path)) else path
        gz = stack.enter_context(gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0, compresslevel=6))
        archive = stack.enter_context(tarfile.open(fileobj=gz, mode="w", format=fmt))
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type, info.linkname, info.mtime = entry.type, entry.linkname, 0
            info.mode = 0o755 if entry.type == tarfile.DIRTYPE else 0o644
            if entry.type in (tarfile.REGTYPE, tarfile.GNUTYPE_SPARSE):
                info.size = entry.zeros or len(entry.data)
                source = _Zeros(entry.zeros) if entry.zeros else io.BytesIO(entry.data)
                archive.addfile(info, source)  # type: ignore[arg-type]
            else:
                archive.addfile(info)
    return path


def sdist_entries(
    name: str,
    version: str,
    *,
    requires_python: str | None = None,
    requires_dist: Iterable[str] = (),
    summary: str | None = "A test package",
    extra_files: Mapping[str, bytes] | None = None,
    module_code: str | None = None,
    metadata_fields: Mapping[str, str | None] | None = None,
    top: str | None = None,
) -> list[TarEntry]:
    """Members of a valid sdist under one top-level dir ``{dist_name}-{version}`` (or ``top``)."""
    normalized = str(Version(version))
    top = top or f"{dist_name(name)}-{normalized}"
    module = dist_name(name)
    requires_dist = list(requires_dist)
    pyproject = [
        "[build-system]",
        'requires = ["setuptools>=61"]',
        'build-backend = "setuptools.build_meta"',
        "",
        "[project]",
        f'name = "{name}"',
        f'version = "{normalized}"',
        f'description = "{summary or ""}"',
        "dependencies = [" + ", ".join(f'"{req}"' for req in requires_dist) + "]",
    ]
    if requires_python:
        pyproject.append(f'requires-python = "{requires_python}"')
    pyproject += ["", "[tool.setuptools]", f'packages = ["{module}"]', ""]
    files = {
        "PKG-INFO": metadata_text(
            name,
            normalized,
            summary=summary,
            requires_python=requires_python,
            requires_dist=requires_dist,
            metadata_version="2.2",
            fields=metadata_fields,
        ).encode(),
        "pyproject.toml": "\n".join(pyproject).encode(),
        f"{module}/__init__.py": f'__version__ = "{version}"\n{module_code or ""}'.encode(),
    }
    files.update(extra_files or {})
    dirs = sorted({f"{top}/{path.rsplit('/', 1)[0]}" for path in files if "/" in path})
    return [
        TarEntry(top, type=tarfile.DIRTYPE),
        *(TarEntry(d, type=tarfile.DIRTYPE) for d in dirs),
        *(TarEntry(f"{top}/{path}", data) for path, data in files.items()),
    ]


def make_sdist(dir: Path, name: str, version: str, *, filename: str | None = None, **kwargs: object) -> Path:
    """Write ``{dist_name}-{version}.tar.gz`` (PEP 625) into ``dir`` and return its path."""
    target = Path(dir) / (filename or f"{dist_name(name)}-{Version(version)}.tar.gz")
    write_tar_gz(target, sdist_entries(name, version, **kwargs))  # type: ignore[arg-type]
    return target


def sdist_bytes(name: str, version: str, **kwargs: object) -> bytes:
    """The bytes of the sdist ``make_sdist`` would write (same keyword arguments)."""
    buffer = io.BytesIO()
    write_tar_gz(buffer, sdist_entries(name, version, **kwargs))  # type: ignore[arg-type]
    return buffer.getvalue()


def digests(path: Path) -> dict[str, str]:
    """Hex md5, sha256 and blake2b-256 of a file, keyed as ``verify_digests`` expects."""
    md5, sha256, blake2 = hashlib.md5(), hashlib.sha256(), hashlib.blake2b(digest_size=32)
    with open(path, "rb") as handle:
        while chunk := handle.read(_MIB):
            for digest in (md5, sha256, blake2):
                digest.update(chunk)
    return {"md5": md5.hexdigest(), "sha256": sha256.hexdigest(), "blake2_256": blake2.hexdigest()}


def upload_form(path: Path, filename: str, name: str, version: str, /, **overrides: str | None) -> dict[str, str]:
    """The legacy-upload form twine 7 sends for ``path`` (without ``content``). ``None`` drops a field."""
    computed = digests(path)
    wheel = filename.endswith(".whl")
    form: dict[str, str | None] = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": name,
        "version": version,
        "filetype": "bdist_wheel" if wheel else "sdist",
        "pyversion": filename.split("-")[-3] if wheel and filename.count("-") >= 4 else "source",
        "metadata_version": "2.1",
        "sha256_digest": computed["sha256"],
        "blake2_256_digest": computed["blake2_256"],
    }
    form.update(overrides)
    return {key: value for key, value in form.items() if value is not None}


@dataclass(frozen=True)
class Case:
    """One bad upload: the client's ``filename``, the bytes at ``path``, and the expected refusal."""

    id: str
    filename: str
    path: Path
    expected_reason: str
    form_overrides: dict[str, str | None] = field(default_factory=dict)
    name: str = "demo"  # what the client puts in the form
    version: str = "1.0"

    def form(self) -> dict[str, str]:
        return upload_form(self.path, self.filename, self.name, self.version, **self.form_overrides)


_WHEEL = "demo-1.0-py3-none-any.whl"
_SDIST = "demo-1.0.tar.gz"
_DIST_INFO = "demo-1.0.dist-info"


def malformed_uploads(dir: Path) -> list[Case]:
    """Build every malformed upload under ``dir`` (about 70 KiB in all, bombs included)."""
    dir = Path(dir)
    dir.mkdir(parents=True, exist_ok=True)
    cases: list[Case] = []

    def add(case_id: str, filename: str, reason: str, data: bytes | None = None, **overrides: str | None) -> Path:
        path = dir / f"{case_id}.upload"
        if data is not None:
            path.write_bytes(data)
        cases.append(Case(case_id, filename, path, reason, dict(overrides)))
        return path

    def wheel_with(case_id: str, reason: str, files: Mapping[str, bytes], **zip_kw: int) -> None:
        write_zip(add(case_id, _WHEEL, reason), files, **zip_kw)

    def sdist_with(case_id: str, reason: str, entries: Iterable[TarEntry], filename: str = _SDIST) -> None:
        write_tar_gz(add(case_id, filename, reason), entries)

    good_wheel = wheel_files("demo", "1.0")
    good_sdist = sdist_entries("demo", "1.0")
    valid_wheel = wheel_bytes("demo", "1.0")
    valid_sdist = sdist_bytes("demo", "1.0")
    noise = random.Random(1234).randbytes(4096)

    # -- not an archive, or a damaged one
    add("empty-file", _WHEEL, "empty-file", b"")
    add("random-bytes-wheel", _WHEEL, "bad-archive", noise)
    add("random-bytes-sdist", _SDIST, "bad-archive", noise)
    add("gzip-but-not-tar", _SDIST, "bad-archive", gzip.compress(noise, mtime=0))
    add("truncated-zip", _WHEEL, "bad-archive", valid_wheel[: len(valid_wheel) // 2])
    add("truncated-sdist", _SDIST, "bad-archive", valid_sdist[: len(valid_sdist) // 2])
    wheel_with("zip-bzip2-member", "bad-archive", good_wheel, compression=zipfile.ZIP_BZIP2)
    _duplicate_member_zip(add("zip-duplicate-member", _WHEEL, "bad-archive"), good_wheel)

    # -- decompression bombs: ~65 KiB on disk, 65 MiB of zeros inside
    _zip_bomb(add("zip-bomb", _WHEEL, "zip-bomb"), good_wheel)
    sdist_with("tar-bomb", "zip-bomb", [*good_sdist, TarEntry("demo-1.0/zeros.bin", zeros=65 * _MIB)])
    _pax_header_bomb(add("tar-pax-header-bomb", _SDIST, "zip-bomb"), good_sdist)

    # -- paths that escape the extraction directory
    wheel_with("zip-parent-path", "unsafe-path", {**good_wheel, "../evil.py": b"boom"})
    wheel_with("zip-absolute-path", "unsafe-path", {**good_wheel, "/tmp/evil.py": b"boom"})
    sdist_with("tar-parent-path", "unsafe-path", [*good_sdist, TarEntry("demo-1.0/../../evil.py", b"boom")])
    sdist_with("tar-absolute-path", "unsafe-path", [*good_sdist, TarEntry("/tmp/evil.py", b"boom")])
    sdist_with(
        "tar-symlink-outside",
        "unsafe-path",
        [*good_sdist, TarEntry("demo-1.0/passwd", type=tarfile.SYMTYPE, linkname="../../etc/passwd")],
    )
    sdist_with(
        "tar-hardlink-outside",
        "unsafe-path",
        [*good_sdist, TarEntry("demo-1.0/passwd", type=tarfile.LNKTYPE, linkname="../etc/passwd")],
    )
    sdist_with("tar-device-member", "bad-archive", [*good_sdist, TarEntry("demo-1.0/tty", type=tarfile.CHRTYPE)])
    sdist_with("tar-fifo-member", "bad-archive", [*good_sdist, TarEntry("demo-1.0/fifo", type=tarfile.FIFOTYPE)])
    write_tar_gz(
        add("tar-sparse-member", _SDIST, "bad-archive"),
        [*good_sdist, TarEntry("demo-1.0/sparse.bin", b"x" * 512, type=tarfile.GNUTYPE_SPARSE)],
        fmt=tarfile.GNU_FORMAT,
    )

    # -- filenames
    add("invalid-version-wheel", "demo-notaversion-py3-none-any.whl", "invalid-version", valid_wheel)
    add("invalid-version-sdist", "demo-one.tar.gz", "invalid-version", valid_sdist)
    add("invalid-name-sdist", "demo!-1.0.tar.gz", "invalid-name", valid_sdist)
    add("invalid-name-wheel", "d\u00e9mo-1.0-py3-none-any.whl", "invalid-name", valid_wheel)
    add("local-version", "demo-1.0+local-py3-none-any.whl", "local-version", valid_wheel)
    add("legacy-zip-sdist", "demo-1.0.zip", "invalid-filename", valid_wheel)
    add("egg", "demo-1.0-py3.egg", "invalid-filename", valid_wheel)
    add("filename-with-slash", "dist/demo-1.0-py3-none-any.whl", "invalid-filename", valid_wheel)
    add("filename-with-backslash", "dist\\demo-1.0-py3-none-any.whl", "invalid-filename", valid_wheel)
    add("filename-control-char", "demo-1.0-py3-none-any\x00.whl", "invalid-filename", valid_wheel)
    add("wheel-too-few-parts", "demo-1.0.whl", "invalid-filename", valid_wheel)

    # -- wheel layout
    for required in ("METADATA", "RECORD", "WHEEL"):
        files = {k: v for k, v in good_wheel.items() if k != f"{_DIST_INFO}/{required}"}
        wheel_with(f"wheel-missing-{required.lower()}", "missing-metadata", files)
    wheel_with(
        "wheel-version-2", "invalid-metadata", {**good_wheel, f"{_DIST_INFO}/WHEEL": b"Wheel-Version: 2.0\n"}
    )

    # -- sdist layout
    sdist_with("sdist-two-top-dirs", "bad-archive", [*good_sdist, TarEntry("other-1.0/setup.py", b"")])
    sdist_with("sdist-top-level-file", "bad-archive", [*good_sdist, TarEntry("setup.py", b"")])
    sdist_with("sdist-top-dir-mismatch", "bad-archive", sdist_entries("demo", "1.0", top="other-1.0"))
    sdist_with("sdist-missing-pkg-info", "missing-metadata", [e for e in good_sdist if e.name != "demo-1.0/PKG-INFO"])
    sdist_with(
        "sdist-nested-pkg-info-only",
        "missing-metadata",
        [*(e for e in good_sdist if e.name != "demo-1.0/PKG-INFO"), TarEntry("demo-1.0/src/PKG-INFO", _pkg_info())],
    )

    # -- metadata versus filename
    def metadata_case(case_id: str, reason: str, text: str, sdist: bool = False) -> None:
        if sdist:
            entries = [TarEntry(e.name, text.encode()) if e.name == "demo-1.0/PKG-INFO" else e for e in good_sdist]
            sdist_with(case_id, reason, entries)
        else:
            wheel_with(case_id, reason, {**good_wheel, f"{_DIST_INFO}/METADATA": text.encode()})

    metadata_case("wheel-metadata-name-mismatch", "metadata-mismatch", metadata_text("other", "1.0"))
    metadata_case("wheel-metadata-version-mismatch", "metadata-mismatch", metadata_text("demo", "2.0"))
    metadata_case("sdist-metadata-name-mismatch", "metadata-mismatch", metadata_text("other", "1.0"), sdist=True)
    metadata_case("sdist-metadata-version-mismatch", "metadata-mismatch", metadata_text("demo", "1.1"), sdist=True)

    # -- metadata the index refuses
    def bad_metadata(case_id: str, reason: str = "invalid-metadata", **kw: object) -> None:
        metadata_case(case_id, reason, metadata_text("demo", "1.0", **kw))  # type: ignore[arg-type]

    bad_metadata("metadata-version-2.6", metadata_version="2.6")
    bad_metadata("metadata-version-3.0", metadata_version="3.0")
    bad_metadata("metadata-missing-name", fields={"Name": None})
    bad_metadata("metadata-invalid-name", fields={"Name": "-demo-"})
    bad_metadata("metadata-invalid-version", fields={"Version": "one"})
    bad_metadata("metadata-invalid-requires-dist", requires_dist=["attrs >=< 1"])
    bad_metadata("metadata-invalid-requires-python", requires_python="three")
    bad_metadata("metadata-direct-url-dependency", requires_dist=["attrs @ https://example.invalid/attrs.whl"])
    bad_metadata("metadata-summary-too-long", summary="x" * 513)
    bad_metadata("metadata-field-too-new", fields={"License-Expression": "MIT"})
    bad_metadata(
        "metadata-license-and-expression",
        metadata_version="2.4",
        fields={"License": "MIT", "License-Expression": "MIT"},
    )
    bad_metadata(
        "metadata-missing-license-file",
        "missing-license-file",
        metadata_version="2.4",
        fields={"License-Expression": "MIT", "License-File": "LICENSE"},
    )
    wheel_with(
        "metadata-too-large",
        "invalid-metadata",
        {**good_wheel, f"{_DIST_INFO}/METADATA": metadata_text("demo", "1.0").encode() + b" " * (4 * _MIB)},
    )

    # -- the file is fine, the form is not
    wheel_path = make_wheel(dir, "demo", "1.0")
    sdist_path = make_sdist(dir, "demo", "1.0")

    def form_case(case_id: str, reason: str, sdist: bool = False, **overrides: str | None) -> None:
        path, filename = (sdist_path, _SDIST) if sdist else (wheel_path, _WHEEL)
        cases.append(Case(case_id, filename, path, reason, dict(overrides)))

    form_case("wrong-sha256", "digest-mismatch", sha256_digest="0" * 64)
    form_case("wrong-blake2", "digest-mismatch", blake2_256_digest="0" * 64)
    form_case("wrong-md5", "digest-mismatch", md5_digest="0" * 32)
    form_case("non-hex-digest", "digest-mismatch", sha256_digest="\u00e9" * 64)
    form_case("no-digest", "missing-digest", sha256_digest=None, blake2_256_digest=None)
    form_case("form-name-mismatch", "form-mismatch", name="other")
    form_case("form-version-mismatch", "form-mismatch", version="2.0")
    form_case("form-version-invalid", "invalid-version", version="not a version")
    form_case("form-missing-version", "missing-field", version=None)
    form_case("form-filetype-sdist-for-wheel", "filetype-mismatch", filetype="sdist")
    form_case("form-filetype-wheel-for-sdist", "filetype-mismatch", sdist=True, filetype="bdist_wheel")
    form_case("form-filetype-egg", "filetype-mismatch", filetype="bdist_egg")
    form_case("form-action-submit", "bad-action", **{":action": "submit"})
    form_case("form-protocol-2", "bad-protocol", protocol_version="2")
    return cases


def _pkg_info() -> bytes:
    return metadata_text("demo", "1.0").encode()


def _duplicate_member_zip(path: Path, files: Mapping[str, bytes]) -> None:
    write_zip(path, files)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr(zipfile.ZipInfo(f"{_DIST_INFO}/METADATA", date_time=_EPOCH), _pkg_info())


def _zip_bomb(path: Path, files: Mapping[str, bytes]) -> None:
    """A valid wheel plus 65 MiB of zeros, deflated (ratio ~1000): streamed, never held in memory."""
    write_zip(path, files)
    info = zipfile.ZipInfo("demo/zeros.bin", date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    chunk = bytes(_MIB)
    with zipfile.ZipFile(path, "a") as archive, archive.open(info, "w") as member:
        for _ in range(65):
            member.write(chunk)


def _pax_header_bomb(path: Path, entries: list[TarEntry]) -> None:
    """An sdist whose first member carries a 65 MiB pax header, which tarfile reads into memory."""
    with open(path, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0, compresslevel=6) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as archive:
            info = tarfile.TarInfo("demo-1.0/README")
            info.pax_headers = {"comment": "x" * (65 * _MIB)}
            info.size, info.mtime = 2, 0
            archive.addfile(info, io.BytesIO(b"hi"))
            for entry in entries:
                info = tarfile.TarInfo(entry.name)
                info.type, info.size, info.mtime = entry.type, len(entry.data), 0
                archive.addfile(info, io.BytesIO(entry.data))
