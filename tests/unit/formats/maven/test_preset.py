"""The ``central`` preset reads the URL from the installed Maven's super POM (never a written host name)."""

import shutil
import zipfile

import pytest

from wharf.formats.maven import MavenFormat
from wharf.formats.maven.preset import central_url

SUPER_POM = """<project><repositories><repository><id>other</id><url>http://127.0.0.1:1/other</url></repository>
<repository><id>central</id><url>http://127.0.0.1:9/maven2</url></repository></repositories></project>"""


def test_reads_the_central_repository_of_the_super_pom(tmp_path):
    (tmp_path / "lib").mkdir()
    with zipfile.ZipFile(tmp_path / "lib" / "maven-model-builder-3.x.jar", "w") as zf:
        zf.writestr("org/apache/maven/model/pom-4.0.0.xml", SUPER_POM)
    assert central_url(tmp_path) == "http://127.0.0.1:9/maven2"


def test_no_maven_no_preset(tmp_path):
    assert central_url(tmp_path) is None
    assert MavenFormat().upstream_preset("nonsense") is None


@pytest.mark.skipif(shutil.which("mvn") is None, reason="mvn not installed")
def test_installed_maven_has_a_central_url():
    url = MavenFormat().upstream_preset("central")
    assert url is not None and url.startswith("https://")
