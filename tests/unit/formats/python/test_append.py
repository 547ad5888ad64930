"""The constant-time page update after an upload is taken when the page is current, and equals a full render."""

from __future__ import annotations

import json

from wharf.config import Settings
from wharf.core.content import NewArtifact
from wharf.core.services import Core
from wharf.formats.python import index


def _add(core, repo, name, version, n):
    data = f"{name}-{version}-{n}".encode()
    ref = core.blobs.put_bytes(data)
    fn = f"{name}-{version}-py3-none-any.whl" if n == 0 else f"{name}-{version}.tar.gz"
    return core.content.add(repo, NewArtifact(format="python", name=name, version=version, filename=fn, blob=ref,
                                              kind="bdist_wheel", meta={"requires_python": ">=3.9"}), actor="t")


def test_append_equals_full_render(tmp_path):
    core = Core(Settings(data=tmp_path / "data"), migrate=True)
    repo = core.create_repository(name="dev", format="python", actor="t")
    first = _add(core, repo, "proj", "1.0", 0)
    core.publish(repo, {"proj"})
    taken = []
    for version, n in (("1.0", 1), ("2.0", 0), ("2.0", 1)):
        res = _add(core, repo, "proj", version, n)
        taken.append(index.append_file(core, repo, res.file, res.version))
    assert taken == [True, True, True]
    # a change to another project in between does not make the page stale
    other = _add(core, repo, "other", "1.0", 0)
    core.publish(repo, {"other"})
    res = _add(core, repo, "proj", "3.0", 0)
    assert index.append_file(core, repo, res.file, res.version)
    spliced = core.pages.read("dev", "simple/proj")
    assert spliced.version == res.version
    fresh = index.render_project("proj", core.content.files(repo.id, "proj", meta_keys=("requires_python",)))
    assert json.loads(spliced.variants["json"][1]) == json.loads(fresh["json"])
    assert spliced.variants["html"][1] == fresh["html"]
    # a page that missed a change (here: a yank, which re-renders nothing by itself) is not spliced
    core.content.set_yanked(repo, name="proj", version="1.0", yanked=True, reason="old", actor="t")
    res = _add(core, repo, "proj", "4.0", 0)
    assert not index.append_file(core, repo, res.file, res.version)
    assert first.created and other.created
    core.close()
