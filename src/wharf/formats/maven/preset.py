"""The ``central`` upstream preset: the URL of the repository with id ``central`` in the super POM of the Maven
installed on this machine (``org/apache/maven/model/pom-4.0.0.xml`` inside ``maven-model-builder-*.jar``)."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

from .parse import InvalidArtifact, parse_xml

__all__ = ["central_url", "maven_home"]

_SUPER_POM = "org/apache/maven/model/pom-4.0.0.xml"


def maven_home() -> Path | None:
    """``MAVEN_HOME``/``M2_HOME``, else the installation ``mvn`` on PATH belongs to."""
    for var in ("MAVEN_HOME", "M2_HOME"):
        if os.environ.get(var):
            return Path(os.environ[var])
    mvn = shutil.which("mvn")
    if mvn is None:
        return None
    return Path(mvn).resolve().parent.parent


def central_url(home: Path | None = None) -> str | None:
    home = home or maven_home()
    if home is None:
        return None
    for jar in sorted((home / "lib").glob("maven-model-builder*.jar")):
        try:
            with zipfile.ZipFile(jar) as zf:
                root = parse_xml(zf.read(_SUPER_POM), "Maven's super POM")
        except (OSError, KeyError, zipfile.BadZipFile, InvalidArtifact):
            continue
        for repo in root.iter("repository"):
            rid, url = repo.find("id"), repo.find("url")
            if rid is not None and rid.text == "central" and url is not None and url.text:
                return url.text.strip()
    return None
