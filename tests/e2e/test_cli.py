"""The `wharf` command as a user runs it: repositories, tokens, push, yank, audit, whoami, and where URL/token come from."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import unique
from tests.support import artifacts
from tests.support.clients import clean_env
from tests.support.server import WHARF_BIN, WharfServer


class Run:
    def __init__(self, proc: subprocess.CompletedProcess[str]):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def json(self):  # noqa: ANN201
        return json.loads(self.out)

    def __repr__(self) -> str:
        return f"Run(rc={self.rc}, stdout={self.out[-2000:]!r}, stderr={self.err[-2000:]!r})"


def wharf(tmp: Path, *args: str, env: dict[str, str] | None = None, input: str | None = None) -> Run:
    """Run the installed ``wharf`` with a clean environment (no WHARF_* of this machine, no user config file)."""
    base = clean_env(tmp, {"WHARF_CLIENT_CONFIG": str(tmp / "no-client-config.toml"), "COLUMNS": "250",
                           "TERM": "dumb"})
    base.update(env or {})
    return Run(subprocess.run([WHARF_BIN, *args], env=base, capture_output=True, text=True, timeout=60, input=input))


@pytest.fixture(scope="module")
def srv(sqlite_server: WharfServer) -> WharfServer:
    return sqlite_server


def admin(srv: WharfServer) -> dict[str, str]:
    return {"WHARF_URL": srv.url, "WHARF_TOKEN": srv.token}


def test_repo_create_list_delete(srv, tmp_path):
    pub, priv = unique("dev"), unique("priv")
    r = wharf(tmp_path, "repo", "create", pub, "--format", "python", env=admin(srv))
    assert r.rc == 0, r
    assert pub in r.out and "python" in r.out and "hosted" in r.out  # a human table
    r = wharf(tmp_path, "repo", "create", priv, "--format", "python", "--private", "--json", env=admin(srv))
    assert r.rc == 0, r
    assert r.json()["private"] is True and r.json()["name"] == priv
    r = wharf(tmp_path, "repo", "list", "--json", env=admin(srv))
    assert r.rc == 0, r
    listed = {x["name"]: x for x in r.json()}
    assert listed[pub]["private"] is False and listed[priv]["private"] is True
    # anonymous: public repositories only
    r = wharf(tmp_path, "repo", "list", "--json", env={"WHARF_URL": srv.url})
    assert r.rc == 0, r
    names = {x["name"] for x in r.json()}
    assert pub in names and priv not in names
    # delete asks first; "no" keeps the repository
    r = wharf(tmp_path, "repo", "delete", priv, env=admin(srv), input="n\n")
    assert r.rc != 0 and "Aborted" in r.out + r.err, r
    assert srv.api("GET", f"/api/v1/repositories/{priv}").status_code == 200
    r = wharf(tmp_path, "repo", "delete", priv, "--yes", env=admin(srv))
    assert r.rc == 0 and f"deleted {priv}" in r.err, r
    assert srv.api("GET", f"/api/v1/repositories/{priv}").status_code == 404
    r = wharf(tmp_path, "repo", "list", "--json", env=admin(srv))
    assert priv not in {x["name"] for x in r.json()}


def test_token_create_list_revoke_whoami(srv, tmp_path):
    repo = unique("dev")
    srv.create_repo(repo)
    r = wharf(tmp_path, "token", "create", "ci-bot", "--scope", f"{repo}:write", env=admin(srv))
    assert r.rc == 0, r
    secret = r.out.strip()
    assert secret.startswith("wharf_") and "\n" not in secret  # stdout is just the secret (scriptable)
    assert "shown only now" in r.err
    token_id = int(r.err.split("#", 1)[1].split()[0])
    r = wharf(tmp_path, "whoami", env={"WHARF_URL": srv.url, "WHARF_TOKEN": secret})
    assert r.rc == 0, r
    me = r.json()
    assert me["authenticated"] and me["name"] == "ci-bot" and me["token_id"] == token_id
    assert me["scopes"] == [{"repository": repo, "action": "write"}]
    # the list never shows a secret
    r = wharf(tmp_path, "token", "list", "--json", env=admin(srv))
    assert r.rc == 0, r
    assert secret not in r.out and srv.token not in r.out
    mine = next(t for t in r.json() if t["id"] == token_id)
    assert "token" not in mine and mine["name"] == "ci-bot" and mine["revoked_at"] is None
    assert mine["scopes"] == [{"repository": repo, "actions": ["write"]}]
    r = wharf(tmp_path, "token", "list", env=admin(srv))  # the table form works too
    assert r.rc == 0 and "ci-bot" in r.out and secret not in r.out, r
    # a write token cannot list tokens: a clear error, non-zero exit
    r = wharf(tmp_path, "token", "list", env={"WHARF_URL": srv.url, "WHARF_TOKEN": secret})
    assert r.rc == 1 and "error 403" in r.err and "Traceback" not in r.err, r
    r = wharf(tmp_path, "token", "revoke", str(token_id), "--json", env=admin(srv))
    assert r.rc == 0, r
    assert r.json()["revoked_at"] is not None
    r = wharf(tmp_path, "whoami", env={"WHARF_URL": srv.url, "WHARF_TOKEN": secret})
    assert r.rc == 1 and "error 401" in r.err and "revoked" in r.err, r
    # a malformed scope is a usage error before anything is sent
    r = wharf(tmp_path, "token", "create", "x", "--scope", "nocolon", env=admin(srv))
    assert r.rc == 2 and "REPO:ACTION" in r.err, r


def test_push_yank_audit(srv, tmp_path):
    repo = unique("dev")
    srv.create_repo(repo)
    secret = srv.create_token("pusher", {repo: "write"})
    me = {"WHARF_URL": srv.url, "WHARF_TOKEN": secret}
    dist = tmp_path / "dist"
    dist.mkdir()
    files = [artifacts.make_wheel(dist, "cli-pkg", "1.0"), artifacts.make_sdist(dist, "cli-pkg", "1.0"),
             artifacts.make_wheel(dist, "cli-pkg", "2.0")]
    r = wharf(tmp_path, "push", repo, *map(str, files), env=me)
    assert r.rc == 0, r
    assert r.out == ""  # progress goes to stderr
    for f in files:
        assert f.name in r.err
    assert "kB" in r.err  # the progress bar's transfer column
    pkg = srv.api("GET", f"/api/v1/repositories/{repo}/packages/cli-pkg").json()
    assert sorted(f["filename"] for f in pkg["files"]) == sorted(f.name for f in files)
    digests = {f["filename"]: f["sha256"] for f in pkg["files"]}
    for f in files:
        assert digests[f.name] == artifacts.digests(f)["sha256"]
    # the identical file again: accepted as a no-op
    r = wharf(tmp_path, "push", repo, str(files[0]), env=me)
    assert r.rc == 0, r
    # the same name with different content: refused, unless --skip-existing
    other = tmp_path / "other"
    other.mkdir()
    clash = artifacts.make_wheel(other, "cli-pkg", "1.0", summary="different")
    assert clash.name == files[0].name
    r = wharf(tmp_path, "push", repo, str(clash), env=me)
    assert r.rc == 1 and "already exists" in r.err, r
    r = wharf(tmp_path, "push", repo, str(clash), "--skip-existing", env=me)
    assert r.rc == 0 and "skipped" in r.err, r
    assert srv.api("GET", f"/api/v1/repositories/{repo}").json()["stats"]["files"] == 3
    # a file that is not a distribution
    junk = tmp_path / "notes.txt"
    junk.write_text("x")
    r = wharf(tmp_path, "push", repo, str(junk), env=me)
    assert r.rc == 1 and "notes.txt" in r.err, r
    # yank with a reason; shows in the index
    r = wharf(tmp_path, "yank", f"{repo}/cli-pkg@2.0", "--reason", "broken build", env=me)
    assert r.rc == 0, r
    assert r.json() == {"yanked": [files[2].name], "reason": "broken build"}
    page = httpx.get(f"{srv.url}/{repo}/simple/cli-pkg/").text
    assert 'data-yanked="broken build"' in page
    r = wharf(tmp_path, "yank", f"{repo}/cli-pkg@2.0", "--undo", env=me)
    assert r.rc == 0 and r.json() == {"unyanked": [files[2].name]}, r
    assert "data-yanked" not in httpx.get(f"{srv.url}/{repo}/simple/cli-pkg/").text
    r = wharf(tmp_path, "yank", f"{repo}/cli-pkg", env=me)
    assert r.rc == 2 and "REPO/PACKAGE@VERSION" in r.err, r
    # the audit log shows the writes: who, from where
    r = wharf(tmp_path, "audit", "--json", "--repository", repo, env=admin(srv))
    assert r.rc == 0, r
    events = r.json()
    uploads = [e for e in events if e["action"] == "repository:file:upload"]
    assert sorted(e["subject"] for e in uploads) == sorted(f.name for f in files)
    for e in uploads:
        assert e["actor"].startswith("token:pusher#") and e["remote_addr"] == "127.0.0.1"
    yank = next(e for e in events if e["action"] == "repository:file:yank")
    assert yank["actor"].startswith("token:pusher#") and yank["detail"]["reason"] == "broken build"
    assert yank["remote_addr"] == "127.0.0.1"
    assert events[-1]["action"] == "repository:create"  # oldest last
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), reverse=True)
    r = wharf(tmp_path, "audit", env=admin(srv))  # table form
    assert r.rc == 0 and "repository:file:upload" in r.out, r
    # the pusher is not an admin: no audit log for it
    r = wharf(tmp_path, "audit", env=me)
    assert r.rc == 1 and "error 403" in r.err, r


def test_url_and_token_precedence(srv, tmp_path):
    """flags > environment (WHARF_URL/WHARF_TOKEN) > config file ($WHARF_CLIENT_CONFIG)."""
    good, bad = srv.token, "wharf_not_a_valid_token"
    dead = "http://127.0.0.1:9"  # discard port: nothing listens there
    cfg = tmp_path / "client.toml"

    def config(url: str, token: str) -> dict[str, str]:
        cfg.write_text(f'url = "{url}"\ntoken = "{token}"\n')
        return {"WHARF_CLIENT_CONFIG": str(cfg)}

    def who(*flags: str, env: dict[str, str]) -> Run:
        return wharf(tmp_path, "whoami", *flags, env=env)

    # the config file alone
    r = who(env=config(srv.url, good))
    assert r.rc == 0 and r.json()["name"] == "admin", r
    r = who(env=config(srv.url, bad))
    assert r.rc == 1 and "error 401" in r.err, r
    # env beats the config file, the flag beats env
    r = who(env={**config(srv.url, bad), "WHARF_TOKEN": good})
    assert r.rc == 0 and r.json()["name"] == "admin", r
    r = who(env={**config(srv.url, good), "WHARF_TOKEN": bad})
    assert r.rc == 1 and "error 401" in r.err, r
    r = who("--token", good, env={**config(srv.url, bad), "WHARF_TOKEN": bad})
    assert r.rc == 0 and r.json()["name"] == "admin", r
    r = who("--token", bad, env={**config(srv.url, good), "WHARF_TOKEN": good})
    assert r.rc == 1 and "error 401" in r.err, r
    # the same for the URL
    r = who(env={**config(dead, good)})
    assert r.rc == 1 and "cannot talk to the server" in r.err and "Traceback" not in r.err, r
    r = who(env={**config(dead, good), "WHARF_URL": srv.url})
    assert r.rc == 0 and r.json()["name"] == "admin", r
    r = who("--url", srv.url, env={**config(dead, good), "WHARF_URL": dead})
    assert r.rc == 0 and r.json()["name"] == "admin", r
    r = who("--url", dead, env={**config(srv.url, good), "WHARF_URL": srv.url})
    assert r.rc == 1 and "127.0.0.1:9" in r.err, r
    # no token anywhere: anonymous
    r = wharf(tmp_path, "whoami", env={"WHARF_URL": srv.url})
    assert r.rc == 0 and r.json() == {"authenticated": False}, r


@pytest.mark.parametrize("name, message", [("Bad Name", "invalid repository name"), ("api", "reserved")])
def test_api_errors_are_clear(srv, tmp_path, name, message):
    r = wharf(tmp_path, "repo", "create", name, "--format", "python", env=admin(srv))
    assert r.rc == 1, r
    assert "error 400" in r.err or "error 422" in r.err, r
    assert message in r.err and "Traceback" not in r.err + r.out, r
    assert r.out == ""


def test_other_errors_are_clear(srv, tmp_path):
    repo = unique("dev")
    assert wharf(tmp_path, "repo", "create", repo, env=admin(srv)).rc == 0
    r = wharf(tmp_path, "repo", "create", repo, env=admin(srv))
    assert r.rc == 1 and "error 409" in r.err and "already exists" in r.err, r
    r = wharf(tmp_path, "repo", "create", unique("dev"), "--format", "nosuch", env=admin(srv))
    assert r.rc == 1 and "unknown format" in r.err, r
    r = wharf(tmp_path, "repo", "create", unique("dev"), env={"WHARF_URL": srv.url})
    assert r.rc == 1 and "error 401" in r.err, r
    r = wharf(tmp_path, "repo", "delete", unique("nosuch"), "--yes", env=admin(srv))
    assert r.rc == 1 and "error 404" in r.err, r
    r = wharf(tmp_path, "token", "revoke", "999999", env=admin(srv))
    assert r.rc == 1 and "error 404" in r.err, r
