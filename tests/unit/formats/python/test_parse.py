"""wharf.formats.python.parse: filenames, archives, metadata, the upload form and digests."""

from __future__ import annotations

import atexit
import dataclasses
import gzip
import json
import os
import pickle
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.support.artifacts import (
    Case,
    TarEntry,
    digests,
    make_sdist,
    make_wheel,
    malformed_uploads,
    metadata_text,
    sdist_bytes,
    sdist_entries,
    upload_form,
    wheel_bytes,
    wheel_files,
    write_tar_gz,
    write_zip,
)
from wharf.formats.python.parse import (
    InvalidArtifact,
    Limits,
    PythonArtifact,
    check_form,
    parse_artifact,
    parse_filename,
    verify_digests,
)

# The malformed corpus is built once, at collection, so each case is its own test id.
_CORPUS_DIR = Path(tempfile.mkdtemp(prefix="wharf-malformed-"))
atexit.register(shutil.rmtree, _CORPUS_DIR, ignore_errors=True)
CASES = malformed_uploads(_CORPUS_DIR)


def ingest(path: Path, filename: str, form: Mapping[str, str], limits: Limits = Limits()) -> PythonArtifact:
    """The order the upload route uses: digests, then the file, then the form against the file."""
    verify_digests(form, digests(path))
    artifact = parse_artifact(str(path), filename, limits=limits)
    check_form(artifact, form)
    return artifact


def refusal(path: Path, filename: str, **kwargs: object) -> InvalidArtifact:
    with pytest.raises(InvalidArtifact) as info:
        parse_artifact(str(path), filename, **kwargs)
    assert info.value.message and str(info.value) == info.value.message
    return info.value


# -- valid artifacts ------------------------------------------------------------------------


def test_wheel_every_field(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path,
        "My.Pkg_Name",
        "1.0.0",
        requires_python=">=3.8",
        requires_dist=["attrs>=22", 'tomli; python_version < "3.11"'],
        summary="Does things",
        py_tag="py2.py3",
        metadata_fields={
            "Author-email": "Ann <ann@example.invalid>",
            "Keywords": "one,two",
            "Classifier": "Programming Language :: Python :: 3",
            "Project-URL": "Source, https://example.invalid/src",
            "Provides-Extra": "fast",
        },
    )
    assert wheel.name == "my_pkg_name-1.0.0-py2.py3-none-any.whl"

    artifact = parse_artifact(str(wheel), wheel.name)

    with zipfile.ZipFile(wheel) as archive:
        metadata_bytes = archive.read("my_pkg_name-1.0.0.dist-info/METADATA")
    assert artifact == PythonArtifact(
        filename="my_pkg_name-1.0.0-py2.py3-none-any.whl",
        name="my-pkg-name",
        display_name="My.Pkg_Name",
        version="1.0.0",
        packagetype="bdist_wheel",
        python_version="py2.py3",
        requires_python=">=3.8",
        metadata_version="2.1",
        summary="Does things",
        metadata={
            "name": "My.Pkg_Name",
            "version": "1.0.0",
            "summary": "Does things",
            "description": "# My.Pkg_Name\n\nA package built by Wharf's tests.\n",
            "description_content_type": "text/markdown",
            "author": None,
            "author_email": "Ann <ann@example.invalid>",
            "maintainer": None,
            "maintainer_email": None,
            "license": None,
            "license_expression": None,
            "license_files": None,
            "home_page": None,
            "download_url": None,
            "keywords": "one,two",
            "classifiers": ["Programming Language :: Python :: 3"],
            "platform": None,
            "requires_dist": ["attrs>=22", 'tomli; python_version < "3.11"'],
            "requires_python": ">=3.8",
            "project_urls": {"Source": "https://example.invalid/src"},
            "provides_extra": ["fast"],
            "dynamic": None,
        },
        metadata_bytes=metadata_bytes,
    )
    assert json.loads(json.dumps(artifact.metadata)) == artifact.metadata


