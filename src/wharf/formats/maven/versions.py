"""Maven version ordering: a port of ``org.apache.maven.artifact.versioning.ComparableVersion`` (Maven 3.8).

Versions are split into items at ``.``, ``-`` and digit/letter transitions; ``-`` and transitions open a sub-list.
Qualifiers order alpha < beta < milestone < rc < snapshot < "" (release, also ga/final/release) < sp < others
(alphabetically); numbers are greater than qualifiers. Trailing "null" items (0, "", empty lists) are ignored,
so ``1`` == ``1.0`` == ``1-ga``.
"""

from __future__ import annotations

import functools
from typing import Iterable, Union

__all__ = ["MavenVersion", "sort_versions", "is_snapshot"]

_QUALIFIERS = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"]
_ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
_RELEASE_INDEX = str(_QUALIFIERS.index(""))


def _comparable_qualifier(q: str) -> str:
    try:
        return str(_QUALIFIERS.index(q))
    except ValueError:
        return f"{len(_QUALIFIERS)}-{q}"


class _Int:
    __slots__ = ("value",)

    def __init__(self, value: int):
        self.value = value

    def is_null(self) -> bool:
        return self.value == 0

    def compare(self, other: "_Item | None") -> int:
        if other is None:
            return 0 if self.value == 0 else 1
        if isinstance(other, _Int):
            return (self.value > other.value) - (self.value < other.value)
        return 1  # a number is greater than a qualifier or a sub-list


class _Str:
    __slots__ = ("value", "key")

    def __init__(self, value: str, followed_by_digit: bool):
        if followed_by_digit and len(value) == 1:
            value = {"a": "alpha", "b": "beta", "m": "milestone"}.get(value, value)
        self.value = _ALIASES.get(value, value)
        self.key = _comparable_qualifier(self.value)

    def is_null(self) -> bool:
        return self.key == _RELEASE_INDEX

    def compare(self, other: "_Item | None") -> int:
        if other is None:
            return (self.key > _RELEASE_INDEX) - (self.key < _RELEASE_INDEX)
        if isinstance(other, _Str):
            return (self.key > other.key) - (self.key < other.key)
        return -1  # a qualifier is less than a number or a sub-list


class _List(list):  # type: ignore[type-arg]
    def is_null(self) -> bool:
        return len(self) == 0

    def normalize(self) -> None:
        for i in range(len(self) - 1, -1, -1):
            item = self[i]
            if item.is_null():
                del self[i]
            elif not isinstance(item, _List):
                break

    def compare(self, other: "_Item | None") -> int:
        if other is None:
            return self[0].compare(None) if self else 0
        if isinstance(other, _Int):
            return -1
        if isinstance(other, _Str):
            return 1
        for i in range(max(len(self), len(other))):
            left = self[i] if i < len(self) else None
            right = other[i] if i < len(other) else None
            if left is None:
                result = 0 if right is None else -right.compare(None)
            else:
                result = left.compare(right)
            if result:
                return result
        return 0


_Item = Union[_Int, _Str, _List]


def _parse_item(is_digit: bool, buf: str) -> _Item:
    return _Int(int(buf)) if is_digit else _Str(buf, False)


def _parse(version: str) -> _List:
    items = _List()
    lst = items
    stack = [lst]
    version = version.lower()
    is_digit = False
    start = 0
    for i, c in enumerate(version):
        if c in ".-":
            lst.append(_Int(0) if i == start else _parse_item(is_digit, version[start:i]))
            start = i + 1
            if c == "-":
                sub = _List()
                lst.append(sub)
                lst = sub
                stack.append(lst)
        elif c.isdigit() and c.isascii():
            if not is_digit and i > start:
                lst.append(_Str(version[start:i], True))
                start = i
                sub = _List()
                lst.append(sub)
                lst = sub
                stack.append(lst)
            is_digit = True
        else:
            if is_digit and i > start:
                lst.append(_parse_item(True, version[start:i]))
                start = i
                sub = _List()
                lst.append(sub)
                lst = sub
                stack.append(lst)
            is_digit = False
    if len(version) > start:
        lst.append(_parse_item(is_digit, version[start:]))
    while stack:
        stack.pop().normalize()
    return items


@functools.total_ordering
class MavenVersion:
    """A version string with Maven's ordering (``MavenVersion("1.0") == MavenVersion("1")``)."""

    __slots__ = ("value", "_items")

    def __init__(self, value: str):
        self.value = value
        self._items = _parse(value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MavenVersion) and self._items.compare(other._items) == 0

    def __lt__(self, other: "MavenVersion") -> bool:
        return self._items.compare(other._items) < 0

    __hash__ = None  # type: ignore[assignment]  # equal versions may be spelled differently ("1" == "1.0")

    def __repr__(self) -> str:
        return f"MavenVersion({self.value!r})"


def is_snapshot(version: str) -> bool:
    return version.endswith("-SNAPSHOT")


def sort_versions(versions: Iterable[str]) -> list[str]:
    """Distinct versions in Maven order, oldest first (equal spellings keep their first occurrence's order)."""
    return sorted(dict.fromkeys(versions), key=MavenVersion)
