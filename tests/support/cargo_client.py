"""The real cargo, run isolated: its own CARGO_HOME (config.toml naming only Wharf registries) and HOME under the
test's tmp dir, crates-io replaced by a Wharf registry so nothing ever reaches a public registry."""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from .clients import Result

__all__ = ["Cargo", "create_cargo_repo", "find_toolchain", "index_url", "write_crate"]


@lru_cache(maxsize=1)
def find_toolchain() -> Path | None:
    """The bin directory of a real cargo + rustc (a rustup proxy resolved to its toolchain, so that tests can set
    HOME and CARGO_HOME freely). None when there is no cargo."""
    candidates = [shutil.which("cargo"), os.path.expanduser("~/.cargo/bin/cargo"), "/root/.cargo/bin/cargo",
                  "/usr/local/cargo/bin/cargo"]
    for cargo in filter(None, candidates):
        if not os.access(cargo, os.X_OK):
            continue
        rustc = Path(cargo).with_name("rustc")
        try:
            sysroot = subprocess.run([str(rustc), "--print", "sysroot"], capture_output=True, text=True,
                                     timeout=60).stdout.strip()
        except OSError:
            continue
        bin_dir = Path(sysroot) / "bin"
        if (bin_dir / "cargo").exists() and (bin_dir / "rustc").exists():
            return bin_dir
    return None


def write_crate(root: Path, name: str, version: str, *, deps: dict[str, str] | None = None, registry: str = "wharf",
                body: str | None = None, features: dict[str, list[str]] | None = None, extra: str = "") -> Path:
    """A library crate on disk. ``deps``: name -> version requirement, all from ``registry``."""
    path = root / f"{name}-{version}"
    (path / "src").mkdir(parents=True, exist_ok=True)
    lines = ["[package]", f'name = "{name}"', f'version = "{version}"', 'edition = "2021"',
             f'description = "{name}, a crate for Wharf tests"', 'license = "MIT"', f'publish = ["{registry}"]', extra,
             "", "[dependencies]"]
    lines += [f'{dep} = {{ version = "{req}", registry = "{registry}" }}' for dep, req in (deps or {}).items()]
    if features:
        lines += ["", "[features]"] + [f"{k} = {list(v)!r}".replace("'", '"') for k, v in features.items()]
    (path / "Cargo.toml").write_text("\n".join(lines) + "\n")
    (path / "src" / "lib.rs").write_text(body if body is not None else f"pub fn version() -> &'static str {{ \"{version}\" }}\n")
    return path


class Cargo:
    """``cargo`` with an isolated home. ``registries``: registry name -> Wharf index URL (``.../<repo>/index/``);
    the first one also replaces crates-io. ``tokens``: registry name -> token."""

    def __init__(self, tmp: Path, registries: dict[str, str], tokens: dict[str, str] | None = None, *,
                 credential_provider: bool = False):
        bin_dir = find_toolchain()
        if bin_dir is None:
            raise RuntimeError("no cargo on this machine (scripts/test-tools.d/cargo.sh installs it)")
        self.bin_dir = bin_dir
        self.tmp = tmp
        self.home = tmp / "cargo-home"
        self.home.mkdir(parents=True, exist_ok=True)
        (tmp / "home").mkdir(parents=True, exist_ok=True)
        self.registries = registries
        self.tokens = dict(tokens or {})
        first = next(iter(registries))
        cfg = [f'[registries.{name}]\nindex = "sparse+{url}"\n' for name, url in registries.items()]
        cfg.append(f'[source.crates-io]\nreplace-with = "{first}"\n')
        cfg.append("[net]\nretry = 1\n")
        cfg.append('[http]\ntimeout = 60\n')
        if credential_provider:
            cfg.append('[registry]\nglobal-credential-providers = ["cargo:token"]\n')
        (self.home / "config.toml").write_text("\n".join(cfg))

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("CARGO", "RUST", "WHARF_")) and k.lower() not in ("https_proxy", "http_proxy")}
        env.update({
            "PATH": f"{self.bin_dir}:{env.get('PATH', '/usr/bin:/bin')}", "CARGO_HOME": str(self.home),
            "HOME": str(self.tmp / "home"), "CARGO_TARGET_DIR": str(self.tmp / "target"), "CARGO_TERM_COLOR": "never",
            "CARGO_TERM_PROGRESS_WHEN": "never", "CARGO_INCREMENTAL": "0", "NO_COLOR": "1",
            "RUSTC": str(self.bin_dir / "rustc"),
        })
        for name, token in self.tokens.items():
            env[f"CARGO_REGISTRIES_{name.upper().replace('-', '_')}_TOKEN"] = token
        env.update(extra or {})
        return env

    def run(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 240) -> Result:
        return Result(subprocess.run([str(self.bin_dir / "cargo"), *args], cwd=cwd or self.tmp, env=self.env(env),
                                     capture_output=True, text=True, timeout=timeout))

    # -- the commands tests use ----------------------------------------------------------------------------------
    def publish(self, crate_dir: Path, registry: str = "wharf", *, verify: bool = False,
                extra: Sequence[str] = ()) -> Result:
        args = ["publish", "--registry", registry, "--allow-dirty"]
        if not verify:
            args.append("--no-verify")
        return self.run(*args, *extra, cwd=crate_dir)

    def build(self, crate_dir: Path, *, offline: bool = False) -> Result:
        return self.run("build", *(["--offline"] if offline else []), cwd=crate_dir)

    def yank(self, name: str, version: str, registry: str = "wharf", *, undo: bool = False) -> Result:
        return self.run("yank", name, "--version", version, "--registry", registry, *(["--undo"] if undo else []))

    def owner(self, name: str, *args: str, registry: str = "wharf") -> Result:
        return self.run("owner", *args, name, "--registry", registry)

    def search(self, query: str, registry: str = "wharf", limit: int = 10) -> Result:
        return self.run("search", query, "--registry", registry, "--limit", str(limit))


def index_url(server_url: str, repo: str) -> str:
    """The sparse index URL of a Wharf cargo repository (without cargo's ``sparse+`` prefix)."""
    return f"{server_url}/{repo}/index/"


def create_cargo_repo(server: Any, name: str, kind: str = "hosted", *, private: bool = False, **config: Any) -> dict:
    """A cargo repository of any kind through the management API (``config``: upstream, members, ...)."""
    r = server.api("POST", "/api/v1/repositories", json={"name": name, "format": "cargo", "kind": kind,
                                                         "private": private, "config": config})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]
