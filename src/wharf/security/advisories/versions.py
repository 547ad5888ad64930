"""Version orderings per OSV ecosystem, for range evaluation.

``key(ecosystem)`` returns a function turning a version string into a comparable value (raising ``ValueError``
when the string is not a version of that ecosystem), or None when Wharf has no ordering for the ecosystem (then
only explicit ``versions`` lists match). SEMVER ranges use Semantic Versioning 2.0 precedence whatever the
ecosystem.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from packaging.version import InvalidVersion, Version

__all__ = ["key", "semver_key", "pep440_key", "maven_key", "ZERO"]

ZERO = "0"  # ``introduced: "0"``: before every version


@functools.lru_cache(maxsize=65536)
def pep440_key(v: str) -> Any:
    try:
        return Version(v)
    except InvalidVersion as exc:
        raise ValueError(str(exc)) from None


@functools.lru_cache(maxsize=65536)
def semver_key(v: str) -> Any:
    """SemVer 2.0 precedence (build metadata ignored). A leading ``v`` is tolerated (Go, some npm data)."""
    import semver  # only advisories of SemVer ecosystems need it

    text = v[1:] if v[:1] in ("v", "=") else v
    try:
        parsed = semver.Version.parse(text)
    except (ValueError, TypeError):
        raise ValueError(f"not a semantic version: {v!r}") from None
    return parsed.replace(build=None)


@functools.lru_cache(maxsize=65536)
def maven_key(v: str) -> Any:
    from ...formats.maven.versions import MavenVersion  # Maven's own ComparableVersion ordering

    return MavenVersion(v)


_ECOSYSTEMS: dict[str, Callable[[str], Any]] = {
    "PyPI": pep440_key,
    "npm": semver_key,
    "crates.io": semver_key,
    "Go": semver_key,
    "Maven": maven_key,
}


def key(ecosystem: str, range_type: str = "ECOSYSTEM") -> Callable[[str], Any] | None:
    if range_type == "SEMVER":
        return semver_key
    if range_type != "ECOSYSTEM":
        return None  # GIT ranges need the repository's commit graph: not evaluated
    base = ecosystem.split(":", 1)[0]  # "Ubuntu:22.04:LTS", "Maven:<repository URL>" keep their base ordering
    return _ECOSYSTEMS.get(base)
