"""Path and checksum-header validation of generic repositories (pure functions)."""

from __future__ import annotations

import pytest

from wharf.formats.generic.parse import (
    MAX_DEPTH, MAX_PATH, MAX_SEGMENT, ROOT, InvalidChecksum, InvalidPath, normalize_name, parse_checksum, parse_dir,
    parse_path,
)


@pytest.mark.parametrize("raw, key, directory, filename", [
    ("a.txt", "a.txt", "", "a.txt"),
    ("/a.txt", "a.txt", "", "a.txt"),
    ("tools/cli/1.4/cli linux.tar.gz", "tools/cli/1.4/cli linux.tar.gz", "tools/cli/1.4", "cli linux.tar.gz"),
    ("Caps/Ünïcödé/файл.bin", "Caps/Ünïcödé/файл.bin", "Caps/Ünïcödé", "файл.bin"),
    (".hidden/..dots../a..b", ".hidden/..dots../a..b", ".hidden/..dots..", "a..b"),
    ("100% done/x", "100% done/x", "100% done", "x"),
])
def test_valid_paths(raw: str, key: str, directory: str, filename: str) -> None:
    p = parse_path(raw)
    assert (p.key, p.directory, p.filename) == (key, directory, filename)
    assert p.package == (directory or ROOT)


@pytest.mark.parametrize("raw, reason", [
    ("", "empty"),
    ("/", "directory"),
    ("dir/", "directory"),
    ("a//b", "empty-segment"),
    ("../etc/passwd", "traversal"),
    ("a/../../b", "traversal"),
    ("a/./b", "traversal"),
    ("a/..", "traversal"),
    ("a\\..\\b", "backslash"),
    ("a/b\x00c", "control-character"),
    ("a/b\nc", "control-character"),
    ("a/b\x7f", "control-character"),
    ("a/b\u202etxt.exe", "control-character"),  # right-to-left override: a spoofed extension
    ("a/\u200bb", "control-character"),
    ("a/%2e%2e/b", "encoded"),  # encoded twice: the server decoded %252e%252e once
    ("a%2fb", "encoded"),
    ("a%5Cb", "encoded"),
    ("x" * (MAX_PATH + 1), "too-long"),
    ("d/" + "x" * (MAX_SEGMENT + 1), "too-long"),
    ("d/" + "é" * (MAX_SEGMENT // 2 + 1), "too-long"),  # bytes, not characters
    ("/".join(["d"] * (MAX_DEPTH + 1)), "too-deep"),
    ("/".join(["d" * 200, "e" * 100, "f"]), "too-long"),  # directory part over 255 characters
])
def test_invalid_paths(raw: str, reason: str) -> None:
    with pytest.raises(InvalidPath) as info:
        parse_path(raw)
    assert info.value.reason == reason
    assert info.value.message  # a sentence for people
    assert "\x00" not in info.value.message and "\n" not in info.value.message


def test_error_message_never_echoes_control_characters() -> None:
    with pytest.raises(InvalidPath) as info:
        parse_path("a/../b\x1b[31m")
    assert "\x1b" not in info.value.message


@pytest.mark.parametrize("raw, expected", [("", ""), ("/", ""), ("a/b/", "a/b"), ("/a/b", "a/b")])
def test_parse_dir(raw: str, expected: str) -> None:
    assert parse_dir(raw) == expected


@pytest.mark.parametrize("name, expected", [("/", "/"), ("", "/"), ("a/b/", "a/b"), ("/a", "a"), ("a/b", "a/b")])
def test_normalize_name_is_idempotent(name: str, expected: str) -> None:
    assert normalize_name(name) == expected
    assert normalize_name(normalize_name(name)) == expected


@pytest.mark.parametrize("name", ["a//b", "../x", "a/./b", "a\\b"])
def test_normalize_name_rejects_invalid(name: str) -> None:
    with pytest.raises(InvalidPath):
        normalize_name(name)


@pytest.mark.parametrize("header, value, expected", [
    (b"x-checksum-sha256", b"AB" * 32, ("sha256", "ab" * 32)),
    (b"x-checksum-sha1", b" " + b"0" * 40 + b" ", ("sha1", "0" * 40)),
    (b"x-checksum-md5", b"f" * 32, ("md5", "f" * 32)),
    (b"x-checksum", b"1" * 40, ("sha1", "1" * 40)),
])
def test_checksum_headers(header: bytes, value: bytes, expected: tuple[str, str]) -> None:
    assert parse_checksum(header, value) == expected


@pytest.mark.parametrize("header, value, fragment", [
    (b"x-checksum-sha256", b"zz" * 32, "not a hexadecimal"),
    (b"x-checksum-sha256", b"ab" * 20, "has 40 hex digits"),
    (b"x-checksum-sha1", b"", "not a hexadecimal"),
    (b"x-checksum-md5", b"a" * 33, "has 33 hex digits"),
    (b"x-checksum-sha1", b"sha1:" + b"a" * 40, "not a hexadecimal"),
])
def test_bad_checksum_headers(header: bytes, value: bytes, fragment: str) -> None:
    with pytest.raises(InvalidChecksum) as info:
        parse_checksum(header, value)
    assert fragment in info.value.message
