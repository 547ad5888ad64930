"""The advisories service on a real Core (SQLite): incremental import from a directory and a zip, withdrawn
records, the per-package index, the vulnerabilities analyzer, and re-evaluation of only the affected versions."""

from __future__ import annotations

import json

import pytest

from tests.support.osv_records import CVSS_CRITICAL, CVSS_MEDIUM, record, write_dir, write_zip
from wharf.config import Settings
from wharf.core.content import NewArtifact
from wharf.core.services import Core
from wharf.security.advisories import query

FIXED_2 = [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}]


@pytest.fixture
def core(tmp_path):
    c = Core(Settings(data=tmp_path / "data", vetting=True), migrate=True)
    yield c
    c.close()


def _store(core, repo, name, version):
    blob = core.blobs.put_bytes(f"{name}-{version}".encode())
    core.ingest(repo, NewArtifact(format=repo.format, name=name, version=version,
                                  filename=f"{name}-{version}.tar.gz", blob=blob), actor="test")


def test_import_is_incremental_and_lookups_use_the_index(core, tmp_path):
    docs = [record("PYSEC-1", "PyPI", "Demo_Pkg", ranges=FIXED_2, cvss=CVSS_CRITICAL, aliases=["CVE-2026-1"]),
            record("GHSA-aaaa-bbbb-cccc", "npm", "left-pad", versions=["1.0.0"], cvss=CVSS_MEDIUM)]
    report = core.advisories.import_source(write_dir(tmp_path / "d", docs))
    assert (report.read, report.added, report.unchanged) == (2, 2, 0)
    again = core.advisories.import_source(write_zip(tmp_path / "all.zip", docs))
    assert (again.read, again.added, again.updated, again.unchanged) == (2, 0, 0, 2)
    # names are matched in the format's normal form (PEP 503 for PyPI)
    [m] = core.advisories.match("PyPI", "demo-pkg", "1.5")
    assert m.record.id == "PYSEC-1" and m.fixed == ["2.0"] and m.record.level == "critical"
    assert core.advisories.match("PyPI", "demo-pkg", "2.0") == []
    # a changed record (new modified) replaces the old one and its index rows
    docs[0] = record("PYSEC-1", "PyPI", "other-pkg", ranges=FIXED_2, modified="2026-02-01T00:00:00Z")
    third = core.advisories.import_source(write_zip(tmp_path / "all2.zip", docs))
    assert (third.updated, third.unchanged) == (1, 1)
    assert third.touched == {("PyPI", "demo-pkg"), ("PyPI", "other-pkg")}
    assert core.advisories.match("PyPI", "demo-pkg", "1.5") == []
    assert [m.record.id for m in core.advisories.match("PyPI", "other-pkg", "1.0")] == ["PYSEC-1"]


def test_withdrawn_records_stop_matching(core, tmp_path):
    doc = record("GHSA-wwww-xxxx-yyyy", "npm", "thing", ranges=[{"type": "SEMVER", "events": [{"introduced": "0"}]}])
    core.advisories.import_source(write_zip(tmp_path / "a.zip", [doc]))
    assert len(core.advisories.match("npm", "thing", "3.0.0")) == 1
    gone = record("GHSA-wwww-xxxx-yyyy", "npm", "thing", ranges=[{"type": "SEMVER", "events": [{"introduced": "0"}]}],
                  modified="2026-03-01T00:00:00Z", withdrawn="2026-03-01T00:00:00Z")
    report = core.advisories.import_source(write_zip(tmp_path / "b.zip", [gone]))
    assert report.withdrawn == 1 and report.updated == 1
    assert core.advisories.match("npm", "thing", "3.0.0") == []
    assert core.advisories.get("GHSA-wwww-xxxx-yyyy").withdrawn  # kept, readable


def test_invalid_files_are_counted_not_fatal(core, tmp_path):
    d = write_dir(tmp_path / "d", [record("PYSEC-2", "PyPI", "x", versions=["1.0"])])
    (d / "broken.json").write_text("{not json")
    (d / "noid.json").write_text(json.dumps({"summary": "no id"}))
    report = core.advisories.import_source(d)
    assert (report.added, report.invalid) == (1, 2) and len(report.errors) == 2


