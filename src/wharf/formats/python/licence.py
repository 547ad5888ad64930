"""The declared licence of a Python distribution: PEP 639 ``License-Expression``, the older ``License`` field and
trove classifiers, read from the core metadata kept with the file at upload or proxy fetch."""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["declared_licence"]


def declared_licence(file: Any, read: Callable[[], bytes]) -> dict[str, Any] | None:
    info = (file.meta or {}).get("metadata")
    if not isinstance(info, dict):
        return None
    classifiers = [c for c in info.get("classifiers") or () if isinstance(c, str) and c.startswith("License ::")]
    return {"expression": info.get("license_expression"), "text": info.get("license"), "classifiers": classifiers}
