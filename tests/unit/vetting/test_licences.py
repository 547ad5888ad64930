"""Licence analyzer: declared licences per format, SPDX normalisation, raw text kept, licence files listed."""

from __future__ import annotations

import pytest

from wharf.formats import load_plugins
from wharf.security import licences
from wharf.security.licences import normalise

from .samples import FakeFile, clean_wheel, crate, opener, pom
from tests.support.npm_clients import pack_tarball

PLUGINS = load_plugins()


@pytest.mark.parametrize("declared, spdx, raw", [
    ({"expression": "mit"}, "MIT", "mit"),
    ({"expression": "Apache-2.0 OR MIT"}, "Apache-2.0 OR MIT", "Apache-2.0 OR MIT"),
    ({"expression": "GPL-2.0+"}, "GPL-2.0-or-later", "GPL-2.0+"),
    ({"text": "MIT License"}, "MIT", "MIT License"),
    ({"text": "Apache License, Version 2.0"}, "Apache-2.0", "Apache License, Version 2.0"),
    ({"text": "Proprietary, all rights reserved"}, None, "Proprietary, all rights reserved"),
    ({"text": "BSD", "classifiers": ["License :: OSI Approved :: BSD License"]}, None, "BSD"),
    ({"classifiers": ["License :: OSI Approved :: MIT License"]}, "MIT", "License :: OSI Approved :: MIT License"),
    ({"classifiers": ["License :: OSI Approved :: MIT License",
                      "License :: OSI Approved :: Apache Software License"]}, "Apache-2.0 OR MIT", None),
    ({"expression": "LicenseRef-Acme-Internal"}, "LicenseRef-Acme-Internal", "LicenseRef-Acme-Internal"),
    ({"choices": ["The Apache Software License, Version 2.0", "MIT License"], "text": "x"}, "Apache-2.0 OR MIT", "x"),
    ({}, None, None),
    (None, None, None),
])
def test_normalise(declared, spdx, raw) -> None:
    got = normalise(declared)
    assert got[0] == spdx
    if raw is not None:
        assert got[1] == raw


def _analyze(fmt: str, files: list[FakeFile]) -> dict:
    return licences.analyze(files, opener, getattr(PLUGINS[fmt], "declared_licence", None))


def test_python_pep639_expression_and_licence_files() -> None:
    wheel = clean_wheel(metadata_fields={"Metadata-Version": "2.4", "License-Expression": "MIT OR Apache-2.0",
                                         "License-File": "LICENSE"},
                        extra_files={"clean_pkg-1.0.dist-info/licenses/LICENSE": b"MIT"})
    wheel.meta = {"metadata": {"license_expression": "MIT OR Apache-2.0", "license": None, "classifiers": []}}
    result = _analyze("python", [wheel])
    assert result["status"] == "pass"
    assert result["summary"] == {"licence": "MIT OR Apache-2.0", "licence_raw": "MIT OR Apache-2.0",
                                 "licence_files": ["clean_pkg-1.0.dist-info/licenses/LICENSE"]}


def test_python_old_field_and_classifiers() -> None:
    wheel = clean_wheel()
    wheel.meta = {"metadata": {"license_expression": None, "license": "Some custom terms",
                               "classifiers": ["License :: OSI Approved :: MIT License", "Programming Language :: Python"]}}
    result = _analyze("python", [wheel])
    assert result["summary"]["licence"] == "MIT" and result["summary"]["licence_raw"] == "Some custom terms"
    wheel.meta["metadata"]["classifiers"] = []
    result = _analyze("python", [wheel])
    assert result["status"] == "warn" and result["summary"]["licence"] is None
    assert result["summary"]["licence_raw"] == "Some custom terms"
    assert result["findings"][0]["rule"] == "licence-not-spdx"


def test_npm_license_and_old_licenses_list() -> None:
    tgz = pack_tarball({"name": "x", "version": "1.0.0"}, members=[("package/LICENSE.md", b"ISC")])
    f = FakeFile("x-1.0.0.tgz", tgz, meta={"manifest": {"license": "ISC"}})
    assert _analyze("npm", [f])["summary"] == {"licence": "ISC", "licence_raw": "ISC",
                                               "licence_files": ["package/LICENSE.md"]}
    f.meta = {"manifest": {"licenses": [{"type": "MIT"}, {"type": "Apache-2.0"}]}}
    assert _analyze("npm", [f])["summary"]["licence"] == "MIT OR Apache-2.0"
    f.meta = {"manifest": {}}
    result = _analyze("npm", [f])
    assert result["summary"]["licence"] is None and result["findings"][0]["rule"] == "licence-undeclared"


def test_cargo_from_meta_or_from_cargo_toml() -> None:
    hosted = crate()
    hosted.meta = {"license": "MIT/Apache-2.0"}  # the old slash form is not SPDX: kept raw
    result = _analyze("cargo", [hosted])
    assert result["summary"]["licence"] is None and result["summary"]["licence_raw"] == "MIT/Apache-2.0"
    proxied = crate()  # a proxied crate has no licence in meta: read from Cargo.toml
    result = _analyze("cargo", [proxied])
    assert result["summary"]["licence"] == "MIT OR Apache-2.0"
    assert result["summary"]["licence_files"] == ["demo-1.0.0/LICENSE-MIT"]


def test_maven_pom_licences() -> None:
    result = _analyze("maven", [FakeFile("demo-1.0.jar", b"PK\x05\x06" + b"\x00" * 18),
                                pom(["Apache License, Version 2.0"])])
    assert result["summary"]["licence"] == "Apache-2.0"
    result = _analyze("maven", [pom(["Eclipse Public License - v 2.0", "GNU GPL with Classpath"])])
    assert result["summary"]["licence"] is None
    assert result["summary"]["licence_raw"] == "Eclipse Public License - v 2.0 OR GNU GPL with Classpath"


def test_generic_has_no_declared_licence() -> None:
    result = _analyze("generic", [FakeFile("tool.tar.gz", crate().data)])
    assert result["status"] == "warn" and result["summary"]["licence_files"] == ["demo-1.0.0/LICENSE-MIT"]
