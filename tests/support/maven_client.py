"""The real Maven client (``mvn``), isolated from this machine and from every public repository.

Each ``MavenClient`` has its own HOME, its own local repository (a copy of the plugin cache that
``scripts/test-tools.d/maven.sh`` fills with the pinned plugins of ``tests/e2e/maven/plugins.txt``) and a
``settings.xml`` whose only remote is Wharf: a mirror of ``*`` pointing at the repository under test.

The plugins in the cache were downloaded from another repository id; Maven's enhanced local repository manager
would refuse them for our mirror (``_remote.repositories`` tracking). Reading tracking from another file name
(``aether.enhancedLocalRepository.trackingFilename``) leaves them untracked, which Maven treats as locally
installed, i.e. usable with any remote; what this run downloads from Wharf is tracked in that file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Sequence
from xml.sax.saxutils import escape

from . import clients

__all__ = ["MavenClient", "PLUGINS", "plugin_cache", "write_project", "maven_available", "Result"]

ROOT = Path(__file__).resolve().parents[2]
_PLUGINS_FILE = ROOT / "tests" / "e2e" / "maven" / "plugins.txt"


def _read_plugins() -> list[tuple[str, str, str]]:
    out = []
    for line in _PLUGINS_FILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            coord, version = line.split()
            group, artifact = coord.split(":")
            out.append((group, artifact, version))
    return out


PLUGINS = _read_plugins()


def plugin_cache() -> Path:
    return Path(os.environ.get("WHARF_M2_CACHE", Path.home() / ".cache" / "wharf-m2")) / "repository"


def maven_available() -> str | None:
    """None when mvn and the plugin cache are there, else what is missing."""
    if shutil.which("mvn") is None:
        return "mvn is not installed (scripts/test-tools.d/maven.sh installs it)"
    if not plugin_cache().is_dir():
        return f"the Maven plugin cache {plugin_cache()} is missing: run scripts/test-tools.d/maven.sh"
    return None


class Result(clients.Result):
    """Maven's output is long: ``repr`` shows its [ERROR]/[WARNING] lines first."""

    def __repr__(self) -> str:
        errors = "\n".join(line for line in self.output.splitlines() if "[ERROR]" in line or "[WARNING]" in line)
        return f"Result(rc={self.returncode}, errors:\n{errors[:6000]}\n...output tail:\n{self.output[-2000:]})"


def write_project(root: Path, group: str, artifact: str, version: str, *, java: str, package: str,
                  dependencies: Sequence[tuple[str, str, str]] = (), distribution: tuple[str, str] | None = None) -> Path:
    """A small jar project with every plugin pinned; ``distribution`` = (server id, repository URL) for deploy."""
    src = root / "src" / "main" / "java" / Path(*package.split("."))
    src.mkdir(parents=True, exist_ok=True)
    cls = java.split("class ", 1)[1].split()[0]
    (src / f"{cls}.java").write_text(f"package {package};\n\n{java}\n")
    plugins = "".join(f"<plugin><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version></plugin>"
                      for g, a, v in PLUGINS)
    deps = "".join(f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{escape(v)}</version>"
                   "</dependency>" for g, a, v in dependencies)
    dist = ""
    if distribution:
        rid, url = distribution
        dist = (f"<distributionManagement><repository><id>{rid}</id><url>{escape(url)}</url></repository>"
                f"<snapshotRepository><id>{rid}</id><url>{escape(url)}</url></snapshotRepository>"
                "</distributionManagement>")
    (root / "pom.xml").write_text(f"""<?xml version="1.0" encoding="UTF-8"?>
<project>
  <modelVersion>4.0.0</modelVersion>
  <groupId>{group}</groupId>
  <artifactId>{artifact}</artifactId>
  <version>{escape(version)}</version>
  <packaging>jar</packaging>
  <properties>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
    <maven.compiler.release>17</maven.compiler.release>
  </properties>
  <dependencies>{deps}</dependencies>
  <build><plugins>{plugins}</plugins></build>
  {dist}
</project>
""")
    return root


# The super POM's "central" has SNAPSHOTs disabled, and a mirror inherits the policy of what it mirrors: redefine
# "central" with SNAPSHOTs enabled (its URL is never used, the mirror replaces it).
_REPO = ("<{tag}><id>central</id><url>http://127.0.0.1/mirrored-by-wharf</url><releases><enabled>true</enabled></releases>"
         "<snapshots><enabled>true</enabled></snapshots></{tag}>")
_SNAPSHOTS_TOO = (f"<repositories>{_REPO.format(tag='repository')}</repositories>"
                  f"<pluginRepositories>{_REPO.format(tag='pluginRepository')}</pluginRepositories>")


class MavenClient:
    """``mvn`` with a private HOME, local repository and settings (mirror ``*`` -> ``mirror_url``)."""

    SERVER_ID = "wharf"

    def __init__(self, tmp: Path, mirror_url: str, *, username: str | None = None, password: str | None = None,
                 local_repo: Path | None = None):
        self.tmp = Path(tmp)
        self.home = self.tmp / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        self.local_repo = local_repo or self.tmp / "m2-repository"
        if not self.local_repo.exists():
            shutil.copytree(plugin_cache(), self.local_repo, symlinks=True)
        self.settings = self.tmp / "settings.xml"
        server = ""
        if username is not None or password is not None:
            server = (f"<servers><server><id>{self.SERVER_ID}</id><username>{escape(username or '')}</username>"
                      f"<password>{escape(password or '')}</password></server></servers>")
        self.settings.write_text(f"""<settings>
  <localRepository>{escape(str(self.local_repo))}</localRepository>
  <interactiveMode>false</interactiveMode>
  {server}
  <mirrors><mirror><id>{self.SERVER_ID}</id><mirrorOf>*</mirrorOf><url>{escape(mirror_url)}</url></mirror></mirrors>
  <profiles><profile><id>snapshots</id>{_SNAPSHOTS_TOO}</profile></profiles>
  <activeProfiles><activeProfile>snapshots</activeProfile></activeProfiles>
</settings>
""")

    def fresh_local_repo(self) -> None:
        """Start again from the plugin cache only (nothing resolved from Wharf before)."""
        shutil.rmtree(self.local_repo)
        shutil.copytree(plugin_cache(), self.local_repo, symlinks=True)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("MAVEN_", "M2_", "WHARF_")) and k.lower() not in ("https_proxy", "http_proxy")}
        env.update({"HOME": str(self.home), "MAVEN_OPTS": "-Xmx512m -XX:TieredStopAtLevel=1 -Xshare:auto",
                    "NO_COLOR": "1"})
        return env

    def run(self, project: Path, *goals: str, timeout: float = 240) -> Result:
        args = ["mvn", "-B", "-ntp", "-e", "-s", str(self.settings), "-gs", str(self._empty_global()),
                f"-Dmaven.repo.local={self.local_repo}",
                "-Daether.enhancedLocalRepository.trackingFilename=_wharf-test.repositories",
                "-Dstyle.color=never", "-Djansi.force=false", *goals]
        return Result(subprocess.run(args, cwd=project, env=self.env(), capture_output=True, text=True, timeout=timeout))

    def _empty_global(self) -> Path:
        path = self.tmp / "global-settings.xml"
        if not path.exists():
            path.write_text("<settings/>\n")
        return path

    def local_file(self, group: str, artifact: str, version: str, filename: str) -> Path:
        return self.local_repo / Path(*group.split(".")) / artifact / version / filename
