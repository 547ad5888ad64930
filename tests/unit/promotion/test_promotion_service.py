"""The promotion service in-process: policy gates see ``action="promotion"`` and can refuse (nothing kept), their
decisions land in the provenance entry, events ``package.copied|moved|promoted``; query and target parsing."""

from __future__ import annotations

import pytest

from wharf.cli.promotion import split_target
from wharf.config import Settings
from wharf.core.content import NewArtifact
from wharf.core.errors import InvalidInput, PolicyDenied
from wharf.core.ingest import Decision
from wharf.core.promotion import Query, parse_query
from wharf.core.services import Core


@pytest.fixture
def core(tmp_path):
    c = Core(Settings(data=tmp_path / "data"), migrate=True)
    yield c
    c.close()


def _repo(core, name, **config):
    return core.create_repository(name=name, format="generic", config=config, actor="test")


def _put(core, repo, package, version, filename, data: bytes):
    ref = core.blobs.put_bytes(data)
    return core.ingest(repo, NewArtifact(format="generic", name=package, version=version, filename=filename, blob=ref,
                                         key=f"{package}/{filename}", meta={"sha1": "x", "md5": "y"}), actor="test")


def test_gates_see_the_promotion_and_their_decisions_are_recorded(core):
    dev, prod = _repo(core, "dev"), _repo(core, "prod")
    _put(core, dev, "tools/a", "1", "a.bin", b"a" * 10)
    _put(core, dev, "tools/bad", "1", "bad.bin", b"b" * 10)
    seen = []

    def gate(_core, repo, new, action, actor):
        seen.append((repo.name, new.name, action))
        if action == "promotion" and new.name == "tools/bad":
            raise PolicyDenied("policy no-bad: 'tools/bad' may not reach prod")
        return [Decision("no-criticals", "allow", policy_version=3, id=42)] if action == "promotion" else []

    core.gates.append(gate)
    t = core.promotions.transfer("dev", "prod", "tools/a", operation="promote", actor="alice", remote_addr="10.0.0.1")
    assert ("prod", "tools/a", "promotion") in seen
    assert [f["filename"] for f in t.added] == ["a.bin"]
    [entry] = core.promotions.entries(repository="prod")
    assert entry["operation"] == "promote" and entry["actor"] == "alice" and entry["remote_addr"] == "10.0.0.1"
    assert entry["decisions"][0]["policy"] == "no-criticals" and entry["decisions"][0]["id"] == 42
    assert entry["files"][0]["sha256"] == core.content.files(dev.id, "tools/a")[0].sha256

    with pytest.raises(PolicyDenied):
        core.promotions.transfer("dev", "prod", "tools/bad", operation="move", actor="alice")
    assert core.content.files(prod.id, "tools/bad") == []  # nothing kept in the destination
    assert len(core.content.files(dev.id, "tools/bad")) == 1  # a refused move leaves the source alone
    assert len(core.promotions.entries(repository="prod")) == 1

    types = [(e.type, e.repository, e.detail.get("from")) for e in core.events.list(repository="prod")]
    assert ("package.promoted", "prod", "dev") in types
    assert ("package.created", "prod", None) in types  # through the ingest pipeline, like an upload


def test_move_emits_moved_and_the_trail_tells_the_story(core):
    dev = _repo(core, "dev")
    _repo(core, "prod")
    _put(core, dev, "tools/m", "2", "m.bin", b"m" * 10)
    t = core.promotions.transfer("dev", "prod", "tools/m", operation="move", actor="bob")
    assert t.removed_from_source == ["tools/m/m.bin"]
    assert core.content.files(dev.id, "tools/m") == []
    assert [e.type for e in core.events.list(repository="prod", types=["package.moved"])] == ["package.moved"]
    trail = core.promotions.trail("generic", "tools/m", visible=lambda _n: True)
    assert [(e["event"], e["repository"]) for e in trail["events"]] == [("upload", "dev"), ("move", "prod")]
    assert trail["live_in"] == ["prod"]
    hidden = core.promotions.trail("generic", "tools/m", visible=lambda n: n == "prod")
    assert [e["event"] for e in hidden["events"]] == ["move"] and hidden["events"][0]["source"] is None


@pytest.mark.parametrize("text, expected", [
    (None, Query()),
    ("", Query()),
    ("acme-*", Query(("acme-*",))),
    ("name:acme-* name:core version:1.*", Query(("acme-*", "core"), ("1.*",))),
    ("'name:with space*'", Query(("with space*",))),
])
def test_parse_query(text, expected):
    assert parse_query(text) == expected


@pytest.mark.parametrize("text", ["owner:me", "name:", "'unclosed"])
def test_parse_query_refuses(text):
    with pytest.raises(InvalidInput):
        parse_query(text)


def test_query_matching():
    q = parse_query("name:Acme-* version:1.*")
    assert q.match_name("acme-utils") and not q.match_name("other")
    assert q.match_version("1.2") and not q.match_version("2.0")
    assert Query().match_name("anything") and Query().match_version("0")


@pytest.mark.parametrize("target, expected", [
    ("dev", ("dev", None, None)),
    ("dev/pkg", ("dev", "pkg", None)),
    ("dev/pkg@1.0", ("dev", "pkg", "1.0")),
    ("dev/@acme/lib", ("dev", "@acme/lib", None)),
    ("dev/@acme/lib@2.0.0", ("dev", "@acme/lib", "2.0.0")),
    ("dev/com.acme:lib@1.0", ("dev", "com.acme:lib", "1.0")),
    ("dev/tools/cli/1.4", ("dev", "tools/cli/1.4", None)),
])
def test_split_target(target, expected):
    assert split_target(target) == expected