@pytest.mark.parametrize(
    ("kind", "name", "version", "expected"),
    [
        ("wheel", "demo", "1.0", ("demo", "demo", "1.0", "bdist_wheel", "py3", "2.1", None)),
        ("wheel", "Demo_Pkg", "2.0rc1", ("demo-pkg", "Demo_Pkg", "2.0rc1", "bdist_wheel", "py3", "2.1", None)),
        ("sdist", "demo", "1.0", ("demo", "demo", "1.0", "sdist", "source", "2.2", None)),
        ("sdist", "My.Pkg_Name", "1!3.0.post2", ("my-pkg-name", "My.Pkg_Name", "1!3.0.post2", "sdist", "source", "2.2", None)),
        ("sdist", "demo", "1.0", ("demo", "demo", "1.0", "sdist", "source", "2.2", ">=3.9")),
    ],
)
def test_parse_valid(tmp_path: Path, kind: str, name: str, version: str, expected: tuple[object, ...]) -> None:
    canonical, display, normalized, packagetype, python_version, metadata_version, requires_python = expected
    make = make_wheel if kind == "wheel" else make_sdist
    path = make(tmp_path, name, version, requires_python=requires_python)  # type: ignore[operator]

    artifact = parse_artifact(str(path), path.name)

    assert (artifact.name, artifact.display_name, artifact.version) == (canonical, display, normalized)
    assert (artifact.packagetype, artifact.python_version) == (packagetype, python_version)
    assert (artifact.metadata_version, artifact.requires_python) == (metadata_version, requires_python)
    assert artifact.summary == "A test package"
    assert artifact.filename == path.name
    assert (artifact.metadata_bytes is not None) == (kind == "wheel")
    assert artifact.metadata["requires_python"] == requires_python
    # The whole flow a client drives, with the form twine 7 sends.
    assert ingest(path, path.name, upload_form(path, path.name, name, version)) == artifact


def test_artifact_is_frozen(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0")
    artifact = parse_artifact(str(wheel), wheel.name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        artifact.version = "2.0"  # type: ignore[misc]


def test_pip_installs_factory_wheel(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "Wharf-Demo.Pkg", "1.2.3", module_code="def hello():\n    return 'hi'\n")
    target = tmp_path / "site"
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--isolated", "--no-index", "--no-deps", "--no-cache-dir",
         "--target", str(target), str(wheel)],
        check=True, capture_output=True, env=env, timeout=120,
    )  # fmt: skip
    assert (target / "wharf_demo_pkg-1.2.3.dist-info" / "RECORD").is_file()
    out = subprocess.run(
        [sys.executable, "-c", "import wharf_demo_pkg as m; print(m.__version__, m.hello())"],
        check=True, capture_output=True, text=True, env={**env, "PYTHONPATH": str(target)}, timeout=60,
    )  # fmt: skip
    assert out.stdout.split() == ["1.2.3", "hi"]


def test_factory_sdist_is_buildable_source(tmp_path: Path) -> None:
    import tomllib

    sdist = make_sdist(tmp_path, "demo-pkg", "1.0", requires_dist=["attrs"])
    assert sdist.name == "demo_pkg-1.0.tar.gz"
    with tarfile.open(sdist) as archive:
        assert {m.name for m in archive.getmembers()} >= {
            "demo_pkg-1.0",
            "demo_pkg-1.0/PKG-INFO",
            "demo_pkg-1.0/pyproject.toml",
            "demo_pkg-1.0/demo_pkg/__init__.py",
        }
        pyproject = tomllib.load(archive.extractfile("demo_pkg-1.0/pyproject.toml"))
    assert pyproject["build-system"]["build-backend"] == "setuptools.build_meta"
    assert pyproject["project"] == {
        "name": "demo-pkg",
        "version": "1.0",
        "description": "A test package",
        "dependencies": ["attrs"],
    }
    assert sdist.read_bytes() == sdist_bytes("demo-pkg", "1.0", requires_dist=["attrs"])


