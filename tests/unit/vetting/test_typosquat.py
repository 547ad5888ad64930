"""Typosquatting: edit kinds, trusted names, the popular list from the installed dependency."""

from __future__ import annotations

import pytest
from packaging.utils import canonicalize_name

from wharf.security import typosquat
from wharf.security.typosquat import Candidates, classify, find_similar


@pytest.mark.parametrize("new, old, kind", [
    ("requestss", "requests", "repeated"),
    ("rquests", "requests", "omitted"),
    ("reqeusts", "requests", "swapped"),
    ("reqvests", "requests", "substituted"),
    ("requxests", "requests", "inserted"),
    ("python_dateutil", "python-dateutil", "separator"),
    ("pythondateutil", "python-dateutil", "separator"),
    ("lodash.merge", "lodash-merge", "separator"),
    ("dateutil-python", "python-dateutil", "swapped-words"),
    ("requests", "requests", None),
    ("flask", "django", None),
    ("reqxests2", "requests", None),
])
def test_classify(new: str, old: str, kind: str | None) -> None:
    assert classify(new, old) == kind


def test_against_trusted_repository_names() -> None:
    local = Candidates().add(["acme-utils", "other"], "repository")
    result = typosquat.analyze("acme-utlis", trusted=[(local, "repository", None)], popular=Candidates())
    assert result["status"] == "warn"
    (finding,) = result["findings"]
    assert finding["similar_to"] == "acme-utils" and finding["kind"] == "swapped" and finding["source"] == "repository"
    assert result["summary"] == {"typosquat": True, "typosquat_of": ["acme-utils"]}


def test_short_names_and_unrelated_names_pass() -> None:
    cands = Candidates().add(["six", "attrs"], "popular")
    assert find_similar("sux", cands) == []  # too short for a substitution to mean anything
    assert find_similar("sixx", cands)[0]["kind"] == "repeated"
    assert typosquat.analyze("totally-different", trusted=[], popular=cands)["status"] == "pass"


def test_popular_list_comes_from_the_installed_dependency() -> None:
    pypi = typosquat.popular_names("pypi", canonicalize_name)
    assert len(pypi.names) > 1000 and "requests" in pypi
    result = typosquat.analyze("reqeusts", trusted=[], popular=pypi)
    assert {"similar_to": "requests", "kind": "swapped"} in [
        {k: f[k] for k in ("similar_to", "kind")} for f in result["findings"]]
    assert typosquat.analyze("requests", trusted=[], popular=pypi)["status"] == "pass"  # popular itself
    npm = typosquat.popular_names("npm", str.lower)
    assert find_similar("lodahs", npm)[0]["similar_to"] == "lodash"
    assert typosquat.popular_names(None, str.lower).names == []


def test_operator_list_adds_names(tmp_path) -> None:
    (tmp_path / "corp.txt").write_text("# internal names\nacme-billing\n")
    cands = typosquat.popular_names("corp", str.lower, extra_dir=str(tmp_path))
    assert cands.names == ["acme-billing"]
    assert find_similar("acme-biling", cands)[0]["kind"] == "omitted"


def test_the_distance_search_finds_exactly_the_names_one_damerau_levenshtein_edit_away() -> None:
    """The search scores with the optimal-string-alignment distance (faster); at distance 1 it must find the same
    names the full Damerau-Levenshtein distance finds, adjacent swaps included, and nothing two edits away."""
    import random
    import string

    from rapidfuzz.distance import DamerauLevenshtein

    rng = random.Random(5)
    alphabet = string.ascii_lowercase[:5]  # (no separators: those have checks of their own)
    base = sorted({"".join(rng.choice(alphabet) for _ in range(rng.randint(7, 9))) for _ in range(600)})
    variants = set(base)
    for n in base[:300]:  # substitutions and deletions of some of them are candidates too
        i = rng.randrange(len(n))
        variants.add(n[:i] + rng.choice(alphabet) + n[i + 1:])
        variants.add(n[:i] + n[i + 1:])
    cands = Candidates().add(sorted(variants), "repository")
    swaps_found = 0
    for n in base[:300]:
        i = rng.randrange(len(n) - 1)
        probe = n[:i] + n[i + 1] + n[i] + n[i + 2:]  # an adjacent swap of a candidate
        if probe in cands:
            continue
        want = {c for c in cands.names if DamerauLevenshtein.distance(probe, c) <= 1 and classify(probe, c)}
        got = {f["similar_to"] for f in find_similar(probe, cands, limit=10_000)}
        assert got == want, probe
        swaps_found += n in got
    assert swaps_found > 100