def test_analyzer_and_reevaluation_touch_only_affected_versions(core, tmp_path):
    py = core.create_repository(name="py", format="python", kind="hosted", private=False, config={}, actor="t")
    npm = core.create_repository(name="js", format="npm", kind="hosted", private=False, config={}, actor="t")
    for v in ("1.0", "1.5", "2.0"):
        _store(core, py, "demo-pkg", v)
    _store(core, py, "unrelated", "1.0")
    _store(core, npm, "left-pad", "1.0.0")
    core.tasks.drain(core, timeout=30)  # package.created -> scans (no advisories yet: all pass)
    assert core.scans.results(py.id, "demo-pkg", "1.0")["vulnerabilities"]["status"] == "pass"
    before = len(core.events.list(types=["scan.completed"], limit=1000))

    docs = [record("PYSEC-9", "PyPI", "demo-pkg", ranges=FIXED_2, cvss=CVSS_CRITICAL)]
    report = core.advisories.import_source(write_zip(tmp_path / "a.zip", docs))
    # three stored versions of demo-pkg are re-evaluated; two of them (1.0, 1.5) changed
    assert (report.packages_touched, report.reevaluated, report.changed_results) == (1, 3, 2)
    res = core.scans.results(py.id, "demo-pkg", "1.5")["vulnerabilities"]
    assert res["status"] == "fail"
    assert res["summary"] == {"count": 1, "max_severity": "critical", "max_score": 9.8, "fixable": 1,
                              "ids": ["PYSEC-9"]}
    assert res["findings"][0]["fixed"] == ["2.0"]
    assert core.scans.results(py.id, "demo-pkg", "2.0")["vulnerabilities"]["status"] == "pass"
    events = core.events.list(types=["scan.completed"], limit=1000)
    assert len(events) - before == 2
    assert {e.version for e in events[: len(events) - before]} == {"1.0", "1.5"}
    # unchanged data: nothing re-evaluated
    assert core.advisories.import_source(write_zip(tmp_path / "b.zip", docs)).reevaluated == 0


def test_osv_query_shapes(core, tmp_path):
    core.advisories.import_source(write_zip(tmp_path / "a.zip", [
        record("PYSEC-3", "PyPI", "Demo", ranges=FIXED_2),
        record("GHSA-1234-5678-9abc", "npm", "@scope/pkg", versions=["1.0.0"]),
        record("MAVEN-1", "Maven", "org.example:lib", ranges=FIXED_2)]))
    svc = core.advisories
    assert [v["id"] for v in query.query(svc, {"package": {"ecosystem": "PyPI", "name": "demo"}, "version": "1"})["vulns"]] == ["PYSEC-3"]
    assert query.query(svc, {"package": {"ecosystem": "PyPI", "name": "demo"}, "version": "2.0"}) == {}
    assert len(query.query(svc, {"package": {"purl": "pkg:npm/%40scope/pkg@1.0.0"}})["vulns"]) == 1
    assert len(query.query(svc, {"package": {"purl": "pkg:maven/org.example/lib@1.9"}})["vulns"]) == 1
    batch = query.querybatch(svc, {"queries": [{"package": {"purl": "pkg:pypi/demo@1.0"}},
                                               {"package": {"ecosystem": "npm", "name": "@scope/pkg"}, "version": "2.0.0"}]})
    assert batch == {"results": [{"vulns": [{"id": "PYSEC-3", "modified": "2026-01-01T00:00:00Z"}]}, {}]}


def test_many_affected_versions_are_reevaluated_in_background_tasks(core, tmp_path):
    py = core.create_repository(name="py", format="python", kind="hosted", private=False, config={}, actor="t")
    for v in ("1.0", "1.1", "1.5", "3.0"):
        _store(core, py, "demo-pkg", v)
    core.tasks.drain(core, timeout=30)
    core.advisories.inline_limit = 2
    report = core.advisories.import_source(write_zip(tmp_path / "a.zip", [
        record("PYSEC-11", "PyPI", "demo-pkg", ranges=FIXED_2, cvss=CVSS_MEDIUM)]))
    assert (report.reevaluated, report.changed_results) == (4, None)  # queued
    assert core.scans.results(py.id, "demo-pkg", "1.0")["vulnerabilities"]["status"] == "pass"
    core.tasks.drain(core, timeout=30)
    statuses = {v: core.scans.results(py.id, "demo-pkg", v)["vulnerabilities"]["status"] for v in ("1.0", "1.1", "1.5", "3.0")}
    assert statuses == {"1.0": "warn", "1.1": "warn", "1.5": "warn", "3.0": "pass"}
    assert len(core.events.list(types=["scan.completed"], package="demo-pkg", limit=100)) == 4 + 3