def test_factory_is_deterministic(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0")
    assert wheel.read_bytes() == wheel_bytes("demo", "1.0")


# -- filenames ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("demo-1.0-py3-none-any.whl", ("demo", "1.0", "bdist_wheel")),
        ("Demo-1.0.0-py3-none-any.whl", ("demo", "1.0.0", "bdist_wheel")),
        ("foo_bar-01.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", ("foo-bar", "1.0", "bdist_wheel")),
        ("foo-1.0-1build-py2.py3-none-any.whl", ("foo", "1.0", "bdist_wheel")),
        ("foo-1.0.tar.gz", ("foo", "1.0", "sdist")),
        ("Foo.Bar-1.0RC1.tar.gz", ("foo-bar", "1.0rc1", "sdist")),
        ("foo-bar-1.0-1.tar.gz", ("foo-bar-1-0", "1", "sdist")),  # the last dash splits
        ("foo-bar-1.0.post1.tar.gz", ("foo-bar", "1.0.post1", "sdist")),
        ("foo-1!2.0.dev3.tar.gz", ("foo", "1!2.0.dev3", "sdist")),
    ],
)
def test_parse_filename(filename: str, expected: tuple[str, str, str]) -> None:
    assert parse_filename(filename) == expected


@pytest.mark.parametrize(
    ("filename", "reason"),
    [
        ("", "invalid-filename"),
        ("demo-1.0-py3-none-any.whl\r", "invalid-filename"),
        ("demo-1.0\x7f.tar.gz", "invalid-filename"),
        ("a/demo-1.0.tar.gz", "invalid-filename"),
        ("demo-1.0.zip", "invalid-filename"),
        ("demo-1.0.tar.bz2", "invalid-filename"),
        ("demo-1.0-py3.egg", "invalid-filename"),
        ("demo.tar.gz", "invalid-filename"),
        ("-1.0.tar.gz", "invalid-filename"),
        ("demo-1.0-py3-none.whl", "invalid-filename"),
        ("demo-1.0-x-py3-none-any.whl", "invalid-filename"),
        ("de__mo-1.0-py3-none-any.whl", "invalid-filename"),  # "__" cannot come from escaping
        ("_demo-1.0-py3-none-any.whl", "invalid-name"),
        ("demo?-1.0.tar.gz", "invalid-name"),
        ("demo-1.0.x-py3-none-any.whl", "invalid-version"),
        ("demo-latest.tar.gz", "invalid-version"),
        ("demo-1.0+local.tar.gz", "local-version"),
        ("demo-1.0+ubuntu.1-py3-none-any.whl", "local-version"),
    ],
)
def test_parse_filename_refuses(filename: str, reason: str) -> None:
    with pytest.raises(InvalidArtifact) as info:
        parse_filename(filename)
    assert info.value.reason == reason
    assert repr(filename) in info.value.message


# -- PEP 440 normalization ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename_version", "metadata_version", "form_version", "expected"),
    [
        ("1.0.0", "1.0.0", "1.0", "1.0.0"),
        ("1.0.0", "1.0", "1.0.0.0", "1.0.0"),
        ("1.0", "1.0.0", "v1.0", "1.0"),
        ("1.0.post1", "1.0-1", "1.0.post1", "1.0.post1"),
        ("2.0rc1", "2.0-RC1", "2.0c1", "2.0rc1"),
    ],
)
def test_versions_compare_by_pep440_equality(
    tmp_path: Path, filename_version: str, metadata_version: str, form_version: str, expected: str
) -> None:
    files = wheel_files("demo", filename_version)
    files[f"demo-{filename_version}.dist-info/METADATA"] = metadata_text("demo", metadata_version).encode()
    filename = f"demo-{filename_version}-py3-none-any.whl"
    path = write_zip(tmp_path / filename, files)

    artifact = ingest(path, filename, upload_form(path, filename, "demo", form_version))

    assert artifact.version == expected


