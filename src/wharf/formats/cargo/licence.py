"""The declared licence of a crate: ``license`` of its publish metadata (an SPDX expression), or for a crate cached
by a proxy (whose index line has no licence) ``package.license`` of the ``Cargo.toml`` inside the ``.crate``."""

from __future__ import annotations

import io
import tarfile
import tomllib
from typing import Any, Callable

__all__ = ["declared_licence"]

_MAX_TOML = 1024 * 1024


def declared_licence(file: Any, read: Callable[[], bytes]) -> dict[str, Any] | None:
    meta = file.meta or {}
    if meta.get("license"):
        return {"expression": meta["license"]}
    try:
        with tarfile.open(fileobj=io.BytesIO(read()), mode="r:gz") as tf:
            for info in tf:
                if info.isfile() and info.name.count("/") == 1 and info.name.endswith("/Cargo.toml"):
                    src = tf.extractfile(info)
                    doc = tomllib.loads((src.read(_MAX_TOML) if src else b"").decode("utf-8", "replace"))
                    package = doc.get("package") or {}
                    value = package.get("license")
                    if isinstance(value, str):
                        return {"expression": value}
                    if isinstance(package.get("license-file"), str):
                        return {"text": f"see {package['license-file']}"}
                    return None
    except (tarfile.TarError, OSError, EOFError, tomllib.TOMLDecodeError, UnicodeError):
        return None
    return None
