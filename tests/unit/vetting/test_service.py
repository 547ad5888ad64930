"""The vetting service inside a Core: analyzers run in background work after ingest, results feed the overview."""

from __future__ import annotations

import pytest

from wharf.config import Settings
from wharf.core.content import NewArtifact
from wharf.core.services import Core
from wharf.security import overview

from .samples import clean_wheel, evil_npm, evil_sdist, evil_wheel


@pytest.fixture
def core(tmp_path):
    c = Core(Settings(data=tmp_path / "data", worker=False), migrate=True)
    c.vetting.max_wait = 0.0  # these tests ingest in bursts and drain at once: no backing off
    yield c
    c.close()


def _ingest(core, repo, fmt, name, version, f, meta=None):
    new = NewArtifact(fmt, name, version, f.filename, core.blobs.put_bytes(f.data), meta=meta or {},
                      key=f"{name}/-/{f.filename}" if fmt == "npm" else None)
    return core.ingest(repo, new, actor="t")


def test_analyzers_run_after_ingest_and_feed_facts(core):
    repo = core.create_repository(name="dev", format="python", actor="t")
    assert {"licence", "malware", "typosquat"} <= set(core.scans.analyzers)
    _ingest(core, repo, "python", "evil-pkg", "1.0", evil_wheel(),
            {"metadata": {"license_expression": "MIT", "classifiers": []}})
    assert core.tasks.drain(core, timeout=30)
    results = core.scans.results(repo.id, "evil-pkg", "1.0")
    assert results["malware"]["status"] == "fail"
    assert results["licence"]["summary"]["licence"] == "MIT"
    facts = core.scans.facts(repo, "evil-pkg", "1.0")
    assert facts["malware"] is True and facts["licence"] == "MIT" and facts["typosquat"] is False


def test_typosquat_against_earlier_names_and_popular_list(core):
    repo = core.create_repository(name="dev", format="python", actor="t")
    _ingest(core, repo, "python", "acme-billing", "1.0", clean_wheel("acme-billing"))
    _ingest(core, repo, "python", "acme-biling", "1.0", clean_wheel("acme-biling"))
    _ingest(core, repo, "python", "reqeusts", "1.0", clean_wheel("reqeusts"))
    assert core.tasks.drain(core, timeout=30)
    first = core.scans.results(repo.id, "acme-billing", "1.0")["typosquat"]
    assert first["status"] == "pass"  # it came first: the later look-alike does not make it suspect
    squat = core.scans.results(repo.id, "acme-biling", "1.0")["typosquat"]
    assert squat["status"] == "warn"
    assert squat["findings"][0]["similar_to"] == "acme-billing" and squat["findings"][0]["kind"] == "omitted"
    popular = core.scans.results(repo.id, "reqeusts", "1.0")["typosquat"]
    assert {"similar_to": "requests", "kind": "swapped", "source": "popular"} in [
        {k: f[k] for k in ("similar_to", "kind", "source")} for f in popular["findings"]]


def _trusted(core, repo, name):
    """The names a scan of ``name`` compares it with (what the typosquat analyzer's ``keep`` filters leave)."""
    with core.vetting._names_lock:
        out = set()
        for candidates, _source, keep in core.vetting.trusted(repo, name):
            out.update(n for i, n in enumerate(candidates.names) if n != name and (keep is None or keep(i)))
        return out


def test_trusted_names_follow_new_versions_and_a_recreated_repository(core):
    """The names-before map is read incrementally (only versions added since the last scan): it must give what a
    full read gives, after more uploads and after the repository is deleted and created again."""
    repo = core.create_repository(name="dev", format="python", actor="t")
    _ingest(core, repo, "python", "alpha", "1.0", clean_wheel("alpha"))
    _ingest(core, repo, "python", "beta", "1.0", clean_wheel("beta"))
    assert _trusted(core, repo, "beta") == {"alpha"}
    _ingest(core, repo, "python", "gamma", "1.0", clean_wheel("gamma"))
    _ingest(core, repo, "python", "alpha", "2.0", clean_wheel("alpha", "2.0"))  # a new version: first stays 1.0
    assert _trusted(core, repo, "beta") == {"alpha"}
    assert _trusted(core, repo, "gamma") == {"alpha", "beta"}
    assert _trusted(core, repo, "new") == {"alpha", "beta", "gamma"}
    core.delete_repository("dev", actor="t")
    again = core.create_repository(name="dev", format="python", actor="t")
    _ingest(core, again, "python", "delta", "1.0", clean_wheel("delta"))
    assert _trusted(core, again, "new") == {"delta"}


