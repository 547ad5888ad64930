"""Maven version ordering, with the ordered lists of Maven's own ComparableVersionTest."""

import itertools

import pytest

from wharf.formats.maven.versions import MavenVersion, sort_versions

# ascending, from maven-artifact's ComparableVersionTest (VERSIONS_QUALIFIER, VERSIONS_NUMBER)
QUALIFIER_ORDER = ["1-alpha2snapshot", "1-alpha2", "1-alpha-123", "1-beta-2", "1-beta123", "1-m2", "1-m11", "1-rc",
                   "1-cr2", "1-rc123", "1-SNAPSHOT", "1", "1-sp", "1-sp2", "1-sp123", "1-abc", "1-def", "1-pom-1",
                   "1-1-snapshot", "1-1", "1-2", "1-123"]
NUMBER_ORDER = ["2.0", "2-1", "2.0.a", "2.0.0.a", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b", "2.1-c", "2.1-1",
                "2.1.0.1", "2.2", "2.123", "11.a2", "11.a11", "11.b2", "11.b11", "11.m2", "11.m11", "11", "11.a",
                "11b", "11c", "11m"]


@pytest.mark.parametrize("order", [QUALIFIER_ORDER, NUMBER_ORDER], ids=["qualifiers", "numbers"])
def test_every_pair_is_ordered_as_maven_orders_it(order):
    for (i, a), (j, b) in itertools.combinations(enumerate(order), 2):
        assert MavenVersion(a) < MavenVersion(b), (a, b)
        assert MavenVersion(b) > MavenVersion(a), (b, a)
        assert MavenVersion(a) != MavenVersion(b)


@pytest.mark.parametrize("a,b", [
    ("1", "1.0"), ("1", "1.0.0"), ("1.0", "1.0.0"), ("1", "1-0"), ("1", "1.0-0"), ("1.0", "1.0-0"),
    ("1a", "1-a"), ("1a", "1.0-a"), ("1a", "1.0.0-a"), ("1.0a", "1-a"), ("1.0.0a", "1-a"),
    ("1x", "1-x"), ("1x", "1.0-x"), ("1cr", "1rc"), ("1a1", "1-alpha-1"), ("1b2", "1-beta-2"), ("1m3", "1-milestone-3"),
    ("1X", "1x"), ("1A", "1a"), ("1-GA", "1"), ("1-final", "1"), ("1-release", "1"), ("1.0.0-ga", "1"),
])
def test_equal_spellings(a, b):
    assert MavenVersion(a) == MavenVersion(b)


def test_sort_versions_orders_and_dedups():
    shuffled = ["1.10", "1.2", "1.0-SNAPSHOT", "1.0", "1.0-rc1", "1.2"]
    assert sort_versions(shuffled) == ["1.0-rc1", "1.0-SNAPSHOT", "1.0", "1.2", "1.10"]
