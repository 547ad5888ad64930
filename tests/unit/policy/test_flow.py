"""Policies and quarantine through the spine, in process, on SQLite and PostgreSQL: the upload/promotion gate,
scan.completed follow-ups, versions, the decision log, dry runs, events."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from wharf.config import Settings
from wharf.core.content import NewArtifact
from wharf.core.errors import Conflict, Forbidden, InvalidInput, PolicyDenied
from wharf.core.services import Core
from wharf.db.models import Event as EventRow
from wharf.storage import BlobRef


@pytest.fixture(params=["sqlite", "postgres"])
def core(request, tmp_path):
    url = None
    if request.param == "postgres":
        url = request.getfixturevalue("postgres").create_database()
    settings = Settings(data=tmp_path / "data", **({"database_url": url} if url else {}))
    c = Core(settings, migrate=True)
    yield c
    c.close()


def _new(core, name="pkg", version="1.0", data=b"wheel bytes", **kw):
    return NewArtifact("python", name, version, f"{name}-{version}-py3-none-any.whl", core.blobs.put_bytes(data), **kw)


def _events(core, type_):
    with core.sessions() as s:
        return [(e.repository, e.package, e.version, e.detail) for e in
                s.scalars(select(EventRow).where(EventRow.type == type_).order_by(EventRow.id))]


def test_gate_denies_uploads_and_promotions_and_logs_every_decision(core):
    dev = core.create_repository(name="dev", format="python", actor="t")
    staging = core.create_repository(name="staging", format="python", actor="t")
    with pytest.raises(InvalidInput, match="invalid CEL expression"):
        core.policy.create({"name": "bad", "expression": "name ==", "action": "deny", "events": ["upload"],
                            "message": "x"}, actor="t")
    core.policy.create({"name": "no-critical-into-staging", "repositories": ["staging"],
                        "events": ["upload", "promotion"], "action": "deny",
                        "expression": 'vulnerabilities.max_severity == "critical"',
                        "message": "critical vulnerabilities may not enter staging"}, actor="t")
    core.policy.create({"name": "no-evil", "events": ["upload"], "action": "deny",
                        "expression": 'name.startsWith("evil")', "message": "no evil packages"}, actor="t")
    with pytest.raises(Conflict):
        core.policy.create({"name": "no-evil", "events": ["upload"], "action": "allow", "expression": "true"}, actor="t")

    with pytest.raises(PolicyDenied, match="no evil packages"):
        core.ingest(dev, _new(core, "evil-thing", data=b"e"), actor="mallory")
    assert core.content.files(dev.id, "evil-thing", include_hidden=True) == []  # nothing stored
    ok = core.ingest(dev, _new(core, "good"), actor="alice")
    assert ok.created

    # a scanner says "good" has a critical vulnerability: promoting it into staging is refused, nothing stored
    core.scans.register("fakevulns", lambda c, t: {"status": "fail", "summary": {
        "vulnerabilities": {"max_severity": "critical", "count": 2, "fixable": 1}}, "findings": []})
    core.scans.scan(dev, "good", "1.0")
    f = ok.file
    promote = NewArtifact("python", f.name, f.version, f.filename, BlobRef(f.sha256, f.size, {"sha256": f.sha256}),
                          origin="promotion:dev")
    with pytest.raises(PolicyDenied, match="critical vulnerabilities may not enter staging") as exc:
        core.ingest(staging, promote, actor="ci", action="promotion")
    assert "no-critical-into-staging" in exc.value.message and "(version 1)" in exc.value.message
    assert core.content.files(staging.id, include_hidden=True) == []
    denied = _events(core, "policy.denied")
    assert [(r, p) for r, p, _v, _d in denied] == [("dev", "evil-thing"), ("staging", "good")]

    log = core.policy.decisions(repository="staging", name="good")
    assert [(d["policy"], d["policy_version"], d["event"], d["result"]) for d in log] == \
        [("no-critical-into-staging", 1, "promotion", "deny")]
    assert log[0]["inputs"]["vulnerabilities"]["count"] == 2 and len(log[0]["inputs_digest"]) == 64
    assert log[0]["inputs"]["provenance"]["source_repository"] == "dev"
    upload_log = core.policy.decisions(repository="dev", name="good")
    assert [(d["policy"], d["result"]) for d in upload_log] == [("no-evil", "none")]

    # a new version of the policy (an exemption list) lets it through; the old version stays readable
    core.policy.update("no-critical-into-staging",
                       {"expression": 'vulnerabilities.max_severity == "critical" && !("exempt" in tags)'}, actor="t")
    shown = core.policy.show("no-critical-into-staging", history=True)
    assert shown["current_version"] == 2 and [h["version"] for h in shown["history"]] == [1, 2]
    assert core.policy.show("no-critical-into-staging", version=1)["expression"] == \
        'vulnerabilities.max_severity == "critical"'
    core.set_attributes(staging, "good", {"tags": ["exempt"]}, actor="t")
    result = core.ingest(staging, promote, actor="ci", action="promotion")
    assert result.created
    assert core.policy.decisions(repository="staging", name="good")[0]["policy_version"] == 2

    # disabled / deleted policies do not decide
    core.policy.update("no-evil", {"enabled": False}, actor="t")
    assert core.ingest(dev, _new(core, "evil-twin", data=b"e2"), actor="m").created
    core.policy.delete("no-evil", actor="t")
    assert [p["name"] for p in core.policy.list()] == ["no-critical-into-staging"]


def test_scan_completed_quarantines_and_tags(core):
    prod = core.create_repository(name="prod", format="python", actor="t")
    core.policy.create({"name": "quarantine-gpl-in-prod", "repositories": ["prod"], "events": ["scan"],
                        "action": "quarantine", "expression": 'license.startsWith("GPL")',
                        "message": "GPL is not allowed in prod"}, actor="t")
    core.policy.create({"name": "tag-fixable", "events": ["scan"], "action": "tag", "tags": ["needs-upgrade"],
                        "expression": "vulnerabilities.fixable > 0"}, actor="t")
    licences = {"gplpkg": "GPL-3.0-only", "mitpkg": "MIT"}
    core.scans.register("fake", lambda c, t: {"status": "pass", "summary": {
        "license": licences[t.name], "vulnerabilities": {"max_severity": "high", "count": 1, "fixable": 1}},
        "findings": []})
    for name in licences:
        core.ingest(prod, _new(core, name, data=name.encode()), actor="alice")
        core.publish(prod, {name})
    core.tasks.drain(core, 30)  # package.created -> scan -> scan.completed -> the policy subscriber

    assert core.policy.quarantine.reason(prod.id, "gplpkg", "1.0") == "GPL is not allowed in prod"
    assert core.content.files(prod.id, "gplpkg") == [] and core.content.files(prod.id, "mitpkg")
    assert core.content.attributes(prod.id, "mitpkg")["tags"] == ["needs-upgrade"]
    q = core.policy.quarantine.list(prod)
    assert [(x["package"], x["source"]) for x in q] == [("gplpkg", "policy:quarantine-gpl-in-prod@1")]
    assert [(r, p) for r, p, _v, _d in _events(core, "package.quarantined")] == [("prod", "gplpkg")]
    assert {d["policy"] for d in core.policy.decisions(repository="prod", name="gplpkg")} == \
        {"quarantine-gpl-in-prod", "tag-fixable"}
    # a quarantined version takes no new files (PEP 792)
    with pytest.raises(PolicyDenied, match="quarantined"):
        core.ingest(prod, NewArtifact("python", "gplpkg", "1.0", "gplpkg-1.0.tar.gz", core.blobs.put_bytes(b"s")),
                    actor="alice")
    core.policy.quarantine.release(prod, "gplpkg", "1.0", actor="admin", reason="licence exception granted")
    assert core.content.files(prod.id, "gplpkg")
    assert [(r, p) for r, p, _v, _d in _events(core, "package.released")] == [("prod", "gplpkg")]


def test_dry_run_reports_without_acting(core):
    repo = core.create_repository(name="dev", format="python", actor="t")
    for name, version in (("alpha", "1.0"), ("alpha", "2.0"), ("beta", "0.1")):
        core.ingest(repo, _new(core, name, version, data=f"{name}{version}".encode()), actor="u")
    core.policy.create({"name": "no-zero-versions", "events": ["upload"], "action": "quarantine", "enabled": False,
                        "expression": 'version.startsWith("0.")', "message": "pre-release"}, actor="t")
    out = core.policy.dry_run("no-zero-versions", repo)
    assert out["evaluated"] == 3 and out["summary"] == {"none": 2, "quarantine": 1} and out["enabled"] is False
    assert [(r["package"], r["version"], r["would"]) for r in out["results"] if r["matched"]] == \
        [("beta", "0.1", "quarantine")]
    assert core.policy.quarantine.list(repo) == [] and core.policy.decisions(repository="dev") == []
    unsaved = core.policy.dry_run(None, repo, spec={"expression": 'name == "alpha"', "action": "tag", "tags": ["a"],
                                                    "events": ["scan"]})
    assert unsaved["summary"] == {"tag": 2, "none": 1}


def test_proxy_admission_refuses_early_and_holds_only_for_undecided_byte_policies(core):
    """Before a proxy fetches a file: no policy -> stream it; a name-only deny -> refused before any fetch (logged,
    policy.denied); a licence deny -> hold the bytes for the gate; an allow met first exempts the package; a
    quarantined version is refused with its reason."""
    from wharf.core.ingest import Candidate

    proxy = core.create_repository(name="px", format="python", kind="proxy",
                                   config={"upstream": {"url": "http://127.0.0.1:9/simple/"}}, actor="t")

    def admit(name: str, version: str = "1.0") -> bool:
        return core.admit(proxy, Candidate("python", name, version, f"{name}-{version}-py3-none-any.whl"), actor="t")

    assert admit("anything") is False
    core.policy.create({"name": "no-gpl", "repositories": ["px"], "events": ["proxy_fetch"], "action": "deny",
                        "expression": 'license.startsWith("GPL")', "message": "no GPL"}, actor="t")
    assert admit("anything") is True
    core.policy.create({"name": "no-bad", "repositories": ["px"], "events": ["proxy_fetch"], "action": "deny",
                        "expression": 'name == "bad"', "message": "bad name", "priority": -5}, actor="t")
    with pytest.raises(PolicyDenied, match="bad name"):
        admit("bad")
    assert [(e[1], e[3]["policy"]) for e in _events(core, "policy.denied")] == [("bad", "no-bad")]
    assert [d["result"] for d in core.policy.decisions(repository="px", name="bad")] == ["deny"]
    core.policy.create({"name": "trusted", "repositories": ["px"], "events": ["proxy_fetch"], "action": "allow",
                        "expression": 'name == "bad"', "priority": -10}, actor="t")
    assert admit("bad") is False  # exempted before either deny is met
    core.policy.quarantine.add(proxy, "held", "2.0", reason="under review", actor="t")
    with pytest.raises(Forbidden, match="under review"):
        admit("held", "2.0")