@pytest.mark.parametrize(
    ("version", "form_version"),
    [("1.0.post1", "1.0-1"), ("1.0.post1", "1.0.post1"), ("2.0rc1", "2.0-RC1"), ("1.0.0", "1")],
)
def test_form_version_normalization(tmp_path: Path, version: str, form_version: str) -> None:
    wheel = make_wheel(tmp_path, "demo", version, metadata_fields={"Version": form_version})
    artifact = ingest(wheel, wheel.name, upload_form(wheel, wheel.name, "demo", form_version))
    assert artifact.version == version


# -- the malformed corpus -------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_malformed_upload_is_refused(case: Case) -> None:
    form = case.form()
    with pytest.raises(InvalidArtifact) as info:
        ingest(case.path, case.filename, form)
    assert info.value.reason == case.expected_reason, info.value.message
    assert info.value.message.strip()


def test_corpus_covers_the_brief() -> None:
    reasons = {case.id: case.expected_reason for case in CASES}
    assert len(reasons) == len(CASES), "case ids must be unique"
    expected = {
        "truncated-zip": "bad-archive",
        "zip-bomb": "zip-bomb",
        "zip-parent-path": "unsafe-path",
        "zip-absolute-path": "unsafe-path",
        "wheel-metadata-name-mismatch": "metadata-mismatch",
        "wheel-metadata-version-mismatch": "metadata-mismatch",
        "invalid-version-wheel": "invalid-version",
        "invalid-name-sdist": "invalid-name",
        "random-bytes-wheel": "bad-archive",
        "empty-file": "empty-file",
        "sdist-two-top-dirs": "bad-archive",
        "wheel-missing-metadata": "missing-metadata",
        "wheel-missing-record": "missing-metadata",
        "local-version": "local-version",
        "tar-symlink-outside": "unsafe-path",
        "wrong-sha256": "digest-mismatch",
        "form-name-mismatch": "form-mismatch",
        "form-version-mismatch": "form-mismatch",
        "form-filetype-sdist-for-wheel": "filetype-mismatch",
    }
    assert {key: reasons.get(key) for key in expected} == expected


def test_bombs_are_small_on_disk() -> None:
    by_id = {case.id: case for case in CASES}
    for case_id in ("zip-bomb", "tar-bomb", "tar-pax-header-bomb"):
        assert by_id[case_id].path.stat().st_size < 200 * 1024
    with zipfile.ZipFile(by_id["zip-bomb"].path) as archive:
        assert sum(info.file_size for info in archive.infolist()) > 64 * 1024 * 1024


@pytest.mark.parametrize("case", [c for c in CASES if c.form_overrides], ids=lambda c: c.id)
def test_form_cases_use_a_valid_file(case: Case) -> None:
    parse_artifact(str(case.path), case.filename)


# -- archive checks -------------------------------------------------------------------------


def test_limits_bound_member_count_and_metadata_size(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "demo", "1.0")
    sdist = make_sdist(tmp_path, "demo", "1.0")
    few = Limits(max_members=3)
    assert refusal(wheel, wheel.name, limits=few).reason == "zip-bomb"
    assert refusal(sdist, sdist.name, limits=few).reason == "zip-bomb"
    tiny = Limits(max_metadata_size=32)
    assert refusal(wheel, wheel.name, limits=tiny).reason == "invalid-metadata"
    assert refusal(sdist, sdist.name, limits=tiny).reason == "invalid-metadata"


@pytest.mark.parametrize(("max_uncompressed", "max_ratio", "refused"), [(1, 1, True), (10**9, 1, False), (1, 10**6, False)])
def test_bomb_guard_needs_both_size_and_ratio(
    tmp_path: Path, max_uncompressed: int, max_ratio: int, refused: bool
) -> None:
    files = {**wheel_files("demo", "1.0"), "demo/zeros.bin": bytes(100_000)}
    wheel = write_zip(tmp_path / "demo-1.0-py3-none-any.whl", files)
    limits = Limits(max_uncompressed=max_uncompressed, max_ratio=max_ratio)
    if refused:
        assert refusal(wheel, wheel.name, limits=limits).reason == "zip-bomb"
    else:
        parse_artifact(str(wheel), wheel.name, limits=limits)