def test_reading_the_names_added_since_the_last_scan_searches_an_index(core):
    """Every scan reads the names that repository versions after the last one it saw added. That read must search
    by (repository, version added), not walk every row of the repository (~100 ms per scan at 100,000 names)."""
    from sqlalchemy import event

    repo = core.create_repository(name="dev", format="python", actor="t")
    _ingest(core, repo, "python", "alpha", "1.0", clean_wheel("alpha"))
    _trusted(core, repo, "alpha")
    _ingest(core, repo, "python", "beta", "1.0", clean_wheel("beta"))
    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if "version_added" in statement and "GROUP BY" in statement:
            seen.append((statement, parameters))

    event.listen(core.engine, "before_cursor_execute", record)
    try:
        assert _trusted(core, repo, "gamma") == {"alpha", "beta"}
    finally:
        event.remove(core.engine, "before_cursor_execute", record)
    assert len(seen) == 1
    with core.engine.connect() as conn:
        plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + seen[0][0], seen[0][1]))
    assert "ix_repository_content_added" in plan and "version_added>?" in plan.replace(" ", ""), plan


def test_group_siblings_names_are_trusted(core):
    internal = core.create_repository(name="internal", format="npm", actor="t")
    other = core.create_repository(name="other", format="npm", actor="t")
    core.create_repository(name="all", format="npm", kind="group", actor="t",
                           config={"members": ["internal", "other"]})
    _ingest(core, internal, "npm", "acme-widgets", "1.0.0", evil_npm())
    _ingest(core, other, "npm", "acme-widget", "1.0.0", evil_npm())
    assert core.tasks.drain(core, timeout=30)
    hit = core.scans.results(other.id, "acme-widget", "1.0.0")["typosquat"]["findings"][0]
    assert hit["similar_to"] == "acme-widgets" and hit["source"] == "group:internal"


def test_overview_counts_vulnerabilities_and_history(core):
    repo = core.create_repository(name="dev", format="python", actor="t")

    def vulns(_core, target):  # the advisories area's analyzer, as the overview reads it
        n = {"1.0": 2, "1.1": 1, "2.0": 0}[target.version]
        found = [{"id": f"OSV-{i}", "aliases": [f"CVE-2026-{i}"], "severity": ["HIGH", 5.0][i % 2], "fixed": ["2.0"]}
                 for i in range(n)]
        return {"status": "fail" if n else "pass", "summary": {"vulnerabilities": {"count": n}}, "findings": found}

    core.scans.register("vulnerabilities", vulns)
    for v in ("1.0", "1.1", "2.0"):
        _ingest(core, repo, "python", "lib", v, clean_wheel("lib", v), {"metadata": {"license": "MIT License"}})
    _ingest(core, repo, "python", "evil-pkg", "1.0", evil_wheel())
    core.settings = Settings(data=core.settings.data, worker=False, vetting=False)
    _ingest(core, repo, "python", "later", "1.0", clean_wheel("later"))  # vetting off: never scanned
    assert core.tasks.drain(core, timeout=30)

    doc = overview.repository_overview(core, repo)
    assert doc["versions"] == {"total": 5, "scanned": 4, "not_scanned": 1}
    assert doc["by_analyzer"]["malware"] == {"pass": 3, "fail": 1}
    assert doc["by_analyzer"]["vulnerabilities"] == {"fail": 3, "pass": 1}  # evil-pkg 1.0 has two as well
    assert doc["max_severity"] == "critical" and doc["severity_counts"]["high"] >= 2
    assert doc["scan_age_seconds"]["max"] >= 0 and doc["by_policy"] == {}  # no policy decided anything yet
    names = {p["name"]: p for p in doc["packages"]}
    assert names["lib"]["latest"]["version"] == "2.0" and names["later"]["latest"]["scanned"] is False

    pkg = overview.package_overview(core, repo, "lib")
    assert [(r["version"], r["unresolved_vulnerabilities"]) for r in pkg["releases"]] == [("1.0", 2), ("1.1", 1), ("2.0", 0)]
    assert pkg["vulnerabilities"] == []  # the latest is clean
    old = next(v for v in pkg["versions"] if v["version"] == "1.0")
    assert old["vulnerabilities"][0] == {"id": "OSV-0", "aliases": ["CVE-2026-0"], "severity": "high", "summary": None,
                                         "fixed": ["2.0"]}
    assert old["vulnerabilities"][1]["severity"] == "medium"  # a CVSS score
    assert old["summary"]["licence"]["licence"] == "MIT"
    assert overview.package_overview(core, repo, "nope") is None


def test_a_file_added_after_the_scan_shows_as_not_scanned_until_the_next_one(core):
    """A wheel is scanned before the release's sdist arrives: the version has results, yet the sdist is not covered
    by them; the scan the sdist queued covers both and finds what only the sdist holds."""
    repo = core.create_repository(name="dev", format="python", actor="t")
    _ingest(core, repo, "python", "evil-pkg", "1.0", clean_wheel("evil-pkg"))
    assert core.tasks.drain(core, timeout=30)
    first = overview.package_overview(core, repo, "evil-pkg")["versions"][0]
    assert first["scanned"] and first["unscanned_files"] == [] and first["status"]["malware"] == "pass"
    _ingest(core, repo, "python", "evil-pkg", "1.0", evil_sdist())
    waiting = overview.package_overview(core, repo, "evil-pkg")["versions"][0]
    assert waiting["scanned"] and waiting["unscanned_files"] == ["evil_pkg-1.0.tar.gz"]
    assert core.tasks.drain(core, timeout=30)
    done = overview.package_overview(core, repo, "evil-pkg")["versions"][0]
    assert done["unscanned_files"] == [] and done["status"]["malware"] == "fail"
    _ingest(core, repo, "python", "never", "1.0", clean_wheel("never"))  # no result at all: every file waits
    assert overview.package_overview(core, repo, "never")["versions"][0]["unscanned_files"] == ["never-1.0-py3-none-any.whl"]


