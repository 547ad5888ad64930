"""The declared licence of an npm package: ``license`` in its manifest (an SPDX expression; older packages use an
object ``{"type": ...}`` or a ``licenses`` list, read as alternatives)."""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["declared_licence"]


def _name(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        return value["type"]  # type: ignore[no-any-return]
    return None


def declared_licence(file: Any, read: Callable[[], bytes]) -> dict[str, Any] | None:
    manifest = (file.meta or {}).get("manifest")
    if not isinstance(manifest, dict):
        return None
    value = _name(manifest.get("license"))
    if value is not None:
        return {"expression": value}
    names = [n for n in map(_name, manifest.get("licenses") or ()) if n] if isinstance(manifest.get("licenses"), list) else []
    if names:
        return {"text": " OR ".join(names), "choices": names}
    return None
