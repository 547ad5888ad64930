"""Package attributes are versioned with the repository; group routing applies the guard and reserved patterns;
every format folder is discovered; an artifact's identity includes its name and version."""

from __future__ import annotations

import pytest

from wharf.config import Settings
from wharf.core.content import NewArtifact
from wharf.core.groups import reserved_pattern, route
from wharf.core.services import Core
from wharf.formats import load_plugins


@pytest.fixture
def core(tmp_path):
    c = Core(Settings(data=tmp_path / "data"), migrate=True)
    yield c
    c.close()


def test_attributes_are_versioned(core):
    repo = core.create_repository(name="r", format="python", actor="t")
    v1 = core.content.set_attributes(repo, "pkg", {"dist-tags": {"latest": "1.0"}}, actor="t")
    assert v1 is not None
    assert core.content.set_attributes(repo, "pkg", {"dist-tags": {"latest": "1.0"}}, actor="t") is None  # no change
    v2 = core.content.set_attributes(repo, "pkg", {"dist-tags": {"latest": "2.0"}, "owners": ["a"]}, actor="t")
    v3 = core.content.set_attributes(repo, "pkg", {"owners": None}, actor="t")
    assert v1 < v2 < v3
    assert core.content.attributes(repo.id, "pkg") == {"dist-tags": {"latest": "2.0"}}
    assert core.content.attributes(repo.id, "pkg", at_version=v1) == {"dist-tags": {"latest": "1.0"}}
    assert core.content.attributes(repo.id, "pkg", at_version=v2) == {"dist-tags": {"latest": "2.0"}, "owners": ["a"]}
    assert core.content.all_attributes(repo.id, "dist-tags") == {"pkg": {"dist-tags": {"latest": "2.0"}}}
    assert core.content.set_attributes(repo, "pkg", {"missing": None}, actor="t") is None  # deleting nothing
    events = core.audit.query(repository="r", action="repository:package:attributes")
    assert len(events) == 3 and {e.subject for e in events} == {"pkg"}


def test_same_bytes_under_two_names_are_two_artifacts(core):
    repo = core.create_repository(name="g", format="python", actor="t")
    blob = core.blobs.put_bytes(b"same bytes")
    a = core.content.add(repo, NewArtifact("python", "one", "1", "f.bin", blob, key="one/f.bin"), actor="t")
    b = core.content.add(repo, NewArtifact("python", "two", "1", "f.bin", blob, key="two/f.bin"), actor="t")
    assert a.file.artifact_id != b.file.artifact_id
    assert {(f.name, f.key) for f in core.content.files(repo.id)} == {("one", "one/f.bin"), ("two", "two/f.bin")}


def test_group_route_guard_and_reserved(core):
    core.create_repository(name="hosted", format="python", actor="t")
    core.create_repository(name="up", format="python", kind="proxy", actor="t",
                           config={"upstream": {"url": "http://127.0.0.1:9/simple/"}})
    grp = core.create_repository(name="grp", format="python", kind="group", actor="t",
                                 config={"members": ["hosted", "up"], "reserved": ["acme-*"]})
    internal = {"inside"}

    def decide(name):
        return [(r.member.name, r.consult, r.reason is not None)
                for r in route(core, grp, name, hosted_has=lambda m, n: n in internal)]

    assert decide("public") == [("hosted", True, False), ("up", True, False)]
    assert decide("inside") == [("hosted", True, False), ("up", False, True)]
    assert decide("acme-tools") == [("hosted", True, False), ("up", False, True)]
    caps = core.repos.update("grp", config={"members": ["hosted", "up"], "reserved": ["Com.Acme:*"]}, actor="t")
    assert reserved_pattern(caps, "com.acme:Lib") == "Com.Acme:*"  # case-insensitive on both sides
    assert reserved_pattern(caps, "COM.ACME:lib") == "Com.Acme:*" and reserved_pattern(caps, "org.other:lib") is None
    off = core.repos.update("grp", config={"members": ["hosted", "up"], "guard": False}, actor="t")
    assert [r.consult for r in route(core, off, "inside", hosted_has=lambda m, n: True)] == [True, True]


def test_every_format_folder_is_discovered():
    plugins = load_plugins()
    assert "python" in plugins
    for name, plugin in plugins.items():
        assert plugin.name == name and plugin.kinds


def test_removing_one_of_two_keys_with_the_same_file_keeps_the_other_downloadable(core):
    from wharf.core.published import link_file

    repo = core.create_repository(name="two", format="python", actor="t")
    blob = core.blobs.put_bytes(b"shared bytes")
    for key in ("a/f.bin", "b/f.bin"):
        core.content.add(repo, NewArtifact("python", key.split("/")[0], "1", "f.bin", blob, key=key), actor="t")
    assert link_file(core, "two", blob.sha256, "f.bin")
    core.remove_files(repo, actor="t", keys=["a/f.bin"])
    assert core.pages.file_path("two", blob.sha256, "f.bin") is not None  # b/f.bin still holds it
    core.remove_files(repo, actor="t", keys=["b/f.bin"])
    assert core.pages.file_path("two", blob.sha256, "f.bin") is None