def test_stored_members_and_in_tree_symlinks_are_fine(tmp_path: Path) -> None:
    wheel = write_zip(
        tmp_path / "demo-1.0-py3-none-any.whl", wheel_files("demo", "1.0"), compression=zipfile.ZIP_STORED
    )
    parse_artifact(str(wheel), wheel.name)
    entries = [
        *sdist_entries("demo", "1.0"),
        TarEntry("demo-1.0/docs", type=tarfile.DIRTYPE),
        TarEntry("demo-1.0/docs/README", type=tarfile.SYMTYPE, linkname="../pyproject.toml"),
        TarEntry("demo-1.0/copy.toml", type=tarfile.LNKTYPE, linkname="demo-1.0/pyproject.toml"),
    ]
    sdist = write_tar_gz(tmp_path / "demo-1.0.tar.gz", entries)
    parse_artifact(str(sdist), "demo-1.0.tar.gz")


@pytest.mark.parametrize(
    ("linkname", "refused"),
    [("../pyproject.toml", False), (".", False), ("../..", True), ("/etc/passwd", True), ("../../demo-1.0x/a", True), ("", True)],
)
def test_symlink_targets(tmp_path: Path, linkname: str, refused: bool) -> None:
    entries = [*sdist_entries("demo", "1.0"), TarEntry("demo-1.0/demo/link", type=tarfile.SYMTYPE, linkname=linkname)]
    sdist = write_tar_gz(tmp_path / "demo-1.0.tar.gz", entries)
    if refused:
        assert refusal(sdist, "demo-1.0.tar.gz").reason == "unsafe-path"
    else:
        parse_artifact(str(sdist), "demo-1.0.tar.gz")


def test_legacy_names_are_accepted(tmp_path: Path) -> None:
    # Pre-PEP 625 sdist: dashes and capitals kept in the filename and the top-level directory.
    sdist = write_tar_gz(tmp_path / "Demo-Pkg-1.0.tar.gz", sdist_entries("Demo-Pkg", "1.0", top="Demo-Pkg-1.0"))
    assert parse_artifact(str(sdist), "Demo-Pkg-1.0.tar.gz").name == "demo-pkg"
    # A wheel renamed to a normalized filename whose .dist-info kept the original spelling.
    files = {
        name.replace("demo_pkg-1.0.dist-info", "Demo.Pkg-1.0.0.dist-info"): data
        for name, data in wheel_files("Demo.Pkg", "1.0").items()
    }
    wheel = write_zip(tmp_path / "demo_pkg-1.0-py3-none-any.whl", files)
    assert parse_artifact(str(wheel), "demo_pkg-1.0-py3-none-any.whl").display_name == "Demo.Pkg"


