"""The real npm (and pnpm) clients, run isolated from this machine's configuration, and npm project factories.

Every run gets its own HOME, an empty global config, a user config written by the test (registry + token), and a
cache directory under the test's tmp dir: the machine's ~/.npmrc (which, for one, omits `resolved` from lockfiles)
never applies.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any, Sequence

from .clients import Result

__all__ = ["NpmClient", "make_project", "pack_tarball", "publish_document", "PNPM_VERSION", "pnpm_path", "Result"]

ROOT = Path(__file__).resolve().parents[2]
PNPM_VERSION = "10.34.9"  # keep in step with scripts/test-tools.d/npm.sh


def pnpm_path() -> str | None:
    p = ROOT / ".cache" / "npm-tools" / f"pnpm-{PNPM_VERSION}" / "node_modules" / ".bin" / "pnpm"
    return str(p) if p.exists() else None


class NpmClient:
    """One isolated npm user: a HOME, a user config (registry, scoped registries, tokens) and a cache."""

    def __init__(self, tmp: Path, registry: str, token: str | None = None, *, scopes: dict[str, str] | None = None,
                 name: str = "npm"):
        self.base = Path(tmp) / name
        self.home = self.base / "home"
        self.cache = self.base / "cache"
        self.userconfig = self.base / "npmrc"
        self.globalconfig = self.base / "global-npmrc"
        for d in (self.home, self.cache):
            d.mkdir(parents=True, exist_ok=True)
        self.globalconfig.write_text("")
        self.registry = registry.rstrip("/") + "/"
        self.configure(token, scopes or {})

    def configure(self, token: str | None, scopes: dict[str, str] | None = None) -> None:
        # no retries with back-off: a refused download fails the test at once instead of after a minute
        lines = [f"registry={self.registry}", "update-notifier=false", "fund=false", "audit=false", "fetch-retries=0"]
        for scope, url in (scopes or {}).items():
            lines.append(f"{scope}:registry={url.rstrip('/')}/")
        if token:
            for url in {self.registry, *[u.rstrip("/") + "/" for u in (scopes or {}).values()]}:
                lines.append(f"{_nerf(url)}:_authToken={token}")
        self.userconfig.write_text("\n".join(lines) + "\n")

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.lower().startswith(("npm_", "pnpm_", "yarn_", "wharf_"))
               and k.lower() not in ("https_proxy", "http_proxy", "no_proxy", "node_options")}
        env.update({"HOME": str(self.home), "NO_COLOR": "1", "CI": "1",
                    "npm_config_userconfig": str(self.userconfig), "npm_config_globalconfig": str(self.globalconfig),
                    "npm_config_cache": str(self.cache), "npm_config_update_notifier": "false",
                    "XDG_CONFIG_HOME": str(self.home / ".config"), "XDG_CACHE_HOME": str(self.home / ".cache"),
                    "XDG_DATA_HOME": str(self.home / ".local" / "share")})
        env.update(extra or {})
        return env

    def run(self, *args: str, cwd: Path | None = None, timeout: float = 180, input: str | None = None,
            audit: bool = False, env: dict[str, str] | None = None) -> Result:
        flags = [] if audit else ["--no-audit", "--no-fund"]
        cmd = ["npm", *args, *flags, "--userconfig", str(self.userconfig), "--globalconfig", str(self.globalconfig),
               "--cache", str(self.cache)]
        return Result(subprocess.run(cmd, cwd=str(cwd or self.base), env=self.env(env), capture_output=True, text=True,
                                     timeout=timeout, input=input if input is not None else "", ))

    def run_prompted(self, *args: str, answers: Sequence[tuple[str, str]], timeout: float = 60) -> Result:
        """Run npm on a pseudo-terminal, answering its prompts (npm's prompt reader needs a TTY: with piped
        stdin it reads every line at the first prompt)."""
        import pty
        import select
        import time

        cmd = ["npm", *args, "--userconfig", str(self.userconfig), "--globalconfig", str(self.globalconfig),
               "--cache", str(self.cache)]
        master, slave = pty.openpty()
        proc = subprocess.Popen(cmd, cwd=str(self.base), env=self.env(), stdin=slave, stdout=slave, stderr=slave,
                                start_new_session=True)
        os.close(slave)
        out = b""
        todo = list(answers)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 0.2)
                if ready:
                    try:
                        chunk = os.read(master, 4096)
                    except OSError:
                        break
                    if not chunk:
                        break
                    out += chunk
                    if todo and todo[0][0].encode() in out.rsplit(b"\n", 1)[-1]:
                        os.write(master, todo.pop(0)[1].encode() + b"\r")
                elif proc.poll() is not None:
                    break
            else:
                proc.kill()
            rc = proc.wait(timeout=10)
        finally:
            os.close(master)
        text = out.decode("utf-8", "replace")
        return Result(subprocess.CompletedProcess(cmd, rc, text, ""))

    def pnpm(self, *args: str, cwd: Path, timeout: float = 180) -> Result:
        exe = pnpm_path()
        assert exe is not None, "pnpm is not installed: run scripts/test-tools.d/npm.sh"
        store = self.base / "pnpm-store"
        cmd = [exe, *args, "--store-dir", str(store), "--config.userconfig=" + str(self.userconfig)]
        return Result(subprocess.run(cmd, cwd=str(cwd), env=self.env({"npm_config_registry": self.registry}),
                                     capture_output=True, text=True, timeout=timeout))


def _nerf(url: str) -> str:
    """npm's "nerf dart": the registry URL without its scheme, for per-registry credentials."""
    return "//" + url.split("://", 1)[1]


