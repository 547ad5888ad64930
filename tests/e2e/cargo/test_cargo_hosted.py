"""The real cargo against a hosted Wharf registry: publish, build a dependent crate, yank, owners, search; private
registries with auth-required. The main flow runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import re

import httpx

from tests.conftest import unique
from tests.support.cargo_client import Cargo, index_url, write_crate
from wharf.formats.cargo.parse import index_path


def crate_name(prefix: str = "crate") -> str:
    return unique(prefix).replace("-", "_")  # e.g. base12_3456: a valid crate name, '_' spelled as published


def lock_versions(project) -> dict[str, str]:
    text = (project / "Cargo.lock").read_text()
    return dict(re.findall(r'\[\[package\]\]\nname = "([^"]+)"\nversion = "([^"]+)"', text))


def index_lines(server, repo: str, name: str, token: str | None = None) -> list[dict]:
    headers = {"Authorization": token} if token else {}
    r = httpx.get(f"{server.url}/{repo}/index/{index_path(name)}", headers=headers)
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines()]


def test_publish_build_yank_owner_search(server, toolchain, tmp_path):
    repo = unique("cargo")
    server.create_repo(repo, format="cargo")
    alice = server.create_token("alice", {repo: "write"})
    cargo = Cargo(tmp_path, {"wharf": index_url(server.url, repo)}, {"wharf": alice})
    base = crate_name("Base")
    # 1. publish with cargo (verified build of the packaged crate), twice: 0.1.0 and 0.2.0
    res = cargo.publish(write_crate(tmp_path / "src", base, "0.1.0"), verify=True)
    assert res.ok, res
    assert cargo.publish(write_crate(tmp_path / "src", base, "0.2.0", features={"extra": []})).ok
    lines = index_lines(server, repo, base)
    assert [(entry["name"], entry["vers"], entry["yanked"]) for entry in lines] == [(base, "0.1.0", False),
                                                                                   (base, "0.2.0", False)]
    assert lines[1]["features"] == {"extra": []} and len(lines[0]["cksum"]) == 64
    # 2. a second crate depending on it builds against the registry
    app = write_crate(tmp_path / "src", crate_name("app"), "1.0.0", deps={base: ">=0.1"},
                      body=f"pub fn v() -> &'static str {{ {base}::version() }}\n")
    res = cargo.build(app)
    assert res.ok, res
    assert lock_versions(app)[base] == "0.2.0"
    # the .crate cargo downloaded is the one published (cksum verified by cargo itself; also here)
    r = httpx.get(f"{server.url}/{repo}/api/v1/crates/{base}/0.2.0/download")
    assert r.status_code == 200 and r.headers["content-length"] == str(len(r.content))
    import hashlib
    assert hashlib.sha256(r.content).hexdigest() == lines[1]["cksum"]
    # 3. yank 0.2.0: a new lockfile resolves to 0.1.0; unyank: back to 0.2.0
    res = cargo.yank(base, "0.2.0")
    assert res.ok, res
    assert [entry["yanked"] for entry in index_lines(server, repo, base)] == [False, True]
    (app / "Cargo.lock").unlink()
    assert cargo.run("generate-lockfile", cwd=app).ok
    assert lock_versions(app)[base] == "0.1.0"
    assert cargo.yank(base, "0.2.0", undo=True).ok
    assert [entry["yanked"] for entry in index_lines(server, repo, base)] == [False, False]
    assert cargo.run("update", cwd=app).ok
    assert lock_versions(app)[base] == "0.2.0"
    # 4. owners: the first publisher owns the crate; add and remove another token name
    res = cargo.owner(base, "--list")
    assert res.ok and "alice" in res.stdout, res
    assert cargo.owner(base, "--add", "bob").ok
    assert "bob" in cargo.owner(base, "--list").stdout
    assert cargo.owner(base, "--remove", "bob").ok
    assert "bob" not in cargo.owner(base, "--list").stdout
    # a write token that is not an owner cannot publish a new version or yank
    mallory = server.create_token("mallory", {repo: "write"})
    other = Cargo(tmp_path / "mallory", {"wharf": index_url(server.url, repo)}, {"wharf": mallory})
    res = other.publish(write_crate(tmp_path / "src", base, "0.3.0"))
    assert not res.ok and "not an owner" in res.output, res
    assert not other.yank(base, "0.1.0").ok
    # 5. search
    res = cargo.search(base.lower()[:6])
    assert res.ok, res
    assert f'{base} = "0.2.0"' in res.stdout
    # 6. the same version again: cargo sees it in the index and stops (the server's own refusal of a re-publish
    # is in test_cargo_rejections)
    res = cargo.publish(write_crate(tmp_path / "again", base, "0.1.0", body="pub fn changed() {}\n"))
    assert not res.ok and "already exists" in res.output, res
    # another spelling of the name is the same crate and is refused too
    res = cargo.publish(write_crate(tmp_path / "src", base.upper(), "0.4.0"))
    assert not res.ok and f"previously named `{base}`" in res.output, res


def test_renamed_optional_dependency_and_features2(sqlite_server, toolchain, tmp_path):
    """A dependency renamed in Cargo.toml (package = ...) and dep:/?/ features reach the index as cargo needs."""
    server = sqlite_server
    repo = unique("cargo")
    server.create_repo(repo, format="cargo")
    cargo = Cargo(tmp_path, {"wharf": index_url(server.url, repo)}, {"wharf": server.token})
    base = crate_name("lib")
    assert cargo.publish(write_crate(tmp_path / "src", base, "1.2.0", features={"x": []})).ok
    user = crate_name("user")
    path = write_crate(tmp_path / "src", user, "0.1.0", features={"fancy": ["dep:renamed"], "x": ["renamed?/x"]},
                       body="#[cfg(feature = \"fancy\")]\npub use renamed::version;\n")
    toml = (path / "Cargo.toml").read_text().replace(
        "[dependencies]",
        f'[dependencies]\nrenamed = {{ version = "1.2", registry = "wharf", package = "{base}", optional = true }}')
    (path / "Cargo.toml").write_text(toml)
    res = cargo.publish(path)
    assert res.ok, res
    (entry,) = index_lines(server, repo, user)
    assert entry["deps"] == [{"name": "renamed", "req": "^1.2", "features": [], "optional": True,
                              "default_features": True, "target": None, "kind": "normal", "package": base}]
    assert entry["features2"] == {"fancy": ["dep:renamed"], "x": ["renamed?/x"]} and entry["v"] == 2
    # and cargo resolves it with the feature on
    app = write_crate(tmp_path / "src", crate_name("app"), "0.1.0")
    (app / "Cargo.toml").write_text((app / "Cargo.toml").read_text().replace(
        "[dependencies]", f'[dependencies]\n{user} = {{ version = "0.1", registry = "wharf", features = ["fancy"] }}'))
    res = cargo.build(app)
    assert res.ok, res
    assert lock_versions(app)[base] == "1.2.0"


def test_private_registry_reads_with_token_only(sqlite_server, toolchain, tmp_path):
    server = sqlite_server
    repo = unique("private")
    server.create_repo(repo, format="cargo", private=True)
    reader = server.create_token("reader", {repo: "read"})
    config = httpx.get(f"{server.url}/{repo}/index/config.json", headers={"Authorization": reader}).json()
    assert config == {"dl": f"{server.url}/{repo}/api/v1/crates", "api": f"{server.url}/{repo}",
                      "auth-required": True}
    r = httpx.get(f"{server.url}/{repo}/index/config.json")
    assert r.status_code == 401 and r.json()["errors"][0]["detail"]
    publisher = Cargo(tmp_path / "pub", {"wharf": index_url(server.url, repo)}, {"wharf": server.token},
                      credential_provider=True)
    base = crate_name("secret")
    res = publisher.publish(write_crate(tmp_path / "src", base, "0.1.0"))
    assert res.ok, res
    app = write_crate(tmp_path / "src", crate_name("app"), "0.1.0", deps={base: "0.1"})
    # a read token builds (cargo sends it on index and download requests)
    res = Cargo(tmp_path / "reader", {"wharf": index_url(server.url, repo)}, {"wharf": reader},
                credential_provider=True).build(app)
    assert res.ok, res
    # no token: cargo cannot even read the index
    (app / "Cargo.lock").unlink()
    res = Cargo(tmp_path / "anon", {"wharf": index_url(server.url, repo)}, credential_provider=True).build(app)
    assert not res.ok and ("401" in res.output or "token" in res.output), res
    # a read token cannot publish
    res = Cargo(tmp_path / "reader2", {"wharf": index_url(server.url, repo)}, {"wharf": reader},
                credential_provider=True).publish(write_crate(tmp_path / "src", base, "0.2.0"))
    assert not res.ok and "no write access" in res.output, res


def test_short_names_use_the_1_2_3_index_paths(sqlite_server, toolchain, tmp_path):
    """Crates named with 1, 2 and 3 characters live under index/1/, 2/ and 3/<c>/; cargo finds them there."""
    server = sqlite_server
    repo = unique("cargo")
    server.create_repo(repo, format="cargo")
    cargo = Cargo(tmp_path, {"wharf": index_url(server.url, repo)}, {"wharf": server.token})
    for name in ("q", "Qx", "qxZ"):
        res = cargo.publish(write_crate(tmp_path / "src", name, "0.1.0"))
        assert res.ok, res
    for path in ("1/q", "2/qx", "3/q/qxz"):
        r = httpx.get(f"{server.url}/{repo}/index/{path}")
        assert r.status_code == 200 and json.loads(r.text)["vers"] == "0.1.0", (path, r.text)
    assert httpx.get(f"{server.url}/{repo}/index/2/QX").status_code == 404  # paths are lower case
    app = write_crate(tmp_path / "src", crate_name("app"), "0.1.0", deps={"q": "0.1", "Qx": "0.1", "qxZ": "0.1"})
    res = cargo.build(app)
    assert res.ok, res
    assert {k: v for k, v in lock_versions(app).items() if k in ("q", "Qx", "qxZ")} == {
        "q": "0.1.0", "Qx": "0.1.0", "qxZ": "0.1.0"}