def _mutate(rng: random.Random, original: bytes) -> bytes:
    data = bytearray(original)
    for _ in range(rng.randint(1, 8)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    if rng.random() < 0.3:
        cut = rng.randrange(len(data))
        data = data[:cut] if rng.random() < 0.5 else data[:cut] + bytes(rng.randrange(64)) + data[cut:]
    return bytes(data)


def test_random_corruption_only_raises_invalid_artifact(tmp_path: Path) -> None:
    """Flip, cut and splice bytes of valid files: the only exception allowed is InvalidArtifact."""
    rng = random.Random(20240611)
    tar = gzip.decompress(sdist_bytes("demo", "1.0"))
    mutants = {
        "demo-1.0-py3-none-any.whl": lambda: _mutate(rng, wheel_bytes("demo", "1.0")),
        "demo-1.0.tar.gz": lambda: _mutate(rng, sdist_bytes("demo", "1.0")),
        # gzip's CRC stops most of the above early; damage the tar itself and recompress it.
        "demo-1.0.tar.gz ": lambda: gzip.compress(_mutate(rng, tar), mtime=0),
    }
    path = tmp_path / "upload"
    outcomes: Counter[str] = Counter()
    for filename, mutant in mutants.items():
        for _ in range(300):
            path.write_bytes(mutant())
            try:
                parse_artifact(str(path), filename.strip())
            except InvalidArtifact as exc:
                assert exc.reason and exc.message
                outcomes[exc.reason] += 1
            else:
                outcomes["ok"] += 1
    assert outcomes["bad-archive"] and outcomes["missing-metadata"] and outcomes["ok"]


# -- metadata -------------------------------------------------------------------------------


def test_metadata_errors_are_collected_into_one_message(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path,
        "demo",
        "1.0",
        requires_python="three",
        requires_dist=["attrs >=< 1"],
        metadata_fields={"Description-Content-Type": "text/html"},
    )
    exc = refusal(wheel, wheel.name)
    assert exc.reason == "invalid-metadata"
    for fragment in ("'three'", "'attrs >=< 1'", "text/html"):
        assert fragment in exc.message
    assert isinstance(exc.__cause__, ExceptionGroup)
    assert {error.field for error in exc.__cause__.exceptions} == {
        "requires-python",
        "requires-dist",
        "description-content-type",
    }


def test_index_leniencies(tmp_path: Path) -> None:
    wheel = make_wheel(
        tmp_path,
        "demo",
        "1.0",
        metadata_fields={
            "Home-page": "UNKNOWN",  # old setuptools placeholders are dropped
            "Platform": "UNKNOWN",
            "License": "UNKNOWN",
            "License-File": "LICENSE",  # setuptools wrote it before Metadata-Version 2.4
            "X-Custom-Header": "ignored",  # not a core metadata field
        },
    )
    info = parse_artifact(str(wheel), wheel.name).metadata
    assert (info["home_page"], info["platform"], info["license"], info["license_files"]) == (None, None, None, None)


def test_license_files_are_checked_from_metadata_2_4(tmp_path: Path) -> None:
    fields = {"License-Expression": "mit OR Apache-2.0", "License-File": "LICENSE"}
    extra = {"demo-1.0.dist-info/licenses/LICENSE": b"MIT\n"}
    wheel = make_wheel(
        tmp_path, "demo", "1.0", metadata_fields={"Metadata-Version": "2.4", **fields}, extra_files=extra
    )
    artifact = parse_artifact(str(wheel), wheel.name)
    assert artifact.metadata_version == "2.4"
    assert artifact.metadata["license_expression"] == "MIT OR Apache-2.0"
    assert artifact.metadata["license_files"] == ["LICENSE"]
    sdist = make_sdist(
        tmp_path, "demo", "1.0", metadata_fields={"Metadata-Version": "2.4", **fields}, extra_files={"LICENSE": b"MIT\n"}
    )
    assert parse_artifact(str(sdist), sdist.name).metadata["license_files"] == ["LICENSE"]


@pytest.mark.parametrize("metadata_version", ["1.0", "1.1", "1.2", "2.1", "2.2", "2.3", "2.4", "2.5"])
def test_accepted_metadata_versions(tmp_path: Path, metadata_version: str) -> None:
    text = f"Metadata-Version: {metadata_version}\nName: demo\nVersion: 1.0\nSummary: s\n"
    wheel = make_wheel(tmp_path, "demo", "1.0", extra_files={"demo-1.0.dist-info/METADATA": text.encode()})
    assert parse_artifact(str(wheel), wheel.name).metadata_version == metadata_version


# -- the upload form ------------------------------------------------------------------------


@pytest.fixture
def wheel_artifact(tmp_path: Path) -> PythonArtifact:
    wheel = make_wheel(tmp_path, "Demo.Pkg", "1.0")
    return parse_artifact(str(wheel), wheel.name)


def _form(**overrides: str | None) -> dict[str, str]:
    form: dict[str, str | None] = {
        ":action": "file_upload",
        "protocol_version": "1",
        "name": "Demo.Pkg",
        "version": "1.0",
        "filetype": "bdist_wheel",
    }
    form.update(overrides)
    return {key: value for key, value in form.items() if value is not None}


@pytest.mark.parametrize(
    "overrides",
    [{}, {"name": "demo-pkg"}, {"name": "DEMO_PKG"}, {"name": "demo..pkg"}, {"version": "1.0.0"}, {"version": "1"},
     {"protocol_version": None}],
)  # fmt: skip
def test_check_form_accepts(wheel_artifact: PythonArtifact, overrides: dict[str, str | None]) -> None:
    check_form(wheel_artifact, _form(**overrides))


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({":action": "submit"}, "bad-action"),
        ({":action": "doc_upload"}, "bad-action"),
        ({":action": None}, "bad-action"),
        ({"protocol_version": "2"}, "bad-protocol"),
        ({"name": None}, "missing-field"),
        ({"version": ""}, "missing-field"),
        ({"filetype": None}, "missing-field"),
        ({"name": "demo-pkgs"}, "form-mismatch"),
        ({"name": "demopkg"}, "form-mismatch"),
        ({"version": "1.0.1"}, "form-mismatch"),
        ({"version": "1.0+local"}, "form-mismatch"),
        ({"version": "one"}, "invalid-version"),
        ({"filetype": "sdist"}, "filetype-mismatch"),
        ({"filetype": "bdist_egg"}, "filetype-mismatch"),
    ],
)
def test_check_form_refuses(wheel_artifact: PythonArtifact, overrides: dict[str, str | None], reason: str) -> None:
    with pytest.raises(InvalidArtifact) as info:
        check_form(wheel_artifact, _form(**overrides))
    assert info.value.reason == reason
    assert info.value.message