def make_project(root: Path, name: str, version: str = "1.0.0", *, dependencies: dict[str, str] | None = None,
                 files: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> Path:
    """A minimal npm package folder (package.json + index.js)."""
    d = Path(root) / (name.replace("/", "__").lstrip("@") + "-" + version)
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    pkg: dict[str, Any] = {"name": name, "version": version, "description": f"test package {name}",
                           "main": "index.js", "license": "MIT"}
    if dependencies:
        pkg["dependencies"] = dependencies
    pkg.update(extra or {})
    (d / "package.json").write_text(json.dumps(pkg, indent=2))
    (d / "index.js").write_text(f"module.exports = {{ name: {json.dumps(name)}, version: {json.dumps(version)} }};\n")
    for rel, text in (files or {}).items():
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_text(text)
    return d


def pack_tarball(package_json: dict[str, Any] | bytes | None, *, members: Sequence[tuple[str, bytes]] = (),
                 top: str = "package") -> bytes:
    """A .tgz like `npm pack` makes (top-level folder ``package/``), or a hostile one when told to."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        entries: list[tuple[str, bytes]] = []
        if package_json is not None:
            raw = package_json if isinstance(package_json, bytes) else json.dumps(package_json).encode()
            entries.append((f"{top}/package.json", raw))
        entries.extend(members)
        for path, data in entries:
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 499162500
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


def publish_document(name: str, version: str, tarball: bytes, *, registry: str = "http://127.0.0.1/x/",
                     manifest: dict[str, Any] | None = None, tags: dict[str, str] | None = None) -> dict[str, Any]:
    """The JSON npm 11 sends for `npm publish` (libnpmpublish's buildMetadata), built by hand for corrupt cases."""
    basename = name.split("/")[-1]
    m: dict[str, Any] = {"name": name, "version": version, "description": "x", "main": "index.js",
                         **(manifest or {})}
    m["_id"] = f"{name}@{version}"
    m["dist"] = {"integrity": "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode(),
                 "shasum": hashlib.sha1(tarball).hexdigest(),
                 "tarball": f"{registry.rstrip('/')}/{name}/-/{basename}-{version}.tgz"}
    return {"_id": name, "name": name, "description": "x", "dist-tags": tags if tags is not None else {"latest": version},
            "versions": {version: m}, "access": "public",
            "_attachments": {f"{name}-{version}.tgz": {"content_type": "application/octet-stream",
                                                       "data": base64.b64encode(tarball).decode(),
                                                       "length": len(tarball)}}}
