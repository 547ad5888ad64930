"""OSV range evaluation per ecosystem ordering, severity, fixed versions and the npm range form."""

from __future__ import annotations

import jsonschema
import pytest

from tests.support.osv_records import CVSS4_HIGH, CVSS_CRITICAL, CVSS_MEDIUM, record, validate
from wharf.security.advisories import osv


def _entry(ecosystem: str, events: list[dict[str, str]], *, rtype: str = "ECOSYSTEM",
           versions: list[str] | None = None) -> dict:
    doc = record("TEST-1", ecosystem, "demo", ranges=[{"type": rtype, "events": events}], versions=versions)
    return doc["affected"][0]


@pytest.mark.parametrize("ecosystem,events,version,expected", [
    # PyPI: PEP 440 (pre-releases before the release, post-releases after, epochs)
    ("PyPI", [{"introduced": "0"}, {"fixed": "1.2.3"}], "1.2.3rc1", True),
    ("PyPI", [{"introduced": "0"}, {"fixed": "1.2.3"}], "1.2.3", False),
    ("PyPI", [{"introduced": "0"}, {"fixed": "1.2.3"}], "1.2.3.post1", False),
    ("PyPI", [{"introduced": "1.0"}, {"fixed": "1.2.3"}], "1.0.0", True),
    ("PyPI", [{"introduced": "1.0"}, {"fixed": "1.2.3"}], "0.9", False),
    ("PyPI", [{"introduced": "0"}, {"fixed": "2.0"}], "1!0.1", False),
    ("PyPI", [{"introduced": "1.10"}, {"fixed": "1.12"}], "1.9", False),  # numeric, not lexical
    ("PyPI", [{"introduced": "1.10"}, {"fixed": "1.12"}], "1.11.4", True),
    # last_affected is inclusive
    ("PyPI", [{"introduced": "0"}, {"last_affected": "2.1.214"}], "2.1.214", True),
    ("PyPI", [{"introduced": "0"}, {"last_affected": "2.1.214"}], "2.1.215", False),
    # several intervals in one range
    ("PyPI", [{"introduced": "1.0"}, {"fixed": "1.0.2"}, {"introduced": "3.0"}, {"fixed": "3.2.5"}], "2.0", False),
    ("PyPI", [{"introduced": "1.0"}, {"fixed": "1.0.2"}, {"introduced": "3.0"}, {"fixed": "3.2.5"}], "3.1", True),
    # events out of order are sorted first
    ("PyPI", [{"fixed": "3.2.5"}, {"introduced": "3.0"}], "3.1", True),
    # limit: versions at or above every limit are not affected
    ("PyPI", [{"introduced": "0"}, {"limit": "2.0"}], "1.5", True),
    ("PyPI", [{"introduced": "0"}, {"limit": "2.0"}], "2.0", False),
    ("PyPI", [{"introduced": "0"}, {"limit": "*"}], "9.0", True),
    # npm and crates.io: semver precedence (pre-release below release, build metadata ignored)
    ("npm", [{"introduced": "0"}, {"fixed": "4.17.21"}], "4.17.20", True),
    ("npm", [{"introduced": "0"}, {"fixed": "4.17.21"}], "4.17.21-beta.1", True),
    ("npm", [{"introduced": "0"}, {"fixed": "4.17.21"}], "4.17.21+build.5", False),
    ("npm", [{"introduced": "1.0.0-alpha"}, {"fixed": "1.0.0"}], "1.0.0-beta.11", True),
    ("npm", [{"introduced": "2.0.0"}], "10.0.0", True),
    ("npm", [{"introduced": "2.0.0"}], "1.9.9", False),
    ("crates.io", [{"introduced": "0.2.0"}, {"fixed": "0.2.10"}], "0.2.9", True),
    ("crates.io", [{"introduced": "0.2.0"}, {"fixed": "0.2.10"}], "0.2.10", False),
    # Maven: ComparableVersion (qualifiers, "1" == "1.0")
    ("Maven", [{"introduced": "0"}, {"fixed": "2.15.0"}], "2.15.0-rc1", True),
    ("Maven", [{"introduced": "0"}, {"fixed": "2.15.0"}], "2.15", False),
    ("Maven", [{"introduced": "2.0-beta9"}, {"fixed": "2.15.0"}], "2.0-alpha1", False),
    ("Maven", [{"introduced": "2.0-beta9"}, {"fixed": "2.15.0"}], "2.0", True),
    ("Maven", [{"introduced": "1.0"}, {"fixed": "1.10"}], "1.9", True),
])
def test_ranges(ecosystem: str, events: list, version: str, expected: bool) -> None:
    assert osv.is_affected(_entry(ecosystem, events), ecosystem, version) is expected