# -- digests --------------------------------------------------------------------------------

COMPUTED = {"md5": "0" * 31 + "a", "sha256": "ab" * 32, "blake2_256": "cd" * 32}


@pytest.mark.parametrize(
    "form",
    [
        {"sha256_digest": "ab" * 32},
        {"sha256_digest": "AB" * 32},
        {"sha256_digest": " " + "ab" * 32 + "\n"},
        {"md5_digest": "0" * 31 + "A"},
        {"blake2_256_digest": "cd" * 32},
        {"sha256_digest": "ab" * 32, "blake2_256_digest": "cd" * 32, "md5_digest": "0" * 31 + "a"},
        {"sha256_digest": "ab" * 32, "md5_digest": ""},
    ],
)
def test_digests_accepted(form: dict[str, str]) -> None:
    verify_digests(form, COMPUTED)


@pytest.mark.parametrize(
    ("form", "reason"),
    [
        ({}, "missing-digest"),
        ({"sha256_digest": "", "md5_digest": "  "}, "missing-digest"),
        ({"sha1_digest": "ab" * 20}, "missing-digest"),
        ({"sha256_digest": "ab" * 31}, "digest-mismatch"),
        ({"sha256_digest": "ab" * 32, "blake2_256_digest": "ce" * 32}, "digest-mismatch"),
        ({"md5_digest": "0" * 32, "sha256_digest": "ab" * 32}, "digest-mismatch"),
        ({"sha256_digest": "\u00e1b" * 32}, "digest-mismatch"),
    ],
)
def test_digests_refused(form: dict[str, str], reason: str) -> None:
    with pytest.raises(InvalidArtifact) as info:
        verify_digests(form, COMPUTED)
    assert info.value.reason == reason
    if reason == "digest-mismatch":
        assert info.value.message == (
            "The digest supplied does not match a digest calculated from the uploaded file."
        )


# -- the error type -------------------------------------------------------------------------


def test_invalid_artifact_is_a_value_error_and_pickles() -> None:
    error = InvalidArtifact("bad-archive", "Invalid distribution file 'x.whl': broken.")
    assert isinstance(error, ValueError)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.reason, copy.message, str(copy)) == ("bad-archive", error.message, error.message)
