"""Format-level package state travels with promoted versions through the plugin hook ``promote_state``: core hands
it the versions now whole in the destination; npm carries dist-tags (never back to an older version) and
deprecations, cargo the owners of a crate that has none in the destination."""

from __future__ import annotations

import pytest

from wharf.config import Settings
from wharf.core.content import NewArtifact
from wharf.core.services import Core
from wharf.formats.npm.parse import tarball_key


@pytest.fixture
def core(tmp_path):
    c = Core(Settings(data=tmp_path / "data", vetting=False), migrate=True)
    yield c
    c.close()


def _npm(core, repo, name, *versions):
    for v in versions:
        ref = core.blobs.put_bytes(f"{name}@{v}".encode())
        core.ingest(repo, NewArtifact(format="npm", name=name, version=v, filename=tarball_key(name, v).split("/")[-1],
                                      blob=ref, key=tarball_key(name, v),
                                      meta={"manifest": {"name": name, "version": v}}), actor="test")


def _tags(core, repo, name):
    return core.content.attributes(repo.id, name).get("dist-tags")


def test_core_hands_the_plugin_only_whole_versions_and_reports_what_it_changed(core, monkeypatch):
    dev = core.create_repository(name="dev", format="generic", actor="t")
    prod = core.create_repository(name="prod", format="generic", actor="t")
    for version, files in (("1", ("a.bin", "b.bin")), ("2", ("c.bin",))):
        for filename in files:
            ref = core.blobs.put_bytes(f"{version}/{filename}".encode())
            core.ingest(dev, NewArtifact(format="generic", name="tools/x", version=version, filename=filename,
                                         blob=ref, key=f"tools/x/{filename}"), actor="t")
    ref = core.blobs.put_bytes(b"other bytes")  # b.bin of version 1 exists in prod with other bytes
    core.ingest(prod, NewArtifact(format="generic", name="tools/x", version="1", filename="b.bin", blob=ref,
                                  key="tools/x/b.bin"), actor="t")
    calls = []

    def promote_state(core_, source, destination, name, versions, *, actor, remote_addr=None):
        calls.append((source.name, destination.name, name, sorted(versions), actor, remote_addr))
        return {"marker": sorted(versions)}

    monkeypatch.setattr(core.plugin(prod), "promote_state", promote_state, raising=False)
    t = core.promotions.transfer("dev", "prod", "tools/x", actor="alice", remote_addr="10.0.0.1", skip_existing=True)
    assert [f["key"] for f in t.skipped] == ["tools/x/b.bin"]
    assert calls == [("dev", "prod", "tools/x", ["2"], "alice", "10.0.0.1")]  # version 1 is not whole in prod
    assert t.state == {"marker": ["2"]}
    events = core.events.list(types=["package.copied"])  # one per version with files added
    assert sorted(e.version for e in events) == ["1", "2"] and all(e.detail["state"] == t.state for e in events)


def test_npm_dist_tags_and_deprecations_go_with_their_versions(core):
    dev = core.create_repository(name="dev", format="npm", actor="t")
    prod = core.create_repository(name="prod", format="npm", actor="t")
    _npm(core, dev, "pkg", "1.0.0", "2.0.0-beta.1", "2.0.0-beta.2")
    core.set_attributes(dev, "pkg", {"dist-tags": {"latest": "1.0.0", "beta": "2.0.0-beta.1", "stable": "1.0.0"},
                                     "deprecated": {"2.0.0-beta.1": "use beta.2"}}, actor="t")

    # the beta alone: its tag and deprecation go along; 'latest' and 'stable' name a version that stays behind
    t = core.promotions.transfer("dev", "prod", "pkg", "2.0.0-beta.1", actor="t")
    assert t.state == {"dist-tags": {"beta": "2.0.0-beta.1"}, "deprecated": {"2.0.0-beta.1": "use beta.2"}}
    # then the release: a prerelease served as 'latest' for want of a release does not hold 'latest' back
    t = core.promotions.transfer("dev", "prod", "pkg", "1.0.0", actor="t")
    assert _tags(core, prod, "pkg") == {"beta": "2.0.0-beta.1", "latest": "1.0.0", "stable": "1.0.0"}

    # a tag the destination has at a higher version stays; a repeated copy (identical files) changes nothing
    core.set_attributes(prod, "pkg", {"deprecated": {"2.0.0-beta.1": "prod's own words"}}, actor="t")
    core.promotions.transfer("dev", "prod", "pkg", "2.0.0-beta.2", actor="t")
    core.set_attributes(prod, "pkg", {"dist-tags": {**_tags(core, prod, "pkg"), "beta": "2.0.0-beta.2"}}, actor="t")
    before = core.db_version(prod)
    t = core.promotions.transfer("dev", "prod", "pkg", "2.0.0-beta.1", actor="t")
    assert t.identical and t.state == {} and core.db_version(prod) == before
    assert _tags(core, prod, "pkg")["beta"] == "2.0.0-beta.2"
    assert core.content.attributes(prod.id, "pkg")["deprecated"] == {"2.0.0-beta.1": "prod's own words"}


def test_npm_latest_served_by_default_is_not_set_back(core):
    dev = core.create_repository(name="dev", format="npm", actor="t")
    prod = core.create_repository(name="prod", format="npm", actor="t")
    _npm(core, dev, "pkg", "1.0.1", "2.0.0")
    core.set_attributes(dev, "pkg", {"dist-tags": {"latest": "2.1.0"}}, actor="t")  # a version never promoted
    core.promotions.transfer("dev", "prod", "pkg", "2.0.0", actor="t")
    assert _tags(core, prod, "pkg") is None  # prod serves its highest release, 2.0.0, as 'latest' by default
    # the backport was published without --tag in dev, so 'latest' names it there: not in prod
    core.set_attributes(dev, "pkg", {"dist-tags": {"latest": "1.0.1", "v1": "1.0.1"}}, actor="t")
    t = core.promotions.transfer("dev", "prod", "pkg", "1.0.1", actor="t")
    assert t.state == {"dist-tags": {"v1": "1.0.1"}}


def test_cargo_owners_go_to_a_crate_that_has_none(core):
    dev = core.create_repository(name="dev", format="cargo", actor="t")
    prod = core.create_repository(name="prod", format="cargo", actor="t")
    qa = core.create_repository(name="qa", format="cargo", actor="t")
    for v in ("1.0.0", "1.1.0"):
        ref = core.blobs.put_bytes(f"crate {v}".encode())
        entry = '{"name":"demo","vers":"%s","deps":[],"cksum":"%s","features":{},"yanked":false}' % (v, ref.sha256)
        core.ingest(dev, NewArtifact(format="cargo", name="demo", version=v, filename=f"demo-{v}.crate", blob=ref,
                                     kind="crate", key=f"demo/{v}", meta={"index": entry, "crate": "demo"}), actor="t")
    core.set_attributes(dev, "demo", {"owners": ["alice", "bob"]}, actor="t")
    t = core.promotions.transfer("dev", "prod", "demo", "1.0.0", actor="t")
    assert t.state == {"owners": ["alice", "bob"]}
    assert core.content.attributes(prod.id, "demo")["owners"] == ["alice", "bob"]
    core.set_attributes(qa, "demo", {"owners": ["carol"]}, actor="t")  # qa's owners are its own
    t = core.promotions.transfer("dev", "qa", "demo", "1.1.0", actor="t")
    assert t.state == {} and core.content.attributes(qa.id, "demo")["owners"] == ["carol"]