def test_semver_range_type_applies_in_any_ecosystem() -> None:
    entry = _entry("Go", [{"introduced": "0"}, {"fixed": "1.4.0"}], rtype="SEMVER")
    assert osv.is_affected(entry, "Go", "v1.3.9") and not osv.is_affected(entry, "Go", "v1.4.0")


def test_explicit_versions_and_unknown_orderings() -> None:
    entry = _entry("RubyGems", [{"introduced": "1.0"}, {"fixed": "2.0"}], versions=["1.5.0"])
    assert osv.is_affected(entry, "RubyGems", "1.5.0")
    assert not osv.is_affected(entry, "RubyGems", "1.6.0")  # no RubyGems ordering: only the explicit list


def test_git_ranges_are_not_evaluated() -> None:
    doc = validate({"id": "OSV-2026-1", "modified": "2026-01-01T00:00:00Z", "affected": [{
        "package": {"ecosystem": "PyPI", "name": "demo"},
        "ranges": [{"type": "GIT", "repo": "http://127.0.0.1/demo.git", "events": [{"introduced": "0"}]}]}]})
    assert not osv.is_affected(doc["affected"][0], "PyPI", "1.0")


def test_invalid_versions_do_not_match() -> None:
    entry = _entry("PyPI", [{"introduced": "0"}, {"fixed": "1.0"}])
    assert not osv.is_affected(entry, "PyPI", "not a version!")


@pytest.mark.parametrize("vector,score,level", [
    (CVSS_CRITICAL, 9.8, "critical"), (CVSS_MEDIUM, 4.2, "medium"), (CVSS4_HIGH, 8.7, "high"),
])
def test_severity_from_cvss_vectors(vector: str, score: float, level: str) -> None:
    rec = osv.parse_record("{}", record("TEST-2", "PyPI", "demo", versions=["1"], cvss=vector))
    assert (rec.score, rec.level) == (score, level)


def test_severity_word_without_vector_and_bad_vectors() -> None:
    doc = record("TEST-3", "npm", "demo", versions=["1.0.0"])
    doc["database_specific"] = {"severity": "MODERATE"}
    assert osv.severity_of(doc) == (None, "medium")
    doc["severity"] = [{"type": "CVSS_V3", "score": "CVSS:3.1/garbage"}]
    assert osv.severity_of(doc) == (None, "medium")


def test_fixed_versions_and_npm_range() -> None:
    doc = record("TEST-6", "npm", "demo", versions=["0.5.0"], ranges=[
        {"type": "SEMVER", "events": [{"introduced": "1.0.0"}, {"fixed": "1.2.3"}, {"introduced": "3.0.0"}]},
        {"type": "SEMVER", "events": [{"introduced": "2.0.0"}, {"last_affected": "2.1.0"}]}])
    entry = doc["affected"][0]
    assert osv.fixed_versions([entry]) == ["1.2.3"]
    assert osv.npm_range([entry]) == "0.5.0 || >=1.0.0 <1.2.3 || >=3.0.0 || >=2.0.0 <=2.1.0"
    assert osv.npm_range([_entry("npm", [{"introduced": "0"}, {"fixed": "1.0.0"}])]) == "<1.0.0"


def test_records_need_id_and_modified() -> None:
    with pytest.raises(osv.InvalidRecord):
        osv.parse_record(b'{"id": "X-1"}')
    with pytest.raises(osv.InvalidRecord):
        osv.parse_record(b"[1]")
    with pytest.raises(osv.InvalidRecord):
        osv.parse_record(b"not json")


def test_schema_rejects_malformed_records() -> None:
    doc = record("TEST-4", "PyPI", "demo", ranges=[{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}])
    doc["affected"][0]["ranges"][0]["events"].append({"introduced": "1", "fixed": "2"})
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)
    with pytest.raises(jsonschema.ValidationError):
        validate({"id": "TEST-5"})
