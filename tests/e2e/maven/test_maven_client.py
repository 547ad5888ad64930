"""mvn deploy (release and SNAPSHOT) into a hosted repository, and a second project resolving it through a group."""

from __future__ import annotations

import hashlib
import re
import zipfile

import httpx

from tests.conftest import unique
from tests.support.maven_client import MavenClient

from .conftest import app_project, create_repo, lib_project


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_deploy_release_and_snapshot_then_resolve_through_group(server, tmp_path):
    hosted, group = unique("mvn"), unique("mvngroup")
    create_repo(server, hosted)
    create_repo(server, group, "group", members=[hosted])
    token = server.create_token(unique("ci"), {hosted: "write"})
    deployer = MavenClient(tmp_path / "deployer", f"{server.url}/{group}/", username="ci", password=token)
    gid, aid = "org.acme." + unique("g").replace("-", ""), "greeter"
    base = f"{server.url}/{hosted}/{gid.replace('.', '/')}/{aid}"

    # release 1.0
    lib = lib_project(tmp_path / "lib-1.0", gid, aid, "1.0", f"{server.url}/{hosted}/")
    res = deployer.run(lib, "deploy")
    assert res.ok, res
    jar = lib / "target" / f"{aid}-1.0.jar"
    r = httpx.get(f"{base}/1.0/{aid}-1.0.jar")
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == _sha256(jar)
    assert httpx.get(f"{base}/1.0/{aid}-1.0.jar.sha1").text == hashlib.sha1(jar.read_bytes()).hexdigest()
    assert httpx.get(f"{base}/1.0/{aid}-1.0.jar.sha512").text == hashlib.sha512(jar.read_bytes()).hexdigest()

    # SNAPSHOT 1.1-SNAPSHOT, deployed twice: timestamped builds 1 and 2, metadata kept by the server
    snap = lib_project(tmp_path / "lib-snap", gid, aid, "1.1-SNAPSHOT", f"{server.url}/{hosted}/", text="snap1")
    assert (res := deployer.run(snap, "deploy")).ok, res
    snap2 = lib_project(tmp_path / "lib-snap2", gid, aid, "1.1-SNAPSHOT", f"{server.url}/{hosted}/", text="snap2")
    assert (res := deployer.run(snap2, "deploy")).ok, res
    vmeta = httpx.get(f"{base}/1.1-SNAPSHOT/maven-metadata.xml").text
    assert "<buildNumber>2</buildNumber>" in vmeta, vmeta
    stamp = re.search(r"<timestamp>([0-9.]+)</timestamp>", vmeta).group(1)
    assert f"<value>1.1-{stamp}-2</value>" in vmeta
    snap_jar = httpx.get(f"{base}/1.1-SNAPSHOT/{aid}-1.1-{stamp}-2.jar")
    assert snap_jar.status_code == 200
    assert hashlib.sha256(snap_jar.content).hexdigest() == _sha256(snap2 / "target" / f"{aid}-1.1-SNAPSHOT.jar")
    ameta = httpx.get(f"{base}/maven-metadata.xml").text
    assert "<release>1.0</release>" in ameta and "<latest>1.1-SNAPSHOT</latest>" in ameta
    assert "<version>1.0</version>" in ameta and "<version>1.1-SNAPSHOT</version>" in ameta
    # the group serves the same (merged) metadata and the files
    gbase = f"{server.url}/{group}/{gid.replace('.', '/')}/{aid}"
    assert "<release>1.0</release>" in httpx.get(f"{gbase}/maven-metadata.xml").text

    # a second project compiles against both through the group, with nothing of them in its local repository
    for version, expected in (("1.0", "hello"), ("1.1-SNAPSHOT", "snap2")):
        consumer = MavenClient(tmp_path / f"consumer-{version}", f"{server.url}/{group}/")
        app = app_project(tmp_path / f"app-{version}", [(gid, aid, version)])
        res = consumer.run(app, "package")
        assert res.ok, res
        resolved = list((consumer.local_repo / gid.replace(".", "/") / aid / version).glob(f"{aid}-*.jar"))
        assert resolved, res
        with zipfile.ZipFile(resolved[0]) as zf:
            assert "org/acme/lib/Greeter.class" in zf.namelist()
        with zipfile.ZipFile(app / "target" / f"{app.name and _artifact(app)}-1.0.jar") as zf:
            assert "org/acme/app/App.class" in zf.namelist()
        if version == "1.0":
            assert _sha256(resolved[0]) == _sha256(jar)
        else:
            assert _sha256(resolved[0]) == _sha256(snap2 / "target" / f"{aid}-1.1-SNAPSHOT.jar"), expected

    # releases are immutable: deploying 1.0 again with other bytes fails and changes nothing
    lib_again = lib_project(tmp_path / "lib-1.0-again", gid, aid, "1.0", f"{server.url}/{hosted}/", text="changed")
    res = deployer.run(lib_again, "deploy")
    assert not res.ok and "409" in res.output, res
    r = httpx.get(f"{base}/1.0/{aid}-1.0.jar")
    assert hashlib.sha256(r.content).hexdigest() == _sha256(jar)


def _artifact(project) -> str:
    return re.search(r"<artifactId>(app[^<]*)</artifactId>", (project / "pom.xml").read_text()).group(1)
