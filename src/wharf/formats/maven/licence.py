"""The declared licence of a Maven artifact: the ``<licenses>`` of its POM (several licences are alternatives, as
the POM reference reads them). Only the POM file answers; jars and other files of the version do not."""

from __future__ import annotations

from typing import Any, Callable

from .parse import InvalidArtifact, parse_xml

__all__ = ["declared_licence"]

_MAX_POM = 4 * 1024 * 1024


def declared_licence(file: Any, read: Callable[[], bytes]) -> dict[str, Any] | None:
    if not file.filename.endswith(".pom"):
        return None
    data = read()
    if len(data) > _MAX_POM:
        return None
    try:
        root = parse_xml(data, f"the POM '{file.filename}'")
    except InvalidArtifact:
        return None
    names = []
    for lic in root.findall("licenses/license"):
        name = lic.find("name")
        if name is not None and name.text and name.text.strip():
            names.append(name.text.strip())
    if not names:
        return None
    return {"text": " OR ".join(names), "choices": names}