@pytest.mark.parametrize("value, level", [("HIGH", "high"), ("moderate", "medium"), (9.8, "critical"), (0, "info"),
                                          ({"score": 7.5}, "high"), ({"level": "low"}, "low"), ("bogus", None), (None, None)])
def test_severity_of(value, level):
    assert overview.severity_of(value) == level


def test_operator_popular_list_from_settings(tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "pypi.txt").write_text("acme-internal-core\n")
    c = Core(Settings(data=tmp_path / "data", worker=False, vetting_popular_dir=lists), migrate=True)
    try:
        repo = c.create_repository(name="dev", format="python", actor="t")
        _ingest(c, repo, "python", "acme-internal-cor", "1.0", clean_wheel("acme-internal-cor"))
        assert c.tasks.drain(c, timeout=30)
        hit = c.scans.results(repo.id, "acme-internal-cor", "1.0")["typosquat"]["findings"][0]
        assert (hit["similar_to"], hit["kind"], hit["source"]) == ("acme-internal-core", "omitted", "popular")
    finally:
        c.close()


def test_overview_reads_the_policy_decision_log_when_there_is_one(core):
    repo = core.create_repository(name="dev", format="python", actor="t")
    _ingest(core, repo, "python", "lib", "1.0", clean_wheel("lib"))
    _ingest(core, repo, "python", "lib", "2.0", clean_wheel("lib", "2.0"))
    assert core.tasks.drain(core, timeout=30)

    class Log:  # the policy area's decisions(): newest first
        def decisions(self, *, repository=None, name=None, version=None, policy=None, limit=100):
            rows = [{"policy": "no-malware", "package": "lib", "version": "2.0", "result": "deny"},
                    {"policy": "no-malware", "package": "lib", "version": "1.0", "result": "allow"},
                    {"policy": "no-malware", "package": "lib", "version": "2.0", "result": "allow"}]
            return [r for r in rows if name is None or r["package"] == name]

    core.policy = Log()
    doc = overview.repository_overview(core, repo)
    assert doc["by_policy"] == {"no-malware": {"allow": 1, "deny": 1}}
    pkg = overview.package_overview(core, repo, "lib")
    assert [(v["version"], v["policies"]) for v in pkg["versions"]] == [("2.0", {"no-malware": "deny"}),
                                                                        ("1.0", {"no-malware": "allow"})]


def test_scans_back_off_during_an_upload_burst(core):
    core.vetting.max_wait, core.vetting.burst_window = 0.6, 60.0
    assert core.vetting.yield_to_uploads() == 0  # quiet: no wait at all
    repo = core.create_repository(name="dev", format="python", actor="t")
    for i in range(3):
        _ingest(core, repo, "python", f"burst{i}", "1.0", clean_wheel(f"burst{i}"))
    waited = core.vetting.yield_to_uploads()
    assert 0.5 <= waited < 2.0  # a burst: it waited, but no longer than max_wait


def test_overview_with_the_real_vulnerabilities_analyzer(core):
    """The advisories area's analyzer (hand-written OSV record) feeds the per-release history and fixed versions."""
    import json

    record = {"schema_version": "1.6.0", "id": "PYSEC-2026-1", "modified": "2026-01-01T00:00:00Z",
              "aliases": ["CVE-2026-0001"], "summary": "lib leaks secrets",
              "database_specific": {"severity": "HIGH"},
              "affected": [{"package": {"ecosystem": "PyPI", "name": "lib"},
                            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1"}]}]}]}
    core.advisories.import_records([("rec.json", json.dumps(record).encode())])
    repo = core.create_repository(name="dev", format="python", actor="t")
    for v in ("1.0", "1.1"):
        _ingest(core, repo, "python", "lib", v, clean_wheel("lib", v))
    assert core.tasks.drain(core, timeout=30)
    pkg = overview.package_overview(core, repo, "lib")
    assert [(r["version"], r["unresolved_vulnerabilities"]) for r in pkg["releases"]] == [("1.0", 1), ("1.1", 0)]
    old = next(v for v in pkg["versions"] if v["version"] == "1.0")
    [vuln] = old["vulnerabilities"]
    assert (vuln["id"], vuln["aliases"], vuln["fixed"], vuln["severity"]) == ("PYSEC-2026-1", ["CVE-2026-0001"], ["1.1"], "high")
    assert old["status"]["vulnerabilities"] == "fail"
