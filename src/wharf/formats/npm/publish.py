"""Writes to a hosted npm repository (run in a worker thread): publish, deprecate, dist-tags, unpublish, and the
state that travels with promoted versions.

Publish is a chain of checks; every failure raises before anything is stored (a blob written for a refused
publish is forgotten again). Rules:

- a version is published once: publishing an existing version (even identical bytes) is 403, as on npm's own
  registry; an unpublished version cannot be published again (its tarball key stays reserved) unless the
  repository has ``allow_overwrite``;
- new package names follow npm's rules for new packages (lower case, URL-safe, <= 214 characters);
- the attachment's sha512 (``dist.integrity``) and sha1 (``dist.shasum``) must match, and its package.json must
  name the same package and version as the document;
- unpublish (a version, or the whole package) follows the repository's ``unpublish`` setting: ``admin``
  (default: a token with admin on the repository), ``write``, or ``never``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Collection, Mapping

from ...asgi import HTTPError
from ...core.content import NewArtifact
from ...core.errors import FileExists, FileWasDeleted, NotFound
from ...core.interfaces import RepoInfo, RequestContext
from . import parse
from .index import ATTR_DEPRECATED, ATTR_TAGS, clean_tags, packument_key

if TYPE_CHECKING:  # pragma: no cover
    from ...core.services import Core

__all__ = ["publish_version", "update_metadata", "unpublish_package", "delete_tarball", "set_dist_tags",
           "promote_state"]

# package.json fields not kept in a version object (the tarball has them; they bloat every packument)
_DROPPED = ("readme", "readmeFilename", "_attachments", "_rev", "_revisions", "dist", "_id", "_resolved",
            "_integrity", "_from", "_where", "_shasum")


def _bad(exc: parse.InvalidPackage) -> HTTPError:
    return HTTPError(400, exc.message, reason=exc.reason)


def _versions(core: "Core", repo_id: int, name: str) -> dict[str, Any]:
    """Live files of a name by version."""
    return {f.version: f for f in core.content.files(repo_id, name)}


def publish_version(core: "Core", ctx: RequestContext, path_name: str, doc: dict[str, Any], limit: int) -> dict[str, Any]:
    repo = ctx.repo
    try:
        req = parse.parse_publish(doc, path_name)
    except parse.InvalidPackage as exc:
        raise _bad(exc)
    existing = _versions(core, repo.id, req.name)
    try:
        parse.check_name(req.name, new=not existing)
    except parse.InvalidPackage as exc:
        raise _bad(exc)
    if req.version in existing:
        raise HTTPError(403, f"cannot publish over the previously published version {req.name}@{req.version}: "
                             "versions are immutable; publish a new version", reason="version-exists")
    if len(req.data) > (limit + 2) * 4 // 3 + 4:
        raise HTTPError(413, f"the tarball is larger than the limit of {limit} bytes for repository '{repo.name}'",
                        reason="too-large")
    try:
        raw = parse.decode_attachment(req.data, req.length)
    except parse.InvalidPackage as exc:
        raise _bad(exc)
    if len(raw) > limit:
        raise HTTPError(413, f"the tarball is larger than the limit of {limit} bytes for repository '{repo.name}'",
                        reason="too-large")
    writer = core.blobs.writer(algorithms=("sha512", "sha1"), max_size=limit)
    try:
        writer.write(raw)
        del raw
        digests = writer.digests()
        try:
            parse.verify_dist(req.manifest["dist"], digests)
            pkg = parse.read_tarball(str(writer.temp_path()))
            parse.check_tarball_matches(pkg, req.name, req.version)
        except parse.InvalidPackage as exc:
            raise _bad(exc)
        manifest = {k: v for k, v in req.manifest.items() if k not in _DROPPED}
        manifest["_npmUser"] = {"name": ctx.principal.name if ctx.principal else "anonymous"}
        manifest.pop("deprecated", None)
        key = parse.tarball_key(req.name, req.version)
        ref = writer.commit()
        new = NewArtifact(format="npm", name=req.name, version=req.version, filename=parse.tarball_filename(req.name, req.version),
                          blob=ref, kind="tarball", key=key,
                          meta={"manifest": manifest, "integrity": parse.sri("sha512", digests["sha512"]),
                                "shasum": digests["sha1"]})
        allow_overwrite = bool(repo.setting("allow_overwrite", False))
        try:
            result = core.ingest(repo, new, actor=ctx.actor, remote_addr=ctx.remote_addr,
                                 allow_overwrite=allow_overwrite)
        except (FileExists, FileWasDeleted) as exc:
            if writer.created:
                core.content.forget_blob_if_unreferenced(core.blobs, ref.sha256)
            if isinstance(exc, FileWasDeleted):
                raise HTTPError(403, f"{req.name}@{req.version} was unpublished from repository '{repo.name}'; "
                                     "a version cannot be published again: publish a new version", reason="version-exists")
            raise HTTPError(403, f"cannot publish over the previously published version {req.name}@{req.version}",
                            reason="version-exists")
        except Exception:  # e.g. a policy refused it: the blob must not stay behind
            if writer.created:
                core.content.forget_blob_if_unreferenced(core.blobs, ref.sha256)
            raise
        if not result.created:
            raise HTTPError(403, f"cannot publish over the previously published version {req.name}@{req.version}",
                            reason="version-exists")
    finally:
        writer.abort()
    tags = dict(req.tags) or {"latest": req.version}
    current = core.content.attributes(repo, req.name).get(ATTR_TAGS) or {}
    merged = {**current, **tags}
    if core.set_attributes(repo, req.name, {ATTR_TAGS: merged}, actor=ctx.actor, remote_addr=ctx.remote_addr) is None:
        core.publish(repo, {req.name})
    return {"ok": True, "id": req.name, "rev": f"{result.version}-wharf", "success": True}


def update_metadata(core: "Core", ctx: RequestContext, name: str, doc: Mapping[str, Any],
                    require_unpublish: Callable[[], None]) -> dict[str, Any]:
    """``PUT /<name>`` without attachments: the client sends the packument back with changes. Wharf applies
    deprecations (``versions[v].deprecated``) and removals of versions (npm unpublish <name>@<v>)."""
    repo = ctx.repo
    if doc.get("name", name) != name:
        raise HTTPError(400, f"the document's name {str(doc.get('name'))[:100]!r} does not match the URL's package "
                             f"name {name!r}", reason="name-mismatch")
    existing = _versions(core, repo.id, name)
    sent = doc.get("versions")
    if not existing:
        if sent:
            raise HTTPError(400, f"the publish of '{name}' has no tarball in '_attachments'", reason="no-attachment")
        raise HTTPError(404, f"package '{name}' not found in repository '{repo.name}' (publish it with its tarball "
                             "first)")
    if sent is None:
        sent = {v: {} for v in existing}
    if not isinstance(sent, dict) or any(not isinstance(m, dict) for m in sent.values()):
        raise HTTPError(400, "'versions' must map versions to objects", reason="bad-document")
    added = [v for v in sent if v not in existing]
    if added:
        raise HTTPError(400, f"version(s) {', '.join(sorted(added))[:200]} cannot be added without their tarball "
                             "(use npm publish)", reason="no-attachment")
    removed = [v for v in existing if v not in sent]
    attrs = core.content.attributes(repo, name)
    deprecated = dict(attrs.get(ATTR_DEPRECATED) or {})
    for v, m in sent.items():
        if "deprecated" in m:
            msg = m["deprecated"]
            if msg is not None and not isinstance(msg, str):
                raise HTTPError(400, f"versions[{v!r}].deprecated must be a string", reason="bad-document")
            if msg:
                deprecated[v] = msg[:1024]
            else:
                deprecated.pop(v, None)
        elif doc.get("versions") is not None and v in deprecated and "deprecated" not in m:
            # the client sent the version without its deprecation (npm deprecate <pkg> "" drops the field)
            deprecated.pop(v, None)
    if removed:
        require_unpublish()
        if len(removed) == len(existing):
            raise HTTPError(400, "removing every version unpublishes the package: use `npm unpublish <name> --force`",
                            reason="bad-document")
    _apply(core, ctx, name, existing, removed, deprecated, attrs)
    return {"ok": True, "id": name}


def _apply(core: "Core", ctx: RequestContext, name: str, existing: Mapping[str, Any], removed: list[str],
           deprecated: dict[str, str], attrs: Mapping[str, Any]) -> None:
    """Remove versions, then record deprecations and the dist-tags that still point somewhere (one version each)."""
    repo = ctx.repo
    if removed:
        core.remove_files(repo, actor=ctx.actor, remote_addr=ctx.remote_addr,
                          keys=[parse.tarball_key(name, v) for v in removed])
        for v in removed:
            deprecated.pop(v, None)
    remaining = [v for v in existing if v not in removed]
    tags = clean_tags(attrs.get(ATTR_TAGS) or {}, remaining)
    changes: dict[str, Any] = {}
    if deprecated != (attrs.get(ATTR_DEPRECATED) or {}):
        changes[ATTR_DEPRECATED] = deprecated or None
    if tags != (attrs.get(ATTR_TAGS) or {}):
        changes[ATTR_TAGS] = tags
    if changes:
        core.set_attributes(repo, name, changes, actor=ctx.actor, remote_addr=ctx.remote_addr)


def unpublish_package(core: "Core", ctx: RequestContext, name: str) -> None:
    try:
        core.remove_files(ctx.repo, actor=ctx.actor, remote_addr=ctx.remote_addr, name=name)
    except NotFound:
        raise HTTPError(404, f"package '{name}' not found in repository '{ctx.repo.name}'")
    core.set_attributes(ctx.repo, name, {ATTR_TAGS: None, ATTR_DEPRECATED: None}, actor=ctx.actor,
                        remote_addr=ctx.remote_addr)
    core.pages.delete(ctx.repo.name, packument_key(name))


def delete_tarball(core: "Core", ctx: RequestContext, name: str, filename: str) -> None:
    """The second half of `npm unpublish <name>@<v>` (the version is already gone from the packument)."""
    live = {f.filename: f for f in core.content.files(ctx.repo, name)}
    f = live.get(filename)
    if f is None:
        return  # already removed with its version
    if len(live) == 1:
        raise HTTPError(400, "this is the last version: unpublish the whole package instead")
    attrs = core.content.attributes(ctx.repo, name)
    _apply(core, ctx, name, {x.version: x for x in live.values()}, [f.version], dict(attrs.get(ATTR_DEPRECATED) or {}),
           attrs)


def set_dist_tags(core: "Core", ctx: RequestContext, name: str, changes: Mapping[str, Any]) -> dict[str, str]:
    repo = ctx.repo
    existing = _versions(core, repo.id, name)
    if not existing:
        raise HTTPError(404, f"package '{name}' not found in repository '{repo.name}'")
    tags = dict(core.content.attributes(repo, name).get(ATTR_TAGS) or {})
    for tag, version in changes.items():
        try:
            parse.check_tag(tag)
        except parse.InvalidPackage as exc:
            raise _bad(exc)
        if version is None:
            if tag == "latest":
                raise HTTPError(400, "the 'latest' tag cannot be removed (point it at another version instead)")
            if tag not in tags:
                raise HTTPError(404, f"'{name}' has no dist-tag '{tag}'")
            tags.pop(tag)
            continue
        if not isinstance(version, str) or version not in existing:
            raise HTTPError(400, f"version {str(version)[:100]!r} of '{name}' is not in repository '{repo.name}'",
                            reason="bad-tag")
        tags[tag] = version
    tags = clean_tags(tags, existing)
    core.set_attributes(repo, name, {ATTR_TAGS: tags}, actor=ctx.actor, remote_addr=ctx.remote_addr)
    return tags



def promote_state(core: "Core", source: RepoInfo, destination: RepoInfo, name: str, versions: Collection[str], *,
                  actor: str, remote_addr: str | None = None) -> dict[str, Any]:
    """After a copy, move or promotion put ``versions`` in ``destination``: each source dist-tag naming one of them
    moves there unless the destination's tag of that name names a higher version (a tag never goes back). The
    destination's tags are those set there and, while no ``latest`` was set, the ``latest`` npm is served by
    default: its highest release from before (a prerelease served only for want of a release holds nothing back).
    A deprecation goes with its version unless the destination has its own message for it. Returns the attributes
    changed in the destination."""
    theirs = core.content.attributes(source, name)
    ours = core.content.attributes(destination, name)
    present = _versions(core, destination.id, name)
    arrived = {v for v in versions if v in present}
    tags = dict(ours.get(ATTR_TAGS) or {})
    current = {t: v for t, v in tags.items() if v in present}
    if "latest" not in current:
        releases = [v for v in present if v not in arrived and not parse.is_prerelease(v)]
        if releases:
            current["latest"] = max(releases, key=parse.semver_key)
    for tag, version in (theirs.get(ATTR_TAGS) or {}).items():
        if version in arrived and (tag not in current or parse.semver_key(version) > parse.semver_key(current[tag])):
            tags[tag] = version
    deprecated = dict(ours.get(ATTR_DEPRECATED) or {})
    for version, message in (theirs.get(ATTR_DEPRECATED) or {}).items():
        if version in arrived:
            deprecated.setdefault(version, message)
    changes: dict[str, Any] = {}
    if tags != (ours.get(ATTR_TAGS) or {}):
        changes[ATTR_TAGS] = tags
    if deprecated != (ours.get(ATTR_DEPRECATED) or {}):
        changes[ATTR_DEPRECATED] = deprecated
    if changes:
        core.set_attributes(destination, name, changes, actor=actor, remote_addr=remote_addr)
    return changes
